"""The WSGI application: the SOAP endpoints, each endpoint's WSDL, the schemas, and the web pages."""

from __future__ import annotations

import copy
import io
import ipaddress
import logging
import mimetypes
import re
from urllib.parse import parse_qs

from lxml import etree

from .. import logs
from ..resources import schema_dir, wsdl_dir
from ..service.container import Services
from .soap import P, make_wsgi_application

SERVICE_PATH = "/services/ACCMELearnerService.svc"
SOAP12_PATH = SERVICE_PATH + "/soap12"
WSDL_FILE = "ACCMELearnerService.wsdl"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSDL_NS = {"w": "http://schemas.xmlsoap.org/wsdl/", "xs": "http://www.w3.org/2001/XMLSchema"}
# An oversized body is read and dropped up to this many times the limit before the fault is sent:
# clients that send their whole body before reading (urllib, requests, zeep, suds) would otherwise
# meet a reset instead of the answer. Past it, the answer comes at once and the connection closes.
DRAIN_FACTOR = 4
_READ_CHUNK = 1024 * 1024


def fault_document(soap12: bool, text: str, correlation_id: str) -> bytes:
    """A Server fault for an error that escaped spyne (spyne writes every other fault)."""
    if soap12:
        env = etree.Element(f"{{{SOAP12_ENV}}}Envelope", nsmap={"soap12env": SOAP12_ENV, "tns": P})
        fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP12_ENV}}}Body"), f"{{{SOAP12_ENV}}}Fault")
        code = etree.SubElement(fault, f"{{{SOAP12_ENV}}}Code")
        etree.SubElement(code, f"{{{SOAP12_ENV}}}Value").text = "soap12env:Receiver"
        reason = etree.SubElement(etree.SubElement(fault, f"{{{SOAP12_ENV}}}Reason"), f"{{{SOAP12_ENV}}}Text")
        reason.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        reason.text = text
        detail = etree.SubElement(fault, f"{{{SOAP12_ENV}}}Detail")
    else:
        env = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"soap11env": SOAP11_ENV, "tns": P})
        fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP11_ENV}}}Body"), f"{{{SOAP11_ENV}}}Fault")
        etree.SubElement(fault, "faultcode").text = "soap11env:Server"
        etree.SubElement(fault, "faultstring").text = text
        detail = etree.SubElement(fault, "detail")
    etree.SubElement(detail, f"{{{P}}}CorrelationID").text = correlation_id
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


# -- the WSDL ---------------------------------------------------------------------------------------


def endpoint_wsdl(source: etree._ElementTree, soap12: bool) -> etree._ElementTree:
    """The WSDL of one endpoint: its binding and port alone (clients that use the first or the last
    port of a service, as node-soap and gSOAP do, then speak the endpoint's SOAP version), and no
    declaration of the other SOAP binding's namespace (wsdl2h took one for SOAP 1.2 throughout)."""
    tree = copy.deepcopy(source)
    other = "ACCMELearnerServiceSoap" if soap12 else "ACCMELearnerServiceSoap12"
    for node in tree.xpath(
        f"/w:definitions/w:binding[@name='{other}'] | //w:port[@binding='tns:{other}']", namespaces=WSDL_NS
    ):
        node.getparent().remove(node)
    etree.cleanup_namespaces(tree, keep_ns_prefixes=("tns", "xs"))  # these two are used in attribute values
    return tree


# A host name (labels of letters, digits, "-" and "_") or a bracketed IPv6 literal, then a port.
_HOST = re.compile(
    r"(?:(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?"
    r"|\[(?P<ipv6>[0-9A-Fa-f:.]{2,45})\])(?::(?P<port>[0-9]{1,5}))?"
)


