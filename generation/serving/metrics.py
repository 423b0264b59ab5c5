"""Prometheus metrics of ``politico serve``: what the HTTP layer sees and what the engine reports.

Each server gets its own registry (not prometheus-client's global one), so several apps can live
in one process (the tests run a few) without clashing names. The engine's own numbers (queue
depth, batch sizes) are read from ``Engine.stats()`` at scrape time rather than copied on every
request: the scrape is the only reader, and stats stay the engine's single source of truth.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

#: Seconds; a tweet takes tens of milliseconds on a GPU and a second or more on a busy CPU.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class TokenRate:
    """Generated tokens per second over the last ``window_s`` seconds.

    Prometheus computes rates from counters itself (``rate(politico_generated_tokens_total[1m])``);
    this gauge is for people reading ``/metrics`` by hand and for the health of one process.
    """

    def __init__(self, window_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._events: deque[tuple[float, int]] = deque()

    def add(self, tokens: int) -> None:
        self._events.append((self._clock(), tokens))

    def rate(self) -> float:
        now = self._clock()
        while self._events and now - self._events[0][0] > self.window_s:
            self._events.popleft()
        return sum(tokens for _, tokens in self._events) / self.window_s


#: ``Engine.stats()`` keys that only ever grow (exported as counters, the rest as gauges).
ENGINE_COUNTERS = frozenset(
    {"requests", "completed", "errors", "busy", "timeouts", "cancelled", "batches", "tokens_generated"}
)


class EngineCollector(Collector):
    """Turns ``Engine.stats()`` into metrics when Prometheus scrapes.

    ``batch_sizes`` (a size → count mapping) becomes a histogram, the growing counts counters;
    any other number or flag becomes a gauge, so new engine stats show up without touching this
    file. Lists (the loaded models) are left to ``/health``.
    """

    def __init__(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Any]:
        for key, value in sorted(self._stats().items()):
            name = f"politico_engine_{key}"
            if key == "batch_sizes" and isinstance(value, Mapping):
                yield self._histogram(name, value)
            elif not isinstance(value, int | float):
                continue
            elif key in ENGINE_COUNTERS:
                family = CounterMetricFamily(name, f"engine: {key.replace('_', ' ')}")
                family.add_metric([], value)
                yield family
            else:
                family = GaugeMetricFamily(name, f"engine: {key.replace('_', ' ')}")
                family.add_metric([], float(value))
                yield family

    @staticmethod
    def _histogram(name: str, counts: Mapping[Any, int]) -> HistogramMetricFamily:
        """Batch sizes with one bucket per power of two up to the largest size seen."""
        sizes = sorted((int(size), int(count)) for size, count in counts.items())
        largest = sizes[-1][0] if sizes else 1
        bounds = [1 << i for i in range(max(1, largest).bit_length() + 1)]
        buckets = [(str(bound), sum(c for s, c in sizes if s <= bound)) for bound in bounds]
        total = sum(c for _, c in sizes)
        buckets.append(("+Inf", total))
        family = HistogramMetricFamily(name, "rows per decoded batch")
        family.add_metric([], buckets, sum_value=sum(s * c for s, c in sizes))
        return family


class ServerMetrics:
    """The metrics one ``politico serve`` process exposes on ``/metrics``."""

    def __init__(self, engine_stats: Callable[[], Mapping[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "politico_requests", "completions requests by model and HTTP status",
            ["model", "status"], registry=self.registry,
        )
        self.errors = Counter(
            "politico_errors", "failed requests by error type", ["type"], registry=self.registry
        )
        self.latency = Histogram(
            "politico_request_latency_seconds", "time to answer a completions request",
            ["model"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.prompt_tokens = Counter(
            "politico_prompt_tokens", "prompt tokens received", ["model"], registry=self.registry
        )
        self.generated_tokens = Counter(
            "politico_generated_tokens", "tokens generated", ["model"], registry=self.registry
        )
        self.in_flight = Gauge(
            "politico_requests_in_flight", "completions requests being answered",
            registry=self.registry,
        )
        self.token_rate = TokenRate()
        Gauge(
            "politico_tokens_per_second", "generated tokens per second over the last 30 s",
            registry=self.registry,
        ).set_function(self.token_rate.rate)
        self.registry.register(EngineCollector(engine_stats))

    def observe(self, model: str, status: int, seconds: float, prompt_tokens: int, tokens: int) -> None:
        """Record one finished request."""
        self.requests.labels(model, str(status)).inc()
        self.latency.labels(model).observe(seconds)
        if status == 200:
            self.prompt_tokens.labels(model).inc(prompt_tokens)
            self.generated_tokens.labels(model).inc(tokens)
            self.token_rate.add(tokens)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
