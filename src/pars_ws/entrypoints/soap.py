"""The spyne SOAP application: SOAP 1.1 and 1.2 endpoints for the six PARS operations.

spyne reads the envelope, dispatches, and writes responses and faults, used through its public API:
the protocols read the request with the hardened parser (adapters/xml_guard) and write SOAP 1.2
subcodes as QNames, Application.call_wrapper runs a call again after a transient database
conflict, and event listeners put the correlation ID in every fault and log each call.

Each operation receives its body element untouched (BodyElement) because ar:ActivityReports must
sit directly inside SaveLearnerActivity in its own namespace, which spyne's own models cannot
express; the element is validated against the project's XSD and the response element is built
here, so the wire shape is exactly the one in pars_ws/wsdl (which is what clients download, not a
spyne-generated WSDL).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from decimal import Decimal
from functools import cache

from lxml import etree
from lxml.builder import E
from spyne import AnyXml, Application, ServiceBase, rpc
from spyne.const.xml import NS_XML
from spyne.error import RequestTooLongError
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap11, Soap12
from spyne.protocol.xml import XmlDocument
from spyne.server.wsgi import WsgiApplication
from sqlalchemy.exc import DBAPIError

from .. import logs
from ..adapters.activity_report import AR, InvalidDocument, read_activity_reports, validate
from ..adapters.clock import as_utc
from ..adapters.xml_guard import XmlRefused, check_content_type, parse_xml
from ..domain.activities import Activity, ActivityRefused, Registration
from ..domain.dates import parse_dob
from ..domain.errors import message
from ..domain.records import ReportedRecord, Source, Status, StoredRecord
from ..resources import schema_dir
from ..service import faults
from ..service.auth import AuthenticationFailed
from . import sandbox_faults, wssecurity

P = "urn:pars-ws:learner:v1"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
# A call that lost a deadlock (or a serialization check) is run again, at most this many times.
TRANSIENT_RETRIES = 3

log = logging.getLogger("pars_ws.calls")
errors_log = logging.getLogger("pars_ws.errors")


def q(name: str) -> str:
    return f"{{{P}}}{name}"


class CallContext:
    """Per-call facts spyne carries in ctx.udc."""

    def __init__(self, correlation_id: str):
        self.correlation_id = correlation_id
        self.account = None
        self.records = None
        self.nonce = None  # the WS-Security nonce this call has used (a call run again is no replay)
        self.fault = None  # the sandbox fault asked for, when its answer is to wait


@cache
def service_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schema_dir() / "pars-learner-service.xsd")))


def _authentication_failed() -> Fault:
    return Fault(faultcode="Client.Authentication", faultstring="Authentication failed.")


class SandboxFault(Fault):
    """The 998 a sandbox call asked for (X-PARS-Sandbox-Fault): a Server fault whose text is shown."""

    def __init__(self):
        super().__init__(faultcode="Server", faultstring=f"998 {message(998)}")


def client_fault(kind: str, text: str, limit: str | None = None) -> Fault:
    """A Client fault; `limit` (one of xml_guard.LIMIT_NAMES) goes in the detail as p:Limit."""
    return Fault(faultcode=f"Client.{kind}", faultstring=text, detail={q("Limit"): limit} if limit else None)


def _refused(exc: XmlRefused) -> Fault:
    kind = "InvalidRequest" if exc.limit in ("malformed", "encoding") else "Limit"
    return client_fault(kind, str(exc), exc.limit)


def _child(el, tag: str):
    """The first child element with this tag, or None: what find(tag) gives, filtered in C instead of
    through lxml's Python path machinery (about twice the cost, per lookup, in a call)."""
    return next(el.iterchildren(tag), None)


def _text(el, name: str) -> str | None:
    child = _child(el, q(name))
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _sub(parent, name: str, text=None):
    el = etree.SubElement(parent, q(name))
    if text is not None:
        el.text = str(text)
    return el


