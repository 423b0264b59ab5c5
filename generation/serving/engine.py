"""The async engine: requests join a continuously running batch, one model thread per model.

A forward pass over 32 rows costs far less than 32 passes over one (the weights are read once
per step, whatever the batch), so requests decode together. They do so *continuously* (the
iteration-level scheduling of Orca, vLLM and TGI): each model's thread runs one decoding step
after another over the rows it holds (``generation/decoding/batch.py``); between two steps it
takes waiting requests in (their prompts fed into free cache slots) and lets finished rows go,
so nobody waits for somebody else's batch to end. A request's candidates and their negative
lines join together; when its last candidate is written, its ranking scores are completed (only
the contrast prompts no line followed need a pass) and it is answered at once.

The event loop only moves requests around, so it stays responsive while the model works. The
queue is bounded: when it is full a request is refused at once (``EngineBusy``) instead of
waiting behind work it would time out on anyway. Whatever one request causes (a prompt that
does not fit, a scoring error) fails that request alone.

On a GPU each model's thread works on a CUDA stream of its own, so one model's read of its
step waits for its own kernels only, and records its graphs when it starts (before the first
request; ``Batch.prepare``). A CUDA error other than running out of memory usually leaves the
device unusable for the whole process (an illegal address, a device-side assert), so the engine
does not rebuild its batch and carry on as it does for other errors: it marks itself unhealthy
(``stats()["fault"]``, which ``politico serve`` answers ``/health`` with 503), fails every
request in hand and every later one at once (``EngineUnhealthy``), and leaves the restart to
the supervisor.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from generation.decoding.batch import Batch, Finished
from generation.decoding.sampling import Row, RowResult, TokenTable, beam_generate, candidate_seed
from generation.decoding.scoring import Prompt, score_candidates
from generation.registry import LoadedModel, ModelRegistry
from generation.settings import EngineSettings
from generation.types import (
    Completion,
    EngineBusy,
    EngineClosed,
    EngineUnhealthy,
    GenerationError,
    GenerationTimeout,
    SamplingParams,
)

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the step-time, queue-wait and first-token histograms.
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def bucket(seconds: float) -> float:
    """The histogram bucket (upper bound) ``seconds`` falls in; past the last, whole seconds."""
    i = bisect.bisect_left(SECONDS_BUCKETS, seconds)
    return SECONDS_BUCKETS[i] if i < len(SECONDS_BUCKETS) else float(math.ceil(seconds))


@dataclass(eq=False)
class _Job:
    """One request: ``n`` candidates of one prompt, and how to answer it."""

    prompt_ids: list[int]
    token_type_ids: list[int] | None
    params: SamplingParams
    seed: int
    n: int
    future: asyncio.Future[list[Completion]]
    loop: asyncio.AbstractEventLoop
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Other prompts to score each candidate after (ranking); none: no scoring pass.
    contrasts: list[Prompt] = field(default_factory=list)
    #: Negative prompts each candidate is guided away from (``params.contrast_guidance``).
    negatives: list[Prompt] = field(default_factory=list)
    submitted: float = field(default_factory=time.monotonic)
    results: list[RowResult | None] = field(default_factory=list)
    left: int = 0
    first_token_s: float | None = None
    #: Seconds it waited before decoding, and each candidate's seconds to written.
    queue_s: float | None = None
    done_s: list[float | None] = field(default_factory=list)
    settled: bool = False

    def rows(self, params: SamplingParams) -> list[Row]:
        return [
            Row(self.prompt_ids, self.token_type_ids, params, candidate_seed(self.seed, i),
                self.cancel.is_set, tuple(self.negatives), score=bool(self.contrasts))
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
    shed: int = 0
    steps: int = 0
    tokens_generated: int = 0
    step_rows: Counter[int] = field(default_factory=Counter)
    step_seconds: Counter[float] = field(default_factory=Counter)
    first_token_seconds: Counter[float] = field(default_factory=Counter)
    queue_wait_seconds: Counter[float] = field(default_factory=Counter)
    #: Each ``*_seconds`` histogram's exact sum (its buckets hold upper bounds only).
    seconds_sums: Counter[str] = field(default_factory=Counter)
    #: Failed requests by kind, as answered by the model thread (busy and timeout are derived).
    failures: Counter[str] = field(default_factory=Counter)

    def observe(self, histogram: str, seconds: float) -> None:
        """One observation of a ``*_seconds`` histogram: its bucket's count and its exact sum."""
        getattr(self, histogram)[bucket(seconds)] += 1
        self.seconds_sums[histogram] += seconds


