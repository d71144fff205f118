"""the registry learner a record matched, kept beside the ID as reported

A learner reported by NPI is stored with that NPI as its learner ID and in the npi column; the
registry learner it matched (its licence number, say) goes in matched_learner_id. Records stored
before matched that learner under the ID they were kept under.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: copying learner_records (SQLite's way to change a table)
    # would delete its record_events through the cascade.
    op.add_column("learner_records", sa.Column("matched_learner_id", sa.String(length=50), nullable=True))
    op.execute("UPDATE learner_records SET matched_learner_id = learner_id")


def downgrade() -> None:
    op.drop_column("learner_records", "matched_learner_id")
