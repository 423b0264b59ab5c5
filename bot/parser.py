"""The command language: ``/tuit derecha positivo pensiones`` → control fields for the model.

Words are read against the catalog (sides, coalitions, parties, sentiments, multi-word names
included); ``#tags`` become hashtags, ``@names`` and every other run of words become entities
(the topic), ``"quoted text"`` becomes a key phrase, and ``partido=UDI`` style fields say it
explicitly. Explicit fields are strict (an unknown value is an error that says how to write it);
loose words are forgiving: a name that contradicts what was already chosen ("/tuit derecha
critica al frente amplio") is simply part of the topic, so users can write naturally.

Parsing is pure (no randomness, no I/O): choosing a party for ``/tuit`` alone is the core's job.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

from bot import texts
from bot.catalog import Catalog, Match, normalize
from generation.prompts import ControlFields

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
}
#: Connector words trimmed from the ends of a topic run ("sobre las pensiones" → "pensiones").
STOPWORDS = frozenset({
    "a", "al", "con", "de", "del", "e", "el", "en", "la", "las", "lo", "los", "o", "para", "por",
    "que", "sobre", "un", "una", "unos", "unas", "y", "acerca", "tuit", "tweet", "about", "on",
    "the", "of",
})
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "＂": '"'})
#: What may stand before "=" in a field: letters only, so "https://x.cl/?a=b" stays a word.
_FIELD_NAME = re.compile(r"[^\W\d_]+")
_PUNCT = string.punctuation + "¡¿…“”«»‘’"
#: Bidirectional overrides and isolates: invisible, and they can disguise text.
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


@dataclass(frozen=True)
class ParseError:
    """A command that cannot be understood: ``message`` says what was wrong and how to write it."""

    message: str
    field: str = ""


@dataclass(frozen=True)
class ParsedCommand:
    """A command and, for ``/tuit``, the controls it asked for ("" / () when not given)."""

    command: str  # tuit, otra, ayuda, opciones, start, or "unknown"
    name: str = ""  # as typed, without "/" or "@bot"
    bot: str = ""  # "/tuit@MiBot" → "MiBot": adapters ignore commands addressed to other bots
    side: str = ""
    coalition: str = ""
    party: str = ""
    sentiment: str = ""
    entities: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    #: Typos forgiven, as (what was typed, what it was read as), to show in the reply.
    corrections: tuple[tuple[str, str], ...] = ()
    #: Fields the core filled in by chance (for ``/tuit`` alone): said so in the reply.
    chosen: tuple[str, ...] = field(default=(), compare=False)

    @property
    def topic(self) -> str:
        return " ".join(self.entities)

    def to_fields(self) -> ControlFields:
        """The controlled model's prompt fields (the side is not one: it chooses the model)."""
        return ControlFields(
            coalicion=self.coalition, partido=self.party, sentimiento=self.sentiment,
            entidades=self.entities, hashtags=self.hashtags, frases=self.phrases,
        )

    def controls(self) -> dict[str, Any]:
        """The controls as a JSON-able dict (what the log stores and ``/otra`` repeats)."""
        return {
            "side": self.side, "coalition": self.coalition, "party": self.party,
            "sentiment": self.sentiment, "entities": list(self.entities),
            "hashtags": list(self.hashtags), "phrases": list(self.phrases),
            "chosen": list(self.chosen),
        }

    @classmethod
    def from_controls(cls, controls: dict[str, Any]) -> ParsedCommand:
        """Rebuild a ``/tuit`` from :meth:`controls` (missing keys are empty)."""
        return cls(
            command="tuit", name="tuit",
            side=str(controls.get("side", "")), coalition=str(controls.get("coalition", "")),
            party=str(controls.get("party", "")), sentiment=str(controls.get("sentiment", "")),
            entities=tuple(controls.get("entities", ())), hashtags=tuple(controls.get("hashtags", ())),
            phrases=tuple(controls.get("phrases", ())),
        )

    def as_command(self) -> str:
        """The same request written as a ``/tuit`` command with explicit fields."""
        parts = ["/tuit"]
        for key, value in (("lado", self.side), ("coalicion", self.coalition),
                           ("partido", self.party), ("sentimiento", self.sentiment)):
            if value:
                parts.append(f'{key}="{value}"')
        parts += [f'tema="{e}"' for e in self.entities]
        parts += [f"#{h}" for h in self.hashtags]
        parts += [f'"{p}"' for p in self.phrases]
        return " ".join(parts)


# -- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # word, phrase, field
    text: str
    key: str = ""
    quoted: bool = False


