"""``quantize = "int8"``: int8 layers close to float32, token types kept, config refusals."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from generation.decoding import sampling
from generation.decoding.int8 import Int8Linear, Kernel, fbgemm_available
from generation.decoding.sampling import Row, TokenTable, beam_generate, decode_batch
from generation.measuring.quantcheck import check, perplexity, read_held_out
from generation.prompts import ControlFields
from generation.registry import LoadedModel, ModelLoadError, ModelRegistry
from generation.serving.backends.local import encode
from generation.settings import ModelSpec
from generation.types import PromptSpec, SamplingParams


@pytest.fixture(scope="module")
def lm8(tiny_model_dir: Path) -> LoadedModel:
    spec = ModelSpec(path=str(tiny_model_dir), kind="controlled", device="cpu", quantize="int8")
    return ModelRegistry({"demo8": spec}, threads=1).get("demo8")


#: The kernels this machine runs: ``_int_mm`` everywhere, fbgemm on x86 with AVX2 or better.
KERNELS = ["int_mm", *(["fbgemm"] if fbgemm_available() else [])]


@pytest.mark.parametrize("kernel", KERNELS)
def test_int8_linear_is_close_to_the_float_product(kernel: Kernel) -> None:
    torch.manual_seed(0)
    weight, bias = torch.randn(48, 64) * 0.05, torch.randn(48)
    x = torch.randn(3, 5, 64)
    layer = Int8Linear(weight, bias, kernel)
    assert (layer.in_features, layer.out_features) == (64, 48)
    # One int8 copy of the weight: fbgemm's packed one, or the plain one _int_mm reads.
    assert (layer.weight is None) == (kernel == "fbgemm")
    if layer.weight is not None:
        assert layer.weight.dtype == torch.int8 and layer.weight.shape == (48, 64)
    exact = torch.nn.functional.linear(x, weight, bias)
    got = layer(x)
    assert got.shape == exact.shape and got.dtype == torch.float32
    assert (got - exact).abs().max() < 0.02 * exact.abs().max()


def test_fbgemm_is_the_default_where_it_runs() -> None:
    assert Int8Linear(torch.randn(4, 8), None).kernel == ("fbgemm" if fbgemm_available() else "int_mm")


@pytest.mark.skipif(not fbgemm_available(), reason="fbgemm runs on x86 with AVX2 or better")
def test_seven_bit_inputs_never_saturate() -> None:
    """Inputs at their peak against weights at theirs, all of one sign: with 8-bit inputs AVX2's
    pairwise int16 sums would saturate; with 7 bits the result is the exact integer product."""
    weight = torch.ones(8, 256)
    weight[1::2] = -1
    x = torch.full((2, 256), 3.0)
    x[1, ::3] = -3.0
    layer = Int8Linear(weight, None, "fbgemm")
    exact = torch.nn.functional.linear(x, weight)
    torch.testing.assert_close(layer(x), exact, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kernel", KERNELS)
def test_each_row_is_quantized_on_its_own(kernel: Kernel) -> None:
    """A row's output must not depend on the rows beside it (same seed, same tweet in any batch)."""
    torch.manual_seed(1)
    layer = Int8Linear(torch.randn(16, 32), None, kernel)
    row = torch.randn(1, 32)
    loud = torch.randn(4, 32) * 1000
    assert torch.equal(layer(torch.cat([loud, row]))[-1], layer(row)[0])


def test_quantize_replaces_every_projection_and_keeps_logits_close(
    lm: LoadedModel, lm8: LoadedModel
) -> None:
    layers = lm.model.config.n_layer
    assert sum(isinstance(m, Int8Linear) for m in lm8.model.modules()) == 4 * layers + 1
    assert lm8.model.transformer.wte.weight.dtype == torch.float32  # looked up, not multiplied
    ids, types = encode(lm, PromptSpec("controlled", ControlFields(partido="UDI", sentimiento="POSITIVE")))
    with torch.inference_mode():
        full = lm.model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types])).logits
        int8 = lm8.model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types])).logits
    assert (int8 - full).abs().max() < 0.05 * full.abs().max()
    assert torch.equal(int8.argmax(-1), full.argmax(-1))


def test_token_types_still_change_the_int8_model(lm: LoadedModel, lm8: LoadedModel) -> None:
    ids, types = encode(lm, PromptSpec("controlled", ControlFields(partido="RD")))
    with torch.inference_mode():
        def last(model: torch.nn.Module, token_types: list[int] | None) -> torch.Tensor:
            kwargs = {} if token_types is None else {"token_type_ids": torch.tensor([token_types])}
            return model(input_ids=torch.tensor([ids]), **kwargs).logits[0, -1]

        full_shift = last(lm.model, types) - last(lm.model, None)
        int8_shift = last(lm8.model, types) - last(lm8.model, None)
    assert full_shift.abs().max() > 0.1  # the tiny model does use its token types
    assert torch.cosine_similarity(full_shift, int8_shift, dim=0) > 0.95


