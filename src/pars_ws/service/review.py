"""Board review: Submitted records become Accepted or Rejected, as the reviewing boards answer.

The answer comes from the board registry: a learner whose registry entry carries
`review_reject_code` is rejected with that code (the sandbox's test learners; a registry import
may set it in production too); every other learner's record is accepted.

When records are due: in the sandbox `review_delay_seconds` after submission, or at once on
demand, but never before the end of a hold (X-PARS-Sandbox-Fault: hold=N); in production at each tick of a fixed schedule (`review_interval_seconds` counted from
the Unix epoch), so every worker on every host agrees on the schedule without shared state.

Each run claims a chunk of records (PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent workers
take disjoint rows; SQLite: the write lock taken at BEGIN), changes their status, writes one
record_events row per change and queues one rejection e-mail per provider, all in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from ..adapters.review_store import due
from ..domain.errors import message
from ..domain.records import Status
from ..domain.review import outcome, reviewing_boards
from .auth import ENVIRONMENTS, Account
from .sandbox import SANDBOX

CHUNK = 1000  # records per run (and so at most per rejection e-mail)


class ReviewRefused(Exception):
    """On-demand review asked where it is not offered."""


@dataclass(frozen=True)
class ReviewSummary:
    environment: str
    reviewed: int = 0
    accepted: int = 0
    rejected: int = 0
    emails: int = 0

    def __add__(self, other: ReviewSummary) -> ReviewSummary:
        return ReviewSummary(
            self.environment,
            self.reviewed + other.reviewed,
            self.accepted + other.accepted,
            self.rejected + other.rejected,
            self.emails + other.emails,
        )

    def as_dict(self) -> dict:
        return {
            "environment": self.environment,
            "reviewed": self.reviewed,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "emails": self.emails,
        }


def due_cutoff(environment: str, now: dt.datetime, settings) -> dt.datetime:
    """Records submitted at or before this moment are due for review."""
    if environment == SANDBOX:
        return now - dt.timedelta(seconds=settings.review_delay_seconds)
    interval = max(1, settings.review_interval_seconds)
    stamp = now.timestamp()
    return dt.datetime.fromtimestamp(stamp - stamp % interval, tz=dt.timezone.utc)


def run_due(services) -> int:
    """The worker's job: review one chunk of due records per environment; returns how many."""
    now = services.clock.now()
    return sum(
        review(services, environment, submitted_before=due_cutoff(environment, now, services.settings)).reviewed
        for environment in ENVIRONMENTS
    )


def run_now(services, target: Account | str) -> ReviewSummary:
    """Review every Submitted record now: a provider's sandbox records (an integrator asking), or a
    whole environment (an operator at the command line)."""
    if isinstance(target, Account):
        if target.environment != SANDBOX:
            raise ReviewRefused(
                "On-demand review is offered in the sandbox only; production records are "
                "reviewed on the boards' schedule."
            )
        environment, provider_pk = target.environment, target.provider_pk
    else:
        environment, provider_pk = target, None
    # Records submitted while this runs wait for the next run: the loop always ends.
    until = services.clock.now()
    total = ReviewSummary(environment)
    while True:
        done = review(services, environment, submitted_before=until, provider_pk=provider_pk)
        total += done
        if done.reviewed < CHUNK:
            return total


def review(
    services, environment: str, *, submitted_before: dt.datetime, provider_pk: int | None = None
) -> ReviewSummary:
    """Review one chunk of Submitted records in one transaction."""
    condition = due(
        environment, reviewing_boards(services.catalogue), submitted_before, services.clock.now(), provider_pk
    )
    # Look before taking the write lock: an idle worker asks every poll and usually finds nothing.
    with services.store.transaction(write=False) as uow:
        if not uow.review.any_due(condition):
            return ReviewSummary(environment)
    with services.store.transaction() as uow:
        now = services.clock.now()  # after the lock is ours, so status times follow commit order
        rows = uow.review.take_due(condition, CHUNK)
        if not rows:
            return ReviewSummary(environment)
        by_outcome: dict[tuple[Status, int | None], list[int]] = defaultdict(list)
        rejected_by_provider: dict[int, list] = defaultdict(list)
        for row in rows:
            status, code = outcome(row.review_reject_code)
            by_outcome[(status, code)].append(row.id)
            if status == Status.REJECTED:
                rejected_by_provider[row.provider_pk].append((row, code))
        for (status, code), ids in by_outcome.items():
            uow.review.set_status(ids, status, code, now)
        for pk, rejected in rejected_by_provider.items():
            provider = uow.accounts.provider_by_pk(pk)
            subject, body = rejection_mail(environment, provider, rejected)
            uow.outbox.queue(
                environment=environment,
                provider_pk=pk,
                kind="rejections",
                recipient=provider.email,
                subject=subject,
                body=body,
                now=now,
            )
    rejected_count = sum(len(v) for v in rejected_by_provider.values())
    return ReviewSummary(environment, len(rows), len(rows) - rejected_count, rejected_count, len(rejected_by_provider))


def rejection_mail(environment: str, provider, rejected: list) -> tuple[str, str]:
    """Subject and body listing the rejected learners with their codes and the board's messages."""
    count = len(rejected)
    noun = "record was" if count == 1 else "records were"
    subject = f"PARS {environment}: {count} learner {noun} rejected by the board"
    lines = [
        f"{provider.name} (ACCME provider ID {provider.provider_id}), {environment} environment",
        "",
        f"The certifying board reviewed your learner records and rejected {count}:",
        "",
    ]
    for row, code in sorted(rejected, key=lambda item: (item[0].last_name.casefold(), item[0].first_name.casefold())):
        lines += [
            f"- {row.first_name} {row.last_name}, learner ID {row.learner_id or 'N/A'}, {row.board}, "
            f"activity {row.activity_id}, completed {row.completion_date:%m/%d/%Y}",
            f"  CreditID: {row.credit_id}",
            f"  Error {code}: {message(code)}",
        ]
    lines += [
        "",
        "A rejected record cannot be updated: submit a new record with the corrected information.",
        "A rejected record does not count toward the learner's points; you may delete it or leave it.",
    ]
    return subject, "\n".join(lines) + "\n"
