"""Reading a command's plain words the way people write them: names, everyday sentiment words,
stances, fillers and topics, from "/tuit algo feliz sobre el sename" or "/tuit como piñera
hablando de delincuencia".

Three passes over the words between ``/tuit``'s other parts (``#tags``, ``"phrases"``,
``key=value`` fields):

1. *Segmenting*: at each word, the longest catalogue name (``[politics]``) or lexicon phrase
   (``bot/lexicon.toml``) that starts there; else a small (stop) word, a sentiment word read by
   its stem ("furiosas"), a name with one typo, or a plain word.
2. *Interpreting*, left to right: a stance ("en contra de") gives a sentiment and makes the name
   right after it its target, a topic ("contra la UDI" is about the UDI, not by it); so do a
   topic marker ("sobre Piñera") and the "con"/"por" after a feeling ("enojado con la
   oposición"). "en tono X" reads X as a sentiment or leaves it out; "algo X" and "un tuit X"
   read X as a description of the tweet, left out; "no"/"menos" turn the next sentiment;
   fillers ("porfa", "como", "un político") are dropped.
3. *Resolving*: names become controls by kind (sides, then coalitions, then parties); one that
   disagrees with what is chosen becomes topic words, as before. Whatever plain words remain
   become the topics, cut at every other part, at commas and at "y", and trimmed of small words
   at both ends ("sobre el medio ambiente y el agua" → "medio ambiente", "agua").

Pure and fast: no I/O, no randomness, a few dictionary lookups per word.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from bot.catalog import Catalog, Match
from bot.lexicon import Entry

POLAR = frozenset({"POSITIVE", "NEGATIVE"})
#: "no tan positivo" is negative, "no tan negativo" neutral.
_NEGATED = {"POSITIVE": "NEGATIVE", "NEGATIVE": "NEUTRAL", "NEUTRAL": "NEUTRAL", "MIXED": "MIXED"}
#: "menos enojado": toned down to neutral.
_SOFTENED = {"POSITIVE": "NEUTRAL", "NEGATIVE": "NEUTRAL", "NEUTRAL": "NEUTRAL", "MIXED": "MIXED"}


@dataclass(frozen=True)
class Word:
    """One typed word: as typed (outer punctuation trimmed) and in normal form."""

    text: str
    norm: str


#: Between words: a comma, a ``#tag``, a ``"phrase"`` or a field. Topics never run across it.
BREAK = None
Slot = Word | None
#: The parser's judgement of a name found in plain words: True takes it as a control, False
#: means it disagrees with what was already chosen (it then becomes topic words).
Accept = Callable[[Match], bool]


@dataclass
class Reading:
    """What the plain words said."""

    sentiment: str = ""
    entities: list[str] = field(default_factory=list)
    #: Entities read from bare words (no "sobre" or stance before them).
    bare: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    corrections: list[tuple[str, str]] = field(default_factory=list)
    #: "otra" (or "de nuevo", "again"…) was said: the same request again.
    again: bool = False
    #: Laughter ("jajaja"): in a reply to a tweet, a sign of chat rather than a request.
    laughed: bool = False


@dataclass
class _Item:
    """A segment of words: a name, a lexicon phrase, a sentiment read by stem, or a plain word."""

    text: str
    match: Match | None = None
    entry: Entry | None = None
    sentiment: str = ""
    stop: bool = False
    fuzzy: bool = False


@dataclass
class _Topic:
    """A word that may end up in a topic."""

    text: str
    stop: bool = False
    marked: bool = False


_CUT = "cut"  # ends a topic (something else was said there)
_SPLIT = "split"  # separates two topics ("y", a comma)
_Seq = list[_Topic | Match | str]


def read(slots: Sequence[Slot], catalog: Catalog, accept: Accept, sentiment: str = "") -> Reading:
    """Read ``slots``; ``sentiment`` is the one an explicit field already chose ("" if none)."""
    reading = Reading()
    items = _segment(slots, catalog)
    sentiments: list[tuple[str, _Item]] = []
    seq = _interpret(items, reading, sentiments)
    reading.sentiment = _resolve_sentiment(sentiments, sentiment, reading)
    _resolve_names(seq, accept, reading)
    _topics(seq, reading)
    return reading


# -- 1. segmenting -----------------------------------------------------------------------------


def _segment(slots: Sequence[Slot], catalog: Catalog) -> list[_Item | None]:
    items: list[_Item | None] = []
    segment: list[Word] = []
    for slot in [*slots, BREAK]:
        if slot is not None:
            if slot.norm:  # an emoji or a lone symbol says nothing a topic could use
                segment.append(slot)
            continue
        norms = [w.norm for w in segment]
        i = 0
        while i < len(segment):
            item = _item_at(segment, norms, i, catalog)
            items.append(item)
            i += _width(item)
        items.append(BREAK)
        segment = []
    return items


def _item_at(segment: list[Word], norms: list[str], i: int, catalog: Catalog) -> _Item:
    lexicon = catalog.lexicon
    name = catalog.match_at(norms, i, fuzzy=False)
    entry = lexicon.entry_at(norms, i)
    if name is not None and name.words >= (entry.words if entry else 0):
        return _Item(_typed(segment, i, name.words), match=name)
    if entry is not None:
        return _Item(_typed(segment, i, entry.words), entry=entry)
    word = segment[i]
    if lexicon.is_stop(word.norm):
        return _Item(word.text, stop=True)
    stemmed = lexicon.stemmed_sentiment(word.norm)
    if stemmed is not None:
        return _Item(word.text, sentiment=stemmed)
    typo = catalog.match_at(norms, i)
    if typo is not None:
        return _Item(_typed(segment, i, typo.words), match=typo, fuzzy=True)
    return _Item(word.text)


def _typed(segment: list[Word], start: int, words: int) -> str:
    return " ".join(w.text for w in segment[start:start + words])


def _width(item: _Item) -> int:
    if item.match is not None:
        return item.match.words
    if item.entry is not None:
        return item.entry.words
    return 1


# -- 2. interpreting ---------------------------------------------------------------------------


def _interpret(items: list[_Item | None], reading: Reading,
               sentiments: list[tuple[str, _Item]]) -> _Seq:
    """Walk the items once, keeping what the last words announced (see the module docstring)."""
    walk = _Walk(reading, sentiments)
    for item in items:
        walk.step(item)
    return walk.seq


class _Walk:
    """The state of one left-to-right reading of a command's items."""

    def __init__(self, reading: Reading, sentiments: list[tuple[str, _Item]]) -> None:
        self.reading = reading
        self.sentiments = sentiments
        self.seq: _Seq = []
        #: The next name is what a stance or "sobre" is about (a topic, not the author).
        self.target = False
        #: Words since "sobre" (or a stance), up to a comma or anything else said.
        self.span = False
        #: The topic being read was introduced by "sobre" or a stance.
        self.marked = False
        #: The next word is the tone ("en tono X"), or describes the tweet ("algo X").
        self.tone = self.describe = False
        #: "negate" or "soften" the next sentiment ("no tan positivo", "menos enojado").
        self.modifier = ""
        #: A sentiment word came right before ("enojado con…" may name what it is about).
        self.felt = False

    def step(self, item: _Item | None) -> None:
        after_feeling, self.felt = self.felt, False
        if item is None:
            self.seq.append(_SPLIT)
            self.target = self.span = self.tone = self.describe = False
            self.modifier = ""
        elif item.sentiment or _sentiment_of(item):
            self._sentiment(item, item.sentiment or _sentiment_of(item))
        elif item.match is not None:
            self._name(item, item.match)
        elif item.entry is not None:
            self._entry(item, item.entry, after_feeling)
        else:
            self._word(item)

    def _sentiment(self, item: _Item, value: str) -> None:
        turn = _NEGATED if self.modifier == "negate" else _SOFTENED if self.modifier == "soften" else {}
        self.sentiments.append((turn.get(value, value), item))
        self.seq.append(_CUT)
        # A stance's target follows it: "en contra de la UDI" is about the UDI.
        self.target = self.span = self.marked = item.entry is not None and item.entry.role == "stance"
        self.tone = self.describe = False
        self.felt = True
        self.modifier = ""

    def _name(self, item: _Item, match: Match) -> None:
        # "contra la UDI", "sobre Piñera", "sobre el gobierno de Piñera": what the tweet is
        # about, not who writes it; a side still says who ("sobre pensiones, de derecha").
        if self.target or (self.span and match.kind != "side"):
            self.seq.append(_Topic(item.text, marked=True))
        else:
            self.seq.append(replace(match, typed=item.text, fuzzy=item.fuzzy))
            self.span = self.marked = False
        self.target = self.tone = self.describe = False
        self.modifier = ""

    def _entry(self, item: _Item, entry: Entry, after_feeling: bool) -> None:
        role = entry.role
        self.reading.again = self.reading.again or role == "again"
        self.reading.laughed = self.reading.laughed or entry.laughter
        if role == "split":
            self.seq.append(_SPLIT)
        elif role == "object" and not after_feeling:
            self.seq.append(_Topic(item.text, stop=True, marked=self.marked))  # a small word here
        elif role == "descriptor" and self.span and self.seq and isinstance(self.seq[-1], _Topic) \
                and not self.seq[-1].stop:
            self.seq.append(_Topic(item.text, marked=True))  # "a favor de la mano dura": a topic's word
        else:
            self.seq.append(_CUT)
            if role == "descriptor":
                self.reading.ignored.append(item.text)
            elif role in ("negator", "softener"):
                self.modifier = "negate" if role == "negator" else "soften"
            elif role != "intensifier":
                # "enojado con la oposición": the object of a feeling, like a stance's target
                self.target = self.span = self.marked = role in ("stance", "topic", "object")
                self.tone, self.describe = role == "tone", role == "tweet"

    def _word(self, item: _Item) -> None:
        if item.stop:
            self.seq.append(_Topic(item.text, stop=True, marked=self.marked))
            self.describe = False
            return
        if self.tone or self.describe:  # "en tono irónico", "algo bacán": about the tweet, not a topic
            self.reading.ignored.append(item.text)
            self.seq.append(_CUT)
        else:
            self.seq.append(_Topic(item.text, marked=self.marked))
        self.target = self.tone = self.describe = False
        self.modifier = ""


