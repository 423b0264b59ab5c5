"""On a GPU the engine, guidance and ranking write what the CPU writes (issue 19, part 5), and
the graphed path holds up (issue 30): graphs on and off agree, a cache that grows is recorded
again, two models record and decode at once, a step reads the device once, and the same batch
gives the same tweets.

The model runs there in bfloat16, as the registry loads it on CUDA; the reference is the same
folder in float32 on the CPU. bfloat16 keeps 8 bits of mantissa, so logits and scores differ by
rounding, and a greedy token may legitimately flip where two tokens nearly tie. The model here
is the tiny test model taught a few tweets first (``build_taught_model``): its greedy path has
clear margins, so equal tokens are a fair demand, and guidance is asked for topics the taught
tweets name. Every test is marked ``cuda`` and skips where torch sees no GPU (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from generation.decoding.batch import Batch
from generation.decoding.sampling import Row, RowResult, TokenTable, decode_batch
from generation.decoding.scoring import score_candidates
from generation.decoding.stepper import make_stepper
from generation.measuring import bench
from generation.prompts import TWEET, ControlFields, encode_prompt
from generation.registry import LoadedModel, ModelRegistry
from generation.serving.engine import Engine
from generation.settings import EngineSettings, ModelSpec
from generation.types import SamplingParams
from tests.support.tiny_model import build_taught_model

pytestmark = pytest.mark.cuda

#: Where and how the model under test runs; the reference is float32 on the CPU.
GPU = {"device": "cuda", "dtype": "bfloat16"}
TAUGHT = {
    "UDI": "Gracias a todos los que nos acompañaron en Valparaíso y Concepción!",
    "RD": "Vamos a defender la educación pública, gratuita y de calidad en todo Chile.",
    "PS": "No podemos aceptar más abusos: salud digna para las familias de Chile.",
}
#: Per request: the party asked, the topic guided toward (named by its taught tweet), and the
#: other sides' parties (contrast guidance leans away from them; ranking weighs against them).
REQUESTS = [("UDI", "Valparaíso", ("RD", "PS")), ("RD", "Chile", ("UDI", "PS"))]
NEW_TOKENS = 20


def fields(party: str, topic: str = "") -> ControlFields:
    return ControlFields(partido=party, sentimiento="POSITIVE", entidades=(topic,) if topic else ())


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    folder = build_taught_model(tmp_path_factory.mktemp("taught"), TAUGHT)
    return ModelRegistry({
        "cpu": ModelSpec(path=str(folder), kind="controlled", device="cpu", dtype="float32"),
        "gpu": ModelSpec(path=str(folder), kind="controlled", **GPU),
        "gpu-eager": ModelSpec(path=str(folder), kind="controlled", cuda_graphs=False, **GPU),
        "gpu-second": ModelSpec(path=str(folder), kind="controlled", **GPU),
    }, threads=1)


@pytest.fixture(scope="module")
def models(registry: ModelRegistry) -> tuple[LoadedModel, LoadedModel]:
    cpu, gpu = registry.get("cpu"), registry.get("gpu")
    assert (gpu.device.type, gpu.dtype) == (GPU["device"], getattr(torch, GPU["dtype"]))
    assert next(gpu.model.parameters()).device.type == GPU["device"]
    return cpu, gpu


def greedy(topic: str) -> SamplingParams:
    """The bot's guided decoding (config.toml's demo values), greedy so both sides must agree."""
    return SamplingParams(
        max_new_tokens=NEW_TOKENS, temperature=0.0, no_repeat_ngram_size=3, repetition_penalty=1.1,
        guide=(topic,), guide_start_bias=1.0, guide_bias=8.0, contrast_guidance=1.5,
    )


def prompt(lm: LoadedModel, f: ControlFields) -> tuple[list[int], list[int]]:
    encoded = encode_prompt(lm.tokenizer, f)
    return encoded.input_ids, encoded.token_type_ids


def bf16_close(got: torch.Tensor, want: torch.Tensor) -> None:
    """Equal up to bfloat16 rounding carried through two layers: 3% of the reference's range."""
    got = got.float().cpu()
    scale = want.abs().max().item()
    torch.testing.assert_close(got, want, rtol=0, atol=0.03 * scale)


@torch.inference_mode()
def test_the_lean_stepper_gives_float32_logits_up_to_bf16_rounding(models: tuple[LoadedModel, LoadedModel]) -> None:
    cpu, _ = models
    prompts = [prompt(cpu, fields(party, topic)) for party, topic, _ in REQUESTS]
    width = max(len(ids) for ids, _ in prompts)
    ids = torch.full((len(prompts), width), cpu.tokenizer.eos_token_id, dtype=torch.long)
    types, mask = torch.zeros_like(ids), torch.zeros_like(ids)
    for row, (p_ids, p_types) in enumerate(prompts):  # left-padded, as the engine pads
        ids[row, width - len(p_ids):] = torch.tensor(p_ids)
        types[row, width - len(p_ids):] = torch.tensor(p_types)
        mask[row, width - len(p_ids):] = 1
    # Both devices are fed the same tokens (the taught tweets'), so only rounding differs.
    follow = [cpu.tokenizer.encode(TAUGHT[party], add_special_tokens=False)[:6] for party, _, _ in REQUESTS]
    tweet_type = cpu.tokenizer.convert_tokens_to_ids(TWEET)
    runs = []
    for lm in models:
        stepper = make_stepper(lm.model)
        device = lm.device
        out = [stepper.prefill(ids.to(device), mask.to(device), types.to(device), new_tokens=6)]
        for k in range(6):
            step = torch.tensor([[f[k]] for f in follow], device=device)
            out.append(stepper.step(step, torch.full_like(step, tweet_type)))
        runs.append(out)
    for want, got in zip(*runs, strict=True):
        bf16_close(got, want)
        assert torch.equal(got.float().argmax(-1).cpu(), want.argmax(-1))


