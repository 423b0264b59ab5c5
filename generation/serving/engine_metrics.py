"""The engine's numbers as Prometheus metrics, for every process that runs an engine.

``politico serve`` and ``politico run`` both expose them: each registers an
:class:`EngineCollector` on its own registry (not prometheus-client's global one, so several
apps can live in one process, as in the tests) and renders it with :func:`exposition`. The
collector reads ``Engine.stats()`` at scrape time rather than having numbers copied on every
request: the scrape is the only reader, and stats stay the engine's single source of truth.

What ``stats()`` may hold, and what each becomes (so a new engine stat shows up without
touching this file):

- an int, float or flag: a counter when its key is in :data:`ENGINE_COUNTERS`, else a gauge;
- a mapping of numbers to counts: a histogram of values the engine already bucketed (the key is
  the observed value, or its bucket's upper bound; the count how often it was seen). Keys ending
  in ``_seconds`` get the engine's own bounds (``SECONDS_BUCKETS``) and their exact sums from
  ``seconds_sums``, others (rows) powers of two;
- a mapping of names to counts (``failures``: kind → count): a counter labelled ``kind``;
- anything else (the list of loaded models) is left to ``/health``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from generation.serving.engine import SECONDS_BUCKETS

#: Seconds; a tweet takes tens of milliseconds on a GPU and a second or more on a busy CPU.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

#: ``Engine.stats()`` numbers that only ever grow (exported as counters, the rest as gauges).
ENGINE_COUNTERS = frozenset({
    "requests", "completed", "errors", "busy", "timeouts", "cancelled", "shed", "steps",
    "tokens_generated",
})

#: Help texts of the stats known today; others get their key in words.
_HELP = {
    "shed": "requests given fewer candidates under load (shed_rows)",
    "step_rows": "rows decoded per step",
    "step_seconds": "wall time of one decoding step",
    "first_token_seconds": "time from a request reaching the engine to its first token",
    "queue_wait_seconds": "time a request waited in the queue before decoding",
    "failures": "failed requests by kind",
}

EngineStats = Callable[[], Mapping[str, Any]]


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """A registry's exposition text and its content type, as ``/metrics`` answers it."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


class EngineCollector(Collector):
    """Turns ``Engine.stats()`` into metrics when Prometheus scrapes (see the module docstring)."""

    def __init__(self, stats: EngineStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = dict(self._stats())
        sums = stats.pop("seconds_sums", {})
        for key, value in sorted(stats.items()):
            name = f"politico_engine_{key}"
            described = _HELP.get(key, key.replace("_", " "))
            if isinstance(value, Mapping):
                family = _mapping_family(name, key, described, value, sums.get(key))
                if family is not None:
                    yield family
            elif not isinstance(value, int | float):
                continue
            elif key in ENGINE_COUNTERS:
                counter = CounterMetricFamily(name, f"engine: {described}")
                counter.add_metric([], value)
                yield counter
            else:
                gauge = GaugeMetricFamily(name, f"engine: {described}")
                gauge.add_metric([], float(value))
                yield gauge


def _mapping_family(name: str, key: str, described: str, counts: Mapping[Any, Any],
                    exact_sum: float | None = None) -> Metric | None:
    """A labelled counter (name keys), a histogram (number keys; ``exact_sum`` where the
    engine kept one), or None (neither)."""
    if key == "failures" or (counts and all(isinstance(k, str) for k in counts)):
        counter = CounterMetricFamily(name, f"engine: {described}", labels=["kind"])
        for kind, count in sorted(counts.items()):
            counter.add_metric([str(kind)], count)
        return counter
    if not all(isinstance(k, int | float) and not isinstance(k, bool) for k in counts):
        return None
    observed = sorted((float(k), int(c)) for k, c in counts.items())
    bounds = SECONDS_BUCKETS if key.endswith("_seconds") else _powers_of_two(observed)
    buckets = [(_bound(b), sum(c for v, c in observed if v <= b)) for b in bounds]
    buckets.append(("+Inf", sum(c for _, c in observed)))
    histogram = HistogramMetricFamily(name, f"engine: {described}")
    # Exact for counts (rows); for bucketed seconds, the engine's own sum.
    histogram.add_metric([], buckets, sum_value=sum(v * c for v, c in observed) if exact_sum is None else exact_sum)
    return histogram


def _powers_of_two(observed: list[tuple[float, int]]) -> list[int]:
    """1, 2, 4… up to the first power of two above the largest value seen."""
    largest = int(observed[-1][0]) if observed else 1
    return [1 << i for i in range(max(1, largest).bit_length() + 1)]


def _bound(bound: float) -> str:
    """A bucket bound as Prometheus writes it ("1", "0.25")."""
    return str(int(bound)) if float(bound).is_integer() else str(bound)
