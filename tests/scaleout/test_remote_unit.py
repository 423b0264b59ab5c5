"""The remote backend's failover rules, against scripted endpoints (``httpx.MockTransport``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace

import httpx
import pytest

from generation.prompts import ControlFields, prompt_text
from generation.serving.backends.remote import (
    CircuitBreaker,
    MalformedResponse,
    RemoteBackend,
    normalise_base_url,
    parse_choices,
)
from generation.settings import GenerationSettings
from generation.types import (
    Contrast,
    EngineBusy,
    EngineClosed,
    GenerationError,
    GenerationTimeout,
    PromptSpec,
    SamplingParams,
    UnknownModel,
)

A, B = "http://a.test:8000/v1", "http://b.test:8000/v1"
PROMPT = PromptSpec("controlled", ControlFields(partido="RN"))
PARAMS = SamplingParams(max_new_tokens=7, stop=("\n",), banned=("…",))


def settings(**remote: object) -> GenerationSettings:
    return GenerationSettings.model_validate({
        "backend": "remote",
        "models": {"demo": {"path": "/nowhere", "kind": "controlled"}},
        "remote": {"endpoints": [A, B], "failure_threshold": 2, "cooldown_s": 60, **remote},
    })


def ok(n: int = 1) -> httpx.Response:
    choices = [{"index": i, "text": f" tuit {i}", "finish_reason": "stop"} for i in range(n)]
    return httpx.Response(200, json={"choices": choices, "usage": {"completion_tokens": 3 * n}})


Handler = Callable[[httpx.Request], httpx.Response]


class Endpoints:
    """Scripted answers per host, and a record of which host got each request."""

    def __init__(self, **handlers: Handler) -> None:
        self.handlers = handlers
        self.calls: list[str] = []
        self.bodies: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        self.calls.append(host)
        self.bodies.append(json.loads(request.content))
        return self.handlers[host](request)


def backend(endpoints: Endpoints, **remote: object) -> RemoteBackend:
    return RemoteBackend(settings(**remote), transport=httpx.MockTransport(endpoints))


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_base_urls_end_in_v1() -> None:
    assert normalise_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalise_base_url("http://h:8000/v1/") == "http://h:8000/v1"


async def test_request_body_carries_prompt_text_and_sampling() -> None:
    endpoints = Endpoints(a=lambda r: ok(2), b=lambda r: ok(2))
    remote = backend(endpoints, served_names={"demo": "politico-demo"})
    out = await remote.complete("demo", PROMPT, PARAMS, seed=1234, n=2)
    assert [c.text for c in out] == [" tuit 0", " tuit 1"]
    assert [c.tokens for c in out] == [3, 3]
    body = endpoints.bodies[0]
    assert body["model"] == "politico-demo"
    assert body["prompt"] == prompt_text(ControlFields(partido="RN"))
    assert (body["seed"], body["n"], body["max_tokens"], body["stop"]) == (1234, 2, 7, ["\n"])
    assert body["bad_words"] == ["…"]
    assert "no_repeat_ngram_size" not in body and "guide" not in body
    guided = replace(PARAMS, guide=("Piñera",), guide_bias=8.0)
    await remote.complete("demo", PROMPT, guided, seed=1, n=2)
    assert endpoints.bodies[1]["guide"] == ["Piñera"] and endpoints.bodies[1]["guide_bias"] == 8.0
    await remote.aclose()


async def test_requests_take_turns_over_endpoints() -> None:
    endpoints = Endpoints(a=lambda r: ok(), b=lambda r: ok())
    remote = backend(endpoints)
    for _ in range(4):
        await remote.complete("demo", PROMPT, PARAMS, seed=1)
    assert endpoints.calls == ["a", "b", "a", "b"]


@pytest.mark.parametrize("failure", [refuse, lambda r: httpx.Response(502, text="bad gateway")])
async def test_failure_moves_on_and_opens_the_circuit(failure: Handler) -> None:
    endpoints = Endpoints(a=failure, b=lambda r: ok())
    remote = backend(endpoints)
    for _ in range(4):
        assert (await remote.complete("demo", PROMPT, PARAMS, seed=1))[0].text == " tuit 0"
    # a failed twice (the threshold) and was then skipped: b took every request.
    assert endpoints.calls.count("a") == 2
    assert endpoints.calls.count("b") == 4
    assert remote.endpoints[0].breaker.state == "open"


async def test_all_endpoints_busy_or_down_is_busy_at_once() -> None:
    busy = Endpoints(a=lambda r: httpx.Response(429, json={"error": {"message": "busy"}}), b=refuse)
    with pytest.raises(EngineBusy):
        await backend(busy).complete("demo", PROMPT, PARAMS, seed=1)
    down = Endpoints(a=refuse, b=refuse)
    remote = backend(down)
    for _ in range(2):
        with pytest.raises(EngineBusy):
            await remote.complete("demo", PROMPT, PARAMS, seed=1)
    calls = len(down.calls)
    with pytest.raises(EngineBusy):  # both circuits open: refused without a network call
        await remote.complete("demo", PROMPT, PARAMS, seed=1)
    assert len(down.calls) == calls


async def test_timeouts_become_generation_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    with pytest.raises(GenerationTimeout):
        await backend(Endpoints(a=slow, b=slow)).complete("demo", PROMPT, PARAMS, seed=1)


async def test_client_errors_are_not_retried() -> None:
    missing = Endpoints(a=lambda r: httpx.Response(404, json={"error": {"message": "no such model"}}), b=lambda r: ok())
    with pytest.raises(UnknownModel):
        await backend(missing).complete("demo", PROMPT, PARAMS, seed=1)
    assert missing.calls == ["a"]
    bad_key = Endpoints(a=lambda r: httpx.Response(401, json={"error": {"message": "Incorrect API key"}}), b=lambda r: ok())
    with pytest.raises(GenerationError, match="Incorrect API key"):
        await backend(bad_key).complete("demo", PROMPT, PARAMS, seed=1)
    with pytest.raises(UnknownModel):
        await backend(missing).complete("otro", PROMPT, PARAMS, seed=1)


async def test_bearer_token_is_sent() -> None:
    seen: list[str | None] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return ok()

    await backend(Endpoints(a=record, b=record), api_key="s3creto").complete("demo", PROMPT, PARAMS, seed=1)
    assert seen == ["Bearer s3creto"]


def test_circuit_breaker_half_opens_for_one_probe() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown_s=10, clock=lambda: now[0])
    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.0
    assert breaker.state == "half-open"
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.failure()  # the probe failed: open for another cooldown
    assert breaker.state == "open"
    now[0] = 20.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


async def test_start_reports_endpoints_without_failing(caplog: pytest.LogCaptureFixture) -> None:
    def models(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"object": "list", "data": [{"id": "otro"}]})

    def transport(request: httpx.Request) -> httpx.Response:
        return models(request) if request.url.host.startswith("a") else refuse(request)

    remote = RemoteBackend(settings(), transport=httpx.MockTransport(transport))
    with caplog.at_level("WARNING", logger="generation.serving.backends.remote"):
        await remote.start()
    assert "does not serve demo" in caplog.text
    assert "b.test:8000/v1 is not answering yet" in caplog.text


async def test_a_body_that_is_not_json_counts_as_a_failure() -> None:
    endpoints = Endpoints(a=lambda r: httpx.Response(200, text="<html>proxy error</html>"), b=lambda r: ok())
    remote = backend(endpoints)
    assert (await remote.complete("demo", PROMPT, PARAMS, seed=1))[0].text == " tuit 0"
    assert endpoints.calls == ["a", "b"]


async def test_contrasts_travel_and_scores_come_back() -> None:
    def scored(request: httpx.Request) -> httpx.Response:
        choices = [{"index": i, "text": f" tuit {i}", "finish_reason": "stop",
                    "ranking": {"logprobs": [-4.0 - i, -6.0], "tokens": 3}} for i in range(2)]
        return httpx.Response(200, json={"choices": choices, "usage": {"completion_tokens": 6}})

    endpoints = Endpoints(a=scored, b=scored)
    remote = backend(endpoints)
    other = ControlFields(partido="RD")
    prompt = PromptSpec("controlled", ControlFields(partido="RN"), contrasts=(Contrast("side", other),))
    out = await remote.complete("demo", prompt, PARAMS, seed=1, n=2)
    assert endpoints.bodies[0]["rank_contrasts"] == [prompt_text(other)]
    assert [(c.logprobs, c.scored) for c in out] == [((-4.0, -6.0), 3), ((-5.0, -6.0), 3)]
    assert "negative_prompts" not in endpoints.bodies[0]  # no guidance asked
    guided = replace(prompt, negatives=(other,))
    await remote.complete("demo", guided, replace(PARAMS, contrast_guidance=1.5), seed=1, n=2)
    assert endpoints.bodies[1]["negative_prompts"] == [prompt_text(other)]
    assert endpoints.bodies[1]["contrast_guidance"] == 1.5
    await remote.aclose()
    plain = backend(Endpoints(a=lambda r: ok(1)))  # vLLM: no ranking field, no scores
    (only,) = await plain.complete("demo", prompt, PARAMS, seed=1, n=1)
    assert (only.logprobs, only.scored) == ((), 0)
    await plain.aclose()


def shed(sent: int, asked: int) -> httpx.Response:
    """What ``politico serve`` answers when its engine shed candidates (tests/scaleout/test_serve.py
    checks the real server says exactly this)."""
    response = ok(sent)
    return httpx.Response(200, json={**response.json(), "shed": {"asked": asked, "sent": sent}})


async def test_fewer_completions_than_asked_are_an_answer_and_are_counted() -> None:
    endpoints = Endpoints(a=lambda r: shed(4, 8), b=lambda r: ok(3))
    remote = backend(endpoints)
    assert len(await remote.complete("demo", PROMPT, PARAMS, seed=1, n=8)) == 4  # shed by the server
    assert len(await remote.complete("demo", PROMPT, PARAMS, seed=1, n=8)) == 3  # cut short otherwise
    assert (remote.stats.shed, remote.stats.short, remote.stats.retries) == (1, 1, 0)
    too_many = Endpoints(a=lambda r: ok(5), b=lambda r: ok(5))
    assert len(await backend(too_many).complete("demo", PROMPT, PARAMS, seed=1, n=2)) == 2


async def test_an_answer_without_completions_moves_on_as_a_failure() -> None:
    endpoints = Endpoints(a=lambda r: ok(0), b=lambda r: ok(2))
    remote = backend(endpoints)
    assert len(await remote.complete("demo", PROMPT, PARAMS, seed=1, n=2)) == 2
    assert endpoints.calls == ["a", "b"]
    assert remote.stats.retries == 1 and remote.stats.failures == {(A, "bad_response"): 1}


async def test_a_dead_endpoint_is_retried_elsewhere_with_the_same_seed_and_counted() -> None:
    endpoints = Endpoints(a=refuse, b=lambda r: ok(2))
    remote = backend(endpoints)
    assert len(await remote.complete("demo", PROMPT, PARAMS, seed=77, n=2)) == 2
    assert endpoints.calls == ["a", "b"] and endpoints.bodies[0] == endpoints.bodies[1]  # same seed, same tweet
    assert remote.stats.retries == 1 and remote.stats.failures == {(A, "unreachable"): 1}


async def test_a_hung_endpoint_gets_its_share_of_the_budget_and_the_next_one_the_rest() -> None:
    budgets: list[float] = []

    def hung(request: httpx.Request) -> httpx.Response:
        budgets.append(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("read timed out", request=request)

    def answers(request: httpx.Request) -> httpx.Response:
        budgets.append(request.extensions["timeout"]["read"])
        return ok()

    remote = backend(Endpoints(a=hung, b=answers), timeout_s=30)
    assert (await remote.complete("demo", PROMPT, PARAMS, seed=1))[0].text == " tuit 0"
    assert budgets[0] == pytest.approx(15, abs=0.5)  # half: one more endpoint to try
    assert budgets[1] == pytest.approx(30, abs=0.5)  # all that is left (the mock hung no time)
    assert remote.stats.failures == {(A, "timeout"): 1} and remote.stats.retries == 1


@pytest.mark.parametrize("payload", [
    {"object": "error"},  # no choices
    {"choices": [{"index": 0, "finish_reason": "stop"}]},  # a choice without text
    {"choices": ["una respuesta"]},  # a choice that is not an object
    {"choices": None},
    ["no", "es", "un", "objeto"],
])
async def test_a_malformed_completions_response_is_its_endpoints_failure(payload: object) -> None:
    """JSON that is not a completions answer is a ``MalformedResponse`` (never another exception,
    which would read as a bug in the bot), counted against the endpoint that sent it; the
    request moves on to the next endpoint."""
    with pytest.raises(MalformedResponse, match="malformed completions response"):
        parse_choices(payload, 1)  # type: ignore[arg-type]
    endpoints = Endpoints(a=lambda r: httpx.Response(200, json=payload), b=lambda r: ok())
    remote = backend(endpoints, failure_threshold=1)
    assert (await remote.complete("demo", PROMPT, PARAMS, seed=1))[0].text == " tuit 0"
    assert endpoints.calls == ["a", "b"] and remote.endpoints[0].breaker.state == "open"
    await remote.aclose()


async def test_a_cancelled_probe_lets_the_next_request_probe() -> None:
    """A half-open endpoint lets one probe through; when that probe is cancelled (its user went
    away) before it told anything, the next request probes instead of finding the endpoint
    shut until the cooldown after a failure that never happened."""
    entered, never = asyncio.Event(), asyncio.Event()
    answers = iter(["refuse", "hang", "ok"])

    async def scripted(request: httpx.Request) -> httpx.Response:
        step = next(answers)
        if step == "refuse":
            refuse(request)
        if step == "hang":
            entered.set()
            await never.wait()
        return ok()

    remote = RemoteBackend(settings(endpoints=[A], failure_threshold=1),
                           transport=httpx.MockTransport(scripted))
    breaker = remote.endpoints[0].breaker
    breaker.cooldown_s = 0  # half-open as soon as it opens: every request may be the probe
    with pytest.raises(EngineBusy):
        await remote.complete("demo", PROMPT, PARAMS, seed=1)
    assert breaker.state == "half-open"
    probe = asyncio.create_task(remote.complete("demo", PROMPT, PARAMS, seed=2))
    await asyncio.wait_for(entered.wait(), 10)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert (await remote.complete("demo", PROMPT, PARAMS, seed=3))[0].text == " tuit 0"
    assert breaker.state == "closed"
    await remote.aclose()


async def test_each_candidates_seed_and_timings_come_back_when_the_server_says() -> None:
    def answered(request: httpx.Request) -> httpx.Response:
        choices = [{"index": 0, "text": " uno", "candidate": {"seed": 11, "queue_s": 0.25, "done_s": 1.5}},
                   {"index": 1, "text": " dos", "candidate": {"seed": "11", "queue_s": True, "done_s": None}},
                   {"index": 2, "text": " tres"}]
        return httpx.Response(200, json={"choices": choices})

    remote = backend(Endpoints(a=answered, b=answered))
    one, two, three = await remote.complete("demo", PROMPT, PARAMS, seed=1, n=3)
    assert (one.seed, one.queue_s, one.done_s) == (11, 0.25, 1.5)
    assert (two.seed, two.queue_s, two.done_s) == (None, None, None)  # not numbers: not believed
    assert (three.seed, three.queue_s, three.done_s) == (None, None, None)  # vLLM says nothing
    await remote.aclose()


async def test_every_sampling_setting_goes_under_the_name_the_servers_read() -> None:
    """A setting sent under another name (or not sent) is silently the server's default: the
    tweets change with no error anywhere. The body is checked whole, with every optional field
    on at its smallest "on" value and off at its "off" value (mutation check, docs/testing.md)."""
    endpoints = Endpoints(a=lambda r: ok(), b=lambda r: ok())
    remote = backend(endpoints)
    every = SamplingParams(max_new_tokens=9, min_new_tokens=2, temperature=0.7, top_p=0.85, top_k=1,
                           min_p=0.05, typical_p=0.95, repetition_penalty=1.2, no_repeat_ngram_size=3,
                           ignore_eos=True, stop=("\n",), banned=("&",), guide=("salud",),
                           guide_start_bias=2.0, guide_bias=0.0)
    await remote.complete("demo", PROMPT, every, seed=5, n=1)
    assert endpoints.bodies[0] == {
        "model": "demo", "prompt": PROMPT.text(), "max_tokens": 9, "min_tokens": 2, "temperature": 0.7,
        "top_p": 0.85, "repetition_penalty": 1.2, "ignore_eos": True, "n": 1, "seed": 5, "stop": ["\n"],
        "top_k": 1, "min_p": 0.05, "typical_p": 0.95, "no_repeat_ngram_size": 3, "bad_words": ["&"],
        "guide": ["salud"], "guide_bias": 0.0, "guide_start_bias": 2.0,
    }
    off = SamplingParams(top_k=0, min_p=0.0, typical_p=1.0, guide=("salud",))  # a guide with no push
    await remote.complete("demo", PROMPT, off, seed=5, n=1)
    assert endpoints.bodies[1] == {
        "model": "demo", "prompt": PROMPT.text(), "max_tokens": off.max_new_tokens, "min_tokens": 0,
        "temperature": off.temperature, "top_p": off.top_p, "repetition_penalty": 1.0,
        "ignore_eos": False, "n": 1, "seed": 5, "stop": [],
    }
    await remote.aclose()


def test_choices_come_back_in_index_order_with_their_own_tokens_and_finish() -> None:
    """Completions are matched to their seeds and scores by ``index``, not by where the server
    put them; token counts come from ``token_ids`` when sent, else ``usage`` is spread over the
    choices (the remainder to the first ones), and only ``"length"`` reads as cut short."""
    payload = {
        "choices": [
            {"index": 2, "text": " tres", "finish_reason": "stop"},
            {"text": " cero", "finish_reason": "length"},  # no index: the first
            {"index": 1, "text": " uno", "finish_reason": "eos", "token_ids": [5, 6, 7, 8, 9]},
        ],
        "usage": {"completion_tokens": 8},
    }
    out = parse_choices(payload, 3)
    assert [(c.text, c.tokens, c.finish_reason) for c in out] == [
        (" cero", 3, "length"), (" uno", 5, "stop"), (" tres", 2, "stop"),
    ]
    assert [c.tokens for c in parse_choices({"choices": payload["choices"][:1]}, 1)] == [0]  # no usage


def test_a_success_between_failures_keeps_the_circuit_closed() -> None:
    """``threshold`` failures in a row open the circuit; a success in between starts the count
    again, so an endpoint that fails now and then keeps serving."""
    breaker = CircuitBreaker(threshold=2, cooldown_s=10, clock=lambda: 0.0)
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.failure()
    assert breaker.state == "open"


async def test_every_retry_shed_and_failure_is_counted() -> None:
    """The counters the bot's /metrics shows add up over requests (not "happened at least
    once"); a full answer is neither shed nor short; a 500 moves on like any 5xx; and a dead
    host's connect wait is capped so the next endpoint still has time."""
    connects: list[float] = []

    def down(request: httpx.Request) -> httpx.Response:
        connects.append(request.extensions["timeout"]["connect"])
        return httpx.Response(500, json={"error": {"message": "boom"}})

    answers = iter([shed(1, 2), ok(2), shed(1, 2)])
    endpoints = Endpoints(a=down, b=lambda r: next(answers))
    remote = backend(endpoints, failure_threshold=10, timeout_s=30)
    for _ in range(3):
        await remote.complete("demo", PROMPT, PARAMS, seed=1, n=2)
    assert endpoints.calls == ["a", "b", "b", "a", "b"]  # turns: a, b, a; a failed twice
    assert (remote.stats.retries, remote.stats.shed, remote.stats.short) == (2, 2, 0)
    assert remote.stats.failures == {(A, "server_error"): 2}
    assert connects == [2.0, 2.0]
    await remote.aclose()