def failure_kind(exc: BaseException) -> str:
    """A short name for what went wrong, for the failures counter."""
    if isinstance(exc, ValueError):
        return "bad_request"
    if isinstance(exc, EngineUnhealthy):
        return "unhealthy"
    if isinstance(exc, EngineClosed):
        return "closed"
    if isinstance(exc, GenerationError):
        return type(exc).__name__
    return "internal"


def device_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a CUDA error that leaves the device unusable (sticky): any CUDA,
    cuBLAS or cuDNN error torch reports, except running out of memory, which the next step
    may well survive."""
    if isinstance(exc, torch.OutOfMemoryError):
        return False
    if isinstance(exc, torch.AcceleratorError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        mark in text for mark in ("CUDA error", "CUBLAS_STATUS_", "cuDNN error", "device-side assert")
    )


@contextlib.contextmanager
def own_stream(device: torch.device) -> Iterator[None]:
    """On a GPU, the calling thread's work goes to a CUDA stream of its own inside the block."""
    if device.type != "cuda":
        yield
        return
    with torch.cuda.stream(torch.cuda.Stream(device)):
        yield


class _Worker:
    """One model's inbox and the thread that decodes its running batch."""

    def __init__(self, engine: Engine, model: str) -> None:
        self.engine = engine
        self.model = model
        self.inbox: deque[_Job] = deque()
        self.running: dict[_Job, None] = {}  # jobs with rows in the batch, in arrival order
        self.wake = threading.Condition()
        self.stopping = False
        #: Set once the model is loaded and its graphs recorded (or it failed to load).
        self.ready = threading.Event()
        #: Graphs recorded ahead of use when the batch was made.
        self.prepared = 0
        self.thread = threading.Thread(target=self._run, name=f"engine-{model}", daemon=True)
        self.thread.start()

    def depth(self) -> int:
        return len(self.inbox)

    @property
    def rows(self) -> int:
        """Candidate rows in the batch now."""
        return sum(job.n for job in list(self.running))  # a snapshot: the model thread changes it

    def submit(self, job: _Job) -> None:
        with self.wake:
            if len(self.inbox) >= self.engine.settings.queue_size:
                raise EngineBusy(f"{self.engine.settings.queue_size} requests already waiting")
            self.inbox.append(job)
            self.wake.notify()

    def outstanding(self) -> int:
        return len(self.inbox) + len(self.running)

    def stop(self) -> None:
        with self.wake:
            self.stopping = True
            self.wake.notify()

    # --- answering (any thread) ----------------------------------------------------------------

    def settle(self, job: _Job, result: list[Completion] | BaseException) -> None:
        """Answer a job exactly once, on its event loop (its caller may be gone)."""
        if job.settled:
            return
        job.settled = True

        def answer() -> None:
            # Counted here, on the loop: a caller that timed out or left was counted as such.
            if job.future.done():
                return
            stats = self.engine._stats
            if isinstance(result, BaseException):
                stats.errors += 1
                stats.failures[failure_kind(result)] += 1
                job.future.set_exception(result)
            else:
                stats.completed += 1
                job.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            job.loop.call_soon_threadsafe(answer)

    # --- on the model thread -------------------------------------------------------------------

    def _run(self) -> None:
        lm = self._load()
        if lm is not None:
            with own_stream(lm.device):
                self._decode(lm)

    def _load(self) -> LoadedModel | None:
        """The model, once there is work for it (or it was preloaded); None when stopping first.

        A model that fails to load fails the requests waiting for it, and is tried again for
        the next ones."""
        registry = self.engine.registry
        while True:
            with self.wake:
                while not self.inbox and not self.stopping and not registry.is_loaded(self.model):
                    self.wake.wait()
                if self.stopping and not self.inbox:
                    self.ready.set()
                    return None
            try:
                return registry.get(self.model)
            except Exception as exc:  # the model failed to load: its requests fail, not the engine
                log.error("model %s failed to load: %s", self.model, exc,
                          exc_info=not isinstance(exc, GenerationError))
                self._fail_waiting(exc)
                self.ready.set()

    def _decode(self, lm: LoadedModel) -> None:
        """The model thread's life: record the graphs, then step the running batch until stopped."""
        table = TokenTable(lm.tokenizer, lm.model.get_output_embeddings().out_features)
        batch: Batch | None = None
        try:
            batch = Batch(lm, table)
            self.prepared = batch.prepare(self.engine.settings.max_batch)
        except Exception as exc:
            if self._broken(exc):
                return
        finally:
            self.ready.set()
        while True:
            with self.wake:
                idle = not self.inbox and not self.running
                while not self.inbox and not self.running and not self.stopping:
                    self.wake.wait()
                if self.stopping and not self.inbox and not self.running:
                    return
            if batch is None:
                batch = Batch(lm, table)
            if idle:  # work reached an idle engine; requests already waiting go in at once
                self._gather_window()
            try:
                self._admit(lm, table, batch)
                self._drop_cancelled(batch)
                if not len(batch):
                    continue
                started = time.perf_counter()
                finished = batch.step()
                elapsed = time.perf_counter() - started
            except Exception as exc:  # a bug or a device error in the step: the batch is lost
                log.error("a decoding step on %s failed: %s", self.model, exc, exc_info=True)
                broken = self._broken(exc)  # if so, its jobs are answered EngineUnhealthy first
                for job in list(self.running):
                    self.settle(job, exc)
                self.running.clear()
                batch = None
                if broken:
                    return
                continue
            self._account(batch, elapsed)
            for done in finished:
                self._collect(lm, done)

    def _broken(self, exc: BaseException) -> bool:
        """Whether ``exc`` broke the device: then the whole engine is marked unhealthy."""
        if not device_fault(exc):
            return False
        self.engine._fault(self.model, exc)
        return True

    def _gather_window(self) -> None:
        """When work arrives at an idle engine, wait ``batch_window_ms`` for requests arriving
        together, so their prompts are fed in one pass."""
        window = self.engine.settings.batch_window_ms / 1000
        if window > 0:
            time.sleep(window)

    def _admit(self, lm: LoadedModel, table: TokenTable, batch: Batch) -> None:
        """Move waiting jobs into the batch while there is room (first come, first served)."""
        cap = self.engine.settings.max_batch
        while True:
            with self.wake:
                if not self.inbox:
                    break
                job = self.inbox[0]
                if job.cancel.is_set() or job.settled:
                    self.inbox.popleft()
                    self.settle(job, EngineClosed("cancelled before it started"))
                    continue
                self._shed(job, self.rows + sum(waiting.n for waiting in self.inbox))
                if job.params.num_beams > 1:
                    self.inbox.popleft()
                else:
                    room = (self.rows + job.n <= cap or not self.running) and batch.can_join()
                    if not room or (len(batch) and batch.typed != (job.token_type_ids is not None)):
                        break
                    self.inbox.popleft()
            job.queue_s = time.monotonic() - job.submitted
            self.engine._stats.observe("queue_wait_seconds", job.queue_s)
            try:
                params = _fit(lm, table, job)
            except ValueError as exc:
                self.settle(job, exc)
                continue
            if params.num_beams > 1:
                self._beams(lm, table, job, params)
                continue
            job.results, job.left, job.done_s = [None] * job.n, job.n, [None] * job.n
            try:
                batch.join(job.rows(params), [(job, i) for i in range(job.n)])
            except Exception as exc:  # the batch may be half-changed: it is given up below
                self.settle(job, exc)
                raise
            self.running[job] = None

    def _shed(self, job: _Job, backlog: int) -> None:
        """Fewer candidates for a request that starts under load (``shed_rows``): its first
        ``shed_candidates``, the same ones it would have had among all (same seeds)."""
        settings = self.engine.settings
        if settings.shed_rows and backlog - job.n > settings.shed_rows and job.n > settings.shed_candidates:
            job.n = settings.shed_candidates
            self.engine._stats.shed += 1

    def _beams(self, lm: LoadedModel, table: TokenTable, job: _Job, params: SamplingParams) -> None:
        """Beam search has no per-row form: run it now, between two steps of the batch."""
        try:
            results = [beam_generate(lm, table, row) for row in job.rows(params)]
            job.first_token_s = time.monotonic() - job.submitted
            job.done_s = [job.first_token_s] * len(results)
            self.settle(job, [_completion(r, (), job, i) for i, r in enumerate(results)])
        except Exception as exc:
            log.error("beam search on %s failed: %s", self.model, exc, exc_info=True)
            self.settle(job, exc)
            if device_fault(exc):
                raise  # the step's handler marks the engine unhealthy

    def _drop_cancelled(self, batch: Batch) -> None:
        gone = [job for job in self.running if job.cancel.is_set()]
        if gone:
            batch.drop({(job, i) for job in gone for i in range(job.n)})
            for job in gone:
                self.running.pop(job, None)
                self.settle(job, EngineClosed("cancelled"))

    def _account(self, batch: Batch, elapsed: float) -> None:
        stats = self.engine._stats
        stats.steps += 1
        stats.step_rows[batch.stepped] += 1
        stats.observe("step_seconds", elapsed)
        stats.tokens_generated += batch.written
        now = time.monotonic()
        for job, _ in batch.started:  # type: ignore[misc]
            if job.first_token_s is None:
                job.first_token_s = now - job.submitted
                stats.observe("first_token_seconds", job.first_token_s)

    def _collect(self, lm: LoadedModel, done: Finished) -> None:
        """A candidate is written; with its request's last one, score and answer the request."""
        job, index = done.tag  # type: ignore[misc]
        if job.settled:
            return
        job.results[index] = done.result
        job.done_s[index] = time.monotonic() - job.submitted
        job.left -= 1
        if job.left:
            return
        self.running.pop(job, None)
        results = [r for r in job.results if r is not None]
        if any(r.finish_reason == "cancelled" for r in results):
            self.settle(job, EngineClosed("cancelled"))
            return
        try:
            scores = _scores(lm, job, results)
        except Exception as exc:  # scoring one request must not fail the others
            log.error("scoring a request on %s failed: %s", self.model, exc, exc_info=True)
            self.settle(job, GenerationError(f"scoring failed: {exc}"))
            if device_fault(exc):  # ...unless it broke the device
                self.engine._fault(self.model, exc)
            return
        self.settle(job, [_completion(r, s, job, i) for i, (r, s) in enumerate(zip(results, scores, strict=True))])

    def _fail_waiting(self, exc: BaseException) -> None:
        with self.wake:
            waiting = list(self.inbox)
            self.inbox.clear()
        for job in waiting:
            self.settle(job, exc)


