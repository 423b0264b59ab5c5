"""The corpus of everyday phrasings (``tests/bot/phrasings.py``): the share understood whole.

A command is understood whole when its side, sentiment, topics and left-out words are all the
ones it asks for (compared case- and accent-free, as the parser reads them). The share is
printed with the test results; below 95% the test fails and lists what was misread.
"""

from __future__ import annotations

import pytest

from bot.catalog import Catalog, normalize
from bot.parser import ParsedCommand, parse_command
from tests.bot.bench_parse import summary, timings
from tests.bot.phrasings import PHRASINGS, Phrasing

MAX = 300
#: The share of the corpus that must be understood whole.
REQUIRED = 0.95


def misreadings(phrasing: Phrasing, parsed: ParsedCommand) -> list[str]:
    """What ``parsed`` got wrong about ``phrasing`` (empty: understood whole)."""
    wrong = []
    if parsed.side != phrasing.side:
        wrong.append(f"side {parsed.side!r} (wanted {phrasing.side!r})")
    if parsed.sentiment != phrasing.value:
        wrong.append(f"sentiment {parsed.sentiment!r} (wanted {phrasing.value!r})")
    if [normalize(e) for e in parsed.entities] != [normalize(t) for t in phrasing.topics]:
        wrong.append(f"topics {parsed.entities} (wanted {phrasing.topics})")
    if {normalize(w) for w in parsed.ignored} != {normalize(w) for w in phrasing.ignored}:
        wrong.append(f"left out {parsed.ignored} (wanted {phrasing.ignored})")
    return wrong


def test_the_corpus_is_large_and_varied() -> None:
    texts = [p.text for p in PHRASINGS]
    assert len(texts) >= 150 and len(set(texts)) == len(texts)
    assert sum(p.text != p.text.lower() for p in PHRASINGS) >= 5  # upper case
    assert sum(bool(p.ignored) for p in PHRASINGS) >= 5


def test_everyday_phrasings_are_understood_whole(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    problems = {}
    for phrasing in PHRASINGS:
        parsed = parse_command(phrasing.text, catalog, MAX)
        assert isinstance(parsed, ParsedCommand), (phrasing.text, parsed)
        wrong = misreadings(phrasing, parsed)
        if wrong:
            problems[phrasing.text] = "; ".join(wrong)
    whole = len(PHRASINGS) - len(problems)
    share = whole / len(PHRASINGS)
    with capsys.disabled():
        print(f"\neveryday phrasings understood whole: {whole}/{len(PHRASINGS)} ({share:.1%})")
        for text, wrong in problems.items():
            print(f"  misread {text!r}: {wrong}")
    assert share >= REQUIRED, problems


def test_the_parse_benchmark_times_every_phrasing(catalog: Catalog) -> None:
    found = timings(catalog, rounds=2)
    assert set(found) == {"cold cpu", "cold wall", "warm cpu", "warm wall"}
    assert all(len(values) == len(PHRASINGS) for values in found.values())
    assert min(found["warm wall"]) > 0
    assert summary("warm wall", found["warm wall"]).startswith(f"| warm wall | {len(PHRASINGS)} |")


def test_a_misreading_is_caught() -> None:
    wanted = Phrasing("/tuit derecha feliz salud", "derecha", "pos", ("salud",))
    assert misreadings(wanted, ParsedCommand("tuit", side="derecha", sentiment="POSITIVE", entities=("Salud",))) == []
    wrong = ParsedCommand("tuit", side="derecha", sentiment="POSITIVE", entities=("feliz salud",))
    assert misreadings(wanted, wrong) == ["topics ('feliz salud',) (wanted ('salud',))"]
