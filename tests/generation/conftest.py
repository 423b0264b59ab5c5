"""Shared pieces of the generation tests: one registry over the tiny model for the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from generation.decoding.sampling import TokenTable
from generation.registry import LoadedModel, ModelRegistry
from generation.serving.engine import Engine
from generation.settings import EngineSettings, GenerationSettings, ModelSpec


def model_specs(model_dir: Path) -> dict[str, ModelSpec]:
    """The tiny model twice: as the controlled "demo" and as a "casual" model."""
    return {
        "demo": ModelSpec(path=str(model_dir), kind="controlled", device="cpu"),
        "casual": ModelSpec(path=str(model_dir), kind="casual", seed_text="Hoy", device="cpu"),
    }


def generation_settings(model_dir: Path, **extra: object) -> GenerationSettings:
    return GenerationSettings.model_validate(
        {"models": {k: v.model_dump() for k, v in model_specs(model_dir).items()}, **extra}
    )


@pytest.fixture(scope="session")
def registry(tiny_model_dir: Path) -> ModelRegistry:
    # One torch thread: on a shared machine, threads fighting over tiny matrices cost 5-10x.
    return ModelRegistry(model_specs(tiny_model_dir), threads=1)


@pytest.fixture(scope="session")
def lm(registry: ModelRegistry) -> LoadedModel:
    return registry.get("demo")


@pytest.fixture(scope="session")
def table(lm: LoadedModel) -> TokenTable:
    return TokenTable(lm.tokenizer, lm.model.get_output_embeddings().out_features)


@pytest.fixture
async def engine_factory(registry: ModelRegistry):
    """Engines over the shared registry with test-friendly settings; closed after the test."""
    engines: list[Engine] = []

    def make(**settings: object) -> Engine:
        values: dict[str, object] = {"batch_window_ms": 2, "request_timeout_s": 20, "drain_timeout_s": 10}
        values.update(settings)
        engine = Engine(registry, EngineSettings(**values))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.aclose(drain=False)
