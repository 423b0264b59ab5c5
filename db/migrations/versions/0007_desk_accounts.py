"""A desk admins can trust: named accounts, sessions the server ends, claims, undoable decisions.

``admin_users`` holds the desk's named accounts (argon2 hashes); ``admin_sessions`` each login,
so logging out, a password change or "close every session" ends it on the server and a copied
cookie opens nothing. ``generations.claimed_by`` / ``claimed_until`` keep two admins of the
review stream off the same tweet. ``reviews.reason`` is why a tweet was rejected, and
``reviews.audit_id`` ties each review to the audit entry of the decision that wrote it, so a
bulk decision can be undone from that entry.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("password_changed_at", TS, nullable=False),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("admin", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_index("ix_admin_sessions_admin", "admin_sessions", ["admin", "revoked_at"])
    with op.batch_alter_table("generations") as generations:
        generations.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        generations.add_column(sa.Column("claimed_until", TS, nullable=True))
    with op.batch_alter_table("reviews") as reviews:
        reviews.add_column(sa.Column("reason", sa.String(32), nullable=False, server_default=""))
        reviews.add_column(sa.Column("audit_id", sa.Integer(), nullable=True))
    op.create_index("ix_reviews_audit", "reviews", ["audit_id"])
    op.create_index("ix_audit_admin", "audit_log", ["admin", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_admin", table_name="audit_log")
    op.drop_index("ix_reviews_audit", table_name="reviews")
    with op.batch_alter_table("reviews") as reviews:
        reviews.drop_column("audit_id")
        reviews.drop_column("reason")
    with op.batch_alter_table("generations") as generations:
        generations.drop_column("claimed_until")
        generations.drop_column("claimed_by")
    op.drop_index("ix_admin_sessions_admin", table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_table("admin_users")
