"""The desk's reports: stats, the ¿Real o ficticio? figures, the audit trail, and exports."""

from __future__ import annotations

from datetime import datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bot.admin.charts import bar_chart
from bot.admin.desk import Desk, admin, client, here
from bot.admin.exports import csv_lines, jsonl_lines
from bot.admin.labels import ACTION_NAMES, STATUS_NAMES
from bot.texts import SENTIMENT_NAMES
from bot.types import FICTION_LABEL
from db.audit import AuditFilters
from db.game import GameStore
from db.review import Filters, ReviewStore
from db.review_query import REQUEST_STATUSES, REVIEW_STATES, bounded_int

AUDIT_PER_PAGE = 50


def _day_label(day: str) -> str:
    """``2026-11-01`` → ``01/11``: short enough for a bar."""
    return f"{day[8:10]}/{day[5:7]}" if len(day) == 10 else day


def report_routes(desk: Desk) -> list[Route]:
    store: ReviewStore = desk.store
    games = GameStore(store.engine)

    async def stats(request: Request) -> Response:
        filters = Filters.from_mapping(request.query_params)
        found = await store.stats(filters)
        charts = {
            "Solicitudes por día": bar_chart([(_day_label(d), n) for d, n in found.per_day]),
            "Solicitudes por sentimiento": bar_chart(
                [(SENTIMENT_NAMES.get(name, name), n) for name, n in found.per_sentiment], width=320),
            "Solicitudes por estado": bar_chart(
                [(STATUS_NAMES.get(name, name), n) for name, n in found.per_status]),
            "Tuits mostrados por modelo": bar_chart([(m.model, m.shown) for m in found.per_model], width=320),
            "Aprobación por modelo": bar_chart(
                [(m.model, m.approval_rate) for m in found.per_model], width=320, percent=True),
            "👍 por modelo": bar_chart([(m.model, m.up_rate) for m in found.per_model], width=320, percent=True),
        }
        return desk.render(request, "stats.html", stats=found, charts=charts, filters=filters,
                           options=await store.options(), statuses=REQUEST_STATUSES, review_states=REVIEW_STATES)

    async def game(request: Request) -> Response:
        """¿Real o ficticio?: per model, rounds played and the share of votes the fake fooled."""
        models = await games.models()
        wanted = request.query_params.get("model", "")
        model = wanted if wanted in models else (models[0] if models else "")
        figures = await games.figures(model) if model else None
        per_day = bar_chart([(_day_label(d), v) for d, v in figures.per_day] if figures else [], percent=True)
        return desk.render(request, "game.html", models=models, figures=figures, per_day=per_day,
                           fiction_label=FICTION_LABEL)

    async def audit(request: Request) -> Response:
        filters = AuditFilters.from_mapping(request.query_params)
        found = await store.audit_page(filters, bounded_int(request.query_params.get("page", ""), 1), AUDIT_PER_PAGE)
        query = filters.as_query()
        return desk.render(request, "audit.html", trail=found, filters=filters, query=query,
                           action_names=ACTION_NAMES, here=here(request))

    async def export(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in ("csv", "jsonl"):
            raise HTTPException(404, "Formato desconocido (csv o jsonl).")
        filters = Filters.from_mapping(request.query_params)
        await store.audit(admin(request), "export", detail={"format": kind, **filters.as_query(),
                                                            "client": client(request)})
        stamp = datetime.now(desk.zone).strftime("%Y%m%d-%H%M%S")
        rows = store.export_rows(filters)
        body = csv_lines(rows) if kind == "csv" else jsonl_lines(rows)
        media = "text/csv; charset=utf-8" if kind == "csv" else "application/x-ndjson; charset=utf-8"
        return StreamingResponse(
            body, media_type=media,
            headers={"content-disposition": f'attachment; filename="politico-{stamp}.{kind}"'},
        )

    guard = desk.guard
    return [
        Route("/stats", guard(stats), methods=["GET"]),
        Route("/game", guard(game), methods=["GET"]),
        Route("/audit", guard(audit), methods=["GET"]),
        Route("/export.{kind:str}", guard(export), methods=["GET"]),
    ]
