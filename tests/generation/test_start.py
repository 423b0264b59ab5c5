"""A tweet that starts with the user's words (``/tuit … empieza: "…"``): the controlled model
goes on after its tweet marker, a casual model from its prompt, in process and over ``politico
serve`` alike; ranking and guidance keep working."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from generation.decoding.ranking import contrasts_for
from generation.prompts import ControlFields
from generation.serving.backends.local import LocalBackend
from generation.serving.backends.remote import RemoteBackend
from generation.serving.server import CompletionsServer
from generation.serving.service import TweetGenerator, TweetRequest, TweetResult
from generation.settings import GenerationSettings
from generation.types import PromptSpec

#: Tokenized together with the marker, " [TWEET] salud…" would differ (" s" is one token).
START = "salud digna para las familias"
FIELDS = ControlFields(partido="RN", sentimiento="POSITIVE", entidades=("pensiones",))
#: What the bot sends: the other sides and sentiments to rank against, a side to lean away from.
PROMPT = PromptSpec(
    "controlled", FIELDS, seed_text=START,
    contrasts=contrasts_for(FIELDS, [("Nueva Mayoría", "PC")], ["NEGATIVE"]),
    negatives=(ControlFields(partido="PC", sentimiento="POSITIVE", entidades=("pensiones",)),),
)


@pytest.fixture
def config(tiny_model_dir: Path) -> GenerationSettings:
    decoding = {"max_new_tokens": 10, "top_p": 1.0, "guide_bias": 4.0, "guide_start_bias": 1.0,
                "contrast_guidance": 1.0}
    return GenerationSettings.model_validate({
        "models": {
            "demo": {"path": str(tiny_model_dir), "kind": "controlled", "device": "cpu", "decoding": decoding},
            "casual": {"path": str(tiny_model_dir), "kind": "casual", "seed_text": "Hoy", "device": "cpu"},
        },
        "postprocess": {"min_chars": 1, "max_tries": 5},
        "engine": {"batch_window_ms": 2, "request_timeout_s": 30},
    })


def remote(config: GenerationSettings) -> GenerationSettings:
    return config.model_copy(update={
        "backend": "remote", "remote": config.remote.model_copy(update={"endpoints": ["http://serve/v1"]}),
    })


async def both(generator: TweetGenerator, seed: int, n: int) -> tuple[TweetResult, TweetResult]:
    """A controlled and a casual tweet with the start, then the generator closed."""
    try:
        controlled = await generator.generate(TweetRequest(None, PROMPT, seed=seed, n=n))
        casual = await generator.generate(TweetRequest("casual", PromptSpec("casual", seed_text=START), seed=seed))
    finally:
        await generator.aclose()
    return controlled, casual


async def test_controlled_and_casual_tweets_begin_with_the_start_and_are_ranked(config: GenerationSettings) -> None:
    result, casual = await both(TweetGenerator(config, LocalBackend(config)), seed=5, n=3)
    assert result.prompt_text.endswith(f"[TWEET] {START}")
    assert all(text.startswith(START) for text in result.texts), result.texts
    assert any(len(text) > len(START) for text in result.texts)  # and it went on
    # Ranked against the other side's and sentiment's prompts (each ending with the start too).
    assert len(result.scores) == len(result.texts) and {"side", "sentiment"} <= set(result.score_details[0])
    assert result.params.guide == ("pensiones",) and result.params.contrast_guidance == 1.0
    assert casual.texts[0].startswith(START) and casual.prompt_text == START


async def test_over_politico_serve_a_start_decodes_as_in_process(config: GenerationSettings) -> None:
    """The remote backend sends the prompt as text: the server must cut the start off the tweet
    marker as the in-process backend does, so the same seed writes the same tweets."""
    local, local_casual = await both(TweetGenerator(config, LocalBackend(config)), seed=9, n=2)
    server = CompletionsServer(config)
    app = server.app()
    async with server.lifespan(app):
        backend = RemoteBackend(remote(config), transport=httpx.ASGITransport(app=app))
        result, casual = await both(TweetGenerator(remote(config), backend), seed=9, n=2)
    assert result.texts == local.texts and all(t.startswith(START) for t in result.texts)
    assert result.scores == pytest.approx(local.scores, abs=1e-3)
    assert casual.texts == local_casual.texts and casual.texts[0].startswith(START)
