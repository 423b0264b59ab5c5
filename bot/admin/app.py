"""The web desk: log in, filter the log, review in a stream, decide (and undo), export, publish.

Server-rendered with Jinja2 (autoescaping on: generated text is untrusted and always shown as
text), one small same-origin script (select, hotkeys, the phone menu) that the desk works
without, and a Content-Security-Policy that allows nothing else. Every page needs a live admin
session (kept on the server: ``db/admins.py``); every POST also needs the session's CSRF token.
Decisions, undos, bans, exports, publications, logins and logouts go to the audit trail with
the admin's name. Every error, a crash included, is a Spanish page.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.admin import labels
from bot.admin.account_routes import account_routes
from bot.admin.auth import AdminAuth
from bot.admin.desk import Desk, Nearest
from bot.admin.proxies import TrustedProxies
from bot.admin.publish import Publisher
from bot.admin.report_routes import report_routes
from bot.admin.review_routes import review_routes
from bot.config import AdminSettings
from bot.texts import SENTIMENT_NAMES
from db.admins import AdminAccounts
from db.review import ReviewStore
from generation.settings import RankingSettings

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "politico_admin"

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
#: What an error page says when the code raising it said nothing more specific.
ERROR_TEXTS = {
    400: "La solicitud no es válida.",
    403: "No tiene permiso para esto.",
    404: "No existe esa página.",
    405: "Esa dirección no acepta ese método.",
    413: "La solicitud es demasiado grande.",
    500: "Error interno: el problema quedó registrado. Intente de nuevo en un momento.",
}


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


def _signed(value: float | None) -> str:
    """A score with its sign, a true minus: what a part adds to the sum (nothing: 0.00)."""
    if value is None:
        return "—"
    return "0.00" if round(value, 2) == 0 else f"{value:+.2f}".replace("-", "−")


def templates(zone: ZoneInfo, ranking: RankingSettings) -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    filters = environment.filters
    filters["when"] = lambda value: labels.local_time(value, zone)
    filters["iso"] = lambda value: value.isoformat() if value else ""
    filters["pretty"] = lambda value: json.dumps(value, ensure_ascii=False, indent=2)
    filters["pct"] = lambda value: "—" if value is None else f"{value:.0%}"
    filters["score"] = lambda value: "—" if value is None else f"{value:.2f}"
    filters["signed"] = _signed
    # Times in whole milliseconds: the decimals of a timer are noise to a reader.
    filters["ms"] = lambda value: "—" if value is None else f"{value:.0f} ms"
    # Sentiments as users type them (positivo…), not the model's control values (POSITIVE…).
    filters["sentiment"] = lambda value: SENTIMENT_NAMES.get(value, value or "")
    filters["status"] = lambda value: labels.named(value, labels.STATUS_NAMES)
    filters["review"] = lambda value: labels.named(value, labels.REVIEW_NAMES)
    filters["action"] = lambda value: labels.named(value, labels.ACTION_NAMES)
    filters["platform"] = lambda value: labels.named(value, labels.PLATFORM_NAMES)
    filters["reason"] = labels.reason_name
    filters["target"] = labels.target_name
    environment.globals.update(
        sentiment_names=SENTIMENT_NAMES, status_names=labels.STATUS_NAMES, review_names=labels.REVIEW_NAMES,
        parts=labels.PARTS, score_terms=lambda detail: labels.score_terms(detail, ranking),
        scored_parts=labels.scored_parts, weights=labels.part_weights(ranking), describe=labels.describe,
    )
    return Jinja2Templates(env=environment)


def create_app(
    store: ReviewStore,
    auth: AdminAuth,
    *,
    accounts: AdminAccounts | None = None,
    options: AdminSettings | None = None,
    ranking: RankingSettings | None = None,
    session_secret: str | None = None,
    publisher: Publisher | None = None,
    nearest: Nearest | None = None,
    https_only: bool = False,
) -> Starlette:
    """The desk as an ASGI app; ``session_secret`` None means a random one (sessions end on
    restart). ``ranking`` should be the bot's own ``[generation.ranking]``, so the score parts
    shown add up the way the ranker added them."""
    options = options or AdminSettings()
    ranking = ranking or RankingSettings()
    zone = ZoneInfo(options.timezone)
    store.zone = zone  # date filters and stats by day read whole days in the desk's zone
    desk = Desk(
        store=store,
        accounts=accounts or AdminAccounts(store.engine),
        auth=auth,
        publisher=publisher or Publisher(),
        templates=templates(zone, ranking),
        ranking=ranking,
        zone=zone,
        session_lifetime=timedelta(hours=options.session_hours),
        claim=timedelta(minutes=options.claim_minutes),
        nearest=nearest,
    )

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else ""
        if not detail or detail == HTTPStatus(status).phrase:
            detail = ERROR_TEXTS.get(status, f"Error {status}.")
        if "session" in request.scope:
            await desk.session_of(request)  # the menu, for an admin who mistyped an address
        return desk.render(request, "error.html", status_code=status, status=status, detail=detail)

    async def crash(request: Request, exc: Exception) -> Response:
        """Outside the other middleware: no session, so no menu, and the headers added here."""
        logger.error("desk request %s failed", request.url.path, exc_info=exc)
        response = desk.render(request, "error.html", status_code=500, status=500, detail=ERROR_TEXTS[500])
        for name, value in SECURITY_HEADERS:
            response.headers[name.decode()] = value.decode()
        return response

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await store.engine.dispose()  # its connections belong to this server's event loop

    routes = [
        *account_routes(desk),
        *review_routes(desk),
        *report_routes(desk),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(TrustedProxies, trusted=options.trusted_proxies),
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=session_secret or secrets.token_urlsafe(32),
                session_cookie=SESSION_COOKIE,
                max_age=int(options.session_hours * 3600),
                same_site="strict",
                https_only=https_only,
            ),
        ],
        exception_handlers={HTTPException: http_error, Exception: crash},
        lifespan=lifespan,
    )
    app.state.desk = desk
    return app
