"""The static wire contract: schemas/, wsdl/ and sample_requests/ (see docs/WIRE.md).

The PARS profile must stay a strict subset of the MedBiquitous reference schemas; those are not
part of the project and are looked up beside it (or at $PARS_REFERENCE_DIR).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import http.server
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from pars_ws.resources import schema_dir, wsdl_dir

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = schema_dir()
WSDL = wsdl_dir() / "ACCMELearnerService.wsdl"
SAMPLES = ROOT / "sample_requests"
# The MedBiquitous reference schemas, shipped with the tests (tests/reference/medbiq/README.md).
REFERENCE = ROOT / "tests" / "reference" / "medbiq"

P = "urn:pars-ws:learner:v1"
AR = "http://ns.medbiq.org/activityreport/v1/"
M = "http://ns.medbiq.org/member/v1/"
N = "http://ns.medbiq.org/name/v1/"
AR2 = "http://ns.medbiq.org/activityreport/v2/"
M2 = "http://ns.medbiq.org/member/v2/"
N2 = "http://ns.medbiq.org/name/v2/"
HX = "http://ns.medbiq.org/lom/extend/v1/"
EX = "urn:pars-ws:activityreport-extension:v1"
LOM = "http://ltsc.ieee.org/xsd/LOM"
XS = "http://www.w3.org/2001/XMLSchema"
SOAP_NS = {
    "soap11": "http://schemas.xmlsoap.org/soap/envelope/",
    "soap12": "http://www.w3.org/2003/05/soap-envelope",
}
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"

OPERATIONS = (
    "SaveLearnerActivity",
    "GetLearnerStatusByCreditId",
    "GetLearnerStatusByLearner",
    "GetLearnerMatch",
    "SaveActivity",
    "GetActivity",
)
SERVICE = "ACCMELearnerService"
PORTS = {
    "ACCMELearnerServiceSoap": ("Soap11Binding", "http://localhost:8000/services/ACCMELearnerService.svc"),
    "ACCMELearnerServiceSoap12": ("Soap12Binding", "http://localhost:8000/services/ACCMELearnerService.svc/soap12"),
}

# Hardened like the service's own parser: no entities, no network.
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)

SAMPLE_FILES = sorted(SAMPLES.rglob("*.xml"))
SOAP_FILES = [p for p in SAMPLE_FILES if p.parent.name in SOAP_NS]
BATCH_FILES = sorted((SAMPLES / "batch").glob("*.xml"))


def _ids(paths):
    return [str(p.relative_to(SAMPLES)) for p in paths]


def q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


# ---------------------------------------------------------------- schema loading


@functools.cache
def _schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


@pytest.fixture(scope="module")
def ar_schema() -> etree.XMLSchema:
    return _schema(SCHEMAS / "pars-activityreport.xsd")


@pytest.fixture(scope="module")
def service_schema() -> etree.XMLSchema:
    return _schema(SCHEMAS / "pars-learner-service.xsd")


@pytest.fixture(scope="module")
def reference_schema() -> etree.XMLSchema:
    return _schema(REFERENCE / "activityreport" / "v1" / "activityreport.xsd")


@pytest.fixture(scope="module")
def ar_v2_schema() -> etree.XMLSchema:
    return _schema(SCHEMAS / "pars-activityreport-v2.xsd")


# Stand-ins for the three W3C / Dublin Core schemas common/v2 imports by absolute URL (see the
# reference's NOTE.md): only what the v2 schemas refer to.
_V2_STAND_INS = {
    "http://www.w3.org/2004/08/xop/include": (
        "xop.xsd",
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'targetNamespace="http://www.w3.org/2004/08/xop/include"><xs:element name="Include"><xs:complexType>'
        '<xs:sequence><xs:any namespace="##other" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>'
        '<xs:attribute name="href" type="xs:anyURI" use="required"/></xs:complexType></xs:element></xs:schema>',
    ),
    "http://www.dublincore.org/schemas/xmls/qdc/dcterms.xsd": (
        "dcterms.xsd",
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'targetNamespace="http://purl.org/dc/terms/"><xs:element name="format" type="xs:string"/></xs:schema>',
    ),
    "http://www.w3.org/2001/xml.xsd ": (
        "xml.xsd",
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'targetNamespace="http://www.w3.org/XML/1998/namespace"><xs:attribute name="lang" type="xs:language"/>'
        "</xs:schema>",
    ),
}


@pytest.fixture(scope="module")
def reference_v2_schema(tmp_path_factory) -> etree.XMLSchema:
    """The MedBiquitous Activity Report v2 schema, compiled offline from a copy of the reference whose
    three absolute imports point at local stand-ins."""
    source = REFERENCE
    copy_dir = tmp_path_factory.mktemp("medbiq")
    for path in source.rglob("*.xsd"):
        target = copy_dir / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text(encoding="utf-8")
        for url, (name, stand_in) in _V2_STAND_INS.items():
            if f'schemaLocation="{url}"' in text:
                text = text.replace(f'schemaLocation="{url}"', f'schemaLocation="{name}"')
                (target.parent / name).write_text(stand_in, encoding="utf-8")
        target.write_text(text, encoding="utf-8")
    return etree.XMLSchema(etree.parse(str(copy_dir / "activityreport" / "v2" / "activityreport.xsd")))


def valid(schema: etree.XMLSchema, element: etree._Element) -> bool:
    # A fresh document: the element is validated as a root, whatever surrounds it.
    return schema.validate(etree.ElementTree(copy.deepcopy(element)))


def assert_valid(schema: etree.XMLSchema, element: etree._Element, what: str) -> None:
    if not valid(schema, element):
        errors = "\n".join(f"  line {e.line}: {e.message}" for e in schema.error_log)
        pytest.fail(f"{what} is not valid:\n{errors}")


def parse(path: Path) -> etree._ElementTree:
    return etree.parse(str(path), PARSER)


def body_child(tree: etree._ElementTree, version: str) -> etree._Element:
    env = tree.getroot()
    assert env.tag == q(SOAP_NS[version], "Envelope"), "envelope namespace must match the directory"
    body = env.find(q(SOAP_NS[version], "Body"))
    assert body is not None, "no soap Body"
    children = [c for c in body if isinstance(c.tag, str)]
    assert len(children) == 1, "wrapped style: exactly one element in the Body"
    return children[0]


# ---------------------------------------------------------------- the schema files themselves


def test_schema_files_load_and_use_relative_locations():
    files = sorted(SCHEMAS.glob("*.xsd"))
    assert {f.name for f in files} >= {
        "pars-activityreport.xsd",
        "pars-member.xsd",
        "pars-name.xsd",
        "pars-healthcare.xsd",
        "pars-extension.xsd",
        "pars-learner-service.xsd",
    }
    for f in files:
        _schema(f)  # compiles on its own
        for node in etree.parse(str(f)).iter(q(XS, "import"), q(XS, "include")):
            loc = node.get("schemaLocation")
            assert loc and "://" not in loc and not loc.startswith("/"), f"{f.name}: {loc}"
            assert (f.parent / loc).is_file(), f"{f.name}: {loc} missing"


def test_profile_text_is_always_bounded():
    """Every text type of the ActivityReports profile has a maxLength, enumeration or is a
    date/decimal: no element or attribute is a bare xs:string/xs:anyURI."""
    for name in (
        "pars-activityreport.xsd",
        "pars-member.xsd",
        "pars-name.xsd",
        "pars-healthcare.xsd",
        "pars-extension.xsd",
        "pars-activityreport-v2.xsd",
        "pars-member-v2.xsd",
        "pars-name-v2.xsd",
    ):
        doc = etree.parse(str(SCHEMAS / name))
        for decl in doc.iter(q(XS, "element"), q(XS, "attribute")):
            assert decl.get("type") not in ("xs:string", "xs:anyURI", "xs:token"), (name, decl.get("name"))
        for restr in doc.iter(q(XS, "restriction")):
            if restr.get("base") in ("xs:string", "xs:anyURI"):
                facets = {etree.QName(c).localname for c in restr if isinstance(c.tag, str)}
                assert facets & {"maxLength", "enumeration"}, (name, restr.getparent().get("name"))


def test_request_text_is_always_bounded():
    doc = etree.parse(str(SCHEMAS / "pars-learner-service.xsd"))
    for op in OPERATIONS:
        (el,) = doc.xpath(f"/xs:schema/xs:element[@name='{op}']", namespaces={"xs": XS})
        for child in el.iter(q(XS, "element")):
            assert child.get("type") not in ("xs:string", "xs:anyURI"), (op, child.get("name"))


# ---------------------------------------------------------------- (a) samples


def test_samples_cover_every_operation_in_both_soap_versions():
    for version in SOAP_NS:
        ops = {body_child(parse(p), version).tag for p in SOAP_FILES if p.parent.name == version}
        assert ops == {q(P, op) for op in OPERATIONS}, version
    assert BATCH_FILES, "no batch samples"
    assert (SAMPLES / "batch" / "activityreports-sample.xml").is_file()


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=_ids(SAMPLE_FILES))
def test_sample_is_well_formed(path):
    tree = parse(path)
    assert tree.docinfo.doctype == "", "no DOCTYPE in samples"
    assert not any(isinstance(n, etree._Entity) for n in tree.iter())


@pytest.mark.parametrize("path", SOAP_FILES, ids=_ids(SOAP_FILES))
def test_soap_body_validates_against_wrapper_schema(path, service_schema):
    element = body_child(parse(path), path.parent.name)
    assert element.tag.startswith(f"{{{P}}}")
    assert_valid(service_schema, element, f"{path.name} body")


def _activity_reports(path: Path) -> list[etree._Element]:
    root = parse(path).getroot()
    if root.tag in (q(AR, "ActivityReports"), q(AR2, "ActivityReports")):
        return [root]
    return root.findall(f".//{q(P, 'SaveLearnerActivity')}/{q(AR, 'ActivityReports')}")


# REMS participant files (sample_requests/rems) follow their own profile: test_rems_samples_valid_...
REMS_FILES = sorted((SAMPLES / "rems").glob("*.xml"))
AR_FILES = [p for p in SAMPLE_FILES if _activity_reports(p) and p not in REMS_FILES]


@pytest.mark.parametrize("path", REMS_FILES, ids=_ids(REMS_FILES))
def test_rems_samples_valid_under_rems_profile_and_reference(path, reference_v2_schema):
    root = parse(path).getroot()
    assert_valid(_schema(SCHEMAS / "pars-rems-activityreport-v2.xsd"), root, f"{path.name} (REMS profile)")
    assert_valid(reference_v2_schema, root, f"{path.name} (reference v2)")


def test_every_save_learner_activity_sample_carries_activity_reports():
    saves = [p for p in SOAP_FILES if p.name.startswith("SaveLearnerActivity")]
    assert saves and set(saves) <= set(AR_FILES)
    assert set(BATCH_FILES) <= set(AR_FILES)


@pytest.mark.parametrize("path", AR_FILES, ids=_ids(AR_FILES))
def test_activity_reports_valid_under_project_and_reference(path, request):
    for element in _activity_reports(path):
        v2 = element.tag == q(AR2, "ActivityReports")
        project, reference = ("ar_v2_schema", "reference_v2_schema") if v2 else ("ar_schema", "reference_schema")
        assert_valid(request.getfixturevalue(project), element, f"{path.name} ActivityReports (project)")
        assert_valid(request.getfixturevalue(reference), element, f"{path.name} ActivityReports (reference)")


def test_there_is_a_v2_batch_sample():
    assert any(_activity_reports(p)[0].tag == q(AR2, "ActivityReports") for p in BATCH_FILES)


def test_sample_data_is_the_sandbox_data():
    for path in SOAP_FILES:
        el = body_child(parse(path), path.parent.name)
        assert el.findtext(q(P, "ProviderId")) == "1234567", path.name
        for ar in _activity_reports(path):
            for rep in ar.iter(q(AR, "ActivityReport")):
                assert rep.find(f".//{q(AR, 'ModuleName')}").get("moduleID") == "200930149"
                done = rep.findtext(f".//{q(AR, 'CompletedDateTime')}")
                assert "2026-01-01" <= done[:10] <= "2026-12-31", path.name


def test_wsse_sample_carries_the_credential_in_the_header(service_schema):
    path = SAMPLES / "soap11" / "SaveLearnerActivity-add-wsse.xml"
    tree = parse(path)
    token = tree.find(f".//{q(WSSE, 'Security')}/{q(WSSE, 'UsernameToken')}")
    assert token is not None
    assert token.findtext(q(WSSE, "Username")) == "sandbox-user"
    password = token.find(q(WSSE, "Password"))
    assert password.get("Type", "").endswith("#PasswordText")
    el = body_child(tree, "soap11")
    assert el.find(q(P, "User")) is None and el.find(q(P, "Password")) is None


# ---------------------------------------------------------------- (b) WSDL in zeep


@pytest.fixture(scope="module")
def zeep_client():
    zeep = pytest.importorskip("zeep")
    return zeep.Client(str(WSDL), settings=zeep.Settings(strict=True))


def test_wsdl_ports_bindings_and_actions(zeep_client):
    service = zeep_client.wsdl.services[SERVICE]
    assert set(service.ports) == set(PORTS)
    for name, (binding_cls, address) in PORTS.items():
        port = service.ports[name]
        assert type(port.binding).__name__ == binding_cls
        assert port.binding_options["address"] == address
        ops = port.binding._operations
        assert set(ops) == set(OPERATIONS)
        for op in OPERATIONS:
            assert ops[op].soapaction == f"{P}/{op}"
            assert ops[op].style == "document"


def test_wsdl_is_wrapped_document_literal():
    doc = etree.parse(str(WSDL))
    ns = {"w": "http://schemas.xmlsoap.org/wsdl/"}
    for message in doc.xpath("//w:message", namespaces=ns):
        (part,) = message.xpath("w:part", namespaces=ns)
        assert part.get("name") == "parameters" and part.get("element") and not part.get("type")
    assert not doc.xpath("//*[@use='encoded']")


def test_save_learner_activity_signature_offers_activity_reports(zeep_client):
    for port in PORTS:
        op = zeep_client.wsdl.services[SERVICE].ports[port].binding._operations["SaveLearnerActivity"]
        signature = op.input.signature()
        assert "ActivityReports: " in signature and "ProviderId: " in signature, signature


def _sample_activity_reports(zeep_client, action="add"):
    from zeep import xsd

    action_el = zeep_client.get_element(q(EX, "learnerRecordAction"))
    reports = zeep_client.get_element(q(AR, "ActivityReports"))
    return reports(
        DateTimeCreated=dt.datetime(2019, 12, 31, 10, 0),
        ActivityReport=[
            {
                "ReportingOrganization": "Test Provider",
                "Member": {
                    "UniqueID": [{"_value_1": "1000106", "domain": "ABIM"}],
                    "Name": {"GivenName": "Test2", "FamilyName": "Account2"},
                    "PersonalInfo": {"BirthDate": dt.date(1900, 3, 1)},
                },
                "Activity": {
                    "ProviderOrganization": "Test Provider",
                    "ActivityName": "An Other is an Other",
                    "Module": {
                        "ModuleName": {"_value_1": "An Other is an Other", "moduleID": "200930149"},
                        "Status": "Completed",
                        "CompletedDateTime": dt.datetime(2019, 1, 5),
                        "CreditCertificate": [
                            {
                                "CreditReceived": {
                                    "accreditingBody": "ABIM",
                                    "activityCertification": "ABIM MOC Part II",
                                    "creditUnit": "Point",
                                    "numberOfCredits": Decimal("3.5"),
                                },
                                "CreditID": "ccid:testprovider.org:1001",
                            }
                        ],
                    },
                },
                "XtensibleInfo": {"_value_1": [xsd.AnyObject(action_el, action)]},
            }
        ],
    )


def _zeep_requests(client):
    creds = {"ProviderId": "1234567", "User": "sandbox-user", "Password": "sandbox-password"}
    return {
        "SaveLearnerActivity": dict(creds, ActivityReports=_sample_activity_reports(client)),
        "GetLearnerStatusByCreditId": dict(creds, CreditID="ccid:testprovider.org:1001"),
        "GetLearnerStatusByLearner": dict(
            creds, ActivityID="200930149", LearnerID="1000106", CompletionDate=dt.date(2019, 1, 5), DOB="03/01"
        ),
        "GetLearnerMatch": dict(
            creds,
            Board="ABIM",
            LearnerIDType="ABIM",
            LearnerID="1000106",
            FirstName="Test2",
            LastName="Account2",
            DOB="03/01",
        ),
        "SaveActivity": dict(
            creds,
            Activity={
                "Title": "Internal Medicine Update 2019",
                "ActivityType": "Course",
                "StartDate": dt.date(2019, 6, 1),
                "EndDate": dt.date(2019, 6, 2),
                "ReportingYear": 2019,
                "Credits": Decimal("12.5"),
                "Registrations": {
                    "Registration": [
                        {
                            "Board": "ABIM",
                            "MaxPoints": Decimal("12.5"),
                            "CreditTypes": {"CreditType": ["ABIM MOC Part II"]},
                        }
                    ]
                },
            },
        ),
        "GetActivity": dict(creds, ActivityID="200930149"),
    }


@pytest.mark.parametrize("port", sorted(PORTS))
@pytest.mark.parametrize("operation", OPERATIONS)
def test_zeep_creates_valid_request(zeep_client, port, operation, service_schema, ar_schema):
    service = zeep_client.bind(SERVICE, port)
    envelope = zeep_client.create_message(service, operation, **_zeep_requests(zeep_client)[operation])
    version = "soap11" if port == "ACCMELearnerServiceSoap" else "soap12"
    element = body_child(etree.ElementTree(envelope), version)
    assert element.tag == q(P, operation)
    assert_valid(service_schema, element, f"zeep {operation} request")
    for reports in element.findall(q(AR, "ActivityReports")):
        assert_valid(ar_schema, reports, "zeep ActivityReports")


def test_zeep_loads_wsdl_over_http_at_the_served_paths():
    """Served at /services/ACCMELearnerService.svc?wsdl, the WSDL's ../schemas/ imports must
    resolve to /schemas/ (as the service serves them)."""
    zeep = pytest.importorskip("zeep")
    requests = pytest.importorskip("requests")

    files = {"/services/ACCMELearnerService.svc?wsdl": WSDL}
    files.update({f"/schemas/{p.name}": p for p in SCHEMAS.glob("*.xsd")})

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = files.get(self.path)
            if path is None:
                self.send_error(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        session = requests.Session()
        session.trust_env = False  # never via a proxy
        url = f"http://127.0.0.1:{server.server_address[1]}/services/ACCMELearnerService.svc?wsdl"
        client = zeep.Client(url, transport=zeep.Transport(session=session), settings=zeep.Settings(strict=True))
        op = client.wsdl.services[SERVICE].ports["ACCMELearnerServiceSoap"].binding._operations["SaveLearnerActivity"]
        assert "ActivityReports" in op.input.signature()
    finally:
        server.shutdown()
        server.server_close()


_ERRORS = "<p:Errors><p:Error><p:Code>661</p:Code><p:Message>Diplomate ID not found in Board records.</p:Message></p:Error></p:Errors>"
_LEARNER_STATUS = (
    "<p:LearnerStatus><p:CreditID>ccid:testprovider.org:1001</p:CreditID><p:ActivityID>200930149</p:ActivityID>"
    "<p:Board>ABIM</p:Board><p:LearnerID>1000106</p:LearnerID><p:CompletionDate>2019-01-05</p:CompletionDate>"
    "<p:Credits>3.5</p:Credits><p:Status>Submitted</p:Status><p:Errors/>"
    "<p:Submitted>2019-12-31T10:00:01</p:Submitted><p:Updated>2019-12-31T10:00:01</p:Updated></p:LearnerStatus>"
)
_ACTIVITY = (
    "<p:Activity><p:ActivityID>200930149</p:ActivityID><p:ProviderActivityID>TO-20190405</p:ProviderActivityID>"
    "<p:Title>An Other is an Other</p:Title><p:ActivityType>Other</p:ActivityType>"
    "<p:StartDate>2019-01-01</p:StartDate><p:EndDate>2019-12-31</p:EndDate><p:ReportingYear>2019</p:ReportingYear>"
    "<p:Credits>500</p:Credits><p:Registrations><p:Registration><p:Board>ABIM</p:Board><p:MaxPoints>500</p:MaxPoints>"
    "<p:CreditTypes><p:CreditType>ABIM MOC Part II</p:CreditType></p:CreditTypes></p:Registration></p:Registrations>"
    "</p:Activity>"
)
# Responses as the service is expected to write them (element names and order of WIRE.md).
RESPONSES = {
    "SaveLearnerActivity": (
        "<p:ResultSummary>Partial success</p:ResultSummary><p:Results>"
        "<p:RecordResult><p:Index>1</p:Index><p:CreditID>ccid:testprovider.org:1001</p:CreditID>"
        "<p:Action>add</p:Action><p:Status>Submitted</p:Status><p:Errors/></p:RecordResult>"
        f"<p:RecordResult><p:Index>2</p:Index><p:Status>Not processed</p:Status>{_ERRORS}</p:RecordResult>"
        "</p:Results>"
    ),
    "GetLearnerStatusByCreditId": _LEARNER_STATUS,
    "GetLearnerStatusByLearner": _LEARNER_STATUS
    + _LEARNER_STATUS.replace("Submitted</p:Status>", "Rejected</p:Status>"),
    "GetLearnerMatch": f"<p:Matched>false</p:Matched>{_ERRORS}",
    "SaveActivity": _ACTIVITY,
    "GetActivity": _ACTIVITY,
}


@pytest.mark.parametrize("port", sorted(PORTS))
@pytest.mark.parametrize("operation", OPERATIONS)
def test_zeep_reads_responses(zeep_client, port, operation, service_schema):
    version = "soap11" if port == "ACCMELearnerServiceSoap" else "soap12"
    envelope = etree.fromstring(
        f'<soap:Envelope xmlns:soap="{SOAP_NS[version]}"><soap:Body>'
        f'<p:{operation}Response xmlns:p="{P}">{RESPONSES[operation]}</p:{operation}Response>'
        "</soap:Body></soap:Envelope>"
    )
    assert_valid(service_schema, envelope[0][0], f"{operation}Response")
    op = zeep_client.wsdl.services[SERVICE].ports[port].binding._operations[operation]
    result = op.output.deserialize(envelope)
    assert result is not None
    if operation == "SaveLearnerActivity":
        assert result["Results"]["RecordResult"][1]["Errors"]["Error"][0]["Code"] == 661


# ---------------------------------------------------------------- (c) negative cases


def _base_reports() -> etree._Element:
    return parse(SAMPLES / "batch" / "activityreports-sample.xml").getroot()


def _first(root, path):
    return root.find(path, {"ar": AR, "m": M, "n": N, "hx": HX, "ex": EX})


def _set_text(path, text):
    def mutate(root):
        _first(root, path).text = text

    return mutate


def _rename_ns(root):
    root.tag = q(P, "ActivityReports")


def _drop_domain(root):
    del _first(root, ".//m:UniqueID").attrib["domain"]


def _dup(path, times):
    def mutate(root):
        el = _first(root, path)
        for _ in range(times):
            el.addnext(copy.deepcopy(el))

    return mutate


def _xtensible(child_xml):
    def mutate(root):
        _first(root, ".//ar:XtensibleInfo").append(etree.fromstring(child_xml))

    return mutate


def _unknown_element(root):
    etree.SubElement(_first(root, ".//ar:Module"), q(AR, "Foo")).text = "x"


def _too_many_reports(root):
    rep = _first(root, "ar:ActivityReport")
    for _ in range(2501 - len(root.findall(q(AR, "ActivityReport")))):
        root.append(copy.deepcopy(rep))


NEGATIVE = {
    "wrong-namespace-root": _rename_ns,
    "given-name-101": _set_text(".//n:GivenName", "x" * 101),
    "family-name-101": _set_text(".//n:FamilyName", "y" * 101),
    "activity-name-501": _set_text(".//ar:ActivityName", "t" * 501),
    "credit-id-256": _set_text(".//ar:CreditID", "ccid:testprovider.org:" + "9" * 234),
    "learner-id-51": _set_text(".//m:UniqueID", "1" * 51),
    "learner-id-blank": _set_text(".//m:UniqueID", "   "),
    "unique-id-without-domain": _drop_domain,
    "credit-unit-not-in-standard": _set_text(".//hx:creditUnit", "Points"),
    "action-21": _set_text(".//ex:learnerRecordAction", "a" * 21),
    "seven-credit-certificates": _dup(".//ar:CreditCertificate", 6),
    "two-modules": _dup(".//ar:Module", 1),
    "two-activities": _dup(".//ar:Activity", 1),
    "unknown-element": _unknown_element,
    "unqualified-action": _xtensible("<learnerRecordAction>add</learnerRecordAction>"),
    "hx-element-in-xtensible-info": _xtensible(f'<hx:numberOfCredits xmlns:hx="{HX}">abc</hx:numberOfCredits>'),
    "nested-hx-element-in-xtensible-info": _xtensible(
        f'<foo:x xmlns:foo="urn:foo"><hx:credits xmlns:hx="{HX}"/></foo:x>'
    ),
    "lom-in-xtensible-info": _xtensible(f'<lom:lom xmlns:lom="{LOM}"/>'),
    "2501-records": _too_many_reports,
}


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_profile_rejects(name, ar_schema):
    _assert_rejects(ar_schema, _base_reports(), NEGATIVE[name], name)


def _assert_rejects(schema: etree.XMLSchema, root: etree._Element, mutate, name: str) -> None:
    assert valid(schema, root)
    mutate(root)
    assert not valid(schema, root), f"{name} should fail the project schema"


POSITIVE_BOUNDARIES = {
    "given-name-100": _set_text(".//n:GivenName", "x" * 100),
    "credit-id-255": _set_text(".//ar:CreditID", "ccid:testprovider.org:" + "9" * 233),
    "six-credit-certificates": _dup(".//ar:CreditCertificate", 5),
    "blank-action": _set_text(".//ex:learnerRecordAction", ""),  # 601, per record
    "foreign-extension": _xtensible(
        '<foo:learnerRecordAction xmlns:foo="urn:other-pars-tool">add</foo:learnerRecordAction>'
    ),
    "2500-records": lambda root: [
        root.append(copy.deepcopy(_first(root, "ar:ActivityReport")))
        for _ in range(2500 - len(root.findall(q(AR, "ActivityReport"))))
    ],
}


@pytest.mark.parametrize("name", sorted(POSITIVE_BOUNDARIES))
def test_profile_accepts_boundaries(name, ar_schema, reference_schema):
    _assert_accepted_by_both(ar_schema, reference_schema, _base_reports(), POSITIVE_BOUNDARIES[name], name)


def _assert_accepted_by_both(
    project: etree.XMLSchema, reference: etree.XMLSchema, root: etree._Element, mutate, name: str
) -> None:
    mutate(root)
    assert_valid(project, root, name)
    assert_valid(reference, root, name)


def _save_body():
    return body_child(parse(SAMPLES / "soap11" / "SaveLearnerActivity-add.xml"), "soap11")


def test_wrapper_rejects_activity_reports_in_the_wrong_namespace(service_schema):
    body = _save_body()
    assert valid(service_schema, body)
    body.find(q(AR, "ActivityReports")).tag = q(P, "ActivityReports")
    assert not valid(service_schema, body)


def test_wrapper_rejects_missing_activity_reports(service_schema):
    body = _save_body()
    body.remove(body.find(q(AR, "ActivityReports")))
    assert not valid(service_schema, body)


def test_wrapper_rejects_over_long_credentials_and_bad_dob(service_schema):
    body = _save_body()
    body.find(q(P, "ProviderId")).text = "1" * 51
    assert not valid(service_schema, body)

    match = body_child(parse(SAMPLES / "soap11" / "GetLearnerMatch.xml"), "soap11")
    for dob, ok in (
        ("03/01", True),
        ("3/1", True),
        ("12/31", True),
        ("13/01", False),
        ("03/32", False),
        ("1900-03-01", False),
    ):
        match.find(q(P, "DOB")).text = dob
        assert valid(service_schema, match) is ok, dob


# ---------------------------------------------------------------- (c2) Activity Report v2


def _as_v2(root: etree._Element) -> etree._Element:
    """A v1 ActivityReports document written in v2: its namespaces, the reporting period v2 requires
    and learner ID domains in v2's idd:<host>:<issuer> form."""
    text = etree.tostring(root).decode()
    for v1, v2 in ((AR, AR2), (M, M2), (N, N2)):
        text = text.replace(f'"{v1}"', f'"{v2}"')
    doc = etree.fromstring(text, PARSER)
    created = doc.find(q(AR2, "DateTimeCreated"))
    for name, day in (("ReportingEndDate", "2026-12-31"), ("ReportingStartDate", "2026-01-01")):
        created.addnext(etree.Element(q(AR2, name)))
        created.getnext().text = day
    for uid in doc.iter(q(M2, "UniqueID")):
        uid.set("domain", f"idd:accme.org:{uid.get('domain')}")
    return etree.fromstring(etree.tostring(doc), PARSER)


