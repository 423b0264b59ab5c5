"""Tweets on demand: decoding defaults, a recorded seed, post-processing and bounded retries.

This is what the bot calls. It works the same over either backend, so it holds no torch: the
backend gives raw continuations, this module turns them into tweets and asks again (with a seed
derived from the request's) when a candidate is empty, degenerate or blocklisted.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any

from pydantic import ValidationError

from generation.decoding.judge import ReaderJudge
from generation.decoding.ranking import rank
from generation.postprocess import clean, rejection_reason
from generation.settings import Decoding, GenerationSettings, ModelSpec
from generation.types import (
    Backend,
    BlockedOutput,
    Completion,
    PromptSpec,
    SamplingParams,
    UnknownModel,
)

#: Request overrides that are not model defaults but still decoding options.
_EXTRA_OPTIONS = {f.name for f in fields(SamplingParams)} - set(Decoding.model_fields)


@dataclass(frozen=True)
class TweetRequest:
    """What to write: a model (None: the default), a prompt, and optional decoding overrides."""

    model: str | None
    prompt: PromptSpec
    seed: int | None = None
    n: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class TweetResult:
    """Accepted tweets, best first, and everything needed to log and reproduce them."""

    texts: list[str]
    model: str
    prompt_text: str
    params: SamplingParams
    seed: int
    latency_ms: float
    #: Tokens generated for each accepted text.
    tokens: list[int]
    tries: int
    #: Rejected candidates and why (``(text, reason)``).
    rejected: list[tuple[str, str]]
    #: Each accepted text's ranking score (higher fits the request better) and its parts.
    scores: list[float] = field(default_factory=list)
    score_details: list[dict[str, float]] = field(default_factory=list)
    #: Seconds from the engine taking the accepted tweets' round to its first token (the
    #: in-process engine says; remote backends cannot, so None).
    first_token_s: float | None = None
    #: Each accepted text's own seed (None where the backend cannot say), and milliseconds
    #: from the request to that text being written (its round's end where the backend cannot
    #: say more): candidates of a retry took longer than the first round's.
    seeds: list[int | None] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    #: Milliseconds the request waited for the engine, over its rounds (None: unknown).
    queue_ms: float | None = None
    #: Candidates asked for that the backend did not write (a loaded engine or server shed them).
    shed: int = 0


def retry_seed(seed: int, attempt: int) -> int:
    """The seed of retry ``attempt`` (0 is the request's own), reproducible from the request's."""
    if attempt == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}/retry/{attempt}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def resolve_params(spec: ModelSpec, overrides: dict[str, Any]) -> SamplingParams:
    """The model's decoding defaults with ``overrides`` applied and checked against the limits."""
    unknown = set(overrides) - set(Decoding.model_fields) - _EXTRA_OPTIONS
    if unknown:
        raise ValueError(f"unknown decoding options: {sorted(unknown)}")
    base = {k: v for k, v in overrides.items() if k in Decoding.model_fields and v is not None}
    try:
        decoding = Decoding.model_validate({**spec.decoding.model_dump(), **base})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ValueError(f"{'.'.join(map(str, error['loc']))}: {error['msg']}") from None
    extra = {k: v for k, v in overrides.items() if k in _EXTRA_OPTIONS and v is not None}
    if "stop" in extra:
        extra["stop"] = tuple(extra["stop"])
    return replace(decoding.params(), **extra)


class TweetGenerator:
    """Turns requests into post-processed tweets over any backend."""

    def __init__(self, settings: GenerationSettings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        self._judges: dict[str, ReaderJudge | None] = {}

    def _spec(self, name: str) -> ModelSpec:
        try:
            return self.settings.models[name]
        except KeyError:
            raise UnknownModel(f"unknown model {name!r}; configured: {sorted(self.settings.models)}") from None

    def judge(self, name: str) -> ReaderJudge | None:
        """The reader's judge shipped in model ``name``'s folder (None: none there, or a hub id),
        read once; it ranks on either backend, since it needs no model."""
        if name not in self._judges:
            spec = self._spec(name)
            self._judges[name] = ReaderJudge.load(spec.path) if self.settings.ranking.consults_judge else None
        return self._judges[name]

    async def generate(self, req: TweetRequest) -> TweetResult:
        """``req.n`` acceptable tweets (fewer when retries ran out after some succeeded, or when
        a loaded engine shed candidates), ranked best first (``generation/decoding/ranking.py``).

        Raises ``BlockedOutput`` when no candidate was acceptable in ``max_tries`` rounds, and
        ``ValueError`` for bad overrides; backend errors (busy, timeout...) pass through.
        """
        if req.n < 1:
            raise ValueError("n must be at least 1")
        started = time.perf_counter()
        name = req.model or self.settings.default_model
        spec = self._spec(name)
        params = resolve_params(spec, req.overrides)
        prompt = replace(req.prompt, kind=spec.kind)
        if spec.kind == "controlled" and not params.guide and (params.guide_bias or params.guide_start_bias):
            params = replace(params, guide=prompt.fields.topics())
        if spec.kind == "casual" and not prompt.seed_text:
            prompt = replace(prompt, seed_text=spec.seed_text)
        # The seed text is the start of the tweet (a casual prompt, or the words after a
        # controlled prompt's tweet marker); the model only continues it.
        prefix = prompt.seed_text
        seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
        post = self.settings.postprocess
        if spec.kind != "controlled" or not self.settings.ranking.enabled:
            prompt = replace(prompt, contrasts=())
        accepted: list[tuple[str, Completion]] = []
        latencies: list[float] = []
        queued: list[float] = []
        rejected: list[tuple[str, str]] = []
        tries = 0
        wanted = req.n
        while len(accepted) < wanted and tries < post.max_tries:
            asked = wanted - len(accepted)
            round_start = time.perf_counter() - started
            completions = await self.backend.complete(name, prompt, params, retry_seed(seed, tries), asked)
            round_end = time.perf_counter() - started
            # An engine under load may answer fewer (``shed_candidates``): that is the request now.
            wanted -= asked - len(completions)
            tries += 1
            queued += [c.queue_s for c in completions[:1] if c.queue_s is not None]
            for completion in completions:
                text = clean(prefix + completion.text, post.max_chars)
                reason = rejection_reason(text, post)
                if reason:
                    rejected.append((text, reason))
                else:
                    accepted.append((text, completion))
                    done = round_end if completion.done_s is None else round_start + completion.done_s
                    latencies.append(done * 1000)
        if not accepted:
            reasons = sorted({reason for _, reason in rejected})
            raise BlockedOutput(f"no acceptable tweet in {tries} tries ({', '.join(reasons)})")
        topics = prompt.fields.topics() if spec.kind == "controlled" else ()
        party = prompt.fields.partido if spec.kind == "controlled" else ""
        ranked = rank(accepted, prompt.contrasts, topics, self.settings.ranking, self.judge(name), party)
        return TweetResult(
            texts=[r.text for r in ranked],
            model=name,
            prompt_text=prompt.text(),
            params=params,
            seed=seed,
            latency_ms=(time.perf_counter() - started) * 1000,
            first_token_s=min((c.first_token_s for _, c in accepted if c.first_token_s is not None),
                              default=None),
            tokens=[r.tokens for r in ranked],
            tries=tries,
            rejected=rejected,
            shed=req.n - wanted,
            scores=[r.score for r in ranked],
            score_details=[r.detail for r in ranked],
            seeds=[accepted[r.index][1].seed for r in ranked],
            latencies_ms=[latencies[r.index] for r in ranked],
            queue_ms=sum(queued) * 1000 if queued else None,
        )

    async def aclose(self) -> None:
        await self.backend.aclose()
