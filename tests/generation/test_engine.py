"""The async engine: batching, busy, timeouts, cancellation, drain, no lost requests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from generation.prompts import ControlFields
from generation.registry import LoadedModel
from generation.serving import engine as engine_module
from generation.serving.backends.local import encode
from generation.serving.engine import Engine
from generation.types import (
    Completion,
    EngineBusy,
    EngineClosed,
    GenerationTimeout,
    PromptSpec,
    SamplingParams,
    UnknownModel,
)
from tests.support.waiting import until

FAST = SamplingParams(max_new_tokens=6)


@pytest.fixture
def prompt(lm: LoadedModel) -> tuple[list[int], list[int]]:
    ids, types = encode(lm, PromptSpec("controlled", ControlFields(partido="UDI")))
    assert types is not None
    return ids, types


class Gate:
    """Holds every batch on the model thread until opened (decoding then runs as usual)."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        #: The threads that ran a step.
        self.threads: set[int] = set()

    def release(self) -> None:
        self.open.set()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    g = Gate()

    class Gated(engine_module.Batch):
        def step(self):  # type: ignore[override]
            g.threads.add(threading.get_ident())
            g.entered.set()
            assert g.open.wait(10), "gate never opened"
            return super().step()

    monkeypatch.setattr(engine_module, "Batch", Gated)
    yield g
    g.release()


async def test_same_seed_same_completions_and_n_candidates(engine_factory, prompt) -> None:
    engine: Engine = engine_factory()
    ids, types = prompt
    first = await engine.generate("demo", ids, types, SamplingParams(max_new_tokens=12), seed=5, n=3)
    again = await engine.generate("demo", ids, types, SamplingParams(max_new_tokens=12), seed=5, n=3)
    assert len(first) == 3 and all(isinstance(c, Completion) for c in first)
    assert first == again
    assert len({c.text for c in first}) > 1
    assert all(c.tokens <= 12 for c in first)


async def test_concurrent_requests_share_batches_and_match_their_solo_results(engine_factory, prompt) -> None:
    ids, types = prompt
    engine: Engine = engine_factory(batch_window_ms=50)
    params = [SamplingParams(max_new_tokens=8, temperature=t) for t in (0.0, 0.7, 1.3)] * 4
    together = await asyncio.gather(*(
        engine.generate("demo", ids, types, p, seed=i) for i, p in enumerate(params)
    ))
    stats = engine.stats()
    assert max(stats["step_rows"]) > 1  # rows decoded side by side
    solo = engine_factory(batch_window_ms=0)
    for i, p in enumerate(params[:3]):
        assert await solo.generate("demo", ids, types, p, seed=i) == together[i]


async def test_controlled_casual_and_beam_requests_at_once(engine_factory, registry, prompt) -> None:
    ids, types = prompt
    casual_ids, _ = encode(registry.get("casual"), PromptSpec("casual", seed_text="Hoy"))
    engine: Engine = engine_factory(batch_window_ms=30)
    results = await asyncio.gather(
        engine.generate("demo", ids, types, FAST, seed=1),
        engine.generate("demo", ids, None, FAST, seed=2),
        engine.generate("demo", ids, types, SamplingParams(max_new_tokens=6, num_beams=3), seed=3),
        engine.generate("casual", casual_ids, None, FAST, seed=4, n=2),
    )
    assert [len(r) for r in results] == [1, 1, 1, 2]


async def test_full_queue_answers_busy_at_once(engine_factory, gate: Gate, prompt) -> None:
    ids, types = prompt
    engine: Engine = engine_factory(queue_size=2, max_batch=1, batch_window_ms=0)
    running = asyncio.create_task(engine.generate("demo", ids, types, FAST, seed=0))
    await until(gate.entered.is_set, "the worker to take the first request")  # the queue is empty again
    queued = [asyncio.create_task(engine.generate("demo", ids, types, FAST, seed=i)) for i in (1, 2)]
    await until(lambda: engine.stats()["queue_depth"] == 2, "two queued requests")
    with pytest.raises(EngineBusy):
        await engine.generate("demo", ids, types, FAST, seed=3)
    assert engine.stats()["busy"] == 1
    gate.release()
    assert all(len(r) == 1 for r in await asyncio.gather(running, *queued))


