"""The probes of ``politico gpu-check`` that drive the decoding path directly on a GPU.

Each takes the demo model loaded three ways (graphed; graphed again, as a second model; kernel
by kernel, ``cuda_graphs = false``) and returns a dict for the report, with ``ok`` saying
whether what it checks held. They run only where torch sees a GPU; the cuda-marked tests
(``tests/generation/test_cuda.py``) check the same things on a tiny taught model, and these
repeat them on the real one, under the bot's settings, and time them.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from generation.decoding.batch import Batch
from generation.decoding.sampling import Row, RowResult, TokenTable, candidate_seed, decode_batch
from generation.measuring import tuit
from generation.prompts import encode_prompt
from generation.registry import LoadedModel, ModelRegistry
from generation.serving.engine import Engine
from generation.settings import EngineSettings, GenerationSettings
from generation.types import SamplingParams

#: The probes' registry names: graphed, a second graphed model, and kernel by kernel.
GRAPHED, SECOND, EAGER = "demo", "demo-second", "demo-eager"


def registry_for(settings: GenerationSettings) -> ModelRegistry:
    """The default model of ``settings`` (already on CUDA) three times over (see the names)."""
    spec = settings.models[settings.default_model]
    return ModelRegistry({
        GRAPHED: spec, SECOND: spec, EAGER: spec.model_copy(update={"cuda_graphs": False}),
    })


def table_of(lm: LoadedModel) -> TokenTable:
    return TokenTable(lm.tokenizer, lm.model.get_output_embeddings().out_features)


def bot_rows(lm: LoadedModel, params: SamplingParams, count: int, seed: int) -> list[Row]:
    """``count`` candidates of the bot's ``/tuit`` (its prompt and negative prompts)."""
    request = tuit.prompt(1)
    ids = encode_prompt(lm.tokenizer, request.fields)
    negatives = tuple(
        (e.input_ids, e.token_type_ids) for e in (encode_prompt(lm.tokenizer, f) for f in request.negatives)
    )
    return [Row(ids.input_ids, ids.token_type_ids, params, candidate_seed(seed, i), negatives=negatives, score=True)
            for i in range(count)]


def _drain(batch: Batch, results: dict[Any, RowResult]) -> None:
    while len(batch):
        results.update((f.tag, f.result) for f in batch.step())


@torch.inference_mode()
def recapture(registry: ModelRegistry, params: SamplingParams) -> dict[str, Any]:
    """Graphs made at load for one row; then 40 more rows (120 lines) grow the cache, every
    graph is dropped and recorded again into a fresh pool; the tweets equal the eager path's."""
    lm, eager = registry.get(GRAPHED), registry.get(EAGER)
    greedy = replace(params, temperature=0.0)
    rows = bot_rows(lm, greedy, 42, seed=1)
    got: dict[Any, RowResult] = {}
    want: dict[Any, RowResult] = {}
    batch = Batch(lm, table_of(lm))
    prepared = batch.prepare(1)
    steps = batch.stepper.graphs  # type: ignore[attr-defined]
    started = time.perf_counter()
    for target, results in ((batch, got), (Batch(eager, table_of(eager)), want)):
        target.join(rows[:2], [0, 1])
        for _ in range(3):
            results.update((f.tag, f.result) for f in target.step())
        target.join(rows[2:], list(range(2, len(rows))))
        _drain(target, results)
    recorded = batch.graphs.recorder.recorded if batch.graphs is not None else 0
    equal = sum(got[i].token_ids == want[i].token_ids for i in range(len(rows)))
    return {
        "ok": steps is not None and steps.version > 1 and equal == len(rows),
        "graphs_at_load": prepared, "graphs_recorded_in_all": recorded, "cache_moves": steps.version - 1,
        "rows": len(rows), "tweets_equal_to_eager": equal, "seconds": round(time.perf_counter() - started, 2),
    }


