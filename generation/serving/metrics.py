"""Prometheus metrics of ``politico serve``: what the HTTP layer sees, plus the engine's numbers.

Each server gets its own registry, so several apps can live in one process (the tests run a
few) without clashing names. The engine's own numbers come from
``generation/serving/engine_metrics.py``, which ``politico run`` shares.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from generation.serving.engine_metrics import (
    LATENCY_BUCKETS,
    EngineCollector,
    EngineStats,
    exposition,
)


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


class ServerMetrics:
    """The metrics one ``politico serve`` process exposes on ``/metrics``."""

    def __init__(self, engine_stats: EngineStats) -> None:
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
        self.shed_answers = Counter(
            "politico_shed_answers", "answers with fewer completions than asked: the engine shed "
            "candidates under load (the body says so in \"shed\")", registry=self.registry,
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
        return exposition(self.registry)
