"""`pars-ws validate`: judge a file's records offline, against stored activities and registries, writing nothing."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..adapters.activity_report import InvalidDocument, count_document, read_document
from ..adapters.data_files import sandbox_fixture
from ..adapters.template_b import FileRefused, read_template_b
from ..adapters.xml_guard import XmlRefused
from ..domain.engine import Judgement, judge
from ..domain.errors import message
from ..domain.records import Source


@dataclass
class ValidationReport:
    file: str
    source: Source | None
    judgements: list[Judgement]
    refused: str | None = None

    @property
    def ok(self) -> bool:
        return self.refused is None and all(j.ok for j in self.judgements)

    def lines(self) -> list[str]:
        if self.refused:
            return [f"{self.file}: refused: {self.refused}"]
        out = []
        for j in self.judgements:
            who = j.record.credit_id or " ".join(filter(None, (j.record.first_name, j.record.last_name))) or "-"
            if j.ok:
                out.append(f"record {j.record.index} ({who}): {j.status.value}")
            else:
                for code in j.codes:
                    out.append(f"record {j.record.index} ({who}): {code} {message(code)}")
        bad = sum(1 for j in self.judgements if not j.ok)
        out.append(f"{len(self.judgements)} records, {len(self.judgements) - bad} pass, {bad} with errors")
        return out

    def as_dict(self) -> dict:
        return {
            "file": self.file, "ok": self.ok, "refused": self.refused,
            "records": [j.as_dict() for j in self.judgements],
        }


# Whatever makes a file unreadable as a whole; each carries the message shown to the provider.
UNREADABLE = (XmlRefused, InvalidDocument, FileRefused)


def read_records(data: bytes, name: str, limits, kind: str | None = None):
    """Records of an XML document (ActivityReports, SaveLearnerActivity or a whole SOAP envelope) or a Template B file.

    `kind` ("xml" or "txt") is the type a provider chose for a batch; None guesses from the content and name.
    Raises one of UNREADABLE.
    """
    if kind is None:
        kind = "xml" if data.lstrip()[:1] == b"<" or name.lower().endswith(".xml") else "txt"
    if kind == "xml":
        return Source.XML_BATCH, read_document(data, limits)
    return Source.TAB_BATCH, read_template_b(data, max_records=limits.max_records, max_bytes=limits.max_file_bytes)


def count_records(data: bytes, limits, kind: str) -> int:
    """How many records a batch file holds, after the same checks as read_records (an XML file's
    fields are read by the worker that processes it: once is enough). Raises one of UNREADABLE."""
    if kind == "xml":
        return count_document(data, limits)
    return len(read_template_b(data, max_records=limits.max_records, max_bytes=limits.max_file_bytes))


def validate_file(services, path, *, provider_id: str | None, environment: str) -> ValidationReport:
    name = str(path)
    data = Path(path).read_bytes()
    try:
        source, records = read_records(data, name, services.settings.limits)
    except UNREADABLE as exc:
        return ValidationReport(name, None, [], refused=str(exc))
    provider_id = provider_id or sandbox_fixture()["provider"]["provider_id"]
    with services.store.transaction(write=False) as uow:
        provider = uow.accounts.provider(provider_id)
        if provider is None:
            return ValidationReport(name, source, [], refused=f"no provider {provider_id} in the database")
        lookups = uow.learners.lookups_for(environment, provider.id, records, services.catalogue)
    judgements = judge(records, today=services.clock.today(), now=services.clock.now(),
                       catalogue=services.catalogue, lookups=lookups, source=source)
    return ValidationReport(name, source, judgements)