def test_int8_decodes_the_same_tweet_alone_or_in_a_batch(lm8: LoadedModel) -> None:
    table = TokenTable(lm8.tokenizer, lm8.model.get_output_embeddings().out_features)
    ids, types = encode(lm8, PromptSpec("controlled", ControlFields(partido="UDI")))
    params = SamplingParams(max_new_tokens=16)
    target = Row(ids, types, params, 42)
    alone = decode_batch(lm8, table, [target])[0]
    other, other_types = encode(lm8, PromptSpec("controlled", ControlFields(partido="PC", hashtags=("Chile",))))
    mixed = decode_batch(lm8, table, [Row(other, other_types, params, 1), target, Row(ids, types, params, 2)])
    assert mixed[1].token_ids == alone.token_ids and alone.token_ids
    beams = beam_generate(lm8, table, Row(ids, types, SamplingParams(max_new_tokens=8, num_beams=3), 5))
    assert beams.token_ids


def test_quantize_takes_only_known_values_and_only_the_cpu() -> None:
    with pytest.raises(ValidationError, match="'none' or 'int8'"):
        ModelSpec(path="m", kind="controlled", quantize="int4")
    with pytest.raises(ValidationError, match="runs on the CPU only"):
        ModelSpec(path="m", kind="controlled", quantize="int8", device="cuda")
    with pytest.raises(ValidationError, match="float32"):
        ModelSpec(path="m", kind="controlled", quantize="int8", dtype="bfloat16")


def test_int8_with_device_auto_on_a_gpu_machine_is_refused_by_name(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    spec = ModelSpec(path=str(tiny_model_dir), kind="controlled", quantize="int8")
    with pytest.raises(ModelLoadError, match=r"'m'.*CPU only.*picked cuda"):
        ModelRegistry({"m": spec}).get("m")


def test_the_candidate_sort_picks_what_the_full_sort_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows whose cut falls among the candidates (peaked) and rows whose does not (flat)."""
    torch.manual_seed(3)
    vocab = 5000
    peaked = torch.randn(6, vocab) * 4
    flat = torch.randn(2, vocab) * 0.1
    logits = torch.cat([peaked, flat])
    rows = len(logits)
    temperature, top_p = torch.full((rows,), 0.9), torch.full((rows,), 0.9)
    top_k, min_p = torch.tensor([0, 0, 40, 0, 0, 0, 0, 0]), torch.tensor([0, 0, 0, 0.05, 0, 0, 0, 0])

    def draw(candidates: int, seed: int) -> list[int]:
        monkeypatch.setattr(sampling, "CANDIDATES", candidates)
        u = torch.rand(rows, generator=torch.Generator().manual_seed(seed))
        return sampling._sample(logits, temperature, top_p, top_k, u, min_p).tolist()

    for seed in range(40):
        assert draw(256, seed) == draw(vocab, seed)


def write_held_out(path: Path) -> Path:
    rows = [
        {"partido": "UDI", "sentimiento": "POSITIVE", "entidades": ["Chile"], "hashtags": [],
         "frases": [], "tweet": "Vamos a defender la educación pública en todo Chile.", "completo": True},
        {"partido": "RD", "coalicion": "Frente Amplio", "tweet": "Hoy conversamos con vecinos de Puente Alto."},
        {"partido": "PS", "tweet": "", "completo": True},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def test_quality_check_compares_perplexity_and_same_seed_tweets(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_held_out(tmp_path / "test.jsonl")
    items = read_held_out(data)
    assert [i.fields.partido for i in items] == ["UDI", "RD"]  # the row without a tweet is skipped
    report = check(tiny_model_dir, data, samples=2, max_new_tokens=8, threads=1)
    ppl = report["perplexity"]
    assert ppl["float32"] > 1 and ppl["int8"] > 1
    assert report["int8_vs_float32"] == pytest.approx(ppl["int8"] / ppl["float32"], rel=1e-3)
    assert report["within_2pct"] == (report["int8_vs_float32"] <= 1.02)
    assert [s["seed"] for s in report["samples"]] == [7, 8]
    assert all(s["float32"] and s["int8"] for s in report["samples"])


def test_perplexity_is_per_tweet_token_and_padding_free(lm: LoadedModel, tmp_path: Path) -> None:
    items = read_held_out(write_held_out(tmp_path / "test.jsonl"))
    # Batched (so the shorter sequence is padded) or one by one: the same tokens, the same loss.
    alone = [perplexity(lm, [item], batch_size=1) for item in items]
    both = perplexity(lm, items, batch_size=2)
    assert min(alone) <= both <= max(alone)
    # A model that predicts every token with equal odds has the vocabulary's size as perplexity.
    uniform = copy.copy(lm)
    uniform.model = copy.deepcopy(lm.model)
    with torch.no_grad():
        uniform.model.lm_head.weight = torch.nn.Parameter(torch.zeros_like(lm.model.lm_head.weight))
    assert perplexity(uniform, items) == pytest.approx(lm.model.config.vocab_size, rel=1e-4)
