"""Review in chat: ``/revisar``, ``/pendientes``, ``/ban``, ``/desban`` for admins, and
``/borrarme`` for everyone, plus the ✅ ❌ 🚩 buttons under a tweet under review.

Platform-neutral like the core: it reads ``Origin`` and returns ``Reply``; Telegram and Discord
only differ in where the admin list comes from (``[telegram] admins`` / ``[discord] admins``).
Admin commands answer only in a private chat, so a review never shows one user's requests to a
group. Everything that touches another user's data checks the admin list first; ``/borrarme``
only ever touches the caller's own data. The same ``ReviewStore`` backs the web desk, so both
leave the same audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol

from bot.catalog import normalize
from bot.config import Settings
from bot.texts import SENTIMENT_NAMES
from bot.types import FICTION_LABEL, Button, Origin, Reply
from db.review import Detail, Forgotten, ReviewStore

logger = logging.getLogger(__name__)

PRIVATE_KINDS = frozenset({"private", "dm"})

NOT_ADMIN = "Ese comando es solo para quienes administran el bot."
USE_PRIVATE = "Por privacidad, usa los comandos de revisión en un chat privado conmigo."
QUEUE_EMPTY = "No hay tuits pendientes de revisión. 🎉"
UNAVAILABLE = "No pude consultar el registro ahora. Intenta de nuevo en un momento."
BAN_USAGE = "Uso: /ban ID_DE_USUARIO (o plataforma:ID, p. ej. /ban telegram:12345)"
UNBAN_USAGE = "Uso: /desban ID_DE_USUARIO (o plataforma:ID)"
NO_SUCH_TWEET = "Ese tuit ya no existe en el registro."
CANT_BAN_ADMIN = "No se puede bloquear a un administrador."
NOTHING_STORED = "No tengo datos tuyos guardados."

DECISION_DONE = {"approved": "✅ Aprobado", "rejected": "❌ Rechazado", "flagged": "🚩 Marcado"}
ACTIONS = {"approve": "approved", "reject": "rejected", "flag": "flagged"}

#: Typed command (normalized) → what it does; English aliases as elsewhere in the bot.
COMMANDS = {
    "revisar": "revisar", "review": "revisar",
    "pendientes": "pendientes", "pending": "pendientes",
    "ban": "ban", "bloquear": "ban",
    "desban": "desban", "unban": "desban", "desbloquear": "desban",
    "borrarme": "borrarme", "forgetme": "borrarme", "deleteme": "borrarme",
}

CommandHandler = Callable[[Origin, str], Awaitable[Reply]]
ActionHandler = Callable[[Origin, int], Awaitable[Reply]]


class Core(Protocol):
    """The hooks ``bot.core.BotCore`` offers for extra commands and buttons."""

    def register_command(self, name: str, handler: CommandHandler) -> None: ...

    def register_action(self, action: str, handler: ActionHandler) -> None: ...


class ChatReview:
    """The review commands over a :class:`ReviewStore`; ``install`` hooks them into the core."""

    def __init__(self, settings: Settings, store: ReviewStore) -> None:
        self.store = store
        self._claim = timedelta(minutes=settings.admin.claim_minutes)
        self._admins = {
            "telegram": {str(i) for i in settings.telegram.admins},
            "discord": {str(i) for i in settings.discord.admins},
        }

    def install(self, core: Core) -> None:
        for name in COMMANDS:
            core.register_command(name, self.command_for(name))
        for action in ACTIONS:
            core.register_action(action, self.button_for(action))

    def is_admin(self, origin: Origin) -> bool:
        return str(origin.user_id) in self._admins.get(origin.platform, set())

    # -- entry points -------------------------------------------------------------------------

    def command_for(self, name: str) -> CommandHandler:
        what = COMMANDS[name]

        async def run(origin: Origin, args: str) -> Reply:
            return await self.command(origin, what, args)

        return run

    def button_for(self, action: str) -> ActionHandler:
        async def run(origin: Origin, generation_id: int) -> Reply:
            return await self.decide(origin, generation_id, ACTIONS[action])

        return run

    async def command(self, origin: Origin, what: str, args: str = "") -> Reply:
        """Run one review command; never raises (a database problem is a polite reply)."""
        try:
            if what == "borrarme":
                return await self.forget(origin)
            refusal = self._refusal(origin)
            if refusal is not None:
                return refusal
            if what == "revisar":
                return await self.next_item(origin)
            if what == "pendientes":
                return await self.pending(origin)
            if what in ("ban", "desban"):
                return await self.ban(origin, args, banned=what == "ban")
        except Exception:
            logger.exception("review command %s failed", what)
            return Reply("error", UNAVAILABLE)
        return Reply("error", NOT_ADMIN)

    async def decide(self, origin: Origin, generation_id: int, decision: str) -> Reply:
        """A ✅ ❌ 🚩 press: record it, then show the next pending tweet."""
        refusal = self._refusal(origin)
        if refusal is not None:
            return refusal
        try:
            done = await self.store.decide([generation_id], decision, _admin(origin))
            if not done:
                return Reply("info", NO_SUCH_TWEET)
            head = f"{DECISION_DONE[decision]}: tuit {generation_id}."
            return await self.next_item(origin, head)
        except Exception:
            logger.exception("review decision on %s failed", generation_id)
            return Reply("error", UNAVAILABLE)

    # -- commands -----------------------------------------------------------------------------

    async def next_item(self, origin: Origin, head: str = "") -> Reply:
        # Claimed for this admin, as the web desk's stream does: two admins never get one tweet.
        found = await self.store.next_pending(admin=_admin(origin), claim=self._claim)
        if found is None:
            return Reply("info", "\n\n".join(filter(None, (head, QUEUE_EMPTY))))
        counts = await self.store.counts()
        generation = next(g for g in found.generations if g.shown and g.review_status == "pending")
        text = review_text(found, generation.id, counts["pending"])
        buttons = (
            Button("✅", "approve", generation.id),
            Button("❌", "reject", generation.id),
            Button("🚩", "flag", generation.id),
        )
        return Reply("info", "\n\n".join(filter(None, (head, text))), buttons=buttons)

    async def pending(self, origin: Origin) -> Reply:
        counts = await self.store.counts()
        return Reply(
            "info",
            f"Pendientes de revisión: {counts['pending']}\n"
            f"Aprobados: {counts['approved']} · rechazados: {counts['rejected']} · "
            f"marcados: {counts['flagged']}",
        )

    async def ban(self, origin: Origin, args: str, banned: bool) -> Reply:
        target = _target(origin, args)
        if target is None:
            return Reply("error", BAN_USAGE if banned else UNBAN_USAGE)
        platform, external_id = target
        if banned and external_id in self._admins.get(platform, set()):
            return Reply("error", CANT_BAN_ADMIN)
        changed = await self.store.set_banned(platform, external_id, banned, _admin(origin))
        who = f"{platform}:{external_id}"
        if not changed:
            return Reply("info", f"{who} ya estaba {'bloqueado' if banned else 'sin bloqueo'}.")
        return Reply("info", f"{who} {'bloqueado' if banned else 'desbloqueado'}.")

    async def forget(self, origin: Origin) -> Reply:
        gone = await self.store.forget_user(origin.platform, str(origin.user_id))
        return Reply("info", forgotten_text(gone))

    def _refusal(self, origin: Origin) -> Reply | None:
        if not self.is_admin(origin):
            return Reply("error", NOT_ADMIN)
        if origin.chat_kind not in PRIVATE_KINDS:
            return Reply("error", USE_PRIVATE)
        return None


def review_text(item: Detail, generation_id: int, pending: int) -> str:
    """A tweet under review with everything a reviewer needs, as plain text."""
    generation = item.generation(generation_id)
    assert generation is not None
    controls = [
        f"{label} {value}"
        for label, value in (
            ("lado", item.side), ("coalición", item.coalition), ("partido", item.party),
            ("sentimiento", SENTIMENT_NAMES.get(item.sentiment, item.sentiment)), ("tema", str(item.controls.get("topic") or "")),
        )
        if value
    ]
    lines = [
        f"Revisión · tuit {generation.id} (solicitud {item.request_id}) · {pending} pendiente(s)",
        f"De: {item.user or '—'} ({item.user_ref or 'sin usuario'}) · "
        f"{item.created_at:%Y-%m-%d %H:%M} UTC",
        f"Pidió: {item.raw_command}",
        "Controles: " + (" · ".join(controls) or "ninguno"),
        f"Modelo: {item.model or '—'} · semilla {generation.seed if generation.seed is not None else '—'}",
        f"Valoraciones: 👍 {generation.up} · 👎 {generation.down}",
        "",
        generation.text,
        "",
        FICTION_LABEL,
    ]
    return "\n".join(lines)


def forgotten_text(gone: Forgotten) -> str:
    if not gone.anything:
        return NOTHING_STORED
    parts = [
        f"{gone.requests} pedido(s)",
        f"{gone.generations} tuit(s) generado(s)",
        f"{gone.ratings} valoración(es)",
    ]
    if gone.votes:
        parts.append(f"{gone.votes} voto(s) de ¿Real o ficticio?")
    if gone.profile:
        parts.append("tu perfil (nombre e identificador)")
    text = "Borré tus datos: " + ", ".join(parts) + "."
    if gone.kept_ban:
        text += " Tu identificador se conserva solo para mantener un bloqueo vigente."
    return text


def _admin(origin: Origin) -> str:
    return f"{origin.platform}:{origin.user_id}"


def _target(origin: Origin, args: str) -> tuple[str, str] | None:
    """``12345`` (same platform as the admin) or ``plataforma:12345``; None when unreadable."""
    words = args.split()
    if len(words) != 1:
        return None
    platform, _, external_id = words[0].rpartition(":")
    platform = normalize(platform) if platform else origin.platform
    external_id = external_id.lstrip("@")
    if platform not in ("telegram", "discord") or not external_id.isdigit():
        return None
    return platform, external_id
