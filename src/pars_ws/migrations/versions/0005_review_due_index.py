"""the board review finds due records by index

The review's queries ask for Submitted records of the reviewing boards submitted before a cutoff.
On (environment, status, board) every Submitted record not yet due was read to find the due ones,
at every poll of every worker; with submitted_at in the index only the due ones are.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_learner_records_due", "learner_records", ["environment", "status", "board", "submitted_at"])
    # The new index leads with the old one's columns: every query that used the old one uses it.
    op.drop_index("ix_learner_records_status", table_name="learner_records")


def downgrade() -> None:
    op.create_index("ix_learner_records_status", "learner_records", ["environment", "status", "board"])
    op.drop_index("ix_learner_records_due", table_name="learner_records")
