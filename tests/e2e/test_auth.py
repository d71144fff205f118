"""Authentication hardening end to end (SPEC 3.1, 5): constant-time secret checks, the same work for
unknown users and wrong passwords, WS-Security UsernameToken (PasswordText with Nonce/Created:
replays refused in every process, 5-minute window; PasswordDigest refused), failed-login throttling
shared by every process, and disable / rotate / unlock taking effect at once everywhere.

Two servers (separate gunicorn masters, two workers each) share one database, so "another process"
is certain, not left to the kernel's choice of worker.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import zeep
from sqlalchemy import select
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from pars_ws.adapters import tables as t
from pars_ws.service import auth as auth_module
from pars_ws.service.auth import AuthenticationFailed, hash_secret
from pars_ws.service.container import Services
from pars_ws.settings import Settings
from tests.conftest import PROVIDER_ID, SANDBOX_PASSWORD, SANDBOX_USER, TODAY, run_cli, start_server, stop_server
from tests.fuzz.wire import fault_of, get_activity_body, post, wsse_header

pytestmark = pytest.mark.e2e

MAX_FAILURES = 3
LOCKOUT_SECONDS = 6
THROTTLING = dict(PARS_LOGIN_MAX_FAILURES=MAX_FAILURES, PARS_LOGIN_LOCKOUT_SECONDS=LOCKOUT_SECONDS)
USERS = {name: f"{name}-secret-1" for name in ("timing", "throttle", "rotate", "disable", "inprocess", "basic")}


class Pair:
    """Two servers on one database, and in-process services on it for setup and inspection."""

    def __init__(self, a, b, services: Services):
        self.a, self.b, self.services = a, b, services

    def both(self):
        return (self.a, self.b)


@pytest.fixture(scope="module")
def pair(database_url, tmp_path_factory):
    a = start_server(database_url, tmp_path_factory.mktemp("a"), workers=2, **THROTTLING)
    b = start_server(database_url, tmp_path_factory.mktemp("b"), workers=2, **THROTTLING)
    services = Services(
        Settings(
            database_url=database_url,
            today=dt.date.fromisoformat(TODAY),
            secret_key=b"k",
            login_max_failures=MAX_FAILURES,
            login_lockout_seconds=LOCKOUT_SECONDS,
        )
    )
    with services.store.transaction() as uow:
        accounts = uow.accounts
        provider_pk = accounts.provider(PROVIDER_ID).id
        for user, secret in USERS.items():
            accounts.add_credential(provider_pk, "sandbox", user, hash_secret(secret), services.clock.now())
    yield Pair(a, b, services)
    services.engine.dispose()
    stop_server(b)
    stop_server(a)


def call(server, user: str, password: str, header: str = "", timeout: float = 30) -> requests.Response:
    return post(
        server.service_url,
        get_activity_body(user=user, password=password, header=header),
        SOAPAction='"urn:pars-ws:learner:v1/GetActivity"',
        timeout=timeout,
    )


def ok(response: requests.Response) -> bool:
    return response.status_code == 200 and b"An Other is an Other" in response.content


def auth_failed(response: requests.Response) -> bool:
    fault = fault_of(response)
    return (
        response.status_code == 500
        and fault is not None
        and fault.code == "Client.Authentication"
        and fault.text.startswith("Authentication failed.")
    )


def everywhere(pair: Pair, user: str, password: str, calls: int = 8) -> list[requests.Response]:
    """`calls` requests to each server, two at a time so both workers of each take some."""
    jobs = [server for server in pair.both() for _ in range(calls)]
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda server: call(server, user, password), jobs))


def credential_state(pair: Pair, user: str):
    c = t.credentials
    with pair.services.engine.begin() as conn:
        return conn.execute(select(c.c.failed_logins, c.c.locked_until).where(c.c.username == user)).one()


# -- constant time ---------------------------------------------------------------------------------


def test_cached_secret_is_compared_in_constant_time(pair, monkeypatch):
    """The verified-credential cache holds an HMAC of the secret and compares it with
    hmac.compare_digest; argon2 (constant time itself) runs on every miss."""
    seen = []
    real = auth_module.hmac.compare_digest

    def spy(a, b):
        seen.append((type(a), type(b)))
        return real(a, b)

    verifies = []
    real_verify = auth_module.Authenticator._verify
    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    monkeypatch.setattr(
        auth_module.Authenticator, "_verify", staticmethod(lambda h, p: verifies.append(1) or real_verify(h, p))
    )
    authenticator = pair.services.auth
    secret = USERS["inprocess"]
    assert authenticator.authenticate("inprocess", secret).username == "inprocess"
    assert len(verifies) == 1 and seen == []  # a miss: argon2, then cached
    assert authenticator.authenticate("inprocess", secret).username == "inprocess"
    assert len(verifies) == 1 and seen == [(bytes, bytes)]  # a hit: compare_digest, no argon2
    with pytest.raises(AuthenticationFailed):
        authenticator.authenticate("inprocess", secret + "x")
    assert len(verifies) == 2 and len(seen) == 2  # compared (unequal), then argon2 said no
    # Nothing in the cache is the secret itself.
    for digest, _ in authenticator._verified.values():
        assert secret.encode() not in digest and len(digest) == 32


def test_every_refusal_does_the_same_work(pair, monkeypatch):
    """An unknown user, a wrong password and a locked credential each cost one argon2 verification
    and one failure-count statement, so the answer time does not tell them apart (bench/refusals.py
    measures it over the wire)."""
    from pars_ws.adapters.account_store import AccountRepository

    work = []
    real_verify = auth_module.Authenticator._verify
    real_count = AccountRepository.count_failure
    monkeypatch.setattr(
        auth_module.Authenticator, "_verify", staticmethod(lambda h, p: work.append("argon2") or real_verify(h, p))
    )
    monkeypatch.setattr(
        AccountRepository, "count_failure", lambda self, *args: work.append("count") or real_count(self, *args)
    )
    authenticator, user = pair.services.auth, "timing"
    for username, password in [("nobody-at-all", "wrong-password"), (user, "wrong-password")]:
        work.clear()
        with pytest.raises(AuthenticationFailed):
            authenticator.authenticate(username, password)
        assert work == ["argon2", "count"], username
    for _ in range(MAX_FAILURES - 1):  # the credential is locked at MAX_FAILURES failures in a row
        with pytest.raises(AuthenticationFailed):
            authenticator.authenticate(user, "wrong-password")
    assert credential_state(pair, user).locked_until is not None
    work.clear()
    with pytest.raises(AuthenticationFailed):  # locked: the right secret costs what a wrong one does
        authenticator.authenticate(user, USERS[user])
    assert work == ["argon2", "count"]
    with pair.services.store.transaction() as uow:
        uow.accounts.reset_failures(user)


# -- WS-Security UsernameToken ------------------------------------------------------------------------


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def token(created: dt.datetime | None = None, **kw) -> str:
    return wsse_header(SANDBOX_USER, SANDBOX_PASSWORD, created=created or now_utc(), **kw)


def security_fault(response: requests.Response, words: str) -> bool:
    fault = fault_of(response)
    return response.status_code == 500 and fault is not None and fault.code == "Client.Security" and words in fault.text


def test_password_text_with_nonce_and_created(pair):
    header = token()
    assert ok(call(pair.a, "", "", header))
    # The replay, in another gunicorn master's process, and in the first one again.
    assert security_fault(call(pair.b, "", "", header), "nonce was already used")
    assert security_fault(call(pair.a, "", "", header), "nonce was already used")
    # A Nonce alone is remembered too; no Nonce and no Created is plain PasswordText.
    alone = wsse_header(SANDBOX_USER, SANDBOX_PASSWORD)
    assert ok(call(pair.b, "", "", alone))
    assert security_fault(call(pair.a, "", "", alone), "nonce was already used")
    plain = wsse_header(SANDBOX_USER, SANDBOX_PASSWORD, nonce=None)
    assert ok(call(pair.a, "", "", plain)) and ok(call(pair.b, "", "", plain))


def test_concurrent_replays_in_two_servers_let_exactly_one_through(pair):
    for _ in range(3):
        header = token()
        barrier = threading.Barrier(8)

        def race(server, barrier=barrier, header=header):
            barrier.wait()
            return call(server, "", "", header)

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(race, [pair.a, pair.b] * 4))
        assert sum(ok(r) for r in responses) == 1
        assert sum(security_fault(r, "nonce was already used") for r in responses) == 7


def test_created_must_be_within_five_minutes(pair):
    for skew in (dt.timedelta(minutes=-4, seconds=-30), dt.timedelta(minutes=4, seconds=30)):
        assert ok(call(pair.a, "", "", token(now_utc() + skew)))
    for skew in (
        dt.timedelta(minutes=-5, seconds=-30),
        dt.timedelta(minutes=5, seconds=30),
        dt.timedelta(days=-400),
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
    ):
        created = skew if isinstance(skew, str) else now_utc() + skew
        response = call(pair.a, "", "", wsse_header(SANDBOX_USER, SANDBOX_PASSWORD, created=created))
        assert security_fault(response, "outside the 5-minute window"), response.text[:400]
    for bad in ("yesterday", "", "2026-13-45T00:00:00Z"):
        response = call(pair.b, "", "", wsse_header(SANDBOX_USER, SANDBOX_PASSWORD, created=bad))
        assert security_fault(response, "wsu:Created is not a valid timestamp"), response.text[:400]


def test_password_digest_is_refused_with_a_clear_fault(pair):
    response = call(pair.a, "", "", token(digest=True))
    assert security_fault(response, "PasswordDigest is not supported")
    assert "PasswordText" in fault_of(response).text
    digest = zeep.Client(pair.a.wsdl_url, wsse=UsernameToken(SANDBOX_USER, SANDBOX_PASSWORD, use_digest=True))
    with pytest.raises(Fault) as exc:
        digest.service.GetActivity(ProviderId=PROVIDER_ID, ActivityID="200930149")
    assert exc.value.code.endswith("Client.Security") and "PasswordDigest" in exc.value.message


def test_wrong_password_in_a_token_is_an_authentication_fault(pair):
    header = wsse_header(SANDBOX_USER, "not-the-password", created=now_utc())
    assert auth_failed(call(pair.a, "", "", header))


# -- failed-login throttling -------------------------------------------------------------------------


def test_repeated_failures_lock_the_credential_in_every_process(pair):
    user, secret = "throttle", USERS["throttle"]
    assert ok(call(pair.a, user, secret))
    # Failures are counted across both servers; a success in between resets the count.
    assert auth_failed(call(pair.a, user, "guess-1"))
    assert auth_failed(call(pair.b, user, "guess-2"))
    assert ok(call(pair.b, user, secret))
    assert credential_state(pair, user).failed_logins == 0
    for i, server in enumerate((pair.a, pair.b, pair.a)):
        assert auth_failed(call(server, user, f"guess-{i}"))
    locked_at = time.monotonic()
    state = credential_state(pair, user)
    assert state.locked_until is not None and state.failed_logins == 0
    # Locked: the right password gets exactly the wrong password's answer, in every process,
    # over SOAP and over the HTTP API's Basic auth alike.
    for response in everywhere(pair, user, secret, calls=2):
        assert auth_failed(response), response.text[:300]
    assert requests.get(pair.b.base_url + "/api/batches", auth=(user, secret), timeout=30).status_code == 401
    # Tries while locked do not extend the lock; after the cool-down the right password works.
    time.sleep(max(0.0, LOCKOUT_SECONDS + 0.3 - (time.monotonic() - locked_at)))
    assert ok(call(pair.b, user, secret))
    assert requests.get(pair.a.base_url + "/api/batches", auth=(user, secret), timeout=30).status_code == 200
    state = credential_state(pair, user)
    assert (state.failed_logins, state.locked_until) == (0, None)


def test_basic_auth_failures_count_too_and_unlock_lifts_the_lock(pair):
    user, secret = "basic", USERS["basic"]
    for i in range(MAX_FAILURES):
        assert requests.get(pair.a.base_url + "/api/batches", auth=(user, f"guess-{i}"), timeout=30).status_code == 401
    assert auth_failed(call(pair.b, user, secret))
    run_cli(pair.a.env, "credentials", "unlock", user)
    assert ok(call(pair.b, user, secret)) and ok(call(pair.a, user, secret))


# -- disable and rotate, at once everywhere --------------------------------------------------------


def test_rotation_takes_effect_at_once_in_every_process(pair):
    user, old, new = "rotate", USERS["rotate"], "rotate-secret-2"
    assert all(ok(r) for r in everywhere(pair, user, old))  # cached in every worker now
    run_cli(pair.a.env, "credentials", "rotate", user, "--password", new)
    responses = everywhere(pair, user, old, calls=4)
    assert all(auth_failed(r) for r in responses)
    run_cli(pair.a.env, "credentials", "unlock", user)  # the old secret's tries locked it
    assert all(ok(r) for r in everywhere(pair, user, new, calls=1))


def test_disabling_takes_effect_at_once_in_every_process(pair):
    user, secret = "disable", USERS["disable"]
    assert all(ok(r) for r in everywhere(pair, user, secret))
    run_cli(pair.b.env, "credentials", "disable", user)
    assert all(auth_failed(r) for r in everywhere(pair, user, secret, calls=1))
    run_cli(pair.b.env, "credentials", "disable", user, "--enable")
    run_cli(pair.b.env, "credentials", "unlock", user)
    assert all(ok(r) for r in everywhere(pair, user, secret))
