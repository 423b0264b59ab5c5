"""Cleaning raw tweets into text worth learning from.

What the API hands out is not what a politician wrote: retweets are someone else's words, texts
cut by the API end in a half word, ``…`` and a t.co link, and links mean nothing to a language
model. Mentions stay (politicians do write them), duplicates and near-empty replies go.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

RETWEET = re.compile(r"^\s*RT\s+@\w+")
# A cut text ends with a (probably partial) word, "…" and usually a link to the full tweet.
TRUNCATED_END = re.compile(r"\S*…\s*(?:https?://t\.co/\S*\s*)*$")
LINK = re.compile(r"https?://\S+|www\.\S+")
MENTION = re.compile(r"(?<!\w)@\w+")
HASHTAG = re.compile(r"#(\w+)")
WORD = re.compile(r"[^\W\d_][\w'’-]*")
SPACES = re.compile(r"\s+")


def is_retweet(text: str) -> bool:
    return bool(RETWEET.match(text))


def clean_text(text: str) -> str:
    """One tweet's text without the API's truncation tail, links, HTML entities and extra spaces."""
    text = html.unescape(text or "")
    text = TRUNCATED_END.sub("", text)
    text = LINK.sub(" ", text)
    return SPACES.sub(" ", text).strip()


def content_words(text: str) -> int:
    """Words that are neither mentions nor hashtags: what a reader would call the tweet's text."""
    return len(WORD.findall(HASHTAG.sub(" ", MENTION.sub(" ", text))))


def duplicate_key(text: str) -> str:
    """Two tweets with the same key are the same tweet (case, mentions and spacing ignored)."""
    return SPACES.sub(" ", MENTION.sub("", text).lower()).strip()


@dataclass
class CleanStats:
    seen: int = 0
    retweets: int = 0
    short: int = 0
    duplicates: int = 0
    kept: int = 0


def clean_tweets(texts: Iterable[str], min_words: int, stats: CleanStats) -> Iterator[tuple[int, str]]:
    """``(index, cleaned text)`` of the tweets worth keeping, counting what was dropped in ``stats``."""
    seen_keys: set[str] = set()
    for index, raw in enumerate(texts):
        stats.seen += 1
        if is_retweet(raw or ""):
            stats.retweets += 1
            continue
        text = clean_text(raw)
        if content_words(text) < min_words:
            stats.short += 1
            continue
        key = duplicate_key(text)
        if key in seen_keys:
            stats.duplicates += 1
            continue
        seen_keys.add(key)
        stats.kept += 1
        yield index, text
