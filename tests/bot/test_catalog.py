"""Name lookups, typo tolerance and weighted random choices."""

from __future__ import annotations

import random
from collections import Counter

from bot.catalog import Catalog, normalize
from bot.config import PoliticsSettings


def test_normalize_folds_case_accents_and_punctuation() -> None:
    assert normalize("  Nueva  MAYORÍA! ") == "nueva mayoria"
    assert normalize("Piñera") == "pinera"
    assert normalize("IND-RN") == "ind rn"


def test_find_by_key_alias_and_kind(catalog: Catalog) -> None:
    assert catalog.find("chilevamos").value == "Chile Vamos"
    assert catalog.find("ind").kind == "party"  # a party key wins over a coalition alias
    assert catalog.find("independientes", "coalition").value == "Independiente"
    assert catalog.find("derecha", "party") is None


def test_fuzzy_needs_a_long_word_and_one_unambiguous_typo(catalog: Catalog) -> None:
    assert catalog.find("izquirda").value == "izquierda"
    assert catalog.find("udy") is None  # too short to guess
    assert catalog.find("izqrda") is None  # two typos
    assert catalog.suggest("udy", "party") == "UDI"


def test_match_at_prefers_the_longest_name(catalog: Catalog) -> None:
    words = ["nueva", "mayoria", "pensiones"]
    match = catalog.match_at(words, 0)
    assert match is not None and (match.value, match.words) == ("Nueva Mayoría", 2)
    assert catalog.match_at(words, 2) is None


def test_pick_party_follows_weights_and_filters(catalog: Catalog) -> None:
    rng = random.Random(1)
    picks = Counter(catalog.pick_party(rng).key for _ in range(400))
    assert set(picks) <= {p.key for p in catalog.parties.values() if p.weight > 0}
    assert len(picks) > 3
    assert {catalog.pick_party(rng, side="centro").key for _ in range(20)} == {"PDC"}
    # Only weight-0 parties fit: one of them rather than none.
    assert catalog.pick_party(rng, coalition="Frente Amplio", side="izquierda").coalition == "Frente Amplio"
    assert catalog.pick_party(rng, coalition="Convergencia Democrática", side="derecha") is None


def test_empty_politics_is_usable() -> None:
    empty = Catalog.from_settings(PoliticsSettings())
    assert empty.find("derecha") is None
    assert empty.pick_party(random.Random()) is None
