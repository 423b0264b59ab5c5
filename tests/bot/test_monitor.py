"""``politico run``'s monitoring port: what the core reports per front-end, ``/health`` and
``/metrics`` over the in-process engine, the port's life with the runner, and its config."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import runner
from bot.app import build_app
from bot.config import FrontendLimits, Settings, load_settings
from bot.core import BotCore
from bot.monitor import BotMetrics
from bot.monitor_http import MonitorError, MonitorServer, monitor_for
from bot.ratelimit import MemoryRateLimiter
from bot.types import Incoming, Origin
from db.log import GenerationLog
from generation.config import ConfigError
from generation.serving.service import TweetRequest, TweetResult
from generation.types import BlockedOutput, EngineBusy, GenerationTimeout, SamplingParams
from tests.conftest import write_config
from tests.support.ports import on_free_port
from tests.support.waiting import until

TELEGRAM = Origin("telegram", "u1", "c1")
CONSOLE = Origin("console", "op", "console:op")


def samples(payload: bytes) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(payload.decode())
        for s in family.samples
    }


# -- what the core reports ---------------------------------------------------------------------


@dataclass
class ScriptedGenerator:
    """Fails with the next scripted error, or writes a tweet whose first token came at 0.2 s."""

    errors: list[Exception] = field(default_factory=list)

    async def generate(self, req: TweetRequest) -> TweetResult:
        if self.errors:
            raise self.errors.pop(0)
        return TweetResult(texts=["tuit"] * req.n, model="demo", prompt_text="", params=SamplingParams(),
                           seed=1, latency_ms=1.0, tokens=[1] * req.n, tries=1, rejected=[],
                           first_token_s=0.2)


def core_with(settings: Settings, log: GenerationLog, generator: ScriptedGenerator) -> tuple[BotCore, BotMetrics]:
    metrics = BotMetrics()
    one_a_minute = FrontendLimits(per_user_per_minute=1, per_chat_per_minute=0)
    limited = settings.model_copy(update={"rate_limits": settings.rate_limits.model_copy(
        update={"telegram": one_a_minute})})
    core = BotCore(limited, generator, log, MemoryRateLimiter(), rng=random.Random(1), monitor=metrics)
    return core, metrics


@pytest.mark.expect_errors(r"generation failed for request")  # the RuntimeError("bug")
async def test_the_core_reports_answers_refusals_and_failures_per_front_end(settings: Settings, log: GenerationLog) -> None:
    generator = ScriptedGenerator()
    core, metrics = core_with(settings, log, generator)
    assert (await core.handle(Incoming(TELEGRAM, "/tuit derecha"))).kind == "tweet"
    assert (await core.handle(Incoming(TELEGRAM, "/tuit"))).kind == "rate_limited"
    generator.errors = [EngineBusy("full"), GenerationTimeout("slow"), BlockedOutput("all bad"), RuntimeError("bug")]
    kinds = [(await core.handle(Incoming(replace(CONSOLE, message_id=str(i)), "/tuit"))).kind for i in range(4)]
    assert kinds == ["busy", "error", "error", "error"]
    assert (await core.handle(Incoming(CONSOLE, "/tuit partido=Nadie"))).kind == "error"
    assert (await core.handle(Incoming(CONSOLE, "/tuitear"))).kind == "error"

    values = samples(metrics.render()[0])
    assert values[("politico_bot_answer_seconds_count", (("frontend", "telegram"),))] == 1
    assert values[("politico_bot_first_token_seconds_sum", (("frontend", "telegram"),))] == pytest.approx(0.2)
    assert values[("politico_bot_refused_total", (("frontend", "telegram"), ("reason", "rate_limited")))] == 1
    assert values[("politico_bot_refused_total", (("frontend", "console"), ("reason", "busy")))] == 1
    failures = {dict(labels)["kind"]: v for (name, labels), v in values.items()
                if name == "politico_bot_failures_total" and dict(labels)["frontend"] == "console"}
    assert failures == {"busy": 1, "timeout": 1, "blocked": 1, "internal": 1, "bad_input": 2}
    assert ("politico_bot_answer_seconds_count", (("frontend", "console"),)) not in values


# -- the port over the real engine -------------------------------------------------------------


async def test_health_and_metrics_over_the_in_process_engine(tmp_path: Path, tiny_model_dir: Path) -> None:
    app = await build_app(load_settings(write_config(tmp_path, tiny_model_dir, "[monitor]\nport = 9100\n")))
    try:
        monitor = monitor_for(app)
        assert monitor is not None
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=monitor.app()), base_url="http://bot") as http:
            starting = await http.get("/health")
            assert starting.status_code == 503 and starting.json()["status"] == "starting"

            monitor.running(["console"])
            reply = await app.core.handle(Incoming(CONSOLE, "/tuit derecha positivo pensiones"))
            assert reply.kind == "tweet"
            health = await http.get("/health")
            assert health.status_code == 200
            assert health.json() == {"status": "ok", "frontends": ["console"], "models": ["demo"], "queue_depth": 0}

            scraped = await http.get("/metrics")
            assert scraped.headers["content-type"].startswith("text/plain")
            values = samples(scraped.content)
            assert values[("politico_bot_answer_seconds_count", (("frontend", "console"),))] == 1
            assert values[("politico_engine_requests_total", ())] >= 1
            assert values[("politico_engine_queue_depth", ())] == 0
            assert values[("politico_engine_step_rows_count", ())] >= 1

            monitor.draining()
            draining = await http.get("/health")
            assert draining.status_code == 503 and draining.json()["status"] == "draining"
    finally:
        await app.aclose()


@asynccontextmanager
async def running_runner(folder: Path, model_dir: Path, port: int) -> AsyncIterator[asyncio.Task[int]]:
    """``runner.run`` with its monitoring port on ``port``, until ``/health`` says ok (its
    error if it stops first, e.g. the port was taken); stopped when the block ends."""
    settings = load_settings(write_config(folder, model_dir, f"[monitor]\nport = {port}\n"))
    stop = asyncio.Event()
    run = asyncio.create_task(runner.run(settings, stop))

    async def healthy(http: httpx.AsyncClient) -> bool:
        if run.done():
            run.result()  # raises why it stopped
            raise AssertionError("the runner returned before its port answered")
        try:
            return (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        async with httpx.AsyncClient(timeout=5) as http:
            await until(lambda: healthy(http), "the monitoring port to say ok", timeout=60, every_s=0.05)
        yield run
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(run, return_exceptions=True), 60)


async def test_the_runner_opens_the_port_and_closes_it_after_draining(tmp_path: Path, tiny_model_dir: Path) -> None:
    opened = on_free_port(lambda port: running_runner(tmp_path, tiny_model_dir, port))
    async with opened as (port, run), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        health = await http.get("/health")
        assert health.json() == {"status": "ok", "frontends": [], "models": ["demo"], "queue_depth": 0}
        assert "politico_engine_queue_depth" in (await http.get("/metrics")).text
    assert run.result() == 0
    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(httpx.TransportError):
            await http.get(f"http://127.0.0.1:{port}/health")


async def test_a_taken_port_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = MonitorServer(BotMetrics(), None, "127.0.0.1", port)
        with pytest.raises(MonitorError, match=rf"^no pude abrir el puerto de monitoreo 127.0.0.1:{port}: [^\n]+$"):
            await server.start()
        await server.stop()  # nothing to stop: harmless


# -- config ------------------------------------------------------------------------------------


def test_the_port_is_off_unless_configured(settings: Settings) -> None:
    assert settings.monitor.port == 0 and settings.monitor.host == "127.0.0.1"


@pytest.mark.parametrize(("extra", "named"), [
    ("[monitor]\nport = 70000\n", "monitor.port"),
    ('[monitor]\nport = "nueve"\n', "monitor.port"),
    ('[monitor]\nhost = ""\n', "monitor.host"),
    ("[monitor]\nmetrics = 1\n", "monitor.metrics"),
    ('[monitor]\nport = 8443\n[telegram]\nwebhook_url = "https://bot.example/hook"\n', "monitor.port"),
])
def test_a_wrong_value_is_refused_in_one_line(tmp_path: Path, extra: str, named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(write_config(tmp_path, tmp_path / "no-model", extra))
    message = str(refused.value)
    assert named in message and "\n" not in message


async def test_a_broken_engine_makes_the_bot_unhealthy_for_good() -> None:
    """A device error (engine.stats()["fault"]) is 503 ``unhealthy`` with the fault, whatever
    the phase: the supervisor's liveness probe restarts the process."""
    stats = {"closed": False, "fault": "CUDA error: an illegal memory access", "models_loaded": ["demo"],
             "queue_depth": 0}
    monitor = MonitorServer(BotMetrics(), lambda: stats, "127.0.0.1", 0)
    monitor.running(["telegram"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=monitor.app()), base_url="http://bot") as http:
        health = await http.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "unhealthy" and health.json()["fault"] == stats["fault"]
