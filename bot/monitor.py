"""Prometheus metrics of one ``politico run`` process: the core's numbers per front-end, and the
engine's when it runs in this process.

The core reports through the small :class:`bot.core.Monitor` protocol; this is the only bot
module that knows Prometheus, so the core and the front-ends never import it. The engine's
series are the same ones ``politico serve`` exposes (``generation/serving/engine_metrics.py``),
so one dashboard reads both kinds of process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from bot.core import Failure, Refusal
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

    def watch_engine(self, stats: EngineStats) -> None:
        """Expose the in-process engine's numbers too (a remote backend has none here)."""
        self.registry.register(EngineCollector(stats))

    # -- bot.core.Monitor ------------------------------------------------------------------------

    def answered(self, frontend: str, seconds: float) -> None:
        self._answer.labels(frontend).observe(seconds)

    def first_token(self, frontend: str, seconds: float) -> None:
        self._first_token.labels(frontend).observe(seconds)

    def refused(self, frontend: str, reason: Refusal) -> None:
        self._refused.labels(frontend, reason).inc()

    def failed(self, frontend: str, kind: Failure) -> None:
        self._failed.labels(frontend, kind).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return exposition(self.registry)
