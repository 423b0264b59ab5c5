"""The command core every front-end shares: commands in, replies out, everything logged.

A tweet request goes: admission (ban, rate limits) → ``log.begin`` (the command is committed as
*pending* before any work, so a crash leaves a trace a restarted bot can answer) → parse →
choose the model and controls → generate → ``log.finish`` (committed before the reply is
returned, so a reply never shows a tweet the log lacks). Nothing here raises to the caller:
bad input, a busy engine or an unexpected failure all come back as a polite :class:`Reply`.

Answered once: ``begin`` leases the request to this process for ``bot.lease_s`` seconds, and the
app's heartbeat (``db/leases.py``) renews the lease until the answer is delivered (up to
:func:`max_hold_seconds`), so another process takes it over only if this one died; a message the
platform delivers again is recognised by its ``source`` and ignored. Once a tweet is to be
written, the front-end's placeholder (``Origin.placeholder``) is put up and logged while the
model writes; the reply names it (``Reply.answer_ref``), the front-end edits it into the tweet
and reports the delivery (:meth:`BotCore.delivered`). An edit repeated by a peer after a crash
shows the same single tweet.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, Protocol

from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot import texts
from bot.catalog import Catalog, normalize
from bot.config import Settings
from bot.followup import apply_change, asks_for_tweet
from bot.lexicon import Lexicon
from bot.parser import (
    COMMANDS,
    ParsedCommand,
    ParseError,
    parse_change,
    parse_command,
    parse_fields,
    split_command,
    with_choices,
)
from bot.ratelimit import RateLimiter
from bot.types import Button, Editor, Incoming, MessageRef, Origin, Reply, Tweet
from db.log import GenerationLog, LeaseLost, LoggedRequest, NewGeneration
from generation.decoding.ranking import contrasts_for, negatives_for
from generation.prompts import RANDOM_SENTIMENTS, SENTIMENTS
from generation.serving.service import TweetRequest, TweetResult
from generation.settings import GenerationSettings
from generation.types import (
    BlockedOutput,
    EngineBusy,
    EngineClosed,
    GenerationError,
    GenerationTimeout,
    PromptSpec,
)

logger = logging.getLogger(__name__)

RATE_WINDOW_S = 60.0
#: Commands longer than this are logged cut (they are refused anyway, past max_command_chars).
MAX_LOGGED_CHARS = 4000
#: A request is held for at most the generation's time limit plus this (logging around it).
HOLD_MARGIN_S = 10.0

ActionHandler = Callable[[Origin, int], Awaitable[Reply]]
CommandHandler = Callable[[Origin, str], Awaitable[Reply]]
#: Why a request was turned away before generating: the engine's queue was full, the rate
#: limiter said wait, or the user is banned.
Refusal = Literal["busy", "rate_limited", "banned"]
#: Why a request got no tweet: a command that does not parse, a full queue, the time limit,
#: every candidate rejected, the engine shutting down, a backend error, or a bug.
Failure = Literal["bad_input", "busy", "timeout", "blocked", "closed", "generation", "internal"]
#: What a live process took over from a dead one: a request still to be written, or one written
#: whose answer never reached the platform.
Takeover = Literal["pending", "unanswered"]
#: Where the answer goes, once known: the placeholder being put up (a task), or none.
Holding = asyncio.Task[MessageRef | None] | None


class Generator(Protocol):
    """What the core needs of ``generation.serving.service.TweetGenerator``."""

    async def generate(self, req: TweetRequest) -> TweetResult: ...


class Monitor(Protocol):
    """Where the core reports what operators watch, per front-end (``bot/monitor.py`` turns it
    into Prometheus metrics); injected so the core stays free of any metrics library."""

    def answered(self, frontend: str, seconds: float) -> None:
        """A labelled tweet is ready, ``seconds`` after the request reached the core."""

    def first_token(self, frontend: str, seconds: float) -> None:
        """The engine wrote a request's first token ``seconds`` after taking it."""

    def refused(self, frontend: str, reason: Refusal) -> None:
        """A request was turned away before generating."""

    def failed(self, frontend: str, kind: Failure) -> None:
        """A request got no tweet."""

    def took_over(self, frontend: str, kind: Takeover) -> None:
        """This process claimed a request another one (dead, or stopped) left unanswered."""


