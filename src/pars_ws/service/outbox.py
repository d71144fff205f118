"""Mail about batches and rejections goes through a transactional outbox: queued in the same
transaction as the change it reports, delivered afterwards, retried until it goes."""
from __future__ import annotations

import logging

from sqlalchemy import insert, select, update

from ..adapters import tables as t

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10


def queue_mail(conn, *, environment: str, provider_pk: int | None, kind: str, recipient: str, subject: str,
               body: str, now) -> None:
    conn.execute(insert(t.mail_outbox).values(
        environment=environment, provider_pk=provider_pk, kind=kind, recipient=recipient, subject=subject,
        body=body, created_at=now))


def deliver_pending(store, mailer, clock, limit: int = 100) -> int:
    """Send queued mail; returns how many went out. Safe to run in several processes at once."""
    sent = 0
    with store.transaction(write=False) as repo:
        rows = repo.conn.execute(
            select(t.mail_outbox).where(t.mail_outbox.c.sent_at.is_(None), t.mail_outbox.c.attempts < MAX_ATTEMPTS)
            .order_by(t.mail_outbox.c.id).limit(limit)).all()
    for row in rows:
        with store.transaction() as repo:
            # Claim the row first, so two senders never send the same message.
            claimed = repo.conn.execute(
                update(t.mail_outbox).where(t.mail_outbox.c.id == row.id, t.mail_outbox.c.sent_at.is_(None),
                                            t.mail_outbox.c.attempts == row.attempts)
                .values(attempts=row.attempts + 1)).rowcount
        if not claimed:
            continue
        try:
            mailer.send(row.recipient, row.subject, row.body)
        except Exception as exc:  # noqa: BLE001 - retried on the next pass
            log.warning("mail %s to %s failed: %s", row.id, row.recipient, exc)
            with store.transaction() as repo:
                repo.conn.execute(update(t.mail_outbox).where(t.mail_outbox.c.id == row.id)
                                  .values(last_error=str(exc)[:1000]))
            continue
        with store.transaction() as repo:
            repo.conn.execute(update(t.mail_outbox).where(t.mail_outbox.c.id == row.id).values(sent_at=clock.now()))
        sent += 1
    return sent