def _fit(lm: LoadedModel, table: TokenTable, job: _Job) -> SamplingParams:
    """Check a job against the model, shortening ``max_new_tokens`` to the positions left.

    Decoding, guidance and ranking must all stay inside the model's positions: a negative
    prompt decodes in lockstep with its row, and ranking scores the tweet and its EOS after the
    prompt and after every contrast, so the longest of them sets the room.
    """
    if job.params.max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    guided = job.negatives if job.params.contrast_guidance > 0 else []
    prompts = [(job.prompt_ids, job.token_type_ids), *guided, *job.contrasts]
    bad = [t for ids, _ in prompts for t in ids if not 0 <= t < table.vocab_size]
    if bad:
        raise ValueError(f"token ids outside the vocabulary of {lm.name!r}: {bad[:5]}")
    if any(not ids for ids, _ in prompts):
        raise ValueError("an empty prompt")
    if any((types is None) != (job.token_type_ids is None) for _, types in prompts):
        raise ValueError("negative or contrast prompts and the prompt differ in having token types")
    if any(types is not None and len(types) != len(ids) for ids, types in prompts):
        raise ValueError("a prompt's token types and ids differ in length")
    limit = lm.max_positions
    if limit is None:
        return job.params
    room = limit - max(len(ids) for ids, _ in prompts) - (1 if job.contrasts else 0)
    if room < 1:
        raise ValueError(f"prompt of {len(job.prompt_ids)} tokens leaves no room in {limit} positions")
    if job.params.max_new_tokens <= room:
        return job.params
    return replace(job.params, max_new_tokens=room, min_new_tokens=min(job.params.min_new_tokens, room))


