"""Reviewing: the register, a request in full, the review stream, and the decisions.

Bulk decisions do what they say: the list's "select" ticks visible rows only, and a decision on
every tweet that matches the filters names its count and asks to confirm it (confirmed by
count, so a queue that grew meanwhile asks again). Each decision can be undone from the flash
that reports it or from its audit entry. The stream claims each tweet for its reviewer
(``db/review.py``), so two admins never review the same one.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.admin.desk import MAX_SKIPPED, Desk, admin, client, flash, here, safe_next
from bot.admin.labels import DONE_NAMES, count_of
from bot.admin.publish import PublishError
from db.review import DECISIONS, REJECT_REASONS, Decided, Filters, ReviewStore
from db.review_query import (
    MAX_ID,
    PAGE_SIZES,
    REQUEST_STATUSES,
    REVIEW_STATES,
    Listing,
    bounded_int,
)

#: "Approve the shown one, reject the rest": a decision on whole requests.
APPROVE_SHOWN = "approve_shown"


def ids_from(values: Iterable[object]) -> list[int]:
    """Tweet ids from a form; anything that is not one is dropped."""
    out = []
    for value in values:
        text = str(value).strip()
        if text.isascii() and text.isdigit() and len(text) <= 12 and 0 < int(text) <= MAX_ID:
            out.append(int(text))
    return out


def decided_message(decision: str, done: Decided) -> str:
    if decision == APPROVE_SHOWN:
        return (f"{count_of(len(done.ids), 'tuit decidido', 'tuits decididos')}: aprobado el mostrado "
                "de cada solicitud y rechazados los demás candidatos.")
    singular, plural = DONE_NAMES[decision]
    return count_of(len(done.ids), f"tuit {singular}", f"tuits {plural}") + "."


def review_routes(desk: Desk) -> list[Route]:
    store: ReviewStore = desk.store

    async def listing(request: Request) -> Response:
        filters = Filters.from_mapping(request.query_params)
        shown = Listing.from_mapping(request.query_params)
        page = await store.search(filters, bounded_int(request.query_params.get("page", ""), 1), shown.per_page,
                                  shown.sort)
        query = filters.as_query()
        listing_query = {**query, "sort": shown.sort, "per_page": str(shown.per_page)}

        def page_url(number: int) -> str:
            return "/?" + urlencode({**listing_query, "page": str(number)})

        def sort_url(key: str) -> str:
            """Newest (largest) first on the first click; the other way round on the next."""
            sort = key if shown.sort == f"-{key}" else f"-{key}"
            return "/?" + urlencode({**query, "sort": sort, "per_page": str(shown.per_page)})

        return desk.render(
            request, "list.html", filters=filters, listing=shown, page=page, page_url=page_url, sort_url=sort_url,
            here=here(request), filter_query=urlencode(query), options=await store.options(),
            statuses=REQUEST_STATUSES, review_states=REVIEW_STATES, page_sizes=PAGE_SIZES,
            counts=await store.counts(), matching=await store.count_matching_shown(filters),
            reasons=REJECT_REASONS,
        )

    async def detail(request: Request) -> Response:
        found = await store.detail(int(request.path_params["request_id"]))
        if found is None:
            raise HTTPException(404, "No existe esa solicitud.")
        nearest = {}
        if desk.nearest is not None:
            nearest = {g.id: desk.nearest(found.model, g.text) for g in found.generations}
        return desk.render(request, "detail.html", item=found, nearest=nearest,
                           destinations=desk.publisher.destinations, back=request.url.path,
                           reasons=REJECT_REASONS, stream=False)

    async def stream(request: Request) -> Response:
        """The next tweet to review, claimed for this admin, big, beside its controls."""
        skipped = list(request.session.get("skip", []))
        found = await store.next_pending(skipped, admin=admin(request), claim=desk.claim)
        if found is None and skipped:
            request.session["skip"] = []  # the end of the queue: start again with the skipped ones
            found = await store.next_pending((), admin=admin(request), claim=desk.claim)
        return desk.render(request, "review.html", item=found, counts=await store.counts(),
                           nearest={}, destinations=(), back="/review", reasons=REJECT_REASONS,
                           stream=True)

    async def skip(request: Request) -> Response:
        form = await request.form()
        for generation_id in ids_from(form.getlist("ids"))[:1]:
            await store.release(generation_id, admin(request))
            request.session["skip"] = [*request.session.get("skip", []), generation_id][-MAX_SKIPPED:]
        return RedirectResponse("/review", status_code=303)

    async def decide(request: Request) -> Response:
        form = await request.form()
        back = safe_next(form.get("back"))
        decision = str(form.get("decision", ""))
        if decision not in (*DECISIONS, APPROVE_SHOWN):
            raise HTTPException(400, "Decisión desconocida.")
        reason = str(form.get("reason", "")) if decision == "rejected" else ""
        if decision == "rejected" and reason not in REJECT_REASONS:
            flash(request, "Elija el motivo del rechazo.")
            return RedirectResponse(back, status_code=303)
        note = str(form.get("note", ""))
        if form.get("scope") == "matching":
            filters = Filters.from_mapping(dict(parse_qsl(str(form.get("filters", ""))[:4000])))
            ids = await store.matching_shown(filters)
            if ids and str(form.get("confirm", "")) != str(len(ids)):
                return desk.render(request, "confirm.html", count=len(ids), decision=decision, reason=reason,
                                   note=note, filter_query=urlencode(filters.as_query()), back=back,
                                   reasons=REJECT_REASONS)
        else:
            ids = ids_from(form.getlist("ids"))
        if not ids:
            flash(request, "No se seleccionó ningún tuit.")
            return RedirectResponse(back, status_code=303)
        if decision == APPROVE_SHOWN:
            done = await store.approve_shown(ids, admin(request), note, client(request))
        else:
            done = await store.decide(ids, decision, admin(request), note, reason, client(request))
        flash(request, decided_message(decision, done) if done else "Nada que decidir.", undo=done.audit_id)
        return RedirectResponse(back, status_code=303)

    async def undo(request: Request) -> Response:
        form = await request.form()
        back = safe_next(form.get("back"), "/audit")
        restored = await store.undo(int(request.path_params["audit_id"]), admin(request), client(request))
        if restored is None:
            raise HTTPException(404, "Esa entrada de auditoría no es una decisión.")
        flash(request, count_of(len(restored), "tuit volvió", "tuits volvieron") + " a su estado anterior."
              if restored else "Nada que deshacer: esos tuits se decidieron de nuevo después.")
        return RedirectResponse(back, status_code=303)

    async def ban(request: Request) -> Response:
        form = await request.form()
        back = safe_next(form.get("back"))
        platform, _, external_id = str(form.get("user", "")).partition(":")
        banned = form.get("banned") == "1"
        if not platform or not external_id or len(platform) > 16 or len(external_id) > 64:
            raise HTTPException(400, "Usuario inválido.")
        changed = await store.set_banned(platform, external_id, banned, admin(request), client(request))
        verb = "bloqueado" if banned else "desbloqueado"
        flash(request, f"Usuario {platform}:{external_id} {verb}." if changed else "Sin cambios.")
        return RedirectResponse(back, status_code=303)

    async def publish(request: Request) -> Response:
        generation_id = int(request.path_params["generation_id"])
        request_id = await store.request_of(generation_id)
        found = await store.detail(request_id) if request_id else None
        generation = found.generation(generation_id) if found else None
        if generation is None:
            raise HTTPException(404, "No existe ese tuit.")
        back = f"/requests/{request_id}"
        if generation.review_status != "approved":
            flash(request, "Solo se publican tuits aprobados.")
            return RedirectResponse(back, status_code=303)
        try:
            where = await desk.publisher.publish(generation.text)
        except PublishError as exc:
            flash(request, f"No se publicó: {exc}")
            return RedirectResponse(back, status_code=303)
        await store.mark_published(generation_id, admin(request), where, client(request))
        flash(request, "Publicado en " + ", ".join(where) + ".")
        return RedirectResponse(back, status_code=303)

    async def next_pending(request: Request) -> Response:
        return RedirectResponse("/review", status_code=303)

    guard = desk.guard
    return [
        Route("/", guard(listing), methods=["GET"]),
        Route("/review", guard(stream), methods=["GET"]),
        Route("/review/skip", guard(skip), methods=["POST"]),
        Route("/next", guard(next_pending), methods=["GET"]),
        Route("/requests/{request_id:int}", guard(detail), methods=["GET"]),
        Route("/decide", guard(decide), methods=["POST"]),
        Route("/undo/{audit_id:int}", guard(undo), methods=["POST"]),
        Route("/ban", guard(ban), methods=["POST"]),
        Route("/publish/{generation_id:int}", guard(publish), methods=["POST"]),
    ]