def _scan(args: str) -> list[_Token]:
    """Split into words, ``"phrases"`` and ``key=value`` fields (quotes may be left open)."""
    tokens: list[_Token] = []
    i, n = 0, len(args)
    while i < n:
        if args[i].isspace():
            i += 1
            continue
        if args[i] == '"':
            end = args.find('"', i + 1)
            end = n if end < 0 else end
            tokens.append(_Token("phrase", args[i + 1:end].strip()))
            i = end + 1
            continue
        start = i
        while i < n and not args[i].isspace() and args[i] != '"':
            i += 1
        word = args[start:i]
        key, eq, value = word.partition("=")
        if eq and _FIELD_NAME.fullmatch(key):
            if not value and i < n and args[i] == '"':
                end = args.find('"', i + 1)
                end = n if end < 0 else end
                tokens.append(_Token("field", args[i + 1:end].strip(), key=key, quoted=True))
                i = end + 1
            else:
                tokens.append(_Token("field", value, key=key))
        else:
            tokens.append(_Token("word", word))
    return tokens


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
    """Collects fields: explicit ones strictly, loose words leniently."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.values: dict[str, str] = {"side": "", "coalition": "", "party": "", "sentiment": ""}
        self.entities: list[str] = []
        self.hashtags: list[str] = []
        self.phrases: list[str] = []
        self.corrections: list[tuple[str, str]] = []

    # explicit -----------------------------------------------------------------------------

    def explicit(self, key: str, value: str) -> ParseError | None:
        target = FIELD_KEYS.get(normalize(key).replace(" ", ""))
        if target is None:
            return ParseError(texts.err_unknown_field(key), key)
        value = value.strip()
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
        match = self.catalog.find(value, target)  # type: ignore[arg-type]
        if match is None:
            suggestion = self.catalog.suggest(value, target)  # type: ignore[arg-type]
            return ParseError(texts.err_unknown_value(target, value, suggestion), target)
        problem = self._set(match)
        return ParseError(problem, target) if problem else None

    def _set(self, match: Match) -> str | None:
        """Accept ``match`` if it agrees with what is set; else say why not."""
        problem = self._conflict(match)
        if problem is not None:
            return problem
        self.values[match.kind] = match.value
        if match.kind == "party":
            party = self.catalog.parties[match.value]
            self.values["coalition"], self.values["side"] = party.coalition, party.side
        if match.fuzzy:
            self.corrections.append((match.typed, match.value))
        return None

    def _conflict(self, match: Match) -> str | None:
        current = self.values[match.kind]
        if current and current != match.value:
            return texts.err_two_values(match.kind, current, match.value)
        side, coalition = self.values["side"], self.values["coalition"]
        if match.kind == "party":
            party = self.catalog.parties[match.value]
            if side and party.side != side:
                return texts.err_party_side(party.key, party.side, side)
            if coalition and party.coalition != coalition:
                return texts.err_party_coalition(party.key, party.coalition, coalition)
        if match.kind in ("side", "coalition") and self.catalog.parties:
            side = match.value if match.kind == "side" else side
            coalition = match.value if match.kind == "coalition" else coalition
            if side and coalition and not self.catalog.parties_where(side, coalition):
                return texts.err_coalition_side(coalition, side)
        return None

    # loose words --------------------------------------------------------------------------

    def loose(self, runs: list[list[str]]) -> None:
        """Read runs of plain words. Names are taken by kind (sides and sentiments, then
        coalitions, then parties) after the explicit fields, so a party named like a common
        word ("país") never overrides a side; names that disagree become topic words."""
        runs_items: list[list[str | Match]] = []
        for words in runs:
            items: list[str | Match] = []
            i = 0
            while i < len(words):
                match = self.catalog.match_at(words, i)
                items.append(words[i] if match is None else match)
                i += 1 if match is None else match.words
            runs_items.append(items)
        for kinds in (("side", "sentiment"), ("coalition",), ("party",)):
            for items in runs_items:
                for index, item in enumerate(items):
                    if isinstance(item, Match) and item.kind in kinds:
                        refused = self._set(item) is not None
                        items[index] = item.typed if refused else ""
        for items in runs_items:
            run: list[str] = []
            for item in [*items, ""]:
                if isinstance(item, str) and item:
                    run.append(item)
                else:
                    self._topic(run)
                    run = []

    def _topic(self, run: list[str]) -> None:
        while run and normalize(run[0]) in STOPWORDS:
            run = run[1:]
        while run and normalize(run[-1]) in STOPWORDS:
            run = run[:-1]
        if run:
            self.entities.append(" ".join(run))

    def result(self, command: str, name: str, bot: str) -> ParsedCommand:
        return ParsedCommand(
            command=command, name=name, bot=bot, **self.values,
            entities=tuple(dict.fromkeys(self.entities)), hashtags=tuple(dict.fromkeys(self.hashtags)),
            phrases=tuple(dict.fromkeys(self.phrases)), corrections=tuple(self.corrections),
        )


def _parse_args(args: str, catalog: Catalog, name: str, bot: str) -> ParsedCommand | ParseError:
    builder = _Builder(catalog)
    tokens = _scan(args)
    runs: list[list[str]] = [[]]  # runs of plain words, split by anything else
    meaningful = False
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.kind == "word" and token.text[:1] not in "#@":
            cleaned = _clean_word(token.text)
            if cleaned:
                runs[-1].append(cleaned)
                meaningful = True
            continue
        if runs[-1]:
            runs.append([])
        if token.kind == "phrase":
            if normalize(token.text):
                builder.phrases.append(token.text)
                meaningful = True
        elif token.kind == "field":
            meaningful = True
            value = token.text
            target = FIELD_KEYS.get(normalize(token.key).replace(" ", ""))
            if not token.quoted and target in ("side", "coalition", "party"):
                value, extra = _longest_name(catalog, target, value, tokens[index:])
                index += extra
            error = builder.explicit(token.key, value)
            if error is not None:
                return error
        else:
            body = _clean_word(token.text[1:])
            if body:
                meaningful = True
                if token.text[0] == "#":
                    builder.hashtags.append(body)
                else:
                    builder.entities.append("@" + body)
    if args.strip() and not meaningful:
        return ParseError(texts.ERR_ONLY_PUNCTUATION)
    builder.loose(runs)
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


def with_choices(parsed: ParsedCommand, **chosen: str) -> ParsedCommand:
    """``parsed`` with fields filled in by the core (recorded so the reply can say so)."""
    filled = {k: v for k, v in chosen.items() if v and not getattr(parsed, k)}
    return replace(parsed, **filled, chosen=tuple(dict.fromkeys((*parsed.chosen, *filled))))
