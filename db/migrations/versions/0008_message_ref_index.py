"""Finding a tweet by the platform message that shows it: an index on
``generations.message_ref``.

A reply to one of the bot's tweets ("más enojado", "otra") names the message it answers
(Telegram ``chat_id:message_id``); the bot looks the tweet up by that reference to write the
follow-up from its controls. In a busy group every reply to the bot is such a look-up, so it must
not scan the whole table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_generations_message_ref", "generations", ["message_ref"])


def downgrade() -> None:
    op.drop_index("ix_generations_message_ref", table_name="generations")
