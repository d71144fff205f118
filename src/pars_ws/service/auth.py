"""Credentials: argon2 hashes at rest, a short-lived verified-credential cache in front.

Verifying argon2 costs tens of milliseconds by design; PARS sends the credential with every call,
so a verified (credential, secret) pair is remembered for a few minutes, keyed by an HMAC of the
presented secret. The credential row is read on every call, so disabling or rotating takes effect
at once in every process.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..adapters.store import AccountRepository

ENVIRONMENTS = ("sandbox", "production")

_hasher = PasswordHasher()
# Verified against when the user is unknown, so both paths cost the same.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(24))


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


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def new_secret() -> str:
    return secrets.token_urlsafe(24)


class Authenticator:
    def __init__(self, store, secret_key: bytes, cache_seconds: int = 300):
        self.store = store
        self.key = secret_key
        self.cache_seconds = cache_seconds
        self._verified: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def _cache_key(self, row, password: str) -> bytes:
        # Bound to the stored hash: a rotated secret no longer hits the cache.
        msg = f"{row.id}\0{row.secret_hash}\0{password}".encode()
        return hmac.new(self.key, msg, hashlib.sha256).digest()

    def authenticate(self, username: str | None, password: str | None, provider_id: str | None = None) -> Account:
        username = (username or "").strip()
        password = password or ""
        with self.store.transaction(write=False) as repo:
            row = AccountRepository(repo.conn).credential(username) if username else None
        if row is None:
            self._verify(_DUMMY_HASH, password)
            raise AuthenticationFailed()
        key = self._cache_key(row, password)
        now = time.monotonic()
        with self._lock:
            expires = self._verified.get(key)
        if expires is None or expires < now:
            if not self._verify(row.secret_hash, password):
                raise AuthenticationFailed()
            with self._lock:
                if len(self._verified) > 10_000:
                    self._verified.clear()
                self._verified[key] = now + self.cache_seconds
        if row.disabled or (provider_id and provider_id.strip() != row.provider_id):
            raise AuthenticationFailed()
        return Account(
            credential_pk=row.id, username=row.username, environment=row.environment,
            provider_pk=row.provider_pk, provider_id=row.provider_id, provider_name=row.provider_name,
            domain=row.domain, email=row.email,
        )

    @staticmethod
    def _verify(secret_hash: str, password: str) -> bool:
        try:
            return _hasher.verify(secret_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
