"""Ranked candidates: each candidate's fit to the request, as the ranker scored it.

``generations.score`` is the ranker's total (higher fits better; the shown candidate has the
highest), ``generations.score_detail`` its parts (fit, contrast, topic, ending), so the review
desk can show why a tweet was chosen. Tweets stored before this migration have no score.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("score", sa.Float(), nullable=True))
    op.add_column("generations", sa.Column("score_detail", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as generations:
        generations.drop_column("score_detail")
        generations.drop_column("score")
