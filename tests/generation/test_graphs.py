"""The graphed decoding path on the CPU, through a recorder that emulates CUDA graphs (issue 30).

``tests/support/graphs.py`` keeps a graph's promises in the open (the same memory every replay,
no host reads or host-made tensors inside), so the padded buckets, the stores that keep their
buffers, the draw / read / commit split and the forward's graphs all run here as they will on a
GPU, and must write what the eager path writes. What only a GPU can show (kernels, streams,
pools, syncs) is in ``test_cuda.py`` and ``politico gpu-check``.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Hashable
from contextlib import contextmanager
from typing import Any

import pytest
import torch

from generation.decoding import sampling
from generation.decoding.batch import Batch
from generation.decoding.capture import CAPTURE_LOCK, CudaRecorder
from generation.decoding.cudagraph import bucket
from generation.decoding.fastgpt2 import GPT2Stepper
from generation.decoding.sampling import Row, RowResult, TokenTable, decode_batch
from generation.decoding.stepper import make_stepper
from generation.decoding.upload import Pack
from generation.prompts import ControlFields
from generation.registry import LoadedModel
from generation.serving.backends.local import encode
from generation.types import PromptSpec, SamplingParams
from tests.support.graphs import EmulatedRecorder


def prompt(lm: LoadedModel, party: str, **fields: Any) -> tuple[list[int], list[int] | None]:
    return encode(lm, PromptSpec("controlled", ControlFields(partido=party, sentimiento="POSITIVE", **fields)))


def mixed_rows(lm: LoadedModel) -> list[Row]:
    """Every rule at work in some row, sampled and greedy, guided and not, rows of different
    lengths (so rows leave while others go on) and a row that scores its lines."""
    negatives = (prompt(lm, "PS"), prompt(lm, "Evópoli"))
    settings: list[dict[str, Any]] = [
        {"temperature": 0.0, "contrast_guidance": 2.0, "no_repeat_ngram_size": 3},
        {"max_new_tokens": 5, "banned": ("…", "&"), "repetition_penalty": 1.3},
        {"temperature": 1.2, "top_p": 0.8, "contrast_guidance": 1.0, "max_new_tokens": 9, "guide": ("Chile",),
         "guide_start_bias": 1.0, "guide_bias": 8.0},
        {"temperature": 0.9, "top_k": 20, "min_p": 0.02, "max_new_tokens": 14},
    ]
    rows = []
    for seed, (party, extra) in enumerate(zip(("UDI", "RN", "RD", "PS"), settings, strict=True)):
        ids, types = prompt(lm, party, entidades=("Chile",))
        params = SamplingParams(**{"max_new_tokens": 20, "ignore_eos": True, **extra})
        rows.append(Row(ids, types, params, seed, negatives=negatives, score=seed == 2))
    return rows


def decode(batch: Batch, rows: list[Row], late: list[Row]) -> list[RowResult]:
    """``rows`` at once, then ``late`` joining two steps in: every row's result."""
    results: dict[Hashable, RowResult] = {}
    batch.join(rows, list(range(len(rows))))
    steps = 0
    while len(batch):
        if steps == 2:
            batch.join(late, list(range(len(rows), len(rows) + len(late))))
        results.update((done.tag, done.result) for done in batch.step())
        steps += 1
    return [results[i] for i in range(len(rows) + len(late))]


def test_graphed_steps_write_what_eager_steps_write(lm: LoadedModel, table: TokenTable) -> None:
    """Rows join and leave, buckets change (4 rows and 12 lines, then more), each key is
    recorded once and replayed after, and every row writes and scores what it writes eagerly."""
    rows, late = mixed_rows(lm), mixed_rows(lm)[1:3]
    eager = decode(Batch(lm, table), rows, late)
    recorder = EmulatedRecorder()
    graphed = decode(Batch(lm, table, recorder=recorder), rows, late)
    assert [r.token_ids for r in graphed] == [r.token_ids for r in eager]
    assert [r.finish_reason for r in graphed] == [r.finish_reason for r in eager]
    torch.testing.assert_close(torch.tensor([r.logprobs for r in graphed if r.logprobs]),
                               torch.tensor([r.logprobs for r in eager if r.logprobs]))
    assert recorder.replays > 2 * len(recorder.graphs)  # recorded once per key, replayed after


