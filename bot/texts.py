"""Every message users read, in Spanish, in one place (so wording stays consistent and reviewable).

Replies are plain text (no Markdown): adapters may send them as they are on any platform.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.types import FICTION_LABEL

if TYPE_CHECKING:
    from bot.catalog import Catalog
    from bot.parser import ParsedCommand

SENTIMENT_NAMES = {"POSITIVE": "positivo", "NEGATIVE": "negativo", "NEUTRAL": "neutral", "MIXED": "mixto"}
_KIND_SINGULAR = {"side": "lado", "coalition": "coalición", "party": "partido", "sentiment": "sentimiento"}
_KIND_PLURAL = {"side": "lados", "coalition": "coaliciones", "party": "partidos", "sentiment": "sentimientos"}
_OPTIONS_CMD = "Escribe /opciones para ver la lista."

EXAMPLES = (
    "/tuit",
    "/tuit derecha positivo pensiones",
    "/tuit izquierda negativo #EducaciónGratuita",
    '/tuit chile vamos "más seguridad" carabineros',
    "/tuit partido=PDC sentimiento=mixto tema=salud",
)

START = (
    "¡Hola! Escribo tuits ficticios de políticos chilenos con modelos GPT-2.\n"
    "Prueba /tuit o /tuit izquierda positivo salud. /ayuda explica todo.\n"
    "Ningún político escribió estos tuits: son inventados por una máquina."
)


def help_text() -> str:
    examples = "\n".join(f"  {e}" for e in EXAMPLES)
    return (
        "Cómo pedir un tuit ficticio:\n"
        "  /tuit [lado] [coalición] [partido] [sentimiento] [tema…] [#hashtags] [\"frases\"]\n"
        "Todo es opcional y en cualquier orden; sin nada elijo al azar.\n"
        "  • lado: derecha, centro, izquierda\n"
        "  • sentimiento: positivo, negativo, neutral o mixto\n"
        "  • #hashtag y @mención van tal cual; las demás palabras son el tema\n"
        "  • \"texto entre comillas\": una frase que el tuit debería decir\n"
        "  • campos explícitos: lado=, coalicion=, partido=, sentimiento=, tema=, hashtags=, frases=\n"
        f"Ejemplos:\n{examples}\n"
        "Otros comandos: /otra (otro tuit como el anterior), /opciones (lados, coaliciones, "
        "partidos), /ayuda.\n"
        "Juego para grupos: /adivina muestra un tuit real y uno ficticio; voten cuál es el real. "
        "/puntos muestra el ranking.\n"
        "Los botones 👍 👎 califican un tuit y 🔁 escribe otro igual.\n"
        f"Todos los tuits son inventados: {FICTION_LABEL}"
    )


def options_text(catalog: Catalog) -> str:
    lines = ["Lados:"]
    for side in catalog.sides:
        names = ", ".join(n for n in catalog.names_of("side", side) if n != side)
        lines.append(f"  • {side}" + (f" ({names})" if names else ""))
    lines.append("Coaliciones y sus partidos:")
    for coalition in catalog.coalitions:
        parties = ", ".join(p.key for p in catalog.parties_where(coalition=coalition))
        lines.append(f"  • {coalition}" + (f": {parties}" if parties else ""))
    lines.append("Partidos:")
    for party in catalog.parties.values():
        lines.append(f"  • {party.key}: {party.name} ({party.side})")
    lines.append("Sentimientos: positivo, negativo, neutral, mixto (también en inglés).")
    return "\n".join(lines)


# -- parse errors ----------------------------------------------------------------------------

ERR_CONTROL_CHARS = (
    "Tu mensaje trae caracteres de control invisibles. Escríbelo de nuevo como texto normal, "
    "por ejemplo: /tuit derecha positivo pensiones"
)
ERR_ONLY_PUNCTUATION = (
    "Solo veo signos de puntuación. Escribe palabras, por ejemplo: /tuit izquierda salud, "
    "o /tuit sin nada para uno al azar."
)


def err_too_long(length: int, limit: int) -> str:
    return (
        f"El comando es muy largo ({length} caracteres; el máximo es {limit}). "
        "Usa menos palabras, por ejemplo: /tuit derecha positivo pensiones"
    )


def err_unknown_field(key: str) -> str:
    return (
        f"No conozco el campo «{key}». Los campos son lado=, coalicion=, partido=, "
        "sentimiento=, tema=, hashtags= y frases= (ej.: partido=PDC)."
    )


def err_empty_field(key: str) -> str:
    return f"Al campo «{key}=» le falta el valor, por ejemplo {key}=positivo o {key}=\"dos palabras\"."


def err_unknown_value(kind: str, value: str, suggestion: str | None) -> str:
    guess = f" ¿Quisiste decir «{suggestion}»?" if suggestion else ""
    return f"No conozco el {_KIND_SINGULAR.get(kind, kind)} «{value}».{guess} {_OPTIONS_CMD}"


def err_two_values(kind: str, first: str, second: str) -> str:
    return (
        f"Pediste dos {_KIND_PLURAL[kind]} ({_show(kind, first)} y {_show(kind, second)}); "
        "elige uno."
    )


def err_party_side(party: str, party_side: str, side: str) -> str:
    return f"El partido {party} es de {party_side}, no de {side}. {_OPTIONS_CMD}"


def err_party_coalition(party: str, party_coalition: str, coalition: str) -> str:
    return f"El partido {party} es de {party_coalition}, no de {coalition}. {_OPTIONS_CMD}"


def err_coalition_side(coalition: str, side: str) -> str:
    return f"{coalition} no tiene partidos de {side}. {_OPTIONS_CMD}"


def _show(kind: str, value: str) -> str:
    return SENTIMENT_NAMES.get(value, value) if kind == "sentiment" else value


# -- replies ---------------------------------------------------------------------------------

RESTARTING = "Me estoy reiniciando; te respondo apenas vuelva."
BUSY = "Estoy con mucho trabajo, intenta en unos segundos. ⏳"
TIMEOUT = "Me demoré demasiado escribiendo el tuit. Intenta de nuevo en un momento."
GENERATION_FAILED = "No pude escribir el tuit esta vez. Intenta de nuevo en un momento."
BLOCKED = "No me salió un tuit publicable con esos datos. Prueba con otro tema o sentimiento."
INTERNAL_ERROR = "Algo falló de mi lado. Ya quedó registrado; intenta de nuevo en un momento."
BANNED = "No puedo atender tus pedidos."
NO_PREVIOUS = "Todavía no me pediste ningún tuit aquí. Prueba con /tuit"
STALE_BUTTON = "Ese botón ya no sirve. Pide uno nuevo con /tuit"
RATED_UP = "¡Gracias! 👍 anotado."
RATED_DOWN = "Gracias, 👎 anotado."
NOT_AVAILABLE = "Esa acción no está disponible aquí."
EXPIRED = "Se me pasó responder tu pedido a tiempo. Pídelo de nuevo con /tuit"


def rate_limited(wait_s: float) -> str:
    """The user's own limit was reached."""
    seconds = max(1, round(wait_s))
    return f"Vas muy rápido: espera {seconds} s antes de pedir otro tuit."