async def test_a_refused_request_says_the_servers_own_words() -> None:
    """A request the server refuses as wrong is a bug to fix: the error carries the status and
    the server's ``error.message`` (the raw body only when there is none)."""
    bad = Endpoints(a=lambda r: httpx.Response(400, json={"error": {"message": "max_tokens too large"}}))
    with pytest.raises(GenerationError) as refused:
        await backend(bad).complete("demo", PROMPT, PARAMS, seed=1)
    assert str(refused.value) == f"{A} refused the request (400): max_tokens too large"
    raw = Endpoints(a=lambda r: httpx.Response(422, text="unprocessable"))
    with pytest.raises(GenerationError) as refused:
        await backend(raw).complete("demo", PROMPT, PARAMS, seed=1)
    assert str(refused.value) == f"{A} refused the request (422): unprocessable"


async def test_contrasts_and_negatives_carry_the_tweets_start() -> None:
    """A tweet asked to start with some words is ranked and guided against contrasts that start
    with the same words (else the scores compare different texts); no guidance weight, no
    negative prompts."""
    endpoints = Endpoints(a=lambda r: ok(), b=lambda r: ok())
    remote = backend(endpoints)
    other = ControlFields(partido="RD")
    prompt = PromptSpec("controlled", ControlFields(partido="RN"), seed_text="Hoy",
                        contrasts=(Contrast("side", other),), negatives=(other,))
    await remote.complete("demo", prompt, replace(PARAMS, contrast_guidance=0.5), seed=1)
    body = endpoints.bodies[0]
    assert body["rank_contrasts"] == body["negative_prompts"] == [prompt_text(other, "Hoy")]
    await remote.complete("demo", prompt, replace(PARAMS, contrast_guidance=0.0), seed=1)
    assert "negative_prompts" not in endpoints.bodies[1]
    await remote.aclose()


async def test_a_server_slower_than_the_whole_budget_is_a_timeout_and_no_further_try() -> None:
    """Retries stay within the request's time budget: once an answer took all of it, the
    request ends as a timeout (the user hears "too slow", not "busy") and no endpoint is tried
    after the budget is spent."""
    async def slower_than_budget(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.3)  # the whole 0.2 s budget and more
        raise httpx.ReadTimeout("read timed out", request=request)

    endpoints = Endpoints(a=slower_than_budget, b=lambda r: ok())
    with pytest.raises(GenerationTimeout):
        await backend(endpoints, timeout_s=0.2).complete("demo", PROMPT, PARAMS, seed=1)
    assert endpoints.calls == ["a"]


async def test_a_closed_backend_says_closed() -> None:
    """After ``aclose`` (the bot is stopping) a request fails as ``EngineClosed``, which keeps it
    pending for the next process, not as an error of a closed connection pool."""
    remote = backend(Endpoints(a=lambda r: ok(), b=lambda r: ok()))
    await remote.aclose()
    with pytest.raises(EngineClosed):
        await remote.complete("demo", PROMPT, PARAMS, seed=1)