def _v2_base() -> etree._Element:
    return _as_v2(_base_reports())


def _v2_first(root, path):
    return root.find(path, {"ar": AR2, "m": M2, "n": N2, "hx": HX, "ex": EX})


def _v2_drop(path):
    def mutate(root):
        el = _v2_first(root, path)
        el.getparent().remove(el)

    return mutate


def _v2_set(path, value=None, **attrib):
    def mutate(root):
        el = _v2_first(root, path)
        if value is not None:
            el.text = value
        el.attrib.update(attrib)

    return mutate


def _v2_xtensible(child_xml):
    def mutate(root):
        _v2_first(root, ".//ar:XtensibleInfo").append(etree.fromstring(child_xml))

    return mutate


V2_NEGATIVE = {
    "no-reporting-start-date": _v2_drop("ar:ReportingStartDate"),
    "no-reporting-end-date": _v2_drop("ar:ReportingEndDate"),
    "v1-domain": _v2_set(".//m:UniqueID", domain="ABIM"),
    "domain-without-host": _v2_set(".//m:UniqueID", domain="idd:ABIM"),
    "blank-learner-id": _v2_set(".//m:UniqueID", "   "),
    "foreign-extension": _v2_xtensible(
        '<foo:learnerRecordAction xmlns:foo="urn:other-pars-tool">add</foo:learnerRecordAction>'
    ),
    "hx-element-in-xtensible-info": _v2_xtensible(f'<hx:numberOfCredits xmlns:hx="{HX}">1</hx:numberOfCredits>'),
    "v1-member": lambda root: _v2_first(root, ".//ar:Member").insert(
        0, etree.fromstring(f'<m:UniqueID xmlns:m="{M}" domain="ABIM">1</m:UniqueID>')
    ),
    "given-name-101": _v2_set(".//n:GivenName", "x" * 101),
}


