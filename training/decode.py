"""Tweets for ``evaluate``, written exactly as the bot writes them.

The bot's own generation service (engine, decoding, topic guidance, post-processing, candidate
ranking) runs here over the model folder, so what ``evaluate`` measures is what users get, and
a decoding or ranking setting is tried by passing it, not by copying code. Decoding and ranking
defaults can be read from the bot's ``config.toml`` (one model's ``decoding`` table and the
``[generation.ranking]`` table), then overridden one key at a time.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from generation.serving.backends.local import LocalBackend
from generation.serving.service import TweetGenerator, TweetRequest
from generation.settings import (
    Decoding,
    EngineSettings,
    GenerationSettings,
    ModelSpec,
    RankingSettings,
)
from generation.types import GenerationError, PromptSpec
from training.errors import InputError

NAME = "evaluated"


@dataclass
class Drawn:
    """One prompt's outcome: the candidates best first, their scores and parts ([] if blocked)."""

    texts: list[str]
    scores: list[float] = field(default_factory=list)
    details: list[dict[str, float]] = field(default_factory=list)


def bot_settings(config: Path | None, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(decoding, ranking)`` tables of ``model`` in the bot's config ({} without a config)."""
    if config is None:
        return {}, {}
    try:
        table = tomllib.loads(config.read_text(encoding="utf-8")).get("generation", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{config}: {exc}") from exc
    spec = table.get("models", {}).get(model)
    if spec is None:
        raise InputError(f"{config}: no [generation.models.{model}]")
    return dict(spec.get("decoding", {})), dict(table.get("ranking", {}))


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs, values read as TOML (numbers, booleans, ``["…"]``) or plain text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected key=value, got {item!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value
    return out


def settings_for(model: str, kind: str, decoding: dict[str, Any], ranking: dict[str, Any],
                 threads: int) -> GenerationSettings:
    """One model's generation settings, checked as the bot checks its config."""
    try:
        return GenerationSettings(
            default_model=NAME,
            models={NAME: ModelSpec(path=str(Path(model).resolve()), kind=kind,
                                    decoding=Decoding.model_validate(decoding))},
            engine=EngineSettings(threads=threads, request_timeout_s=3600, queue_size=100_000, warmup=False),
            ranking=RankingSettings.model_validate(ranking),
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InputError(f"{'.'.join(map(str, error['loc']))}: {error['msg']}") from None


async def _draw(settings: GenerationSettings, prompts: Sequence[PromptSpec], candidates: int, seed: int,
                timed: int, progress: bool) -> tuple[list[Drawn], list[float]]:
    from tqdm.auto import tqdm

    backend = LocalBackend(settings)
    generator = TweetGenerator(settings, backend)
    try:
        await backend.start()

        async def one(index: int, prompt: PromptSpec) -> Drawn:
            try:
                result = await generator.generate(TweetRequest(NAME, prompt, seed=seed + index, n=candidates))
            except GenerationError:
                return Drawn([])
            return Drawn(result.texts, result.scores, result.score_details)

        # The first prompts one at a time, timed, as a lone user of the bot would see them.
        first: list[Drawn] = []
        latencies = []
        for index, prompt in enumerate(prompts[:timed]):
            started = time.perf_counter()
            first.append(await one(index, prompt))
            latencies.append((time.perf_counter() - started) * 1000)
        # Then the rest, a few at a time so the engine batches them (a seed per prompt, so a
        # prompt's tweets do not depend on which way it ran).
        gate = asyncio.Semaphore(4)
        bar = tqdm(total=len(prompts), initial=len(first), desc="generating", disable=not progress)

        async def gated(index: int, prompt: PromptSpec) -> Drawn:
            async with gate:
                drawn = await one(index, prompt)
            bar.update()
            return drawn

        rest = await asyncio.gather(*(gated(i, p) for i, p in enumerate(prompts) if i >= len(first)))
        bar.close()
        return [*first, *rest], latencies
    finally:
        await generator.aclose()


def draw(settings: GenerationSettings, prompts: Sequence[PromptSpec], candidates: int, seed: int,
         timed: int = 20, progress: bool = True) -> tuple[list[Drawn], dict[str, float]]:
    """Every prompt's ranked candidates, and the latency of ``timed`` lone requests (ms)."""
    drawn, latencies = asyncio.run(_draw(settings, prompts, candidates, seed, timed, progress))
    stats = {}
    if latencies:
        ordered = sorted(latencies)
        stats = {"latency_ms_median": statistics.median(ordered),
                 "latency_ms_p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
                 "latency_requests": len(ordered)}
    return drawn, stats
