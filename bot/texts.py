"""Every message users read, in Spanish, in one place (so wording stays consistent and reviewable).

Replies are plain text (no Markdown): adapters may send them as they are on any platform.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.command import START_MAX_CHARS, ParsedCommand
from bot.types import FICTION_LABEL

if TYPE_CHECKING:
    from bot.catalog import Catalog

SENTIMENT_NAMES = {"POSITIVE": "positivo", "NEGATIVE": "negativo", "NEUTRAL": "neutral", "MIXED": "mixto"}
#: Buttons under a tweet that ask for it again in another sentiment (Discord).
TONE_LABELS = {"POSITIVE": "😊 positivo", "NEGATIVE": "😠 negativo", "NEUTRAL": "😐 neutral", "MIXED": "🤔 mixto"}
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
#: Written as people write in a group chat: /ayuda shows these first.
EVERYDAY_EXAMPLES = (
    "/tuit algo feliz sobre el sename",
    "/tuit como piñera hablando de delincuencia, bien enojado",
    '/tuit izquierda en contra de las AFP empieza: "Hoy marchamos"',
)
#: What a reply to one of the bot's tweets may say to get another one, changed.
FOLLOW_UP_EXAMPLES = "«más enojado», «ahora de izquierda», «sobre salud» u «otra»"

START = (
    "¡Hola! Escribo tuits ficticios de políticos chilenos con modelos GPT-2.\n"
    "Prueba /tuit o /tuit izquierda positivo salud. /ayuda explica todo.\n"
    "Ningún político escribió estos tuits: son inventados por una máquina."
)


def help_text() -> str:
    everyday = "\n".join(f"  {e}" for e in EVERYDAY_EXAMPLES)
    examples = "\n".join(f"  {e}" for e in EXAMPLES)
    return (
        "Cómo pedir un tuit ficticio: escríbelo como lo dirías.\n"
        f"{everyday}\n"
        "Todo es opcional y en cualquier orden; sin nada elijo al azar.\n"
        "  • lado: derecha, centro, izquierda, o un partido, coalición o candidato (kast, goic…)\n"
        "  • sentimiento: positivo, negativo, neutral o mixto, o como lo dirías: enojado, feliz, "
        "triste, en contra de…, a favor de…, en tono crítico\n"
        "  • tema: lo que sigue a «sobre» o «hablando de», o las palabras que no reconozco; "
        "separa varios con comas o «y»\n"
        "  • #hashtag y @mención van tal cual; \"texto entre comillas\": una frase que el tuit "
        "debería decir\n"
        "  • empieza: \"tus palabras\": el tuit parte con ellas (hasta "
        f"{START_MAX_CHARS} caracteres)\n"
        "  • campos explícitos: lado=, coalicion=, partido=, sentimiento=, tema=, hashtags=, frases=, "
        "empieza=\n"
        f"Más ejemplos:\n{examples}\n"
        f"Para cambiar un tuit, respóndele: {FOLLOW_UP_EXAMPLES}. "
        "/otra más negativo hace lo mismo con tu último tuit.\n"
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
    lines.append("Sentimientos: positivo, negativo, neutral, mixto (también en inglés), o como lo "
                 "dirías: enojado, furiosa, feliz, triste, preocupado, en contra de…, a favor de…")
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
        "sentimiento=, tema=, hashtags=, frases= y empieza= (ej.: partido=PDC)."
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


ERR_START_EMPTY = (
    'Después de «empieza:» escribe cómo parte el tuit, por ejemplo: '
    '/tuit derecha empieza: "Hoy en La Moneda"'
)
ERR_TWO_STARTS = "Pediste dos comienzos para el tuit; deja uno solo después de «empieza:»."


def err_start_too_long(length: int, limit: int) -> str:
    return (
        f"El comienzo del tuit es muy largo ({length} caracteres; el máximo es {limit}). "
        'Deja solo las primeras palabras, por ejemplo: empieza: "Hoy en La Moneda"'
    )


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
#: A reply to one of the bot's tweets that asks for nothing the bot can read (private chats
#: only: in a group, people reply to the bot's tweets to talk among themselves).
FOLLOW_UP_HINT = (
    f"Para otro tuit como ese, respóndele por ejemplo {FOLLOW_UP_EXAMPLES}. "
    "Para uno nuevo, usa /tuit"
)


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
    if parsed.start:
        parts.append(f"empieza: «{parsed.start}»")
    line = "Entendí: " + (" · ".join(parts) if parts else "un tuit al azar")
    if parsed.corrections:
        line += " (" + ", ".join(f"«{typed}» = {SENTIMENT_NAMES.get(value, value)}"
            for typed, value in parsed.corrections) + ")"
    if parsed.ignored:
        line += " · no usé: " + ", ".join(f"«{word}»" for word in parsed.ignored)
    if casual:
        line += f" — modelo {model}"
        if parsed.entities or parsed.hashtags or parsed.phrases or parsed.sentiment:
            line += " (escribe libre: no usa tema ni sentimiento)"
    return line


def tweet_reply(tweet: str, understood_line: str) -> str:
    """A tweet as users see it: the tweet, how the command was read, and the fiction label."""
    return f"{tweet}\n\n{understood_line}\n{FICTION_LABEL}"