@pytest.mark.parametrize("name", sorted(V2_NEGATIVE))
def test_v2_profile_rejects(name, ar_v2_schema):
    _assert_rejects(ar_v2_schema, _v2_base(), V2_NEGATIVE[name], name)


V2_POSITIVE = {
    "as-is": lambda root: None,
    "no-status": _v2_drop(".//ar:Module/ar:Status"),
    "npi-domain": _v2_set(".//m:UniqueID", domain="idd:cms.gov:NPI"),
    "blank-action": _v2_set(".//ex:learnerRecordAction", ""),
}


@pytest.mark.parametrize("name", sorted(V2_POSITIVE))
def test_v2_profile_accepts_and_the_standard_agrees(name, ar_v2_schema, reference_v2_schema):
    _assert_accepted_by_both(ar_v2_schema, reference_v2_schema, _v2_base(), V2_POSITIVE[name], name)


def test_every_v1_sample_stays_valid_and_v1_is_not_v2(ar_schema, ar_v2_schema):
    """The v1 profile is unchanged by v2: each schema takes its own version only."""
    for path in AR_FILES:
        for element in _activity_reports(path):
            if element.tag == q(AR, "ActivityReports"):
                assert valid(ar_schema, element) and not valid(ar_v2_schema, element), path.name


# ---------------------------------------------------------------- (d) profile ⊆ reference

