"""How long reading one ``/tuit`` takes: every phrasing of the corpus (``tests/bot/phrasings.py``)
parsed with the repo's catalogue and the shipped lexicon, timed one command at a time.

    .venv/bin/python -m tests.bot.bench_parse [--rounds 50]

The first round runs with the word caches emptied (stems and normal forms: words never seen
before, what the parse of a new command costs); the others are warm. Each command is timed in
CPU time of the parsing thread (what the parse costs, whatever else the machine runs) and in
wall-clock time (what it took, preemptions by other processes included). Results go to
docs/benchmarks.md ("Reading a command").
"""

from __future__ import annotations

import argparse
import statistics
import time

from bot.catalog import Catalog
from bot.config import load_settings
from bot.lexicon import Lexicon, normalize, stems
from bot.parser import parse_command
from tests.bot.phrasings import PHRASINGS

MAX_CHARS = 300


Timings = dict[str, list[float]]


def timings(catalog: Catalog, rounds: int) -> Timings:
    """Microseconds per command, CPU and wall clock, of the cold round and the warm ones."""
    found: Timings = {"cold cpu": [], "cold wall": [], "warm cpu": [], "warm wall": []}
    stems.cache_clear()
    normalize.cache_clear()
    for round_ in range(rounds):
        kind = "cold" if round_ == 0 else "warm"
        for phrasing in PHRASINGS:
            cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
            parse_command(phrasing.text, catalog, MAX_CHARS)
            found[f"{kind} wall"].append((time.perf_counter_ns() - wall) / 1000)
            found[f"{kind} cpu"].append((time.thread_time_ns() - cpu) / 1000)
    return found


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return (f"| {name} | {len(values)} | {statistics.mean(values):.0f} | {statistics.median(values):.0f} "
            f"| {p99:.0f} | {values[-1]:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="passes over the corpus (the first is cold)")
    rounds = max(2, parser.parse_args().rounds)
    started = time.perf_counter()
    Lexicon.shipped.cache_clear()
    catalog = Catalog.from_settings(load_settings().politics, Lexicon.shipped())
    built_ms = (time.perf_counter() - started) * 1000
    found = timings(catalog, rounds)
    print(f"catalogue and lexicon built in {built_ms:.1f} ms; {len(PHRASINGS)} commands, {rounds} rounds")
    print("| round, clock | commands | mean µs | median µs | p99 µs | max µs |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, values in found.items():
        print(summary(name, values))


if __name__ == "__main__":
    main()
