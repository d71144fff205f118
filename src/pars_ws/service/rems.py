"""Opioid Analgesic REMS participant reporting by batch (Step 2 "Submit Learners for Opioid
Analgesic REMS"): reading a file's participants, judging and storing a chunk of them, the error
report's rows and the participants a batch stored. The batch machinery (queue, claims, resume
points, mail) is batches.py's; this module is what differs for REMS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

from ..adapters.data_files import load_rems_values
from ..adapters.rems_files import read_rems_document, read_rems_template
from ..domain.errors import Code
from ..domain.rems import ParticipantJudgement, RemsValues, ReportedParticipant, as_found, judge_participant
from .auth import Account

BOARDS, REMS = "boards", "rems"
SUBMISSION_TYPES = (BOARDS, REMS)
FILE_TYPES = ("txt", "xml")  # REMS Participant Template (tab-delimited) or ActivityReport v2
MSG_FILE_TYPE = "OPIOID ANALGESIC REMS PARTICIPANTS ARE UPLOADED AS A TAB DELIMITED (.TXT) OR XML (.XML) FILE."
MSG_SUBMISSION_TYPE = "CHOOSE THE SUBMISSION TYPE: LICENSING OR SPECIALTY BOARD, OR OPIOID ANALGESIC REMS."
MSG_NOT_PARTICIPATING = (
    "YOUR ORGANIZATION HAS NO OPIOID ANALGESIC REMS ACTIVITY: ONLY PROVIDERS PARTICIPATING "
    "IN THE REMS PROGRAM MAY SUBMIT REMS PARTICIPANTS."
)


@cache
def rems_values() -> RemsValues:
    return load_rems_values()


def read_participants(data: bytes, file_type: str, limits) -> list[ReportedParticipant]:
    """Raises one of validate.UNREADABLE, with the message for the provider."""
    if file_type == "xml":
        return read_rems_document(data, limits)
    return read_rems_template(data, max_records=limits.max_records, max_bytes=limits.max_file_bytes)


ResultRow = tuple[int, str, str, None]  # (row, status, comma-separated codes, CreditID: none for REMS)


def save_chunk(
    services,
    account: Account,
    batch_pk: int,
    participants: Sequence[ReportedParticipant],
    in_same_transaction: Callable[[object, list[ResultRow]], None],
) -> list[ParticipantJudgement]:
    """Judge a chunk of a batch's participants and store those accepted, in one transaction with the
    caller's progress (`in_same_transaction(uow, result rows)`)."""
    today, now = services.clock.today(), services.clock.now()
    with services.store.transaction() as uow:
        ids = {p.activity_id for p in participants if p.activity_id}
        activities = {a.activity_id: a for a in uow.learners.activities(account.environment, account.provider_pk, ids)}
        judgements = [judge_participant(p, activities.get(p.activity_id), rems_values(), today) for p in participants]
        uow.rems.add(
            account.environment,
            account.provider_pk,
            batch_pk,
            [(j.participant.index, j.stored) for j in judgements if j.ok],
            now,
        )
        in_same_transaction(
            uow, [(j.participant.index, j.status.value, ",".join(map(str, j.codes)), None) for j in judgements]
        )
    return judgements


def error_rows(participants: Sequence[ReportedParticipant], failed) -> list[tuple[ReportedParticipant, list[Code]]]:
    """Each participant not processed with its codes (batch_results rows), the fields of a 998 named."""
    by_row = {p.index: p for p in participants}
    return [
        (by_row[r.row_index], [as_found(int(c), by_row[r.row_index], rems_values()) for c in r.codes.split(",")])
        for r in failed
    ]


def participates(services, account: Account) -> bool:
    """Whether the provider takes part in the REMS program: it has a REMS activity."""
    with services.store.transaction(write=False) as uow:
        return uow.rems.participates(account.environment, account.provider_pk)


def participants(services, account: Account, batch_id: int) -> list | None:
    """The participants a REMS batch of this provider stored, in file order; None for no such batch."""
    with services.store.transaction(write=False) as uow:
        if uow.batches.batch(account.environment, account.provider_pk, batch_id) is None:
            return None
        return uow.rems.of_batch(batch_id)
