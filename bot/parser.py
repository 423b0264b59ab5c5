"""The command language: ``/tuit derecha positivo pensiones`` → control fields for the model.

``#tags`` become hashtags, ``@names`` entities, ``"quoted text"`` a key phrase, ``partido=UDI``
style fields say a field explicitly, and ``empieza: "Hoy en La Moneda"`` gives the words the
tweet starts with. Every other word is plain Spanish, read by ``bot/reading.py`` against the
catalogue (sides, coalitions, parties) and the lexicon (sentiment words, stances, fillers):
"/tuit algo feliz sobre el sename", "/tuit como piñera hablando de delincuencia".

Explicit fields are strict (an unknown value is an error that says how to write it); plain
words are forgiving: a name that contradicts what was already chosen ("/tuit derecha critica al
frente amplio") is simply part of the topic, so users can write naturally.

Parsing is pure (no randomness, no I/O): choosing a party for ``/tuit`` alone is the core's job.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass

from bot import texts
from bot.catalog import Catalog, Match, normalize
from bot.command import START_MAX_CHARS, ParsedCommand, ParseError, with_choices
from bot.reading import BREAK, Slot, Word, read

__all__ = ["COMMANDS", "ParseError", "ParsedCommand", "parse_command", "parse_fields",
           "split_command", "with_choices"]

#: Typed command name (normalized) → canonical command.
COMMANDS = {
    "tuit": "tuit", "tweet": "tuit", "twit": "tuit", "tuitea": "tuit",
    "otra": "otra", "otro": "otra", "again": "otra", "another": "otra",
    "ayuda": "ayuda", "help": "ayuda",
    "opciones": "opciones", "options": "opciones",
    "start": "start",
}
#: Field name users write (normalized) → the field it sets.
FIELD_KEYS = {
    "lado": "side", "side": "side", "sector": "side",
    "coalicion": "coalition", "coalition": "coalition", "pacto": "coalition",
    "partido": "party", "party": "party",
    "sentimiento": "sentiment", "sentiment": "sentiment", "tono": "sentiment",
    "tema": "topic", "topic": "topic", "entidades": "topic", "entities": "topic",
    "hashtags": "hashtags", "hashtag": "hashtags",
    "frases": "phrases", "frase": "phrases", "phrases": "phrases",
    "empieza": "start", "comienza": "start", "inicio": "start", "start": "start",
}
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "＂": '"'})
#: What may stand before "=" in a field: letters only, so "https://x.cl/?a=b" stays a word.
_FIELD_NAME = re.compile(r"[^\W\d_]+")
_PUNCT = string.punctuation + "¡¿…“”«»‘’"
#: Inside a word, these separate topics as a space and a comma would ("salud/educación").
_SEPARATORS = re.compile(r"[,;/+&|]+")
#: Ending a word, these end a topic ("salud, educación", "pensiones. Enojado").
_BREAKING_END = ",;.:!?…"
#: Words between a start marker and its quoted text (que empiece con «…»).
_START_CONNECTORS = frozenset({"con", "por", "asi", "with", "como"})
#: Bidirectional overrides and isolates: invisible, and they can disguise text.
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


# -- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # word, phrase, field, start, break
    text: str = ""
    key: str = ""
    quoted: bool = False


_BREAK_TOKEN = _Token("break")


class _Scanner:
    """Splits the arguments into words, ``"phrases"``, ``key=value`` fields, the tweet's start
    (``empieza: …``) and breaks (commas). Quotes may be left open."""

    def __init__(self, args: str, catalog: Catalog) -> None:
        self.args = args
        self.lexicon = catalog.lexicon
        self.tokens: list[_Token] = []

    def scan(self) -> list[_Token]:
        args, n = self.args, len(self.args)
        i = 0
        while i < n:
            if args[i].isspace():
                i += 1
            elif args[i] == '"':
                text, i = self._quoted(i)
                self.tokens.append(_Token("phrase", text))
            else:
                i = self._word(i)
        return self._starts_before_phrases(self.tokens)

    def _quoted(self, i: int) -> tuple[str, int]:
        """The text of the quote opening at ``i`` and where scanning goes on."""
        end = self.args.find('"', i + 1)
        end = len(self.args) if end < 0 else end
        return self.args[i + 1:end].strip(), end + 1

    def _word(self, start: int) -> int:
        args, n = self.args, len(self.args)
        i = start
        while i < n and not args[i].isspace() and args[i] != '"':
            i += 1
        word = args[start:i]
        key, eq, value = word.partition("=")
        field = bool(eq) and _FIELD_NAME.fullmatch(key) is not None
        if field and self.lexicon.is_start_marker(key):  # "empieza=…"
            return self._start(start + len(key) + 1)
        if word.endswith(":") and self.lexicon.is_start_marker(word.rstrip(":")):  # "empieza: …"
            return self._start(i)
        after = i
        while after < n and args[after].isspace():
            after += 1
        if args[after:after + 1] == ":" and self.lexicon.is_start_marker(word):  # "empieza : …"
            return self._start(after + 1)
        if word.endswith(":") and normalize(word).replace(" ", "") in FIELD_KEYS:
            # "sentimiento: negativo", "tema: salud": what follows is read as plain words.
            self.tokens.append(_BREAK_TOKEN)
            return i
        if field:
            if not value and i < n and args[i] == '"':
                text, i = self._quoted(i)
                self.tokens.append(_Token("field", text, key=key, quoted=True))
            else:
                self.tokens.append(_Token("field", value, key=key))
            return i
        self._add_words(word)
        return i

    def _start(self, i: int) -> int:
        """The tweet's start after ``empieza:``: a quoted text, or else the rest of the command."""
        while i < len(self.args) and self.args[i].isspace():
            i += 1
        if i < len(self.args) and self.args[i] == '"':
            text, i = self._quoted(i)
        else:
            text, i = self.args[i:].strip(), len(self.args)
        self.tokens.append(_Token("start", text))
        return i

    def _add_words(self, word: str) -> None:
        """A word as typed; commas, slashes and such inside or after it end a topic there."""
        parts = [word] if "://" in word or word.startswith("www.") else _SEPARATORS.split(word)
        for index, part in enumerate(parts):
            if index:
                self.tokens.append(_BREAK_TOKEN)
            if part and (part.strip(_PUNCT) or part[0] in "#@"):
                self.tokens.append(_Token("word", part))
            if part[-1:] and part[-1] in _BREAKING_END:
                self.tokens.append(_BREAK_TOKEN)

    def _starts_before_phrases(self, tokens: list[_Token]) -> list[_Token]:
        """``empieza con "…"``: a start marker and a connector right before a quoted phrase."""
        out: list[_Token] = []
        for token in tokens:
            if token.kind == "phrase":
                back = len(out)
                if back and out[-1].kind == "word" and normalize(out[-1].text) in _START_CONNECTORS:
                    back -= 1
                if back and out[back - 1].kind == "word" and self.lexicon.is_start_marker(out[back - 1].text):
                    del out[back - 1:]
                    token = _Token("start", token.text)
            out.append(token)
        return out


