"""Nonce cache for WS-Security replay protection, kept in the database so every process shares it."""
from __future__ import annotations

import datetime as dt
import hashlib
import random

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from . import tables as t

KEEP = dt.timedelta(minutes=10)  # longer than the 5-minute freshness window


class NonceCache:
    def __init__(self, store, clock):
        self.store = store
        self.clock = clock

    def first_use(self, nonce: str, username: str) -> bool:
        key = hashlib.sha256(f"{username}\0{nonce}".encode()).hexdigest()
        now = self.clock.now()
        try:
            with self.store.transaction() as repo:
                repo.conn.execute(insert(t.ws_nonces).values(nonce_hash=key, seen_at=now))
                if random.random() < 0.01:
                    repo.conn.execute(delete(t.ws_nonces).where(t.ws_nonces.c.seen_at < now - KEEP))
        except IntegrityError:
            return False
        return True
