"""Heartbeat leases: which process holds a pending request.

``requests.lease_holder`` names the process (a random id per run) whose lease
``requests.lease_until`` is. A live process renews the leases it holds every few seconds with
one UPDATE filtered on its own id, so leases can be short: a dead holder's requests are taken
over within seconds, while a slow but live one keeps renewing its own, and a process whose
lease was taken over meanwhile learns it (its renewal no longer matches).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("lease_holder", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as requests:
        requests.drop_column("lease_holder")