def _clean_word(word: str) -> str:
    return word.strip(_PUNCT)


def _check_text(text: str, max_chars: int) -> ParseError | None:
    if len(text) > max_chars:  # first, so a huge message costs nothing more
        return ParseError(texts.err_too_long(len(text), max_chars))
    for ch in text:
        if ch in "\t\n\r":
            continue
        if unicodedata.category(ch) == "Cc" or ch in _BIDI:
            return ParseError(texts.ERR_CONTROL_CHARS)
    return None


# -- building the controls -----------------------------------------------------------------


class _Builder:
    """Collects fields: explicit ones strictly, plain words leniently (``bot/reading.py``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.values: dict[str, str] = {"side": "", "coalition": "", "party": "", "sentiment": ""}
        #: The side was implied by a one-sided coalition, not said.
        self.side_implied = False
        self.entities: list[str] = []
        self.hashtags: list[str] = []
        self.phrases: list[str] = []
        self.start = ""
        self.corrections: list[tuple[str, str]] = []
        self.ignored: list[str] = []
        self.bare: list[str] = []
        self.again = False
        self.laughed = False

    # explicit -----------------------------------------------------------------------------

    def explicit(self, key: str, value: str) -> ParseError | None:
        target = FIELD_KEYS.get(normalize(key).replace(" ", ""))
        if target is None:
            return ParseError(texts.err_unknown_field(key), key)
        value = value.strip()
        if target == "start":
            return self.set_start(value)
        if not value or not normalize(value):
            return ParseError(texts.err_empty_field(key), key)
        if target == "topic":
            self.entities += [v.strip() for v in value.split(",") if normalize(v)]
            return None
        if target == "hashtags":
            self.hashtags += [h for h in (_clean_word(v) for v in value.replace(",", " ").split()) if h]
            return None
        if target == "phrases":
            self.phrases.append(value)
            return None
        if target == "sentiment":
            stemmed = self.catalog.lexicon.sentiment(value)
            if stemmed is not None:
                return self._explicit_set(Match("sentiment", stemmed, 1, value))
        match = self.catalog.find(value, target)  # type: ignore[arg-type]
        if match is None:
            suggestion = self.catalog.suggest(value, target)  # type: ignore[arg-type]
            return ParseError(texts.err_unknown_value(target, value, suggestion), target)
        return self._explicit_set(match)

    def _explicit_set(self, match: Match) -> ParseError | None:
        problem = self._set(match)
        return ParseError(problem, match.kind) if problem else None

    def set_start(self, text: str) -> ParseError | None:
        """The words the tweet begins with; said once, not empty, at most START_MAX_CHARS."""
        text = " ".join(text.replace('"', " ").split())
        if not normalize(text):
            return ParseError(texts.ERR_START_EMPTY, "start")
        if len(text) > START_MAX_CHARS:
            return ParseError(texts.err_start_too_long(len(text), START_MAX_CHARS), "start")
        if self.start and self.start != text:
            return ParseError(texts.ERR_TWO_STARTS, "start")
        self.start = text
        return None

    def _set(self, match: Match) -> str | None:
        """Accept ``match`` if it agrees with what is set; else say why not."""
        problem = self._conflict(match)
        if problem is not None:
            return problem
        self.values[match.kind] = match.value
        if match.kind == "party":
            party = self.catalog.parties[match.value]
            self.values["coalition"], self.values["side"] = party.coalition, party.side
        if match.kind == "coalition" and not self.values["side"]:
            # A coalition whose parties are all of one side implies it ("la nueva mayoría").
            sides = {p.side for p in self.catalog.parties_where(coalition=match.value)}
            if len(sides) == 1:
                self.values["side"], self.side_implied = sides.pop(), True
        return None

    def _conflict(self, match: Match) -> str | None:
        current = self.values[match.kind]
        if match.kind == "side" and self.side_implied and current != match.value:
            return texts.err_coalition_side(self.values["coalition"], match.value)
        if current and current != match.value:
            return texts.err_two_values(match.kind, current, match.value)
        side, coalition = self.values["side"], self.values["coalition"]
        if match.kind == "party":
            party = self.catalog.parties[match.value]
            if coalition and party.coalition != coalition:  # first: it may have implied the side
                return texts.err_party_coalition(party.key, party.coalition, coalition)
            if side and party.side != side:
                return texts.err_party_side(party.key, party.side, side)
        if match.kind in ("side", "coalition") and self.catalog.parties:
            side = match.value if match.kind == "side" else side
            coalition = match.value if match.kind == "coalition" else coalition
            if side and coalition and not self.catalog.parties_where(side, coalition):
                return texts.err_coalition_side(coalition, side)
        return None

    # plain words --------------------------------------------------------------------------

    def plain(self, slots: list[Slot]) -> None:
        """Read the plain words, after every explicit field (which they never override)."""
        reading = read(slots, self.catalog, lambda match: self._set(match) is None,
                       self.values["sentiment"])
        if reading.sentiment:
            self.values["sentiment"] = reading.sentiment
        self.entities += reading.entities
        self.bare += reading.bare
        self.ignored += reading.ignored
        self.corrections += reading.corrections
        self.again = self.again or reading.again
        self.laughed = self.laughed or reading.laughed

    def result(self, command: str, name: str, bot: str) -> ParsedCommand:
        return ParsedCommand(
            command=command, name=name, bot=bot, **self.values,
            entities=tuple(dict.fromkeys(self.entities)), hashtags=tuple(dict.fromkeys(self.hashtags)),
            phrases=tuple(dict.fromkeys(self.phrases)), start=self.start,
            corrections=tuple(self.corrections), ignored=tuple(dict.fromkeys(self.ignored)),
            again=self.again, bare_topics=tuple(dict.fromkeys(self.bare)), laughed=self.laughed,
        )


def _parse_args(args: str, catalog: Catalog, name: str, bot: str) -> ParsedCommand | ParseError:
    builder = _Builder(catalog)
    tokens = _Scanner(args, catalog).scan()
    slots: list[Slot] = []  # plain words, and breaks where anything else stood
    meaningful = False
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.kind == "word" and token.text[:1] not in "#@":
            cleaned = _clean_word(token.text)
            if cleaned:
                slots.append(Word(cleaned, normalize(cleaned)))
                meaningful = True
            continue
        slots.append(BREAK)
        error: ParseError | None = None
        if token.kind == "phrase":
            if normalize(token.text):
                builder.phrases.append(token.text)
                meaningful = True
        elif token.kind == "start":
            meaningful = True
            error = builder.set_start(token.text)
        elif token.kind == "field":
            meaningful = True
            value = token.text
            target = FIELD_KEYS.get(normalize(token.key).replace(" ", ""))
            if not token.quoted and target in ("side", "coalition", "party"):
                value, extra = _longest_name(catalog, target, value, tokens[index:])
                index += extra
            error = builder.explicit(token.key, value)
        elif token.kind == "word":
            body = _clean_word(token.text[1:])
            if body:
                meaningful = True
                if token.text[0] == "#":
                    builder.hashtags.append(body)
                else:
                    builder.entities.append("@" + body)
        if error is not None:
            return error
    if args.strip() and not meaningful:
        return ParseError(texts.ERR_ONLY_PUNCTUATION)
    builder.plain(slots)
    return builder.result("tuit", name, bot)


def _longest_name(catalog: Catalog, kind: str, value: str, following: list[_Token]) -> tuple[str, int]:
    """An unquoted multi-word name after ``key=`` ("coalicion=chile vamos"): the value and how
    many of the following words it takes."""
    for length in range(min(catalog.max_words - 1, len(following)), 0, -1):
        words = following[:length]
        if all(t.kind == "word" for t in words):
            candidate = " ".join([value, *(t.text for t in words)])
            if catalog.find(candidate, kind, fuzzy=False):  # type: ignore[arg-type]
                return candidate, length
    return value, 0


def split_command(text: str) -> tuple[str, str, str] | None:
    """``"/tuit@Bot resto"`` → ("tuit", "Bot", "resto"); None when ``text`` is not a command."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    head, _, rest = stripped.partition(" ")
    if "\n" in head:
        head, _, more = head.partition("\n")
        rest = more + " " + rest
    name, _, bot = head[1:].partition("@")
    return name, bot, rest.strip()