def chat_rate_limited(wait_s: float) -> str:
    """The chat's shared limit was reached: the user may have asked only once."""
    seconds = max(1, round(wait_s))
    return (f"En este chat se pidieron muchos tuits en el último minuto: "
            f"se puede volver a pedir en {seconds} s.")


def unknown_command(name: str, suggestion: str | None) -> str:
    guess = f"¿Quisiste decir /{suggestion}? " if suggestion else ""
    shown = f"/{name}" if name else "eso"
    return f"No conozco {shown}. {guess}Escribe /ayuda para ver cómo pedir un tuit."


def understood(parsed: ParsedCommand, model: str = "", casual: bool = False) -> str:
    """One line that says how the command was read ("Entendí: …"), marking random choices."""

    def mark(name: str, value: str) -> str:
        return f"{value} (al azar)" if name in parsed.chosen else value

    parts: list[str] = []
    if parsed.side:
        parts.append(f"lado {mark('side', parsed.side)}")
    if parsed.coalition:
        parts.append(mark("coalition", parsed.coalition))
    if parsed.party:
        parts.append(f"partido {mark('party', parsed.party)}")
    if parsed.sentiment:
        parts.append(mark("sentiment", SENTIMENT_NAMES.get(parsed.sentiment, parsed.sentiment)))
    if parsed.entities:
        parts.append("tema: " + ", ".join(parsed.entities))
    if parsed.hashtags:
        parts.append(" ".join(f"#{h}" for h in parsed.hashtags))
    if parsed.phrases:
        parts.append(" ".join(f"“{p}”" for p in parsed.phrases))
    line = "Entendí: " + (" · ".join(parts) if parts else "un tuit al azar")
    if parsed.corrections:
        line += " (" + ", ".join(f"«{typed}» = {SENTIMENT_NAMES.get(value, value)}"
            for typed, value in parsed.corrections) + ")"
    if casual:
        line += f" — modelo {model}"
        if parsed.entities or parsed.hashtags or parsed.phrases or parsed.sentiment:
            line += " (escribe libre: no usa tema ni sentimiento)"
    return line


def tweet_reply(tweet: str, understood_line: str) -> str:
    """A tweet as users see it: the tweet, how the command was read, and the fiction label."""
    return f"{tweet}\n\n{understood_line}\n{FICTION_LABEL}"
