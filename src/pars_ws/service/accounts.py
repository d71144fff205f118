"""Providers and their web-service credentials, as an operator manages them (`pars-ws credentials`)."""
from __future__ import annotations

from .auth import Account, hash_secret, new_secret


class AccountRefused(Exception):
    """An operator's request that cannot be done; the message says why."""


def create_credential(services, *, provider_id: str, environment: str, username: str, password: str | None = None,
                      provider_name: str | None = None, provider_domain: str | None = None,
                      provider_email: str | None = None) -> str:
    """A credential for a provider in one environment (the provider is created when new); the secret."""
    secret = password or new_secret()
    with services.store.transaction() as uow:
        provider = uow.accounts.provider(provider_id)
        if provider is None:
            if not (provider_name and provider_email):
                raise AccountRefused("new provider: give --provider-name and --provider-email")
            pk = uow.accounts.ensure_provider(provider_id, provider_name,
                                              provider_domain or f"provider{provider_id}.example", provider_email)
        else:
            pk = provider.id
        if uow.accounts.credential(username) is not None:
            raise AccountRefused(f"credential {username!r} exists; use 'pars-ws credentials rotate'")
        uow.accounts.add_credential(pk, environment, username, hash_secret(secret), services.clock.now())
    return secret


def rotate_credential(services, username: str, password: str | None = None) -> str:
    """A new secret for a credential (the old one stops working at once); the secret."""
    secret = password or new_secret()
    with services.store.transaction() as uow:
        if not uow.accounts.set_credential(username, services.clock.now(), secret_hash=hash_secret(secret)):
            raise AccountRefused(f"no credential {username!r}")
    return secret


def set_disabled(services, username: str, disabled: bool) -> None:
    with services.store.transaction() as uow:
        if not uow.accounts.set_credential(username, services.clock.now(), disabled=disabled):
            raise AccountRefused(f"no credential {username!r}")


def credentials(services) -> list:
    """Every credential (user name, environment, state, provider ID), never its secret."""
    with services.store.transaction(write=False) as uow:
        return uow.accounts.credentials()


def has_credentials(services) -> bool:
    with services.store.transaction(write=False) as uow:
        return uow.accounts.any_credential()


def provider_account(services, provider_id: str, environment: str) -> Account:
    """The Account an operator's command acts as: a provider in an environment, without a credential."""
    with services.store.transaction(write=False) as uow:
        provider = uow.accounts.provider(provider_id)
    if provider is None:
        raise AccountRefused(f"no provider {provider_id}; create it with 'pars-ws credentials create'")
    return Account(0, "cli", environment, provider.id, provider.provider_id, provider.name, provider.domain,
                   provider.email)
