"""Configuration: environment variables only, read once into one object."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1024 * 1024


@dataclass(frozen=True)
class XmlLimits:
    """Hostile-input limits (SPEC 5). All configurable.

    max_attributes counts namespace declarations too: both are attributes on the wire and
    both cost the parser memory. max_depth counts the root element as depth 1; libxml2 itself
    never goes past 256 (huge_tree stays off), so larger values act as 256.
    """

    max_body_bytes: int = 8 * MiB
    max_depth: int = 64
    max_attributes: int = 50
    max_records: int = 2500
    max_file_bytes: int = 16 * MiB

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_depth", "max_attributes", "max_records", "max_file_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"XmlLimits.{name} must be a non-negative int, not {value!r}")
        if self.max_depth < 1:
            raise ValueError("XmlLimits.max_depth must be at least 1")


@dataclass(frozen=True)
class ExcelLimits:
    """What an uploaded .xlsx may unpack to, checked in the zip's directory before the workbook is
    opened (a workbook is a zip of XML parts). A 2,500-record learner template unpacks to a few MB."""

    max_parts: int = 256
    max_part_bytes: int = 48 * MiB  # one part, uncompressed
    max_total_bytes: int = 64 * MiB  # all parts, uncompressed
    max_ratio: int = 200  # uncompressed / compressed, for parts over 1 MiB
    max_shared_strings_bytes: int = 8 * MiB  # the text table openpyxl holds in memory whole


def data_dir() -> Path:
    """Per-user data folder for the embedded default (XDG on Linux)."""
    if os.environ.get("PARS_DATA_DIR"):
        return Path(os.environ["PARS_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "pars-ws"


def default_web_workers(database_url: str) -> int:
    """gunicorn workers when PARS_WORKERS is unset. SQLite: 2 (its writers take turns, more only
    wait). A database server: 2 per CPU, so that a worker waiting on a round trip leaves its CPU to
    another (gunicorn's documentation suggests 2-4 per core)."""
    if database_url.startswith("sqlite"):
        return 2
    return max(2, 2 * (os.cpu_count() or 1))


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class Settings:
    database_url: str
    today: dt.date | None = None  # PARS_TODAY: fixes "today" for every date rule
    limits: XmlLimits = field(default_factory=XmlLimits)
    excel_limits: ExcelLimits = field(default_factory=ExcelLimits)
    credential_cache_seconds: int = 300
    login_max_failures: int = 10  # failed logins in a row that lock a credential (0: never)
    login_lockout_seconds: int = 300  # how long a locked credential is refused
    ws_freshness_seconds: int = 300  # WS-Security wsu:Created window, either side of now
    secret_key: bytes = b""  # keys the verified-credential cache; random per process unless set
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_from: str = "pars-ws@localhost"
    outbox_dir: Path = field(default_factory=lambda: data_dir() / "outbox")
    review_delay_seconds: int = 5  # sandbox: board review this long after submission
    review_interval_seconds: int = 3600  # production schedule
    batch_stale_seconds: int = 60  # a batch whose worker is silent this long is taken over
    log_level: str = "INFO"
    data_dir: Path = field(default_factory=data_dir)  # SQLite file, mail outbox, worker wake-up FIFO
    public_url: str | None = None  # PARS_PUBLIC_URL: the service's address as users reach it (WSDL, e-mail links)
    bind: str = "127.0.0.1:8000"  # PARS_BIND: where `pars-ws serve` listens
    web_workers: int = 2  # gunicorn workers of `pars-ws serve` (PARS_WORKERS, default_web_workers)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        url = env.get("PARS_DATABASE_URL") or f"sqlite:///{data_dir() / 'pars.db'}"
        today = dt.date.fromisoformat(env["PARS_TODAY"]) if env.get("PARS_TODAY") else None
        limits = XmlLimits(
            max_body_bytes=_int("PARS_MAX_BODY_BYTES", XmlLimits.max_body_bytes),
            max_depth=_int("PARS_MAX_DEPTH", XmlLimits.max_depth),
            max_attributes=_int("PARS_MAX_ATTRIBUTES", XmlLimits.max_attributes),
            max_records=_int("PARS_MAX_RECORDS", XmlLimits.max_records),
            max_file_bytes=_int("PARS_MAX_FILE_BYTES", XmlLimits.max_file_bytes),
        )
        return cls(
            database_url=url,
            today=today,
            limits=limits,
            credential_cache_seconds=_int("PARS_CREDENTIAL_CACHE_SECONDS", 300),
            login_max_failures=_int("PARS_LOGIN_MAX_FAILURES", 10),
            login_lockout_seconds=_int("PARS_LOGIN_LOCKOUT_SECONDS", 300),
            ws_freshness_seconds=_int("PARS_WS_FRESHNESS_SECONDS", 300),
            secret_key=(env.get("PARS_SECRET_KEY") or "").encode() or os.urandom(32),
            smtp_host=env.get("PARS_SMTP_HOST") or None,
            smtp_port=_int("PARS_SMTP_PORT", 25),
            mail_from=env.get("PARS_MAIL_FROM", "pars-ws@localhost"),
            outbox_dir=Path(env["PARS_OUTBOX_DIR"]) if env.get("PARS_OUTBOX_DIR") else data_dir() / "outbox",
            review_delay_seconds=_int("PARS_REVIEW_DELAY_SECONDS", 5),
            review_interval_seconds=_int("PARS_REVIEW_INTERVAL_SECONDS", 3600),
            batch_stale_seconds=_int("PARS_BATCH_STALE_SECONDS", 60),
            log_level=env.get("PARS_LOG_LEVEL", "INFO"),
            data_dir=data_dir(),
            public_url=(env.get("PARS_PUBLIC_URL") or "").rstrip("/") or None,
            bind=env.get("PARS_BIND") or "127.0.0.1:8000",
            web_workers=_int("PARS_WORKERS", default_web_workers(url)),
        )
