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
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    num_beams: int = 1
    ignore_eos: bool = False
    stop: tuple[str, ...] = ()
    #: Strings the model may never produce (the thesis banned "…" and "&").
    banned: tuple[str, ...] = ()
    #: Topics the tweet should name, and how hard to push toward them (generation/guidance.py).
    guide: tuple[str, ...] = ()
    guide_start_bias: float = 0.0
    guide_bias: float = 0.0


@dataclass(frozen=True)
class PromptSpec:
    """A prompt before tokenization: controlled (control fields) or casual (BOS + seed text)."""

    kind: PromptKind
    fields: ControlFields = field(default_factory=ControlFields)
    seed_text: str = ""

    def text(self) -> str:
        """The prompt as plain text, for servers that tokenize it themselves."""
        if self.kind == "controlled":
            return prompt_text(self.fields)
        return self.seed_text


@dataclass(frozen=True)
class Completion:
    """One raw continuation as the model produced it (before post-processing)."""

    text: str
    tokens: int
    finish_reason: Literal["stop", "length"] = "length"


class GenerationError(Exception):
    """Base of the errors a backend raises; each has a user-facing meaning."""


class EngineBusy(GenerationError):
    """The queue is full: the request was refused at once rather than left waiting."""


class GenerationTimeout(GenerationError):
    """The request did not finish within its time limit."""


class EngineClosed(GenerationError):
    """The engine is draining or stopped and takes no new work."""


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
