"""a change counter for activities, kept by triggers

Processes cache activities (every SOAP call looks its own up) and check this counter, read in the
same transaction, to know the cache still holds. Triggers keep it, so every writer counts: the
service, the CLI, an administrator's SQL.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WATCHED = ("activities", "registrations")
BUMP = "UPDATE change_counters SET value = value + 1 WHERE name = 'activities'"


def upgrade() -> None:
    op.create_table(
        "change_counters",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_change_counters")),
    )
    op.execute("INSERT INTO change_counters (name, value) VALUES ('activities', 0)")
    if op.get_context().dialect.name == "postgresql":
        # BEFORE the statement: a writer locks the counter row before any activity row, so two
        # writers queue on the counter instead of deadlocking on each other's rows.
        op.execute(
            "CREATE FUNCTION pars_activities_changed() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        for table in WATCHED:
            op.execute(
                f"CREATE TRIGGER {table}_changed BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION pars_activities_changed()"
            )
    else:  # SQLite: row triggers only (its write lock is the whole database: no deadlock)
        for table in WATCHED:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_{event.lower()}_changed AFTER {event} ON {table} BEGIN {BUMP}; END")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER {table}_changed ON {table}")
        op.execute("DROP FUNCTION pars_activities_changed()")
    else:
        for table in WATCHED:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_{event}_changed")
    op.drop_table("change_counters")
