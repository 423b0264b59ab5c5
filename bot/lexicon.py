"""The everyday Spanish ``/tuit`` reads, beyond the catalogue's names: sentiment words with their
inflections, stances ("en contra de"), tone ("en tono positivo"), fillers, follow-up words and
the small words around topics.

It is data, not code: ``bot/lexicon.toml`` ships with the bot, and an operator adds words with a
file of the same shape named by ``[bot] lexicon`` in ``config.toml``. Sides, coalitions, parties
and people are not here: ``config.toml``'s ``[politics]`` is the one place that names them.

Two field-standard pieces do the linguistics: inflections are matched on Snowball stems
(PyStemmer, the Snowball project's C stemmer: "contenta", "contentos" and "contento" share the
stem ``content``), and the small words trimmed from topics start from the Spanish stop-word
list of the ``stop-words`` package. Both ship their data; nothing is downloaded.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import Stemmer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from stop_words import get_stop_words

SHIPPED = Path(__file__).with_name("lexicon.toml")

Sentiment = Literal["POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED"]
#: What a lexicon phrase does in a command.
Role = Literal[
    "sentiment", "stance", "topic", "object", "tone", "intensifier", "negator", "softener",
    "again", "change", "tweet", "filler", "descriptor", "split",
]

_NON_WORD = re.compile(r"[^\w@#]+")
#: "enojadísimo" → "enojado": Snowball leaves superlatives alone ("enojadis").
_SUPERLATIVE = re.compile(r"isim([oa])s?$")
#: Spoken Chilean participles: "enojao" → "enojado".
_SPOKEN_PARTICIPLE = re.compile(r"(?<=[a-z]{3})aos?$")
#: Laughter of any length ("jajaja", "jejeje", "jsjsjs", "xddd"): a filler, never a topic.
_LAUGHTER = re.compile(r"(?:[jh][aeiou]){2,}[jh]?|(?:js)+j?|x+d+")
#: Words shorter than this are matched only as written (stems of short words collide).
MIN_STEMMED = 4


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    """Case-folded, accent-free, punctuation turned into single spaces (``ñ`` becomes ``n``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NON_WORD.sub(" ", bare).split())


def _contracted(phrase: str) -> tuple[str, ...]:
    """A phrase ending in "de" or "a" as Spanish writes it before "el": "hablando del",
    "criticando al" (the lexicon lists "hablando de", "criticando a")."""
    for ending, contraction in ((" de", " del"), (" a", " al")):
        if phrase.endswith(ending):
            return (phrase[: -len(ending)] + contraction,)
    return ()


class LexiconError(ValueError):
    """A lexicon file that cannot be read, as one line naming the file and the problem."""


# -- the file's shape ------------------------------------------------------------------------


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SentimentWords(_Table):
    words: list[str] = Field(default_factory=list)
    exact: list[str] = Field(default_factory=list)


class _Markers(_Table):
    topic: list[str] = Field(default_factory=list)
    object: list[str] = Field(default_factory=list)
    tone: list[str] = Field(default_factory=list)
    start: list[str] = Field(default_factory=list)


class _Modifiers(_Table):
    intensifiers: list[str] = Field(default_factory=list)
    negators: list[str] = Field(default_factory=list)
    softeners: list[str] = Field(default_factory=list)


class _Fillers(_Table):
    words: list[str] = Field(default_factory=list)
    tweet: list[str] = Field(default_factory=list)


class _Descriptors(_Table):
    words: list[str] = Field(default_factory=list)


class _FollowUp(_Table):
    again: list[str] = Field(default_factory=list)
    change: list[str] = Field(default_factory=list)


class _Topics(_Table):
    split: list[str] = Field(default_factory=list)
    stop: list[str] = Field(default_factory=list)
    keep: list[str] = Field(default_factory=list)


