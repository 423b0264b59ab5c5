"""``politico gpu-check`` off a GPU: the clean "no GPU" exit, the stage runner, and its probes run
on the CPU with the graphed path emulated (so the one GPU run does not find a typo)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import torch

from generation.decoding import batch as batch_module
from generation.measuring import gpucheck, gpuprobes
from tests.generation.conftest import generation_settings
from tests.support.graphs import EmulatedRecorder


def test_without_a_gpu_it_says_so_in_one_line_and_writes_both_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gpucheck.main(["--out-dir", str(tmp_path)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("no GPU: torch ") and "make gpu-check" in first
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "no-gpu" and report["stages"] == [] and report["reason"] == first
    assert first in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_stages_run_in_order_within_the_budget_and_a_failure_does_not_stop_the_rest() -> None:
    def broken(seconds: float) -> dict[str, object]:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    plan = [
        gpucheck.Stage("good", lambda s: {"ok": True, "targets": {"tuit median ≤ 150 ms": False}}, 0),
        gpucheck.Stage("bad", lambda s: {"ok": False}, 0),
        gpucheck.Stage("broken", broken, 0),
        gpucheck.Stage("too long", lambda s: {"ok": True}, 10_000),
    ]
    outcomes = gpucheck.run_stages(plan, budget_s=60)
    assert [(o.name, o.status) for o in outcomes] == [
        ("good", "passed"), ("bad", "failed"), ("broken", "error"), ("too long", "skipped")]
    assert "illegal memory access" in outcomes[2].details["error"]
    report = {"started": "now", "status": "failed", "wall_s": 1.0, "stages": [o.__dict__ for o in outcomes],
              "environment": {"torch": "x", "torch_cuda": "12", "python": "3.11", "device": "GPU"}}
    text = gpucheck.markdown(report)
    assert "| broken | error |" in text and "| tuit median ≤ 150 ms | no |" in text


def test_the_probes_run_on_the_cpu_through_the_emulated_graphs(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every probe end to end on the tiny model, graphed path emulated; ``ok`` where the CPU
    can say (the sync counts need a GPU: here none are counted)."""
    recorders: list[EmulatedRecorder] = []

    def recorder_for(device: torch.device, enabled: bool) -> EmulatedRecorder | None:
        if not enabled:
            return None
        recorders.append(EmulatedRecorder())
        return recorders[-1]

    monkeypatch.setattr(batch_module, "recorder_for", recorder_for)
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", lambda mode: None)
    settings = generation_settings(tiny_model_dir)
    registry = gpuprobes.registry_for(settings)
    params = settings.models[settings.default_model].decoding.params(max_new_tokens=12)
    recaptured = gpuprobes.recapture(registry, params)
    assert recaptured["ok"] and recaptured["cache_moves"] >= 1 and recaptured["tweets_equal_to_eager"] == 42
    both = asyncio.run(gpuprobes.two_models(registry, params, waves=1))
    assert both["ok"] and both["answered"] == 32
    syncs = gpuprobes.syncs_per_step(registry, params, rows=8)
    assert syncs[gpuprobes.GRAPHED]["join"]["steps"] >= 1 and syncs[gpuprobes.EAGER]["leave"]["steps"] >= 1
    assert gpuprobes.graphs_on_and_off(registry, params, rows=8)["ok"]
