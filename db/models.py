"""The generation log's schema: who asked what, what the bot said, and what admins decided.

One schema for SQLite and PostgreSQL; Alembic migrations in ``db/migrations`` create it.
JSON columns hold the parsed controls and decoding parameters as they were at request time,
so a logged tweet can be reproduced (model + prompt + parameters + seed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[type, Any]] = {
        datetime: DateTime(timezone=True), dict: JSON, list: JSON
    }


class User(Base):
    """A person on a platform (Telegram, Discord, console)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(256), default="")
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    banned: Mapped[bool] = mapped_column(Boolean, default=False)


class Chat(Base):
    """Where a command came from: a private chat, a group, a guild channel, the console."""

    __tablename__ = "chats"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="private")
    title: Mapped[str] = mapped_column(String(256), default="")
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)


class Request(Base):
    """One command that asked for a tweet, from arrival to its final status.

    ``status`` is ``pending`` from the moment the command is logged until it is answered
    (``ok``) or refused (``error``, ``busy``, ``rate_limited``, ``blocked``, ``expired``).
    ``reply_to`` holds what a restarted bot needs to answer a pending request in place
    (platform message id, or a Discord interaction token).
    """

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_status_created", "status", "created_at"),
        Index("ix_requests_platform_created", "platform", "created_at"),
        #: A reply to a tweet may name its placeholder before the tweet's own ref is stored.
        Index("ix_requests_answer_ref", "answer_ref"),
        # A platform that delivers a message again (after a crash) finds it already logged.
        Index("ux_requests_platform_source", "platform", "source", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    platform: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    chat_id: Mapped[int | None] = mapped_column(ForeignKey("chats.id", ondelete="SET NULL"))
    raw_command: Mapped[str] = mapped_column(Text)
    controls: Mapped[dict] = mapped_column(default=dict)
    side: Mapped[str] = mapped_column(String(32), default="")
    coalition: Mapped[str] = mapped_column(String(128), default="")
    party: Mapped[str] = mapped_column(String(64), default="")
    sentiment: Mapped[str] = mapped_column(String(16), default="")
    model: Mapped[str] = mapped_column(String(128), default="")
    prompt: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict] = mapped_column(default=dict)
    seed: Mapped[int | None] = mapped_column(BigInteger, default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str] = mapped_column(Text, default="")
    queue_ms: Mapped[float | None] = mapped_column(Float, default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    reply_to: Mapped[dict] = mapped_column(default=dict)
    #: Id of a request this one repeats (``/otra``, 🔁).
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"))
    #: The platform's identity of the message that asked (Telegram ``chat_id:message_id``, a
    #: Discord interaction id); None where there is none (the console).
    source: Mapped[str | None] = mapped_column(String(128), default=None)
    #: Until when the process answering it owns it; another process may resume it only after.
    #: Short, and renewed by its holder while it works (a heartbeat: db/leases.py).
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    #: The process (its log's random id) whose lease that is; None once given up.
    lease_holder: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The platform message that carries (or will carry) the answer, logged before the tweet
    #: exists: a Telegram placeholder edited into the tweet, a Discord deferred response. Any
    #: process that delivers the answer edits it, so a repeated delivery shows one tweet.
    answer_ref: Mapped[str] = mapped_column(String(128), default="", server_default="")
    #: When the answer (tweet, refusal or error) reached the platform; None while it has not.
    answered_at: Mapped[datetime | None] = mapped_column(default=None)

    generations: Mapped[list[Generation]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="Generation.candidate"
    )


class Generation(Base):
    """One candidate tweet of a request; ``shown`` marks the one users saw."""

    __tablename__ = "generations"
    __table_args__ = (
        Index("ix_generations_created", "created_at"),
        Index("ix_generations_review", "review_status", "created_at"),
        #: A reply to a tweet names the message that shows it (``LoggedGeneration.message_ref``).
        Index("ix_generations_message_ref", "message_ref"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    candidate: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    seed: Mapped[int | None] = mapped_column(BigInteger, default=None)
    shown: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The ranker's score (higher fits the request better; the shown one is the best) and its
    #: parts; None for tweets logged before ranking, or by a front-end that did not rank.
    score: Mapped[float | None] = mapped_column(Float, default=None)
    score_detail: Mapped[dict | None] = mapped_column(JSON, default=None)
    #: ``pending`` until an admin approves, rejects or flags it (latest review wins).
    review_status: Mapped[str] = mapped_column(String(16), default="pending")
    #: Platform message id of the reply that carried it, once sent.
    message_ref: Mapped[str] = mapped_column(String(128), default="")
    #: Set just before the platform is asked to send it: with no ``message_ref`` it means "maybe
    #: sent", which is never sent again; unset means it never left and can be sent after a crash.
    sending_at: Mapped[datetime | None] = mapped_column(default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The admin reviewing it in the desk's review stream, until ``claimed_until``: a claim
    #: keeps two admins off the same tweet and lapses by itself if the admin walks away.
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)

    request: Mapped[Request] = relationship(back_populates="generations")


class Rating(Base):
    """A user's 👍 / 👎 on a generation (one per user; changing it overwrites)."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("generation_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    value: Mapped[int] = mapped_column(Integer)  # +1 or -1
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Review(Base):
    """An admin's decision on a generation (``undone``: an earlier decision taken back)."""

    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_generation", "generation_id", "created_at"),
        Index("ix_reviews_audit", "audit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    admin: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(16))  # approved / rejected / flagged / undone
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Why it was rejected (a code from ``db.review.REJECT_REASONS``); "" for other decisions.
    reason: Mapped[str] = mapped_column(String(32), default="", server_default="")
    #: The audit entry of the action that wrote it: one per decision, however many tweets it
    #: covered, so a bulk decision can be undone from that entry.
    audit_id: Mapped[int | None] = mapped_column(Integer, default=None)


class AuditEntry(Base):
    """Every admin action (reviews, bans, exports, publications, logins), append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_created", "created_at"),
        Index("ix_audit_admin", "admin", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    admin: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[dict] = mapped_column(default=dict)


class AdminUser(Base):
    """A named account of the web desk, so the audit says who did what."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: argon2; never the password.
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdminSession(Base):
    """A desk login, kept on the server so that logging out (or a password change, or
    "close every session") ends it: the cookie only names it, by a token whose hash is here."""

    __tablename__ = "admin_sessions"
    __table_args__ = (Index("ix_admin_sessions_admin", "admin", "revoked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: SHA-256 of the cookie's token: a copy of this table opens no session.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class GameRound(Base):
    """A round of ¿Real o ficticio?: a real tweet and a generated one shown side by side.

    The texts are copied here (not only referenced) so a round's figures survive the asker's
    ``/borrarme`` and the desk can show what fooled people. ``real_slot`` says which of A and B
    was real; ``closed_at`` is set once, by whoever closes it first (time-out or "Revelar").
    """

    __tablename__ = "game_rounds"
    __table_args__ = (
        Index("ix_game_rounds_chat", "platform", "chat_id", "closed_at"),
        Index("ix_game_rounds_model", "model", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[int | None] = mapped_column(ForeignKey("chats.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    generation_id: Mapped[int | None] = mapped_column(ForeignKey("generations.id", ondelete="SET NULL"))
    model: Mapped[str] = mapped_column(String(128), default="")
    controls: Mapped[dict] = mapped_column(default=dict)
    real_slot: Mapped[str] = mapped_column(String(1))  # "A" or "B"
    real_text: Mapped[str] = mapped_column(Text)
    real_author: Mapped[str] = mapped_column(String(128), default="")
    real_date: Mapped[str] = mapped_column(String(32), default="")
    fake_text: Mapped[str] = mapped_column(Text)
    deadline: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    #: ``time`` (the round ran out) or ``button`` (the asker or an admin pressed "Revelar").
    closed_by: Mapped[str] = mapped_column(String(16), default="")
    #: Where the round's message is, as the front-end that sent it needs it to edit it.
    message: Mapped[dict] = mapped_column(default=dict)


class GameVote(Base):
    """A member's guess in a round (one per member; pressing again changes it)."""

    __tablename__ = "game_votes"
    __table_args__ = (UniqueConstraint("round_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("game_rounds.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    choice: Mapped[str] = mapped_column(String(1))  # "A" or "B": the one voted real
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
