"""``politico gpu-check``: what the CUDA path promises, proven on a GPU in one run of minutes.

A GPU is lent to this project for about fifteen minutes at a time, so everything the GPU has to
prove runs here, in order, each stage within what is left of a budget (9 minutes by default,
after ``make gpu-check`` has installed the CUDA build of torch), and a stage that fails does
not stop the next ones:

1. ``pytest -m cuda`` over ``tests/generation`` (the cuda-marked tests);
2. a forced re-capture: graphs made at load for one row, then a batch that grows the cache
   (every graph recorded again into a fresh pool), its tweets against the eager path's;
3. two models under staggered load (the second loads and records while the first decodes);
4. syncs per step, counted with ``torch.cuda.set_sync_debug_mode("warn")``, and step times,
   graphs on and off;
5. tokens with graphs on and off;
6. ``politico bench --device cuda`` (every phase warm), which times the engine against plain
   ``generate`` at 1, 128 and 512 and one ``/tuit`` of the demo model.

It writes ``report.json`` and ``report.md`` (and the bench's own JSON) into ``--out-dir``.
Where torch sees no GPU it says so in one line, writes the reports with that, and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from generation.config import ConfigError, add_config_argument
from generation.measuring import bench, gpuprobes, tuit

ROOT = Path(__file__).resolve().parents[2]
#: The targets issue 30 sets for the first GPU run.
TUIT_MS = 150
ENGINE_VS_BARE = {128: 1.5, 512: 2.0}


@dataclass
class Stage:
    """One stage of the check: what it runs, and the least time it needs to be worth starting."""

    name: str
    run: Callable[[float], dict[str, Any]]
    needs_s: float


@dataclass
class Outcome:
    name: str
    status: str  # passed, failed, error, skipped
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


def no_gpu_reason() -> str | None:
    """Why there is nothing to check here, in one line; None where torch sees a GPU."""
    if torch.cuda.is_available():
        return None
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    return (f"no GPU: torch {torch.__version__} ({build}) sees no CUDA device here, so there is nothing "
            "to check; on a GPU machine run `make gpu-check`, which installs the CUDA build of torch")


def environment() -> dict[str, Any]:
    out: dict[str, Any] = {
        "python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        out.update(device=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                   capability=f"{props.major}.{props.minor}", bf16=torch.cuda.is_bf16_supported())
    smi = shutil.which("nvidia-smi")
    if smi:
        query = [smi, "--query-gpu=driver_version,name", "--format=csv,noheader"]
        done = subprocess.run(query, capture_output=True, text=True, timeout=20, check=False)
        out["nvidia_smi"] = done.stdout.strip() or done.stderr.strip()
    return out


def cuda_tests(seconds: float) -> dict[str, Any]:
    """The cuda-marked tests in a child process (so a CUDA error there cannot poison this one)."""
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "tests/generation"]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"pytest -m cuda did not finish within {seconds:.0f} s"}
    tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", tail[-1] if tail else "")}
    return {"ok": done.returncode == 0 and counts.get("passed", 0) > 0, "returncode": done.returncode,
            **counts, "tail": tail}


def bench_phase(demo: Any, out_dir: Path, threads: int) -> Callable[[float], dict[str, Any]]:
    def run(seconds: float) -> dict[str, Any]:
        device = torch.device("cuda")
        with tempfile.TemporaryDirectory(prefix="politico-gpu-check-") as tmp:
            report = asyncio.run(bench.run(bench.FULL_CUDA, Path(tmp), threads, device, demo))
        (out_dir / "bench-cuda.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                                                 encoding="utf-8")
        ratios, phases = report["ratios"], report["phases"]
        latency = ratios["engine_c1_latency_vs_bare_generate"]
        targets = {
            f"tuit median ≤ {TUIT_MS} ms": phases["tuit"]["median_ms"] <= TUIT_MS,
            **{f"engine ≥ {need}× plain generate at {size}": ratios[f"engine_c{size}_vs_bare_batched"] >= need
               for size, need in ENGINE_VS_BARE.items()},
        }
        return {
            "ok": True, "targets": targets,
            "engine_vs_bare_batched": {size: ratios[f"engine_c{size}_vs_bare_batched"] for size in (32, 128, 512)},
            "engine_c1_latency_vs_generate": latency,
            "tweets_per_s": {name: p["tweets_per_s"] for name, p in phases.items() if "tweets_per_s" in p},
            "tuit": {k: phases["tuit"][k] for k in ("median_ms", "p90_ms", "requests", "device", "dtype")},
            "wall_s": report["wall_s"],
        }

    return run


def stages(demo: Any, out_dir: Path, threads: int) -> list[Stage]:
    """The stages in order; the probes share one registry, freed before the bench loads its own."""
    holder: dict[str, Any] = {}

    def registry() -> Any:
        if "registry" not in holder:
            holder["registry"] = gpuprobes.registry_for(demo)
        return holder["registry"]

    params = demo.models[demo.default_model].decoding.params()
    timed_bench = bench_phase(demo, out_dir, threads)

    def bench_alone(seconds: float) -> dict[str, Any]:
        holder.clear()
        gc.collect()
        torch.cuda.empty_cache()
        return timed_bench(seconds)

    return [
        Stage("pytest -m cuda", cuda_tests, 60),
        Stage("re-capture after cache growth", lambda s: gpuprobes.recapture(registry(), params), 20),
        Stage("two models, staggered load", lambda s: asyncio.run(gpuprobes.two_models(registry(), params)), 30),
        Stage("syncs per step", lambda s: gpuprobes.syncs_per_step(registry(), params), 30),
        Stage("tokens, graphs on and off", lambda s: gpuprobes.graphs_on_and_off(registry(), params), 20),
        Stage("politico bench --device cuda", bench_alone, 150),
    ]


def run_stages(plan: list[Stage], budget_s: float) -> list[Outcome]:
    deadline = time.monotonic() + budget_s
    outcomes = []
    for stage in tqdm(plan, desc="gpu-check", unit="stage", file=sys.stderr):
        left = deadline - time.monotonic()
        if left < stage.needs_s:
            outcomes.append(Outcome(stage.name, "skipped", 0.0, {"reason": f"{left:.0f} s of the budget left"}))
            continue
        started = time.monotonic()
        try:
            details = stage.run(left)
            status = "passed" if details.get("ok") else "failed"
        except Exception as exc:  # reported; the next stages still run
            details = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc().splitlines()[-8:]}
            status = "error"
        outcomes.append(Outcome(stage.name, status, round(time.monotonic() - started, 1), details))
        tqdm.write(f"{stage.name}: {status} ({outcomes[-1].seconds} s)", file=sys.stderr)
    return outcomes


def markdown(report: dict[str, Any]) -> str:
    """The report for a reader (docs/benchmarks.md "On a GPU" copies its figures)."""
    env = report["environment"]
    lines = [f"# politico gpu-check, {report['started']}", ""]
    if report["status"] == "no-gpu":
        return "\n".join([*lines, report["reason"], ""])
    lines += [f"{env.get('device')} ({env.get('memory_gib')} GiB, compute {env.get('capability')}), torch {env['torch']} "
              f"(CUDA {env['torch_cuda']}), Python {env['python']}; {report['wall_s']} s in all.", "",
              "| stage | status | seconds |", "| --- | --- | ---: |"]
    lines += [f"| {o['name']} | {o['status']} | {o['seconds']} |" for o in report["stages"]]
    targets = next((o["details"].get("targets") for o in report["stages"] if o["details"].get("targets")), None)
    if targets:
        lines += ["", "| target (issue 30) | met |", "| --- | --- |"]
        lines += [f"| {name} | {'yes' if met else 'no'} |" for name, met in targets.items()]
    for outcome in report["stages"]:
        lines += ["", f"## {outcome['name']}", "", "```json", json.dumps(outcome["details"], indent=2,
                                                                          ensure_ascii=False), "```"]
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(markdown(report), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="politico gpu-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=Path("gpu-check"), help="where report.json and report.md go")
    parser.add_argument("--budget-s", type=float, default=540, help="seconds the stages may take in all")
    parser.add_argument("--demo", type=Path, metavar="PATH", help="the demo model (default: the config's)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    add_config_argument(parser)
    args = parser.parse_args(argv)
    started = time.monotonic()
    report: dict[str, Any] = {"command": "politico gpu-check", "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                              "environment": environment()}
    reason = no_gpu_reason()
    if reason is not None:
        print(reason)
        report.update(status="no-gpu", reason=reason, stages=[])
        write(report, args.out_dir)
        print(f"wrote {args.out_dir / 'report.json'} and {args.out_dir / 'report.md'}")
        return 0
    try:
        demo = tuit.settings(args.config, args.demo, torch.device("cuda"), args.threads)
    except ConfigError as exc:
        parser.error(str(exc))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    outcomes = run_stages(stages(demo, args.out_dir, args.threads), args.budget_s)
    report["stages"] = [o.__dict__ for o in outcomes]
    report["status"] = "passed" if all(o.status == "passed" for o in outcomes) else "failed"
    report["wall_s"] = round(time.monotonic() - started, 1)
    write(report, args.out_dir)
    print(markdown(report))
    return 0 if report["status"] == "passed" else 1
