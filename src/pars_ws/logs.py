"""Logs are JSON lines (python-json-logger), each carrying the correlation ID of the request or job
it belongs to: the ID a fault or a web error shows the client, or a batch's.

    log.info("batch uploaded", extra={"event": "batch_uploaded", "batch": 7})
"""

from __future__ import annotations

import contextvars
import logging
import secrets
import sys

from pythonjsonlogger.json import JsonFormatter

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)


def new_correlation_id() -> str:
    return secrets.token_hex(16)


FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}


class CorrelationFilter(logging.Filter):
    """Every record gets the correlation ID of the request or job under way (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


def json_formatter() -> JsonFormatter:
    return JsonFormatter(FIELDS, rename_fields=RENAMED)


def configure(level: str) -> None:
    """JSON lines on stderr for this process, at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    handler.addFilter(CorrelationFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # spyne logs every client fault as an error with a traceback; pars-ws logs each call itself.
    logging.getLogger("spyne").setLevel(logging.CRITICAL)


def gunicorn_config(level: str) -> dict:
    """The logging of gunicorn's processes (its logconfig_dict): JSON lines, its own and the app's."""
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "json",
        "filters": ["correlation"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"correlation": {"()": CorrelationFilter}},
        "formatters": {"json": {"()": json_formatter}},
        "handlers": {"stderr": handler},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "spyne": {"level": "CRITICAL"},
        },
    }
