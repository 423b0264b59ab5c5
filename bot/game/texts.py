"""What players of ¿Real o ficticio? read, in Spanish, in one place.

Every message that shows the generated tweet says, above both tweets, that one of them is
fictional (:data:`ROUND_LABEL`); the reveal also labels the fictional one as every generated
tweet is labelled (:data:`bot.types.FICTION_LABEL`). Labels come first, so cutting a message
to a platform's limit can never cut them off.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.types import FICTION_LABEL
from db.game import Round, Score, Vote

ROUND_LABEL = "🤖 Uno de estos dos tuits es ficticio · este político no existe"
TITLE = "¿Real o ficticio?"
#: Button labels, by slot voted real.
VOTE_LABELS = {"A": "A es el real", "B": "B es el real"}
REVEAL_LABEL = "Revelar"
#: How many voters' names a reveal lists.
NAMES_SHOWN = 20

PLATFORM_ONLY = "¿Real o ficticio? se juega en Telegram o Discord, con botones. Prueba /tuit aquí."
GONE = "Esa ronda ya no existe. Empieza otra con /adivina"
CLOSED = "Esta ronda ya terminó. Empieza otra con /adivina"
NOT_YOURS = "Solo quien empezó la ronda o quien administra el bot puede revelarla."
NO_SCORES = "Aún no hay rondas terminadas en este chat. Empieza una con /adivina"
UNAVAILABLE = "No pude consultar el juego ahora. Intenta de nuevo en un momento."


def round_text(a: str, b: str, seconds: float) -> str:
    """The open round: both tweets under the label, and how to vote."""
    return (
        f"{ROUND_LABEL}\n{TITLE} Uno lo escribió un político de verdad; el otro, una máquina.\n\n"
        f"A)\n{a}\n\nB)\n{b}\n\n"
        f"¿Cuál es el real? Vota abajo (puedes cambiar tu voto). Revelo en {seconds:.0f} s, "
        "o antes si quien empezó la ronda pulsa «Revelar»."
    )


def already_open(seconds_left: float) -> str:
    return (
        f"Ya hay una ronda en curso en este chat: vota en su mensaje (termina en "
        f"{max(1, round(seconds_left))} s)."
    )


def voted(outcome: str, slot: str) -> str:
    """The private answer to a vote: ``new``, ``changed`` or ``same``."""
    if outcome == "changed":
        return f"Cambiaste tu voto: ahora {slot} es el real."
    if outcome == "same":
        return f"Ya habías votado que {slot} es el real. El otro botón cambia tu voto."
    return f"Anotado: {slot} es el real. Puedes cambiar tu voto hasta que se revele."


def _source(item: Round) -> str:
    who = item.real_author or "autor desconocido"
    return f"{who}, {item.real_date}" if item.real_date else who


def reveal_text(item: Round, votes: Sequence[Vote]) -> str:
    """The closed round: which was real (author, date), which fictional (labelled), the votes."""
    parts = [f"{ROUND_LABEL}\n{TITLE} Resultado:"]
    for slot in ("A", "B"):
        if slot == item.real_slot:
            parts.append(f"✅ {slot}) era REAL: {_source(item)}\n{item.real_text}")
        else:
            parts.append(
                f"🤖 {slot}) era FICTICIO: lo escribió el modelo «{item.model}».\n"
                f"{item.fake_text}\n{FICTION_LABEL}"
            )
    right = [v.name or "(sin nombre)" for v in votes if v.choice == item.real_slot]
    fooled = len(votes) - len(right)
    if not votes:
        parts.append("Nadie votó esta vez.")
    else:
        tally = (
            f"Votos: {len(votes)} · acertaron {len(right)} · el tuit ficticio engañó a {fooled} "
            f"({fooled / len(votes):.0%})."
        )
        if right:
            names = ", ".join(right[:NAMES_SHOWN]) + ("…" if len(right) > NAMES_SHOWN else "")
            tally += f"\nAcertaron: {names}."
        parts.append(tally)
    parts.append("Otra ronda: /adivina · ranking: /puntos")
    return "\n\n".join(parts)


def scores_text(scores: Sequence[Score]) -> str:
    """The chat's ranking (``/puntos``)."""
    if not scores:
        return NO_SCORES
    lines = [f"🏆 {TITLE} · puntos en este chat (rondas terminadas):"]
    for place, score in enumerate(scores, 1):
        lines.append(
            f"{place}. {score.name or '(sin nombre)'}: {score.right} acierto(s) de {score.votes}"
        )
    return "\n".join(lines)