def test_padding_rows_never_advance(lm: LoadedModel, table: TokenTable) -> None:
    """A graphed step computes a whole bucket of rows; the padding rows' state must stay as it
    is, or a long decode would push their counts past the history's width (an out-of-range
    gather, which on a GPU is a device-side assert)."""
    ids, types = prompt(lm, "UDI")
    batch = Batch(lm, table, recorder=EmulatedRecorder())
    batch.join([Row(ids, types, SamplingParams(max_new_tokens=30, ignore_eos=True, no_repeat_ngram_size=2), 1)], ["x"])
    for _ in range(20):
        batch.step()
    with batch.row_state.showing(bucket(1)):
        counts = batch.history.count.tolist()
    assert counts == [20] + [0] * (bucket(1) - 1)


@torch.inference_mode()
def test_a_cache_that_moves_drops_its_graphs_and_records_into_a_fresh_pool(lm: LoadedModel) -> None:
    """Item 1: growing the cache past its line slots moves it; the graphs that pointed into it
    are dropped, the recorder is told (a fresh pool), and the next graphs compute as before."""
    recorder = EmulatedRecorder()
    graphed, plain = GPT2Stepper(lm.model, graphs=True, recorder=recorder), GPT2Stepper(lm.model)
    ids, types = prompt(lm, "UDI")
    for stepper in (graphed, plain):
        stepper.join([ids] * 3, [types] * 3, 10)
    steps = graphed.graphs
    assert steps is not None
    token = torch.full((3, 1), 7)
    for _ in range(2):
        got, want = graphed.step(token, token), plain.step(token, token)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert (len(steps.graphs), recorder.pools, recorder.resets) == (1, 1, 1)  # the first track resets
    version = steps.version
    for stepper in (graphed, plain):  # 12 more lines: past the slots reserved so far
        stepper.join([ids] * 12, [types] * 12, 10)
    token = torch.full((15, 1), 9)
    got, want = graphed.step(token, token), plain.step(token, token)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert steps.version > version and recorder.resets == 2 and recorder.pools == 2
    assert list(steps.graphs) == [(bucket(15), 32, True)]  # only the graph recorded since


def test_graphs_are_recorded_at_load_and_the_span_follows_the_longest_line(lm: LoadedModel, table: TokenTable) -> None:
    """Item 8: ``prepare`` records every bucket up to the engine's rows before any request, so
    steps only replay; a long line widens the attended span, and once it leaves the span goes
    back to the short one (its graph already there)."""
    recorder = EmulatedRecorder()
    batch = Batch(lm, table, recorder=recorder)
    made = batch.prepare(rows=4)  # 12 lines: buckets 8 and 16; spans 32, 64 and 128 (the model's)
    assert made == 2 * 3 and len(recorder.graphs) == made
    steps = batch.stepper.graphs  # type: ignore[attr-defined]
    ids, types = prompt(lm, "UDI")
    short = Row(ids, types, SamplingParams(max_new_tokens=4, ignore_eos=True), 1)
    long = Row(ids, types, SamplingParams(max_new_tokens=60, ignore_eos=True), 2)
    batch.join([short, long], ["short", "long"])
    spans = []
    real = steps._run

    def spy(stepper: Any, size: int, span: int, inputs: Any) -> None:
        spans.append(span)
        real(stepper, size, span, inputs)

    steps._run = spy
    while len(batch):
        batch.step()
    assert spans[0] == 32 and max(spans) == 128
    later = Row(ids, types, SamplingParams(max_new_tokens=3, ignore_eos=True), 3)
    batch.join([later], ["later"])
    spans.clear()
    while len(batch):
        batch.step()
    assert set(spans) == {32}
    assert set(steps.graphs) <= {(s, span, True) for s in (8, 16) for span in (32, 64, 128)}


