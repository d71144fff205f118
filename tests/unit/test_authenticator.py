"""The Authenticator a container builds: the throttling settings reach every process (before, only the
web application applied them, so workers and CLI tools ran with the defaults), and web sessions end
when their credential is rotated or disabled."""

from __future__ import annotations

import pytest

from pars_ws.service.auth import AuthenticationFailed
from pars_ws.service.sandbox import seed_sandbox
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, make_services


def test_a_container_locks_a_credential_after_its_configured_failures(database_url):
    services = make_services(database_url, login_max_failures=2, login_lockout_seconds=300)
    try:
        seed_sandbox(services, username=SANDBOX_USER, password=SANDBOX_PASSWORD)
        services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
        for _ in range(2):  # the default would take ten
            with pytest.raises(AuthenticationFailed):
                services.auth.authenticate(SANDBOX_USER, "wrong")
        with pytest.raises(AuthenticationFailed):  # locked: even the right secret is refused
            services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    finally:
        services.engine.dispose()


def test_a_web_session_ends_when_its_credential_is_rotated_or_disabled(database_url):
    import datetime as _dt

    from pars_ws.service.auth import hash_secret

    services = make_services(database_url)
    try:
        seed_sandbox(services, username="session-user", password="session-secret")
        account = services.auth.authenticate("session-user", "session-secret")
        proof = services.auth.session_proof(account)
        assert services.auth.resume("session-user", proof) == account
        assert services.auth.resume("session-user", "0" * len(proof)) is None
        now = _dt.datetime.now(_dt.timezone.utc)
        with services.store.transaction() as uow:
            uow.accounts.set_credential("session-user", now, disabled=True)
        assert services.auth.resume("session-user", proof) is None
        with services.store.transaction() as uow:
            uow.accounts.set_credential("session-user", now, disabled=False)
        assert services.auth.resume("session-user", proof) == account
        with services.store.transaction() as uow:
            uow.accounts.set_credential("session-user", now, secret_hash=hash_secret("new-secret"))
        assert services.auth.resume("session-user", proof) is None
    finally:
        services.engine.dispose()
