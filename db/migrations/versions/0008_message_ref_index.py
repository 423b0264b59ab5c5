"""Finding a tweet by the platform message that shows it: indexes on
``generations.message_ref`` and ``requests.answer_ref``.

A reply to one of the bot's tweets ("más enojado", "otra") names the message it answers
(Telegram ``chat_id:message_id``); the bot looks the tweet up by that reference to write the
follow-up from its controls: by the ref stored once the tweet was delivered, or by its
placeholder's, logged before the tweet existed (a reply can come before the delivery is
recorded). In a busy group every reply to the bot is such a look-up, so it must not scan.

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
    op.create_index("ix_requests_answer_ref", "requests", ["answer_ref"])


def downgrade() -> None:
    op.drop_index("ix_requests_answer_ref", table_name="requests")
    op.drop_index("ix_generations_message_ref", table_name="generations")
