"""What the desk calls things: Spanish for every status, decision, audit action and score part.

The log stores short English codes (``rate_limited``, ``approved``, ``login``); admins read
Spanish. An unknown code is shown as it is, so a status a newer bot writes is still visible.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any, NamedTuple

from db.review import REASON_NAMES, UNDONE
from generation.decoding.ranking import SIGNS, weighted
from generation.settings import RankingSettings

STATUS_NAMES = {
    "pending": "en curso",
    "ok": "respondida",
    "error": "error",
    "busy": "ocupado",
    "rate_limited": "límite de uso",
    "banned": "bloqueado",
    "invalid": "inválida",
    "blocked": "filtrada",
    "expired": "expirada",
}
REVIEW_NAMES = {
    "pending": "pendiente",
    "approved": "aprobado",
    "rejected": "rechazado",
    "flagged": "marcado",
    UNDONE: "deshecho",
}
ACTION_NAMES = {
    "login": "inicio de sesión",
    "login_failed": "intento fallido",
    "logout": "cierre de sesión",
    "sessions_closed": "sesiones cerradas",
    "password": "cambio de contraseña",
    "review": "revisión",
    "undo": "deshacer",
    "ban": "bloqueo",
    "unban": "desbloqueo",
    "export": "exportación",
    "publish": "publicación",
}
#: What each past-tense decision flash says, singular and plural.
DONE_NAMES = {
    "approved": ("aprobado", "aprobados"),
    "rejected": ("rechazado", "rechazados"),
    "flagged": ("marcado para revisar", "marcados para revisar"),
}
PLATFORM_NAMES = {"telegram": "Telegram", "discord": "Discord", "console": "consola"}


class Part(NamedTuple):
    """A score part as the desk shows it."""

    name: str
    meaning: str


#: The ranker's parts (generation/decoding/ranking.py), in the order they are summed.
PARTS = {
    "fit": Part("fluidez", "log-probabilidad media por token bajo los controles pedidos"),
    "side": Part("sector (modelo)", "log-probabilidad de que el sector pedido lo escribiera, frente a los otros"),
    "lean": Part("sector (lector)", "log-probabilidad de que un lector lo sitúe en el sector pedido"),
    "sentiment": Part("sentimiento", "log-probabilidad del sentimiento pedido, frente a los otros"),
    "topic": Part("temas", "parte de los temas pedidos que nombra"),
    "open": Part("termina a medias", "1 si corta a mitad de frase (resta)"),
    "real": Part("parece real", "log-probabilidad, según el juez lector, de que sea un tuit real"),
    "unknown": Part("palabra desconocida", "1 si tiene una palabra que el juez no conoce (resta)"),
    "copied": Part("copia un tuit real", "1 si repite 8 palabras seguidas de un tuit real (resta)"),
}
assert set(PARTS) == set(SIGNS), "every part the ranker sums has a Spanish name"


class Term(NamedTuple):
    """One part of one candidate's score: its value, weight, sign and what it adds."""

    key: str
    value: float
    weight: float
    sign: int
    adds: float


def score_terms(detail: dict[str, float] | None, weights: RankingSettings) -> dict[str, Term]:
    """The parts a candidate was scored on, as the ranker summed them (absent parts: none)."""
    if not detail:
        return {}
    adds = weighted(detail, weights)
    return {key: Term(key, detail[key], getattr(weights, key), SIGNS[key], adds[key]) for key in SIGNS if key in detail}


def scored_parts(details: list[dict[str, float] | None]) -> list[str]:
    """The parts any of these candidates was scored on, in the order the ranker sums them."""
    present = {key for detail in details if detail for key in detail}
    return [key for key in SIGNS if key in present]


def part_weights(weights: RankingSettings) -> dict[str, tuple[float, int]]:
    """Each part's weight and sign, as configured (and so as the ranker used them)."""
    return {key: (getattr(weights, key), sign) for key, sign in SIGNS.items()}


def named(value: str | None, names: dict[str, str]) -> str:
    return names.get(value or "", value or "")


def reason_name(code: str) -> str:
    return REASON_NAMES.get(code, code)


def local_time(value: datetime | None, zone: tzinfo) -> str:
    """``2026-11-01 09:00 -03``: in the desk's zone, with the zone's label (UTC when stored bare)."""
    if value is None:
        return ""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    local = aware.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or local.strftime('%z')}"


def count_of(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def target_name(target: str) -> str:
    """An audit entry's object in words: ``generation:43`` → ``tuit 43``."""
    kind, _, rest = target.partition(":")
    if kind == "generations" and rest:
        return f"{rest} tuits"
    named_kinds = {"generation": "tuit", "audit": "entrada", "user": "usuario", "request": "solicitud"}
    return f"{named_kinds[kind]} {rest}" if kind in named_kinds and rest else target


def describe(action: str, detail: dict[str, Any]) -> str:
    """An audit entry's detail in words (the client is shown beside the admin, not here)."""
    ids = detail.get("ids") or []
    if action == "review":
        parts = [count_of(len(ids), "tuit", "tuits")]
        if detail.get("reason"):
            parts.append(f"motivo: {reason_name(str(detail['reason']))}")
        if detail.get("note"):
            parts.append(f"nota: {detail['note']}")
        return " · ".join(parts)
    if action == "undo":
        return count_of(len(ids), "tuit vuelto a su estado anterior", "tuits vueltos a su estado anterior")
    if action == "login_failed":
        verdict = "bloqueado por intentos" if detail.get("verdict") == "locked" else "contraseña incorrecta"
        return f"cuenta «{detail.get('account', '')}» · {verdict}"
    if action in ("password", "sessions_closed"):
        return count_of(int(detail.get("closed") or 0), "sesión cerrada", "sesiones cerradas")
    if action == "publish":
        return "en " + ", ".join(str(where) for where in detail.get("to") or [])
    rest = {k: v for k, v in detail.items() if k != "client"}
    return " · ".join(f"{k}: {v}" for k, v in rest.items())