def _sentiment_of(item: _Item) -> str:
    if item.match is not None and item.match.kind == "sentiment":
        return item.match.value
    if item.entry is not None and item.entry.role in ("sentiment", "stance"):
        return item.entry.value
    return ""


# -- 3. resolving ------------------------------------------------------------------------------


def _resolve_sentiment(sentiments: list[tuple[str, _Item]], explicit: str, reading: Reading) -> str:
    """The plain words' sentiment: the first one said; a positive and a negative one together
    are mixed ("feliz pero preocupado"); any other second opinion is left out (said so)."""
    chosen = explicit
    for value, item in sentiments:
        if item.fuzzy and item.match is not None:
            reading.corrections.append((item.text, value))
        if not chosen:
            chosen = value
        elif not explicit and {chosen, value} == POLAR:
            chosen = "MIXED"
        elif value != chosen and not (chosen == "MIXED" and value in POLAR and not explicit):
            reading.ignored.append(item.text)
    return "" if chosen == explicit else chosen


def _resolve_names(seq: _Seq, accept: Accept, reading: Reading) -> None:
    """Names become controls by kind (sides, coalitions, parties), each only if it agrees with
    what is chosen; one that disagrees stays in place as topic words."""
    for kind in ("side", "coalition", "party"):
        for index, slot in enumerate(seq):
            if isinstance(slot, Match) and slot.kind == kind:
                if accept(slot):
                    seq[index] = _CUT
                    if slot.fuzzy:
                        reading.corrections.append((slot.typed, slot.value))
                else:
                    seq[index] = _Topic(slot.typed)


def _topics(seq: _Seq, reading: Reading) -> None:
    run: list[_Topic] = []
    for slot in [*seq, _CUT]:
        if isinstance(slot, _Topic):
            run.append(slot)
            continue
        while run and run[0].stop:
            run.pop(0)
        while run and run[-1].stop:
            run.pop()
        if run:
            entity = " ".join(w.text for w in run)
            reading.entities.append(entity)
            if not any(w.marked for w in run):
                reading.bare.append(entity)
        run = []
