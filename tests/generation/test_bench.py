"""``politico bench --quick``: every phase runs and the report holds what docs/benchmarks.md cites."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from bot.config import load_settings
from bot.core import BotCore
from bot.parser import parse_command
from bot.ratelimit import MemoryRateLimiter
from generation.measuring import bench, ctranslate2_anchor, tuit
from generation.registry import on_own_thread


def test_quick_bench_reports_every_phase(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--out", str(out), "--threads", "1", "--demo", str(tiny_model_dir)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(capsys.readouterr().out) == report
    phases = report["phases"]
    anchor = {"ctranslate2_int8_x1", "ctranslate2_int8_x4"} if ctranslate2_anchor.available() else set()
    assert set(phases) == {
        "thesis_beams_sequential", "sampling_sequential", "bare_generate_x4", "engine_c1", "engine_c4",
        "engine_int8_c1", "engine_int8_c4", "tuit", *anchor,
    }
    assert report["skipped"] == {} and report["model"]["device"] == "cpu"
    tuit = phases.pop("tuit")  # the bot's request: 8 candidates, 6 contrasts, 2 negative prompts
    assert tuit["requests"] == bench.QUICK.tuit_requests and tuit["median_ms"] <= tuit["p90_ms"]
    assert (tuit["candidates"], tuit["ranking_contrasts"], tuit["negative_prompts"]) == (8, 6, 2)
    assert tuit["model"] == str(tiny_model_dir) and tuit["device"] == "cpu" and tuit["dtype"] == "float32"
    assert phases["engine_int8_c4"]["requests"] == 4
    for name in anchor:
        assert phases[name]["fewest_new_tokens"] == report["new_tokens_per_tweet"]
    if anchor:  # at one client the engine and CTranslate2 take turns; the figure is the pairs' median
        pairs = phases["engine_int8_c1"]["latency_vs_ctranslate2_pairs"]
        assert len(pairs) == phases["ctranslate2_int8_x1"]["requests"] == bench.QUICK.int8_pairs
        median = phases["engine_int8_c1"]["latency_vs_ctranslate2_median"]
        assert min(pairs) <= median <= max(pairs)
        assert report["ratios"]["engine_int8_c1_latency_vs_ctranslate2_int8_x1"] == median
    assert phases["engine_c4"]["requests"] == 4
    assert all(p["tweets_per_s"] > 0 for p in phases.values())
    assert phases["engine_c1"]["loop_lag_ms"]["max"] >= 0
    assert set(report["ratios"]["targets_met"]) == {
        "throughput_x4.5_sequential", "throughput_90pct_bare_batched", "latency_within_10pct",
        "loop_lag_under_50ms",
        *(["int8_throughput_x1.1_ctranslate2", "int8_latency_at_most_ctranslate2"] if anchor else []),
    }
    assert report["ratios"]["engine_int8_c4_vs_engine_c4"] > 0
    assert report["model"]["layers"] == 2 and report["machine"]["cpus"]


def test_torch_work_runs_on_a_thread_that_ends_with_it() -> None:
    """The bench's phases and model loading leave no thread (and no OpenMP team) behind."""
    caller = threading.current_thread()
    ran_on: list[threading.Thread] = []

    def work() -> int:
        ran_on.append(threading.current_thread())
        return 7

    assert on_own_thread(work) == 7
    assert ran_on[0] is not caller and not ran_on[0].is_alive()
    with pytest.raises(ValueError, match="broken"):
        on_own_thread(lambda: int("broken"))


def test_the_tuit_phase_sends_what_the_bot_sends_with_the_shipped_config() -> None:
    """The bench cannot import the bot, so its request is written out; this keeps it the bot's."""
    settings = load_settings()  # the repo's config.toml
    core = BotCore(settings, None, None, MemoryRateLimiter())  # planning needs neither
    parsed = parse_command("/tuit piñera positivo pensiones", core.catalog, 280)
    assert core.plan(parsed).prompt == tuit.prompt(settings.generation.ranking.side_contrasts)
    assert settings.bot.candidates == tuit.CANDIDATES
    for per_side in range(1, 9):
        written = [pair for parties in tuit.OTHER_SIDES for pair in parties[:per_side]]
        assert core.catalog.contrast_parties(parsed.side, per_side) == written


def test_the_gpu_plan_adds_large_batches_and_the_cpu_plan_stays(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.plan_for(False, bench.CPU) is bench.FULL and bench.plan_for(True, bench.CPU) is bench.QUICK
    gpu = bench.plan_for(False, torch.device("cuda"))
    assert gpu.bare_sizes == (32, 128, 512) and set(gpu.bare_sizes) <= set(gpu.concurrency)
    if not torch.cuda.is_available():  # asked for a GPU that is not there: one line, no run
        with pytest.raises(SystemExit) as stop:
            bench.main(["--quick", "--device", "cuda"])
        assert stop.value.code == 2 and "no CUDA device" in capsys.readouterr().err