class Unmonitored:
    """The monitor of a core nobody watches (``politico chat``, tests): it drops everything."""

    def answered(self, frontend: str, seconds: float) -> None:
        pass

    def first_token(self, frontend: str, seconds: float) -> None:
        pass

    def refused(self, frontend: str, reason: Refusal) -> None:
        pass

    def failed(self, frontend: str, kind: Failure) -> None:
        pass

    def took_over(self, frontend: str, kind: Takeover) -> None:
        pass


@dataclass(frozen=True)
class _Plan:
    """A resolved request: the controls, the model (None: the default) and the prompt."""

    parsed: ParsedCommand
    model: str | None
    prompt: PromptSpec
    casual: bool


def failure_of(exc: Exception) -> Failure:
    """The kind of failure a generation error is, as the monitor counts it."""
    if isinstance(exc, EngineClosed):
        return "closed"
    if isinstance(exc, EngineBusy):
        return "busy"
    if isinstance(exc, GenerationTimeout):
        return "timeout"
    if isinstance(exc, BlockedOutput):
        return "blocked"
    if isinstance(exc, GenerationError | ValueError):
        return "generation"
    return "internal"


def max_hold_seconds(generation: GenerationSettings) -> float:
    """How long a process may take to answer a request: past this its handler is stuck, and the
    heartbeat stops renewing the lease so that another process may answer it.

    The generator tries up to ``postprocess.max_tries`` rounds, each bounded by the engine's
    (or the remote backend's) time limit; the margin covers the log writes around them.
    """
    limit = generation.engine.request_timeout_s
    if generation.backend == "remote":
        limit = max(limit, generation.remote.timeout_s)
    return limit * generation.postprocess.max_tries + HOLD_MARGIN_S


