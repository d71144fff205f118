"""Providers, credentials and WS-Security nonces (SQLAlchemy 2 Core), inside a unit of work.

Not environment-scoped: the credential decides the environment.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, bindparam, case, delete, insert, or_, select, update

from . import tables as t

_C, _P = t.credentials, t.providers

_CREDENTIAL = (
    select(_C.c.id, _C.c.environment, _C.c.username, _C.c.secret_hash, _C.c.disabled, _C.c.failed_logins,
           _C.c.locked_until, _P.c.id.label("provider_pk"), _P.c.provider_id, _P.c.name.label("provider_name"),
           _P.c.domain, _P.c.email)
    .join(_P, _P.c.id == _C.c.provider_pk).where(_C.c.username == bindparam("username"))
)


class AccountRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    # -- providers ------------------------------------------------------------------------------
    def provider(self, provider_id: str):
        return self.conn.execute(select(_P).where(_P.c.provider_id == provider_id)).first()

    def provider_by_pk(self, pk: int):
        return self.conn.execute(select(_P).where(_P.c.id == pk)).first()

    def ensure_provider(self, provider_id: str, name: str, domain: str, email: str, contact: str | None = None) -> int:
        row = self.provider(provider_id)
        if row is not None:
            return row.id
        return self.conn.execute(insert(_P).values(
            provider_id=provider_id, name=name, domain=domain, email=email, contact=contact,
        ).returning(_P.c.id)).scalar_one()

    # -- credentials ----------------------------------------------------------------------------
    def credential(self, username: str):
        """The credential row (with its throttling state) joined with its provider, or None."""
        return self.conn.execute(_CREDENTIAL, {"username": username}).first()

    def credentials(self):
        return self.conn.execute(
            select(_C.c.username, _C.c.environment, _C.c.disabled, _C.c.created_at, _C.c.rotated_at,
                   _P.c.provider_id)
            .join(_P, _P.c.id == _C.c.provider_pk).order_by(_P.c.provider_id, _C.c.username)).all()

    def any_credential(self) -> bool:
        return self.conn.execute(select(_C.c.id).limit(1)).first() is not None

    def add_credential(self, provider_pk: int, environment: str, username: str, secret_hash: str,
                       now: dt.datetime) -> None:
        self.conn.execute(insert(_C).values(
            provider_pk=provider_pk, environment=environment, username=username, secret_hash=secret_hash,
            disabled=False, created_at=now))

    def set_credential(self, username: str, now: dt.datetime, *, secret_hash: str | None = None,
                       disabled: bool | None = None) -> bool:
        values: dict = {}
        if secret_hash is not None:
            values.update(secret_hash=secret_hash, rotated_at=now)
        if disabled is not None:
            values["disabled"] = disabled
        return self.conn.execute(update(_C).where(_C.c.username == username).values(**values)).rowcount == 1

    def reset_failures(self, username: str) -> bool:
        """Forget a credential's failed logins and lift its lock; False for an unknown user."""
        return self.conn.execute(update(_C).where(_C.c.username == username)
                                 .values(failed_logins=0, locked_until=None)).rowcount == 1

    def count_failure(self, username: str, now: dt.datetime, max_failures: int, lockout: dt.timedelta) -> None:
        """One failed login; the max_failures-th in a row locks the credential until now + lockout.

        One statement: it matches no row for an unknown user or a locked credential (so a lock is not
        extended by further tries), and concurrent failures in other processes are all counted.
        """
        reached = _C.c.failed_logins + 1 >= max_failures
        self.conn.execute(
            update(_C)
            .where(_C.c.username == username, or_(_C.c.locked_until.is_(None), _C.c.locked_until <= now))
            .values(failed_logins=case((reached, 0), else_=_C.c.failed_logins + 1),
                    locked_until=case((reached, now + lockout), else_=None)))

    # -- WS-Security nonces ---------------------------------------------------------------------
    def remember_nonce(self, nonce_hash: str, now: dt.datetime) -> None:
        """IntegrityError when the nonce was seen already (the primary key decides, across processes)."""
        self.conn.execute(insert(t.ws_nonces).values(nonce_hash=nonce_hash, seen_at=now))

    def forget_nonces(self, before: dt.datetime) -> None:
        self.conn.execute(delete(t.ws_nonces).where(t.ws_nonces.c.seen_at < before))
