"""batch files in a table of their own

An uploaded file moves out of the batches row, which is updated after every chunk of processing
(SQLite rewrote the whole file with each of those updates).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_files",
        sa.Column("batch_pk", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_pk"], ["batches.id"], name=op.f("fk_batch_files_batch_pk_batches"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("batch_pk", name=op.f("pk_batch_files")),
    )
    op.execute("INSERT INTO batch_files (batch_pk, content) SELECT id, content FROM batches")
    # Native on both databases (SQLite 3.35+): a batch-mode table copy would drop the old batches
    # table, and with foreign keys on, that deletes every batch_results row through the cascade.
    op.execute("ALTER TABLE batches DROP COLUMN content")


def downgrade() -> None:
    # Nullable on the way back: adding a NOT NULL column would make SQLite copy the table (see above).
    op.add_column("batches", sa.Column("content", sa.LargeBinary(), nullable=True))
    op.execute("UPDATE batches SET content = (SELECT content FROM batch_files WHERE batch_files.batch_pk = batches.id)")
    op.drop_table("batch_files")
