"""The mail outbox (SQLAlchemy 2 Core), inside a unit of work: mail is queued in the same
transaction as the change it reports, and sent afterwards."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert, select, update

from . import tables as t

_M = t.mail_outbox


class OutboxStore:
    def __init__(self, conn: Connection):
        self.conn = conn

    def queue(
        self,
        *,
        environment: str,
        provider_pk: int | None,
        kind: str,
        recipient: str,
        subject: str,
        body: str,
        now: dt.datetime,
    ) -> None:
        self.conn.execute(
            insert(_M).values(
                environment=environment,
                provider_pk=provider_pk,
                kind=kind,
                recipient=recipient,
                subject=subject,
                body=body,
                created_at=now,
            )
        )

    def pending(self, limit: int, max_attempts: int) -> list:
        return self.conn.execute(
            select(_M).where(_M.c.sent_at.is_(None), _M.c.attempts < max_attempts).order_by(_M.c.id).limit(limit)
        ).all()

    def claim(self, mail_id: int, attempts: int) -> bool:
        """Count an attempt, only if no other sender has meanwhile: two senders never send one message."""
        return (
            self.conn.execute(
                update(_M)
                .where(_M.c.id == mail_id, _M.c.sent_at.is_(None), _M.c.attempts == attempts)
                .values(attempts=attempts + 1)
            ).rowcount
            == 1
        )

    def failed(self, mail_id: int, error: str) -> None:
        self.conn.execute(update(_M).where(_M.c.id == mail_id).values(last_error=error[:1000]))

    def sent(self, mail_id: int, now: dt.datetime) -> None:
        self.conn.execute(update(_M).where(_M.c.id == mail_id).values(sent_at=now))
