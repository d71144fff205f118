"""The database schema (SQLAlchemy Core). Alembic migrations (pars_ws/migrations) create the same tables."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

POINTS = Numeric(10, 2, asdecimal=True)

providers = Table(
    "providers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("provider_id", String(7), nullable=False, unique=True),  # ACCME provider ID, leading zeros kept
    Column("name", String(200), nullable=False),
    Column("domain", String(200), nullable=False),  # used in assigned CreditIDs: ccid:<domain>:<id>
    Column("email", String(320), nullable=False),
    Column("contact", String(200)),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("provider_pk", ForeignKey("providers.id"), nullable=False),
    Column("environment", String(10), nullable=False),  # sandbox | production: decided by the credential alone
    Column("username", String(100), nullable=False, unique=True),
    Column("secret_hash", String(200), nullable=False),  # argon2id
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("rotated_at", DateTime(timezone=True)),
    # Failed-login throttling per credential.
    Column("failed_logins", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", DateTime(timezone=True)),
)

# People who log in to the pages: separate from web-service credentials, as in PARS.
web_users = Table(
    "web_users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("provider_pk", ForeignKey("providers.id"), nullable=False),
    Column("environment", String(10), nullable=False),  # sandbox | production, as for credentials
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False, unique=True),  # the log-in, kept in lower case
    Column("password_hash", String(200), nullable=False),  # argon2id
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_set_at", DateTime(timezone=True)),
    Column("failed_logins", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", DateTime(timezone=True)),
)

activities = Table(
    "activities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("environment", String(10), nullable=False),
    Column("provider_pk", ForeignKey("providers.id"), nullable=False),
    Column("activity_id", String(9), nullable=False),
    Column("provider_activity_id", String(100)),
    Column("title", String(500), nullable=False),
    Column("activity_type", String(100), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=False),
    Column("reporting_year", Integer, nullable=False),
    Column("credits", POINTS, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("rems", Boolean, nullable=False, server_default=text("false")),  # an Opioid Analgesic REMS activity
    UniqueConstraint("environment", "activity_id"),
)

registrations = Table(
    "registrations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("activity_pk", ForeignKey("activities.id", ondelete="CASCADE"), nullable=False),
    Column("board", String(10), nullable=False),
    Column("max_points", POINTS, nullable=False),
    Column("credit_types", Text, nullable=False),  # names, one per line
    UniqueConstraint("activity_pk", "board"),
)

registry_learners = Table(
    "registry_learners",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("environment", String(10), nullable=False),
    Column("board", String(10), nullable=False),
    Column("learner_id", String(50), nullable=False),
    Column("learner_key", String(50), nullable=False),  # folded learner_id
    Column("npi", String(10)),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("last_name_key", String(100), nullable=False),  # case/accent-folded, for name + DOB matching
    Column("dob_month", Integer),
    Column("dob_day", Integer),
    Column("review_reject_code", Integer),  # sandbox: the board review rejects with this code
    UniqueConstraint("environment", "board", "learner_key"),
    Index("ix_registry_learners_npi", "environment", "board", "npi"),
    Index("ix_registry_learners_name", "environment", "board", "last_name_key"),
)

registry_completions = Table(
    "registry_completions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("learner_pk", ForeignKey("registry_learners.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("activity_id", String(9), nullable=False),
    Column("completion_date", Date, nullable=False),
)

raw_requests = Table(
    "raw_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("environment", String(10), nullable=False),
    Column("provider_pk", ForeignKey("providers.id"), nullable=False),
    Column("source", String(20), nullable=False),
    Column("correlation_id", String(40), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("body", LargeBinary, nullable=False),  # zlib-compressed request or file, for audit
)

learner_records = Table(
    "learner_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("environment", String(10), nullable=False),
    Column("provider_pk", ForeignKey("providers.id"), nullable=False),
    Column("credit_id", String(255), nullable=False),
    Column("activity_id", String(9), nullable=False),
    Column("board", String(10), nullable=False),
    Column("learner_id_type", String(50)),
    Column("learner_id", String(50)),
    Column("learner_key", String(50), nullable=False),  # folded ID of the registry learner it matched
    Column("matched_learner_id", String(50)),  # that registry learner's ID, as the board keeps it
    Column("npi", String(10)),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("dob_month", Integer),
    Column("dob_day", Integer),
    Column("completion_date", Date, nullable=False),
    Column("credits", POINTS, nullable=False),
    Column("credit_types", Text, nullable=False),  # names, one per line
    Column("source", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("reject_code", Integer),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    Column("review_after", DateTime(timezone=True)),  # sandbox hold=N: the board review waits until then
    Column("request_pk", ForeignKey("raw_requests.id")),
    Column("batch_pk", Integer),
    Column("batch_row", Integer),  # 1-based record number in the batch file
    # A CreditID belongs to at most one live record of a provider: the database decides races.
    Index(
        "uq_learner_records_live_credit_id",
        "environment",
        "provider_pk",
        "credit_id",
        unique=True,
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
    # What a learner holds for an activity (the rules' points and same-day lookups), read from the
    # index alone however many records the learner has.
    Index(
        "ix_learner_records_held",
        "environment",
        "provider_pk",
        "board",
        "activity_id",
        "learner_key",
        "completion_date",
        "status",
        "credits",
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
    # GetLearnerStatusByLearner (no board given), deleted records included.
    Index("ix_learner_records_learner", "environment", "provider_pk", "activity_id", "learner_key"),
    # The board review asks for Submitted records due (submitted before a cutoff): an index range.
    Index("ix_learner_records_due", "environment", "status", "board", "submitted_at"),
    # A batch row is stored at most once, even when a crashed worker's batch is resumed.
    Index(
        "uq_learner_records_batch_row",
        "batch_pk",
        "batch_row",
        unique=True,
        sqlite_where=text("batch_pk IS NOT NULL"),
        postgresql_where=text("batch_pk IS NOT NULL"),
    ),
)

record_events = Table(
    "record_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("record_pk", ForeignKey("learner_records.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("code", Integer),
    Column("note", String(200)),
)

# WS-Security nonces seen in the last minutes: shared by every process, so a replay is refused anywhere.
ws_nonces = Table(
    "ws_nonces",
    metadata,
    Column("nonce_hash", String(64), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False, index=True),
)


# Uploaded batches: what was uploaded, and how far processing has gone.
batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("environment", String(10), nullable=False),
    Column("provider_pk", ForeignKey("providers.id"), nullable=False),
    Column("credential_pk", ForeignKey("credentials.id")),
    Column("file_name", String(255), nullable=False),
    Column("file_type", String(4), nullable=False),  # txt | xml | xlsx
    Column("submission_type", String(10), nullable=False, server_default=text("'boards'")),  # boards | rems
    Column("content_sha256", String(64), nullable=False),
    Column("forced", Boolean, nullable=False, server_default=text("false")),
    Column("status", String(12), nullable=False),  # queued | processing | done | failed
    Column("records_total", Integer),
    Column("rows_done", Integer, nullable=False, server_default=text("0")),  # resume point after a crash
    Column("records_processed", Integer, nullable=False, server_default=text("0")),
    Column("records_failed", Integer, nullable=False, server_default=text("0")),
    Column("message", Text),
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("claimed_by", String(100)),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # One file per provider and environment at a time: the database decides races.
    Index(
        "uq_batches_active",
        "environment",
        "provider_pk",
        unique=True,
        sqlite_where=text("status IN ('queued', 'processing')"),
        postgresql_where=text("status IN ('queued', 'processing')"),
    ),
    Index("ix_batches_history", "environment", "provider_pk", "uploaded_at"),
    Index("ix_batches_sha", "environment", "provider_pk", "content_sha256"),
)

# The uploaded file itself, so any worker on any host can process it and a crash loses nothing. A
# table of its own: SQLite rewrites a whole row on every update, and the batch row is updated after
# every chunk.
batch_files = Table(
    "batch_files",
    metadata,
    Column("batch_pk", ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    Column("content", LargeBinary, nullable=False),
)

# The outcome of every batch row (stored or not, with its codes), for the error report and history.
batch_results = Table(
    "batch_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_pk", ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
    Column("row_index", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("codes", String(200), nullable=False, server_default=text("''")),  # comma-separated
    Column("credit_id", String(255)),
    UniqueConstraint("batch_pk", "row_index"),
)

# Opioid Analgesic REMS participants reported by batch (ActivityReport v2 Participant fields).
rems_participants = Table(
    "rems_participants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("environment", String(10), nullable=False),
    Column("provider_pk", ForeignKey("providers.id"), nullable=False),
    Column("batch_pk", ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
    Column("batch_row", Integer, nullable=False),  # 1-based participant number in the file
    Column("activity_id", String(9), nullable=False),
    Column("participant_id", String(255), nullable=False),
    Column("participant_id_domain", String(255)),
    Column("completion_date", Date, nullable=False),
    Column("profession", String(50), nullable=False),
    Column("state", String(2)),  # postal code
    Column("dea_registration", String(20)),
    Column("practice_area", String(50)),
    Column("surgical_procedures", Boolean),
    Column("time_in_practice", String(30)),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("batch_pk", "batch_row"),
    Index("ix_rems_participants_activity", "environment", "provider_pk", "activity_id"),
)

# Transactional outbox: mail is queued in the same transaction as what it reports, then sent.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("environment", String(10), nullable=False),
    Column("provider_pk", ForeignKey("providers.id")),
    Column("kind", String(30), nullable=False),  # batch-finished | rejections
    Column("recipient", String(320), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Index("ix_mail_outbox_unsent", "sent_at"),
)
