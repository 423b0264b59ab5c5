"""Serve benchmark: what ``politico serve`` gives over HTTP, and what the remote backend costs.

Builds the same GPT-2 small sized random-weights model as ``politico bench`` (nothing is
downloaded), starts a real ``politico serve`` subprocess on 127.0.0.1 and measures, in one run:

* ``sampling_one_at_a_time``: the thesis's way, in this process: ``generate`` with sampling,
  one request at a time (as ``politico bench`` measures it);
* ``bare_generate_xN``: one bare ``generate`` over N prompts, the ceiling of batching here;
* ``http_one_at_a_time``: one HTTP client, one request at a time (fixed-length tweets);
* ``http_cN``: N concurrent HTTP clients (32 in the full run), each sending requests back to back;
* ``bot``: the bot's generation path (``TweetGenerator``) on the in-process engine and on the
  remote backend pointed at the server, one request at a time, alternating local and remote with
  the same seed and prompt so both do identical work and drift in the machine's load hits both.

Ratios within the run are what count. Run ``python -m generation.measuring.serve_bench`` (``--quick``: tiny
model, a smoke test; ``--out FILE`` also writes the JSON).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import torch

from generation.measuring.bench import (
    FIELDS,
    FULL,
    QUICK,
    Bench,
    Plan,
    build_model,
    machine,
    run_cli,
    summary,
)
from generation.prompts import prompt_text
from generation.serving.backends.local import LocalBackend
from generation.settings import GenerationSettings
from generation.types import BlockedOutput, PromptSpec

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Counts:
    """Requests per phase (kept small: the full run must fit in minutes on two busy cores)."""

    sequential: int
    per_client: int
    bot_pairs: int


COUNTS = {"full": Counts(sequential=6, per_client=2, bot_pairs=8), "quick": Counts(2, 1, 2)}


def write_config(folder: Path, model: Path, plan: Plan, clients: int, threads: int) -> Path:
    """A config with the bench model; post-processing accepts anything, so every request
    decodes exactly once and local and remote do the same work. ``threads`` torch threads per
    process (0: torch's default, all cores); on a machine busy with other work, 1 keeps the
    server's and the bench's thread pools from fighting over the cores. A 25 ms batch window (8 by
    default) lets 32 clients whose requests arrive spread out by a busy machine share one batch."""
    path = folder / "config.toml"
    path.write_text(
        f"""
[database]
url = "sqlite+aiosqlite:///{folder / 'unused.db'}"

[generation]
default_model = "bench"

[generation.engine]
threads = {threads}
max_batch = {clients}
batch_window_ms = 25
queue_size = {8 * clients}
request_timeout_s = 3600

[generation.postprocess]
min_chars = 1
max_tries = 1

[generation.models.bench]
path = "{model}"
kind = "controlled"
device = "cpu"

[generation.models.bench.decoding]
max_new_tokens = {plan.tokens}
min_new_tokens = {plan.tokens}
temperature = 0.9
top_p = 0.9
""",
        encoding="utf-8",
    )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(config: Path, log_path: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A ``politico serve`` on a free port of 127.0.0.1, once healthy: the process and its URL."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "generation.serving.server", "--config", str(config), "--port", str(port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"politico serve exited:\n{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("politico serve did not become healthy")


def body(i: int, plan: Plan) -> dict[str, Any]:
    return {
        "model": "bench", "prompt": prompt_text(FIELDS[i % len(FIELDS)]), "max_tokens": plan.tokens,
        "ignore_eos": True, "temperature": 0.9, "top_p": 0.9, "seed": i,
    }


async def http_phase(client: httpx.AsyncClient, plan: Plan, clients: int, per_client: int) -> dict[str, Any]:
    """``clients`` concurrent HTTP clients, each sending ``per_client`` requests in a row."""
    latencies: list[float] = []

    async def one_client(c: int) -> None:
        for k in range(per_client):
            started = time.perf_counter()
            response = await client.post("/v1/completions", json=body(c * per_client + k, plan))
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one_client(c) for c in range(clients)))
    return summary(latencies, time.perf_counter() - started)


async def bot_phase(settings: GenerationSettings, local: LocalBackend, url: str, pairs: int) -> dict[str, Any]:
    """The bot's ``TweetGenerator`` on the local engine and on the remote backend, alternating.

    Each pair is the same request (seed and prompt) both ways, so the per-pair ratio cancels
    what the rest of the machine was doing at that moment; the median ratio is the result.
    """
    from generation.serving.backends.remote import RemoteBackend
    from generation.serving.service import TweetGenerator, TweetRequest

    remote_settings = settings.model_copy(update={
        "backend": "remote",
        "remote": settings.remote.model_copy(update={"endpoints": [url], "timeout_s": 3600}),
    })
    generators = {
        "local": TweetGenerator(settings, local),
        "remote": TweetGenerator(remote_settings, RemoteBackend(remote_settings)),
    }
    blocked = 0

    async def timed(which: str, request: TweetRequest) -> float:
        nonlocal blocked
        started = time.perf_counter()
        try:
            await generators[which].generate(request)
        except BlockedOutput:
            blocked += 1  # the same seed is blocked on both sides: still identical work
        return time.perf_counter() - started

    latencies: dict[str, list[float]] = {"local": [], "remote": []}
    try:
        for which in ("local", "remote"):  # warm both paths (connections, first batch)
            await timed(which, TweetRequest(None, PromptSpec("controlled", FIELDS[0]), seed=10_000))
        for i in range(pairs):
            request = TweetRequest(None, PromptSpec("controlled", FIELDS[i % len(FIELDS)]), seed=i)
            for which in ("local", "remote") if i % 2 == 0 else ("remote", "local"):
                latencies[which].append(await timed(which, request))
    finally:
        await generators["remote"].aclose()
    ratios = [r / loc for r, loc in zip(latencies["remote"], latencies["local"], strict=True)]
    out: dict[str, Any] = {
        which: {
            "requests": len(values),
            "latency_ms": {
                "mean": round(statistics.fmean(values) * 1000, 1),
                "median": round(statistics.median(values) * 1000, 1),
            },
        }
        for which, values in latencies.items()
    }
    out["remote_over_local_per_pair"] = [round(r, 3) for r in ratios]
    out["remote_over_local_median"] = round(statistics.median(ratios), 3)
    out["blocked_outputs"] = blocked
    return out


async def run(plan: Plan, folder: Path, threads: int) -> dict[str, Any]:
    from generation.config import ServeSettings, load_config

    started = time.perf_counter()
    clients = max(plan.concurrency)
    model = build_model(folder / "model", plan)
    config = write_config(folder, model, plan, clients, threads)
    settings = load_config(ServeSettings, config).generation
    env = machine()
    counts = COUNTS["full" if plan is FULL else "quick"]
    phases: dict[str, Any] = {}

    def record(name: str, result: dict[str, Any]) -> None:
        phases[name] = result
        print(f"{name}: {json.dumps(result)}", file=sys.stderr, flush=True)

    local = LocalBackend(settings)  # the same torch threads in this process (engine.threads)
    # Loaded on a helper thread, as the server does (see ``generation.serving.server``'s lifespan).
    await asyncio.to_thread(local.registry.get, "bench")
    # The thesis's way, one request at a time: plain sampling with ``generate``, in-process.
    bench = Bench(local.registry.get("bench"), plan)
    record("sampling_one_at_a_time", bench.sequential(
        "sampling", counts.sequential, do_sample=True, temperature=0.9, top_p=0.9,
    ))
    # The ceiling for batching this model here: one bare ``generate`` over N prompts at once.
    record(f"bare_generate_x{clients}", bench.batched(clients, 1))
    process, url = start_server(config, folder / "serve.log")
    try:
        limits = httpx.Limits(max_connections=2 * clients, max_keepalive_connections=2 * clients)
        async with httpx.AsyncClient(base_url=url, timeout=3600, limits=limits) as client:
            await http_phase(client, plan, 1, 1)  # warm-up
            record("http_one_at_a_time", await http_phase(client, plan, 1, counts.sequential))
            record(f"http_c{clients}", await http_phase(client, plan, clients, counts.per_client))
        record("bot", await bot_phase(settings, local, url, counts.bot_pairs))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)
        await local.aclose()
    concurrent = phases[f"http_c{clients}"]["tweets_per_s"]
    ratios: dict[str, Any] = {
        f"http_c{clients}_vs_sampling_one_at_a_time": round(
            concurrent / phases["sampling_one_at_a_time"]["tweets_per_s"], 2
        ),
        f"http_c{clients}_vs_http_one_at_a_time": round(
            concurrent / phases["http_one_at_a_time"]["tweets_per_s"], 2
        ),
        f"http_c{clients}_vs_bare_generate_x{clients}": round(
            concurrent / phases[f"bare_generate_x{clients}"]["tweets_per_s"], 2
        ),
        "bot_remote_vs_local_latency": phases["bot"]["remote_over_local_median"],
    }
    ratios["targets_met"] = {
        "http_throughput_x4_sampling": ratios[f"http_c{clients}_vs_sampling_one_at_a_time"] >= 4,
        "http_throughput_x4_http": ratios[f"http_c{clients}_vs_http_one_at_a_time"] >= 4,
        "remote_latency_under_10pct": ratios["bot_remote_vs_local_latency"] < 1.10,
    }
    env["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "command": "python -m generation.measuring.serve_bench" + (" --quick" if plan is QUICK else ""),
        "machine": env,
        "model": {"layers": plan.layers, "width": plan.width, "vocab": plan.vocab},
        "new_tokens_per_tweet": plan.tokens,
        "torch_threads_per_process": threads or torch.get_num_threads(),
        "phases": phases,
        "ratios": ratios,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    return run_cli("python -m generation.measuring.serve_bench", __doc__.split("\n\n")[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
