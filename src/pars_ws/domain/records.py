"""Learner completion records as PARS receives them and as it keeps them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from .catalogue import fold


class Source(str, Enum):
    SOAP = "SOAP"
    XML_BATCH = "XML batch"
    TAB_BATCH = "Tab batch"
    EXCEL_BATCH = "Excel batch"
    WEB_FORM = "Web form"
    JSON = "JSON web service"

    @property
    def carries_credit_id(self) -> bool:
        """SOAP, JSON and XML records name their CreditID; tab-delimited, Excel and web-form records
        carry none and the service assigns one to each Add."""
        return self in (Source.SOAP, Source.JSON, Source.XML_BATCH)


class Status(str, Enum):
    SUBMITTED = "Submitted"
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    DELETED = "Deleted"
    NOT_PROCESSED = "Not processed"


@dataclass(frozen=True)
class ReportedRecord:
    """One learner completion exactly as a submission states it: text, not yet judged.

    Readers (SOAP/XML, Template B, web form) fill this in; the rules parse and judge it.
    `None` means the field was absent or blank.
    """

    index: int  # 1-based position in the request or file
    action: str | None = None
    credit_id: str | None = None
    board: str | None = None  # activity registration (board or program code)
    activity_id: str | None = None
    learner_id_type: str | None = None
    learner_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    dob: str | None = None
    completion_date: str | None = None
    credits: str | None = None
    credit_types: tuple[str, ...] = ()
    has_credit_certificate: bool = True  # False when an XML record has no ar:CreditCertificate
    npi: str | None = None
    # Codes the reader itself found (e.g. a field longer than the format allows).
    reader_codes: tuple[int, ...] = ()
    # The record's own columns/text, kept for error reports and audit.
    original: tuple[str, ...] = field(default=(), compare=False)
    # Where one spreadsheet row reports several records (Excel: CME to a state board and MOC to a
    # certifying board), the row they came from and which part of it this one is ("CME", "MOC").
    row: int | None = None
    part: str | None = None


@dataclass(frozen=True)
class DOB:
    """Month and day of birth; PARS never uses the year. `day` is None when only a month was given."""

    month: int
    day: int | None

    def __str__(self) -> str:
        return f"{self.month:02d}/{self.day:02d}" if self.day else f"{self.month:02d}/--"


@dataclass
class StoredRecord:
    """A learner completion as pars-ws keeps it."""

    credit_id: str
    activity_id: str
    board: str
    learner_id_type: str | None
    learner_id: str | None
    first_name: str
    last_name: str
    dob: DOB | None
    completion_date: dt.date
    credits: Decimal
    credit_types: tuple[str, ...]
    status: Status
    source: Source
    submitted_at: dt.datetime
    updated_at: dt.datetime
    reject_code: int | None = None
    npi: str | None = None
    id: int | None = None
    # The folded ID of the registry learner the record is kept under; by default its own learner ID's.
    learner_key: str = ""
    matched_learner_id: str | None = None  # the registry learner's ID as the board keeps it

    def __post_init__(self) -> None:
        if not self.learner_key and self.learner_id:
            self.learner_key = fold(self.learner_id)

    def born_on(self, dob: DOB) -> bool:
        """Whether this record may be the learner born on `dob` (a record kept without a DOB may be anyone's)."""
        return self.dob is None or self.dob == dob

    @property
    def accepted_credits(self) -> Decimal | None:
        """What the board granted: the credits once Accepted, nothing once Rejected, None while Submitted."""
        if self.status == Status.ACCEPTED:
            return self.credits
        return None if self.status == Status.SUBMITTED else Decimal(0)
