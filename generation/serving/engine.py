"""The async engine: concurrent requests become micro-batches, decoded on one thread per model.

A forward pass over 32 rows costs far less than 32 passes over one (the weights are read once
per step, whatever the batch), so requests that arrive close together are decoded together: each model's worker takes the first waiting request,
waits at most ``batch_window_ms`` for more (up to ``max_batch`` rows), and hands the batch to its
own thread. The event loop only moves requests around, so it stays responsive while a batch runs.
The queue is bounded: when it is full a request is refused at once (``EngineBusy``) instead of
waiting behind work it would time out on anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from threading import Event
from typing import Any

from generation.decoding.sampling import (
    Row,
    RowResult,
    TokenTable,
    beam_generate,
    candidate_seed,
    decode_batch,
)
from generation.decoding.scoring import Prompt, score_candidates
from generation.registry import LoadedModel, ModelRegistry
from generation.settings import EngineSettings
from generation.types import (
    Completion,
    EngineBusy,
    EngineClosed,
    GenerationError,
    GenerationTimeout,
    SamplingParams,
)

log = logging.getLogger(__name__)


@dataclass
class _Job:
    """One request: ``n`` candidates of one prompt, and how to answer it."""

    prompt_ids: list[int]
    token_type_ids: list[int] | None
    params: SamplingParams
    seed: int
    n: int
    future: asyncio.Future[list[Completion]]
    cancel: Event = field(default_factory=Event)
    settled: bool = False
    #: Other prompts to score each candidate after (ranking); none: no scoring pass.
    contrasts: list[Prompt] = field(default_factory=list)
    #: Negative prompts each candidate is guided away from (``params.contrast_guidance``).
    negatives: list[Prompt] = field(default_factory=list)

    def fits_with(self, other: _Job) -> bool:
        """Whether both can share a sampling batch (beam search always runs alone)."""
        return (
            self.params.num_beams == 1 and other.params.num_beams == 1
            and (self.token_type_ids is None) == (other.token_type_ids is None)
        )

    def rows(self, params: SamplingParams) -> list[Row]:
        return [
            Row(self.prompt_ids, self.token_type_ids, params, candidate_seed(self.seed, i),
                self.cancel.is_set, tuple(self.negatives))
            for i in range(self.n)
        ]


@dataclass
class _Stats:
    requests: int = 0
    completed: int = 0
    errors: int = 0
    busy: int = 0
    timeouts: int = 0
    cancelled: int = 0
    batches: int = 0
    last_batch_size: int = 0
    tokens_generated: int = 0
    batch_sizes: Counter[int] = field(default_factory=Counter)


class _Worker:
    """One model's queue, batching loop and decoding thread."""

    def __init__(self, engine: Engine, model: str) -> None:
        self.engine = engine
        self.model = model
        self.queue: asyncio.Queue[_Job] = asyncio.Queue(engine.settings.queue_size)
        self.held: _Job | None = None  # taken from the queue but left for the next batch
        self.taken: list[_Job] = []  # the batch being collected or decoded
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"engine-{model}")
        self.table: TokenTable | None = None
        self.task = asyncio.get_running_loop().create_task(self._loop(), name=f"engine-{model}")

    def depth(self) -> int:
        return self.queue.qsize() + (self.held is not None)

    async def _next(self, timeout: float | None) -> _Job | None:
        """The held job, else the next queued one (waiting at most ``timeout``; None: forever)."""
        if self.held is not None:
            job, self.held = self.held, None
            return job
        if timeout is None:
            return await self.queue.get()
        if timeout <= 0:
            try:
                return self.queue.get_nowait()
            except asyncio.QueueEmpty:
                return None
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    def settle(self, job: _Job, result: list[Completion] | BaseException) -> None:
        """Answer a job exactly once (its caller may be gone: timed out or cancelled)."""
        if job.settled:
            return
        job.settled = True
        if not job.future.done():
            if isinstance(result, BaseException):
                self.engine._stats.errors += 1
                job.future.set_exception(result)
            else:
                self.engine._stats.completed += 1
                job.future.set_result(result)
        self.queue.task_done()

    async def _collect(self) -> None:
        """Add to ``taken`` what compatible requests arrive within the window, up to the cap."""
        settings = self.engine.settings
        first = self.taken[0]
        rows = first.n
        if first.params.num_beams > 1:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.batch_window_ms / 1000
        while rows < settings.max_batch:
            job = await self._next(deadline - loop.time())
            if job is None:
                break
            if job.cancel.is_set():
                self.settle(job, EngineClosed("cancelled before it started"))
                continue
            if not first.fits_with(job) or rows + job.n > settings.max_batch:
                self.held = job
                break
            self.taken.append(job)
            rows += job.n

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        stats = self.engine._stats
        try:
            while True:
                first = await self._next(None)
                assert first is not None
                if first.cancel.is_set():
                    self.settle(first, EngineClosed("cancelled before it started"))
                    continue
                self.taken = [first]
                await self._collect()
                jobs = self.taken
                try:
                    outcomes, size, tokens = await loop.run_in_executor(self.executor, self._run, jobs)
                except Exception as exc:  # the model failed to load or the batch broke
                    # A load error says all there is to say; anything else needs its traceback.
                    log.error("a batch on %s failed: %s", self.model, exc,
                              exc_info=not isinstance(exc, GenerationError))
                    outcomes = [exc] * len(jobs)
                else:
                    stats.batches += 1
                    stats.last_batch_size = size
                    stats.batch_sizes[size] += 1
                    stats.tokens_generated += tokens
                for job, outcome in zip(jobs, outcomes, strict=True):
                    self.settle(job, outcome)
                self.taken = []
        except asyncio.CancelledError:
            for job in self.taken:
                self.settle(job, EngineClosed("the engine stopped"))
            self.taken = []
            raise

    # --- on the model thread -----------------------------------------------------------------

    def _run(self, jobs: list[_Job]) -> tuple[list[list[Completion] | BaseException], int, int]:
        """Decode a batch: each job's completions (or its error), the rows and tokens decoded."""
        lm = self.engine.registry.get(self.model)
        if self.table is None:
            self.table = TokenTable(lm.tokenizer, lm.model.get_output_embeddings().out_features)
        table = self.table
        errors: dict[int, BaseException] = {}
        rows: list[Row] = []
        spans: list[tuple[int, int]] = []
        for i, job in enumerate(jobs):
            try:
                params = _fit(lm, table, job)
            except ValueError as exc:
                errors[i] = exc
                spans.append((0, 0))
                continue
            spans.append((len(rows), len(rows) + job.n))
            rows.extend(job.rows(params))
        if rows and rows[0].params.num_beams > 1:
            results = [beam_generate(lm, table, row) for row in rows]
        else:
            results = decode_batch(lm, table, rows)
        outcomes: list[list[Completion] | BaseException] = []
        for i, (job, (a, b)) in enumerate(zip(jobs, spans, strict=True)):
            if i in errors:
                outcomes.append(errors[i])
                continue
            done = results[a:b]
            scores: list[tuple[float, ...]] = [()] * len(done)
            if job.contrasts:
                prompts = [(job.prompt_ids, job.token_type_ids), *job.contrasts]
                scores = score_candidates(lm, prompts, [r.token_ids for r in done])
            outcomes.append([_completion(r, s) for r, s in zip(done, scores, strict=True)])
        return outcomes, len(rows), sum(len(r.token_ids) for r in results)


