"""Providers, their web-service credentials and their people's web users, as an operator manages
them (`pars-ws credentials`, `pars-ws users`) and as a provider does on its Settings page (`owner`:
only its own, in its own environment)."""

from __future__ import annotations

from ..adapters.account_store import WEB_USER
from ..domain.people import credential_problems, password_problems, web_user_problems
from .auth import Account, hash_secret, new_secret


class AccountRefused(Exception):
    """An operator's request that cannot be done; the message says why."""


def create_credential(
    services,
    *,
    provider_id: str,
    environment: str,
    username: str,
    password: str | None = None,
    provider_name: str | None = None,
    provider_domain: str | None = None,
    provider_email: str | None = None,
) -> str:
    """A credential for a provider in one environment (the provider is created when new); the secret."""
    secret = password or new_secret()
    with services.store.transaction() as uow:
        provider = uow.accounts.provider(provider_id)
        if provider is None:
            if not (provider_name and provider_email):
                raise AccountRefused("new provider: give --provider-name and --provider-email")
            pk = uow.accounts.ensure_provider(
                provider_id, provider_name, provider_domain or f"provider{provider_id}.example", provider_email
            )
        else:
            pk = provider.id
        if uow.accounts.credential(username) is not None:
            raise AccountRefused(f"credential {username!r} exists; use 'pars-ws credentials rotate'")
        uow.accounts.add_credential(pk, environment, username, hash_secret(secret), services.clock.now())
    return secret


def _scope(owner: Account | None) -> dict:
    return {} if owner is None else {"provider_pk": owner.provider_pk, "environment": owner.environment}


def _refuse_problems(problems: list[str]) -> None:
    if problems:
        raise AccountRefused(" ".join(problems))


def rotate_credential(services, username: str, password: str | None = None, *, owner: Account | None = None) -> str:
    """A new secret for a credential (the old one stops working at once); the secret."""
    secret = password or new_secret()
    with services.store.transaction() as uow:
        if not uow.accounts.set_credential(
            username, services.clock.now(), secret_hash=hash_secret(secret), **_scope(owner)
        ):
            raise AccountRefused(f"no credential {username!r}")
    return secret


def set_disabled(services, username: str, disabled: bool, *, owner: Account | None = None) -> None:
    with services.store.transaction() as uow:
        if not uow.accounts.set_credential(username, services.clock.now(), disabled=disabled, **_scope(owner)):
            raise AccountRefused(f"no credential {username!r}")


def credentials(services, owner: Account | None = None) -> list:
    """Every credential, or the owner's provider's in its environment (user name, environment, state,
    provider ID), never its secret."""
    with services.store.transaction(write=False) as uow:
        return uow.accounts.credentials(**_scope(owner))


def add_credential(services, owner: Account, username: str, password: str | None = None) -> str:
    """A provider's new credential in its own environment, from its Settings page; the secret."""
    username = username.strip()
    _refuse_problems(credential_problems(username, password))
    return create_credential(
        services, provider_id=owner.provider_id, environment=owner.environment, username=username, password=password
    )


# -- people's web users (the pages' log-in) --------------------------------------------------


def create_web_user(
    services, *, provider_id: str, environment: str, name: str, email: str, password: str | None = None
) -> str:
    """A web user of an existing provider in one environment; the password (generated when not given)."""
    name, email = name.strip(), email.strip().lower()
    _refuse_problems(web_user_problems(name, email, password))
    secret = password or new_secret()
    with services.store.transaction() as uow:
        provider = uow.accounts.provider(provider_id)
        if provider is None:
            raise AccountRefused(f"no provider {provider_id}; create it with 'pars-ws credentials create'")
        if uow.accounts.login(WEB_USER, email) is not None:
            raise AccountRefused(f"there is a web user with the e-mail {email} already")
        uow.accounts.add_web_user(provider.id, environment, name, email, hash_secret(secret), services.clock.now())
    return secret


def reset_web_user_password(services, email: str, password: str | None = None, *, owner: Account | None = None) -> str:
    """A new password for a web user (its sessions end at once); the password."""
    _refuse_problems(password_problems(password))
    secret = password or new_secret()
    with services.store.transaction() as uow:
        if not uow.accounts.set_web_user(
            email.strip(), services.clock.now(), password_hash=hash_secret(secret), **_scope(owner)
        ):
            raise AccountRefused(f"no web user {email!r}")
    return secret


def set_web_user_disabled(services, email: str, disabled: bool, *, owner: Account | None = None) -> None:
    if owner is not None and disabled and owner.username == email.strip().lower():
        raise AccountRefused("You cannot disable your own log-in.")
    with services.store.transaction() as uow:
        if not uow.accounts.set_web_user(email.strip(), services.clock.now(), disabled=disabled, **_scope(owner)):
            raise AccountRefused(f"no web user {email!r}")


def web_users(services, provider_id: str, environment: str) -> list:
    """A provider's web users in one environment (name, e-mail, state), never their passwords."""
    with services.store.transaction(write=False) as uow:
        provider = uow.accounts.provider(provider_id)
        return [] if provider is None else uow.accounts.web_users(provider.id, environment)


def has_credentials(services) -> bool:
    with services.store.transaction(write=False) as uow:
        return uow.accounts.any_credential()


def has_web_users(services) -> bool:
    with services.store.transaction(write=False) as uow:
        return uow.accounts.any_web_user()


def provider_account(services, provider_id: str, environment: str) -> Account:
    """The Account an operator's command acts as: a provider in an environment, without a credential."""
    with services.store.transaction(write=False) as uow:
        provider = uow.accounts.provider(provider_id)
    if provider is None:
        raise AccountRefused(f"no provider {provider_id}; create it with 'pars-ws credentials create'")
    return Account(
        0, "cli", environment, provider.id, provider.provider_id, provider.name, provider.domain, provider.email
    )
