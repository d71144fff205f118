"""The JSON twin's documents: xmlschema's own JSON form of an ActivityReports file reads into the same
records as the file, and what is not the document is refused with the JSON pointer of the fault."""

from __future__ import annotations

import json

import pytest
import xmlschema

from pars_ws.adapters.activity_report import read_document
from pars_ws.adapters.activity_report_json import InvalidJson, parse_json, read_json_reports
from pars_ws.resources import schema_dir
from pars_ws.settings import XmlLimits
from tests.conftest import ROOT

SAMPLE = ROOT / "sample_requests" / "batch" / "activityreports-sample.xml"


def as_json(xml: bytes) -> dict:
    """What xmlschema makes of the XML through the project's XSD, in the draft's key style."""
    schema = xmlschema.XMLSchema(str(schema_dir() / "pars-activityreport.xsd"))
    decoded = schema.decode(
        xml,
        converter=xmlschema.XMLSchemaConverter,
        attr_prefix="",
        text_key="value",
        strip_namespaces=True,
        cdata_prefix=None,
        decimal_type=str,
    )
    return {"ActivityReports": decoded}


def test_xmlschemas_json_of_a_file_reads_as_the_file():
    xml = SAMPLE.read_bytes()
    document = json.loads(json.dumps(as_json(xml)))
    assert read_json_reports(document, 2500) == read_document(xml, XmlLimits())


def test_the_drafts_action_and_numbers_as_written():
    document = parse_json(
        (ROOT / "sample_requests" / "json" / "SaveLearnerActivity-add.json").read_bytes().replace(b"3.5", b"3.50")
    )
    (record,) = read_json_reports(document, 2500)
    assert (record.action, record.credits, record.learner_id_type, record.dob) == ("add", "3.50", "ABIM", "1900-03-01")


def report(**changes) -> dict:
    document = json.loads((ROOT / "sample_requests" / "json" / "SaveLearnerActivity-add.json").read_text())
    document["ActivityReports"]["ActivityReport"][0].update(changes)
    return document


@pytest.mark.parametrize(
    "document, pointer, detail",
    [
        (report(Bogus=1), "/ActivityReports/ActivityReport/0/Bogus", "ActivityReport has no 'Bogus'."),
        (report(Member=[]), "/ActivityReports/ActivityReport/0/Member", "Member must not be an array."),
        (
            report(Member={"UniqueID": {"value": "1", "domain": "ABIM"}}),
            "/ActivityReports/ActivityReport/0/Member/UniqueID",
            "UniqueID must be an array.",
        ),
        (
            report(Member={"UniqueID": [{"value": "1", "domain": "ABIM", "kind": "x"}]}),
            "/ActivityReports/ActivityReport/0/Member/UniqueID/0/kind",
            "UniqueID has no 'kind'.",
        ),
        (
            report(ReportingOrganization=True),
            "/ActivityReports/ActivityReport/0/ReportingOrganization",
            "Expected text or a number, found true or false.",
        ),
        (report(ReportingOrganization="a\x00b"), "/ActivityReports/ActivityReport/0/ReportingOrganization", None),
        (report(ReportingOrganization="x" * 256), "/ActivityReports/ActivityReport/0/ReportingOrganization", None),
        ({"ActivityReports": {"ActivityReport": []}}, "/ActivityReports", None),  # DateTimeCreated missing
        ([], "", "The body must be an object with one key, 'ActivityReports'."),
    ],
)
def test_what_is_not_the_document_names_where(document, pointer, detail):
    with pytest.raises(InvalidJson) as refused:
        read_json_reports(document, 2500)
    assert refused.value.pointer == pointer
    assert refused.value.detail == detail or (detail is None and refused.value.detail)
    assert "{http" not in refused.value.detail  # element names without their namespace


@pytest.mark.parametrize("body", [b"{", b"[" * 100_000, b'{"a": NaN}', b"\xff"])
def test_not_json(body):
    with pytest.raises(InvalidJson) as refused:
        parse_json(body)
    assert refused.value.detail.startswith("The body is not JSON")
