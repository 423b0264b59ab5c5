"""What every page of the desk shares: its parts, rendering, flashes, and the admin-only guard.

The session cookie (signed by Starlette) carries a random token, the CSRF token, flashes and
the review stream's skips; who is logged in is the server's record the token names
(``db/admins.py``), looked up on every request, so an ended session ends everywhere at once.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bot.admin.auth import AdminAuth, csrf_matches
from bot.admin.publish import Publisher
from db.admins import AdminAccounts, OpenSession
from db.review import ReviewStore
from generation.settings import RankingSettings

#: Finds the training tweet closest to a generated one: (model, text) → (tweet, score) or None.
Nearest = Callable[[str, str], "tuple[str, float] | None"]
Endpoint = Callable[[Request], Awaitable[Response]]
#: Tweets the review stream skipped in this session, at most (the oldest are forgotten).
MAX_SKIPPED = 200


@dataclass
class Desk:
    """The desk's parts, shared by its routes."""

    store: ReviewStore
    accounts: AdminAccounts
    auth: AdminAuth
    publisher: Publisher
    templates: Jinja2Templates
    ranking: RankingSettings
    zone: ZoneInfo
    session_lifetime: timedelta
    claim: timedelta
    nearest: Nearest | None = None

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        session = request.scope.get("session")  # absent on the 500 page, outside the middleware
        flash = session.pop("flash", []) if session is not None else []
        context.setdefault("flash", [f if isinstance(f, dict) else {"text": str(f)} for f in flash])
        base = {
            "csrf": session.get("csrf", "") if session is not None else "",
            "admin": getattr(request.state, "admin", ""),
            "zone": self.zone.key,
            "path": request.url.path,
        }
        return self.templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code)

    async def session_of(self, request: Request) -> OpenSession | None:
        """The live server session the cookie names (None: none, ended or expired); sets
        ``request.state.admin`` to its admin."""
        token = request.session.get("token")
        found = await self.accounts.find(token) if isinstance(token, str) and token else None
        if found is None and token:
            request.session.clear()  # ended elsewhere: the cookie is worth nothing now
        request.state.admin = found.admin if found else ""
        request.state.session_id = found.id if found else None
        return found

    def guard(self, endpoint: Endpoint) -> Endpoint:
        """No live session: GETs go to the login page, anything else is refused; POSTs also
        need the session's CSRF token."""

        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            if await self.session_of(request) is None:
                if request.method in ("GET", "HEAD"):
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
                raise HTTPException(403, "Se requiere iniciar sesión.")
            if request.method == "POST":
                await checked_form(request)
            return await endpoint(request)

        return guarded


async def checked_form(request: Request) -> FormData:
    form = await request.form()
    if not csrf_matches(request.session.get("csrf"), form.get("csrf")):
        raise HTTPException(403, "Token CSRF ausente o inválido; recargue la página.")
    return form


def safe_next(value: object, default: str = "/") -> str:
    """Only same-site paths, so a crafted link can't bounce the admin elsewhere."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value[:2000]
    return default


def client(request: Request) -> str:
    """The client's address (``bot/admin/proxies.py`` decided whether a proxy's word counts)."""
    return request.client.host if request.client else "?"


def admin(request: Request) -> str:
    return str(getattr(request.state, "admin", ""))


def flash(request: Request, text: str, undo: int | None = None) -> None:
    """A message for the next page; ``undo`` offers to undo that audit entry's decision."""
    request.session["flash"] = [*request.session.get("flash", []), {"text": text, "undo": undo}]


def here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")