# Extension content the standard would check (lax) if present: the profile must refuse it
# or accept only what the standard accepts. The profile accepts two of them (ACCEPTED_EXTENSIONS).
_TRICKY_EXTENSIONS = [
    f'<hx:numberOfCredits xmlns:hx="{HX}">abc</hx:numberOfCredits>',
    f'<hx:numberOfCredits xmlns:hx="{HX}">1.5</hx:numberOfCredits>',
    f'<hx:creditUnit xmlns:hx="{HX}">Points</hx:creditUnit>',
    f'<o:x xmlns:o="urn:o"><hx:credits xmlns:hx="{HX}"><hx:bogus/></hx:credits></o:x>',
    f'<o:x xmlns:o="urn:o"><n:Name xmlns:n="{N}"><n:Title>Dr</n:Title></n:Name></o:x>',
    f'<o:x xmlns:o="urn:o"><n:Name xmlns:n="{N}"><n:GivenName>A</n:GivenName></n:Name></o:x>',
    f'<m:Members xmlns:m="{M}"/>',
    f'<lom:lom xmlns:lom="{LOM}"/>',
    '<a:Address xmlns:a="http://ns.medbiq.org/address/v1/"/>',
    f'<o:x xmlns:o="urn:o"><ar:ActivityReports xmlns:ar="{AR}"/></o:x>',
    "<learnerRecordAction>add</learnerRecordAction>",
    f'<ex:learnerRecordAction xmlns:ex="{EX}">{"x" * 30}</ex:learnerRecordAction>',
    '<o:x xmlns:o="urn:o" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:decimal" '
    'xmlns:xs="http://www.w3.org/2001/XMLSchema">abc</o:x>',
    f'<o:x xmlns:o="urn:o" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:m="{M}" '
    'xsi:type="m:NonNullStringType"> </o:x>',
    f'<o:x xmlns:o="urn:o"><hx:room xmlns:hx="{HX}">101</hx:room></o:x>',
    f'<o:x xmlns:o="urn:o"><m:Members xmlns:m="{M}"><m:Member/></m:Members></o:x>',
]