def valid_host(value: str | None) -> bool:
    """Whether a Host header (or SERVER_NAME:SERVER_PORT) is a host name or IP literal with an
    optional port: nothing else may name the service in its WSDL."""
    match = _HOST.fullmatch(value or "") if len(value or "") <= 260 else None
    if match is None or (match["port"] is not None and not 0 < int(match["port"]) < 65536):
        return False
    if match["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            return False
    return True


class ParsWsgi:
    def __init__(self, services: Services, web_app=None):
        self.services = services
        self.settings = services.settings
        self.limits = services.settings.limits
        self.soap11 = make_wsgi_application(services)
        self.soap12 = make_wsgi_application(services, soap12=True)
        self.web = web_app
        source = etree.parse(str(wsdl_dir() / WSDL_FILE))
        self.wsdl = {soap12: endpoint_wsdl(source, soap12) for soap12 in (False, True)}

    def __call__(self, environ, start_response):
        logs.correlation_id.set(logs.new_correlation_id())  # every log line of this request names it
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path in (SERVICE_PATH, SOAP12_PATH):
            if method == "GET":
                query = {k.lower() for k in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)}
                if "wsdl" in query or "singlewsdl" in query:
                    return self._wsdl(environ, start_response, soap12=path == SOAP12_PATH)
                return _plain(
                    start_response, "200 OK", "ACCMELearnerService: POST SOAP requests here; ?wsdl for the contract.\n"
                )
            if method == "POST":
                return self._soap(environ, start_response, soap12=path == SOAP12_PATH)
            return _plain(start_response, "405 Method Not Allowed", "POST SOAP requests or GET ?wsdl.\n")
        if path.startswith("/schemas/"):
            return self._schema(path[len("/schemas/") :], start_response)
        if self.web is not None:
            return self.web(environ, start_response)
        return _plain(start_response, "404 Not Found", "Not found.\n")

    # -- contract files
    def base_url(self, environ) -> str:
        """Where clients reach the service: PARS_PUBLIC_URL, else the request's Host when it is a
        valid host[:port], else the server's own name and port."""
        if self.settings.public_url:
            return self.settings.public_url
        scheme = "https" if environ.get("wsgi.url_scheme") == "https" else "http"
        host = environ.get("HTTP_HOST")
        if not valid_host(host):
            host = f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
            if not valid_host(host):
                host = "localhost"
        return f"{scheme}://{host}"

    def _wsdl(self, environ, start_response, soap12: bool):
        base = self.base_url(environ)
        tree = copy.deepcopy(self.wsdl[soap12])
        # lxml escapes what it writes into an attribute: nothing from the request can break the document.
        for address in tree.xpath("//w:port/*[local-name()='address']", namespaces=WSDL_NS):
            address.set("location", base + (SOAP12_PATH if soap12 else SERVICE_PATH))
        # Absolute, so that they resolve from either endpoint's URL (../schemas/ from .../soap12 would not).
        for schema_import in tree.xpath("/w:definitions/w:types/xs:schema/xs:import", namespaces=WSDL_NS):
            schema_import.set(
                "schemaLocation", f"{base}/schemas/{schema_import.get('schemaLocation').rsplit('/', 1)[-1]}"
            )
        body = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    def _schema(self, name: str, start_response):
        root = schema_dir().resolve()
        target = (root / name).resolve()
        if root not in target.parents or not target.is_file():
            return _plain(start_response, "404 Not Found", "Not found.\n")
        body = target.read_bytes()
        ctype = (
            "text/xml; charset=utf-8"
            if target.suffix == ".xsd"
            else (mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        )
        start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    # -- SOAP
    def _soap(self, environ, start_response, soap12: bool):
        app = self.soap12 if soap12 else self.soap11
        body, length = self._body(environ)
        try:
            return app({**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": length}, start_response)
        except Exception:  # noqa: BLE001 - spyne let something escape: still a SOAP fault, no traceback
            cid = logs.correlation_id.get()
            logging.getLogger("pars_ws.errors").exception("uncaught in spyne")
            doc = fault_document(soap12, f"Internal error while processing the request. (correlation ID {cid})", cid)
            content_type = "application/soap+xml; charset=utf-8" if soap12 else "text/xml; charset=utf-8"
            start_response(
                "500 Internal Server Error", [("Content-Type", content_type), ("Content-Length", str(len(doc)))]
            )
            return [doc]

    def _body(self, environ) -> tuple[bytes, str]:
        """The request body for spyne, and the length it is told: spyne refuses a body over the limit
        (it is given at most the limit plus one byte) as soon as it sees the length. The rest of an
        oversized body is read and dropped, up to DRAIN_FACTOR times the limit, so that a client that
        sends its whole body before reading gets the fault."""
        limit = self.limits.max_body_bytes
        stream = environ["wsgi.input"]
        announced = (environ.get("CONTENT_LENGTH") or "").strip()
        if announced.isdigit() and int(announced) > limit:
            if int(announced) <= DRAIN_FACTOR * limit:
                _drain(stream, int(announced))
            return b"", announced
        body = stream.read(int(announced) if announced.isdigit() else limit + 1)  # no length: chunked
        if len(body) > limit:
            _drain(stream, DRAIN_FACTOR * limit - len(body))
        return body, str(len(body))


def _drain(stream, most: int) -> None:
    while most > 0:
        chunk = stream.read(min(_READ_CHUNK, most))
        if not chunk:
            return
        most -= len(chunk)


def _plain(start_response, status: str, text: str):
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def create_app(services: Services | None = None):
    services = services or Services()
    from .web import create_web_app

    return ParsWsgi(services, create_web_app(services))
