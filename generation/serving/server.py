"""``politico serve``: the engine behind an OpenAI-style completions API, as vLLM speaks it.

Concurrent HTTP requests each await ``Engine.generate``, so they decode side by side in the
engine's running batch as concurrent bot users do in-process. Routes: ``POST /v1/completions`` (text or token-id
prompts, one or many, OpenAI's sampling fields plus vLLM's ``min_tokens``, ``ignore_eos``,
``repetition_penalty``, ``top_k``, and our ``no_repeat_ngram_size`` / ``bad_words`` / ``guide*`` /
``rank_contrasts`` / ``negative_prompts`` with ``contrast_guidance``),
``GET /v1/models``, ``GET /health`` and ``GET /metrics`` (Prometheus). ``/v1`` routes take an
optional bearer token; errors come back as OpenAI's ``{"error": {...}}`` JSON.

Text prompts are tokenized the way the in-process backend tokenizes a :class:`PromptSpec`: a
controlled model's text is cut back into its control segments, each encoded on its own with its
marker as token type (so ``PromptSpec.text()`` sent here decodes exactly like the local
backend), and a casual model's text gets the model's BOS in front. Token-id prompts go to the
engine as they are. On SIGTERM uvicorn stops accepting connections and lets in-flight requests
finish, then the engine drains what it still holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from generation.logs import configure_logging
from generation.prompts import CONTROL_TOKENS, Encoded, split_tweet_start
from generation.registry import LoadedModel, ModelLoadError
from generation.serving.backends.local import LocalBackend, encode_casual
from generation.serving.metrics import ServerMetrics
from generation.settings import GenerationSettings
from generation.types import (
    Completion,
    EngineBusy,
    EngineClosed,
    EngineUnhealthy,
    GenerationTimeout,
    SamplingParams,
    UnknownModel,
)

log = logging.getLogger(__name__)

API_KEY_ENV = "POLITICO_SERVE_API_KEY"
#: A control marker where a segment starts: at the start of the text or after its space.
_SEGMENT_START = re.compile("(?:^| )(" + "|".join(re.escape(m) for m in CONTROL_TOKENS) + ")")


class APIError(Exception):
    """An error answered as OpenAI does: status plus ``{"error": {message, type, param, code}}``."""

    def __init__(
        self, status: int, message: str, *, type_: str = "invalid_request_error",
        param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class CompletionRequest(BaseModel):
    """The body of ``POST /v1/completions``; ``None`` means the OpenAI/vLLM default.

    Unknown fields are ignored, as vLLM does, so clients written for other servers still work;
    features this server does not have (streaming, logprobs, echo, suffix) are refused with a
    400 that names them rather than silently dropped.
    """

    model_config = ConfigDict(extra="ignore")

    model: str
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(None, ge=1)
    min_tokens: int | None = Field(None, ge=0)
    temperature: float | None = Field(None, ge=0, le=5)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1)
    min_p: float | None = Field(None, ge=0, lt=1)
    typical_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=64)
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)
    stop: str | list[str] | None = None
    ignore_eos: bool | None = None
    repetition_penalty: float | None = Field(None, gt=0, le=5)
    no_repeat_ngram_size: int | None = Field(None, ge=0, le=10)
    bad_words: list[str] | None = None
    guide: list[str] | None = None
    guide_bias: float | None = Field(None, ge=0, le=20)
    guide_start_bias: float | None = Field(None, ge=0, le=20)
    #: Our ranking extension: other controlled prompts to score every choice after; each
    #: choice then carries ``ranking: {logprobs, tokens}`` (its own prompt's first).
    rank_contrasts: list[str] | None = Field(None, max_length=32)
    #: Our contrast-guidance extension: prompts each step leans away from, and how hard.
    negative_prompts: list[str] | None = Field(None, max_length=8)
    contrast_guidance: float | None = Field(None, ge=0, le=10)
    add_special_tokens: bool | None = None
    stream: bool | None = None
    echo: bool | None = None
    logprobs: int | None = None
    suffix: str | None = None
    best_of: int | None = None
    user: str | None = None

    def unsupported(self) -> str | None:
        """The first requested feature this server lacks, if any."""
        if self.stream:
            return "stream"
        if self.echo:
            return "echo"
        if self.logprobs is not None:
            return "logprobs"
        if self.suffix:
            return "suffix"
        if self.best_of is not None and self.best_of != (self.n or 1):
            return "best_of"
        return None

    def params(self) -> SamplingParams:
        """Sampling parameters with OpenAI's defaults (vLLM's for its extras)."""
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            max_new_tokens=16 if self.max_tokens is None else self.max_tokens,
            min_new_tokens=self.min_tokens or 0,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            top_k=max(self.top_k or 0, 0),  # vLLM's -1 and 0 both mean "off"
            min_p=self.min_p or 0.0,
            typical_p=1.0 if self.typical_p is None else self.typical_p,
            repetition_penalty=1.0 if self.repetition_penalty is None else self.repetition_penalty,
            no_repeat_ngram_size=self.no_repeat_ngram_size or 0,
            ignore_eos=bool(self.ignore_eos),
            stop=tuple(s for s in stop if s),
            banned=tuple(w for w in self.bad_words or () if w),
            guide=tuple(t for t in self.guide or () if t),
            guide_bias=self.guide_bias or 0.0,
            guide_start_bias=self.guide_start_bias or 0.0,
            contrast_guidance=self.contrast_guidance or 0.0,
        )


@dataclass(frozen=True)
class Prompt:
    """One tokenized prompt of a request."""

    ids: list[int]
    token_types: list[int] | None


def encode_controlled_text(tokenizer: Any, text: str) -> Prompt:
    """A controlled prompt's text back into ids and token types, as ``encode_prompt`` makes them.

    ``prompt_text`` is the concatenation of segments that each begin with ``" [MARKER]"``;
    cutting the text where each marker begins and encoding every piece on its own rebuilds the
    exact token layout (and types) of the in-process backend. Text with no marker has no types.
    """
    starts = [(m.start(), m.group(1)) for m in _SEGMENT_START.finditer(text)]
    if not starts:
        return Prompt(list(tokenizer.encode(text, add_special_tokens=False)), None)
    out = Encoded()
    bounds = [0, *(start for start, _ in starts[1:]), len(text)]
    for (_, marker), begin, end in zip(starts, bounds[:-1], bounds[1:], strict=True):
        for part in split_tweet_start(text[begin:end]):
            if part:
                out.extend(tokenizer.encode(part, add_special_tokens=False),
                           tokenizer.convert_tokens_to_ids(marker), False)
    return Prompt(out.input_ids, out.token_type_ids)


def encode_text(lm: LoadedModel, text: str, add_special_tokens: bool) -> Prompt:
    """A text prompt as the in-process backend would build it for this model."""
    if lm.spec.kind == "controlled":
        return encode_controlled_text(lm.tokenizer, text)
    if not add_special_tokens:
        return Prompt(list(lm.tokenizer.encode(text, add_special_tokens=False)), None)
    bos = encode_casual(lm.tokenizer)
    ids = list(lm.tokenizer.encode(text, add_special_tokens=False))
    return Prompt(ids if ids[:1] == bos else [*bos, *ids], None)


class CompletionsServer:
    """The state behind the routes: the engine, the metrics and the API key."""

    def __init__(self, settings: GenerationSettings, api_key: str = "") -> None:
        self.settings = settings
        self.api_key = api_key
        self.backend = LocalBackend(settings)
        self.metrics = ServerMetrics(self.backend.engine.stats)
        self.ready = False
        self.created = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Load every served model before taking requests; drain the engine on the way out.

        ``Engine.start`` loads each model on a helper thread that ends with the load (on a busy
        CPU, decoding on a thread that had loaded ran about ten times slower per step: OpenMP
        threads spin-waiting against each other), then waits until the model's thread has
        recorded its CUDA graphs, so no request pays for them.
        """
        await self.backend.engine.start(list(self.settings.models))
        self.ready = True
        log.info("serving %s", ", ".join(self.settings.models))
        try:
            yield
        finally:
            self.ready = False
            await self.backend.aclose()
            log.info("engine drained and stopped")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/completions", self.completions, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/health", self.health, methods=["GET"]),
                Route("/metrics", self.prometheus, methods=["GET"]),
            ],
            exception_handlers={HTTPException: _http_error},
            lifespan=self.lifespan,
        )

    # --- routes ---------------------------------------------------------------------------------

    async def completions(self, request: Request) -> Response:
        started = time.perf_counter()
        label, status, prompt_tokens, tokens = "unknown", 500, 0, 0
        self.metrics.in_flight.inc()
        try:
            self._authorize(request)
            body = await _json_object(request)
            req = _validate(body)
            if req.model in self.settings.models:
                label = req.model
            result, prompt_tokens, tokens = await self._complete(req)
            status = 200
            return JSONResponse(result)
        except Exception as exc:
            error = exc if isinstance(exc, APIError) else _internal_error(exc)
            status = error.status
            self.metrics.errors.labels(error.code or error.type).inc()
            return error.response()
        finally:
            self.metrics.in_flight.dec()
            self.metrics.observe(label, status, time.perf_counter() - started, prompt_tokens, tokens)

    async def models(self, request: Request) -> Response:
        try:
            self._authorize(request)
        except APIError as exc:
            return exc.response()
        registry = self.backend.registry
        data = [
            {
                "id": name, "object": "model", "created": self.created, "owned_by": "politico",
                "root": spec.path, "parent": None,
                "max_model_len": registry.get(name).max_positions if registry.is_loaded(name) else None,
            }
            for name, spec in self.settings.models.items()
        ]
        return JSONResponse({"object": "list", "data": data})

    async def health(self, request: Request) -> Response:
        """200 once every model is loaded and while the engine takes work, else 503 (also for
        good once a device error has made the engine unhealthy: the process wants a restart)."""
        stats = self.backend.engine.stats()
        healthy = self.ready and not stats["closed"] and not stats["fault"]
        status = "ok" if healthy else ("draining" if self.ready or stats["closed"] else "starting")
        body = {
            "status": "unhealthy" if stats["fault"] else status,
            "models": stats["models_loaded"],
            "queue_depth": stats["queue_depth"],
        }
        if stats["fault"]:
            body["fault"] = stats["fault"]
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def prometheus(self, request: Request) -> Response:
        payload, content_type = self.metrics.render()
        return Response(payload, media_type=content_type)

    # --- helpers -------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        if not self.api_key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")

    async def _complete(self, req: CompletionRequest) -> tuple[dict[str, Any], int, int]:
        """Run a validated request: the response body, prompt tokens and generated tokens."""
        unsupported = req.unsupported()
        if unsupported:
            raise APIError(400, f"`{unsupported}` is not supported by this server.", param=unsupported)
        if req.model not in self.settings.models:
            raise APIError(
                404, f"The model `{req.model}` does not exist.", param="model", code="model_not_found"
            )
        lm = self.backend.registry.get(req.model)  # loaded before the server took requests
        params = req.params()
        prompts = self._prompts(lm, req)
        for prompt in prompts:
            _check_length(lm, prompt, params)
        seed = req.seed if req.seed is not None else secrets.randbits(63)
        n = req.n or 1
        contrasts = [encode_text(lm, text, req.add_special_tokens is not False)
                     for text in req.rank_contrasts or () if text]
        scoring = [(c.ids, c.token_types) for c in contrasts]
        negatives = [encode_text(lm, text, req.add_special_tokens is not False)
                     for text in req.negative_prompts or () if text] if params.contrast_guidance > 0 else []
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self.backend.engine.generate(
                        req.model, p.ids, p.token_types, params, seed, n, scoring,
                        [(q.ids, q.token_types) for q in negatives]))
                    for p in prompts
                ]
        except ExceptionGroup as group_error:
            raise _api_error(group_error.exceptions[0]) from None
        # Choice ``p * n + j`` is prompt p's j-th, as OpenAI numbers them, even when the engine
        # shed some of a prompt's candidates under load: then the body says so.
        choices = [_choice(p * n + j, c) for p, task in enumerate(tasks) for j, c in enumerate(task.result())]
        prompt_tokens = sum(len(p.ids) for p in prompts)
        tokens = sum(c["tokens"] for c in choices)
        body: dict[str, Any] = {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [c["choice"] for c in choices],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": tokens,
                "total_tokens": prompt_tokens + tokens,
            },
        }
        if len(choices) < n * len(prompts):
            body["shed"] = {"asked": n * len(prompts), "sent": len(choices)}
            self.metrics.shed_answers.inc()
        return body, prompt_tokens, tokens

    def _prompts(self, lm: LoadedModel, req: CompletionRequest) -> list[Prompt]:
        raw = req.prompt
        if isinstance(raw, str):
            raw = [raw]
        if not raw or any(not item for item in raw):
            raise APIError(400, "The prompt must not be empty.", param="prompt")
        if all(isinstance(item, int) for item in raw):
            raw = [raw]
        add_special = req.add_special_tokens is not False
        prompts = []
        for item in raw:
            if isinstance(item, str):
                prompts.append(encode_text(lm, item, add_special))
            else:
                prompts.append(Prompt(list(item), None))
        return prompts


