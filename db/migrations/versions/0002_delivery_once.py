"""Answered once: the message a request came from, its lease, and when a tweet's send began.

``requests.source`` (unique per platform) lets a re-delivered message be recognised,
``requests.lease_until`` lets one process at a time answer a pending request, and
``generations.sending_at`` tells a tweet that never left from one that may have. Tweets stored
before this migration count as attempted, so an upgrade never sends an old tweet again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("requests", sa.Column("source", sa.String(128), nullable=True))
    op.add_column("requests", sa.Column("lease_until", TS, nullable=True))
    op.create_index("ux_requests_platform_source", "requests", ["platform", "source"], unique=True)
    op.add_column("generations", sa.Column("sending_at", TS, nullable=True))
    op.execute("UPDATE generations SET sending_at = COALESCE(sent_at, created_at)")


def downgrade() -> None:
    # Batch mode: SQLite copies the table where it cannot drop a column in place.
    with op.batch_alter_table("generations") as generations:
        generations.drop_column("sending_at")
    op.drop_index("ux_requests_platform_source", table_name="requests")
    with op.batch_alter_table("requests") as requests:
        requests.drop_column("lease_until")
        requests.drop_column("source")
