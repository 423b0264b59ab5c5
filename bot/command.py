"""A command as understood: plain data that the parser makes and the replies describe.

Kept apart from the parser so the flow is one-way: ``bot/parser.py`` builds these and takes its
messages from ``bot/texts.py``, and ``texts`` reads these without knowing the parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from generation.prompts import ControlFields

#: The tweet's first words (``empieza: "…"``) are at most this long: a start, not a tweet.
START_MAX_CHARS = 80


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
    #: The words the tweet must begin with (``empieza: "Hoy en La Moneda"``).
    start: str = ""
    #: Typos forgiven, as (what was typed, what it was read as), to show in the reply.
    corrections: tuple[tuple[str, str], ...] = ()
    #: Words the command said that were left out ("no usé: «bacán»"), so users learn the words.
    ignored: tuple[str, ...] = ()
    #: Fields the core filled in by chance (for ``/tuit`` alone): said so in the reply.
    chosen: tuple[str, ...] = field(default=(), compare=False)
    #: The command said "otra" (or "de nuevo"…): a plain reply to a tweet saying it asks for one.
    again: bool = field(default=False, compare=False)
    #: Topics read from bare words, with no "sobre" or stance before them, and whether the
    #: command laughed: in a plain reply to a tweet, signs of chat rather than a request.
    bare_topics: tuple[str, ...] = field(default=(), compare=False)
    laughed: bool = field(default=False, compare=False)

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
            "hashtags": list(self.hashtags), "phrases": list(self.phrases), "start": self.start,
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
            phrases=tuple(controls.get("phrases", ())), start=str(controls.get("start", "")),
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
        if self.start:
            parts.append(f'empieza="{self.start}"')
        return " ".join(parts)


def with_choices(parsed: ParsedCommand, **chosen: str) -> ParsedCommand:
    """``parsed`` with fields filled in by the core (recorded so the reply can say so)."""
    filled = {k: v for k, v in chosen.items() if v and not getattr(parsed, k)}
    return replace(parsed, **filled, chosen=tuple(dict.fromkeys((*parsed.chosen, *filled))))
