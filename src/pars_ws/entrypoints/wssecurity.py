"""WS-Security UsernameToken, read from the raw SOAP header (declaring it as a spyne header breaks
the WSDL for zeep). PasswordText only: PasswordDigest needs the clear password on the server.

With wsu:Created the token must be within the freshness window (5 minutes by default, either side
of now, as CXF, WSE and Metro do); with a Nonce, a nonce already seen is refused in every process
(adapters/nonces.py keeps them in the database for twice the window)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from spyne.model.fault import Fault

from ..adapters.clock import as_utc
from ..adapters.nonces import KEEP

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_TEXT = "#PasswordText"
PASSWORD_DIGEST = "#PasswordDigest"
FRESHNESS = dt.timedelta(minutes=5)  # default; Settings.ws_freshness_seconds


@dataclass(frozen=True)
class UsernameToken:
    username: str
    password: str


def _security_fault(text: str) -> Fault:
    return Fault(faultcode="Client.Security", faultstring=text)


def _parse_created(text: str) -> dt.datetime:
    return as_utc(dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")))


def _minutes(window: dt.timedelta) -> str:
    seconds = int(window.total_seconds())
    return f"{seconds // 60}-minute" if seconds % 60 == 0 else f"{seconds}-second"


def username_token(header_elements, services, call) -> UsernameToken | None:
    """The UsernameToken of a wsse:Security header, checked for freshness and replay; None without one.

    `call` is the call's soap.CallContext: a call run again after a transient database conflict
    has already used its nonce."""
    window = dt.timedelta(seconds=services.settings.ws_freshness_seconds or FRESHNESS.total_seconds())
    for header in header_elements or ():
        if header.tag != f"{{{WSSE}}}Security":
            continue
        token = header.find(f"{{{WSSE}}}UsernameToken")
        if token is None:
            raise _security_fault("wsse:Security carries no UsernameToken.")
        password_el = token.find(f"{{{WSSE}}}Password")
        kind = (password_el.get("Type") or PASSWORD_TEXT) if password_el is not None else PASSWORD_TEXT
        if kind.endswith(PASSWORD_DIGEST):
            raise _security_fault(
                "PasswordDigest is not supported (the service keeps only password hashes): "
                "send the UsernameToken with PasswordText over HTTPS."
            )
        if not kind.endswith(PASSWORD_TEXT):
            raise _security_fault("Unsupported UsernameToken password type.")
        username = (token.findtext(f"{{{WSSE}}}Username") or "").strip()
        nonce = token.findtext(f"{{{WSSE}}}Nonce")
        created = token.findtext(f"{{{WSU}}}Created")
        if created is not None:
            try:
                when = _parse_created(created)
                skew = abs(services.clock.now() - when)
            except (ValueError, OverflowError):
                raise _security_fault("wsu:Created is not a valid timestamp.") from None
            if skew > window:
                raise _security_fault(
                    f"The UsernameToken is stale: wsu:Created is outside the {_minutes(window)} window."
                )
        if nonce is not None:
            keep = max(KEEP, 2 * window + dt.timedelta(minutes=1))
            seen = (username, nonce.strip())
            if call.nonce != seen:
                if not services.nonces.first_use(nonce.strip(), username, keep):
                    raise _security_fault("The UsernameToken nonce was already used.")
                call.nonce = seen
        password = (password_el.text or "") if password_el is not None else ""
        return UsernameToken(username, password)
    return None
