"""Storage of Opioid Analgesic REMS participants (SQLAlchemy 2 Core), inside a caller's transaction.
Reads by batch come after the caller has found the batch as its provider's (batch_store.batch)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Connection, insert, select

from ..domain.rems import Participant
from . import tables as t


class RemsStore:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(
        self,
        environment: str,
        provider_pk: int,
        batch_pk: int,
        participants: list[tuple[int, Participant]],
        now: dt.datetime,
    ) -> None:
        """(row in the batch file, participant) per participant accepted."""
        rows = [
            dict(
                dataclasses.asdict(p),
                environment=environment,
                provider_pk=provider_pk,
                batch_pk=batch_pk,
                batch_row=row,
                submitted_at=now,
            )
            for row, p in participants
        ]
        if rows:  # an empty list would insert one row of defaults
            self.conn.execute(insert(t.rems_participants), rows)

    def participates(self, environment: str, provider_pk: int) -> bool:
        """Whether the provider has an Opioid Analgesic REMS activity."""
        a = t.activities
        return (
            self.conn.execute(
                select(a.c.id).where(a.c.environment == environment, a.c.provider_pk == provider_pk, a.c.rems).limit(1)
            ).first()
            is not None
        )

    def of_batch(self, batch_pk: int) -> list:
        p = t.rems_participants
        return self.conn.execute(select(p).where(p.c.batch_pk == batch_pk).order_by(p.c.batch_row)).all()
