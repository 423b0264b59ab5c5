"""The remote backend against real ``politico serve`` processes, one of them killed mid-run."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from bot.config import load_settings
from generation.prompts import ControlFields
from generation.serving.backends.local import LocalBackend
from generation.serving.backends.remote import RemoteBackend
from generation.settings import GenerationSettings
from generation.types import EngineBusy, PromptSpec, SamplingParams
from tests.conftest import write_config
from tests.scaleout.conftest import ServeProcess, start_servers

PROMPTS = [
    PromptSpec("controlled", ControlFields(coalicion="Chile Vamos", partido="RN")),
    PromptSpec("controlled", ControlFields(partido="PC", sentimiento="NEGATIVE", hashtags=("#AFP",))),
]
PARAMS = SamplingParams(max_new_tokens=10, temperature=1.0, top_p=0.95)


def remote_settings(local: GenerationSettings, servers: list[ServeProcess]) -> GenerationSettings:
    remote = {"endpoints": [s.url for s in servers], "timeout_s": 20, "failure_threshold": 1, "cooldown_s": 60}
    return local.model_copy(update={"backend": "remote", "remote": local.remote.model_copy(update=remote)})


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> list[ServeProcess]:
    # A wide batch window keeps requests inside the servers long enough to be cut off by a kill.
    started = start_servers(
        tmp_path_factory.mktemp("remote"), tiny_model_dir, 2,
        env={"POLITICO_GENERATION__ENGINE__BATCH_WINDOW_MS": "300"},
    )
    yield started
    for server in started:
        server.terminate()


@pytest.fixture
def local(tmp_path: Path, tiny_model_dir: Path) -> GenerationSettings:
    return load_settings(write_config(tmp_path, tiny_model_dir)).generation


async def test_remote_gives_what_the_local_engine_gives(
    servers: list[ServeProcess], local: GenerationSettings
) -> None:
    """The text prompt the bot sends decodes exactly like the in-process prompt, seed for seed."""
    remote = RemoteBackend(remote_settings(local, servers[:1]))
    in_process = LocalBackend(local)
    try:
        for seed, prompt in enumerate(PROMPTS):
            over_http = await remote.complete("demo", prompt, PARAMS, seed=seed, n=2)
            here = await in_process.complete("demo", prompt, PARAMS, seed=seed, n=2)
            assert [c.text for c in over_http] == [c.text for c in here]
            # OpenAI reports tokens per request, not per choice: only the totals must agree.
            assert sum(c.tokens for c in over_http) == sum(c.tokens for c in here)
    finally:
        await remote.aclose()
        await in_process.aclose()


async def test_an_endpoint_killed_mid_run_loses_no_request(
    servers: list[ServeProcess], local: GenerationSettings
) -> None:
    first, second = servers
    settings = remote_settings(local, servers)
    only_second = RemoteBackend(remote_settings(local, [second]))
    expected = [await only_second.complete("demo", PROMPTS[i % 2], PARAMS, seed=i) for i in range(16)]
    await only_second.aclose()

    remote = RemoteBackend(settings)
    try:
        pending = [
            asyncio.create_task(remote.complete("demo", PROMPTS[i % 2], PARAMS, seed=i)) for i in range(16)
        ]
        async with httpx.AsyncClient() as client:  # kill the first server while it holds requests
            while not re.search(r"^politico_requests_in_flight [1-9]", (await client.get(f"{first.url}/metrics")).text, re.M):
                await asyncio.sleep(0.01)
        first.process.kill()
        results = await asyncio.gather(*pending)
        # Every request was answered, and a retried one got the same seeded text on the survivor.
        assert [[c.text for c in r] for r in results] == [[c.text for c in r] for r in expected]
        assert remote.endpoints[0].breaker.state == "open"
        assert remote.endpoints[1].breaker.state == "closed"

        second.terminate()  # now nothing is left: the caller hears "busy" at once
        with pytest.raises(EngineBusy):
            await remote.complete("demo", PROMPTS[0], PARAMS, seed=99)
    finally:
        await remote.aclose()
