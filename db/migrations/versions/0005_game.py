"""¿Real o ficticio?: game rounds and their votes.

``game_rounds`` keeps each round's real and generated tweet (copied, so the figures survive a
``/borrarme``), which of A and B was real, its deadline and who closed it, and where its
message is; ``game_votes`` one guess per member and round.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "game_rounds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("chat_id", sa.Integer(), sa.ForeignKey("chats.id", ondelete="SET NULL"), nullable=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("generation_id", sa.Integer(), sa.ForeignKey("generations.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("controls", sa.JSON(), nullable=False),
        sa.Column("real_slot", sa.String(1), nullable=False),
        sa.Column("real_text", sa.Text(), nullable=False),
        sa.Column("real_author", sa.String(128), nullable=False),
        sa.Column("real_date", sa.String(32), nullable=False),
        sa.Column("fake_text", sa.Text(), nullable=False),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("closed_by", sa.String(16), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
    )
    op.create_index("ix_game_rounds_chat", "game_rounds", ["platform", "chat_id", "closed_at"])
    op.create_index("ix_game_rounds_model", "game_rounds", ["model", "created_at"])
    op.create_table(
        "game_votes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("round_id", sa.Integer(), sa.ForeignKey("game_rounds.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("choice", sa.String(1), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.UniqueConstraint("round_id", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("game_votes")
    op.drop_index("ix_game_rounds_model", table_name="game_rounds")
    op.drop_index("ix_game_rounds_chat", table_name="game_rounds")
    op.drop_table("game_rounds")
