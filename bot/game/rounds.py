"""Rounds of ¿Real o ficticio? on the command core: ``/adivina``, ``/puntos`` and the buttons.

``/adivina`` (``/real``, ``/guess``) picks a real tweet of the default model's held-out file,
asks the core for a generated one with the real one's controls (party, sentiment, topic,
hashtags: a fair pair, logged like any ``/tuit``), stores the round and answers with both
tweets as A and B under the game's label. Votes ("A es el real" / "B es el real") are stored
one per member; the round closes when its time is up (a timer here edits the message through
the front-end's editor, ``BotCore.register_editor``) or when its asker or an admin presses
"Revelar" (the press's answer replaces the message). Closing is one conditional UPDATE, so a
round is revealed once. A round whose timer was lost (the bot restarted) is revealed by the
next press on it, or by the next ``/adivina`` in its chat.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from bot.config import Settings
from bot.core import BotCore
from bot.game import texts
from bot.game.pool import PoolUnavailable, RealTweets
from bot.types import Button, MessageRef, Origin, Reply
from db.game import SLOTS, GameStore, NewRound, Round
from db.models import utcnow

logger = logging.getLogger(__name__)

#: Typed commands (normalized) → what they do; English aliases as elsewhere in the bot.
COMMANDS = {
    "adivina": "adivina", "real": "adivina", "guess": "adivina",
    "puntos": "puntos", "points": "puntos", "scores": "puntos",
}
#: What the log records as asked for a round's generated tweet.
RAW_COMMAND = "/adivina"


class Game:
    """The game over a :class:`GameStore`; ``install`` hooks it into the core."""

    def __init__(self, settings: Settings, store: GameStore, core: BotCore) -> None:
        self.settings = settings
        self.store = store
        self.core = core
        self.round_s = settings.game.round_s
        self.real_tweets = RealTweets(settings.generation.postprocess.max_chars)
        self._admins = {
            "telegram": {str(i) for i in settings.telegram.admins},
            "discord": {str(i) for i in settings.discord.admins},
        }
        self._timers: set[asyncio.Task[None]] = set()

    def install(self) -> None:
        for name, what in COMMANDS.items():
            self.core.register_command(name, self.start if what == "adivina" else self.scores)
        self.core.register_action("vote_a", functools.partial(self.vote, choice="A"))
        self.core.register_action("vote_b", functools.partial(self.vote, choice="B"))
        self.core.register_action("reveal", self.reveal)

    async def aclose(self) -> None:
        """Stop the timers (their rounds stay open; the next press on one reveals it)."""
        for task in list(self._timers):
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)

    # -- commands -----------------------------------------------------------------------------

    async def start(self, origin: Origin, args: str = "") -> Reply:
        """``/adivina``: a new round in this chat; never raises."""
        try:
            return await self._start(origin)
        except Exception:
            logger.exception("game: could not start a round in %s:%s", origin.platform, origin.chat_id)
            return Reply("error", texts.UNAVAILABLE)

    async def scores(self, origin: Origin, args: str = "") -> Reply:
        """``/puntos``: the chat's ranking over its finished rounds."""
        try:
            return Reply("info", texts.scores_text(await self.store.scores(origin.platform, origin.chat_id)))
        except Exception:
            logger.exception("game: scores failed in %s:%s", origin.platform, origin.chat_id)
            return Reply("error", texts.UNAVAILABLE)

    async def _start(self, origin: Origin) -> Reply:
        if origin.platform not in self.core.editors:
            return Reply("info", texts.PLATFORM_ONLY)  # no buttons to vote with (the console)
        model = self.settings.generation.default_model
        spec = self.settings.generation.models.get(model)
        try:
            pool = self.real_tweets.pool(model, spec.real_tweets if spec else "")
        except PoolUnavailable as exc:
            return Reply("error", str(exc))
        current = await self.store.open_in(origin.platform, origin.chat_id)
        if current is not None:
            left = (current.deadline - utcnow()).total_seconds()
            if left > 0:
                return Reply("info", texts.already_open(left))
            await self._close_and_edit(current.id)  # its timer was lost: reveal it now
        real = self.core.rng.choice(pool)
        reply = await self.core.tweet_for(origin, RAW_COMMAND, real.controls())
        if reply.kind != "tweet" or reply.tweet is None:
            return reply  # refused, busy, failed, or a message delivered again
        fake = reply.tweet
        slot = self.core.rng.choice(SLOTS)
        started = await self.store.start(NewRound(
            platform=origin.platform, chat_external_id=origin.chat_id, chat_kind=origin.chat_kind,
            chat_title=origin.chat_title, user_external_id=origin.user_id, user_name=origin.user_name,
            model=fake.model, controls=real.controls(), real_slot=slot, real_text=real.text,
            real_author=real.author, real_date=real.date, fake_text=fake.text,
            generation_id=fake.generation_id, seconds=self.round_s,
        ))
        # The fake is shown only inside the round: never resent alone after a restart.
        await self.core.mark_sending(fake.generation_id)
        self._schedule(started.id)
        shown = {slot: real.text, ("B" if slot == "A" else "A"): fake.text}
        return Reply(
            "info", texts.round_text(shown["A"], shown["B"], self.round_s),
            buttons=(Button(texts.VOTE_LABELS["A"], "vote_a", started.id),
                     Button(texts.VOTE_LABELS["B"], "vote_b", started.id),
                     Button(texts.REVEAL_LABEL, "reveal", started.id)),
            on_sent=functools.partial(self._sent, started.id, fake.generation_id),
        )

    async def _sent(self, round_id: int, generation_id: int, where: MessageRef) -> None:
        """The round's message is out: remember where, so its reveal can edit it."""
        try:
            await self.store.set_message(round_id, where)
            await self.core.mark_sent(generation_id, where.get("ref", ""))
        except Exception:
            logger.exception("game: could not store where round %s was sent", round_id)

    # -- buttons ------------------------------------------------------------------------------

    async def vote(self, origin: Origin, round_id: int, choice: str) -> Reply:
        """"A es el real" / "B es el real": one vote per member, a second press changes it."""
        try:
            found = await self._round_here(origin, round_id)
            if found is None:
                return Reply("info", texts.GONE)
            outcome = await self.store.vote(round_id, origin.platform, origin.user_id,
                                            origin.user_name, choice)
            if outcome == "closed":
                # Past its time but still open: its timer was lost, so this press reveals it.
                if found.closed_at is None and await self.store.close(round_id, "time"):
                    return Reply("update", await self._reveal_text(round_id))
                return Reply("info", texts.CLOSED)
            if outcome == "missing":
                return Reply("info", texts.GONE)
            return Reply("info", texts.voted(outcome, choice))
        except Exception:
            logger.exception("game: vote on round %s failed", round_id)
            return Reply("error", texts.UNAVAILABLE)

    async def reveal(self, origin: Origin, round_id: int) -> Reply:
        """"Revelar": the asker or an admin closes the round now; the message shows the result."""
        try:
            found = await self._round_here(origin, round_id)
            if found is None:
                return Reply("info", texts.GONE)
            if found.closed_at is not None:
                return Reply("info", texts.CLOSED)
            if origin.user_id != found.user_external_id and not self._is_admin(origin):
                return Reply("info", texts.NOT_YOURS)
            if not await self.store.close(round_id, "button"):
                return Reply("info", texts.CLOSED)
            return Reply("update", await self._reveal_text(round_id))
        except Exception:
            logger.exception("game: reveal of round %s failed", round_id)
            return Reply("error", texts.UNAVAILABLE)

    async def _round_here(self, origin: Origin, round_id: int) -> Round | None:
        """The round, if it belongs to the chat the button was pressed in."""
        found = await self.store.get(round_id)
        if found is None or found.platform != origin.platform or found.chat_external_id != origin.chat_id:
            return None
        return found

    def _is_admin(self, origin: Origin) -> bool:
        return str(origin.user_id) in self._admins.get(origin.platform, set())

    # -- closing ------------------------------------------------------------------------------

    def _schedule(self, round_id: int) -> None:
        task = asyncio.create_task(self._time_up(round_id), name=f"game-round-{round_id}")
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _time_up(self, round_id: int) -> None:
        await asyncio.sleep(self.round_s)
        try:
            await self._close_and_edit(round_id)
        except Exception:
            logger.exception("game: could not close round %s", round_id)

    async def _close_and_edit(self, round_id: int) -> None:
        """Close a round whose time is up and edit its message to the result (if it is still
        open: a "Revelar" press may have closed it first)."""
        if not await self.store.close(round_id, "time"):
            return
        found = await self.store.get(round_id)
        editor = self.core.editors.get(found.platform) if found else None
        if found is None or editor is None or not found.message:
            logger.warning("game: round %s closed, but its message cannot be edited", round_id)
            return
        if not await editor(found.message, Reply("update", await self._reveal_text(round_id))):
            logger.warning("game: the result of round %s could not be shown", round_id)

    async def _reveal_text(self, round_id: int) -> str:
        found = await self.store.get(round_id)
        assert found is not None
        return texts.reveal_text(found, await self.store.votes(round_id))