class LexiconFile(_Table):
    """One lexicon file (``bot/lexicon.toml``, or an operator's): every table is optional."""

    sentiments: dict[Sentiment, _SentimentWords] = Field(default_factory=dict)
    stances: dict[Sentiment, list[str]] = Field(default_factory=dict)
    markers: _Markers = Field(default_factory=_Markers)
    modifiers: _Modifiers = Field(default_factory=_Modifiers)
    fillers: _Fillers = Field(default_factory=_Fillers)
    descriptors: _Descriptors = Field(default_factory=_Descriptors)
    follow_up: _FollowUp = Field(default_factory=_FollowUp)
    topics: _Topics = Field(default_factory=_Topics)

    @classmethod
    def read(cls, path: Path) -> LexiconFile:
        try:
            return cls.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise LexiconError(f"{path}: lexicon file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise LexiconError(f"{path}: not valid TOML: {exc}") from None
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            raise LexiconError(f"{path}: {where}: {message}") from None


# -- lookups ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A lexicon phrase found in a command: its role, its sentiment (sentiments and stances)
    and how many words it took."""

    role: Role
    value: str = ""
    words: int = 1
    #: Laughter ("jajaja"): dropped like a filler, and a sign that a reply is chat.
    laughter: bool = False


@cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("spanish")


@lru_cache(maxsize=8192)
def stems(word: str) -> tuple[str, ...]:
    """The Snowball stems a normalized word may stand for: its own, and that of its plain form
    when it is a superlative ("enojadisimo") or a spoken participle ("enojao")."""
    stemmer = _stemmer()
    found = [stemmer.stemWord(word)]
    for pattern, plain in ((_SUPERLATIVE, r"\1"), (_SPOKEN_PARTICIPLE, "ado")):
        variant = pattern.sub(plain, word)
        if variant != word:
            found.append(stemmer.stemWord(variant))
    return tuple(dict.fromkeys(found))


class Lexicon:
    """Everyday words of one or more lexicon files, merged (the first file's meaning of a word
    wins: an operator's file adds words, it cannot change the shipped ones)."""

    def __init__(self, files: Sequence[LexiconFile]) -> None:
        self.phrases: dict[str, Entry] = {}
        self._stems: dict[str, str] = {}
        #: Sentiment → every word for it (what the catalogue forgives typos in, and /opciones shows).
        self.sentiment_words: dict[str, list[str]] = {}
        stop: set[str] = set()
        keep: set[str] = set()
        starts: set[str] = set()
        for file in files:
            self._add_file(file)
            stop.update(normalize(w) for w in file.topics.stop)
            keep.update(normalize(w) for w in file.topics.keep)
            starts.update(normalize(w) for w in file.markers.start)
        stop.update(normalize(w) for w in get_stop_words("spanish"))
        self.stop = frozenset(stop - keep - {""})
        self.start_markers = frozenset(starts - {""})
        self.max_words = max((len(p.split()) for p in self.phrases), default=1)

    def _add_file(self, file: LexiconFile) -> None:
        for value, phrases in file.stances.items():
            self._add("stance", phrases, value)
        self._add("topic", file.markers.topic)
        self._add("object", file.markers.object)
        self._add("tone", file.markers.tone)
        self._add("intensifier", file.modifiers.intensifiers)
        self._add("negator", file.modifiers.negators)
        self._add("softener", file.modifiers.softeners)
        self._add("again", file.follow_up.again)
        self._add("change", file.follow_up.change)
        self._add("tweet", file.fillers.tweet)
        self._add("filler", file.fillers.words)
        self._add("descriptor", file.descriptors.words)
        for value, lists in file.sentiments.items():
            self._add("sentiment", [*lists.words, *lists.exact], value)
            self.sentiment_words.setdefault(value, []).extend([*lists.words, *lists.exact])
            for word in map(normalize, lists.words):
                if " " not in word and len(word) >= MIN_STEMMED:
                    self._stems.setdefault(stems(word)[0], value)
        self._add("split", file.topics.split)

    def _add(self, role: Role, phrases: Iterable[str], value: str = "") -> None:
        for phrase in phrases:
            norm = normalize(phrase)
            for form in (norm, *_contracted(norm)):
                if form and form not in self.phrases:
                    self.phrases[form] = Entry(role, value, len(form.split()))

    @classmethod
    def load(cls, extra: str | Path | None = None) -> Lexicon:
        """The shipped lexicon, plus an operator's file when one is named."""
        if not extra:
            return cls.shipped()
        return cls([LexiconFile.read(SHIPPED), LexiconFile.read(Path(extra))])

    @classmethod
    @cache
    def shipped(cls) -> Lexicon:
        """The shipped lexicon alone, read once (what a catalogue gets when given none)."""
        return cls([LexiconFile.read(SHIPPED)])

    # -- reading ---------------------------------------------------------------------------

    def entry_at(self, words: Sequence[str], start: int) -> Entry | None:
        """The longest lexicon phrase that begins at ``words[start]`` (normalized words)."""
        for length in range(min(self.max_words, len(words) - start), 0, -1):
            entry = self.phrases.get(" ".join(words[start:start + length]))
            if entry is not None:
                return entry
        return Entry("filler", laughter=True) if _LAUGHTER.fullmatch(words[start]) else None

    def stemmed_sentiment(self, word: str) -> str | None:
        """The sentiment an inflected word carries ("furiosas" → NEGATIVE), by its stem."""
        if len(word) < MIN_STEMMED or not word.isalpha():
            return None
        for stem in stems(word):
            value = self._stems.get(stem)
            if value is not None:
                return value
        return None

    def sentiment(self, text: str) -> str | None:
        """The sentiment a typed word or phrase names, as written or inflected (None: none)."""
        norm = normalize(text)
        entry = self.phrases.get(norm)
        if entry is not None:
            return entry.value if entry.role in ("sentiment", "stance") else None
        return self.stemmed_sentiment(norm)

    def is_stop(self, word: str) -> bool:
        return word in self.stop

    def is_start_marker(self, word: str) -> bool:
        return normalize(word) in self.start_markers
