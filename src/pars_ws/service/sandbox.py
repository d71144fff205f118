"""Seeding the sandbox: the test provider, one credential, one web user (the pages' log-in), the seed's
activities and test learners."""

from __future__ import annotations

from dataclasses import dataclass

from ..adapters.account_store import WEB_USER
from ..adapters.data_files import activity_from_dict, learner_from_dict, sandbox_fixture
from .auth import hash_secret, new_secret

SANDBOX = "sandbox"


@dataclass(frozen=True)
class SeedResult:
    provider_id: str
    username: str | None
    password: str | None  # shown once; only its hash is stored
    activities: int
    learners: int
    web_email: str | None = None  # the web user's log-in for the pages
    web_password: str | None = None  # shown once too


def seed_sandbox(
    services,
    *,
    username: str | None = None,
    password: str | None = None,
    create_credential: bool = True,
    web_password: str | None = None,
) -> SeedResult:
    fixture = sandbox_fixture()
    year = services.clock.today().year
    p = fixture["provider"]
    now = services.clock.now()
    with services.store.transaction() as uow:
        accounts = uow.accounts
        provider_pk = accounts.ensure_provider(p["provider_id"], p["name"], p["domain"], p["email"], p.get("contact"))
        made_user = made_password = web_email = made_web_password = None
        if create_credential:
            made_user = username or f"sandbox-{new_secret()[:8].lower()}"
            made_password = password or new_secret()
            if accounts.credential(made_user) is None:
                accounts.add_credential(provider_pk, SANDBOX, made_user, hash_secret(made_password), now)
            else:
                accounts.set_credential(made_user, now, secret_hash=hash_secret(made_password), disabled=False)
            web_email = fixture["web_user"]["email"]
            made_web_password = _seed_web_user(accounts, provider_pk, fixture["web_user"], web_password, now)
        activities = [activity_from_dict(a, year) for a in fixture["activities"]]
        for activity in activities:
            uow.learners.save_activity(SANDBOX, provider_pk, activity, now)
        learners = uow.learners.import_learners(SANDBOX, (learner_from_dict(d, year) for d in fixture["registry"]))
    return SeedResult(
        p["provider_id"], made_user, made_password, len(activities), learners, web_email, made_web_password
    )


def _seed_web_user(accounts, provider_pk: int, person: dict, password: str | None, now) -> str:
    """The fixture's web user, with this password (default: generated), enabled: its password."""
    made = password or new_secret()
    if accounts.login(WEB_USER, person["email"]) is None:
        accounts.add_web_user(provider_pk, SANDBOX, person["name"], person["email"], hash_secret(made), now)
    else:
        accounts.set_web_user(person["email"], now, password_hash=hash_secret(made), disabled=False)
    return made


def import_registry(services, environment: str, learners) -> int:
    """Add or replace board registry learners (keyed by board + learner ID)."""
    with services.store.transaction() as uow:
        return uow.learners.import_learners(environment, learners)