async def test_timeout_then_the_engine_keeps_working(engine_factory, gate: Gate, prompt) -> None:
    ids, types = prompt
    engine: Engine = engine_factory(request_timeout_s=0.2)
    with pytest.raises(GenerationTimeout):
        await engine.generate("demo", ids, types, FAST, seed=0)
    assert engine.stats()["timeouts"] == 1
    gate.release()
    assert len(await engine.generate("demo", ids, types, FAST, seed=1)) == 1
    # Counted once, as a timeout: dropping it afterwards answers nobody and counts nothing.
    stats = engine.stats()
    assert (stats["timeouts"], stats["errors"], stats["completed"]) == (1, 0, 1)
    assert stats["failures"] == {"timeout": 1}
    # Histograms keep their exact sums beside the buckets' upper bounds.
    steps = stats["seconds_sums"]["step_seconds"]
    assert 0 < steps <= sum(bound * count for bound, count in stats["step_seconds"].items())


async def test_a_cancelled_request_is_never_decoded(engine_factory, gate: Gate, prompt) -> None:
    ids, types = prompt
    engine: Engine = engine_factory(max_batch=1, batch_window_ms=0)
    first = asyncio.create_task(engine.generate("demo", ids, types, FAST, seed=0))
    await until(gate.entered.is_set, "the worker to take the first request")
    doomed = asyncio.create_task(engine.generate("demo", ids, types, FAST, seed=1))
    await until(lambda: engine.stats()["queue_depth"] == 1, "one queued request")
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    gate.release()
    await first
    await until(lambda: engine.stats()["queue_depth"] == 0, "an empty queue")
    last = await engine.generate("demo", ids, types, FAST, seed=2)
    assert len(last) == 1
    stats = engine.stats()
    assert stats["cancelled"] == 1
    # the first and the last decoded, one row at a time: the cancelled one never ran
    assert stats["tokens_generated"] == (await first)[0].tokens + last[0].tokens
    assert set(stats["step_rows"]) == {1}


async def test_drain_on_close_answers_everything_queued(engine_factory, prompt) -> None:
    ids, types = prompt
    engine: Engine = engine_factory(max_batch=2)
    tasks = [asyncio.create_task(engine.generate("demo", ids, types, FAST, seed=i)) for i in range(6)]
    await asyncio.sleep(0)
    await engine.aclose(drain=True)
    assert all(len(r) == 1 for r in await asyncio.gather(*tasks))
    with pytest.raises(EngineClosed):
        await engine.generate("demo", ids, types, FAST, seed=9)


async def test_close_without_drain_refuses_queued_work(engine_factory, gate: Gate, prompt) -> None:
    ids, types = prompt
    engine: Engine = engine_factory(max_batch=1, batch_window_ms=0)
    tasks = [asyncio.create_task(engine.generate("demo", ids, types, FAST, seed=i)) for i in range(3)]
    await until(gate.entered.is_set, "the worker to take the first request")
    closing = asyncio.create_task(engine.aclose(drain=False))
    # The queued ones are refused at once, while the first is still on the model thread.
    await until(lambda: all(t.done() for t in tasks[1:]), "the queued requests to be refused")
    assert not tasks[0].done()
    gate.release()
    await closing
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, EngineClosed) for r in results)


async def test_fifty_concurrent_requests_are_all_answered_or_busy(engine_factory, prompt) -> None:
    ids, types = prompt
    engine: Engine = engine_factory(queue_size=20, max_batch=8)
    results = await asyncio.gather(
        *(engine.generate("demo", ids, types, FAST, seed=i, n=1 + i % 2) for i in range(50)),
        return_exceptions=True,
    )
    answered = [r for r in results if isinstance(r, list)]
    busy = [r for r in results if isinstance(r, EngineBusy)]
    assert len(answered) + len(busy) == 50
    assert len(answered) >= 20 and busy
    assert all(len(r) == 1 + i % 2 for i, r in enumerate(results) if isinstance(r, list))
    stats = engine.stats()
    assert stats["completed"] == len(answered) and stats["busy"] == len(busy)
    assert stats["queue_depth"] == 0 and stats["in_flight"] == 0


