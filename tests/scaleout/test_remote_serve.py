"""The remote backend against real ``politico serve`` processes, one of them killed mid-run.

The test that kills servers starts its own: the shared ``serve`` fixture is never stopped here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.config import load_settings
from generation.prompts import ControlFields
from generation.serving.backends.local import LocalBackend
from generation.serving.backends.remote import RemoteBackend
from generation.settings import GenerationSettings
from generation.types import EngineBusy, PromptSpec, SamplingParams
from tests.scaleout.conftest import API_KEY, ServeProcess, start_servers
from tests.support.waiting import until

PROMPTS = [
    PromptSpec("controlled", ControlFields(coalicion="Chile Vamos", partido="RN")),
    PromptSpec("controlled", ControlFields(partido="PC", sentimiento="NEGATIVE", hashtags=("#AFP",))),
]
PARAMS = SamplingParams(max_new_tokens=10, temperature=1.0, top_p=0.95)


def remote_settings(
    local: GenerationSettings, servers: list[ServeProcess], api_key: str = ""
) -> GenerationSettings:
    remote = {"endpoints": [s.url for s in servers], "timeout_s": 20, "failure_threshold": 1,
              "cooldown_s": 60, "api_key": api_key}
    return local.model_copy(update={"backend": "remote", "remote": local.remote.model_copy(update=remote)})


@pytest.fixture
def doomed(tmp_path: Path, tiny_model_dir: Path) -> Iterator[list[ServeProcess]]:
    """Two servers of this test's own, for it to kill."""
    # A wide batch window keeps requests inside the servers long enough to be cut off by a kill.
    started = start_servers(
        tmp_path / "remote", tiny_model_dir, 2, env={"POLITICO_GENERATION__ENGINE__BATCH_WINDOW_MS": "300"},
    )
    yield started
    for server in started:
        server.terminate()


@pytest.fixture
def local(config_path: Path) -> GenerationSettings:
    return load_settings(config_path).generation


async def test_remote_gives_what_the_local_engine_gives(serve: ServeProcess, local: GenerationSettings) -> None:
    """The text prompt the bot sends decodes exactly like the in-process prompt, seed for seed."""
    remote = RemoteBackend(remote_settings(local, [serve], API_KEY))
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
    doomed: list[ServeProcess], local: GenerationSettings
) -> None:
    first, second = doomed
    settings = remote_settings(local, doomed)
    only_second = RemoteBackend(remote_settings(local, [second]))
    expected = [await only_second.complete("demo", PROMPTS[i % 2], PARAMS, seed=i) for i in range(16)]
    await only_second.aclose()

    remote = RemoteBackend(settings)
    try:
        pending = [
            asyncio.create_task(remote.complete("demo", PROMPTS[i % 2], PARAMS, seed=i)) for i in range(16)
        ]
        async with httpx.AsyncClient() as client:  # kill the first server while it holds requests
            async def holding() -> bool:
                metrics = (await client.get(f"{first.url}/metrics")).text
                return bool(re.search(r"^politico_requests_in_flight [1-9]", metrics, re.M))

            await until(holding, "the first server to hold requests")
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