def _scores(lm: LoadedModel, job: _Job, results: list[RowResult]) -> list[tuple[float, ...]]:
    """Per candidate, its log-probability (tweet + EOS) after the prompt and each contrast.

    What decoding already summed (the prompt, and the negative prompts of contrast guidance)
    is reused; one padded pass scores the rest.
    """
    if not job.contrasts:
        return [()] * len(results)
    prompts: list[Prompt] = [(job.prompt_ids, job.token_type_ids), *job.contrasts]
    followed = [(job.prompt_ids, job.token_type_ids)]
    if job.params.contrast_guidance > 0:
        followed += job.negatives
    known: list[dict[int, float]] = []
    for result in results:
        have: dict[int, float] = {}
        if result.logprobs:
            for p, prompt in enumerate(prompts):
                if prompt in followed:
                    have[p] = result.logprobs[followed.index(prompt)]
        known.append(have)
    missing = [(c, p) for c, have in enumerate(known) for p in range(len(prompts)) if p not in have]
    if missing:
        wanted = sorted({p for _, p in missing})
        tokens = [results[c].token_ids for c in range(len(results))]
        need = sorted({c for c, _ in missing})
        scored = score_candidates(lm, [prompts[p] for p in wanted], [tokens[c] for c in need])
        for c, row in zip(need, scored, strict=True):
            for p, value in zip(wanted, row, strict=True):
                known[c].setdefault(p, value)
    return [tuple(have[p] for p in range(len(prompts))) for have in known]


