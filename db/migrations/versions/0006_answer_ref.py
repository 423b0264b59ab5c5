"""Answers that survive a crash: where each request's answer goes, and when it got there.

``requests.answer_ref`` names the platform message that will carry the answer (a Telegram
placeholder "✍️ escribiendo…", a Discord deferred response), logged before the tweet exists, so
that whoever delivers the answer (this process, a restarted one or a live peer) edits that one
message instead of sending a new one: an edit repeated after a crash shows the same single
tweet. ``requests.answered_at`` is set once the answer (a tweet, a refusal or an error) reached
the platform; a finished request without it is delivered again by a live process.

Rows finished before this revision count as answered (their delivery was tracked per tweet).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as requests:
        requests.add_column(sa.Column("answer_ref", sa.String(128), nullable=False, server_default=""))
        requests.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE requests SET answered_at = COALESCE(finished_at, created_at) WHERE status <> 'pending'"
    )


def downgrade() -> None:
    with op.batch_alter_table("requests") as requests:
        requests.drop_column("answered_at")
        requests.drop_column("answer_ref")