def test_guided_greedy_decoding_writes_the_same_tokens(models: tuple[LoadedModel, LoadedModel]) -> None:
    """decode_batch with topic and contrast guidance: the same tweets, row by row."""
    results = []
    for lm in models:
        table = TokenTable(lm.tokenizer, lm.model.get_output_embeddings().out_features)
        rows = [
            Row(*prompt(lm, fields(party, topic)), greedy(topic), seed=7,
                negatives=tuple(prompt(lm, fields(o, topic)) for o in others))
            for party, topic, others in REQUESTS
        ]
        results.append(decode_batch(lm, table, rows))
    for want, got in zip(*results, strict=True):
        assert got.token_ids == want.token_ids and got.text == want.text


def test_scores_match_up_to_bf16_rounding(models: tuple[LoadedModel, LoadedModel]) -> None:
    cpu = models[0]
    candidates = [cpu.tokenizer.encode(t, add_special_tokens=False) for t in TAUGHT.values()]
    scores = [
        score_candidates(lm, [prompt(lm, fields(party)) for party in TAUGHT], candidates) for lm in models
    ]
    want, got = torch.tensor(scores[0]), torch.tensor(scores[1])
    # Summed over a whole tweet: bfloat16 logits near 14 are 1/16 apart, so rounding adds up
    # with the tweet's length; the ranking reads differences of tens here. Each score within
    # 2% (and half a nat) of float32's, and every candidate's best prompt the same.
    torch.testing.assert_close(got, want, rtol=0.02, atol=0.5)
    assert torch.equal(got.argmax(-1), want.argmax(-1))


async def test_the_engine_guides_and_ranks_on_the_gpu_as_on_the_cpu(
    registry: ModelRegistry, models: tuple[LoadedModel, LoadedModel]
) -> None:
    """Engine.generate with contrasts (ranking) and negatives (contrast guidance), greedy."""
    engine = Engine(registry, EngineSettings(batch_window_ms=1, request_timeout_s=60))
    try:
        for party, topic, others in REQUESTS:
            answers = []
            for lm in models:
                ids, types = prompt(lm, fields(party, topic))
                contrasts = [prompt(lm, fields(o, topic)) for o in others]
                answers.append(await engine.generate(
                    lm.name, ids, types, greedy(topic), seed=3, n=2,
                    contrasts=contrasts, negatives=contrasts,
                ))
            for want, got in zip(*answers, strict=True):
                assert got.text == want.text and got.tokens == want.tokens
                assert len(got.logprobs) == len(want.logprobs) == 1 + len(others)
                torch.testing.assert_close(torch.tensor(got.logprobs), torch.tensor(want.logprobs), rtol=0.02, atol=0.5)
    finally:
        await engine.aclose()


def test_the_quick_bench_runs_every_phase_on_the_gpu(tmp_path: Path, tiny_model_dir: Path) -> None:
    """``politico bench --device cuda``: the model in bfloat16 there, int8 left out with a note."""
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--device", "cuda", "--demo", str(tiny_model_dir), "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["model"]["device"].startswith("cuda") and report["model"]["dtype"] == "bfloat16"
    assert "int8" in report["skipped"] and not any("int8" in name for name in report["phases"])
    tuit = report["phases"]["tuit"]
    assert tuit["device"].startswith("cuda") and tuit["dtype"] == "bfloat16" and tuit["requests"]
    assert all(p.get("tweets_per_s", 1) > 0 for p in report["phases"].values())


def table_of(lm: LoadedModel) -> TokenTable:
    return TokenTable(lm.tokenizer, lm.model.get_output_embeddings().out_features)


def guided_rows(lm: LoadedModel, copies: int = 1, **extra: object) -> list[Row]:
    rows = []
    for i in range(copies):
        for party, topic, others in REQUESTS:
            params = replace(greedy(topic), **extra)
            rows.append(Row(*prompt(lm, fields(party, topic)), params, seed=7 + i,
                            negatives=tuple(prompt(lm, fields(o, topic)) for o in others)))
    return rows


def test_the_head_gives_float32_logits_on_the_gpu(models: tuple[LoadedModel, LoadedModel]) -> None:
    """Item 5: the graphed step's logits are float32 (its own buffer), not bfloat16."""
    _, gpu = models
    batch = Batch(gpu, table_of(gpu))
    batch.join(guided_rows(gpu), [0, 1])
    batch.step()
    assert batch.logits.dtype == torch.float32 and batch.logits.device.type == "cuda"