def _completion(result: RowResult, logprobs: tuple[float, ...], job: _Job, index: int) -> Completion:
    """Candidate ``index`` of ``job`` as answered: with its own seed and timings."""
    finish = "stop" if result.finish_reason == "stop" else "length"
    scored = len(result.token_ids) + 1 if logprobs else 0  # the tweet and its EOS
    return Completion(result.text, len(result.token_ids), finish, logprobs, scored, job.first_token_s,
                      seed=candidate_seed(job.seed, index), queue_s=job.queue_s, done_s=job.done_s[index])


class Engine:
    """Continuously batched, bounded, cancellable generation over the registry's models."""

    def __init__(self, registry: ModelRegistry, settings: EngineSettings) -> None:
        self.registry = registry
        self.settings = settings
        self._workers: dict[str, _Worker] = {}
        self._stats = _Stats()
        self._closing = False
        #: What broke the device, once something did: the engine then takes no more work.
        self.fault: str | None = None

    async def start(self, preload: tuple[str, ...] | list[str] = ()) -> None:
        """Load (and warm up) ``preload`` models now rather than on their first request, and
        wait until each model's thread has recorded its graphs."""
        # Off the event loop (loading takes seconds). The registry runs the load itself on a
        # thread that ends with it, so the decoding thread's OpenMP team stays the only one
        # (registry.on_own_thread; measured in docs/benchmarks.md).
        for name in preload:
            await asyncio.to_thread(self.registry.get, name)
            worker = self._worker(name)
            with worker.wake:
                worker.wake.notify()
            await asyncio.to_thread(worker.ready.wait)

    def _fault(self, model: str, exc: BaseException) -> None:
        """A device error broke ``model``'s thread (any thread may call this): every request in
        hand and waiting fails now, every later one at once, and every model thread stops."""
        if self.fault is None:
            self.fault = f"{model}: {type(exc).__name__}: {exc}"
            log.critical("the device failed (%s); the engine is unhealthy and needs a restart", self.fault)
        failure = EngineUnhealthy(f"the engine is unhealthy after a device error ({self.fault})")
        for worker in list(self._workers.values()):
            with worker.wake:
                waiting = list(worker.inbox)
                worker.inbox.clear()
                worker.stopping = True
                worker.wake.notify()
            for job in [*waiting, *list(worker.running)]:
                job.cancel.set()
                worker.settle(job, failure)

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
        """``n`` completions of a tokenized prompt; the same seed gives the same completions (on a
        GPU only for the same batch shape: ``generation/decoding/sampling.py``).

        With ``contrasts`` every completion also carries its log-probability after the prompt
        and after each contrast prompt (``Completion.logprobs``). With ``negatives`` and
        ``params.contrast_guidance`` > 0 each step leans away from what the negative prompts
        would write (``generation/decoding/contrast.py``).

        Raises ``EngineBusy`` at once when the queue is full, ``GenerationTimeout`` after
        ``request_timeout_s``, ``EngineClosed`` once shutdown began, ``UnknownModel``, and
        ``ValueError`` for a prompt the model cannot take.
        """
        if self.fault is not None:
            raise EngineUnhealthy(f"the engine is unhealthy after a device error ({self.fault})")
        if self._closing:
            raise EngineClosed("the engine is shutting down")
        if n < 1:
            raise ValueError("n must be at least 1")
        if not prompt_ids:
            raise ValueError("the prompt has no tokens")
        if token_type_ids is not None and len(token_type_ids) != len(prompt_ids):
            raise ValueError("token_type_ids and prompt_ids differ in length")
        worker = self._worker(model)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Completion]] = loop.create_future()
        job = _Job(list(prompt_ids), None if token_type_ids is None else list(token_type_ids),
                   params, seed, n, future, loop, contrasts=list(contrasts or []),
                   negatives=list(negatives or []))
        try:
            worker.submit(job)
        except EngineBusy:
            self._stats.busy += 1
            raise
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
        """Counters and histograms for monitoring (exported by ``generation/serving/metrics.py``).

        Mappings from a number to a count are histograms (the key is the observation, already
        bucketed), ``seconds_sums`` holds each ``*_seconds`` one's exact sum; ``failures`` counts
        failed requests by kind.
        """
        s = self._stats
        return {
            "queue_depth": sum(w.depth() for w in self._workers.values()),
            "in_flight": sum(len(w.running) for w in self._workers.values()),
            "rows": sum(w.rows for w in self._workers.values()),
            "requests": s.requests,
            "completed": s.completed,
            "errors": s.errors,
            "busy": s.busy,
            "timeouts": s.timeouts,
            "cancelled": s.cancelled,
            "shed": s.shed,
            "steps": s.steps,
            "tokens_generated": s.tokens_generated,
            "step_rows": dict(sorted(s.step_rows.copy().items())),
            "step_seconds": dict(sorted(s.step_seconds.copy().items())),
            "first_token_seconds": dict(sorted(s.first_token_seconds.copy().items())),
            "queue_wait_seconds": dict(sorted(s.queue_wait_seconds.copy().items())),
            "seconds_sums": dict(s.seconds_sums.copy()),
            "failures": {**s.failures.copy(), **{k: v for k, v in (("busy", s.busy), ("timeout", s.timeouts)) if v}},
            "models_loaded": [name for name in self.registry.specs if self.registry.is_loaded(name)],
            "closed": self._closing,
            "fault": self.fault,
            "graphs_prepared": {name: w.prepared for name, w in self._workers.items() if w.prepared},
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
                    while any(w.outstanding() for w in workers):
                        await asyncio.sleep(0.01)
        for worker in workers:
            with worker.wake:
                leftovers = list(worker.inbox)
                worker.inbox.clear()
            for job in leftovers:
                worker.settle(job, EngineClosed("the engine shut down before this request ran"))
            for job in list(worker.running):
                job.cancel.set()
            worker.stop()
        await asyncio.gather(*(asyncio.to_thread(w.thread.join, 30) for w in workers))
        for worker in workers:
            for job in list(worker.running):
                worker.settle(job, EngineClosed("the engine stopped"))
        await asyncio.sleep(0)  # let the answers posted from the model threads land
        self._workers.clear()
