"""The remote backend: completions from OpenAI-style servers (``politico serve`` or vLLM).

The bot builds the prompt itself (``PromptSpec.text()``) and sends text, so one bot works with
either server. Each request goes to the next healthy endpoint in turn; a connection error, a
timeout or a 5xx moves it on to another endpoint (a *retry*: generation is a pure function of
prompt, parameters and seed, so the other endpoint writes the same tweets), and an endpoint that
keeps failing is taken out for a while (a circuit breaker) so that requests stop paying its
timeout. One attempt may use its share of the request's time budget (what is left, split over
the endpoints still to try), so a server that hangs leaves time for another. When no endpoint
can take the work, the caller gets :class:`EngineBusy` at once: the bot tells the user "busy"
instead of leaving them waiting.

An answer with fewer completions than asked is an answer: ``politico serve`` sheds candidates
under load and says so (``"shed": {"asked", "sent"}`` in the body); any other short answer (a
server that gave up on some) is taken too. Both are counted (:class:`RemoteStats`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from generation.prompts import prompt_text
from generation.settings import GenerationSettings
from generation.types import (
    Completion,
    EngineBusy,
    EngineClosed,
    GenerationError,
    GenerationTimeout,
    PromptSpec,
    SamplingParams,
    UnknownModel,
)

log = logging.getLogger(__name__)

#: A dead host refuses or times out on connect; this caps what one attempt may spend on that,
#: so that trying the next endpoint still fits in the request's time budget.
CONNECT_TIMEOUT_S = 2.0


@dataclass
class RemoteStats:
    """What the bot's ``/metrics`` shows of the inference tier (``bot/monitor.py``)."""

    #: Attempts moved on to another endpoint after one failed, timed out or was busy.
    retries: int = 0
    #: Answers with fewer completions than asked, marked as shed by the server.
    shed: int = 0
    #: Other answers with fewer completions than asked.
    short: int = 0
    #: Failed attempts per endpoint and kind (``timeout``, ``unreachable``, ``server_error``,
    #: ``bad_response``).
    failures: dict[tuple[str, str], int] = field(default_factory=dict)

    def failed(self, endpoint: str, kind: str) -> None:
        self.failures[endpoint, kind] = self.failures.get((endpoint, kind), 0) + 1


