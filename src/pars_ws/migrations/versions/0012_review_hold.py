"""a sandbox record may be held back from the board review (X-PARS-Sandbox-Fault: hold=N)

review_after: the time before which the board review does not take the record; NULL (every
production record, every record saved without a hold) lets the review take it as usual.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN of a nullable column: no table copy (SQLite's would cascade-delete
    # record_events, see 0008), no rewrite on PostgreSQL.
    op.add_column("learner_records", sa.Column("review_after", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("learner_records", "review_after")
