"""The WSGI application: the guarded SOAP endpoints, the WSDL and schemas, and the web pages.

Every request gets a correlation ID; SOAP calls write one JSON log line each.
"""
from __future__ import annotations

import io
import json
import logging
import mimetypes
import time
import uuid
from urllib.parse import parse_qs

from lxml import etree
from spyne.model.fault import Fault
from spyne.server.wsgi import WsgiApplication

from ..adapters.xml_guard import XmlRefused, check_content_type, parse_xml
from ..resources import schema_dir, wsdl_dir
from ..service.container import Services
from .soap import P, make_application

log = logging.getLogger("pars_ws.calls")

SERVICE_PATH = "/services/ACCMELearnerService.svc"
SOAP12_PATH = SERVICE_PATH + "/soap12"
WSDL_FILE = "ACCMELearnerService.wsdl"
WSDL_PLACEHOLDER = "http://localhost:8000"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"


class CallContext:
    """Per-call facts spyne carries in ctx.udc."""

    def __init__(self, correlation_id: str):
        self.correlation_id = correlation_id
        self.account = None
        self.records = None


def fault_document(soap12: bool, code: str, text: str, correlation_id: str) -> bytes:
    """A SOAP fault written here, for requests refused before spyne sees them."""
    if soap12:
        env = etree.Element(f"{{{SOAP12_ENV}}}Envelope", nsmap={"env": SOAP12_ENV, "p": P})
        fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP12_ENV}}}Body"), f"{{{SOAP12_ENV}}}Fault")
        c = etree.SubElement(fault, f"{{{SOAP12_ENV}}}Code")
        etree.SubElement(c, f"{{{SOAP12_ENV}}}Value").text = "env:Sender"
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
        return WsgiApplication(app, max_content_length=self.limits.max_body_bytes + 1)

    def __call__(self, environ, start_response):
        environ["pars.correlation_id"] = uuid.uuid4().hex
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
            body = self._guarded_body(environ)
        except _Refused as refused:
            doc = fault_document(soap12, refused.code, refused.text, cid)
            _log_call(cid, None, refused.code, started, soap12)
            start_response(refused.status, [("Content-Type", _soap_type(soap12)), ("Content-Length", str(len(doc)))])
            return [doc]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = status
            return start_response(status, headers, exc_info)

        app = self.soap12 if soap12 else self.soap11
        out = app(environ, capture)
        udc = environ.get("pars.udc")
        _log_call(cid, environ.get("pars.operation"), captured.get("status", "")[:3], started, soap12, udc)
        return out

    def _guarded_body(self, environ) -> bytes:
        try:
            check_content_type(environ.get("CONTENT_TYPE"))
        except XmlRefused as exc:
            raise _Refused("Client.Limit", str(exc), "415 Unsupported Media Type")
        limit = self.limits.max_body_bytes
        length = environ.get("CONTENT_LENGTH")
        if length and length.isdigit() and int(length) > limit:
            raise _Refused("Client.Limit", f"The request body exceeds the limit of {limit} bytes.", "413 Request Entity Too Large")
        body = environ["wsgi.input"].read(limit + 1) if not length else environ["wsgi.input"].read(int(length))
        if len(body) > limit:
            raise _Refused("Client.Limit", f"The request body exceeds the limit of {limit} bytes.", "413 Request Entity Too Large")
        try:
            tree = parse_xml(body, self.limits)
        except XmlRefused as exc:
            kind = "InvalidRequest" if exc.limit in ("malformed", "encoding") else "Limit"
            raise _Refused(f"Client.{kind}", str(exc), "400 Bad Request")
        environ["pars.document"] = tree.getroot()
        environ["pars.body"] = body
        return body


class _Refused(Exception):
    def __init__(self, code: str, text: str, status: str):
        super().__init__(text)
        self.code, self.text, self.status = code, text, status


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


def _label_fault(ctx):
    """Put the correlation ID in every fault; never show an internal error's text to the client."""
    env = getattr(ctx.transport, "req_env", {}) or {}
    cid = env.get("pars.correlation_id", "")
    err = ctx.out_error
    if err is None:
        return
    if not (err.faultcode or "").startswith("Client"):
        logging.getLogger("pars_ws.errors").error("server fault %s: %s", cid, err.faultstring)
        ctx.out_error = err = Fault("Server", "Internal error while processing the request.")
    err.faultstring = f"{err.faultstring} (correlation ID {cid})"
    if env.get("pars.operation") is None and ctx.method_request_string:
        env["pars.operation"] = ctx.method_request_string.rsplit("}", 1)[-1]
    env["pars.fault"] = err.faultcode


def _log_call(cid, operation, outcome, started, soap12, udc=None):
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