ACCEPTED_EXTENSIONS = {1, 5}  # a well-formed numberOfCredits; a complete name inside another element


@pytest.mark.parametrize("n", range(len(_TRICKY_EXTENSIONS)), ids=[f"ext{i}" for i in range(len(_TRICKY_EXTENSIONS))])
def test_extension_content_never_widens_the_standard(n, ar_schema, reference_schema):
    """XtensibleInfo is lax in both; whatever the profile accepts there, the standard must too."""
    root = _base_reports()
    _xtensible(_TRICKY_EXTENSIONS[n])(root)
    root = etree.fromstring(etree.tostring(root), PARSER)
    assert valid(ar_schema, root) == (n in ACCEPTED_EXTENSIONS), list(ar_schema.error_log)
    if n in ACCEPTED_EXTENSIONS:
        assert_valid(reference_schema, root, "extension accepted by the profile")


_SETTINGS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# XML-safe characters (no controls, surrogates or non-characters), plus ordinary whitespace.
_chars = st.characters(exclude_categories=("Cs", "Cc", "Cn", "Co")) | st.sampled_from(" \t\n")
_word = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


def _text(lo, hi):
    return st.one_of(st.text(_chars, min_size=lo, max_size=min(hi, 30)), st.just("z" * hi))


_CREDIT_UNITS = ["CECH", "CEH", "CEU", "Cognate", "Contact Hour", "Credit", "Hour", "Unit", "Credit Hour", "Point"]


