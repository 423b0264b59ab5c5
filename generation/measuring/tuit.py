"""One ``/tuit`` of the demo model, timed the way a user waits for it: the bench's ``tuit`` phase.

What the bot does for one tweet is more than plain decoding: 8 candidates in one batch, topic
guidance, contrast guidance (a negative line per other side through decoding), post-processing,
and the ranking pass that scores every candidate after the requested prompt and its contrasts.
So the phase goes through the bot's own generation service (``TweetGenerator`` over the
in-process engine) with the model's decoding table and ``[generation.ranking]`` from
``config.toml``, and reports the median and 90th percentile of lone requests, as
``politico-train evaluate`` does for its latency.

The engine's room never imports the bot, so the request the bot builds for
``/tuit piñera positivo pensiones`` from the shipped config is written out here;
``tests/generation/test_bench.py`` checks it against the bot's own plan.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import torch

from generation.config import ConfigError, ServeSettings, load_config
from generation.decoding.ranking import contrasts_for, negatives_for
from generation.measuring.percentiles import percentile
from generation.prompts import SENTIMENTS, ControlFields
from generation.serving.backends.local import LocalBackend
from generation.serving.service import TweetGenerator, TweetRequest
from generation.settings import GenerationSettings
from generation.types import BlockedOutput, PromptSpec

#: ``[bot] candidates`` in the shipped config.toml: tweets sampled per request, in one batch.
CANDIDATES = 8
#: ``/tuit piñera positivo pensiones`` as the bot's catalog resolves it.
FIELDS = ControlFields("Chile Vamos", "IND-RN", "POSITIVE", ("pensiones",))
#: The parties of every other side, most weighted first (the catalog's order); parties the
#: model never saw (weight 0) are not there.
OTHER_SIDES: tuple[tuple[tuple[str, str], ...], ...] = (
    (("Convergencia Democrática", "PDC"),),
    (("Nueva Mayoría", "IND-PR"), ("Frente Amplio", "IND-FA"), ("Independiente", "PRO"),
     ("Independiente", "PAIS"), ("Independiente", "UPA")),
)
#: Untimed requests first: the first request of a shape pays for lazy initialisation.
WARMUP_REQUESTS = 2


def prompt(side_contrasts: int) -> PromptSpec:
    """The bot's prompt for the request: ranking contrasts (``side_contrasts`` parties per other
    side, then the other sentiments) and one negative per other side for contrast guidance."""
    sides = [pair for parties in OTHER_SIDES for pair in parties[:side_contrasts]]
    sentiments = [s for s in SENTIMENTS if s != FIELDS.sentimiento]
    return PromptSpec(
        "controlled", fields=FIELDS, contrasts=contrasts_for(FIELDS, sides, sentiments),
        negatives=negatives_for(FIELDS, [parties[0] for parties in OTHER_SIDES]),
    )


def settings(config: str | None, demo: Path | None, device: torch.device, threads: int) -> GenerationSettings:
    """The config's ``[generation]`` table reduced to its default model, loaded on ``device``
    (from ``demo`` when given) in the engine of this process.

    On a GPU the model runs in the registry's default dtype there (bfloat16, else float16),
    never int8 (CPU only). Raises ``ConfigError`` naming the problem.
    """
    generation = load_config(ServeSettings, config).generation
    name = generation.default_model
    spec = generation.models.get(name)
    if spec is None:
        raise ConfigError(f"{config or 'config.toml'}: no [generation.models.{name}] for the tuit phase")
    update: dict[str, Any] = {"device": device.type, "dtype": "auto"}
    if demo is not None:
        update["path"] = str(demo.expanduser().resolve())
    if device.type != "cpu":
        update["quantize"] = "none"
    engine = generation.engine.model_copy(update={"threads": threads}) if threads else generation.engine
    return generation.model_copy(update={
        "backend": "local", "models": {name: spec.model_copy(update=update)}, "engine": engine,
    })


async def phase(config: GenerationSettings, requests: int) -> dict[str, Any]:
    """``requests`` lone requests (seeds 0, 1, …) after the warm-up; latencies in ms.

    A request whose candidates were all rejected still counts: the user waited for it too.
    """
    backend = LocalBackend(config)
    generator = TweetGenerator(config, backend)
    request = prompt(config.ranking.side_contrasts)

    async def one(seed: int) -> tuple[float, bool]:
        started = time.perf_counter()
        try:
            await generator.generate(TweetRequest(None, request, seed=seed, n=CANDIDATES))
        except BlockedOutput:
            return time.perf_counter() - started, False
        return time.perf_counter() - started, True

    try:
        await backend.start()
        for seed in range(WARMUP_REQUESTS):
            await one(1_000_000 + seed)
        timed = [await one(seed) for seed in range(requests)]
        lm = backend.registry.get(config.default_model)
    finally:
        await generator.aclose()
    ordered = sorted(seconds * 1000 for seconds, _ in timed)
    decoding = config.models[config.default_model].decoding
    return {
        "requests": len(ordered),
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(percentile(ordered, 0.9), 1),
        "mean_ms": round(statistics.fmean(ordered), 1),
        "blocked": sum(not ok for _, ok in timed),
        "candidates": CANDIDATES,
        "ranking_contrasts": len(request.contrasts) if config.ranking.enabled else 0,
        "negative_prompts": len(request.negatives) if decoding.contrast_guidance > 0 else 0,
        "model": lm.spec.path,
        "device": str(lm.device),
        "dtype": str(lm.dtype).removeprefix("torch."),
    }
