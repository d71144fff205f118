"""Saving learner activity, reading its status, and matching learners: one unit of work per call."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from dataclasses import replace

from ..adapters.audit import AuditCopy
from ..adapters.clock import Clock
from ..adapters.store import Store, UnitOfWork
from ..domain.activities import Activity, ActivityRefused
from ..domain.catalogue import Catalogue
from ..domain.engine import Judgement, credit_ids_taken, judge, match
from ..domain.errors import message
from ..domain.records import ReportedRecord, Source, StoredRecord
from ..domain.rules import ADD
from .auth import Account, Authenticator
from .faults import hold_for


def new_credit_id(account: Account) -> str:
    return f"ccid:{account.domain}:{secrets.token_hex(8)}"


class LearnerService:
    def __init__(self, store: Store, catalogue: Catalogue, clock: Clock, auth: Authenticator):
        self.store = store
        self.catalogue = catalogue
        self.clock = clock
        self.auth = auth

    def save(
        self,
        account: Account,
        records: Sequence[ReportedRecord],
        *,
        source: Source,
        raw: bytes | None,
        correlation_id: str,
        batch_pk: int | None = None,
        sandbox_fault: str | None = None,
        in_same_transaction: Callable[[UnitOfWork, list[Judgement]], None] | None = None,
    ) -> list[Judgement]:
        """Judge and store one request or batch chunk in one unit of work, which reads what saves do not
        change before it starts writing (Store.reads_then_writes).

        `raw` is kept for audit (None when the caller keeps the original, as batches do);
        `sandbox_fault` is the request's X-PARS-Sandbox-Fault, for its hold (service.faults);
        `in_same_transaction` lets a caller record its own progress atomically with the records.
        """
        copy = None if raw is None else AuditCopy(raw, source, correlation_id)
        with self.store.reads_then_writes() as uow:
            judgements = self._save_in(uow, account, records, source, copy, batch_pk, sandbox_fault)
            if in_same_transaction is not None:
                in_same_transaction(uow, judgements)
        return judgements

    def save_signed_in(
        self,
        username: str | None,
        password: str | None,
        provider_id: str | None,
        read_records: Callable[[Account], Sequence[ReportedRecord]],
        *,
        source: Source,
        raw: bytes,
        correlation_id: str,
        sandbox_fault: str | None = None,
    ) -> list[Judgement]:
        """Sign in and save (SaveLearnerActivity) in one unit of work when the credential was verified
        lately (an LMS's usual call), the sign-in read with what saves do not change, before the unit
        of work starts writing (Store.reads_then_writes); otherwise the full sign-in (argon2) runs
        first, outside it. `read_records(account)` runs once signed in: an unknown caller learns
        nothing about its document (AuthenticationFailed)."""
        copy = AuditCopy(raw, source, correlation_id)
        with self.store.reads_then_writes() as uow:
            account = self.auth.verified(uow, username, password, provider_id)
            if account is not None:
                return self._save_in(uow, account, read_records(account), source, copy, sandbox_fault=sandbox_fault)
        account = self.auth.authenticate(username, password, provider_id)
        with self.store.reads_then_writes() as uow:
            return self._save_in(uow, account, read_records(account), source, copy, sandbox_fault=sandbox_fault)

    def _save_in(
        self,
        uow: UnitOfWork,
        account: Account,
        records: Sequence[ReportedRecord],
        source: Source,
        copy: AuditCopy | None,
        batch_pk: int | None = None,
        sandbox_fault: str | None = None,
    ) -> list[Judgement]:
        if not source.carries_credit_id:
            records = [
                replace(r, credit_id=new_credit_id(account))
                if (r.action or "").strip().lower() == ADD and not r.credit_id
                else r
                for r in records
            ]
        reference = uow.learners.reference_for(account.environment, account.provider_pk, records, self.catalogue)
        uow.start_writing()
        now = self.clock.now()
        lookups = uow.learners.lookups_for(account.environment, account.provider_pk, records, self.catalogue, reference)
        judgements = judge(
            records, today=self.clock.today(), now=now, catalogue=self.catalogue, lookups=lookups, source=source
        )
        hold = hold_for(account, sandbox_fault)
        taken = uow.learners.apply(
            account.environment,
            account.provider_pk,
            judgements,
            now,
            copy,
            batch_pk,
            review_after=now + dt.timedelta(seconds=hold) if hold else None,
        )
        credit_ids_taken(judgements, taken)
        return judgements

    def status_by_credit_id(self, account: Account, credit_id: str) -> list[StoredRecord]:
        with self.store.transaction(write=False) as uow:
            return uow.learners.records_by_credit_id(account.environment, account.provider_pk, credit_id.strip())

    def status_by_learner(
        self, account: Account, activity_id: str, learner_id: str, completion_date: dt.date, dob=None
    ) -> list[StoredRecord]:
        with self.store.transaction(write=False) as uow:
            found = uow.learners.records_by_learner(
                account.environment, account.provider_pk, activity_id.strip(), learner_id, completion_date
            )
        if dob is not None:
            found = [r for r in found if r.born_on(dob)]
        return found

    def match_learner(self, account: Account, record: ReportedRecord) -> list[int]:
        with self.store.transaction(write=False) as uow:
            reference = uow.learners.reference_for(account.environment, account.provider_pk, [record], self.catalogue)
            lookups = uow.learners.lookups_for(
                account.environment, account.provider_pk, [record], self.catalogue, reference
            )
        return match(record, today=self.clock.today(), catalogue=self.catalogue, lookups=lookups)


class ActivityService:
    def __init__(self, store: Store, catalogue: Catalogue, clock: Clock):
        self.store = store
        self.catalogue = catalogue
        self.clock = clock

    def save(self, account: Account, activity: Activity) -> Activity:
        """Store an activity (ActivityRefused: see Activity.registered_with; 690 for another provider's)."""
        activity = activity.registered_with(self.catalogue)
        with self.store.transaction() as uow:
            activity_id = activity.activity_id or uow.learners.next_activity_id(account.environment)
            owner = uow.learners.activity_owner(account.environment, activity_id)
            if owner is not None and owner != account.provider_pk:
                raise ActivityRefused(690, message(690))
            # SaveActivity cannot say whether an activity is a REMS activity: a mark from the data stays.
            stored = uow.learners.activities(account.environment, account.provider_pk, [activity_id])
            saved = replace(activity, activity_id=activity_id, rems=activity.rems or any(a.rems for a in stored))
            uow.learners.save_activity(account.environment, account.provider_pk, saved, self.clock.now())
        return saved

    def get(self, account: Account, activity_id: str) -> Activity | None:
        with self.store.transaction(write=False) as uow:
            found = uow.learners.activities(account.environment, account.provider_pk, [activity_id.strip()])
        return found[0] if found else None