@st.composite
def _valid_report(draw):
    """Records the profile is meant to accept (text, optional parts, 0..6 certificates)."""
    certs = []
    for _ in range(draw(st.integers(0, 6))):
        certs.append(
            {
                "accreditingBody": draw(st.none() | _text(0, 50)),
                "activityCertification": draw(st.none() | _text(0, 100)),
                "creditUnit": draw(st.none() | st.sampled_from(_CREDIT_UNITS)),
                "numberOfCredits": draw(
                    st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str)
                ),
                "CreditID": draw(st.one_of(st.just(""), _word.map(lambda w: f"ccid:testprovider.org:{w}"))),
            }
        )
    return {
        "org": draw(_text(1, 255)),
        "ids": draw(st.lists(st.tuples(_word, _text(0, 50)), max_size=5)),
        "given": draw(st.none() | _text(1, 100)),
        "family": draw(st.none() | _text(1, 100)),
        "birth": draw(st.none() | st.dates().map(lambda d: d.isoformat())),
        "activity_id_attr": draw(st.none() | _text(0, 50)),
        "provider": draw(_text(1, 255)),
        "title": draw(_text(1, 500)),
        "module_id": draw(st.none() | _text(0, 50)),
        "status": draw(st.sampled_from(["Registered", "Completed", "Expired"])),
        "completed": draw(st.none() | st.datetimes().map(lambda d: d.isoformat())),
        "certs": certs,
        "extensions": draw(
            st.lists(
                st.sampled_from(
                    [
                        f'<ex:learnerRecordAction xmlns:ex="{EX}">add</ex:learnerRecordAction>',
                        f'<ex:learnerRecordAction xmlns:ex="{EX}">DELETE</ex:learnerRecordAction>',
                        '<o:learnerRecordAction xmlns:o="urn:other-pars-tool">Add</o:learnerRecordAction>',
                        '<o:note xmlns:o="urn:other"><o:deep a="1">text</o:deep></o:note>',
                    ]
                ),
                max_size=3,
            )
        ),
        "has_xtensible": draw(st.booleans()),
    }


