"""``politico run``'s monitoring port (``[monitor] port``): ``GET /health`` and ``GET /metrics``.

Served by uvicorn inside the bot's own event loop, started and stopped by the runner: the port
answers from before the front-ends start until the engine has drained, so a load balancer or
systemd sees 503 while the process starts or drains and 200 only while it takes requests, and
Prometheus can still scrape the last requests of a drain. uvicorn's own signal handling is left
out, since the runner owns SIGINT and SIGTERM.
"""

from __future__ import annotations

import logging
from typing import Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import App
from bot.embedded_http import EmbeddedServer
from bot.monitor import BotMetrics
from generation.serving.backends.remote import RemoteBackend
from generation.serving.engine_metrics import EngineStats
from generation.types import Backend

log = logging.getLogger(__name__)

Phase = Literal["starting", "running", "draining"]


class MonitorError(Exception):
    """The monitoring port could not be opened (one line, for the operator)."""


class MonitorServer:
    """The state behind ``/health`` and ``/metrics``, and the uvicorn server answering them."""

    def __init__(self, metrics: BotMetrics, engine_stats: EngineStats | None, host: str,
                 port: int) -> None:
        self.metrics = metrics
        self.engine_stats = engine_stats
        self.host = host
        #: The port asked for; 0 picks a free one (tests), readable from ``port`` once started.
        self.port = port
        self.phase: Phase = "starting"
        self.frontends: list[str] = []
        self._server: EmbeddedServer | None = None

    def running(self, frontends: list[str]) -> None:
        """Every front-end started: healthy from now on."""
        self.frontends = list(frontends)
        self.phase = "running"

    def draining(self) -> None:
        """Stopping: no new updates, the requests in hand finishing."""
        self.phase = "draining"

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/health", self.health, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
        ])

    async def health(self, request: Request) -> Response:
        """200 while the front-ends run and the engine takes work; 503 starting or draining, or
        ``unhealthy`` for good once a device error broke the in-process engine (the process wants
        a restart: let the supervisor's liveness probe see it)."""
        stats = self.engine_stats() if self.engine_stats is not None else {}
        closed, fault = bool(stats.get("closed")), stats.get("fault")
        healthy = self.phase == "running" and not closed and not fault
        body = {
            "status": "ok" if healthy else ("unhealthy" if fault else "draining" if closed else self.phase),
            "frontends": self.frontends,
            # A remote backend's models and queue are its servers' to report.
            "models": stats.get("models_loaded"),
            "queue_depth": stats.get("queue_depth"),
            **({"fault": fault} if fault else {}),
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def prometheus(self, request: Request) -> Response:
        payload, content_type = self.metrics.render()
        return Response(payload, media_type=content_type)

    async def start(self) -> None:
        """Listen on ``host:port`` and serve in the background; ``MonitorError`` if the port
        cannot be had (bound here, so the error is the operating system's, not a log line)."""
        server = EmbeddedServer(self.app(), self.host, self.port)
        try:
            await server.start()
        except OSError as exc:
            raise MonitorError(
                f"no pude abrir el puerto de monitoreo {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        self._server, self.port = server, server.port
        log.info("health and metrics on http://%s:%d (/health, /metrics)", self.host, self.port)

    async def stop(self) -> None:
        """Close the port (a request in progress is answered first)."""
        if self._server is not None:
            await self._server.stop()
            self._server = None


def engine_stats_of(backend: Backend) -> EngineStats | None:
    """The in-process engine's ``stats``; None for a remote backend, whose servers expose their
    own ``/metrics``."""
    engine = getattr(backend, "engine", None)
    return None if engine is None else engine.stats


def monitor_for(app: App) -> MonitorServer | None:
    """The monitoring port ``[monitor]`` asks for, with the app's core reporting to it; None
    when it is off (port 0)."""
    settings = app.settings.monitor
    if not settings.port:
        return None
    metrics = BotMetrics()
    stats = engine_stats_of(app.backend)
    if stats is not None:
        metrics.watch_engine(stats)
    if isinstance(app.backend, RemoteBackend):
        metrics.watch_remote(app.backend.stats)
    app.core.monitor = metrics
    return MonitorServer(metrics, stats, settings.host, settings.port)