class CircuitBreaker:
    """Closed → open after ``threshold`` consecutive failures → half-open after ``cooldown_s``.

    Half-open lets one request through as a probe: success closes the circuit, failure opens it
    for another cooldown. Small enough to keep here rather than add a dependency for it.
    """

    def __init__(self, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """May a request go to this endpoint now? Claims the probe slot when half-open."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._probing:
            self._probing = True
            return True
        return False

    def abandon(self) -> None:
        """The probe was cancelled before it told us anything: let the next request probe."""
        self._probing = False

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failure(self) -> None:
        self._failures += 1
        self._probing = False
        if self._opened_at is not None or self._failures >= self.threshold:
            self._opened_at = self._clock()


@dataclass
class Endpoint:
    """One completions server: its base URL (ending in ``/v1``) and its breaker."""

    base_url: str
    breaker: CircuitBreaker

    @property
    def completions_url(self) -> str:
        return f"{self.base_url}/completions"


def normalise_base_url(url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/v1/`` both become ``http://host:8000/v1``."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


def request_body(served_model: str, prompt: str, params: SamplingParams, seed: int, n: int) -> dict[str, Any]:
    """The ``/v1/completions`` body: OpenAI fields, vLLM's sampling extras, and ours.

    vLLM ignores (and logs) fields it does not know, so ``no_repeat_ngram_size`` and
    ``bad_words`` are only sent when they are in use, and ``top_k`` only when it is on.
    """
    body: dict[str, Any] = {
        "model": served_model,
        "prompt": prompt,
        "max_tokens": params.max_new_tokens,
        "min_tokens": params.min_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "repetition_penalty": params.repetition_penalty,
        "ignore_eos": params.ignore_eos,
        "n": n,
        "seed": seed,
        "stop": list(params.stop),
    }
    if params.top_k > 0:  # older vLLM refuses 0 ("off" there is -1); leaving it out is "off" everywhere
        body["top_k"] = params.top_k
    if params.min_p > 0:  # vLLM knows min_p; typical_p only our server does
        body["min_p"] = params.min_p
    if params.typical_p < 1:
        body["typical_p"] = params.typical_p
    if params.no_repeat_ngram_size:
        body["no_repeat_ngram_size"] = params.no_repeat_ngram_size
    if params.banned:
        body["bad_words"] = list(params.banned)
    if params.guide and (params.guide_bias or params.guide_start_bias):  # politico serve's extension
        body.update(guide=list(params.guide), guide_bias=params.guide_bias,
                    guide_start_bias=params.guide_start_bias)
    return body


class MalformedResponse(GenerationError):
    """A 200 answer that is not a completions body the bot can use (another endpoint may be)."""


_N = TypeVar("_N", int, float)


def parse_choices(payload: dict[str, Any], n: int) -> list[Completion]:
    """Completions from a response body, at most ``n`` and at least one (fewer than ``n`` when
    the server shed some); token counts come from ``usage`` when choices lack them."""
    try:
        choices = sorted(payload["choices"], key=lambda c: c.get("index", 0))[:n]
        texts = [str(c["text"]) for c in choices]
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"malformed completions response: {exc!r}") from None
    if not texts:
        raise MalformedResponse(f"asked for {n} completions, the server sent none")
    usage = payload.get("usage") or {}
    total = int(usage.get("completion_tokens") or 0)
    sent = len(texts)
    # OpenAI reports tokens for the whole request only; spread them over the choices.
    shares = [total // sent + (1 if i < total % sent else 0) for i in range(sent)]
    out = []
    for choice, text, share in zip(choices, texts, shares, strict=True):
        token_ids = choice.get("token_ids")
        tokens = len(token_ids) if isinstance(token_ids, list) else share
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        ranking = choice.get("ranking") or {}
        logprobs = tuple(float(v) for v in ranking.get("logprobs") or ())
        own = choice.get("candidate")  # politico serve's seed and timings; vLLM sends none
        own = own if isinstance(own, dict) else {}
        out.append(Completion(text=text, tokens=tokens, finish_reason=finish, logprobs=logprobs,
                              scored=int(ranking.get("tokens") or 0), seed=_number(own.get("seed"), int),
                              queue_s=_number(own.get("queue_s"), float), done_s=_number(own.get("done_s"), float)))
    return out


def _number(value: object, kind: type[_N]) -> _N | None:
    """A number a server sent, or None for anything else (a server is not trusted to be right)."""
    return kind(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def error_message(response: httpx.Response) -> str:
    """The ``error.message`` of an OpenAI-style error body, or the start of the raw body."""
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return response.text[:200]


class RemoteBackend:
    """A :class:`generation.types.Backend` over one or more completions endpoints."""

    def __init__(
        self, settings: GenerationSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        remote = settings.remote
        self._timeout_s = remote.timeout_s
        self._served = {name: remote.served_names.get(name) or name for name in settings.models}
        self.endpoints = [
            Endpoint(normalise_base_url(str(url)), CircuitBreaker(remote.failure_threshold, remote.cooldown_s))
            for url in remote.endpoints
        ]
        self._turn = itertools.count()
        self.stats = RemoteStats()
        headers = {"Authorization": f"Bearer {remote.api_key}"} if remote.api_key else {}
        self._client = httpx.AsyncClient(headers=headers, transport=transport)
        self._closed = False

    async def start(self) -> None:
        """Say in the log which endpoints answer and whether they serve our models.

        Only warnings: the inference tier may come up after the bots, and requests find the
        endpoints that work whatever this saw.
        """
        wanted = set(self._served.values())
        for endpoint in self.endpoints:
            try:
                response = await self._client.get(f"{endpoint.base_url}/models", timeout=CONNECT_TIMEOUT_S)
                response.raise_for_status()
                served = {str(model["id"]) for model in response.json()["data"]}
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning("completions endpoint %s is not answering yet: %s", endpoint.base_url, exc)
                continue
            missing = sorted(wanted - served)
            if missing:
                log.warning("completions endpoint %s does not serve %s", endpoint.base_url, ", ".join(missing))
            else:
                log.info("completions endpoint %s serves %s", endpoint.base_url, ", ".join(sorted(wanted)))

    def _order(self) -> Sequence[Endpoint]:
        """Endpoints starting from the next in turn (round robin spreads the load)."""
        start = next(self._turn) % len(self.endpoints)
        return [*self.endpoints[start:], *self.endpoints[:start]]

    async def complete(
        self, model: str, prompt: PromptSpec, params: SamplingParams, seed: int, n: int = 1
    ) -> list[Completion]:
        if self._closed:
            raise EngineClosed("the remote backend is closed")
        if model not in self._served:
            raise UnknownModel(model)
        body = request_body(self._served[model], prompt.text(), params, seed, n)
        if prompt.contrasts:  # politico serve's extension; vLLM ignores it (no scores come back)
            body["rank_contrasts"] = [prompt_text(c.fields, prompt.seed_text) for c in prompt.contrasts]
        if prompt.negatives and params.contrast_guidance > 0:  # politico serve's extension too
            body.update(negative_prompts=[prompt_text(f, prompt.seed_text) for f in prompt.negatives],
                        contrast_guidance=params.contrast_guidance)
        deadline = time.monotonic() + self._timeout_s
        timed_out = False
        order = [endpoint for endpoint in self._order() if endpoint.breaker.state != "open"]
        attempts = 0
        for tried, endpoint in enumerate(order):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if not endpoint.breaker.allow():
                continue
            if attempts:
                self.stats.retries += 1
            attempts += 1
            # This attempt's share of the budget: what is left, split over the endpoints still
            # to try, so that one that hangs leaves time for the next.
            share = remaining / (len(order) - tried)
            outcome = await self._attempt(endpoint, body, n, share, model)
            if isinstance(outcome, list):
                return outcome
            timed_out = timed_out or outcome == "timeout"
        if timed_out:
            raise GenerationTimeout(f"no completions endpoint answered within {self._timeout_s:g} s")
        raise EngineBusy("every completions endpoint is busy or unreachable")

    async def _attempt(self, endpoint: Endpoint, body: dict[str, Any], n: int, timeout_s: float,
                       model: str) -> list[Completion] | str:
        """One try at one endpoint: the completions, or why to move on (``timeout``, ``busy``,
        ``failed``); a request the server refuses as wrong raises."""
        timeout = httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
        try:
            response = await self._client.post(endpoint.completions_url, json=body, timeout=timeout)
        except asyncio.CancelledError:
            endpoint.breaker.abandon()
            raise
        except httpx.TimeoutException:
            log.warning("completions endpoint %s timed out after %.1f s", endpoint.base_url, timeout_s)
            return self._failed(endpoint, "timeout")
        except httpx.TransportError as exc:
            log.warning("completions endpoint %s unreachable: %s", endpoint.base_url, exc)
            return self._failed(endpoint, "unreachable")
        if response.status_code == 200:
            try:
                payload = response.json()
                completions = parse_choices(payload, n)
            except (ValueError, MalformedResponse) as exc:
                log.warning("completions endpoint %s sent an unusable body: %s", endpoint.base_url, exc)
                return self._failed(endpoint, "bad_response")
            endpoint.breaker.success()
            if len(completions) < n:
                # Shed by a loaded ``politico serve`` (it says so), or cut short otherwise.
                if isinstance(payload.get("shed"), dict):
                    self.stats.shed += 1
                else:
                    self.stats.short += 1
            return completions
        if response.status_code == 429:
            # Busy is a healthy answer: try elsewhere, but do not count it against the endpoint.
            endpoint.breaker.success()
            return "busy"
        if response.status_code >= 500:
            log.warning(
                "completions endpoint %s answered %d: %s",
                endpoint.base_url, response.status_code, error_message(response),
            )
            return self._failed(endpoint, "server_error")
        endpoint.breaker.success()
        if response.status_code == 404:
            raise UnknownModel(f"{model} ({error_message(response)})")
        # Any other 4xx is a request this bot should never send: a bug or a misconfiguration.
        raise GenerationError(f"{endpoint.base_url} refused the request ({response.status_code}): {error_message(response)}")

    def _failed(self, endpoint: Endpoint, kind: str) -> str:
        endpoint.breaker.failure()
        self.stats.failed(endpoint.base_url, kind)
        return "timeout" if kind == "timeout" else "failed"

    async def aclose(self) -> None:
        """Stop taking work and close the connection pool (in-flight requests finish first
        because the bot awaits them before closing its backend)."""
        self._closed = True
        await self._client.aclose()