def _fit(lm: LoadedModel, table: TokenTable, job: _Job) -> SamplingParams:
    """Check a job against the model, shortening ``max_new_tokens`` to the positions left."""
    if job.params.max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    prompts = [job.prompt_ids, *(ids for ids, _ in job.negatives)]
    bad = [t for ids in prompts for t in ids if not 0 <= t < table.vocab_size]
    if bad:
        raise ValueError(f"token ids outside the vocabulary of {lm.name!r}: {bad[:5]}")
    if any((types is None) != (job.token_type_ids is None) for _, types in job.negatives):
        raise ValueError("negative prompts and the prompt differ in having token types")
    limit = lm.max_positions
    if limit is None:
        return job.params
    # A negative prompt decodes in lockstep with its row, so the longest prompt sets the room.
    room = limit - max(len(ids) for ids in prompts)
    if room < 1:
        raise ValueError(f"prompt of {len(job.prompt_ids)} tokens leaves no room in {limit} positions")
    if job.params.max_new_tokens <= room:
        return job.params
    return replace(job.params, max_new_tokens=room, min_new_tokens=min(job.params.min_new_tokens, room))


def _completion(result: RowResult, logprobs: tuple[float, ...]) -> Completion:
    finish = "stop" if result.finish_reason == "stop" else "length"
    scored = len(result.token_ids) + 1 if logprobs else 0  # the tweet and its EOS
    return Completion(result.text, len(result.token_ids), finish, logprobs, scored)


