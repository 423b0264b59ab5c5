"""A device error the process cannot recover from (issue 30, item 4), simulated on the CPU.

On a GPU an illegal memory access or a device-side assert poisons the CUDA context: every later
kernel fails. The engine must not rebuild its batch and fail every later request while
``/health`` says ok: it marks itself unhealthy, fails fast, and ``/health`` answers 503 so the
supervisor restarts the process. Here the step raises the error torch raises.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from starlette.testclient import TestClient

from generation.prompts import ControlFields, prompt_text
from generation.serving import engine as engine_module
from generation.serving.engine import Engine, device_fault
from generation.serving.server import CompletionsServer
from generation.types import EngineUnhealthy, SamplingParams
from tests.generation.conftest import generation_settings

ILLEGAL_ACCESS = "CUDA error: an illegal memory access was encountered"


def broken_step(self: object) -> list[object]:
    raise torch.AcceleratorError(ILLEGAL_ACCESS)


def test_which_errors_break_the_device() -> None:
    assert device_fault(torch.AcceleratorError(ILLEGAL_ACCESS))
    assert device_fault(RuntimeError("CUDA error: device-side assert triggered"))
    assert device_fault(RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED when calling cublasGemmEx"))
    assert not device_fault(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not device_fault(RuntimeError("the device fell over"))  # a bug: the batch is rebuilt
    assert not device_fault(ValueError("CUDA error in a prompt"))


@pytest.mark.expect_errors(r"a decoding step on casual failed", r"the device failed")
async def test_a_device_error_makes_the_engine_unhealthy_and_fail_fast(
    engine_factory, lm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module.Batch, "step", broken_step)
    engine: Engine = engine_factory()
    ids = lm.tokenizer.encode("Hoy", add_special_tokens=False)
    with pytest.raises(EngineUnhealthy, match="illegal memory access"):
        await engine.generate("casual", ids, None, SamplingParams(max_new_tokens=4), seed=1)
    stats = engine.stats()
    assert "illegal memory access" in stats["fault"] and stats["failures"] == {"unhealthy": 1}
    steps = stats["steps"]
    with pytest.raises(EngineUnhealthy):  # refused at once: nothing reaches a model thread
        await engine.generate("demo", ids, None, SamplingParams(max_new_tokens=4), seed=2)
    assert engine.stats()["steps"] == steps and engine.stats()["requests"] == 1


@pytest.mark.expect_errors(r"a decoding step on demo failed", r"the device failed")
def test_health_answers_503_unhealthy_after_a_device_error(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = CompletionsServer(generation_settings(tiny_model_dir))
    prompt = prompt_text(ControlFields(partido="RN", sentimiento="POSITIVE"))
    with TestClient(server.app()) as client:
        assert client.get("/health").status_code == 200
        monkeypatch.setattr(engine_module.Batch, "step", broken_step)
        response = client.post("/v1/completions", json={"model": "demo", "prompt": prompt, "max_tokens": 4})
        assert response.status_code == 503 and response.json()["error"]["code"] == "unhealthy"
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy" and "illegal memory access" in health.json()["fault"]
