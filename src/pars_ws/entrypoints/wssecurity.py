"""WS-Security UsernameToken, read from the raw SOAP header (declaring it as a spyne header breaks
the WSDL for zeep). PasswordText only: PasswordDigest needs the clear password on the server."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from spyne.model.fault import Fault

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_TEXT = "#PasswordText"
PASSWORD_DIGEST = "#PasswordDigest"
FRESHNESS = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class UsernameToken:
    username: str
    password: str
    nonce: str | None
    created: str | None


def _security_fault(text: str) -> Fault:
    return Fault(faultcode="Client.Security", faultstring=text)


def _parse_created(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def username_token(header_elements, services, ctx) -> UsernameToken | None:
    """The UsernameToken of a wsse:Security header, checked for freshness and replay; None without one."""
    for header in header_elements or ():
        if header.tag != f"{{{WSSE}}}Security":
            continue
        token = header.find(f"{{{WSSE}}}UsernameToken")
        if token is None:
            raise _security_fault("wsse:Security carries no UsernameToken.")
        password_el = token.find(f"{{{WSSE}}}Password")
        kind = (password_el.get("Type") or PASSWORD_TEXT) if password_el is not None else PASSWORD_TEXT
        if kind.endswith(PASSWORD_DIGEST):
            raise _security_fault("PasswordDigest is not supported: send the UsernameToken with PasswordText.")
        if not kind.endswith(PASSWORD_TEXT):
            raise _security_fault("Unsupported UsernameToken password type.")
        username = (token.findtext(f"{{{WSSE}}}Username") or "").strip()
        nonce = token.findtext(f"{{{WSSE}}}Nonce")
        created = token.findtext(f"{{{WSU}}}Created")
        if created is not None:
            try:
                when = _parse_created(created)
            except ValueError:
                raise _security_fault("wsu:Created is not a valid timestamp.")
            now = services.clock.now()
            if abs(now - when) > FRESHNESS:
                raise _security_fault("The UsernameToken is stale: wsu:Created is outside the 5-minute window.")
        if nonce is not None:
            if not services.nonces.first_use(nonce.strip(), username):
                raise _security_fault("The UsernameToken nonce was already used.")
        return UsernameToken(username, password_el.text or "" if password_el is not None else "", nonce, created)
    return None
