"""TweetGenerator: defaults and overrides, seeds, post-processing, retries and the blocklist."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from generation.decoding.sampling import candidate_seed
from generation.prompts import ControlFields
from generation.serving.backends import build_backend
from generation.serving.backends.local import LocalBackend
from generation.serving.service import TweetGenerator, TweetRequest, resolve_params, retry_seed
from generation.settings import GenerationSettings
from generation.types import BlockedOutput, Completion, PromptSpec, SamplingParams, UnknownModel
from tests.generation.conftest import generation_settings

PROMPT = PromptSpec("controlled", ControlFields(partido="UDI"))


@dataclass
class FakeBackend:
    """Answers from a script, one list of texts per call, and records what it was asked."""

    script: list[list[str]]
    calls: list[tuple[str, PromptSpec, SamplingParams, int, int]] = field(default_factory=list)
    closed: bool = False

    async def complete(self, model, prompt, params, seed, n=1) -> list[Completion]:
        self.calls.append((model, prompt, params, seed, n))
        texts = self.script.pop(0)
        assert len(texts) <= n, "more candidates than asked"
        return [Completion(t, tokens=len(t.split())) for t in texts]

    async def aclose(self) -> None:
        self.closed = True


def settings(**post: object) -> GenerationSettings:
    return GenerationSettings.model_validate({
        "models": {
            "demo": {"path": "x/demo", "kind": "controlled", "decoding": {"temperature": 0.8, "banned": ["&"]}},
            "guided": {"path": "x/demo", "kind": "controlled", "decoding": {"guide_bias": 8.0}},
            "derecha": {"path": "x/der", "kind": "casual", "seed_text": "Hoy"},
        },
        "postprocess": {"min_chars": 12, "max_tries": 3, "blocklist": ["tonto"], **post},
    })


GOOD = "Vamos a defender la educación pública en todo Chile"


async def test_default_model_defaults_and_a_recorded_seed() -> None:
    backend = FakeBackend([[GOOD + "<|endoftext|>basura"]])
    result = await TweetGenerator(settings(), backend).generate(TweetRequest(None, PROMPT, seed=77))
    assert result.texts == [GOOD]
    assert result.model == "demo" and result.seed == 77 and result.tries == 1
    assert result.params.temperature == 0.8 and result.params.banned == ("&",)
    assert result.prompt_text == " [PARTIDO] UDI [SENTIMIENTO] NEUTRAL [TWEET] "
    assert result.tokens == [len((GOOD + "<|endoftext|>basura").split())]
    assert backend.calls[0][0] == "demo" and backend.calls[0][3] == 77
    assert result.latency_ms >= 0 and result.rejected == []


async def test_a_seed_is_drawn_when_none_is_given() -> None:
    seeds = set()
    for _ in range(3):
        backend = FakeBackend([[GOOD]])
        seeds.add((await TweetGenerator(settings(), backend).generate(TweetRequest(None, PROMPT))).seed)
        assert backend.calls[0][3] in seeds
    assert len(seeds) > 1


async def test_rejected_candidates_are_regenerated_with_derived_seeds() -> None:
    backend = FakeBackend([["", "Qué gobierno más tonto de verdad", GOOD], ["jajajajajajajajaja", "corto"], [GOOD + " hoy", "!!"]])
    result = await TweetGenerator(settings(), backend).generate(TweetRequest("demo", PROMPT, seed=5, n=3))
    assert result.texts == [GOOD, GOOD + " hoy"]
    assert [c[4] for c in backend.calls] == [3, 2, 2]
    assert [c[3] for c in backend.calls] == [retry_seed(5, 0), retry_seed(5, 1), retry_seed(5, 2)]
    assert len({c[3] for c in backend.calls}) == 3
    assert result.tries == 3
    assert [r for _, r in result.rejected] == ["empty", "blocklist", "degenerate", "too_short", "too_short"]


async def test_fewer_candidates_from_a_loaded_engine_are_the_request_now() -> None:
    """An engine that shed candidates under load is not asked again for the missing ones; a
    rejected candidate still is."""
    backend = FakeBackend([[GOOD, "corto"], [GOOD + " hoy"]])
    result = await TweetGenerator(settings(), backend).generate(TweetRequest("demo", PROMPT, seed=5, n=8))
    assert [c[4] for c in backend.calls] == [8, 1]
    assert result.texts == [GOOD, GOOD + " hoy"]


async def test_nothing_acceptable_raises_blocked_output() -> None:
    backend = FakeBackend([["tonto tonto"], [""], ["Eres un tonto, eso pasa"]])
    with pytest.raises(BlockedOutput, match="3 tries"):
        await TweetGenerator(settings(), backend).generate(TweetRequest(None, PROMPT, seed=1))
    assert len(backend.calls) == 3


async def test_guided_models_aim_at_the_prompts_entities_and_hashtags() -> None:
    prompt = PromptSpec("controlled", ControlFields(entidades=("Piñera",), hashtags=("Pensiones",)))
    for model, expected in (("guided", ("Piñera", "#Pensiones")), ("demo", ())):
        backend = FakeBackend([[GOOD]])
        result = await TweetGenerator(settings(), backend).generate(TweetRequest(model, prompt, seed=1))
        assert result.params.guide == expected
        assert backend.calls[0][2].guide == expected


async def test_casual_models_start_from_their_seed_text() -> None:
    backend = FakeBackend([[" vamos con todo por las familias de Chile"]])
    result = await TweetGenerator(settings(), backend).generate(
        TweetRequest("derecha", PromptSpec("controlled", ControlFields(partido="UDI")), seed=3)
    )
    sent = backend.calls[0][1]
    assert sent.kind == "casual" and sent.seed_text == "Hoy"
    assert result.texts == ["Hoy vamos con todo por las familias de Chile"]


async def test_overrides_are_applied_and_checked() -> None:
    spec = settings().models["demo"]
    params = resolve_params(spec, {"temperature": 0.0, "num_beams": 10, "stop": ["\n"], "ignore_eos": True, "top_k": None})
    assert (params.temperature, params.num_beams, params.stop, params.ignore_eos) == (0.0, 10, ("\n",), True)
    assert params.top_p == 0.9  # untouched default
    with pytest.raises(ValueError, match="temperature"):
        resolve_params(spec, {"temperature": 99})
    with pytest.raises(ValueError, match="unknown decoding options"):
        resolve_params(spec, {"temprature": 1.0})
    gen = TweetGenerator(settings(), FakeBackend([]))
    with pytest.raises(UnknownModel):
        await gen.generate(TweetRequest("nadie", PROMPT))
    with pytest.raises(ValueError, match="n must"):
        await gen.generate(TweetRequest(None, PROMPT, n=0))


async def test_aclose_closes_the_backend() -> None:
    backend = FakeBackend([])
    await TweetGenerator(settings(), backend).aclose()
    assert backend.closed


async def test_over_the_local_backend_the_same_seed_gives_the_same_tweets(tiny_model_dir: Path) -> None:
    config = generation_settings(tiny_model_dir, postprocess={"min_chars": 1, "max_tries": 5})
    backend = build_backend(config)
    assert isinstance(backend, LocalBackend)
    await backend.start()
    assert backend.registry.is_loaded("demo")
    generator = TweetGenerator(config, backend)
    try:
        request = TweetRequest(None, PROMPT, seed=123, n=2, overrides={"max_new_tokens": 12, "top_p": 1.0})
        first = await generator.generate(request)
        second = await generator.generate(request)
        assert first.texts == second.texts and len(first.texts) == 2
        # The engine says each candidate's own seed and timings; the retry seed of try 0 is 123.
        assert sorted(first.seeds) == sorted(candidate_seed(123, i) for i in range(2))
        assert first.queue_ms is not None and all(ms >= first.queue_ms for ms in first.latencies_ms)
        casual = await generator.generate(TweetRequest("casual", PromptSpec("casual"), seed=1, overrides={"top_p": 1.0}))
        assert casual.texts[0].startswith("Hoy")
    finally:
        await generator.aclose()
    assert backend.engine.stats()["closed"]


def test_remote_backend_is_built_lazily(tiny_model_dir: Path) -> None:
    pytest.importorskip("generation.serving.backends.remote")
    config = generation_settings(tiny_model_dir, backend="remote", remote={"endpoints": ["http://127.0.0.1:9/v1"]})
    assert type(build_backend(config)).__name__ == "RemoteBackend"


async def test_time_to_first_token_is_carried_when_the_backend_says() -> None:
    """The in-process engine stamps each completion; the result keeps the earliest accepted."""

    @dataclass
    class TimedBackend(FakeBackend):
        async def complete(self, model, prompt, params, seed, n=1) -> list[Completion]:
            done = await super().complete(model, prompt, params, seed, n)
            return [replace(c, first_token_s=(0.5, 0.25)[i]) for i, c in enumerate(done)]

    generator = TweetGenerator(settings(), TimedBackend([[GOOD, GOOD + " hoy"]]))
    assert (await generator.generate(TweetRequest(None, PROMPT, seed=1, n=2))).first_token_s == 0.25
    remote_like = TweetGenerator(settings(), FakeBackend([[GOOD]]))
    assert (await remote_like.generate(TweetRequest(None, PROMPT, seed=1))).first_token_s is None


async def test_each_candidate_keeps_its_own_seed_and_latency_in_ranked_order() -> None:
    """The ranker reorders candidates; each keeps the seed and timings the backend gave it."""

    @dataclass
    class OwnSeeds(FakeBackend):
        async def complete(self, model, prompt, params, seed, n=1) -> list[Completion]:
            done = await super().complete(model, prompt, params, seed, n)
            return [replace(c, seed=seed * 10 + i, queue_s=0.125, done_s=(1.0, 0.5)[i]) for i, c in enumerate(done)]

    guided = PromptSpec("controlled", ControlFields(partido="UDI", entidades=("pensiones",)))
    backend = OwnSeeds([[GOOD, GOOD + " y las pensiones"]])
    result = await TweetGenerator(settings(), backend).generate(TweetRequest(None, guided, seed=7, n=2))
    assert result.texts[0].endswith("pensiones")  # names the topic: ranked first
    assert result.seeds == [71, 70]
    second, first = result.latencies_ms
    assert second >= 500 and first >= 1000 and first - second == pytest.approx(500)
    assert result.queue_ms == pytest.approx(125)


async def test_a_backend_that_cannot_say_gives_each_candidate_its_rounds_end() -> None:
    """No seeds or timings from the backend: seeds unknown, no queue time, and a retry's
    candidate is logged as finishing after the first round's."""
    backend = FakeBackend([[GOOD, "corto"], [GOOD + " hoy"]])
    result = await TweetGenerator(settings(), backend).generate(TweetRequest(None, PROMPT, seed=7, n=2))
    assert result.tries == 2 and result.seeds == [None, None] and result.queue_ms is None
    by_text = dict(zip(result.texts, result.latencies_ms, strict=True))
    assert by_text[GOOD + " hoy"] >= by_text[GOOD] >= 0
