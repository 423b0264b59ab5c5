"""The in-process backend: prompts tokenized here and decoded by the batching engine."""

from __future__ import annotations

import asyncio
from typing import Any

from generation.prompts import ControlFields, encode_prompt
from generation.registry import LoadedModel, ModelRegistry
from generation.serving.engine import Engine
from generation.settings import GenerationSettings
from generation.types import Completion, PromptSpec, SamplingParams


def encode_casual(tokenizer: Any, seed_text: str = "") -> list[int]:
    """A casual model's prompt: its BOS token, then the seed text the tweet should start with.

    GPT-2 tokenizers without a BOS of their own use ``<|endoftext|>`` (their EOS) as one, which
    is how GPT-2 was trained to start a document.
    """
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if bos is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to start a prompt with")
    return [bos, *tokenizer.encode(seed_text, add_special_tokens=False)] if seed_text else [bos]


def encode(lm: LoadedModel, prompt: PromptSpec) -> tuple[list[int], list[int] | None]:
    """Token ids (and token types, for controlled models) of ``prompt`` for model ``lm``.

    The model's kind decides the layout: a controlled model always gets the thesis's control
    segments, a casual one BOS plus seed text.
    """
    if lm.spec.kind == "controlled":
        return _ids(lm, prompt.fields, prompt.seed_text)
    return encode_casual(lm.tokenizer, prompt.seed_text), None


def _ids(lm: LoadedModel, fields: ControlFields, start: str) -> tuple[list[int], list[int]]:
    encoded = encode_prompt(lm.tokenizer, fields, start)
    return encoded.input_ids, encoded.token_type_ids


class LocalBackend:
    """Runs the configured models in this process (see ``generation.serving.engine``)."""

    def __init__(self, settings: GenerationSettings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(
            dict(settings.models), threads=settings.engine.threads, warmup=settings.engine.warmup
        )
        self.engine = Engine(self.registry, settings.engine)

    async def start(self) -> None:
        """Load the default model now, so the first user does not wait for it."""
        await self.engine.start(preload=[self.settings.default_model] if self.settings.models else [])

    async def complete(
        self, model: str, prompt: PromptSpec, params: SamplingParams, seed: int, n: int = 1
    ) -> list[Completion]:
        self.registry.spec(model)  # UnknownModel before any loading
        lm = (
            self.registry.get(model) if self.registry.is_loaded(model)
            else await asyncio.to_thread(self.registry.get, model)
        )
        ids, types = encode(lm, prompt)
        contrasts, negatives = [], []
        if lm.spec.kind == "controlled":
            contrasts = [_ids(lm, contrast.fields, prompt.seed_text) for contrast in prompt.contrasts]
            if params.contrast_guidance > 0:
                negatives = [_ids(lm, fields, prompt.seed_text) for fields in prompt.negatives]
        return await self.engine.generate(model, ids, types, params, seed, n, contrasts, negatives)

    async def aclose(self) -> None:
        await self.engine.aclose(drain=True)
