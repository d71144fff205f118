"""registry NPIs stored folded

SaveLearnerActivity and batches find the records a learner reported by NPI holds through the
registry learners of that NPI, comparing the stored NPI with the reported one folded (spaces
trimmed, case folded): NPIs imported before are folded here as import now folds them.

Revision ID: 0006
Revises: 0005
"""

from alembic import op
from sqlalchemy import text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _fold(value: str) -> str:
    # domain.catalogue.fold as of this revision (a migration keeps its own copy of what it applies)
    return " ".join(value.split()).casefold()


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(text("SELECT id, npi FROM registry_learners WHERE npi IS NOT NULL")).all()
    changed = [{"id": pk, "npi": _fold(npi)} for pk, npi in rows if _fold(npi) != npi]
    if changed:
        conn.execute(text("UPDATE registry_learners SET npi = :npi WHERE id = :id"), changed)


def downgrade() -> None:
    pass  # a folded NPI is the same NPI: nothing to restore
