"""Cleaning raw tweets into text worth learning from.

What the API hands out is not what a politician wrote: retweets are someone else's words, texts
cut by the API end in a half word, ``…`` and a t.co link, and links mean nothing to a language
model. Mentions stay (politicians do write them), duplicates and near-empty replies go.

A cut tweet must not teach an ending: a third of the candidates' tweets were cut, and a model
trained on them with EOS learned that a third of all tweets stop mid-sentence. A cut text is
trimmed to its last complete sentence; when that leaves too little, the cut text is kept but
marked open (``complete=False``), and training then learns its words but not an ending there.
The same holds for a tweet that ends mid-sentence once its trailing link is removed
("Mira la entrevista en https://t.co/…").
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from generation.decoding.endings import ends_mid_sentence

RETWEET = re.compile(r"^\s*RT\s+@(\w+):?\s*")
# A cut text ends with a (probably partial) word, "…" and usually a link to the full tweet.
TRUNCATED_END = re.compile(r"\S*…\s*(?:https?://t\.co/\S*\s*)*$")
LINK = re.compile(r"https?://\S+|www\.\S+")
MENTION = re.compile(r"(?<!\w)@\w+")
HASHTAG = re.compile(r"#(\w+)")
WORD = re.compile(r"[^\W\d_][\w'’-]*")
SPACES = re.compile(r"\s+")
# The end of a complete sentence: a full stop, ! or ?, closing quotes or brackets, then a space.
SENTENCE_END = re.compile(r"[.!?][\"'»”)\]]*(?=\s)")


def retweeted(text: str) -> tuple[str, str] | None:
    """``(author, text)`` of the tweet a retweet repeats; None for a tweet of its own."""
    match = RETWEET.match(text)
    return (match.group(1), text[match.end():]) if match else None


def last_sentences(text: str) -> str:
    """``text`` up to the end of its last complete sentence ("" when it has none)."""
    ends = [m.end() for m in SENTENCE_END.finditer(text + " ")]
    return text[: ends[-1]] if ends else ""


def _tidy(text: str) -> str:
    return SPACES.sub(" ", LINK.sub(" ", text)).strip()


def clean_tweet(raw: str, min_words: int = 1) -> tuple[str, bool]:
    """``(text, complete)``: the cleaned tweet, and whether it may teach an ending.

    A cut text becomes its complete sentences when they hold ``min_words`` words or more;
    otherwise it stays as cut, open.
    """
    text = html.unescape(raw or "")
    body = TRUNCATED_END.sub("", text)
    if body != text:
        trimmed = _tidy(last_sentences(body))
        if content_words(trimmed) >= min_words:
            return trimmed, True
        return _tidy(body), False
    text = _tidy(text)
    return text, not ends_mid_sentence(text)


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
    #: Kept tweets that end open (cut with no complete sentence, or open once links went).
    open: int = 0


@dataclass(frozen=True)
class Cleaned:
    """A kept tweet: its row in the input, its text, and whether it may teach an ending."""

    index: int
    text: str
    complete: bool


def clean_tweets(
    texts: Iterable[str], min_words: int, stats: CleanStats, retweets: bool = False,
    skip_authors: frozenset[str] = frozenset(),
) -> Iterator[Cleaned]:
    """The tweets worth keeping, counting what was dropped in ``stats``.

    Retweets are someone else's words: dropped, unless ``retweets`` keeps the repeated text (more
    Spanish for a base model), except retweets of ``skip_authors`` (lowercase handles), whose
    own tweets may be held out.
    """
    seen_keys: set[str] = set()
    for index, raw in enumerate(texts):
        stats.seen += 1
        repeated = retweeted(raw or "")
        if repeated and (not retweets or repeated[0].lower() in skip_authors):
            stats.retweets += 1
            continue
        text, complete = clean_tweet(repeated[1] if repeated else raw, min_words)
        if content_words(text) < min_words:
            stats.short += 1
            continue
        key = duplicate_key(text)
        if key in seen_keys:
            stats.duplicates += 1
            continue
        seen_keys.add(key)
        stats.kept += 1
        stats.open += not complete
        yield Cleaned(index, text, complete)
