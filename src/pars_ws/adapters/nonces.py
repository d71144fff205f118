"""Nonce cache for WS-Security replay protection, kept in the database so every process shares it.

The primary key decides: of two processes seeing the same nonce at the same moment, exactly one
inserts it; the other gets an IntegrityError and refuses the request as a replay.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random

from sqlalchemy.exc import IntegrityError

# Longer than a token stays fresh: wsu:Created may be up to the window ahead of the clock and is
# accepted until the window past it, so a nonce must be kept for at least twice the window
# (wssecurity keeps it for the longer of this and twice the window plus a minute).
KEEP = dt.timedelta(minutes=15)


class NonceCache:
    def __init__(self, store, clock):
        self.store = store
        self.clock = clock

    def first_use(self, nonce: str, username: str, keep: dt.timedelta = KEEP) -> bool:
        """Record a nonce; False when it was seen already. Rows older than `keep` are pruned now and
        then (1 call in 100), so a nonce may be refused for longer than `keep`, never for less."""
        key = hashlib.sha256(f"{username}\0{nonce}".encode()).hexdigest()
        now = self.clock.now()
        try:
            with self.store.transaction() as uow:
                uow.accounts.remember_nonce(key, now)
                if random.random() < 0.01:
                    uow.accounts.forget_nonces(now - keep)
        except IntegrityError:
            return False
        return True
