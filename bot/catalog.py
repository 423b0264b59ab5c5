"""The names users may type (sides, coalitions, parties, sentiments) and what they stand for.

Built once from ``[politics]`` in the config, and the sentiment words of the lexicon
(``bot/lexicon.toml``). Everything is compared in a normal form (case-folded, accents stripped,
punctuation as spaces), so "Chile Vamos", "chile vamos" and "CHILE-VAMOS" are one name. Small
typos are forgiven (``izquirda``), but conservatively: a real word that merely resembles a name
("derecho", "derechos") must stay a topic word.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot.config import PoliticsSettings
from bot.lexicon import Lexicon, normalize

Kind = Literal["side", "coalition", "party", "sentiment"]

#: Fuzzy matching only for words at least this long (short aliases like "fa" must be exact).
FUZZY_MIN_LEN = 5

@dataclass(frozen=True)
class Party:
    """A party as the model knows it: ``key`` is its PARTIDO value."""

    key: str
    name: str
    coalition: str
    side: str
    weight: float


@dataclass(frozen=True)
class Match:
    """A name found in the user's words: what it is, its canonical value, and how many words."""

    kind: Kind
    value: str
    words: int
    typed: str
    fuzzy: bool = False


class Catalog:
    """Lookups from typed names to canonical sides, coalitions, parties and sentiments."""

    def __init__(self, politics: PoliticsSettings, lexicon: Lexicon | None = None) -> None:
        #: The everyday words read around the names (``bot/lexicon.py``).
        self.lexicon = lexicon or Lexicon.shipped()
        #: side key → its casual model ("" when it prompts the controlled model).
        self.sides: dict[str, str] = {key: spec.model for key, spec in politics.sides.items()}
        self.coalitions: list[str] = list(politics.coalitions)
        self.parties: dict[str, Party] = {
            key: Party(key, spec.name or key, spec.coalition, spec.side, spec.weight)
            for key, spec in politics.parties.items()
        }
        # Canonical keys win over aliases; among aliases the first declared wins.
        names: dict[str, Match] = {}
        exact: list[tuple[Kind, str, str]] = []
        aliases: list[tuple[Kind, str, str]] = []
        for key, side in politics.sides.items():
            exact.append(("side", key, key))
            aliases += [("side", key, alias) for alias in side.aliases]
        for key, coalition in politics.coalitions.items():
            exact.append(("coalition", key, key))
            aliases += [("coalition", key, alias) for alias in coalition.aliases]
        for key, party in politics.parties.items():
            exact.append(("party", key, key))
            aliases += [("party", key, alias) for alias in (party.name, *party.aliases) if alias]
        for value, words in self.lexicon.sentiment_words.items():
            aliases += [("sentiment", value, word) for word in words]
        for kind, value, text in [*exact, *aliases]:
            norm = normalize(text)
            if norm and norm not in names:
                names[norm] = Match(kind, value, len(norm.split()), text)
        self._names = names
        self.max_words = max((m.words for m in names.values()), default=1)
        # Typo candidates by word count and first two letters (a typo must keep those).
        self._fuzzy_index: dict[tuple[int, str], list[str]] = {}
        for norm, match in names.items():
            if len(norm) >= FUZZY_MIN_LEN:
                self._fuzzy_index.setdefault((match.words, norm[:2]), []).append(norm)

    @classmethod
    def from_settings(cls, politics: PoliticsSettings, lexicon: Lexicon | None = None) -> Catalog:
        return cls(politics, lexicon)

    # -- lookups ---------------------------------------------------------------------------

    def find(self, text: str, kind: Kind | None = None, *, fuzzy: bool = True) -> Match | None:
        """The name ``text`` stands for (of ``kind`` if given), forgiving a small typo."""
        norm = normalize(text)
        match = self._names.get(norm)
        if match is not None and (kind is None or match.kind == kind):
            return Match(match.kind, match.value, match.words, text)
        if not fuzzy:
            return None
        return self._fuzzy(norm, text, kind)

    def match_at(self, words: Sequence[str], start: int, *, fuzzy: bool = True) -> Match | None:
        """The longest name that begins at ``words[start]`` (normalized words; multi-word names
        like "chile vamos"), exact before forgiving a typo; ``typed`` is the words it took."""
        longest = min(self.max_words, len(words) - start)
        for length in range(longest, 0, -1):
            norm = " ".join(words[start:start + length])
            found = self._names.get(norm)
            if found is not None:
                return Match(found.kind, found.value, length, norm)
        if not fuzzy:
            return None
        for length in range(longest, 0, -1):
            norm = " ".join(words[start:start + length])
            found = self._fuzzy(norm, norm, None)
            if found is not None:
                return found
        return None

    def suggest(self, text: str, kind: Kind) -> str | None:
        """A looser guess than :meth:`find`, only to say "¿quisiste decir …?" in an error."""
        norm = normalize(text)
        choices = {n: m for n, m in self._names.items() if m.kind == kind}
        best = process.extractOne(norm, list(choices), scorer=OSA.normalized_distance, score_cutoff=0.4)
        return choices[best[0]].value if best else None

    def _fuzzy(self, norm: str, typed: str, kind: Kind | None) -> Match | None:
        """One typo (insertion, deletion, substitution or swap) in a word of 5+ letters.

        The first two and the last letter must agree (or the last two be swapped), which keeps inflected real words apart
        from names ("derecho" is not "derecha", "comunistas" is not "comunista"), and the match
        must be unambiguous.
        """
        if len(norm.replace(" ", "")) < FUZZY_MIN_LEN:
            return None
        words = len(norm.split())
        candidates = [
            n for n in self._fuzzy_index.get((words, norm[:2]), ())
            if (kind is None or self._names[n].kind == kind)
            and (n[-1] == norm[-1] or n[-2:] == norm[:-3:-1])  # or its last two letters swapped
        ]
        if not candidates:
            return None
        hits = process.extract(norm, candidates, scorer=OSA.distance, score_cutoff=1, limit=None)
        values = {(self._names[n].kind, self._names[n].value) for n, _, _ in hits}
        if len(values) != 1:
            return None
        kind_, value = values.pop()
        return Match(kind_, value, words, typed, fuzzy=True)

    # -- choices ---------------------------------------------------------------------------

    def parties_where(self, side: str = "", coalition: str = "") -> list[Party]:
        return [
            p for p in self.parties.values()
            if (not side or p.side == side) and (not coalition or p.coalition == coalition)
        ]

    def pick_party(self, rng: random.Random, side: str = "", coalition: str = "") -> Party | None:
        """A party by weight among those that fit; uniform when all fitting weights are 0
        (the user asked for that side or coalition, so an unseen party beats none)."""
        fitting = self.parties_where(side, coalition)
        if not fitting:
            return None
        weights = [p.weight for p in fitting]
        if not any(weights):
            return rng.choice(fitting)
        return rng.choices(fitting, weights=weights, k=1)[0]

    def contrast_parties(self, side: str, per_side: int) -> list[tuple[str, str]]:
        """``(coalition, party)`` of up to ``per_side`` parties of every other side, most weighted
        first: the prompts a candidate's side is weighed against when ranking. Parties the
        model never saw (weight 0) are left out."""
        out: list[tuple[str, str]] = []
        for other in self.sides:
            if other == side:
                continue
            known = sorted((p for p in self.parties.values() if p.side == other and p.weight > 0),
                           key=lambda p: -p.weight)
            out += [(p.coalition, p.key) for p in known[:per_side]]
        return out

    def side_model(self, side: str) -> str:
        """The casual model configured for ``side`` ("" when it uses the controlled model)."""
        return self.sides.get(side, "")

    def names_of(self, kind: Kind, value: str) -> list[str]:
        """Every alias users may type for ``value`` (for /opciones)."""
        return [m.typed for m in self._names.values() if m.kind == kind and m.value == value]
