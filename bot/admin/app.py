"""The web desk: log in, filter the log, read a request in full, decide, export, publish.

Server-rendered with Jinja2 (autoescaping on: generated text is untrusted and always shown as
text), one small same-origin script for "select all", and a Content-Security-Policy that
allows nothing else. Every page needs the admin session; every POST also needs the session's
CSRF token. Decisions, bans, exports, publications and logins go to the audit trail.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.admin.auth import AdminAuth, csrf_matches, new_csrf_token
from bot.admin.charts import bar_chart
from bot.admin.publish import Publisher, PublishError
from bot.texts import SENTIMENT_NAMES
from bot.types import FICTION_LABEL
from db.game import GameStore
from db.review import (
    DECISIONS,
    EXPORT_COLUMNS,
    REQUEST_STATUSES,
    REVIEW_STATES,
    Filters,
    ReviewStore,
)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "politico_admin"
SESSION_MAX_AGE = 8 * 3600
PER_PAGE = 50

#: Finds the training tweet closest to a generated one: (model, text) → (tweet, score) or None.
Nearest = Callable[[str, str], "tuple[str, float] | None"]

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """Adds the CSP and friends to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


@dataclass
class Desk:
    store: ReviewStore
    auth: AdminAuth
    publisher: Publisher
    templates: Jinja2Templates
    nearest: Nearest | None = None

    def render(self, request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        session = request.session
        context.setdefault("flash", session.pop("flash", []))
        return self.templates.TemplateResponse(
            request,
            name,
            {"csrf": session.get("csrf", ""), "admin": session.get("admin", ""), **context},
            status_code=status_code,
        )


Endpoint = Callable[[Request], Awaitable[Response]]


def admin_only(endpoint: Endpoint) -> Endpoint:
    """No session: GETs go to the login page, anything else is refused; POSTs need the CSRF token."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        if not request.session.get("admin"):
            if request.method in ("GET", "HEAD"):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
            raise HTTPException(403, "Se requiere iniciar sesión.")
        if request.method == "POST":
            await _checked_form(request)
        return await endpoint(request)

    return guarded


async def _checked_form(request: Request) -> FormData:
    form = await request.form()
    if not csrf_matches(request.session.get("csrf"), form.get("csrf")):
        raise HTTPException(403, "Token CSRF ausente o inválido; recargue la página.")
    return form


def _safe_next(value: object, default: str = "/") -> str:
    """Only same-site paths, so a crafted link can't bounce the admin elsewhere."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return default


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _actor(request: Request) -> str:
    return f"{request.session.get('admin', 'web')}@{_client(request)}"


def _flash(request: Request, message: str) -> None:
    request.session["flash"] = [*request.session.get("flash", []), message]


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def create_app(
    store: ReviewStore,
    auth: AdminAuth,
    *,
    session_secret: str | None = None,
    publisher: Publisher | None = None,
    nearest: Nearest | None = None,
    https_only: bool = False,
) -> Starlette:
    """The desk as an ASGI app; ``session_secret`` None means a random one (sessions end on restart)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["when"] = _when
    environment.filters["pretty"] = lambda value: json.dumps(value, ensure_ascii=False, indent=2)
    environment.filters["pct"] = lambda value: "—" if value is None else f"{value:.0%}"
    environment.filters["score"] = lambda value: "—" if value is None else f"{value:.2f}"
    # Times in whole milliseconds: the decimals of a timer are noise to a reader.
    environment.filters["ms"] = lambda value: "—" if value is None else f"{value:.0f} ms"
    # Sentiments as users type them (positivo…), not the model's control values (POSITIVE…).
    environment.filters["sentiment"] = lambda value: SENTIMENT_NAMES.get(value, value or "")
    environment.globals["sentiment_names"] = SENTIMENT_NAMES
    games = GameStore(store.engine)
    desk = Desk(
        store=store,
        auth=auth,
        publisher=publisher or Publisher(),
        templates=Jinja2Templates(env=environment),
        nearest=nearest,
    )

    async def login_page(request: Request) -> Response:
        if request.session.get("admin"):
            return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
        request.session.setdefault("csrf", new_csrf_token())
        return desk.render(
            request, "login.html", next=_safe_next(request.query_params.get("next")), error=""
        )

    async def login(request: Request) -> Response:
        form = await _checked_form(request)
        target = _safe_next(form.get("next"))
        verdict = auth.check(str(form.get("password", "")), _client(request))
        if verdict != "ok":
            await store.audit(f"?@{_client(request)}", "login_failed", detail={"verdict": verdict})
            message = (
                "Demasiados intentos fallidos: espere unos minutos."
                if verdict == "locked"
                else "Contraseña incorrecta."
            )
            return desk.render(
                request, "login.html", status_code=429 if verdict == "locked" else 401,
                next=target, error=message,
            )
        request.session.clear()
        request.session.update({"admin": "web", "csrf": new_csrf_token()})
        await store.audit(_actor(request), "login")
        return RedirectResponse(target, status_code=303)

    @admin_only
    async def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @admin_only
    async def listing(request: Request) -> Response:
        filters = Filters.from_mapping(request.query_params)
        page = await store.search(filters, _int(request.query_params.get("page"), 1), PER_PAGE)
        query = filters.as_query()

        def page_url(number: int) -> str:
            return "/?" + urlencode({**query, "page": str(number)})

        return desk.render(
            request,
            "list.html",
            filters=filters,
            page=page,
            page_url=page_url,
            here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            export_query=urlencode(query),
            options=await store.options(),
            statuses=REQUEST_STATUSES,
            review_states=REVIEW_STATES,
            counts=await store.counts(),
        )

    @admin_only
    async def detail(request: Request) -> Response:
        found = await store.detail(_int(request.path_params["request_id"], 0))
        if found is None:
            raise HTTPException(404, "No existe esa solicitud.")
        nearest_tweets = {}
        if desk.nearest is not None:
            for generation in found.generations:
                nearest_tweets[generation.id] = desk.nearest(found.model, generation.text)
        return desk.render(
            request,
            "detail.html",
            item=found,
            nearest=nearest_tweets,
            destinations=desk.publisher.destinations,
            here=request.url.path,
        )

    @admin_only
    async def next_pending(request: Request) -> Response:
        found = await store.next_pending()
        if found is None:
            _flash(request, "No quedan tuits pendientes de revisión.")
            return RedirectResponse("/", status_code=303)
        return RedirectResponse(f"/requests/{found.request_id}", status_code=303)

    @admin_only
    async def decide(request: Request) -> Response:
        form = await request.form()
        back = _safe_next(form.get("back"))
        decision = str(form.get("decision", ""))
        if decision not in DECISIONS:
            raise HTTPException(400, "Decisión desconocida.")
        ids = [i for i in (_int(v, -1) for v in form.getlist("ids")) if i > 0]
        if not ids:
            _flash(request, "No se seleccionó ningún tuit.")
            return RedirectResponse(back, status_code=303)
        done = await store.decide(ids, decision, _actor(request), str(form.get("note", "")))
        _flash(request, f"{len(done)} tuit(s) marcados como {_DECISION_NAMES[decision]}.")
        return RedirectResponse(back, status_code=303)

    @admin_only
    async def ban(request: Request) -> Response:
        form = await request.form()
        back = _safe_next(form.get("back"))
        platform, _, external_id = str(form.get("user", "")).partition(":")
        banned = form.get("banned") == "1"
        if not platform or not external_id:
            raise HTTPException(400, "Usuario inválido.")
        changed = await store.set_banned(platform, external_id, banned, _actor(request))
        verb = "bloqueado" if banned else "desbloqueado"
        _flash(request, f"Usuario {platform}:{external_id} {verb}." if changed else "Sin cambios.")
        return RedirectResponse(back, status_code=303)

    @admin_only
    async def publish(request: Request) -> Response:
        generation_id = _int(request.path_params["generation_id"], 0)
        request_id = await store.request_of(generation_id)
        found = await store.detail(request_id) if request_id else None
        generation = found.generation(generation_id) if found else None
        if generation is None:
            raise HTTPException(404, "No existe ese tuit.")
        back = f"/requests/{request_id}"
        if generation.review_status != "approved":
            _flash(request, "Solo se publican tuits aprobados.")
            return RedirectResponse(back, status_code=303)
        try:
            where = await desk.publisher.publish(generation.text)
        except PublishError as exc:
            _flash(request, f"No se publicó: {exc}")
            return RedirectResponse(back, status_code=303)
        await store.mark_published(generation_id, _actor(request), where)
        _flash(request, "Publicado en " + ", ".join(where) + ".")
        return RedirectResponse(back, status_code=303)

    @admin_only
    async def export(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in ("csv", "jsonl"):
            raise HTTPException(404, "Formato desconocido (csv o jsonl).")
        filters = Filters.from_mapping(request.query_params)
        await store.audit(_actor(request), "export", detail={"format": kind, **filters.as_query()})
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        rows = store.export_rows(filters)
        body = _csv(rows) if kind == "csv" else _jsonl(rows)
        media = "text/csv; charset=utf-8" if kind == "csv" else "application/x-ndjson"
        return StreamingResponse(
            body,
            media_type=media,
            headers={"content-disposition": f'attachment; filename="politico-{stamp}.{kind}"'},
        )

    @admin_only
    async def stats(request: Request) -> Response:
        filters = Filters.from_mapping(request.query_params)
        found = await store.stats(filters)
        charts = {
            "Solicitudes por día": bar_chart(found.per_day),
            "Por sentimiento": bar_chart(
                [(SENTIMENT_NAMES.get(name, name), count) for name, count in found.per_sentiment], width=320,
            ),
            "Por estado": bar_chart(found.per_status, width=320),
            "Tuits por modelo": bar_chart([(m.model, m.generations) for m in found.per_model], width=320),
            "Aprobación por modelo": bar_chart(
                [(m.model, m.approval_rate) for m in found.per_model], width=320, percent=True
            ),
            "👍 por modelo": bar_chart(
                [(m.model, m.up_rate) for m in found.per_model], width=320, percent=True
            ),
        }
        return desk.render(
            request, "stats.html", stats=found, charts=charts, filters=filters,
            options=await store.options(), statuses=REQUEST_STATUSES, review_states=REVIEW_STATES,
        )

    @admin_only
    async def game(request: Request) -> Response:
        """¿Real o ficticio?: per model, rounds played and the share of votes the fake fooled."""
        models = await games.models()
        wanted = request.query_params.get("model", "")
        model = wanted if wanted in models else (models[0] if models else "")
        figures = await games.figures(model) if model else None
        per_day = bar_chart(figures.per_day if figures else [], percent=True)
        return desk.render(request, "game.html", models=models, figures=figures, per_day=per_day,
                           fiction_label=FICTION_LABEL)

    @admin_only
    async def audit(request: Request) -> Response:
        return desk.render(request, "audit.html", entries=await store.audit_trail(200))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "Error interno."
        return desk.render(request, "error.html", status_code=status, status=status, detail=detail)

    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", listing, methods=["GET"]),
        Route("/next", next_pending, methods=["GET"]),
        Route("/requests/{request_id:int}", detail, methods=["GET"]),
        Route("/decide", decide, methods=["POST"]),
        Route("/ban", ban, methods=["POST"]),
        Route("/publish/{generation_id:int}", publish, methods=["POST"]),
        Route("/export.{kind:str}", export, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/audit", audit, methods=["GET"]),
        Route("/game", game, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=session_secret or secrets.token_urlsafe(32),
                session_cookie=SESSION_COOKIE,
                max_age=SESSION_MAX_AGE,
                same_site="strict",
                https_only=https_only,
            ),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.desk = desk
    return app


_DECISION_NAMES = {"approved": "aprobado", "rejected": "rechazado", "flagged": "marcado"}
_CSV_RISKY = ("=", "+", "-", "@", "\t", "\r")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _cell(value: Any) -> Any:
    """Dicts as JSON; text a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(_CSV_RISKY):
        return "'" + value
    return value


async def _csv(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    async for row in rows:
        writer.writerow(_cell(row[column]) for column in EXPORT_COLUMNS)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


async def _jsonl(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    async for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"
