"""Migrations on a database that holds data: 0003 moves uploaded files out of the batches row and
back again on downgrade, without losing a byte or a batch result; 0006 folds registry NPIs (SQLite
and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import inspect, text

from pars_ws.adapters.database import make_engine
from pars_ws.adapters.migrate import alembic_config, upgrade
from tests.conftest import PG_URL, _pg_database

CONTENT = b"<ActivityReports>\x00\xff binary-safe</ActivityReports>" * 1000


def _seed_0002(engine) -> None:
    now = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO providers (provider_id, name, domain, email) "
                "VALUES ('7654321', 'Migrating', 'm.org', 'm@m.org')"
            )
        )
        provider_pk = conn.execute(text("SELECT id FROM providers WHERE provider_id = '7654321'")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO batches (environment, provider_pk, file_name, file_type, content_sha256, content, status, "
                "uploaded_at) VALUES ('sandbox', :p, 'a.xml', 'xml', 'sha', :c, 'done', :now)"
            ),
            {"p": provider_pk, "c": CONTENT, "now": now},
        )
        batch_pk = conn.execute(text("SELECT id FROM batches")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO batch_results (batch_pk, row_index, status, codes) "
                "VALUES (:b, 1, 'Accepted', ''), (:b, 2, 'Not processed', '661')"
            ),
            {"b": batch_pk},
        )


def test_0003_moves_batch_files_and_back(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(database_url, "0002")
        _seed_0002(engine)
        upgrade(database_url)  # head
        with engine.connect() as conn:
            assert "content" not in {c["name"] for c in inspect(conn).get_columns("batches")}
            assert conn.execute(text("SELECT content FROM batch_files")).scalar_one() == CONTENT
            assert conn.execute(text("SELECT count(*) FROM batch_results")).scalar_one() == 2
        command.downgrade(alembic_config(database_url), "0002")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT content FROM batches")).scalar_one() == CONTENT
            assert conn.execute(text("SELECT count(*) FROM batch_results")).scalar_one() == 2
            assert "batch_files" not in inspect(conn).get_table_names()
        upgrade(database_url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT content FROM batch_files")).scalar_one() == CONTENT
    finally:
        engine.dispose()


def test_0006_folds_the_registry_npis(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(database_url)
        command.downgrade(alembic_config(database_url), "0005")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO registry_learners (environment, board, learner_id, learner_key, npi, first_name, "
                    "last_name, last_name_key) VALUES ('sandbox', 'ME-MD', 'A1', 'a1', ' X23456789', 'F', 'L', 'l'), "
                    "('sandbox', 'ME-MD', 'A2', 'a2', '1245319599', 'F', 'L', 'l'), "
                    "('sandbox', 'ME-MD', 'A3', 'a3', NULL, 'F', 'L', 'l')"
                )
            )
        upgrade(database_url)
        with engine.connect() as conn:
            npis = conn.execute(text("SELECT learner_id, npi FROM registry_learners ORDER BY learner_id")).all()
        assert [tuple(r) for r in npis] == [("A1", "x23456789"), ("A2", "1245319599"), ("A3", None)]
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM registry_learners WHERE learner_id IN ('A1', 'A2', 'A3')"))
    finally:
        engine.dispose()


def test_migrations_build_the_schema_the_code_declares(database_url):
    """Alembic's comparison of the migrated database with adapters/tables.py finds no difference
    (tables, columns, indexes, constraints)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from pars_ws.adapters.tables import metadata

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_0008_keeps_every_record_and_its_events_and_names_the_learner_it_matched(database_url, tmp_path):
    """Adding matched_learner_id must not copy learner_records (SQLite would delete record_events
    through the cascade); records stored before keep the learner they were kept under."""
    drop = None
    if database_url.startswith("postgresql"):
        url, drop = _pg_database(PG_URL)
    else:
        url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    now = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.timezone.utc)
    try:
        upgrade(url, "0007")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO providers (provider_id, name, domain, email) "
                    "VALUES ('7654322', 'Migrating', 'm.org', 'm@m.org')"
                )
            )
            provider_pk = conn.execute(text("SELECT id FROM providers WHERE provider_id = '7654322'")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO learner_records (environment, provider_pk, credit_id, activity_id, board, learner_id, "
                    "learner_key, first_name, last_name, completion_date, credits, credit_types, source, status, "
                    "submitted_at, updated_at) VALUES ('sandbox', :p, 'ccid:m:1', '200930149', 'ABIM', 'AB1', 'ab1', "
                    "'Ann', 'Lee', '2026-05-01', 1, 'ABIM MOC Part II', 'SOAP', 'Accepted', :now, :now)"
                ),
                {"p": provider_pk, "now": now},
            )
            record_pk = conn.execute(text("SELECT id FROM learner_records")).scalar_one()
            conn.execute(
                text("INSERT INTO record_events (record_pk, status, at) VALUES (:r, 'Accepted', :now)"),
                {"r": record_pk, "now": now},
            )
        upgrade(url)  # head
        with engine.connect() as conn:
            assert conn.execute(text("SELECT matched_learner_id FROM learner_records")).scalar_one() == "AB1"
            assert conn.execute(text("SELECT count(*) FROM record_events")).scalar_one() == 1
    finally:
        engine.dispose()
        if drop is not None:
            drop()
