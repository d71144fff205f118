"""batches.file_type holds "xlsx" (Excel learner template uploads)

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _widen(length: int) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE batches ALTER COLUMN file_type TYPE VARCHAR({length})")
        return
    # SQLite changes a column's type only by copying the table, and dropping the old batches table
    # would delete every batch_results row through the cascade (see 0003): a new column takes its place.
    op.execute(f"ALTER TABLE batches ADD COLUMN file_type_new VARCHAR({length}) NOT NULL DEFAULT ''")
    op.execute("UPDATE batches SET file_type_new = file_type")
    op.execute("ALTER TABLE batches DROP COLUMN file_type")
    op.execute("ALTER TABLE batches RENAME COLUMN file_type_new TO file_type")


def upgrade() -> None:
    _widen(4)


def downgrade() -> None:
    # Refused by PostgreSQL while an Excel batch is kept (its type has no shorter name); SQLite keeps it.
    _widen(3)