class BotCore:
    """Platform-neutral command handling (see the module docstring for the flow)."""

    def __init__(self, settings: Settings, generator: Generator, log: GenerationLog,
                 limiter: RateLimiter, rng: random.Random | None = None,
                 monitor: Monitor | None = None) -> None:
        self.settings = settings
        self.generator = generator
        self.log = log
        self.limiter = limiter
        self.monitor = monitor or Unmonitored()
        self.catalog = Catalog.from_settings(settings.politics, Lexicon.load(settings.bot.lexicon))
        self.rng = rng or random.Random()
        self.lease_s = settings.bot.lease_s
        self.max_hold_s = max_hold_seconds(settings.generation)
        self._actions: dict[str, ActionHandler] = {
            "up": self._rate_up, "down": self._rate_down, "again": self.again,
        }
        self._commands: dict[str, CommandHandler] = {}
        #: Platform → how its front-end edits a message it sent (``register_editor``).
        self.editors: dict[str, Editor] = {}

    def register_action(self, action: str, handler: ActionHandler) -> None:
        """Add a button action (``bot/review.py`` adds approve / reject / flag)."""
        self._actions[action] = handler

    def register_command(self, name: str, handler: CommandHandler) -> None:
        """Add a typed command, called with the text after it (``bot/review.py`` adds /revisar…)."""
        self._commands[normalize(name).replace(" ", "")] = handler

    def register_editor(self, platform: str, editor: Editor) -> None:
        """A front-end's way to edit what it sent, for replies that change later on their own
        (a game round revealed when its time is up, ``bot/game``)."""
        self.editors[platform] = editor

    async def tweet_for(self, origin: Origin, raw: str, controls: dict[str, Any]) -> Reply:
        """A tweet with exactly these controls, admitted, logged and de-duplicated like ``/tuit``
        (``raw`` is what the log records as asked): the fictional half of a game round."""
        try:
            # The tweet is shown inside the caller's own message: no placeholder of its own.
            return await self._tuit(replace(origin, placeholder=None), raw, ParsedCommand.from_controls(controls))
        except Exception:
            logger.exception("unexpected error generating for %r", raw[:64])
            return self._internal_error(origin.platform)

    # -- entry points --------------------------------------------------------------------------

    async def handle(self, incoming: Incoming) -> Reply:
        """Answer one typed command."""
        try:
            return await self._handle(incoming)
        except Exception:
            logger.exception("unexpected error handling %r", incoming.text[:200])
            return self._internal_error(incoming.origin.platform)

    async def tuit_options(self, origin: Origin, **options: str | None) -> Reply:
        """``/tuit`` from structured options (Discord's slash command), same rules as typed."""
        try:
            parsed = parse_fields(self.catalog, self.settings.bot.max_command_chars, **options)
            if isinstance(parsed, ParsedCommand):
                raw = parsed.as_command()
            else:
                given = " ".join(f'{k}="{v}"' for k, v in options.items() if v)
                raw = f"/tuit {given}".strip()[: self.settings.bot.max_command_chars * 2]
            return await self._tuit(origin, raw, parsed)
        except Exception:
            logger.exception("unexpected error handling options %r", options)
            return self._internal_error(origin.platform)

    async def again(self, origin: Origin, generation_id: int | None = None) -> Reply:
        """Another tweet with the same controls and a new seed: of the user's last request in
        this chat (``/otra``) or of the request behind ``generation_id`` (🔁)."""
        try:
            if generation_id is None:
                parent = await self.log.last_request(origin.platform, origin.user_id, origin.chat_id)
                if parent is None:
                    return Reply("info", texts.NO_PREVIOUS)
                parent_id, controls, raw = parent.id, parent.controls, "/otra"
            else:
                generation = await self.log.generation(generation_id)
                if generation is None:
                    return Reply("info", texts.STALE_BUTTON)
                parent_id, controls, raw = generation.request_id, generation.controls, f"again:{generation_id}"
            return await self._tuit(origin, raw, ParsedCommand.from_controls(controls), parent_id)
        except Exception:
            logger.exception("unexpected error repeating %s", generation_id)
            return self._internal_error(origin.platform)

    async def follow_up(self, origin: Origin, change: str, generation_id: int | None = None) -> Reply:
        """Another tweet with an earlier one's controls, changed only where ``change`` says
        ("más enojado", "ahora de izquierda", "sobre salud"; "" or "otra" changes nothing): of
        the tweet ``generation_id`` (a button), else of the tweet ``origin`` replies to, else of
        the user's last request in this chat (``/otra más negativo``). The new request's parent
        is logged."""
        try:
            parent = await self._parent(origin, generation_id)
            if parent is None:
                return Reply("info", texts.NO_PREVIOUS if generation_id is None else texts.STALE_BUTTON)
            parent_id, controls = parent
            parsed = self._changed(ParsedCommand.from_controls(controls), change)
            return await self._tuit(origin, f"/otra {change}".strip(), parsed, parent_id)
        except Exception:
            logger.exception("unexpected error following up on %s", generation_id)
            return self._internal_error(origin.platform)

    async def reply_to_tweet(self, origin: Origin, text: str) -> Reply:
        """A plain message that replies to one of the bot's messages (``origin.replied_ref``).

        When it replies to a tweet and asks for another ("más enojado", "otra": see
        ``bot/followup.py``) it is a follow-up of that tweet; anything else gets nothing in a
        group, where people reply to the bot's tweets to talk among themselves, and a hint on
        how to ask in a private chat.
        """
        try:
            generation = await self.log.generation_by_message(origin.platform, origin.replied_ref)
            if generation is None:
                return Reply("ignored", "")
            change = parse_change(text, self.catalog, self.settings.bot.max_command_chars)
            if isinstance(change, ParseError) or not asks_for_tweet(change):
                if origin.chat_kind != "private":
                    return Reply("ignored", "")
                return Reply("info", change.message if isinstance(change, ParseError) else texts.FOLLOW_UP_HINT)
            parsed = apply_change(ParsedCommand.from_controls(generation.controls), change, self.catalog)
            return await self._tuit(origin, f"/otra {text}".strip(), parsed, generation.request_id)
        except Exception:
            logger.exception("unexpected error reading a reply %r", text[:64])
            return self._internal_error(origin.platform)

    async def _parent(self, origin: Origin, generation_id: int | None) -> tuple[int, dict[str, Any]] | None:
        """(request id, controls) a follow-up starts from (see :meth:`follow_up`)."""
        generation = None
        if generation_id is not None:
            generation = await self.log.generation(generation_id)
            if generation is None:
                return None
        elif origin.replied_ref:
            generation = await self.log.generation_by_message(origin.platform, origin.replied_ref)
        if generation is not None:
            return generation.request_id, generation.controls
        last = await self.log.last_request(origin.platform, origin.user_id, origin.chat_id)
        return None if last is None else (last.id, last.controls)

    def _changed(self, earlier: ParsedCommand, change: str) -> ParsedCommand | ParseError:
        """``earlier`` changed where ``change`` says (nothing when it is empty)."""
        if not change.strip():
            return earlier
        parsed = parse_change(change, self.catalog, self.settings.bot.max_command_chars)
        return parsed if isinstance(parsed, ParseError) else apply_change(earlier, parsed, self.catalog)

    async def press(self, origin: Origin, data: str) -> Reply:
        """A button under a tweet (callback data ``action:generation_id``, or
        ``tone:generation_id:SENTIMENT`` for another sentiment)."""
        action, _, raw_id = (data or "").partition(":")
        if action.strip() == "tone":
            return await self._tone(origin, raw_id)
        handler = self._actions.get(action.strip())
        # Negative ids are provisional ones handed out while the database was down (db/spool.py).
        if handler is None or not raw_id.strip().removeprefix("-").isdigit():
            return Reply("info", texts.STALE_BUTTON)
        try:
            return await handler(origin, int(raw_id))
        except Exception:
            logger.exception("unexpected error on button %r", data[:64])
            return self._internal_error(origin.platform)

    async def mark_sending(self, generation_id: int) -> bool:
        """Record that a tweet is being handed to the platform now; False: do not send it.

        False means another process already began sending it (it resumed an unsent tweet). If
        the mark cannot be stored at all, sending goes ahead: answering now is worth the small
        chance of a second copy after a crash in the next milliseconds.
        """
        try:
            return await self.log.mark_sending(generation_id)
        except Exception:
            logger.exception("could not mark generation %s as being sent", generation_id)
            return True

    async def mark_sent(self, generation_id: int, message_ref: str) -> bool:
        """Record which platform message carried a tweet (False if it could not be stored)."""
        try:
            return await self.log.mark_sent(generation_id, message_ref)
        except Exception:
            logger.exception("could not mark generation %s as sent", generation_id)
            return False

    async def delivered(self, reply: Reply, message_ref: str) -> None:
        """The platform has ``reply`` (in ``message_ref``; "" when it refused it for good, say a
        user who blocked the bot): its request is answered and nobody delivers it again."""
        try:
            if reply.tweet is not None:
                await self.log.mark_sent(reply.tweet.generation_id, message_ref, reply.tweet.request_id)
            elif reply.request_id is not None:
                await self.log.answered(reply.request_id)
        except Exception:
            logger.exception("could not record the delivery of request %s", reply.request_id)

    async def undelivered(self, reply: Reply) -> None:
        """The platform could not take ``reply`` for now (a network error): its lease is let go,
        so that a live process (this one too) delivers it again soon from the log."""
        if reply.request_id is None:
            return
        try:
            await self.log.release(reply.request_id)
        except Exception:
            logger.exception("could not release request %s after a failed delivery", reply.request_id)

    async def resume(self, request_id: int, origin: Origin | None = None) -> Reply:
        """Answer a request left *pending* (its process stopped before replying), in place.

        Admission already happened when it arrived, so it goes straight to generation; a
        request that is no longer pending gets an ``info`` reply and is not generated again.
        The answer goes into the placeholder the log names, or into one put up now through
        ``origin.placeholder`` (which answers in the request's chat).
        """
        platform = "unknown"
        try:
            request = await self.log.request(request_id)
            if request is None or request.status != "pending":
                return Reply("info", texts.STALE_BUTTON)
            platform = request.platform
            parsed = await self._parsed_for(request)
            if isinstance(parsed, ParseError):
                self.monitor.failed(platform, "bad_input")
                await self.log.finish(request.id, "invalid", error=parsed.message)
                return Reply("error", parsed.message, request_id=request.id)
            if request.answer_ref:
                holding = _known({"ref": request.answer_ref})
            else:
                holding = self._hold(request.id, origin)
            return await self._answer(request.id, parsed, platform, holding)
        except Exception:
            logger.exception("unexpected error resuming request %s", request_id)
            return self._internal_error(platform)

    async def redeliver(self, request: LoggedRequest) -> Reply | None:
        """The answer of a finished request, rebuilt from the log (nothing is generated): for
        one whose answer never reached the platform. A tweet comes back as stored; a refusal
        or a failure with the words it was given. None when there is nothing to say."""
        answer_ref: MessageRef | None = {"ref": request.answer_ref} if request.answer_ref else None
        for generation_id in request.generation_ids:
            generation = await self.log.generation(generation_id)
            if generation is None or not generation.shown:
                continue
            controls = generation.controls
            resolved = replace(ParsedCommand.from_controls(controls), chosen=tuple(controls.get("chosen", ())))
            spec = self.settings.generation.models.get(generation.model)
            tweet = Tweet(
                generation_id=generation.id, request_id=generation.request_id, text=generation.text,
                side=resolved.side, coalition=resolved.coalition, party=resolved.party,
                sentiment=resolved.sentiment, topic=resolved.topic, model=generation.model,
                seed=generation.seed or 0,
            )
            reply = self._tweet_reply(tweet, resolved, casual=spec is not None and spec.kind == "casual")
            return replace(reply, request_id=request.id, answer_ref=answer_ref)
        said = _said(request.status, request.error)
        return None if said is None else replace(said, request_id=request.id, answer_ref=answer_ref)

    async def _tone(self, origin: Origin, data: str) -> Reply:
        """The same tweet in another sentiment (``generation_id:SENTIMENT``), as a follow-up."""
        raw_id, _, value = data.partition(":")
        if not raw_id.strip().removeprefix("-").isdigit() or value not in SENTIMENTS:
            return Reply("info", texts.STALE_BUTTON)
        return await self.follow_up(origin, texts.SENTIMENT_NAMES[value], int(raw_id))

    def _internal_error(self, platform: str) -> Reply:
        """The reply to a bug (already logged by the caller), counted for the front-end."""
        self.monitor.failed(platform, "internal")
        return Reply("error", texts.INTERNAL_ERROR)

    @staticmethod
    def origin_of(request: LoggedRequest) -> Origin:
        """The origin of a logged request (for front-ends answering it after a restart)."""
        reply_to = {str(k): str(v) for k, v in request.reply_to.items()}
        message_id = reply_to.pop("message_id", "")
        return Origin(
            platform=request.platform, user_id=request.user_external_id,
            chat_id=request.chat_external_id, user_name=request.user_name,
            chat_kind=request.chat_kind or "private", chat_title=request.chat_title,
            message_id=message_id, reply_ref=reply_to, source=request.source or "",
        )

    # -- commands ------------------------------------------------------------------------------

    async def _handle(self, incoming: Incoming) -> Reply:
        text, origin = incoming.text, incoming.origin
        parsed = parse_command(text, self.catalog, self.settings.bot.max_command_chars)
        parts = split_command(text[: self.settings.bot.max_command_chars * 4])
        extra = self._commands.get(normalize(parts[0]).replace(" ", "")) if parts else None
        if extra is not None:
            return await extra(origin, parts[2])
        command = COMMANDS.get(normalize(parts[0]).replace(" ", "")) if parts else None
        if command == "tuit":
            return await self._tuit(origin, text, parsed)
        if isinstance(parsed, ParseError):
            self.monitor.failed(origin.platform, "bad_input")
            return Reply("error", parsed.message)
        if parsed.command == "otra":
            change = parts[2] if parts else ""
            if change or origin.replied_ref:  # "/otra más negativo", or /otra replying to a tweet
                return await self.follow_up(origin, change)
            return await self.again(origin)
        if parsed.command == "ayuda":
            return Reply("help", texts.help_text())
        if parsed.command == "opciones":
            return Reply("options", texts.options_text(self.catalog))
        if parsed.command == "start":
            return Reply("help", texts.START)
        self.monitor.failed(origin.platform, "bad_input")
        return Reply("error", texts.unknown_command(parsed.name, self._suggest_command(parsed.name)))

    @staticmethod
    def _suggest_command(name: str) -> str | None:
        if not name:
            return None
        best = process.extractOne(normalize(name), list(COMMANDS), scorer=OSA.normalized_distance,
                                  score_cutoff=0.4)
        return COMMANDS[best[0]] if best else None

    async def _tuit(self, origin: Origin, raw: str, parsed: ParsedCommand | ParseError,
                    parent_id: int | None = None) -> Reply:
        received = time.perf_counter()
        begun = await self.log.begin(
            origin.platform, origin.user_id, origin.user_name, origin.chat_id, origin.chat_kind,
            origin.chat_title, raw[:MAX_LOGGED_CHARS], {"message_id": origin.message_id, **origin.reply_ref}, parent_id,
            source=origin.source or None, lease_s=self.lease_s,
        )
        if origin.on_logged is not None:
            origin.on_logged()
        request_id = begun.id
        if begun.duplicate:
            # Delivered again (the platform never heard it was received): the first delivery's
            # request is answered, or is resumed by the process that restarts; not answered twice.
            logger.info("%s message %s already logged as request %s: ignored",
                        origin.platform, origin.source, request_id)
            return Reply("ignored", "")
        # Admitted once logged: a message delivered again (after a crash) uses no quota twice.
        refusal = await self._admit(origin)
        if refusal is not None:
            status = "rate_limited" if refusal.kind == "rate_limited" else "banned"
            self.monitor.refused(origin.platform, status)
            await self.log.finish(request_id, status, error=refusal.text)
            return replace(refusal, request_id=request_id)
        if isinstance(parsed, ParseError):
            self.monitor.failed(origin.platform, "bad_input")
            await self.log.finish(request_id, "invalid", error=parsed.message)
            return Reply("error", parsed.message, request_id=request_id)
        reply = await self._answer(request_id, parsed, origin.platform, self._hold(request_id, origin))
        if reply.kind == "tweet":
            self.monitor.answered(origin.platform, time.perf_counter() - received)
        return reply

    async def _admit(self, origin: Origin) -> Reply | None:
        """None when the user may ask for a tweet now, else the refusal."""
        if await self.log.is_banned(origin.platform, origin.user_id):
            return Reply("error", texts.BANNED)
        per_user, per_chat = self.settings.rate_limits.for_platform(origin.platform)
        for key, limit, refusal in (
            (f"user:{origin.platform}:{origin.user_id}", per_user, texts.rate_limited),
            (f"chat:{origin.platform}:{origin.chat_id}", per_chat, texts.chat_rate_limited),
        ):
            try:
                wait = await self.limiter.hit(key, limit, RATE_WINDOW_S)
            except Exception:
                # A broken limiter (Redis down) must not take the bot down with it.
                logger.warning("rate limiter failed; letting %s through", key, exc_info=True)
                continue
            if wait is not None:
                return Reply("rate_limited", refusal(wait))
        return None

    def _hold(self, request_id: int, origin: Origin | None) -> Holding:
        """Put up ``origin``'s placeholder and log where it is, while the tweet is written."""
        if origin is None or origin.placeholder is None:
            return None
        return asyncio.ensure_future(self._put_up(request_id, origin.placeholder))

    async def _put_up(self, request_id: int, placeholder: Callable[[], Awaitable[MessageRef | None]]) -> MessageRef | None:
        try:
            ref = await placeholder()
            if ref is None:
                return None
            if not await self.log.hold(request_id, ref["ref"]):
                # Another process logged one first (it took the request over meanwhile).
                request = await self.log.request(request_id)
                return {"ref": request.answer_ref} if request and request.answer_ref else ref
            return ref
        except Exception:
            logger.warning("could not put up the placeholder of request %s", request_id, exc_info=True)
            return None

    async def _answer(self, request_id: int, parsed: ParsedCommand, platform: str, holding: Holding) -> Reply:
        """Generate and log the answer; nothing to say when another process took the request
        over meanwhile (this one's lease ended): that one answers it, not both."""
        try:
            return await self._generate(request_id, parsed, platform, holding)
        except LeaseLost:
            logger.warning("request %s was taken over by another process: not answered here", request_id)
            return Reply("ignored", "")

    async def _parsed_for(self, request: LoggedRequest) -> ParsedCommand | ParseError:
        """What a logged request asked for: its parent's controls (``/otra``, 🔁) or its text."""
        if request.parent_id is not None:
            parent = await self.log.request(request.parent_id)
            if parent is not None:
                parts = split_command(request.raw_command)
                change = parts[2] if parts and parts[0] == "otra" else ""  # "/otra más enojado"
                return self._changed(ParsedCommand.from_controls(parent.controls), change)
        parts = split_command(request.raw_command)
        if parts and COMMANDS.get(normalize(parts[0]).replace(" ", "")) == "tuit":
            return parse_command(request.raw_command, self.catalog, len(request.raw_command) + 1)
        return ParseError(texts.EXPIRED)

    # -- generation ----------------------------------------------------------------------------

    def plan(self, parsed: ParsedCommand) -> _Plan:
        """Fill in what was not asked for and choose the model.

        A side with its own (casual) model writes when the user named only the side; otherwise
        the controlled model gets a party (chosen by weight within the side and coalition when
        none was named), its coalition, and a sentiment (at random when none was named).
        """
        if parsed.side and not parsed.party and not parsed.coalition:
            side_model = self.catalog.side_model(parsed.side)
            if side_model:  # a casual model's prompt is the tweet's start (its own when none)
                return _Plan(parsed, side_model, PromptSpec("casual", seed_text=parsed.start), casual=True)
        chosen: dict[str, str] = {}
        if not parsed.party:
            party = self.catalog.pick_party(self.rng, parsed.side, parsed.coalition)
            if party is not None:
                chosen = {"party": party.key, "coalition": party.coalition, "side": party.side}
        if not parsed.sentiment:
            chosen["sentiment"] = self.rng.choice(RANDOM_SENTIMENTS)
        resolved = with_choices(parsed, **chosen)
        fields = resolved.to_fields()
        ranking = self.settings.generation.ranking
        contrasts = contrasts_for(
            fields, self.catalog.contrast_parties(resolved.side, ranking.side_contrasts),
            [s for s in SENTIMENTS if s != resolved.sentiment],
        )
        negatives = negatives_for(fields, self.catalog.contrast_parties(resolved.side, 1))
        spec = PromptSpec("controlled", fields=fields, seed_text=resolved.start, contrasts=contrasts,
                          negatives=negatives)
        return _Plan(resolved, None, spec, casual=False)

    async def _generate(self, request_id: int, parsed: ParsedCommand, platform: str, holding: Holding) -> Reply:
        started = time.perf_counter()
        plan = self.plan(parsed)
        resolved = plan.parsed
        summary: dict[str, Any] = {
            "controls": resolved.controls(), "side": resolved.side, "coalition": resolved.coalition,
            "party": resolved.party, "sentiment": resolved.sentiment,
            "model": plan.model or self.settings.generation.default_model,
            "prompt": plan.prompt.text(),
        }
        seed = self.rng.randrange(2**31)
        request = TweetRequest(model=plan.model, prompt=plan.prompt, seed=seed,
                               n=self.settings.bot.candidates)
        try:
            result = await self.generator.generate(request)
        except Exception as exc:
            return await self._failed(request_id, exc, summary, seed, started, platform, holding)
        # Where the tweet goes is logged before the tweet is: a peer finishing the delivery
        # after a crash edits that message.
        answer_ref = await holding if holding is not None else None
        if result.first_token_s is not None:
            self.monitor.first_token(platform, result.first_token_s)
        best = 0  # the generator ranks the candidates best first
        ids = await self.log.finish(
            request_id, "ok", **{**summary, "model": result.model, "prompt": result.prompt_text},
            params={**asdict(result.params), **({"shed": result.shed} if result.shed else {})},
            seed=result.seed, queue_ms=result.queue_ms,
            latency_ms=(time.perf_counter() - started) * 1000,
            generations=[
                NewGeneration(text, tokens=tokens, latency_ms=latency, seed=own_seed,
                              shown=index == best, score=score, score_detail=detail)
                for index, (text, tokens, score, detail, own_seed, latency) in enumerate(zip(
                    result.texts, result.tokens, result.scores or [None] * len(result.texts),
                    result.score_details or [None] * len(result.texts),
                    result.seeds or [None] * len(result.texts),
                    result.latencies_ms or [result.latency_ms] * len(result.texts), strict=False))
            ],
        )
        tweet = Tweet(
            generation_id=ids[best], request_id=request_id, text=result.texts[best], side=resolved.side,
            coalition=resolved.coalition, party=resolved.party, sentiment=resolved.sentiment,
            topic=resolved.topic, model=result.model,
            # The shown tweet's own seed, as logged (and as ``redeliver`` reads it back).
            seed=(result.seeds[best] if result.seeds else None) or 0,
        )
        return replace(self._tweet_reply(tweet, resolved, plan.casual), request_id=request_id,
                       answer_ref=answer_ref)

    @staticmethod
    def _tweet_reply(tweet: Tweet, resolved: ParsedCommand, casual: bool) -> Reply:
        line = texts.understood(resolved, tweet.model, casual)
        generation_id = tweet.generation_id
        # Another sentiment, one press away (a casual model writes free: it takes none).
        tones = () if casual else tuple(
            Button(texts.TONE_LABELS[value], "tone", generation_id, value)
            for value in SENTIMENTS if value != tweet.sentiment
        )
        return Reply(
            "tweet", texts.tweet_reply(tweet.text, line), tweet,
            (Button("👍", "up", generation_id), Button("👎", "down", generation_id),
             Button("🔁", "again", generation_id)),
            choices=tones,
        )

    async def _failed(self, request_id: int, exc: Exception, summary: dict[str, Any], seed: int,
                      started: float, platform: str, holding: Holding) -> Reply:
        """Log a failed generation with its status, count it, and say so politely."""
        self.monitor.failed(platform, failure_of(exc))
        answer_ref = await holding if holding is not None else None
        if isinstance(exc, EngineClosed):
            # Shutting down: the request stays pending and this process gives up its lease, so
            # a live one (or the next to start) answers it at once, into the placeholder if
            # there is one (then nothing is said here: it already says a tweet is coming).
            try:
                await self.log.release(request_id)
            except Exception:
                logger.exception("could not release request %s", request_id)
            return Reply("ignored", "") if answer_ref is not None else Reply("busy", texts.RESTARTING)
        reply: Reply
        if isinstance(exc, EngineBusy):
            self.monitor.refused(platform, "busy")
            status, reply = "busy", Reply("busy", texts.BUSY)
        elif isinstance(exc, BlockedOutput):
            status, reply = "blocked", Reply("error", texts.BLOCKED)
        elif isinstance(exc, GenerationTimeout):
            status, reply = "error", Reply("error", texts.TIMEOUT)
        else:
            if not isinstance(exc, GenerationError | ValueError):
                logger.error("generation failed for request %s", request_id, exc_info=exc)
            status, reply = "error", Reply("error", texts.GENERATION_FAILED)
        await self.log.finish(request_id, status, **summary, seed=seed,
                              error=f"{type(exc).__name__}: {exc}"[:2000],
                              latency_ms=(time.perf_counter() - started) * 1000)
        return replace(reply, request_id=request_id, answer_ref=answer_ref)

    # -- buttons -------------------------------------------------------------------------------

    async def _rate(self, origin: Origin, generation_id: int, value: int) -> Reply:
        if not await self.log.rate(origin.platform, origin.user_id, generation_id, value, origin.user_name):
            return Reply("info", texts.STALE_BUTTON)
        return Reply("info", texts.RATED_UP if value > 0 else texts.RATED_DOWN)

    async def _rate_up(self, origin: Origin, generation_id: int) -> Reply:
        return await self._rate(origin, generation_id, 1)

    async def _rate_down(self, origin: Origin, generation_id: int) -> Reply:
        return await self._rate(origin, generation_id, -1)


def _known(ref: MessageRef) -> asyncio.Task[MessageRef | None]:
    """A placeholder already up (logged by an earlier process), as a finished holding."""
    async def known() -> MessageRef | None:
        return ref

    return asyncio.ensure_future(known())


def _said(status: str, error: str) -> Reply | None:
    """What a finished request without a tweet told its user, rebuilt from its status and the
    logged words: refusals store what they said; failures store why, and say a fixed text."""
    if status in ("rate_limited", "banned", "invalid") and error:
        return Reply("rate_limited" if status == "rate_limited" else "error", error)
    if status == "busy":
        return Reply("busy", texts.BUSY)
    if status == "blocked":
        return Reply("error", texts.BLOCKED)
    if status == "error":
        return Reply("error", texts.TIMEOUT if error.startswith(GenerationTimeout.__name__) else texts.GENERATION_FAILED)
    return None
