"""What a learner holds is read pair by pair through ix_learner_records_held on SQLite, whatever the
statistics say: ANALYZE run on an empty table (a fresh install) must not turn the lookup into a scan
of every record of the board, nor sort a learner's records, either of which grows with the records
stored."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, text

from pars_ws.adapters import learner_store


@pytest.fixture(scope="module")
def sqlite_services(services, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's query plan (PostgreSQL's planner sizes the join by the table's current size)")
    return services


@pytest.mark.parametrize("statement", ["_HELD", "_HELD_ON_DAYS"])
def test_each_pair_asked_about_is_one_index_seek(sqlite_services, statement):
    services = sqlite_services
    seen = []

    def capture(_conn, _cursor, sql, parameters, _context, _many):
        seen.append((sql, parameters))

    params = {
        "environment": "sandbox",
        "provider_pk": 1,
        "board": "ABO",
        "pairs": [["200931446", f"{n}"] for n in range(300)],
        "days": [dt.date(2026, 2, 10)],
    }
    with services.engine.begin() as conn:
        conn.execute(text("ANALYZE"))  # the sandbox's few records, or none: the worst statistics
        event.listen(conn, "before_cursor_execute", capture)
        conn.execute(getattr(learner_store, statement)["sqlite"], params).all()
        event.remove(conn, "before_cursor_execute", capture)
        sql, parameters = seen[-1]
        plan = "\n".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters))
    lines = plan.splitlines()
    assert lines[0].startswith("SCAN asked"), plan
    assert (
        "SEARCH learner_records USING INDEX ix_learner_records_held (environment=? AND provider_pk=? AND "
        "board=? AND activity_id=? AND learner_key=?"
    ) in plan, plan
    assert "SCAN learner_records" not in plan, plan
    # Nor sorted first: a GROUP BY over the join put all of a learner's records in a temporary B-tree.
    assert "TEMP B-TREE" not in plan, plan
