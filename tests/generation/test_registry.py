"""Loading models: lazily, once, from folders without touching the hub, with clear errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from generation import registry as registry_module
from generation.registry import ModelLoadError, ModelRegistry, looks_local, pick_device, pick_dtype
from generation.settings import ModelSpec
from generation.types import UnknownModel


def test_unknown_model_is_refused(registry: ModelRegistry) -> None:
    with pytest.raises(UnknownModel, match="nope"):
        registry.get("nope")


def test_a_missing_folder_names_the_path_and_never_reaches_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    def no_hub(*args: object, **kwargs: object) -> None:
        raise AssertionError("from_pretrained must not be called for a missing folder")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_hub)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_hub)
    missing = tmp_path / "models" / "nada"
    reg = ModelRegistry({"m": ModelSpec(path=str(missing), kind="controlled")})
    with pytest.raises(ModelLoadError, match=f"folder '{missing}' not found"):
        reg.get("m")
    relative = ModelRegistry({"m": ModelSpec(path="./models/typo", kind="casual")})
    with pytest.raises(ModelLoadError, match="not found"):
        relative.get("m")


def test_a_broken_folder_is_a_load_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    reg = ModelRegistry({"m": ModelSpec(path=str(tmp_path), kind="controlled")})
    with pytest.raises(ModelLoadError, match=f"cannot load folder '{tmp_path}'"):
        reg.get("m")


def test_loads_lazily_once_even_from_many_threads(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = ModelRegistry({"m": ModelSpec(path=str(tiny_model_dir), kind="controlled", device="cpu")}, warmup=True)
    calls: list[str] = []
    real = ModelRegistry._load

    def counting(self: ModelRegistry, name: str, spec: ModelSpec):
        calls.append(name)
        return real(self, name, spec)

    monkeypatch.setattr(ModelRegistry, "_load", counting)
    assert not reg.is_loaded("m")
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(reg.get("m"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a load never returned"
    assert calls == ["m"]
    assert len({id(x) for x in got}) == 1
    loaded = reg.get("m")
    assert not loaded.model.training
    assert loaded.device == torch.device("cpu") and loaded.dtype == torch.float32
    assert loaded.max_positions == 128


def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto").type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto").type == "cpu"
    assert pick_device("cpu").type == "cpu"


def test_dtype_auto_is_half_precision_only_on_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert pick_dtype("auto", torch.device("mps")) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert pick_dtype("auto", torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert pick_dtype("auto", torch.device("cuda")) == torch.float16
    assert pick_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


def test_configured_dtype_is_applied(tiny_model_dir: Path) -> None:
    spec = ModelSpec(path=str(tiny_model_dir), kind="controlled", device="cpu", dtype="bfloat16")
    reg = ModelRegistry({"m": spec})
    loaded = reg.get("m")
    assert loaded.dtype == torch.bfloat16
    assert next(loaded.model.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize(("path", "local"), [
    ("ensamblador/gpt2-twitter-politico", False),
    ("gpt2", False),
    ("./models/demo", True),
    ("../demo", True),
    ("/srv/models/demo", True),
    ("~/modelos/demo", True),
    ("models/demo/v2", True),
])
def test_paths_that_look_like_folders_are_told_from_hub_ids(path: str, local: bool) -> None:
    assert looks_local(path) is local


def test_threads_setting_sets_torch_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr(registry_module.torch, "set_num_threads", seen.append)
    ModelRegistry({}, threads=3)
    ModelRegistry({}, threads=0)
    assert seen == [3]


def test_the_fused_gelu_computes_what_gpt2s_gelu_does(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM
    from transformers.activations import NewGELUActivation

    from generation.registry import fuse_activations

    x = torch.linspace(-6, 6, 1001)
    assert torch.allclose(torch.nn.GELU(approximate="tanh")(x), NewGELUActivation()(x), atol=1e-6)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.tensor([[7, 20, 30, 40]])
    before = model(input_ids=ids).logits
    assert fuse_activations(model) == model.config.n_layer
    assert not any(isinstance(m, NewGELUActivation) for m in model.modules())
    assert torch.allclose(model(input_ids=ids).logits, before, atol=1e-5)
