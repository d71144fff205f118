"""The spyne SOAP application: SOAP 1.1 and 1.2 endpoints for the six PARS operations.

spyne handles the envelope, dispatch and faults. Each operation receives its body element
untouched (`AnyXml`, bare) because `ar:ActivityReports` must sit directly inside
SaveLearnerActivity in its own namespace, which spyne's own models cannot express; the element is
validated against the project's XSD and the response element is written here, so the wire shape is
exactly the one in wsdl/ (which is what clients download, not a spyne-generated WSDL).
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import cached_property, lru_cache

from lxml import etree
from spyne import AnyXml, Application, ServiceBase, const as spyne_const, rpc
from spyne.evmgr import EventManager
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap11, Soap12
from spyne.protocol.xml import XmlDocument

from ..adapters.activity_report import AR, InvalidDocument, read_activity_reports, validate
from ..adapters.clock import as_utc
from ..domain.activities import Activity, ActivityRefused, Registration
from ..domain.dates import parse_dob
from ..domain.errors import message
from ..domain.records import ReportedRecord, Source, Status, StoredRecord
from ..resources import schema_dir
from ..service.auth import AuthenticationFailed
from . import wssecurity

P = "urn:pars-ws:learner:v1"


def q(name: str) -> str:
    return f"{{{P}}}{name}"


@lru_cache(maxsize=None)
def service_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schema_dir() / "pars-learner-service.xsd")))


def _authentication_failed() -> Fault:
    return Fault(faultcode="Client.Authentication", faultstring="Authentication failed.")


def client_fault(kind: str, text: str) -> Fault:
    return Fault(faultcode=f"Client.{kind}", faultstring=text)


def _child(el, tag: str):
    """The first child element with this tag, or None: what find(tag) gives, filtered in C instead of
    through lxml's Python path machinery (about twice the cost, per lookup, in a call)."""
    return next(el.iterchildren(tag), None)


def _text(el, name: str) -> str | None:
    child = _child(el, q(name))
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


# A response holds only elements and text, so it is written as text: an lxml tree built and then
# serialised cost ~30 times as much (18 us against 0.6 for a one-record save's, hot). The text is
# what lxml wrote: &, <, > and CR escaped, and the characters XML cannot carry refused as lxml
# refuses them (ValueError, a server fault). Elements are in the service namespace under the prefix
# the envelope declares for it (_PreParsed.create_out_string).
_NOT_XML_CHARS = "\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
_NOT_XML = re.compile(f"[{_NOT_XML_CHARS}]")
_SPECIAL = re.compile(f"[&<>\r{_NOT_XML_CHARS}]")
TNS = "tns"


class Written(str):
    """An operation's response element, as XML text (see _leaf and _node)."""


def _escaped(value) -> str:
    text = str(value)
    if _SPECIAL.search(text) is None:
        return text
    if _NOT_XML.search(text):
        raise ValueError(f"All strings must be XML compatible: {text!r}")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _leaf(name: str, text) -> str:
    """An element holding text; with None, an empty one."""
    if text is None:
        return f"<{TNS}:{name}/>"
    return f"<{TNS}:{name}>{_escaped(text)}</{TNS}:{name}>"


def _node(name: str, *children: str) -> str:
    if not children:
        return f"<{TNS}:{name}/>"
    return f"<{TNS}:{name}>{''.join(children)}</{TNS}:{name}>"


def _errors(codes) -> str:
    return _node("Errors", *(_node("Error", _leaf("Code", code), _leaf("Message", message(code))) for code in codes))


def _iso(value: dt.datetime) -> str:
    return as_utc(value).isoformat()


