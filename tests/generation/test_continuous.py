"""Continuous batching: rows join a running batch, a step's cost is the same for 1 or 64 rows,
and what one request causes stays with it."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from generation.decoding.batch import Batch, holes_filled
from generation.decoding.sampling import Row, TokenTable, candidate_seed, decode_batch
from generation.prompts import ControlFields
from generation.registry import LoadedModel
from generation.serving import engine as engine_module
from generation.serving.backends.local import encode
from generation.serving.engine import Engine
from generation.types import GenerationError, PromptSpec, SamplingParams
from tests.support.waiting import until


def prompt(lm: LoadedModel, party: str = "UDI", **fields: object) -> tuple[list[int], list[int] | None]:
    return encode(lm, PromptSpec("controlled", ControlFields(partido=party, sentimiento="POSITIVE", **fields)))


def everything_on(lm: LoadedModel, **extra: object) -> SamplingParams:
    """Every per-step rule at work: penalty, n-grams, bans, topic bonuses, guidance."""
    values: dict[str, object] = {
        "max_new_tokens": 20, "min_new_tokens": 10, "temperature": 0.9, "top_p": 0.9, "top_k": 50,
        "repetition_penalty": 1.2, "no_repeat_ngram_size": 3, "banned": ("…", "&"),
        "guide": ("Chile", "#Pensiones"), "guide_start_bias": 1.0, "guide_bias": 8.0,
        "contrast_guidance": 1.5,
    }
    values.update(extra)
    return SamplingParams(**values)  # type: ignore[arg-type]


def rows(lm: LoadedModel, count: int) -> list[Row]:
    ids, types = prompt(lm)
    negatives = (prompt(lm, "RD"), prompt(lm, "PS"))
    return [Row(ids, types, everything_on(lm), candidate_seed(3, i), negatives=negatives, score=True)
            for i in range(count)]


class OpCounter(TorchDispatchMode):
    """Counts the aten operations run, and the scalar reads (``item``, ``bool``) among them."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def one_step(lm: LoadedModel, table: TokenTable, count: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Counter[str], int]:
    batch = Batch(lm, table)
    batch.join(rows(lm, count), list(range(count)))
    batch.step()  # the first step of a fresh batch, so the counted one is an ordinary step
    reads = []
    real = torch.Tensor.tolist

    def counted(self: torch.Tensor):  # type: ignore[no-untyped-def]
        reads.append(self.numel())
        return real(self)

    monkeypatch.setattr(torch.Tensor, "tolist", counted)
    with OpCounter() as counter:
        finished = batch.step()
    monkeypatch.setattr(torch.Tensor, "tolist", real)
    assert not finished and len(batch) == count  # min_new_tokens keeps everyone in
    return counter.ops, len(reads)


