"""The WSGI application: the guarded SOAP endpoints, the WSDL and schemas, and the web pages.

Every request gets a correlation ID; SOAP calls write one JSON log line each.
"""
from __future__ import annotations

import io
import json
import logging
import mimetypes
import sys
import time
from urllib.parse import parse_qs

from lxml import etree
from spyne.model.fault import Fault
from spyne.server.wsgi import WsgiApplication
from sqlalchemy.exc import DBAPIError

from ..adapters.xml_guard import XmlRefused, check_content_type, parse_xml
from ..resources import schema_dir, wsdl_dir
from ..service.container import Services
from .http_auth import new_correlation_id
from .soap import P, free_each_call, make_application

log = logging.getLogger("pars_ws.calls")

SERVICE_PATH = "/services/ACCMELearnerService.svc"
SOAP12_PATH = SERVICE_PATH + "/soap12"
WSDL_FILE = "ACCMELearnerService.wsdl"
WSDL_PLACEHOLDER = "http://localhost:8000"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
# A call that lost a deadlock (or a serialization check) is run again, at most this many times.
TRANSIENT_RETRIES = 3


class CallContext:
    """Per-call facts spyne carries in ctx.udc."""

    def __init__(self, correlation_id: str):
        self.correlation_id = correlation_id
        self.account = None
        self.records = None


def fault_document(soap12: bool, code: str, text: str, correlation_id: str, limit: str | None = None) -> bytes:
    """A SOAP fault written here, for requests refused before spyne sees them and for errors that escape spyne.

    `limit` (one of xml_guard.LIMIT_NAMES) goes in the detail as p:Limit, for clients and tests.
    A code not starting with "Client" is a receiver fault (SOAP 1.2 env:Receiver).
    """
    if soap12:
        env = etree.Element(f"{{{SOAP12_ENV}}}Envelope", nsmap={"env": SOAP12_ENV, "p": P})
        fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP12_ENV}}}Body"), f"{{{SOAP12_ENV}}}Fault")
        c = etree.SubElement(fault, f"{{{SOAP12_ENV}}}Code")
        sender = code.startswith("Client")
        etree.SubElement(c, f"{{{SOAP12_ENV}}}Value").text = "env:Sender" if sender else "env:Receiver"
        sub = etree.SubElement(c, f"{{{SOAP12_ENV}}}Subcode")
        etree.SubElement(sub, f"{{{SOAP12_ENV}}}Value").text = "p:" + code.split(".", 1)[-1]
        reason = etree.SubElement(fault, f"{{{SOAP12_ENV}}}Reason")
        t = etree.SubElement(reason, f"{{{SOAP12_ENV}}}Text")
        t.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        t.text = text
        detail = etree.SubElement(fault, f"{{{SOAP12_ENV}}}Detail")
    else:
        env = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"soap": SOAP11_ENV, "p": P})
        fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP11_ENV}}}Body"), f"{{{SOAP11_ENV}}}Fault")
        etree.SubElement(fault, "faultcode").text = f"soap:{code}"
        etree.SubElement(fault, "faultstring").text = text
        detail = etree.SubElement(fault, "detail")
    etree.SubElement(detail, f"{{{P}}}CorrelationID").text = correlation_id
    if limit:
        etree.SubElement(detail, f"{{{P}}}Limit").text = limit
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