@st.composite
def _any_report(draw):
    """A valid record with one kind of damage: wrong lengths, bad dates or decimals, or
    extension content that the standard itself would check."""
    rep = draw(_valid_report())
    damage = draw(st.sampled_from(["none", "given", "birth", "completed", "ids", "credits", "extension", "extension"]))
    if damage == "given":
        rep["given"] = draw(st.none() | st.text(_chars, max_size=3) | st.just("x" * 101))
    elif damage == "birth":
        rep["birth"] = draw(st.sampled_from(["03/01", "1900-02-30", "", "1900-03-01Z", " 1900-03-01 "]))
    elif damage == "completed":
        rep["completed"] = draw(st.sampled_from(["2019-01-05", "2019-01-05T00:00:00Z", "x", ""]))
    elif damage == "ids":
        rep["ids"] = draw(st.lists(st.tuples(st.text(_chars, max_size=3), st.text(_chars, max_size=3)), max_size=7))
    elif damage == "credits" and rep["certs"]:
        rep["certs"][0]["numberOfCredits"] = draw(st.sampled_from(["abc", "1,5", "", " 2 ", "1e3"]))
    elif damage == "extension":
        rep["extensions"] = rep["extensions"] + draw(
            st.lists(st.sampled_from(_TRICKY_EXTENSIONS), min_size=1, max_size=2)
        )
        rep["has_xtensible"] = True
    return rep


