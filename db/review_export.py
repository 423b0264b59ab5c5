"""Export rows: every tweet of the filtered requests, with what reproduces it (prompt,
parameters, seed) and what was judged of it (score and parts, review, votes).

One row per tweet (a request that produced none is one row with empty tweet fields), oldest
first. Times are ISO 8601 in the desk's time zone with their offset, so a spreadsheet and a
script read the same instant. The reviewer, note and time are those of the decision in force
(an undone decision is not).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from db.models import Chat, Generation, Request, Review
from db.review_query import Author, Filters, matching, vote_count

#: The fields of each exported row, in order (CSV header, JSONL keys).
EXPORT_COLUMNS = (
    "request_id", "generation_id", "created_at", "platform", "user", "chat", "model", "side",
    "coalition", "party", "sentiment", "raw_command", "controls", "prompt", "params", "request_seed",
    "status", "error", "queue_ms", "candidate", "seed", "shown", "text", "tokens", "latency_ms",
    "score", "score_parts", "review_status", "reason", "reviewer", "note", "decided_at", "up", "down",
)

_Decision = aliased(Review)


def _in_force() -> Any:
    """The id of the current tweet's latest review whose decision is its state now."""
    return (
        select(func.max(Review.id))
        .where(Review.generation_id == Generation.id, Review.decision == Generation.review_status)
        .correlate(Generation)
        .scalar_subquery()
    )


def stamp(moment: datetime | None, zone: tzinfo) -> str:
    """ISO 8601 with the offset, in ``zone`` (stored times without one are UTC)."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).isoformat(timespec="seconds")


async def export_rows(
    sessions: async_sessionmaker[AsyncSession], filters: Filters, zone: tzinfo
) -> AsyncIterator[dict[str, Any]]:
    query = (
        select(
            Request.id, Generation.id, Request.created_at, Request.platform, Author.display_name,
            Author.platform, Author.external_id, Chat.title, Chat.kind, Chat.external_id, Request.model,
            Request.side, Request.coalition, Request.party, Request.sentiment, Request.raw_command,
            Request.controls, Request.prompt, Request.params, Request.seed, Request.status, Request.error,
            Request.queue_ms, Generation.candidate, Generation.seed, Generation.shown, Generation.text,
            Generation.tokens, Generation.latency_ms, Generation.score, Generation.score_detail,
            Generation.review_status, _Decision.reason, _Decision.admin, _Decision.note,
            _Decision.created_at, vote_count(1), vote_count(-1),
        )
        .select_from(Request)
        .outerjoin(Generation, Generation.request_id == Request.id)
        .outerjoin(Author, Author.id == Request.user_id)
        .outerjoin(Chat, Chat.id == Request.chat_id)
        .outerjoin(_Decision, _Decision.id == _in_force())
        .where(Request.id.in_(matching(filters, zone)))
        .order_by(Request.created_at, Request.id, Generation.candidate, Generation.id)
    )
    async with sessions() as session:
        async for r in await session.stream(query):
            user = f"{r[5]}:{r[6]}" if r[6] else ""
            chat = (r[7] or f"{r[8]} {r[9]}") if r[9] else ""
            yield {
                "request_id": r[0], "generation_id": r[1], "created_at": stamp(r[2], zone),
                "platform": r[3], "user": f"{r[4]} ({user})" if r[4] else user, "chat": chat,
                "model": r[10], "side": r[11], "coalition": r[12], "party": r[13], "sentiment": r[14],
                "raw_command": r[15], "controls": r[16] or {}, "prompt": r[17], "params": r[18] or {},
                "request_seed": r[19], "status": r[20], "error": r[21], "queue_ms": r[22],
                "candidate": r[23], "seed": r[24], "shown": r[25], "text": r[26], "tokens": r[27],
                "latency_ms": r[28], "score": r[29], "score_parts": r[30] or {},
                "review_status": r[31], "reason": r[32] or "", "reviewer": r[33] or "", "note": r[34] or "",
                "decided_at": stamp(r[35], zone), "up": int(r[36] or 0), "down": int(r[37] or 0),
            }