def _decimal(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


class Operations:
    """Translation between SOAP elements and the service layer."""

    def __init__(self, services):
        self.services = services

    # -- shared steps
    def check(self, ctx, el) -> None:
        try:
            validate(el, service_schema())
        except InvalidDocument as exc:
            raise client_fault("InvalidRequest", f"The request does not conform to the PARS schema: {exc}")

    def login(self, ctx, el) -> tuple[str | None, str | None, str | None]:
        """(user, password, provider ID): WS-Security's UsernameToken, else the body's elements."""
        token = wssecurity.username_token(ctx.in_header_doc, self.services, ctx)
        user, password = (token.username, token.password) if token else (_text(el, "User"), _text(el, "Password"))
        return user, password, _text(el, "ProviderId")

    def account(self, ctx, el):
        try:
            account = self.services.auth.authenticate(*self.login(ctx, el))
        except AuthenticationFailed:
            raise _authentication_failed()
        ctx.udc.account = account
        return account

    # -- operations
    def save_learner_activity(self, ctx, el):
        self.check(ctx, el)
        # Read before the save's transaction (the writer lock is not held for it); what is wrong
        # with the document is told only to a caller who signs in.
        try:
            parsed, problem = read_activity_reports(_child(el, f"{{{AR}}}ActivityReports")), None
        except InvalidDocument as exc:
            parsed, problem = (), exc

        def records(account):
            ctx.udc.account = account  # the call log names the provider even if what follows fails
            if problem is not None:
                raise client_fault("InvalidRequest", str(problem))
            return parsed

        raw = ctx.transport.req_env.get("pars.body", b"")
        try:
            judgements = self.services.learners.save_signed_in(
                *self.login(ctx, el), records, source=Source.SOAP, raw=raw, correlation_id=ctx.udc.correlation_id)
        except AuthenticationFailed:
            raise _authentication_failed()
        ctx.udc.records = judgements
        ok = sum(1 for j in judgements if j.ok)
        summary = "Success" if ok == len(judgements) else ("Failure" if ok == 0 else "Partial success")
        return Written(_node("SaveLearnerActivityResponse", _leaf("ResultSummary", summary),
                             _node("Results", *(self._record_result(j) for j in judgements))))

    @staticmethod
    def _record_result(j) -> str:
        parts = [_leaf("Index", j.record.index)]
        if j.record.credit_id:
            parts.append(_leaf("CreditID", j.record.credit_id))
        if j.action:
            parts.append(_leaf("Action", j.action.capitalize()))
        parts += [_leaf("Status", j.status.value), _errors(j.codes)]
        return _node("RecordResult", *parts)

    @staticmethod
    def _statuses(name: str, records: list[StoredRecord]) -> Written:
        return Written(_node(name, *(_node(
            "LearnerStatus",
            _leaf("CreditID", rec.credit_id),
            _leaf("ActivityID", rec.activity_id),
            _leaf("Board", rec.board),
            _leaf("LearnerID", rec.learner_id or ""),
            _leaf("CompletionDate", rec.completion_date.isoformat()),
            _leaf("Credits", _decimal(rec.credits)),
            _leaf("Status", rec.status.value),
            _errors([rec.reject_code] if rec.status == Status.REJECTED and rec.reject_code else []),
            _leaf("Submitted", _iso(rec.submitted_at)),
            _leaf("Updated", _iso(rec.updated_at)),
        ) for rec in records)))

    def status_by_credit_id(self, ctx, el):
        self.check(ctx, el)
        account = self.account(ctx, el)
        found = self.services.learners.status_by_credit_id(account, _text(el, "CreditID") or "")
        return self._statuses("GetLearnerStatusByCreditIdResponse", found)

    def status_by_learner(self, ctx, el):
        self.check(ctx, el)
        account = self.account(ctx, el)
        dob_text = _text(el, "DOB")
        dob = parse_dob(dob_text) if dob_text else None
        if dob_text and dob is None:
            raise client_fault("InvalidRequest", "DOB must be given as MM/DD.")
        found = self.services.learners.status_by_learner(
            account, _text(el, "ActivityID") or "", _text(el, "LearnerID") or "",
            dt.date.fromisoformat(_text(el, "CompletionDate")), dob)
        return self._statuses("GetLearnerStatusByLearnerResponse", found)

    def learner_match(self, ctx, el):
        self.check(ctx, el)
        account = self.account(ctx, el)
        board = _text(el, "Board")
        record = ReportedRecord(
            index=1, board=board, learner_id_type=_text(el, "LearnerIDType"),
            learner_id=_text(el, "LearnerID"), first_name=_text(el, "FirstName"), last_name=_text(el, "LastName"),
            dob=_text(el, "DOB"),
        )
        codes = self.services.learners.match_learner(account, record)
        return Written(_node("GetLearnerMatchResponse", _leaf("Matched", "false" if codes else "true"), _errors(codes)))

    def save_activity(self, ctx, el):
        self.check(ctx, el)
        account = self.account(ctx, el)
        activity = self._activity_from(_child(el, q("Activity")))
        try:
            saved = self.services.activities.save(account, activity)
        except ActivityRefused as exc:
            raise client_fault("InvalidActivity", str(exc))
        return self._activity_response("SaveActivityResponse", saved)

    def get_activity(self, ctx, el):
        self.check(ctx, el)
        account = self.account(ctx, el)
        activity_id = _text(el, "ActivityID") or ""
        found = self.services.activities.get(account, activity_id)
        if found is None:
            raise client_fault("NotFound", f"690 {message(690)}")
        return self._activity_response("GetActivityResponse", found)

    @staticmethod
    def _activity_from(a) -> Activity:
        regs = []
        for reg in a.iterfind(f"{q('Registrations')}/{q('Registration')}"):
            regs.append(Registration(
                board=_text(reg, "Board") or "",
                max_points=Decimal(_text(reg, "MaxPoints")),
                credit_types=tuple(t.text.strip() for t in reg.iterfind(f"{q('CreditTypes')}/{q('CreditType')}") if t.text),
            ))
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
    def _activity_response(name: str, activity: Activity) -> Written:
        fields = [_leaf("ActivityID", activity.activity_id)]
        if activity.provider_activity_id:
            fields.append(_leaf("ProviderActivityID", activity.provider_activity_id))
        fields += [
            _leaf("Title", activity.title),
            _leaf("ActivityType", activity.activity_type),
            _leaf("StartDate", activity.start_date.isoformat()),
            _leaf("EndDate", activity.end_date.isoformat()),
            _leaf("ReportingYear", activity.reporting_year),
            _leaf("Credits", _decimal(activity.credits)),
            _node("Registrations", *(_node(
                "Registration",
                _leaf("Board", reg.board),
                _leaf("MaxPoints", _decimal(reg.max_points)),
                _node("CreditTypes", *(_leaf("CreditType", t) for t in reg.credit_types)),
            ) for reg in activity.registrations)),
        ]
        return Written(_node(name, _node("Activity", *fields)))


def _operation(op_name: str, handler: str):
    def call(ctx, _ignored):
        ops: Operations = ctx.app.pars_operations
        return getattr(ops, handler)(ctx, ctx.in_body_doc)

    call.__name__ = op_name
    return rpc(AnyXml, _returns=AnyXml, _body_style="bare", _in_message_name=op_name,
               _out_message_name=f"{op_name}Response", _soap_body_style="document",
               _operation_name=op_name)(call)


OPERATIONS = {
    "SaveLearnerActivity": "save_learner_activity",
    "GetLearnerStatusByCreditId": "status_by_credit_id",
    "GetLearnerStatusByLearner": "status_by_learner",
    "GetLearnerMatch": "learner_match",
    "SaveActivity": "save_activity",
    "GetActivity": "get_activity",
}

LearnerService = type("ACCMELearnerService", (ServiceBase,), {
    name: _operation(name, handler) for name, handler in OPERATIONS.items()
})


class _PreParsed:
    """The guard in front of spyne already parsed the body with the hardened parser: reuse it.
    Reading the envelope and writing the response do what spyne's Soap11 does, with less work: no
    XPath compiled per call, no model built of the body (operations read the element itself), and
    the response element Operations wrote (Written) goes between the envelope's start and end tags
    as text (spyne built a document, declared all fifteen of the application's namespaces, wrapped
    the element, cleaned up and serialised it). The bytes on the wire are the same. Faults go
    through spyne's own serialisation."""

    def create_in_document(self, ctx, charset=None):
        parts = ctx.transport.req_env.get("pars.envelope")
        if parts is None:
            raise Fault("Client.InvalidRequest", "Empty request.")
        ctx.in_document = parts

    def decompose_incoming_envelope(self, ctx, message=XmlDocument.REQUEST):
        # The guard has checked the envelope's shape (wsgi._envelope_parts) and found its parts; the
        # operation is the Body's element child (spyne took its first node, a comment included).
        envelope, header, body_doc = ctx.in_document
        ns = self.ns_soap_env
        if body_doc.tag == f"{{{ns}}}Fault":
            raise Fault("Client.InvalidRequest", "A SOAP Fault is not a request.")
        ctx.in_document = envelope
        ctx.in_header_doc = None if header is None else list(header)
        ctx.in_body_doc = body_doc
        ctx.method_request_string = body_doc.tag
        self.validate_body(ctx, message)

    def generate_method_contexts(self, ctx):
        handles = self.get_call_handles(ctx)
        if len(handles) != 1:
            return super().generate_method_contexts(ctx)
        # One operation and no auxiliary ones: the call's context serves as is (spyne copied it and
        # pointed its parts at the copy; the original was then dropped).
        ctx.descriptor = handles[0]
        return [ctx]

    def deserialize(self, ctx, message):
        if message is not self.REQUEST:
            return super().deserialize(ctx, message)
        self.event_manager.fire_event("before_deserialize", ctx)
        # Operations read the body element itself (AnyXml, bare): spyne's model of it would go unused.
        ctx.in_object = (ctx.in_body_doc,)
        self.event_manager.fire_event("after_deserialize", ctx)

    @cached_property
    def _envelope(self) -> tuple[bytes, bytes]:
        """What an operation's response element is written between: the XML declaration, the
        Envelope and Body start tags (spyne's prefix for the envelope namespace, TNS for the
        service's), and their end tags; the bytes spyne's serialisation gave."""
        ns = self.ns_soap_env
        env = next(prefix for prefix, uri in self.app.interface.nsmap.items() if uri == ns)
        start = (f"<?xml version='1.0' encoding='UTF-8'?>\n<{env}:Envelope xmlns:{env}=\"{ns}\" "
                 f"xmlns:{TNS}=\"{self.app.interface.get_tns()}\"><{env}:Body>")
        return start.encode(), f"</{env}:Body></{env}:Envelope>".encode()

    @staticmethod
    def _written(ctx) -> Written | None:
        """The response an operation wrote, or None for what spyne serialises itself (faults)."""
        if ctx.out_error is not None or ctx.out_header is not None or not ctx.out_object:
            return None
        out = ctx.out_object[0]
        return out if isinstance(out, Written) else None

    def serialize(self, ctx, message):
        if message is not self.RESPONSE or self._written(ctx) is None:
            return super().serialize(ctx, message)
        # No document to build: create_out_string writes the envelope around the operation's text.
        self.event_manager.fire_event("before_serialize", ctx)
        self.event_manager.fire_event("after_serialize", ctx)

    def create_out_string(self, ctx, charset=None):
        written = self._written(ctx)
        if written is None:
            return super().create_out_string(ctx, charset)
        start, end = self._envelope
        ctx.out_string = [start + written.encode() + end]

    def fault_to_http_response_code(self, fault):
        code = getattr(fault, "faultcode", "") or ""
        return "400 Bad Request" if code.startswith("Client") else "500 Internal Server Error"


class ParsSoap11(_PreParsed, Soap11):
    pass


class ParsSoap12(_PreParsed, Soap12):
    pass


class _Events(EventManager):
    """spyne's event manager, without the empty ordered set it built for every event fired with no
    handler: ~17 a call, each a self-referencing list left to the cyclic garbage collector."""

    def fire_event(self, event_name, ctx, *args, **kwargs):
        for handler in self.handlers.get(event_name, ()):
            handler(ctx, *args, **kwargs)


def _lean_events(*owners) -> None:
    """Give these spyne objects (application, protocols, services, server) _Events."""
    for owner in owners:
        owner.event_manager.__class__ = _Events


def _release(ctx) -> None:
    """Unlink a finished call's contexts from each other. spyne's point back at the call's context
    (`parent`, and the protocol contexts' sub-context factories close over it), so the call's whole
    object graph, both XML documents included, was left to the cyclic garbage collector: ~65
    objects a call, ~30 µs of collecting per call."""
    for part in (ctx.transport, ctx.inprot_ctx, ctx.outprot_ctx, ctx.event, ctx.aux):
        if part is not None:
            part.parent = None
            subcontexts = getattr(part, "_subctx", None)
            if subcontexts is not None:
                subcontexts.default_factory = None


def free_each_call(wsgi) -> None:
    """The spyne WSGI server frees what a call made as soon as it ends (see _Events, _release)."""
    _lean_events(wsgi)
    wsgi.event_manager.add_listener("wsgi_close", _release)


def make_application(services, soap12: bool = False) -> Application:
    # spyne runs a full gc.collect() after a call once a second, to close uploaded files early; in a
    # process this size that took 50-150 ms, paid by whichever call came next. spyne reads no files
    # here (the guard buffers the body): leave collection to Python's own thresholds.
    spyne_const.MIN_GC_INTERVAL = float("inf")
    proto = ParsSoap12 if soap12 else ParsSoap11
    app = Application([LearnerService], tns=P, name="ACCMELearnerService",
                      in_protocol=proto(validator=None), out_protocol=proto())
    app.pars_operations = Operations(services)
    _lean_events(app, app.in_protocol, app.out_protocol, LearnerService)
    return app