async def test_the_event_loop_runs_while_a_batch_decodes(engine_factory, gate: Gate, prompt) -> None:
    """Decoding runs on the model thread, never on the loop: a step held there until the loop
    itself opens the gate could not finish if it blocked the loop (it would fail after 10 s)."""
    ids, types = prompt
    engine: Engine = engine_factory(max_batch=4, batch_window_ms=0)
    pending = asyncio.gather(*(engine.generate("demo", ids, types, FAST, seed=i) for i in range(8)))
    await until(gate.entered.is_set, "the first step to start")
    gate.release()  # the loop runs while the step waits: it is the loop that lets it go on
    assert all(len(r) == 1 for r in await pending)
    assert threading.get_ident() not in gate.threads


async def test_drain_gives_up_after_its_time_out(engine_factory, gate: Gate, prompt) -> None:
    """A rolling restart must not wait for ever on a stuck batch: after ``drain_timeout_s`` the
    requests still queued are answered ``EngineClosed`` and the engine closes."""
    ids, types = prompt
    engine: Engine = engine_factory(max_batch=1, batch_window_ms=0, drain_timeout_s=0.2)
    tasks = [asyncio.create_task(engine.generate("demo", ids, types, FAST, seed=i)) for i in range(3)]
    await until(gate.entered.is_set, "the worker to take the first request")
    closing = asyncio.create_task(engine.aclose(drain=True))
    # The gate stays shut, so draining cannot finish: only the time-out refuses the queued ones.
    queued = await asyncio.wait_for(asyncio.gather(*tasks[1:], return_exceptions=True), 10)
    assert all(isinstance(r, EngineClosed) for r in queued), queued
    assert not tasks[0].done() and not closing.done()
    gate.release()
    await asyncio.wait_for(closing, 30)
    await asyncio.gather(tasks[0], return_exceptions=True)
    assert engine.stats()["closed"]


async def test_bad_requests_are_refused(engine_factory, lm: LoadedModel, prompt) -> None:
    ids, types = prompt
    engine: Engine = engine_factory()
    with pytest.raises(UnknownModel):
        await engine.generate("nope", ids, types, FAST, seed=0)
    with pytest.raises(ValueError, match="n must"):
        await engine.generate("demo", ids, types, FAST, seed=0, n=0)
    with pytest.raises(ValueError, match="no tokens"):
        await engine.generate("demo", [], None, FAST, seed=0)
    with pytest.raises(ValueError, match="differ in length"):
        await engine.generate("demo", ids, types[:-1], FAST, seed=0)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        await engine.generate("demo", [*ids, 10**6], None, FAST, seed=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        await engine.generate("demo", ids, types, SamplingParams(max_new_tokens=0), seed=0)
    with pytest.raises(ValueError, match="no room"):
        await engine.generate("demo", ids * 50, None, FAST, seed=0)
    # A prompt that leaves little room gets fewer new tokens instead of an error.
    limit = lm.max_positions
    assert limit is not None
    long = (ids * 50)[: limit - 3]
    out = await engine.generate("demo", long, None, SamplingParams(max_new_tokens=50, ignore_eos=True), seed=0)
    assert out[0].tokens == 3 and out[0].finish_reason == "length"


async def test_stats_report_the_work_done(engine_factory, prompt) -> None:
    ids, types = prompt
    engine: Engine = engine_factory()
    await engine.start(preload=["demo"])
    await engine.generate("demo", ids, types, SamplingParams(max_new_tokens=5, ignore_eos=True), seed=0, n=2)
    stats = engine.stats()
    assert stats["tokens_generated"] == 10
    assert stats["steps"] == 5 and stats["step_rows"] == {2: 5}
    assert sum(stats["first_token_seconds"].values()) == 1
    assert stats["requests"] == stats["completed"] == 1
    assert "demo" in stats["models_loaded"] and stats["closed"] is False


@pytest.mark.expect_errors(r"model ghost failed to load")
async def test_a_model_that_cannot_load_fails_its_requests_not_the_engine(tmp_path, prompt) -> None:
    from generation.registry import ModelLoadError, ModelRegistry
    from generation.settings import EngineSettings, ModelSpec

    ids, types = prompt
    registry = ModelRegistry({"ghost": ModelSpec(path=str(tmp_path / "ghost"), kind="controlled")})
    engine = Engine(registry, EngineSettings(batch_window_ms=0))
    try:
        for _ in range(2):
            with pytest.raises(ModelLoadError, match="ghost"):
                await engine.generate("ghost", ids, types, FAST, seed=0)
        assert engine.stats()["errors"] == 2
    finally:
        await engine.aclose()
