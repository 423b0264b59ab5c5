"""What crosses the boundary between the bot and a generation backend.

Kept free of torch so that the bot, the remote backend and the HTTP server can share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from generation.prompts import ControlFields, prompt_text

PromptKind = Literal["controlled", "casual"]


@dataclass(frozen=True)
class SamplingParams:
    """Decoding parameters of one request; rows of one batch may each have their own."""

    max_new_tokens: int = 60
    min_new_tokens: int = 0
    temperature: float = 0.9
    top_p: float = 0.9
    top_k: int = 0
    #: Min-p: drop tokens less likely than ``min_p`` × the most likely one (0 = off).
    min_p: float = 0.0
    #: Locally typical sampling: keep the tokens closest to the expected surprise, up to this
    #: mass (1 = off).
    typical_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    num_beams: int = 1
    ignore_eos: bool = False
    stop: tuple[str, ...] = ()
    #: Strings the model may never produce (the thesis banned "…" and "&").
    banned: tuple[str, ...] = ()
    #: Topics the tweet should name, and how hard to push toward them (generation/decoding/guidance.py).
    guide: tuple[str, ...] = ()
    guide_start_bias: float = 0.0
    guide_bias: float = 0.0
    #: Contrast guidance: how hard each step leans away from the negative prompts (the other
    #: sides' controls) toward the requested ones (generation/decoding/contrast.py); 0 = off.
    contrast_guidance: float = 0.0


@dataclass(frozen=True)
class Contrast:
    """Another prompt a candidate is scored after; ``group`` says which control it varies."""

    group: Literal["side", "sentiment"]
    fields: ControlFields


@dataclass(frozen=True)
class PromptSpec:
    """A prompt before tokenization: controlled (control fields) or casual (BOS + seed text).

    ``seed_text`` is the tweet's start either way: a casual model's whole prompt, and for a
    controlled model the words after the tweet marker (``empieza: "Hoy en La Moneda"``); the
    contrast and negative prompts end with it too, so every prompt scores the same continuation.

    ``contrasts`` asks the backend to rank: each candidate is also scored after these other
    controlled prompts (the other sides, the other sentiments), and a tweet that the requested
    controls explain better than the contrasts fits the request (``generation/decoding/ranking.py``).
    ``negatives`` are the other sides' prompts that decoding leans away from when the model's
    ``contrast_guidance`` is on (``generation/decoding/contrast.py``).
    """

    kind: PromptKind
    fields: ControlFields = field(default_factory=ControlFields)
    seed_text: str = ""
    contrasts: tuple[Contrast, ...] = ()
    negatives: tuple[ControlFields, ...] = ()

    def text(self) -> str:
        """The prompt as plain text, for servers that tokenize it themselves."""
        if self.kind == "controlled":
            return prompt_text(self.fields, self.seed_text)
        return self.seed_text


@dataclass(frozen=True)
class Completion:
    """One raw continuation as the model produced it (before post-processing).

    ``logprobs``, when the request asked for ranking: the continuation's (plus EOS) summed
    log-probability after the prompt, then after each contrast prompt, in order; ``scored``
    is how many tokens that counts.
    """

    text: str
    tokens: int
    finish_reason: Literal["stop", "length"] = "length"
    logprobs: tuple[float, ...] = ()
    scored: int = 0
    #: Seconds from the request reaching the engine to this completion's first token (the
    #: in-process engine sets it; remote servers cannot say, so it stays None).
    first_token_s: float | None = field(default=None, compare=False)
    #: This candidate's own seed, which reproduces it alone (None: the backend cannot say).
    seed: int | None = field(default=None, compare=False)
    #: Seconds from the request reaching the backend to its decoding starting (the time it
    #: queued) and to this candidate being written; None where the backend cannot say.
    queue_s: float | None = field(default=None, compare=False)
    done_s: float | None = field(default=None, compare=False)


class GenerationError(Exception):
    """Base of the errors a backend raises; each has a user-facing meaning."""


class EngineBusy(GenerationError):
    """The queue is full: the request was refused at once rather than left waiting."""


class GenerationTimeout(GenerationError):
    """The request did not finish within its time limit."""


class EngineClosed(GenerationError):
    """The engine is draining or stopped and takes no new work."""


class EngineUnhealthy(EngineClosed):
    """A device error left the engine unusable (a CUDA error other than running out of
    memory): it takes no work until the process is restarted."""


class UnknownModel(GenerationError):
    """No model of that name is configured."""


class Backend(Protocol):
    """Where completions come from: the in-process engine or a remote completions server."""

    async def complete(
        self, model: str, prompt: PromptSpec, params: SamplingParams, seed: int, n: int = 1
    ) -> list[Completion]:
        """``n`` continuations of ``prompt``; the same seed gives the same continuations."""
        ...

    async def aclose(self) -> None:
        """Finish or cancel in-flight work and release resources."""
        ...


class BlockedOutput(GenerationError):
    """Every candidate was rejected (empty, degenerate or blocklisted), retries included."""