def _errors(parent, codes) -> None:
    errors = _sub(parent, "Errors")
    for code in codes:
        error = _sub(errors, "Error")
        _sub(error, "Code", code)
        _sub(error, "Message", message(code))


def _iso(value: dt.datetime) -> str:
    return as_utc(value).isoformat()


def _decimal(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


class Operations:
    """Translation between SOAP elements and the service layer."""

    def __init__(self, services):
        self.services = services

    # -- shared steps
    def check(self, el) -> None:
        try:
            validate(el, service_schema())
        except InvalidDocument as exc:
            raise client_fault("InvalidRequest", f"The request does not conform to the PARS schema: {exc}") from None

    def login(self, ctx, el) -> tuple[str | None, str | None, str | None]:
        """(user, password, provider ID): WS-Security's UsernameToken, else the body's elements."""
        token = wssecurity.username_token(ctx.in_header_doc, self.services, ctx.udc)
        user, password = (token.username, token.password) if token else (_text(el, "User"), _text(el, "Password"))
        return user, password, _text(el, "ProviderId")

    def account(self, ctx, el):
        try:
            account = self.services.auth.authenticate(*self.login(ctx, el))
        except AuthenticationFailed:
            raise _authentication_failed() from None
        ctx.udc.account = account
        ctx.udc.fault = self.sandbox_fault(ctx, account)
        return account

    @staticmethod
    def sandbox_fault(ctx, account):
        """The sandbox fault the call asked for: 998 and drop end the call here (before anything is
        stored); a delay is kept for call_wrapper, which waits once the call is done; a hold is the
        save's (the header goes to the service with the records)."""
        environ = ctx.transport.req_env
        try:
            fault = sandbox_faults.asked(account, environ)
        except faults.FaultUnreadable as exc:
            raise client_fault("InvalidRequest", str(exc)) from None
        if fault is not None and fault.kind == faults.DROP:
            sandbox_faults.drop_connection(environ)
            raise client_fault("Dropped", "The sandbox dropped the connection, as asked.")
        if fault is not None and fault.kind == faults.FAIL:
            raise SandboxFault()
        return fault

    # -- operations
    def save_learner_activity(self, ctx, el):
        self.check(el)
        # Read before the save's transaction; what is wrong with the document is told only to a
        # caller who signs in.
        try:
            parsed, problem = read_activity_reports(_child(el, f"{{{AR}}}ActivityReports")), None
        except InvalidDocument as exc:
            parsed, problem = (), exc

        def records(account):
            ctx.udc.account = account  # the call log names the provider even if what follows fails
            ctx.udc.fault = self.sandbox_fault(ctx, account)  # 998 or drop: the save is rolled back
            if problem is not None:
                raise client_fault("InvalidRequest", str(problem))
            return parsed

        try:
            judgements = self.services.learners.save_signed_in(
                *self.login(ctx, el),
                records,
                source=Source.SOAP,
                raw=b"".join(ctx.in_string),
                correlation_id=ctx.udc.correlation_id,
                sandbox_fault=sandbox_faults.header(ctx.transport.req_env),
            )
        except AuthenticationFailed:
            raise _authentication_failed() from None
        ctx.udc.records = judgements
        ok = sum(1 for j in judgements if j.ok)
        response = etree.Element(q("SaveLearnerActivityResponse"))
        _sub(
            response,
            "ResultSummary",
            "Success" if ok == len(judgements) else ("Failure" if ok == 0 else "Partial success"),
        )
        results = _sub(response, "Results")
        for j in judgements:
            result = _sub(results, "RecordResult")
            _sub(result, "Index", j.record.index)
            if j.record.credit_id:
                _sub(result, "CreditID", j.record.credit_id)
            if j.action:
                _sub(result, "Action", j.action.capitalize())
            _sub(result, "Status", j.status.value)
            _errors(result, j.codes)
        return response

    @staticmethod
    def _statuses(name: str, records: list[StoredRecord]):
        response = etree.Element(q(name))
        for rec in records:
            st = _sub(response, "LearnerStatus")
            _sub(st, "CreditID", rec.credit_id)
            _sub(st, "ActivityID", rec.activity_id)
            _sub(st, "Board", rec.board)
            _sub(st, "LearnerID", rec.learner_id or "")
            _sub(st, "CompletionDate", rec.completion_date.isoformat())
            _sub(st, "Credits", _decimal(rec.credits))
            _sub(st, "Status", rec.status.value)
            _errors(st, [rec.reject_code] if rec.status == Status.REJECTED and rec.reject_code else [])
            _sub(st, "Submitted", _iso(rec.submitted_at))
            _sub(st, "Updated", _iso(rec.updated_at))
        return response

    def status_by_credit_id(self, ctx, el):
        self.check(el)
        account = self.account(ctx, el)
        found = self.services.learners.status_by_credit_id(account, _text(el, "CreditID") or "")
        return self._statuses("GetLearnerStatusByCreditIdResponse", found)

    def status_by_learner(self, ctx, el):
        self.check(el)
        account = self.account(ctx, el)
        dob_text = _text(el, "DOB")
        dob = parse_dob(dob_text) if dob_text else None
        if dob_text and dob is None:
            raise client_fault("InvalidRequest", "DOB must be given as MM/DD.")
        found = self.services.learners.status_by_learner(
            account,
            _text(el, "ActivityID") or "",
            _text(el, "LearnerID") or "",
            dt.date.fromisoformat(_text(el, "CompletionDate")),
            dob,
        )
        return self._statuses("GetLearnerStatusByLearnerResponse", found)

    def learner_match(self, ctx, el):
        self.check(el)
        account = self.account(ctx, el)
        record = ReportedRecord(
            index=1,
            board=_text(el, "Board"),
            learner_id_type=_text(el, "LearnerIDType"),
            learner_id=_text(el, "LearnerID"),
            first_name=_text(el, "FirstName"),
            last_name=_text(el, "LastName"),
            dob=_text(el, "DOB"),
        )
        codes = self.services.learners.match_learner(account, record)
        response = etree.Element(q("GetLearnerMatchResponse"))
        _sub(response, "Matched", "false" if codes else "true")
        _errors(response, codes)
        return response

    def save_activity(self, ctx, el):
        self.check(el)
        account = self.account(ctx, el)
        activity = self._activity_from(_child(el, q("Activity")))
        try:
            saved = self.services.activities.save(account, activity)
        except ActivityRefused as exc:
            raise client_fault("InvalidActivity", str(exc)) from None
        return self._activity_response("SaveActivityResponse", saved)

    def get_activity(self, ctx, el):
        self.check(el)
        account = self.account(ctx, el)
        found = self.services.activities.get(account, _text(el, "ActivityID") or "")
        if found is None:
            raise client_fault("NotFound", f"690 {message(690)}")
        return self._activity_response("GetActivityResponse", found)

    @staticmethod
    def _activity_from(a) -> Activity:
        regs = []
        for reg in a.iterfind(f"{q('Registrations')}/{q('Registration')}"):
            regs.append(
                Registration(
                    board=_text(reg, "Board") or "",
                    max_points=Decimal(_text(reg, "MaxPoints")),
                    credit_types=tuple(
                        t.text.strip() for t in reg.iterfind(f"{q('CreditTypes')}/{q('CreditType')}") if t.text
                    ),
                )
            )
        start = dt.date.fromisoformat(_text(a, "StartDate"))
        year = _text(a, "ReportingYear")
        return Activity(
            activity_id=_text(a, "ActivityID"),
            provider_activity_id=_text(a, "ProviderActivityID"),
            title=_text(a, "Title"),
            activity_type=_text(a, "ActivityType"),
            start_date=start,
            end_date=dt.date.fromisoformat(_text(a, "EndDate")),
            reporting_year=int(year) if year else start.year,
            credits=Decimal(_text(a, "Credits")),
            registrations=tuple(regs),
        )

    @staticmethod
    def _activity_response(name: str, activity: Activity):
        response = etree.Element(q(name))
        a = _sub(response, "Activity")
        _sub(a, "ActivityID", activity.activity_id)
        if activity.provider_activity_id:
            _sub(a, "ProviderActivityID", activity.provider_activity_id)
        _sub(a, "Title", activity.title)
        _sub(a, "ActivityType", activity.activity_type)
        _sub(a, "StartDate", activity.start_date.isoformat())
        _sub(a, "EndDate", activity.end_date.isoformat())
        _sub(a, "ReportingYear", activity.reporting_year)
        _sub(a, "Credits", _decimal(activity.credits))
        regs = _sub(a, "Registrations")
        for reg in activity.registrations:
            r = _sub(regs, "Registration")
            _sub(r, "Board", reg.board)
            _sub(r, "MaxPoints", _decimal(reg.max_points))
            types = _sub(r, "CreditTypes")
            for credit_type in reg.credit_types:
                _sub(types, "CreditType", credit_type)
        return response


class BodyElement(AnyXml):
    """An operation's element in soap:Body as it stands, in and out (spyne's AnyXml hands over the
    element's first child and wraps a response in another element)."""


def _operation(op_name: str, handler: str):
    def call(ctx, body):
        return getattr(ctx.app.operations, handler)(ctx, body)

    call.__name__ = op_name
    return rpc(
        BodyElement,
        _returns=BodyElement,
        _body_style="bare",
        _in_message_name=op_name,
        _out_message_name=f"{op_name}Response",
        _operation_name=op_name,
    )(call)


OPERATIONS = {
    "SaveLearnerActivity": "save_learner_activity",
    "GetLearnerStatusByCreditId": "status_by_credit_id",
    "GetLearnerStatusByLearner": "status_by_learner",
    "GetLearnerMatch": "learner_match",
    "SaveActivity": "save_activity",
    "GetActivity": "get_activity",
}

LearnerService = type(
    "ACCMELearnerService", (ServiceBase,), {name: _operation(name, handler) for name, handler in OPERATIONS.items()}
)


def _envelope_parts(root, env_ns: str):
    """(Header or None, operation element) of a well-shaped envelope; a Client fault saying what is
    wrong with the shape otherwise.

    Envelope: an optional Header, then exactly one Body holding exactly one element (WS-I Basic
    Profile, document/literal); comments around it are ignored. SOAP 1.1 tolerates further elements
    after the Body; 1.2 does not.
    """

    def refused(text: str) -> Fault:
        return client_fault("InvalidRequest", text)

    if root.tag != f"{{{env_ns}}}Envelope":
        raise refused(f"The request is not a SOAP envelope: the root element must be {{{env_ns}}}Envelope.")
    children = list(root.iterchildren(etree.Element))
    tags = [c.tag for c in children]
    expected = [f"{{{env_ns}}}Header"] * (tags[:1] == [f"{{{env_ns}}}Header"]) + [f"{{{env_ns}}}Body"]
    position = len(expected) - 1
    extra = tags[len(expected) :]
    if tags[: len(expected)] != expected or set(expected) & set(extra) or (env_ns == Soap12.ns_soap_env and extra):
        raise refused("The SOAP envelope must hold an optional Header followed by exactly one Body.")
    content = list(children[position].iterchildren(etree.Element))
    if len(content) != 1:
        raise refused(f"The SOAP Body must hold exactly one operation element, not {len(content)}.")
    if any(name.startswith(XSI) for name in content[0].attrib):
        # spyne reads xsi:nil / xsi:type on the operation element itself and fails on them.
        raise refused("xsi:nil and xsi:type are not allowed on the operation element.")
    if content[0].tag == f"{{{env_ns}}}Fault":
        raise refused("A SOAP Fault is not a request.")
    return (children[0] if position else None), content[0]


class _Guarded:
    """What pars-ws changes in both of spyne's SOAP protocols: the request is read by the hardened
    parser, its envelope's shape is checked, a request in the other SOAP version is answered in its
    own, and operations take and give their body element as it stands (BodyElement)."""

    other_version: type  # the SOAP protocol a request in the other version is answered in

    def __init__(self, limits, **kwargs):
        super().__init__(**kwargs)
        self.limits = limits
        self.deserialization_handlers[BodyElement] = lambda ctx, cls, element: element
        self.serialization_handlers[BodyElement] = self._body_element_to_parent

    @staticmethod
    def _body_element_to_parent(ctx, cls, inst, parent, ns, name=None, **_):
        parent.append(inst)

    def create_in_document(self, ctx, charset=None):
        try:
            check_content_type(ctx.transport.get_request_content_type())
            body = b"".join(ctx.in_string)
        except XmlRefused as exc:  # the HTTP request is refused whatever the document says
            raise client_fault("Limit", str(exc), exc.limit) from None
        except RequestTooLongError:
            raise client_fault(
                "Limit", f"The request body exceeds the limit of {self.limits.max_body_bytes} bytes.", "body-size"
            ) from None
        ctx.in_string = [body]  # kept for the audit copy (SaveLearnerActivity)
        try:
            ctx.in_document = parse_xml(body, self.limits).getroot()
        except XmlRefused as exc:
            raise _refused(exc) from None

    def decompose_incoming_envelope(self, ctx, message=XmlDocument.REQUEST):
        envelope = ctx.in_document
        other = self.other_version
        if envelope.tag == f"{{{other.ns_soap_env}}}Envelope":
            # Answered in the client's own SOAP version, so its toolkit can read the fault.
            ctx.out_protocol = other(limits=self.limits)
            ctx.transport.resp_headers["Content-Type"] = other.mime_type
            raise Fault(
                "VersionMismatch",
                f"This endpoint speaks SOAP {self.version}; the request is a SOAP "
                f"{other.version} envelope: post it to the SOAP {other.version} endpoint.",
            )
        ctx.in_header_doc, ctx.in_body_doc = _envelope_parts(envelope, self.ns_soap_env)
        if ctx.in_header_doc is not None:
            ctx.in_header_doc = list(ctx.in_header_doc)
        ctx.method_request_string = ctx.in_body_doc.tag
        self.validate_body(ctx, message)


class ParsSoap11(_Guarded, Soap11):
    version = "1.1"
    # WS-I Basic Profile R1126: every SOAP 1.1 fault goes on HTTP 500 (spyne's Soap11 does so), the
    # only status on which JAX-WS, WCF and suds read the fault instead of an HTTP error.


_SOAP12_CODES = {"Client": "Sender", "Server": "Receiver"}


class ParsSoap12(_Guarded, Soap12):
    version = "1.2"

    def fault_to_http_response_code(self, fault):
        # SOAP 1.2 HTTP binding: a Sender fault on 400, every other on 500.
        return "400 Bad Request" if fault.faultcode.split(".")[0] == "Client" else "500 Internal Server Error"

    def fault_to_parent(self, ctx, cls, inst, parent, ns, **_):
        """A SOAP 1.2 fault whose subcodes are QNames in the service namespace (SAAJ, and so JAX-WS,
        refuses an unqualified one); its prefix is declared on the envelope, which every fault's
        detail keeps (p:CorrelationID). spyne's own wrote the subcode unqualified and an empty Role."""
        env = self.ns_soap_env
        top, *subcodes = inst.faultcode.split(".")
        code = E(f"{{{env}}}Code", E(f"{{{env}}}Value", f"{self.soap_env}:{_SOAP12_CODES.get(top, top)}"))
        parent_code = code
        for subcode in subcodes:
            node = E(
                f"{{{env}}}Subcode", E(f"{{{env}}}Value", f"{self.app.interface.get_namespace_prefix(P)}:{subcode}")
            )
            parent_code.append(node)
            parent_code = node
        fault = E(
            f"{{{env}}}Fault",
            code,
            E(f"{{{env}}}Reason", E(f"{{{env}}}Text", inst.faultstring, **{f"{{{NS_XML}}}lang": inst.lang})),
        )
        if inst.faultactor:
            fault.append(E(f"{{{env}}}Role", inst.faultactor))
        if inst.detail:
            detail = E(f"{{{env}}}Detail")
            for tag, value in inst.detail.items():
                etree.SubElement(detail, tag).text = value
            fault.append(detail)
        parent.append(fault)


ParsSoap11.other_version, ParsSoap12.other_version = ParsSoap12, ParsSoap11


def _transient(exc: BaseException | None) -> bool:
    """A database conflict that a second run of the same call resolves: deadlock or serialization
    failure (PostgreSQL), a lock wait that timed out (SQLite), or a pooled connection the server
    closed (restarted): the pool has been replaced since."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in ("40P01", "40001") or "database is locked" in str(exc.orig)


class ParsApplication(Application):
    def __init__(self, services, protocol: type[_Guarded]):
        limits = services.settings.limits
        super().__init__(
            [LearnerService],
            tns=P,
            name="ACCMELearnerService",
            in_protocol=protocol(limits=limits),
            out_protocol=protocol(limits=limits),
        )
        self.operations = Operations(services)
        self.event_manager.add_listener("method_exception_object", _label_fault)

    def call_wrapper(self, ctx):
        try:
            for attempt in range(TRANSIENT_RETRIES + 1):
                try:
                    return super().call_wrapper(ctx)
                except DBAPIError as exc:
                    if attempt == TRANSIENT_RETRIES or not _transient(exc):
                        raise
                    # What the call wrote was rolled back whole: running it again is safe.
                    errors_log.warning("transient database conflict: retrying", extra={"event": "retried"})
        finally:
            sandbox_faults.wait(ctx.udc.fault)  # a sandbox delay: after the call and its transaction


def _label_fault(ctx):
    """Put the correlation ID in every fault; never show an internal error's text to the client."""
    err = ctx.out_error
    cid = ctx.udc.correlation_id
    if not (err.faultcode.startswith(("Client", "VersionMismatch")) or isinstance(err, SandboxFault)):
        errors_log.error("server fault: %s", err.faultstring, extra={"event": "server_fault"})
        ctx.out_error = err = Fault("Server", "Internal error while processing the request.")
    err.faultstring = f"{err.faultstring} (correlation ID {cid})"
    err.detail = {q("CorrelationID"): cid, **(err.detail or {})}


def _new_call(ctx):
    ctx.udc = CallContext(logs.correlation_id.get() or logs.new_correlation_id())


def _log_call(ctx):
    if not log.isEnabledFor(logging.INFO):
        return
    udc, operation = ctx.udc, ctx.method_request_string
    entry = {
        "event": "soap_call",
        "operation": operation.rsplit("}", 1)[-1] if operation else None,
        "outcome": ctx.transport.resp_code[:3],
        "soap": ctx.app.in_protocol.version,
        "ms": round((time.time() - ctx.call_start) * 1000, 2),
    }
    if ctx.out_error is not None:
        entry["fault"] = ctx.out_error.faultcode
    if udc.account is not None:
        entry["provider_id"] = udc.account.provider_id
        entry["environment"] = udc.account.environment
    if udc.records is not None:
        entry["records"] = len(udc.records)
        entry["records_ok"] = sum(1 for j in udc.records if j.ok)
    log.info("SOAP call", extra=entry)


def make_wsgi_application(services, soap12: bool = False) -> WsgiApplication:
    """One SOAP endpoint: the application and spyne's WSGI server around it. The body it is given
    must hold at most max_body_bytes + 1 bytes (wsgi.py reads it)."""
    app = ParsApplication(services, ParsSoap12 if soap12 else ParsSoap11)
    wsgi = WsgiApplication(app, max_content_length=services.settings.limits.max_body_bytes)
    wsgi.event_manager.add_listener("wsgi_call", _new_call)
    wsgi.event_manager.add_listener("wsgi_return", _log_call)
    wsgi.event_manager.add_listener("wsgi_exception", _log_call)
    return wsgi
