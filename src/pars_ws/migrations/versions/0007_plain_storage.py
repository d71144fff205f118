"""no activity change counter; learner indexes for the rules' aggregates

Activities are read from the database on every call (no process cache), so the change counter and
its triggers go. The rules ask what a learner holds for an activity as aggregates: a partial index
over live records answers them from the index alone; GetLearnerStatusByLearner gets an index
without the board it is not given.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

WATCHED = ("activities", "registrations")
LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
        op.execute("DROP FUNCTION IF EXISTS pars_activities_changed()")
    else:
        for table in WATCHED:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{event}_changed")
    op.drop_table("change_counters")
    op.drop_index("ix_learner_records_learner", table_name="learner_records")
    op.create_index(
        "ix_learner_records_held",
        "learner_records",
        ["environment", "provider_pk", "board", "activity_id", "learner_key", "completion_date", "status", "credits"],
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.create_index(
        "ix_learner_records_learner", "learner_records", ["environment", "provider_pk", "activity_id", "learner_key"]
    )


def downgrade() -> None:
    op.drop_index("ix_learner_records_learner", table_name="learner_records")
    op.drop_index("ix_learner_records_held", table_name="learner_records")
    op.create_index(
        "ix_learner_records_learner",
        "learner_records",
        ["environment", "provider_pk", "board", "activity_id", "learner_key"],
    )
    op.create_table(
        "change_counters",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_change_counters")),
    )
    op.execute("INSERT INTO change_counters (name, value) VALUES ('activities', 0)")
    bump = "UPDATE change_counters SET value = value + 1 WHERE name = 'activities'"
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION pars_activities_changed() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {bump}; RETURN NULL; END $$"
        )
        for table in WATCHED:
            op.execute(
                f"CREATE TRIGGER {table}_changed BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION pars_activities_changed()"
            )
    else:
        for table in WATCHED:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_{event.lower()}_changed AFTER {event} ON {table} BEGIN {bump}; END")