class Engine:
    """Batched, bounded, cancellable generation over the registry's models."""

    def __init__(self, registry: ModelRegistry, settings: EngineSettings) -> None:
        self.registry = registry
        self.settings = settings
        self._workers: dict[str, _Worker] = {}
        self._stats = _Stats()
        self._closing = False

    async def start(self, preload: tuple[str, ...] | list[str] = ()) -> None:
        """Load (and warm up) ``preload`` models now rather than on their first request."""
        # Off the event loop (loading takes seconds). The registry runs the load itself on a
        # thread that ends with it, so the decoding thread's OpenMP team stays the only one
        # (registry.on_own_thread; measured in docs/benchmarks.md).
        for name in preload:
            self._worker(name)
            await asyncio.to_thread(self.registry.get, name)

    def _worker(self, model: str) -> _Worker:
        self.registry.spec(model)  # raises UnknownModel
        worker = self._workers.get(model)
        if worker is None:
            worker = self._workers[model] = _Worker(self, model)
        return worker

    async def generate(
        self, model: str, prompt_ids: list[int], token_type_ids: list[int] | None,
        params: SamplingParams, seed: int, n: int = 1, contrasts: list[Prompt] | None = None,
        negatives: list[Prompt] | None = None,
    ) -> list[Completion]:
        """``n`` completions of a tokenized prompt; the same seed gives the same completions.

        With ``contrasts`` every completion also carries its log-probability after the prompt
        and after each contrast prompt (``Completion.logprobs``), computed on the model thread
        right after decoding. With ``negatives`` and ``params.contrast_guidance`` > 0 each step
        leans away from what the negative prompts would write (``generation/decoding/contrast.py``).

        Raises ``EngineBusy`` at once when the queue is full, ``GenerationTimeout`` after
        ``request_timeout_s``, ``EngineClosed`` once shutdown began, ``UnknownModel``, and
        ``ValueError`` for a prompt the model cannot take.
        """
        if self._closing:
            raise EngineClosed("the engine is shutting down")
        if n < 1:
            raise ValueError("n must be at least 1")
        if not prompt_ids:
            raise ValueError("the prompt has no tokens")
        if token_type_ids is not None and len(token_type_ids) != len(prompt_ids):
            raise ValueError("token_type_ids and prompt_ids differ in length")
        worker = self._worker(model)
        future: asyncio.Future[list[Completion]] = asyncio.get_running_loop().create_future()
        job = _Job(list(prompt_ids), None if token_type_ids is None else list(token_type_ids),
                   params, seed, n, future, contrasts=list(contrasts or []), negatives=list(negatives or []))
        try:
            worker.queue.put_nowait(job)
        except asyncio.QueueFull:
            self._stats.busy += 1
            raise EngineBusy(f"{worker.queue.maxsize} requests already waiting") from None
        self._stats.requests += 1
        try:
            async with asyncio.timeout(self.settings.request_timeout_s):
                return await future
        except TimeoutError:
            job.cancel.set()
            self._stats.timeouts += 1
            raise GenerationTimeout(f"no answer within {self.settings.request_timeout_s:g} s") from None
        except asyncio.CancelledError:
            job.cancel.set()
            self._stats.cancelled += 1
            raise

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring (exported to Prometheus by the metrics module)."""
        s = self._stats
        return {
            "queue_depth": sum(w.depth() for w in self._workers.values()),
            "in_flight": sum(len(w.taken) for w in self._workers.values()),
            "requests": s.requests,
            "completed": s.completed,
            "errors": s.errors,
            "busy": s.busy,
            "timeouts": s.timeouts,
            "cancelled": s.cancelled,
            "batches": s.batches,
            "last_batch_size": s.last_batch_size,
            "batch_sizes": dict(sorted(s.batch_sizes.items())),
            "tokens_generated": s.tokens_generated,
            "models_loaded": [name for name in self.registry.specs if self.registry.is_loaded(name)],
            "closed": self._closing,
        }

    async def aclose(self, drain: bool = True) -> None:
        """Stop taking work; let queued and running requests finish (``drain``) or cut them off.

        Draining waits at most ``drain_timeout_s``; whatever is left then is cancelled and
        answered ``EngineClosed``.
        """
        if self._closing and not self._workers:
            return
        self._closing = True
        workers = list(self._workers.values())
        if drain and workers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.drain_timeout_s):
                    await asyncio.gather(*(w.queue.join() for w in workers))
        for worker in workers:
            for job in worker.taken:
                job.cancel.set()
            worker.task.cancel()
        await asyncio.gather(*(w.task for w in workers), return_exceptions=True)
        loop = asyncio.get_running_loop()
        for worker in workers:
            leftovers = [worker.held] if worker.held else []
            while not worker.queue.empty():
                leftovers.append(worker.queue.get_nowait())
            for job in leftovers:
                worker.settle(job, EngineClosed("the engine shut down before this request ran"))
            await loop.run_in_executor(None, worker.executor.shutdown)
        self._workers.clear()
