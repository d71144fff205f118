"""Carrying out a sandbox fault over HTTP (SOAP and /api/v1); service.faults decides whether there is one."""

from __future__ import annotations

import socket
import time

from ..service import faults

WSGI_HEADER = "HTTP_" + faults.HEADER.upper().replace("-", "_")


def header(environ) -> str | None:
    """The request's X-PARS-Sandbox-Fault as sent (a save carries it to the service, for its hold)."""
    return environ.get(WSGI_HEADER)


def asked(account, environ) -> faults.Fault | None:
    """The call's fault (FaultUnreadable when a sandbox call names none of them)."""
    return faults.fault_for(account, header(environ))


def drop_connection(environ) -> None:
    """Close the client's connection now, without an answer (gunicorn's socket; what is written to
    it afterwards is discarded by gunicorn as a write to a closed connection)."""
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client has gone already


def wait(fault: faults.Fault | None) -> None:
    if fault is not None and fault.kind == faults.DELAY:
        time.sleep(fault.seconds)