class ParsWsgi:
    def __init__(self, services: Services, web_app=None):
        self.services = services
        self.limits = services.settings.limits
        self.soap11 = self._spyne(services, soap12=False)
        self.soap12 = self._spyne(services, soap12=True)
        self.web = web_app
        self.wsdl_text = (wsdl_dir() / WSDL_FILE).read_text(encoding="utf-8")

    def _spyne(self, services, soap12: bool) -> WsgiApplication:
        app = make_application(services, soap12=soap12)
        app.event_manager.add_listener("method_call", _start_call)
        app.event_manager.add_listener("method_exception_object", _label_fault)
        # The guard already enforces the body limit; spyne's own cap must not be lower.
        wsgi = WsgiApplication(app, max_content_length=self.limits.max_body_bytes + 1)
        free_each_call(wsgi)
        return wsgi

    def __call__(self, environ, start_response):
        environ["pars.correlation_id"] = new_correlation_id()
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path in (SERVICE_PATH, SOAP12_PATH):
            if method == "GET":
                query = {k.lower() for k in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)}
                if "wsdl" in query or "singlewsdl" in query:
                    return self._wsdl(environ, start_response)
                return _plain(start_response, "200 OK", "ACCMELearnerService: POST SOAP requests here; ?wsdl for the contract.\n")
            if method == "POST":
                return self._soap(environ, start_response, soap12=path == SOAP12_PATH)
            return _plain(start_response, "405 Method Not Allowed", "POST SOAP requests or GET ?wsdl.\n")
        if path.startswith("/schemas/"):
            return self._schema(path[len("/schemas/"):], start_response)
        if self.web is not None:
            return self.web(environ, start_response)
        return _plain(start_response, "404 Not Found", "Not found.\n")

    # -- contract files
    def _wsdl(self, environ, start_response):
        base = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST') or environ.get('SERVER_NAME')}"
        body = self.wsdl_text.replace(WSDL_PLACEHOLDER, base).encode("utf-8")
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    def _schema(self, name: str, start_response):
        root = schema_dir().resolve()
        target = (root / name).resolve()
        if root not in target.parents or not target.is_file():
            return _plain(start_response, "404 Not Found", "Not found.\n")
        body = target.read_bytes()
        ctype = "text/xml; charset=utf-8" if target.suffix == ".xsd" else (mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    # -- SOAP
    def _soap(self, environ, start_response, soap12: bool):
        started = time.perf_counter()
        cid = environ["pars.correlation_id"]
        try:
            body = self._guarded_body(environ, soap12)
        except _Refused as refused:
            return self._refuse(refused, refused.soap12 if refused.soap12 is not None else soap12,
                                cid, started, start_response)
        except Exception:  # noqa: BLE001 - a bug in the guard must still answer with a SOAP fault
            logging.getLogger("pars_ws.errors").exception("guard failure %s", cid)
            refused = _Refused("Server", "Internal error while processing the request.", "500 Internal Server Error")
            return self._refuse(refused, soap12, cid, started, start_response)
        app = self.soap12 if soap12 else self.soap11
        for attempt in range(1 + TRANSIENT_RETRIES):
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("pars.transient", None)
            captured: dict = {}

            def capture(status, headers, exc_info=None):
                # Held back until the call is final: a transient database conflict is run again.
                captured.update(status=status, headers=headers, exc_info=exc_info)
                return _no_write

            try:
                out = app.handle_rpc(environ, capture)  # POSTs only: the WSDL is served above
            except Exception:  # noqa: BLE001 - spyne let something escape: still a SOAP fault, no traceback
                logging.getLogger("pars_ws.errors").exception("uncaught in spyne %s", cid)
                refused = _Refused("Server", "Internal error while processing the request.",
                                   "500 Internal Server Error")
                return self._refuse(refused, soap12, cid, started, start_response)
            if not environ.get("pars.transient") or attempt == TRANSIENT_RETRIES:
                break
            # The call's one transaction was rolled back whole: running it again is safe.
            if hasattr(out, "close"):
                out.close()
            logging.getLogger("pars_ws.errors").warning("transient database conflict %s: retrying", cid)
        start_response(captured["status"], captured["headers"], captured.get("exc_info"))
        udc = environ.get("pars.udc")
        _log_call(cid, environ.get("pars.operation"), captured.get("status", "")[:3], started, soap12, udc)
        return out

    def _refuse(self, refused: "_Refused", soap12: bool, cid: str, started: float, start_response):
        doc = fault_document(soap12, refused.code, refused.text, cid, refused.limit)
        _log_call(cid, None, refused.code, started, soap12)
        start_response(refused.status, [("Content-Type", _soap_type(soap12)), ("Content-Length", str(len(doc)))])
        return [doc]

    def _guarded_body(self, environ, soap12: bool) -> bytes:
        try:
            check_content_type(environ.get("CONTENT_TYPE"))
        except XmlRefused as exc:
            raise _Refused("Client.Limit", str(exc), "415 Unsupported Media Type", exc.limit)
        limit = self.limits.max_body_bytes
        too_big = _Refused("Client.Limit", f"The request body exceeds the limit of {limit} bytes.",
                           "413 Request Entity Too Large", "body-size")
        length = (environ.get("CONTENT_LENGTH") or "").strip()
        if length.isdigit() and int(length) > limit:
            raise too_big  # before reading a byte of it
        # Never more than limit + 1 bytes, whatever the headers say (chunked bodies have none).
        body = environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            raise too_big
        try:
            tree = parse_xml(body, self.limits)
        except XmlRefused as exc:
            kind = "InvalidRequest" if exc.limit in ("malformed", "encoding") else "Limit"
            raise _Refused(f"Client.{kind}", str(exc), "400 Bad Request", exc.limit)
        root = tree.getroot()
        other = SOAP11_ENV if soap12 else SOAP12_ENV
        if root.tag == f"{{{other}}}Envelope":
            sent, path = ("1.1", SERVICE_PATH) if soap12 else ("1.2", SOAP12_PATH)
            # Answered in the client's own SOAP version, so its toolkit can read the fault.
            raise _Refused("Client.VersionMismatch",
                           f"This endpoint speaks SOAP {'1.2' if soap12 else '1.1'}; the request is a SOAP {sent} "
                           f"envelope: post it to {path}.", "400 Bad Request", soap12=not soap12)
        header, operation = _envelope_parts(root, SOAP12_ENV if soap12 else SOAP11_ENV)
        environ["pars.envelope"] = (root, header, operation)
        environ["pars.body"] = body
        return body


def _envelope_parts(root, env_ns: str):
    """(Header or None, operation element) of a well-shaped envelope, for spyne to take as found;
    _Refused saying what is wrong with the shape otherwise (spyne crashes on some shapes).

    Envelope: an optional Header, then exactly one Body holding exactly one element (WS-I Basic
    Profile, document/literal). SOAP 1.1 tolerates further elements after the Body; 1.2 does not.
    """
    def refused(text: str) -> _Refused:
        return _Refused("Client.InvalidRequest", text, "400 Bad Request")

    if root.tag != f"{{{env_ns}}}Envelope":
        raise refused(f"The request is not a SOAP envelope: the root element must be {{{env_ns}}}Envelope.")
    children = list(root.iterchildren(etree.Element))
    tags = [c.tag for c in children]
    expected = [f"{{{env_ns}}}Header"] * (tags[:1] == [f"{{{env_ns}}}Header"]) + [f"{{{env_ns}}}Body"]
    position = len(expected) - 1
    extra = tags[len(expected):]
    if tags[:len(expected)] != expected or set(expected) & set(extra) or (env_ns == SOAP12_ENV and extra):
        raise refused("The SOAP envelope must hold an optional Header followed by exactly one Body.")
    content = list(children[position].iterchildren(etree.Element))
    if len(content) != 1:
        raise refused(f"The SOAP Body must hold exactly one operation element, not {len(content)}.")
    if any(name.startswith(XSI) for name in content[0].attrib):
        # spyne reads xsi:nil / xsi:type on the operation element itself and fails on them.
        raise refused("xsi:nil and xsi:type are not allowed on the operation element.")
    return (children[0] if position else None), content[0]


class _Refused(Exception):
    def __init__(self, code: str, text: str, status: str, limit: str | None = None, soap12: bool | None = None):
        super().__init__(text)
        self.code, self.text, self.status, self.limit = code, text, status, limit
        self.soap12 = soap12  # None: answer in the endpoint's SOAP version


def _soap_type(soap12: bool) -> str:
    return "application/soap+xml; charset=utf-8" if soap12 else "text/xml; charset=utf-8"


def _plain(start_response, status: str, text: str):
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def _start_call(ctx):
    env = ctx.transport.req_env
    ctx.udc = CallContext(env["pars.correlation_id"])
    env["pars.udc"] = ctx.udc
    env["pars.operation"] = ctx.method_request_string.rsplit("}", 1)[-1] if ctx.method_request_string else None


def _no_write(data: bytes) -> None:
    raise RuntimeError("the SOAP endpoints return their body; write() is not supported")


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


def _label_fault(ctx):
    """Put the correlation ID in every fault; never show an internal error's text to the client."""
    env = getattr(ctx.transport, "req_env", {}) or {}
    cid = env.get("pars.correlation_id", "")
    err = ctx.out_error
    if err is None:
        return
    if _transient(sys.exc_info()[1]):  # spyne fires this event inside its except clause
        env["pars.transient"] = True
    if not (err.faultcode or "").startswith("Client"):
        logging.getLogger("pars_ws.errors").error("server fault %s: %s", cid, err.faultstring)
        ctx.out_error = err = Fault("Server", "Internal error while processing the request.")
    err.faultstring = f"{err.faultstring} (correlation ID {cid})"
    if env.get("pars.operation") is None and ctx.method_request_string:
        env["pars.operation"] = ctx.method_request_string.rsplit("}", 1)[-1]


def _log_call(cid, operation, outcome, started, soap12, udc=None):
    if not log.isEnabledFor(logging.INFO):
        return
    entry = {
        "event": "soap_call", "correlation_id": cid, "operation": operation, "outcome": outcome,
        "soap": "1.2" if soap12 else "1.1", "ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if udc is not None and udc.account is not None:
        entry["provider_id"] = udc.account.provider_id
        entry["environment"] = udc.account.environment
    if udc is not None and udc.records is not None:
        entry["records"] = len(udc.records)
        entry["records_ok"] = sum(1 for j in udc.records if j.ok)
    log.info(json.dumps(entry))


def create_app(services: Services | None = None):
    services = services or Services()
    from .web import create_web_app

    return ParsWsgi(services, create_web_app(services))
