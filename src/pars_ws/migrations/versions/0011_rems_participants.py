"""Opioid Analgesic REMS: activities.rems, batches.submission_type and the rems_participants table

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: copying activities or batches (SQLite's way to change a table) would delete
    # their registrations and batch results through the cascades.
    op.add_column("activities", sa.Column("rems", sa.Boolean(), nullable=False, server_default=sa.text("false")))
    op.add_column(
        "batches",
        sa.Column("submission_type", sa.String(length=10), nullable=False, server_default=sa.text("'boards'")),
    )
    op.create_table(
        "rems_participants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("environment", sa.String(length=10), nullable=False),
        sa.Column("provider_pk", sa.Integer(), sa.ForeignKey("providers.id"), nullable=False),
        sa.Column("batch_pk", sa.Integer(), sa.ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
        sa.Column("batch_row", sa.Integer(), nullable=False),
        sa.Column("activity_id", sa.String(length=9), nullable=False),
        sa.Column("participant_id", sa.String(length=255), nullable=False),
        sa.Column("participant_id_domain", sa.String(length=255)),
        sa.Column("completion_date", sa.Date(), nullable=False),
        sa.Column("profession", sa.String(length=50), nullable=False),
        sa.Column("state", sa.String(length=2)),
        sa.Column("dea_registration", sa.String(length=20)),
        sa.Column("practice_area", sa.String(length=50)),
        sa.Column("surgical_procedures", sa.Boolean()),
        sa.Column("time_in_practice", sa.String(length=30)),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("batch_pk", "batch_row"),
    )
    op.create_index("ix_rems_participants_activity", "rems_participants", ["environment", "provider_pk", "activity_id"])


def downgrade() -> None:
    op.drop_index("ix_rems_participants_activity", table_name="rems_participants")
    op.drop_table("rems_participants")
    op.drop_column("batches", "submission_type")
    op.drop_column("activities", "rems")