def _build(reports) -> etree._Element:
    def sub(parent, ns, name, text=None):
        el = etree.SubElement(parent, q(ns, name))
        if text is not None:
            el.text = text
        return el

    root = etree.Element(q(AR, "ActivityReports"), nsmap={"ar": AR, "m": M, "n": N, "hx": HX})
    sub(root, AR, "DateTimeCreated", "2019-12-31T10:00:00")
    for r in reports:
        rep = sub(root, AR, "ActivityReport")
        sub(rep, AR, "ReportingOrganization", r["org"])
        member = sub(rep, AR, "Member")
        for value, domain in r["ids"]:
            sub(member, M, "UniqueID", value).set("domain", domain)
        if r["given"] is not None or r["family"] is not None:
            name = sub(member, M, "Name")
            if r["given"] is not None:
                sub(name, N, "GivenName", r["given"])
            if r["family"] is not None:
                sub(name, N, "FamilyName", r["family"])
        if r["birth"] is not None:
            sub(sub(member, M, "PersonalInfo"), M, "BirthDate", r["birth"])
        activity = sub(rep, AR, "Activity")
        if r["activity_id_attr"] is not None:
            activity.set("activityID", r["activity_id_attr"])
        sub(activity, AR, "ProviderOrganization", r["provider"])
        sub(activity, AR, "ActivityName", r["title"])
        module = sub(activity, AR, "Module")
        module_name = sub(module, AR, "ModuleName", r["title"])
        if r["module_id"] is not None:
            module_name.set("moduleID", r["module_id"])
        sub(module, AR, "Status", r["status"])
        if r["completed"] is not None:
            sub(module, AR, "CompletedDateTime", r["completed"])
        for c in r["certs"]:
            cert = sub(module, AR, "CreditCertificate")
            received = sub(cert, AR, "CreditReceived")
            for key in ("accreditingBody", "activityCertification", "creditUnit", "numberOfCredits"):
                if c[key] is not None:
                    sub(received, HX, key, c[key])
            sub(cert, AR, "CreditID", c["CreditID"])
        if r["has_xtensible"]:
            info = sub(rep, AR, "XtensibleInfo")
            for xml in r["extensions"]:
                info.append(etree.fromstring(xml))
    # As a client would send it: serialised and parsed again.
    return etree.fromstring(etree.tostring(root), PARSER)


@_SETTINGS
@given(reports=st.lists(_valid_report(), min_size=1, max_size=3))
def test_generated_profile_documents_are_valid_under_both(reports, ar_schema, reference_schema):
    doc = _build(reports)
    assert_valid(ar_schema, doc, "generated document (project)")
    assert_valid(reference_schema, doc, "generated document (reference)")


@_SETTINGS
@given(reports=st.lists(_any_report(), min_size=1, max_size=3))
def test_profile_valid_implies_reference_valid(reports, ar_schema, reference_schema):
    doc = _build(reports)
    if valid(ar_schema, doc):
        assert_valid(reference_schema, doc, "profile-valid document under the reference")
    else:  # refused for a reason the profile names
        assert ar_schema.error_log.last_error is not None


@_SETTINGS
@given(reports=st.lists(_any_report(), min_size=1, max_size=3))
def test_v2_profile_valid_implies_v2_reference_valid(reports, ar_v2_schema, reference_v2_schema):
    doc = _as_v2(_build(reports))
    if valid(ar_v2_schema, doc):
        assert_valid(reference_v2_schema, doc, "v2 profile-valid document under the v2 reference")
    else:  # refused for a reason the profile names
        assert ar_v2_schema.error_log.last_error is not None