async def two_models(registry: ModelRegistry, params: SamplingParams, waves: int = 4) -> dict[str, Any]:
    """Waves of bot requests to one model, then to a second one 50 ms later (its first wave
    loads it and records its graphs while the first decodes); all must be answered."""
    engine = Engine(registry, EngineSettings(max_batch=256, queue_size=1024, request_timeout_s=240))
    lm = registry.get(GRAPHED)
    row = bot_rows(lm, params, 1, 0)[0]
    answered, errors = 0, []
    started = time.perf_counter()
    try:
        for wave in range(waves):
            tasks = [asyncio.create_task(engine.generate(GRAPHED, row.prompt_ids, row.token_type_ids, params,
                                                         seed=wave * 100 + i, n=8, negatives=list(row.negatives)))
                     for i in range(16)]
            await asyncio.sleep(0.05)
            tasks += [asyncio.create_task(engine.generate(SECOND, row.prompt_ids, row.token_type_ids, params,
                                                          seed=wave * 100 + i, n=8, negatives=list(row.negatives)))
                      for i in range(16)]
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    errors.append(f"{type(outcome).__name__}: {outcome}")
                else:
                    answered += 1
        stats = engine.stats()
    finally:
        await engine.aclose()
    return {
        "ok": not errors and stats["fault"] is None, "requests": waves * 32, "answered": answered,
        "errors": errors[:5], "fault": stats["fault"], "graphs_at_load": stats["graphs_prepared"],
        "seconds": round(time.perf_counter() - started, 2),
    }


def _counted(work: Callable[[], Any]) -> tuple[int, float]:
    """Synchronizing CUDA calls ``work`` makes (torch's sync debug mode), and its seconds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        started = time.perf_counter()
        try:
            work()
        finally:
            seconds = time.perf_counter() - started
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught), seconds


@torch.inference_mode()
def syncs_per_step(registry: ModelRegistry, params: SamplingParams, rows: int = 64) -> dict[str, Any]:
    """Per kind of step (plain, a join riding along, rows leaving) on ``rows`` bot candidates
    (8 requests' worth), as many more joining mid-way: the syncs each step made and its time,
    graphs on and off."""
    out: dict[str, Any] = {}
    for name in (GRAPHED, EAGER):
        lm = registry.get(name)
        batch = Batch(lm, table_of(lm))
        batch.prepare(2 * rows)
        syncs: dict[str, Counter[int]] = {"plain": Counter(), "join": Counter(), "leave": Counter()}
        times: dict[str, list[float]] = {"plain": [], "join": [], "leave": []}
        for wave in range(2):  # the first wave warms every bucket up; the second is counted
            batch.join(bot_rows(lm, params, rows, seed=wave), [(wave, i) for i in range(rows)])
            step = 0
            while len(batch):
                if step == 10:
                    batch.join(bot_rows(lm, params, rows, seed=10 + wave), [(wave, rows + i) for i in range(rows)])
                before = len(batch) + len(batch.pending)
                kind = "join" if batch.pending else "plain"
                count, seconds = _counted(batch.step)
                if len(batch) < before and kind == "plain":
                    kind = "leave"
                if wave:
                    syncs[kind][count] += 1
                    times[kind].append(seconds * 1000)
                step += 1
        out[name] = {
            kind: {"steps": sum(syncs[kind].values()), "syncs": dict(sorted(syncs[kind].items())),
                   "median_ms": round(statistics.median(times[kind]), 3) if times[kind] else None}
            for kind in syncs
        }
    plain = out[GRAPHED]["plain"]["syncs"]
    out["ok"] = bool(plain) and max(plain) <= 2 and max(plain, key=plain.get) == 1
    return out


def graphs_on_and_off(registry: ModelRegistry, params: SamplingParams, rows: int = 64) -> dict[str, Any]:
    """The same ``rows`` bot candidates graphed and kernel by kernel, greedy and sampled: how many
    write the same tokens (a GPU gives the same tweet for the same batch shape and path; the
    graphed path pads to buckets, so bfloat16 near-ties may go either way: ``ok`` asks 90% of
    the greedy ones)."""
    out: dict[str, Any] = {}
    for label, decoding in (("greedy", replace(params, temperature=0.0)), ("sampled", params)):
        runs = []
        for name in (GRAPHED, EAGER):
            lm = registry.get(name)
            runs.append(decode_batch(lm, table_of(lm), bot_rows(lm, decoding, rows, seed=3)))
        out[label] = {"rows": rows, "equal": sum(a.token_ids == b.token_ids for a, b in zip(*runs, strict=True))}
    out["ok"] = out["greedy"]["equal"] >= 0.9 * out["greedy"]["rows"]
    return out