def _choice(index: int, completion: Completion) -> dict[str, Any]:
    """One choice of the response body, with its token count beside it for the usage sums."""
    choice: dict[str, Any] = {"index": index, "text": completion.text, "logprobs": None,
                              "finish_reason": completion.finish_reason}
    if completion.logprobs:
        choice["ranking"] = {"logprobs": list(completion.logprobs), "tokens": completion.scored}
    # This server's extension, as "ranking": what a client logs per candidate.
    choice["candidate"] = {"seed": completion.seed, "queue_s": completion.queue_s, "done_s": completion.done_s}
    return {"choice": choice, "tokens": completion.tokens}


def _check_length(lm: LoadedModel, prompt: Prompt, params: SamplingParams) -> None:
    """Refuse, as vLLM does, a request that cannot fit the model's context."""
    limit = lm.max_positions
    if limit is not None and len(prompt.ids) + params.max_new_tokens > limit:
        raise APIError(
            400,
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{len(prompt.ids) + params.max_new_tokens} tokens ({len(prompt.ids)} in the prompt, "
            f"{params.max_new_tokens} for the completion). Please reduce the prompt or max_tokens.",
            param="max_tokens",
        )


def _api_error(exc: BaseException) -> APIError:
    """What an engine error means to an HTTP client."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, EngineBusy):
        return APIError(429, f"The server is busy: {exc}", type_="rate_limit_error",
                        code="server_busy", headers={"Retry-After": "1"})
    if isinstance(exc, GenerationTimeout):
        return APIError(503, f"The request timed out: {exc}", type_="server_error", code="timeout")
    if isinstance(exc, EngineUnhealthy):
        return APIError(503, f"The server needs a restart: {exc}", type_="server_error", code="unhealthy")
    if isinstance(exc, EngineClosed):
        return APIError(503, f"The server is shutting down: {exc}", type_="server_error", code="shutting_down")
    if isinstance(exc, UnknownModel):
        return APIError(404, str(exc), param="model", code="model_not_found")
    if isinstance(exc, ModelLoadError):
        return APIError(500, str(exc), type_="server_error", code="model_load_error")
    if isinstance(exc, ValueError):  # the engine's word for a prompt the model cannot take
        return APIError(400, str(exc), param="prompt")
    return _internal_error(exc)


def _internal_error(exc: BaseException) -> APIError:
    log.error("completion failed", exc_info=exc)
    return APIError(500, "Internal server error.", type_="server_error", code="internal_error")


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise APIError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.")
    return body


def _validate(body: dict[str, Any]) -> CompletionRequest:
    try:
        return CompletionRequest.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = str(error["loc"][0]) if error["loc"] else None
        message = error["msg"]
        if param == "prompt" and error["type"] != "missing":
            message = "must be a string, a list of strings, token ids or lists of token ids"
        raise APIError(400, f"{param or 'body'}: {message}", param=param) from None


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods, in the same JSON shape as every other error."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    return APIError(exc.status_code, str(exc.detail), code=code).response()


# --- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="politico serve",
        description="Servir los modelos configurados como API de completions al estilo OpenAI/vLLM.",
    )
    parser.add_argument("--config", metavar="PATH", default=None, help="archivo de configuración")
    parser.add_argument("--host", default="127.0.0.1", help="dirección de escucha (0.0.0.0: todas)")
    parser.add_argument("--port", type=int, default=8000, help="puerto de escucha (8000)")
    parser.add_argument(
        "--api-key", default=os.environ.get(API_KEY_ENV, ""),
        help=f"token bearer exigido en /v1 (o la variable {API_KEY_ENV}); vacío: sin token",
    )
    parser.add_argument(
        "--model", action="append", default=None, metavar="NAME",
        help="servir solo este modelo (repetible); por omisión todos los de [generation.models]",
    )
    return parser


def served_settings(settings: GenerationSettings, only: Sequence[str] | None) -> GenerationSettings:
    """The generation settings restricted to the models this server should load."""
    if not only:
        return settings
    unknown = sorted(set(only) - set(settings.models))
    if unknown:
        raise SystemExit(f"politico serve: modelos no configurados: {', '.join(unknown)}")
    models = {name: settings.models[name] for name in only}
    return settings.model_copy(update={"models": models, "default_model": only[0]})


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGINT/SIGTERM; in-flight requests finish before it exits."""
    import uvicorn

    from generation.config import ServeSettings, load_config  # the file; the app takes settings

    args = _parser().parse_args(argv)
    config = load_config(ServeSettings, args.config)
    configure_logging(config.logging.level, config.logging.json_format)
    generation = served_settings(config.generation, args.model)
    if not generation.models:
        raise SystemExit("politico serve: no hay modelos en [generation.models]")
    server = CompletionsServer(generation, api_key=args.api_key)
    uvicorn.Server(
        uvicorn.Config(
            server.app(), host=args.host, port=args.port, log_config=None, access_log=False,
            timeout_graceful_shutdown=max(int(generation.engine.drain_timeout_s), 1),
        )
    ).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