def test_a_step_costs_the_same_operations_for_1_or_64_rows(
    lm: LoadedModel, table: TokenTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone, reads_alone = one_step(lm, table, 1, monkeypatch)
    crowd, reads_crowd = one_step(lm, table, 64, monkeypatch)
    assert {k: (alone[k], crowd[k]) for k in alone.keys() | crowd.keys() if alone[k] != crowd[k]} == {}
    assert reads_alone == reads_crowd == 1  # tokens, outcomes and scores in one read
    assert alone["aten._local_scalar_dense"] == 0  # no item() or bool() on a tensor


def test_holes_are_filled_by_the_last_rows() -> None:
    assert holes_filled(6, {1, 4}) == [0, 5, 2, 3]
    assert holes_filled(3, {0, 1, 2}) == []
    assert holes_filled(4, {3}) == [0, 1, 2]


def test_a_row_that_joins_late_writes_what_it_writes_alone(lm: LoadedModel, table: TokenTable) -> None:
    ids, types = prompt(lm)
    other = prompt(lm, "Partido Comunista de Chile", entidades=("Chile",))
    late = Row(other[0], other[1], everything_on(lm, min_new_tokens=0), 11, negatives=(prompt(lm, "RD"),))
    alone = decode_batch(lm, table, [late])[0]
    batch = Batch(lm, table)
    early = Row(ids, types, SamplingParams(max_new_tokens=40, ignore_eos=True), 5)
    batch.join([early], ["early"])
    done = {}
    for _ in range(7):
        for f in batch.step():
            done[f.tag] = f.result
    batch.join([late], ["late"])  # into a batch 7 tokens in, prompts of other lengths
    while len(batch):
        for f in batch.step():
            done[f.tag] = f.result
    assert done["late"].token_ids == alone.token_ids
    assert len(done["early"].token_ids) == 40


async def test_a_request_joins_while_another_decodes(engine_factory, lm: LoadedModel) -> None:
    ids, types = prompt(lm)
    engine: Engine = engine_factory(batch_window_ms=0)
    long = asyncio.create_task(engine.generate(
        "demo", ids, types, SamplingParams(max_new_tokens=60, ignore_eos=True), seed=1))
    await until(lambda: engine.stats()["steps"] >= 3, "the long request's third step", every_s=0.001)
    short = await engine.generate("demo", ids, types, SamplingParams(max_new_tokens=2, ignore_eos=True), seed=2)
    assert not long.done()  # answered while the long one still decodes
    assert len(short) == 1 and short[0].tokens == 2
    assert (await long)[0].tokens == 60
    assert 2 in engine.stats()["step_rows"]


@pytest.mark.expect_errors(r"scoring a request on demo failed: injected scoring failure")
async def test_one_bad_request_fails_alone(engine_factory, lm: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prompt with no room, a contrast too long for the positions, a scoring error: each
    fails its own request; the requests decoding beside them get their tweets."""
    ids, types = prompt(lm)
    limit = lm.max_positions
    assert limit is not None and types is not None
    crowded = (ids * 50)[:limit], (types * 50)[:limit]
    long_contrast = (ids * 50)[: limit - 1], (types * 50)[: limit - 1]
    real = engine_module._scores
    entered = threading.Event()

    def scores(lm_, job, results):  # type: ignore[no-untyped-def]
        entered.set()
        if job.seed == 13:
            raise RuntimeError("injected scoring failure")
        return real(lm_, job, results)

    monkeypatch.setattr(engine_module, "_scores", scores)
    engine: Engine = engine_factory(batch_window_ms=30)
    params = SamplingParams(max_new_tokens=8)
    other = prompt(lm, "RD")
    outcomes = await asyncio.gather(
        engine.generate("demo", ids, types, params, seed=1, n=2, contrasts=[other]),
        engine.generate("demo", *crowded, params, seed=2, n=2),
        engine.generate("demo", ids, types, params, seed=3, n=2, contrasts=[long_contrast]),
        engine.generate("demo", ids, types, params, seed=13, n=2, contrasts=[other]),
        engine.generate("demo", ids, types, params, seed=4, n=3),
        return_exceptions=True,
    )
    good, no_room, too_long, scoring, plain = outcomes
    assert isinstance(good, list) and len(good) == 2 and all(len(c.logprobs) == 2 for c in good)
    assert isinstance(no_room, ValueError) and "no room" in str(no_room)
    # the contrast leaves 1 position for the tweet's EOS: no room for a tweet
    assert isinstance(too_long, ValueError) and "no room" in str(too_long)
    assert isinstance(scoring, GenerationError) and "scoring failed" in str(scoring)
    assert isinstance(plain, list) and len(plain) == 3
    failures = engine.stats()["failures"]
    assert failures == {"bad_request": 2, "GenerationError": 1}


async def test_under_load_requests_get_fewer_candidates_the_same_ones(engine_factory, lm: LoadedModel) -> None:
    ids, types = prompt(lm)
    params = SamplingParams(max_new_tokens=6)
    full = await engine_factory().generate("demo", ids, types, params, seed=9, n=4)
    engine: Engine = engine_factory(shed_rows=4, shed_candidates=2, batch_window_ms=50)
    assert await engine.generate("demo", ids, types, params, seed=9, n=4) == full  # alone: all 4
    crowd = await asyncio.gather(*(engine.generate("demo", ids, types, params, seed=9, n=4) for _ in range(4)))
    assert [len(a) for a in crowd] == [2, 2, 2, 2]
    assert all(answer == full[:2] for answer in crowd)  # the first 2 of the same 4
    assert engine.stats()["shed"] == 4


@pytest.mark.expect_errors(r"a decoding step on demo failed: the device fell over")
async def test_a_batch_that_breaks_answers_everyone_in_it_and_the_engine_goes_on(
    engine_factory, lm: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure the batch cannot pin on one request (here: feeding a prompt breaks) answers
    every request the batch held with the error, and the next requests decode in a new batch."""
    ids, types = prompt(lm)
    real = engine_module.Batch.join

    def join(self, rows, tags):  # type: ignore[no-untyped-def]
        if rows[0].seed == candidate_seed(66, 0):
            raise RuntimeError("the device fell over")
        return real(self, rows, tags)

    monkeypatch.setattr(engine_module.Batch, "join", join)
    engine: Engine = engine_factory(batch_window_ms=0)
    params = SamplingParams(max_new_tokens=30, ignore_eos=True)
    running = asyncio.create_task(engine.generate("demo", ids, types, params, seed=1))
    await until(lambda: engine.stats()["steps"] >= 2, "the running request's second step", every_s=0.001)
    with pytest.raises(RuntimeError, match="fell over"):
        await engine.generate("demo", ids, types, params, seed=66)
    with pytest.raises(RuntimeError, match="fell over"):
        await running
    assert len(await engine.generate("demo", ids, types, params, seed=2)) == 1


def test_rows_keep_their_lines_when_a_guided_row_leaves_before_later_ones(lm: LoadedModel, table: TokenTable) -> None:
    """Rows and lines fill their holes each on their own: once a guided row (with negative
    lines) leaves ahead of rows that joined after it, row r's line is no longer line r, and
    every row must still read its own logits."""
    ids, types = prompt(lm)

    def plain(seed: int) -> Row:
        return Row(ids, types, SamplingParams(max_new_tokens=12, ignore_eos=True), seed)

    guided = Row(ids, types, everything_on(lm, min_new_tokens=0, max_new_tokens=3), 7,
                 negatives=(prompt(lm, "RD"), prompt(lm, "PS")))
    batch = Batch(lm, table)
    batch.join([plain(1), guided], ["a", "guided"])  # lines: a, guided, its 2 negatives
    done = {f.tag: f.result for f in batch.step()}
    batch.join([plain(2), plain(3)], ["c", "d"])  # lines 4 and 5, rows 2 and 3
    while len(batch):  # the guided row leaves: rows become a, d, c and lines a, c, d
        done.update((f.tag, f.result) for f in batch.step())
    for tag, seed in (("a", 1), ("c", 2), ("d", 3)):
        assert done[tag].token_ids == decode_batch(lm, table, [plain(seed)])[0].token_ids, tag


def test_rows_waiting_to_join_go_on_when_every_decoding_row_is_dropped(lm: LoadedModel, table: TokenTable) -> None:
    """Rows that joined while others decoded wait for the next step's forward; if the others
    are all cancelled first, the waiting rows are fed at once instead of waiting for a step
    that has nobody to run."""
    ids, types = prompt(lm)
    row = Row(ids, types, SamplingParams(max_new_tokens=5, ignore_eos=True), 4)
    batch = Batch(lm, table)
    batch.join([Row(ids, types, SamplingParams(max_new_tokens=30, ignore_eos=True), 1)], ["doomed"])
    batch.step()
    batch.join([row], ["waiting"])
    assert [f.tag for f in batch.drop({"doomed"})] == ["doomed"]
    assert len(batch) == 1
    done = {}
    while len(batch):
        done.update((f.tag, f.result) for f in batch.step())
    assert done["waiting"].token_ids == decode_batch(lm, table, [row])[0].token_ids


def test_an_emptied_batch_forgets_the_rules_of_rows_gone(lm: LoadedModel, table: TokenTable) -> None:
    """The engine keeps one batch for good: once a row with bans, n-grams and topic bonuses has
    left, a plain row decodes as it would alone, without paying for their rules."""
    ids, types = prompt(lm)
    plain = Row(ids, types, SamplingParams(max_new_tokens=8, ignore_eos=True), 5)
    batch = Batch(lm, table)
    batch.join([Row(ids, types, everything_on(lm, max_new_tokens=3, min_new_tokens=0), 2)], ["ruled"])
    while len(batch):
        batch.step()
    batch.join([plain], ["plain"])
    assert (batch.strings.strings, batch.ngrams.largest, batch.topics.active) == ([], 0, False)
    done = {}
    while len(batch):
        done.update((f.tag, f.result) for f in batch.step())
    assert done["plain"].token_ids == decode_batch(lm, table, [plain])[0].token_ids
