"""Log-ins (web-service credentials, and people's web users for the pages): argon2 hashes at rest, a short-lived verified-credential cache in front, and
failed-login throttling per credential.

Verifying argon2 costs tens of milliseconds by design; PARS sends the credential with every call,
so a verified (credential, secret) pair is remembered for a few minutes as an HMAC of the
presented secret (never the secret itself), compared in constant time. The credential row is read on every call, so
disabling or rotating takes effect at once in every process (the HMAC covers the stored hash).

Throttling: after `max_failures` failed logins in a row a credential is refused for
`lockout_seconds`, even with the right secret, with the same answer as a wrong secret. A success
resets the count. The state lives in the credentials table, so every process shares it.

Every refusal costs the same: an argon2 verification (against a dummy hash when the user is
unknown or locked) and the same UPDATE statement (which matches no row when the user is unknown
or locked), so the answer time does not tell whether a user exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..adapters.account_store import CREDENTIAL
from ..adapters.clock import as_utc

ENVIRONMENTS = ("sandbox", "production")

_hasher = PasswordHasher()
# Verified against when the user is unknown or locked, so every refusal costs the same.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(24))
_CACHE_BOUND = 10_000


class AuthenticationFailed(Exception):
    """Bad credentials. Deliberately says nothing about which part was wrong."""


@dataclass(frozen=True)
class Account:
    credential_pk: int
    username: str
    environment: str
    provider_pk: int
    provider_id: str
    provider_name: str
    domain: str
    email: str
    person: str | None = None  # a web user's name; None for a web-service credential


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def unlock(store, username: str) -> bool:
    """Lift a throttling lock and forget failed logins (an administrator's `credentials unlock`)."""
    with store.transaction() as uow:
        return uow.accounts.reset_failures(username)


def _account(row, kind: str) -> Account:
    # credential_pk names the credential a batch came through; a web user's upload came through none.
    return Account(
        credential_pk=row.id if kind == CREDENTIAL else 0,
        username=row.username,
        environment=row.environment,
        provider_pk=row.provider_pk,
        provider_id=row.provider_id,
        provider_name=row.provider_name,
        domain=row.domain,
        email=row.email,
        person=row.person,
    )


def _barred(row, provider_id: str | None) -> bool:
    """Refused whatever the secret: disabled, or asked for as another provider's."""
    return row.disabled or bool(provider_id and provider_id.strip() != row.provider_id)


def _failures_to_forget(row) -> bool:
    return bool(row.failed_logins or row.locked_until is not None)


class Authenticator:
    """Checks one kind of log-in: web-service credentials (CREDENTIAL) or web users (WEB_USER)."""

    def __init__(
        self,
        store,
        secret_key: bytes,
        cache_seconds: int = 300,
        *,
        max_failures: int = 10,
        lockout_seconds: int = 300,
        kind: str = CREDENTIAL,
    ):
        self.kind = kind
        self.store = store
        self.key = secret_key
        self.cache_seconds = cache_seconds
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        # credential pk -> (digest of the verified secret, monotonic expiry)
        self._verified: dict[int, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def _digest(self, row, password: str) -> bytes:
        # Bound to the stored hash: a rotated secret no longer matches.
        return hmac.digest(
            self.key,
            f"pars-ws verified secret\0{self.kind}\0{row.id}\0{row.secret_hash}\0{password}".encode(),
            "sha256",
        )

    def _cached(self, row, digest: bytes) -> bool:
        with self._lock:
            entry = self._verified.get(row.id)
        return entry is not None and entry[1] >= time.monotonic() and hmac.compare_digest(entry[0], digest)

    def _remember(self, row, digest: bytes) -> None:
        with self._lock:
            if len(self._verified) >= _CACHE_BOUND:
                self._verified.clear()
            self._verified[row.id] = (digest, time.monotonic() + self.cache_seconds)

    def verified(
        self, uow, username: str | None, password: str | None, provider_id: str | None = None
    ) -> Account | None:
        """The account, read in the caller's unit of work, when authenticate() would succeed from the
        cache alone with nothing to write (no failed logins to forget); else None: call authenticate()."""
        username = (username or "").strip()
        row = uow.accounts.login(self.kind, username) if username else None
        if (
            row is None
            or _barred(row, provider_id)
            or _failures_to_forget(row)
            or not self._cached(row, self._digest(row, password or ""))
        ):
            return None
        return _account(row, self.kind)

    def authenticate(self, username: str | None, password: str | None, provider_id: str | None = None) -> Account:
        username = (username or "").strip()
        password = password or ""
        now = dt.datetime.now(dt.timezone.utc)  # wall time, never the injectable business clock
        row = self._login(username) if username else None
        if row is None:
            self._verify(_DUMMY_HASH, password)
            self._failed(username, now)
            raise AuthenticationFailed()
        locked_until = as_utc(row.locked_until)
        if locked_until is not None and locked_until > now:
            # Locked: refused whatever the secret, at the cost of a wrong one.
            self._verify(_DUMMY_HASH, password)
            self._failed(username, now)
            raise AuthenticationFailed()
        digest = self._digest(row, password)
        verified = self._cached(row, digest)
        if not verified:
            verified = self._verify(row.secret_hash, password)
            if verified:
                self._remember(row, digest)
        if not verified or _barred(row, provider_id):
            self._failed(username, now)
            raise AuthenticationFailed()
        if _failures_to_forget(row):
            self._succeeded(row.username)
        return _account(row, self.kind)

    # -- web sessions: the cookie holds the user name and a proof bound to the credential's stored
    # hash (never the secret), so rotating the secret or disabling the credential ends every session.
    def _session_digest(self, row) -> str:
        return hmac.new(
            self.key, f"pars-ws web session\0{self.kind}\0{row.id}\0{row.secret_hash}".encode(), hashlib.sha256
        ).hexdigest()

    def session_proof(self, account: Account) -> str:
        """The proof a web session keeps, for an account authenticate() has just returned."""
        row = self._login(account.username)
        if row is None:
            raise AuthenticationFailed()
        return self._session_digest(row)

    def resume(self, username: str, proof: str) -> Account | None:
        """The account of a web session, or None once its proof no longer holds."""
        row = self._login(username)
        if row is None or row.disabled or not hmac.compare_digest(proof, self._session_digest(row)):
            return None
        return _account(row, self.kind)

    def _login(self, username: str):
        with self.store.transaction(write=False) as uow:
            return uow.accounts.login(self.kind, username)

    def _failed(self, username: str, now: dt.datetime) -> None:
        """Count a failure; the max_failures-th in a row locks the credential (see count_failure)."""
        if self.max_failures <= 0 or not username:
            return
        with self.store.transaction() as uow:
            uow.accounts.count_failure(
                username, now, self.max_failures, dt.timedelta(seconds=self.lockout_seconds), self.kind
            )

    def _succeeded(self, username: str) -> None:
        with self.store.transaction() as uow:
            uow.accounts.reset_failures(username, self.kind)

    @staticmethod
    def _verify(secret_hash: str, password: str) -> bool:
        try:
            return _hasher.verify(secret_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
