"""Prometheus metrics of one ``politico run`` process: the core's numbers per front-end, and the
engine's when it runs in this process.

The core reports through the small :class:`bot.core.Monitor` protocol; this is the only bot
module that knows Prometheus, so the core and the front-ends never import it. The engine's
series are the same ones ``politico serve`` exposes (``generation/serving/engine_metrics.py``),
so one dashboard reads both kinds of process.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.core import Failure, Refusal, Takeover
from generation.serving.backends.remote import RemoteStats
from generation.serving.engine_metrics import (
    LATENCY_BUCKETS,
    EngineCollector,
    EngineStats,
    exposition,
)


class BotMetrics:
    """Per-front-end series (label ``frontend``: telegram, discord, console), on a registry of
    its own so several apps can live in one process (as in the tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._answer = Histogram(
            "politico_bot_answer_seconds",
            "time from a tweet request reaching the core to its labelled reply being ready",
            ["frontend"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._first_token = Histogram(
            "politico_bot_first_token_seconds",
            "time from the engine taking a tweet request to its first token",
            ["frontend"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._refused = Counter(
            "politico_bot_refused", "tweet requests turned away before generating, by reason",
            ["frontend", "reason"], registry=self.registry,
        )
        self._failed = Counter(
            "politico_bot_failures", "requests that got no tweet, by kind",
            ["frontend", "kind"], registry=self.registry,
        )
        self._took_over = Counter(
            "politico_bot_takeovers", "requests this process took over from one that died or "
            "stopped, by kind (pending: still to write; unanswered: written, never delivered)",
            ["frontend", "kind"], registry=self.registry,
        )

    def watch_engine(self, stats: EngineStats) -> None:
        """Expose the in-process engine's numbers too (a remote backend has none here)."""
        self.registry.register(EngineCollector(stats))

    def watch_remote(self, stats: RemoteStats) -> None:
        """Expose what the remote backend saw of the inference tier: retries, partial answers
        and failed attempts per endpoint (the servers' own numbers are on their ``/metrics``)."""
        self.registry.register(RemoteCollector(stats))

    # -- bot.core.Monitor ------------------------------------------------------------------------

    def answered(self, frontend: str, seconds: float) -> None:
        self._answer.labels(frontend).observe(seconds)

    def first_token(self, frontend: str, seconds: float) -> None:
        self._first_token.labels(frontend).observe(seconds)

    def refused(self, frontend: str, reason: Refusal) -> None:
        self._refused.labels(frontend, reason).inc()

    def failed(self, frontend: str, kind: Failure) -> None:
        self._failed.labels(frontend, kind).inc()

    def took_over(self, frontend: str, kind: Takeover) -> None:
        self._took_over.labels(frontend, kind).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return exposition(self.registry)


class RemoteCollector(Collector):
    """Reads the remote backend's counters when Prometheus scrapes."""

    def __init__(self, stats: RemoteStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        retries = CounterMetricFamily(
            "politico_remote_retries", "completions attempts moved on to another endpoint after "
            "one failed, timed out or was busy")
        retries.add_metric([], stats.retries)
        yield retries
        partial = CounterMetricFamily(
            "politico_remote_partial_answers", "answers with fewer completions than asked, by "
            "reason (shed: the server shed candidates under load; short: any other)", labels=["reason"])
        partial.add_metric(["shed"], stats.shed)
        partial.add_metric(["short"], stats.short)
        yield partial
        failures = CounterMetricFamily(
            "politico_remote_failures", "failed completions attempts by endpoint and kind",
            labels=["endpoint", "kind"])
        for (endpoint, kind), count in sorted(stats.failures.items()):
            failures.add_metric([endpoint, kind], count)
        yield failures
