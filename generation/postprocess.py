"""From a raw continuation to a tweet, and the reasons to throw one away.

Pure functions on strings, so the local and the remote backends get the same tweets. A model
that was trained without EOS in places, or a server that does not skip special tokens, leaves
``<|endoftext|>`` and control markers behind (the thesis cleaned them the same way).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from generation.prompts import CONTROL_TOKENS
from generation.settings import PostprocessSettings

#: Tokens that end a text when they show up in it.
END_MARKERS = ("<|endoftext|>", "</s>")
#: Special tokens that are dropped wherever they are.
LEFTOVERS = re.compile(
    "|".join(re.escape(t) for t in (*CONTROL_TOKENS, "<s>", "<pad>", "<unk>"))
    + "|\ufffd|[\x00-\x08\x0b-\x1f\x7f]"  # broken bytes and control characters
)
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_NOT_WORDS = re.compile(r"https?://\S+|[@#]\w+")
_LETTER = re.compile(r"[^\W\d_]")
#: A unit of one to four characters written eight times or more in a row ("aaaaaaaa", "jajaja...").
_STUTTER = re.compile(r"(\S{1,4}?)\1{7,}")
#: Closing characters a cut tweet should not end on.
_DANGLING = " ,;:-–—(\"'«"


def clean(text: str, max_chars: int = 280) -> str:
    """Cut at EOS, drop special-token leftovers, tidy whitespace, keep at most ``max_chars``.

    A long text is cut at the last word boundary before the limit (a hard cut only when a
    single word fills most of it), so a tweet never ends in half a word.
    """
    for marker in END_MARKERS:
        text = text.split(marker, 1)[0]
    text = LEFTOVERS.sub(" ", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r", "").split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars + 1]
    boundary = max(cut.rfind(" "), cut.rfind("\n"))
    cut = cut[:boundary] if boundary >= max_chars // 2 else text[:max_chars]
    return cut.rstrip(_DANGLING).strip()


def fold(text: str) -> str:
    """Lower case without accents: how blocklist terms and texts are compared."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=32)
def _blocklist_pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    words = [re.escape(fold(t).strip()) for t in terms if t.strip()]
    if not words:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)")


def is_degenerate(text: str) -> bool:
    """Loops a sampler falls into: one character or word over and over, or few distinct words."""
    if _STUTTER.search(text):
        return True
    words = fold(text).split()
    if any(len(set(words[i:i + 4])) == 1 for i in range(len(words) - 3)):
        return True
    return len(words) >= 8 and len(set(words)) / len(words) < 0.35


def rejection_reason(text: str, settings: PostprocessSettings) -> str | None:
    """Why ``text`` (already cleaned) cannot be shown, or None when it can."""
    if not text.strip():
        return "empty"
    if len(text) < settings.min_chars:
        return "too_short"
    if not _LETTER.search(_NOT_WORDS.sub(" ", text)):
        return "no_words"
    if is_degenerate(text):
        return "degenerate"
    pattern = _blocklist_pattern(tuple(settings.blocklist))
    if pattern is not None and pattern.search(fold(text)):
        return "blocklist"
    return None
