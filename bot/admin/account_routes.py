"""Logging in and out, and the account page: change the password, close every session.

Each of logout, a password change and "close every session" ends sessions on the server, and
each is in the audit trail with who did it and from where.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.admin.auth import hash_password, new_csrf_token
from bot.admin.desk import Desk, admin, checked_form, client, flash, safe_next
from db.admins import NAME
from db.review import ReviewStore

#: A new password is at least this long (the desk faces the network).
MIN_PASSWORD = 10


def account_routes(desk: Desk) -> list[Route]:
    store: ReviewStore = desk.store

    async def login_page(request: Request) -> Response:
        if await desk.session_of(request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        request.session.setdefault("csrf", new_csrf_token())
        return desk.render(request, "login.html", next=safe_next(request.query_params.get("next")), error="",
                           name="")

    async def login(request: Request) -> Response:
        form = await checked_form(request)
        target = safe_next(form.get("next"))
        name = str(form.get("name", "")).strip().lower()[:64]
        stored = (await desk.accounts.password_hash(name) if NAME.match(name) else None) or desk.auth.env_hash(name)
        verdict = await desk.auth.check(name, str(form.get("password", "")), client(request), stored)
        if verdict != "ok":
            await store.audit("?", "login_failed", detail={"account": name, "verdict": verdict,
                                                           "client": client(request)})
            locked = verdict == "locked"
            message = ("Demasiados intentos fallidos: espere unos minutos." if locked
                       else "Usuario o contraseña incorrectos.")
            return desk.render(request, "login.html", status_code=429 if locked else 401, next=target,
                               error=message, name=name)
        token = await desk.accounts.open(name, client(request), desk.session_lifetime)
        request.session.clear()
        request.session.update({"token": token, "csrf": new_csrf_token()})
        await store.audit(name, "login", detail={"client": client(request)})
        return RedirectResponse(target, status_code=303)

    async def logout(request: Request) -> Response:
        await desk.accounts.revoke(str(request.session.get("token", "")))
        await store.audit(admin(request), "logout", detail={"client": client(request)})
        request.session.clear()
        flash(request, "Sesión cerrada.")
        return RedirectResponse("/login", status_code=303)

    async def account(request: Request) -> Response:
        name = admin(request)
        return desk.render(
            request, "account.html", sessions=await desk.accounts.live(name),
            current=request.state.session_id, own_password=await desk.accounts.password_hash(name) is not None,
            min_password=MIN_PASSWORD,
        )

    async def change_password(request: Request) -> Response:
        form = await request.form()
        name = admin(request)
        stored = await desk.accounts.password_hash(name)
        new, repeated = str(form.get("new", "")), str(form.get("repeat", ""))
        if stored is None:
            flash(request, "La contraseña de esta cuenta viene del entorno (POLITICO_ADMIN_PASSWORD_HASH): "
                           "cámbiela allí o cree una cuenta con `politico admin add-user`.")
        elif await desk.auth.check(name, str(form.get("current", "")), client(request), stored) != "ok":
            flash(request, "La contraseña actual no es correcta.")
        elif len(new) < MIN_PASSWORD or new != repeated:
            flash(request, f"La nueva contraseña debe tener al menos {MIN_PASSWORD} caracteres y repetirse igual.")
        else:
            closed = await desk.accounts.set_password(name, hash_password(new), keep_session=request.state.session_id)
            await store.audit(name, "password", detail={"closed": closed, "client": client(request)})
            flash(request, f"Contraseña cambiada. Sesiones cerradas en otros lugares: {closed}.")
        return RedirectResponse("/account", status_code=303)

    async def close_sessions(request: Request) -> Response:
        name = admin(request)
        closed = await desk.accounts.revoke_all(name)
        await store.audit(name, "sessions_closed", detail={"closed": closed, "client": client(request)})
        request.session.clear()
        flash(request, f"Se cerraron todas sus sesiones ({closed}).")
        return RedirectResponse("/login", status_code=303)

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", desk.guard(logout), methods=["POST"]),
        Route("/account", desk.guard(account), methods=["GET"]),
        Route("/account/password", desk.guard(change_password), methods=["POST"]),
        Route("/account/close-sessions", desk.guard(close_sessions), methods=["POST"]),
    ]