def parse_command(text: str, catalog: Catalog, max_chars: int) -> ParsedCommand | ParseError:
    """Read one command as typed. Never raises: bad input comes back as a :class:`ParseError`."""
    problem = _check_text(text, max_chars)
    if problem is not None:
        return problem
    text = text.translate(_QUOTES)
    parts = split_command(text)
    if parts is None:
        if text.strip() and not normalize(text):
            return ParseError(texts.ERR_ONLY_PUNCTUATION)
        return ParsedCommand("unknown")
    name, bot, args = parts
    command = COMMANDS.get(normalize(name).replace(" ", ""), "unknown")
    if command != "tuit":
        return ParsedCommand(command, name=name, bot=bot)
    return _parse_args(args, catalog, name, bot)


def parse_change(text: str, catalog: Catalog, max_chars: int) -> ParsedCommand | ParseError:
    """What a follow-up says ("más enojado", "ahora de izquierda", "sobre salud", "otra"): read
    like the arguments of ``/tuit``, with the same rules and messages."""
    problem = _check_text(text, max_chars)
    if problem is not None:
        return problem
    return _parse_args(text.translate(_QUOTES), catalog, "otra", "")


def parse_fields(catalog: Catalog, max_chars: int, **options: str | None) -> ParsedCommand | ParseError:
    """Structured options (Discord slash command: ``lado="derecha"``, ``tema="salud"``) read
    with the same rules and messages as typed ``key=value`` fields."""
    given = {key: value for key, value in options.items() if value is not None and str(value).strip()}
    problem = _check_text(" ".join(f"{k}={v}" for k, v in given.items()), max_chars)
    if problem is not None:
        return problem
    builder = _Builder(catalog)
    for key, value in given.items():
        value = str(value).translate(_QUOTES).replace('"', "")
        error = builder.explicit(key, value)
        if error is not None:
            return error
    return builder.result("tuit", "tuit", "")
