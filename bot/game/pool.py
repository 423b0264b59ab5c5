"""The real tweets a round shows: a model's held-out tweets, as ``politico-train prepare`` wrote them.

A model's ``real_tweets`` file (``[generation.models.NAME]``) is JSONL with the rows of
prepare's ``test.jsonl``: ``tweet``, ``autor``, ``partido``, ``coalicion``, ``lado``,
``sentimiento``, ``entidades``, ``hashtags`` and, when the source had it, ``fecha``. Only
complete tweets of ordinary length are used: a cut or overlong real tweet would be an easy tell.
The file is read once and read again only when it changes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Date fields a row may carry, in order of preference.
DATE_FIELDS = ("fecha", "created_at", "date")
TWITTER_DATE = "%a %b %d %H:%M:%S %z %Y"


class PoolUnavailable(Exception):
    """The model's real tweets cannot be used; ``str(exc)`` is the one-line reason for players."""


@dataclass(frozen=True)
class RealTweet:
    """A real tweet with its controls, so the generated one can be asked for with the same."""

    text: str
    author: str
    date: str
    side: str
    coalition: str
    party: str
    sentiment: str
    entities: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()

    def controls(self) -> dict[str, Any]:
        """Its party, sentiment and topic as ``/tuit`` controls (no key phrases: those would
        copy the real tweet's words into the fake)."""
        return {
            "side": self.side, "coalition": self.coalition, "party": self.party,
            "sentiment": self.sentiment, "entities": list(self.entities),
            "hashtags": list(self.hashtags),
        }


def day_of(value: object) -> str:
    """A row's date as ``YYYY-MM-DD`` (ISO or Twitter's own format); "" when there is none."""
    text = str(value or "").strip()
    if not text:
        return ""
    for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, TWITTER_DATE)):
        try:
            return parse(text).date().isoformat()
        except ValueError:
            continue
    return text[:32]


def _strings(value: object) -> tuple[str, ...]:
    """A list field (entities, hashtags) as clean strings; a lone string counts as one."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(v).strip() for v in value if str(v).strip())


def tweet_of(row: dict[str, Any], max_chars: int) -> RealTweet | None:
    """A usable real tweet from a row, or None (incomplete, overlong, or missing a field)."""
    text = str(row.get("tweet") or "").strip()
    party = str(row.get("partido") or "").strip()
    sentiment = str(row.get("sentimiento") or "").strip()
    if not text or not party or not sentiment or len(text) > max_chars or row.get("completo") is False:
        return None
    date = next((day_of(row[f]) for f in DATE_FIELDS if row.get(f)), "")
    return RealTweet(
        text=text, author=str(row.get("autor") or "").strip(), date=date,
        side=str(row.get("lado") or "").strip(), coalition=str(row.get("coalicion") or "").strip(),
        party=party, sentiment=sentiment, entities=_strings(row.get("entidades")),
        hashtags=_strings(row.get("hashtags")),
    )


def read_pool(path: Path, max_chars: int) -> list[RealTweet]:
    """The usable tweets of a JSONL file; lines that are not JSON objects are skipped."""
    tweets = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s:%d: not JSON, skipped", path, number)
                continue
            tweet = tweet_of(row, max_chars) if isinstance(row, dict) else None
            if tweet is not None:
                tweets.append(tweet)
    return tweets


class RealTweets:
    """Each model's pool, read on first use and again when its file changes."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._cache: dict[str, tuple[float, list[RealTweet]]] = {}

    def pool(self, model: str, path: str) -> list[RealTweet]:
        """The model's real tweets; :class:`PoolUnavailable` says in one line what to fix."""
        where = f"[generation.models.{model}]"
        if not path:
            raise PoolUnavailable(
                f"El modelo «{model}» no tiene tuits reales para jugar: agrega "
                f'real_tweets = "ruta/test.jsonl" (el test.jsonl de politico-train prepare) '
                f"en {where} de config.toml."
            )
        file = Path(path)
        try:
            changed = file.stat().st_mtime
        except OSError:
            raise PoolUnavailable(
                f"No encuentro los tuits reales del modelo «{model}» ({file.name}): revisa "
                f"real_tweets en {where} de config.toml."
            ) from None
        cached = self._cache.get(path)
        if cached is None or cached[0] != changed:
            cached = (changed, read_pool(file, self.max_chars))
            self._cache[path] = cached
        if not cached[1]:
            raise PoolUnavailable(
                f"{file.name} (real_tweets del modelo «{model}») no tiene tuits completos con "
                "partido y sentimiento: usa el test.jsonl de politico-train prepare."
            )
        return cached[1]