def test_a_dropped_batch_is_freed_without_the_cycle_collector(lm: LoadedModel, table: TokenTable) -> None:
    """Item 4: the stepper and its graphs hold no reference to each other, so dropping a batch
    (the engine does after a failed step) frees its cache at once, even where the collector
    never runs (objects frozen by ``gc.freeze`` after a model load). (The emulated recorder
    keeps the work it replays, which a CUDA graph does not, so the padded steps run eagerly.)"""
    ids, types = prompt(lm, "UDI")
    gc.collect()
    gc.disable()
    try:
        batch = Batch(lm, table, stepper=make_stepper(lm.model, graphs=True))  # padded steps, eager
        batch.join([Row(ids, types, SamplingParams(max_new_tokens=3), 1)], ["x"])
        batch.step()
        stepper = weakref.ref(batch.stepper)
        cache = weakref.ref(batch.stepper.cache[0])  # type: ignore[attr-defined]
        del batch
        assert stepper() is None and cache() is None
    finally:
        gc.enable()


def test_rows_cut_past_the_candidates_are_drawn_again_exactly(
    lm: LoadedModel, table: TokenTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 9: with a prefilter of 8 candidates over the tiny model's vocabulary most rows'
    cuts fall past it; the batch draws them again after its read, and the tweets are those of
    the full sort, graphed or not. A step that needs it reads twice; others once."""
    ids, types = prompt(lm, "UDI")
    rows = [Row(ids, types, SamplingParams(max_new_tokens=12, temperature=1.5, top_p=0.95, ignore_eos=True), s)
            for s in range(6)]
    full = decode_batch(lm, table, rows)
    monkeypatch.setattr(sampling, "CANDIDATES", 8)
    reads: list[int] = []
    real = torch.Tensor.tolist

    def counted(self: torch.Tensor) -> Any:
        reads.append(self.numel())
        return real(self)

    monkeypatch.setattr(torch.Tensor, "tolist", counted)
    assert [r.token_ids for r in decode_batch(lm, table, rows)] == [r.token_ids for r in full]
    assert len(reads) > 12  # some steps drew rows again
    graphed = decode(Batch(lm, table, recorder=EmulatedRecorder()), rows, [])
    assert [r.token_ids for r in graphed] == [r.token_ids for r in full]


def test_joins_and_leaves_send_their_values_in_a_few_packed_copies(
    lm: LoadedModel, table: TokenTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 7: a step where rows join sends their prompts, settings, rule state and indices in
    a few packs, and a step where rows leave the new order and indices in a few more (on a GPU
    each pack is one pinned, non-blocking copy per dtype), not one tensor per value."""
    values: list[int] = []
    real = Pack.send

    def counted(self: Pack, device: torch.device) -> dict[str, torch.Tensor]:
        sent = real(self, device)
        values.append(sum(t.numel() for t in sent.values()))
        return sent

    rows = mixed_rows(lm)
    batch = Batch(lm, table)
    batch.join(rows, list(range(4)))
    batch.step()
    monkeypatch.setattr(Pack, "send", counted)
    batch.join(rows[1:3], ["a", "b"])
    batch.step()  # the join rides along with this step's forward
    assert len(values) <= 5 and max(values) > 40  # prompts, the prompts' copies, rows, indices
    per_step = []
    while len(batch) > 2:
        values.clear()
        before = len(batch)
        batch.step()
        if len(batch) < before:
            per_step.append(len(values))
    assert per_step and max(per_step) <= 3  # the new order, the cache's moves, the indices


class _FakeCuda:
    """``torch.cuda`` as far as ``CudaRecorder`` uses it, recording what happens in which order."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.current = "caller"
        self.capturing = 0
        self.pools = 0
        test = self

        class Stream:
            def __init__(self, device: Any = None, name: str = "side") -> None:
                self.name = name

            def wait_stream(self, other: Any) -> None:
                test.events.append(f"{self.name} waits for {other.name}")

        class Graph:
            def capture_begin(self, pool: Any = None, capture_error_mode: str = "global") -> None:
                assert CAPTURE_LOCK._is_owned()  # type: ignore[attr-defined]
                assert test.capturing == 0, "two recordings at once"
                test.capturing += 1
                test.events.append(f"record into pool {pool} on {test.current} ({capture_error_mode})")

            def capture_end(self) -> None:
                test.capturing -= 1

            def replay(self) -> None:
                test.events.append("replay")

        self.Stream, self.CUDAGraph = Stream, Graph
        self.caller = Stream(name="caller")

    def current_stream(self, device: Any = None) -> Any:
        return self.caller

    @contextmanager
    def stream(self, stream: Any) -> Any:
        before, self.current = self.current, stream.name
        try:
            yield
        finally:
            self.current = before

    def graph_pool_handle(self) -> int:
        self.pools += 1
        return self.pools


def test_a_recording_holds_the_process_lock_on_its_own_stream_and_pool() -> None:
    """Item 2 (and the pool of item 1), with a stand-in for ``torch.cuda``: the warm-up and the
    recording run on the recorder's side stream (the warm-up first, so cuBLAS's workspace for
    that stream is made outside the pool), errors stay with the recording thread, the process
    lock is held throughout, two models' recordings never overlap, and a reset starts a fresh
    pool."""
    cuda = _FakeCuda()
    where: list[str] = []

    def work() -> str:
        where.append(cuda.current)
        return "logits"

    recorders = [CudaRecorder(torch.device("cuda"), cuda=cuda) for _ in range(2)]
    _, now, _ = recorders[0].capture(work)
    assert now == "logits" and where == ["side", "side"]
    assert cuda.events == ["side waits for caller", "record into pool 1 on side (thread_local)", "caller waits for side"]
    recorders[0].capture(work)
    recorders[0].reset()
    recorders[0].capture(work)
    assert [e for e in cuda.events if e.startswith("record")] == [
        "record into pool 1 on side (thread_local)", "record into pool 1 on side (thread_local)",
        "record into pool 2 on side (thread_local)",
    ]
    errors: list[BaseException] = []

    def record_many(recorder: CudaRecorder) -> None:
        try:
            for _ in range(20):
                recorder.capture(work)
        except BaseException as exc:  # reported on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=record_many, args=(r,)) for r in recorders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a recording thread did not finish within 30 s"
    assert errors == [] and cuda.capturing == 0


def test_a_cuda_model_loads_under_the_capture_lock(tiny_model_dir: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 2: a model moving to a GPU never overlaps another model's thread recording (the
    move is faked here: the load is told it got CUDA, and ``Module.to`` notes the lock)."""
    from generation import registry as registry_module
    from generation.settings import ModelSpec

    held = []
    real_to = torch.nn.Module.to

    def to(self: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        held.append(CAPTURE_LOCK._is_owned())  # type: ignore[attr-defined]
        return real_to(self, dtype=kwargs.get("dtype"))

    monkeypatch.setattr(registry_module, "pick_device", lambda requested: torch.device("cuda"))
    monkeypatch.setattr(torch.nn.Module, "to", to)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: held.append(CAPTURE_LOCK._is_owned()))  # type: ignore[attr-defined]
    spec = ModelSpec(path=str(tiny_model_dir), kind="controlled", dtype="float32")
    registry_module.ModelRegistry({"m": spec}, warmup=False).get("m")
    assert held == [True, True] and not CAPTURE_LOCK._is_owned()  # type: ignore[attr-defined]
