"""Mail about batches and rejections goes through a transactional outbox: queued in the same
transaction as the change it reports (uow.outbox.queue), delivered afterwards, retried until it goes."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10


def deliver_pending(store, mailer, clock, limit: int = 100) -> int:
    """Send queued mail; returns how many went out. Safe to run in several processes at once."""
    sent = 0
    with store.transaction(write=False) as uow:
        pending = uow.outbox.pending(limit, MAX_ATTEMPTS)
    for mail in pending:
        with store.transaction() as uow:
            claimed = uow.outbox.claim(mail.id, mail.attempts)
        if not claimed:
            continue
        try:
            mailer.send(mail.recipient, mail.subject, mail.body)
        except Exception as exc:  # noqa: BLE001 - retried on the next pass
            log.warning(
                "mail not sent: %s", exc, extra={"event": "mail_failed", "mail": mail.id, "recipient": mail.recipient}
            )
            with store.transaction() as uow:
                uow.outbox.failed(mail.id, str(exc))
            continue
        with store.transaction() as uow:
            uow.outbox.sent(mail.id, clock.now())
        sent += 1
    return sent