def test_graphs_on_and_off_write_the_same_tokens(registry: ModelRegistry) -> None:
    """The graphed path (padded buckets, recorded draw and commit) against kernel-by-kernel."""
    graphed, eager = registry.get("gpu"), registry.get("gpu-eager")
    results = [decode_batch(lm, table_of(lm), guided_rows(lm, copies=3)) for lm in (graphed, eager)]
    assert [r.token_ids for r in results[0]] == [r.token_ids for r in results[1]]


def test_the_same_batch_gives_the_same_tweets_on_a_gpu(registry: ModelRegistry) -> None:
    """Item 3, what holds on a GPU: the same rows in the same batch shape and path, sampled,
    write the same tweets run after run (other batch-mates may change them: see
    docs/benchmarks.md "On a GPU")."""
    lm = registry.get("gpu")
    rows = guided_rows(lm, copies=4, temperature=0.9, top_p=0.9)
    runs = [decode_batch(lm, table_of(lm), rows) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


@torch.inference_mode()
def test_a_cache_that_grows_is_recorded_again(registry: ModelRegistry) -> None:
    """Item 1: graphs made at load for a small batch; then more lines than reserved grow the
    cache, and every graph is recorded again into a fresh pool (no ``use_count > 0`` assert),
    writing what the eager path writes."""
    lm, eager = registry.get("gpu"), registry.get("gpu-eager")
    batch = Batch(lm, table_of(lm))
    assert batch.prepare(rows=1) > 0
    rows = guided_rows(lm, copies=6, max_new_tokens=80)  # 18 rows, 54 lines
    done = {}
    batch.join(rows[:2], [0, 1])
    for _ in range(3):
        done.update((f.tag, f.result) for f in batch.step())
    versions = batch.stepper.graphs.version  # type: ignore[attr-defined]
    batch.join(rows[2:], list(range(2, len(rows))))
    while len(batch):
        done.update((f.tag, f.result) for f in batch.step())
    assert batch.stepper.graphs.version > versions  # type: ignore[attr-defined]
    reference = Batch(eager, table_of(eager))
    want: dict[object, RowResult] = {}
    reference.join(rows[:2], [0, 1])
    for _ in range(3):
        want.update((f.tag, f.result) for f in reference.step())
    reference.join(rows[2:], list(range(2, len(rows))))
    while len(reference):
        want.update((f.tag, f.result) for f in reference.step())
    assert [done[i].token_ids for i in range(len(rows))] == [want[i].token_ids for i in range(len(rows))]


async def test_two_models_record_and_decode_at_once(registry: ModelRegistry) -> None:
    """Item 2: the second model loads and records its graphs while the first decodes, then both
    decode side by side, staggered; every answer is what each model writes alone (greedy, on
    the taught model's clear margins)."""
    engine = Engine(registry, EngineSettings(batch_window_ms=1, request_timeout_s=120))
    lm = registry.get("gpu")
    ids, types = prompt(lm, fields("UDI", "Valparaíso"))
    params = greedy("Valparaíso")
    try:
        alone = await engine.generate("gpu", ids, types, params, seed=5, n=4)
        first = [asyncio.create_task(engine.generate("gpu", ids, types, params, seed=5, n=4)) for _ in range(3)]
        await asyncio.sleep(0.05)
        second = [asyncio.create_task(engine.generate("gpu-second", ids, types, params, seed=5, n=4))
                  for _ in range(3)]
        answers = await asyncio.wait_for(asyncio.gather(*first, *second), timeout=120)
        for answer in answers:
            assert [c.tokens for c in answer] == [c.tokens for c in alone]
            assert [c.text for c in answer] == [c.text for c in alone]
        assert engine.stats()["fault"] is None and engine.stats()["errors"] == 0
    finally:
        await engine.aclose()


def syncs(work: Callable[[], object]) -> int:
    """How many synchronizing CUDA calls ``work`` makes (torch's sync debug mode)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            work()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def test_a_step_reads_the_device_once(registry: ModelRegistry) -> None:
    """Items 6 and 7: a plain step is one read; a step where rows join or leave sends their
    values without waiting (pinned, packed), so it reads once too, give or take the graph of a
    new bucket."""
    lm = registry.get("gpu")
    batch = Batch(lm, table_of(lm))
    batch.prepare(rows=8)
    rows = guided_rows(lm, copies=2, max_new_tokens=12, ignore_eos=True)
    batch.join(rows, list(range(len(rows))))
    for _ in range(3):
        batch.step()
    assert syncs(batch.step) == 1
    batch.join(guided_rows(lm, max_new_tokens=30, ignore_eos=True), ["a", "b"])
    assert syncs(batch.step) <= 2  # the join rides along with this step's forward
    counts = []
    while len(batch):
        counts.append(syncs(batch.step))
    assert max(counts) <= 2 and counts.count(1) >= len(counts) - 3
