"""``politico serve`` driven over HTTP the way an OpenAI-style client drives it."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from generation.decoding.sampling import candidate_seed
from generation.prompts import ControlFields, prompt_text
from generation.serving.server import CompletionRequest
from tests.scaleout.conftest import API_KEY, ServeProcess, start_servers
from tests.support.waiting import until

PROMPT = prompt_text(ControlFields(coalicion="Chile Vamos", partido="RN", sentimiento="POSITIVE"))


@pytest.fixture
def client(serve: ServeProcess) -> httpx.Client:
    with httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as c:
        yield c


def complete(client: httpx.Client, **body: object) -> dict:
    response = client.post("/v1/completions", json={"model": "demo", "prompt": PROMPT, **body})
    assert response.status_code == 200, response.text
    return response.json()


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


def test_completion_has_openai_shape(client: httpx.Client) -> None:
    body = complete(client, max_tokens=8, seed=1)
    assert body["object"] == "text_completion"
    assert body["model"] == "demo"
    assert body["id"].startswith("cmpl-")
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert isinstance(choice["text"], str)
    assert choice["finish_reason"] in {"stop", "length"}
    usage = body["usage"]
    assert 1 <= usage["completion_tokens"] <= 8
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_n_choices_and_seed_reproducibility(client: httpx.Client) -> None:
    first = complete(client, n=3, seed=42, max_tokens=12, temperature=1.0)
    again = complete(client, n=3, seed=42, max_tokens=12, temperature=1.0)
    other = complete(client, n=3, seed=43, max_tokens=12, temperature=1.0)
    texts = [c["text"] for c in first["choices"]]
    assert [c["index"] for c in first["choices"]] == [0, 1, 2]
    assert texts == [c["text"] for c in again["choices"]]
    assert texts != [c["text"] for c in other["choices"]]
    assert len(set(texts)) > 1, "the n candidates of one request should differ"


def test_ignore_eos_generates_exactly_max_tokens(client: httpx.Client) -> None:
    body = complete(client, n=2, seed=3, max_tokens=9, ignore_eos=True)
    assert body["usage"]["completion_tokens"] == 18
    assert {c["finish_reason"] for c in body["choices"]} == {"length"}


def test_stop_string_cuts_the_completion(client: httpx.Client) -> None:
    seeded = {"seed": 5, "max_tokens": 20, "temperature": 1.0, "ignore_eos": True}
    full = complete(client, **seeded)["choices"][0]["text"]
    visible = [i for i in range(2, len(full) - 1) if full[i].isprintable() and not full[i].isspace()]
    assert visible, f"no usable stop string in {full!r}"
    stop = full[visible[0]]
    cut = complete(client, stop=[stop, "never-appears"], **seeded)["choices"][0]
    assert cut["text"] == full[: full.index(stop)]
    assert cut["finish_reason"] == "stop"


def test_token_id_and_batched_prompts(client: httpx.Client) -> None:
    text_body = complete(client, seed=9, max_tokens=6, temperature=0)
    ids = [5, 17, 30, 41]
    body = complete(client, prompt=[ids, ids], seed=9, max_tokens=6, temperature=0)
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["choices"][0]["text"] == body["choices"][1]["text"]
    assert body["usage"]["prompt_tokens"] == 8
    mixed = complete(client, prompt=[PROMPT, "hola"], n=2, seed=9, max_tokens=6, temperature=0)
    assert len(mixed["choices"]) == 4
    assert mixed["choices"][0]["text"] == text_body["choices"][0]["text"]


async def test_concurrent_requests_decode_side_by_side(serve: ServeProcess) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=serve.url, headers=headers, timeout=30) as client:
        async def one(seed: int) -> str:
            r = await client.post("/v1/completions", json={"model": "demo", "prompt": PROMPT, "seed": seed, "max_tokens": 8})
            assert r.status_code == 200, r.text
            return r.json()["choices"][0]["text"]

        def shared_steps() -> float:
            """Steps that decoded more than one row."""
            text = httpx.get(f"{serve.url}/metrics").text
            one_row = float(re.search(r'^politico_engine_step_rows_bucket{le="1"} (\S+)$', text, re.M).group(1))
            every = float(re.search(r"^politico_engine_step_rows_count (\S+)$", text, re.M).group(1))
            return every - one_row

        before = shared_steps()
        together = await asyncio.gather(*(one(seed) for seed in range(12)))
        shared = shared_steps() - before
        alone = [await one(seed) for seed in range(3)]
    assert shared > 0, "12 concurrent requests should have decoded side by side"
    assert together[:3] == alone, "a seeded request must not depend on its batch neighbours"


def test_errors_are_openai_shaped(client: httpx.Client, serve: ServeProcess) -> None:
    url = "/v1/completions"
    assert error_of(client.post(url, json={"model": "nadie", "prompt": "x"}), 404)["code"] == "model_not_found"
    assert error_of(client.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert error_of(client.post(url, json={"model": "demo"}), 400)["param"] == "prompt"
    assert error_of(client.post(url, json={"model": "demo", "prompt": ""}), 400)["param"] == "prompt"
    assert error_of(client.post(url, json={"model": "demo", "prompt": "x", "temperature": -1}), 400)["param"] == "temperature"
    assert error_of(client.post(url, json={"model": "demo", "prompt": "x", "max_tokens": 5000}), 400)["param"] == "max_tokens"
    assert error_of(client.post(url, json={"model": "demo", "prompt": "x", "stream": True}), 400)["param"] == "stream"
    assert error_of(client.post(url, json={"model": "demo", "prompt": [10**7]}), 400)["param"] == "prompt"
    assert error_of(client.get(url), 405)
    assert error_of(client.get("/v1/nada"), 404)
    unauthenticated = httpx.post(f"{serve.url}{url}", json={"model": "demo", "prompt": "x"})
    assert error_of(unauthenticated, 401)["code"] == "invalid_api_key"
    wrong = httpx.get(f"{serve.url}/v1/models", headers={"Authorization": "Bearer otra"})
    assert error_of(wrong, 401)["code"] == "invalid_api_key"


def test_models_health_and_metrics(client: httpx.Client, serve: ServeProcess) -> None:
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["demo"]
    assert models["data"][0]["max_model_len"] == 128
    health = httpx.get(f"{serve.url}/health")  # no token needed, for load balancers
    assert health.status_code == 200
    assert health.json()["models"] == ["demo"]
    complete(client, max_tokens=4)
    client.post("/v1/completions", json={"model": "nadie", "prompt": "x"})
    metrics = httpx.get(f"{serve.url}/metrics").text
    for name in (
        'politico_requests_total{model="demo",status="200"}',
        'politico_errors_total{type="model_not_found"}',
        "politico_request_latency_seconds_bucket",
        "politico_generated_tokens_total",
        "politico_tokens_per_second",
        "politico_engine_queue_depth",
        "politico_engine_step_rows_bucket",
    ):
        assert name in metrics, name


@pytest.fixture
def slow_server(tmp_path: Path, tiny_model_dir: Path) -> Iterator[ServeProcess]:
    """A server of the test's own (it gets a signal), with a one-second batch window that keeps
    requests inside it when the signal lands."""
    (server,) = start_servers(
        tmp_path, tiny_model_dir, 1, env={"POLITICO_GENERATION__ENGINE__BATCH_WINDOW_MS": "1000"}
    )
    yield server
    server.terminate(signal.SIGKILL)


def test_sigterm_finishes_in_flight_requests(slow_server: ServeProcess) -> None:
    """Requests already taken are answered after SIGTERM; then the process exits cleanly."""

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=slow_server.url, timeout=30) as client:
            body = {"model": "demo", "prompt": PROMPT, "max_tokens": 8}
            pending = [asyncio.create_task(client.post("/v1/completions", json=body)) for _ in range(4)]

            async def holding_all() -> bool:
                metrics = (await client.get("/metrics")).text
                return bool(re.search(r"^politico_requests_in_flight 4\.0$", metrics, re.M))

            await until(holding_all, "the server to hold the 4 requests")
            slow_server.process.send_signal(signal.SIGTERM)
            return await asyncio.gather(*pending)

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 4
    # uvicorn re-raises the signal once shut down, so the exit status is "killed by SIGTERM".
    assert slow_server.process.wait(30) in (0, -signal.SIGTERM)
    assert "engine drained and stopped" in slow_server.log()


def test_guide_fields_reach_the_sampling_parameters() -> None:
    params = CompletionRequest(model="demo", prompt="x", guide=["Piñera", ""], guide_bias=8, guide_start_bias=1).params()
    assert (params.guide, params.guide_bias, params.guide_start_bias) == (("Piñera",), 8.0, 1.0)
    assert CompletionRequest(model="demo", prompt="x").params().guide == ()


def test_rank_contrasts_score_every_choice(client: httpx.Client) -> None:
    other = prompt_text(ControlFields(coalicion="Frente Amplio", partido="RD", sentimiento="POSITIVE"))
    body = complete(client, n=2, seed=5, max_tokens=6, rank_contrasts=[other])
    for choice in body["choices"]:
        ranking = choice["ranking"]
        assert len(ranking["logprobs"]) == 2 and all(lp < 0 for lp in ranking["logprobs"])
        assert ranking["tokens"] >= 1
    assert "ranking" not in complete(client, max_tokens=4, seed=5)["choices"][0]


def test_every_choice_says_its_own_seed_and_timings(client: httpx.Client) -> None:
    choices = complete(client, n=2, seed=5, max_tokens=4)["choices"]
    assert [c["candidate"]["seed"] for c in choices] == [candidate_seed(5, i) for i in range(2)]
    assert all(c["candidate"]["done_s"] >= c["candidate"]["queue_s"] >= 0 for c in choices)


def test_negative_prompts_guide_the_choices(client: httpx.Client) -> None:
    other = prompt_text(ControlFields(coalicion="Frente Amplio", partido="RD", sentimiento="POSITIVE"))
    plain = complete(client, n=3, seed=5, max_tokens=8, temperature=1.0)
    unguided = complete(client, n=3, seed=5, max_tokens=8, temperature=1.0, negative_prompts=[other])
    guided = complete(client, n=3, seed=5, max_tokens=8, temperature=1.0, negative_prompts=[other],
                      contrast_guidance=3)
    texts = [[c["text"] for c in body["choices"]] for body in (plain, unguided, guided)]
    assert texts[0] == texts[1]  # negatives without a weight change nothing
    assert texts[2] != texts[0]
    assert texts[2] == [c["text"] for c in complete(
        client, n=3, seed=5, max_tokens=8, temperature=1.0, negative_prompts=[other], contrast_guidance=3)["choices"]]


async def test_a_shed_answer_says_so_and_the_remote_backend_takes_it(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The contract between ``politico serve`` and the remote backend under load: a server that
    sheds candidates answers fewer, marks the body ``shed``, numbers choices per prompt as
    OpenAI does, and the bot's backend takes the answer (and counts it) instead of failing."""
    from generation.serving.backends.remote import RemoteBackend
    from generation.settings import GenerationSettings
    from generation.types import PromptSpec, SamplingParams
    from tests.scaleout.test_remote_unit import shed

    env = {"POLITICO_GENERATION__ENGINE__SHED_ROWS": "2", "POLITICO_GENERATION__ENGINE__SHED_CANDIDATES": "1",
           "POLITICO_GENERATION__ENGINE__BATCH_WINDOW_MS": "50"}
    (server,) = start_servers(tmp_path, tiny_model_dir, 1, env=env)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            body = complete(client, prompt=[PROMPT, PROMPT], n=4, max_tokens=8, seed=1)
        sent = len(body["choices"])
        assert body["shed"] == {"asked": 8, "sent": sent} and 2 <= sent < 8
        indices = [c["index"] for c in body["choices"]]
        assert {i // 4 for i in indices} == {0, 1} and indices == sorted(indices)  # both prompts answered
        scripted = shed(1, 2).json()  # what tests/scaleout/test_remote_unit.py's fake answers
        assert set(scripted) <= set(body) and set(scripted["shed"]) == set(body["shed"])
        assert set(scripted["choices"][0]) <= set(body["choices"][0])

        settings = GenerationSettings.model_validate({
            "backend": "remote", "models": {"demo": {"path": str(tiny_model_dir), "kind": "controlled"}},
            "remote": {"endpoints": [server.url]},
        })
        remote = RemoteBackend(settings)
        prompt, params = PromptSpec("controlled", ControlFields(partido="RN")), SamplingParams(max_new_tokens=8)
        answers = await asyncio.gather(*(remote.complete("demo", prompt, params, seed=s, n=4) for s in (1, 2)))
        await remote.aclose()
        assert sorted(len(a) for a in answers)[0] < 4 and remote.stats.shed >= 1 and remote.stats.failures == {}
    finally:
        server.terminate()
