"""The Telegram bot: python-telegram-bot handlers that hand every command to the shared core.

Every command (``/tuit``, ``/otra``, ``/ayuda``, ``/opciones``, ``/start`` and any other, such as
the review commands) goes to ``core.handle`` as typed; every button press to ``core.press``;
inline queries become ``/tuit <query>``. Updates are handled concurrently, so a slow generation
never holds up other chats. Replies are plain text (no parse mode), cut to Telegram's limits,
and sent as replies to the command's message.

A tweet goes into a placeholder: once the core knows it will write one, a "✍️ Escribiendo…"
message is put up as the reply (a photo one when tweets are shown as cards), its id is logged,
and the tweet is edited into it. An edit can be repeated safely: after a crash, the process that
takes the request over (this one restarted, or a live peer) edits the same message, so the chat
shows one tweet. Editing costs one more Bot API call per tweet than a plain reply, and edits
count toward Telegram's per-chat limits (docs/deploy.md). A slow command that writes no tweet
shows "typing" and, past a few seconds, an "en cola" message its answer replaces.

Intake confirms an update to Telegram only once its command is logged: polling through
:class:`~bot.telegram.polling.ConfirmingPoller`, webhooks through
:class:`~bot.telegram.webhook.WebhookIntake`. Each origin carries the message's identity
(``source``), so an update delivered again after a crash is not answered twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlparse

from telegram import (
    BotCommand,
    InlineQueryResultArticle,
    InputMediaPhoto,
    InputTextMessageContent,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    BaseRateLimiter,
    CallbackQueryHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.config import TelegramSettings
from bot.resume import Resumer
from bot.telegram.convert import PLATFORM, command_text, keyboard, update_origin
from bot.telegram.limits import (
    CALLBACK_ANSWER,
    CAPTION,
    INLINE_DESCRIPTION,
    INLINE_TITLE,
    MESSAGE_TEXT,
    fit,
)
from bot.telegram.polling import ConfirmingPoller
from bot.telegram.webhook import WebhookIntake
from bot.types import FICTION_LABEL, Incoming, MessageRef, Origin, Reply, Tweet

if TYPE_CHECKING:
    from bot.app import App
    from db.log import LoggedRequest

log = logging.getLogger(__name__)

Render = Literal["text", "card", "both"]
T = TypeVar("T")
Placeholder = Callable[[], Awaitable[MessageRef | None]]

#: Commands shown in Telegram's menu (``setMyCommands``).
MENU = (
    ("tuit", "Un tuit ficticio: /tuit derecha positivo pensiones"),
    ("otra", "Otro tuit con las mismas opciones"),
    ("opciones", "Lados, coaliciones, partidos y sentimientos"),
    ("adivina", "¿Real o ficticio? Un juego para grupos"),
    ("puntos", "Puntos del juego en este chat"),
    ("ayuda", "Cómo pedir un tuit"),
    ("start", "Empezar"),
)
QUEUE_NOTICE = "⏳ En cola… tu tuit está en camino."
#: What a tweet's message says until the tweet is edited into it.
PLACEHOLDER = "✍️ Escribiendo tu tuit ficticio…"
FAILURE = "😕 Algo salió mal al responder. Inténtalo de nuevo en un momento."
INLINE_PROMPT = "/tuit"
#: A command answered within this long shows nothing while it works (nor one with a placeholder).
QUIET_S = 1.0
#: Telegram shows "typing" for about 5 seconds; it is renewed this often while working.
TYPING_EVERY_S = 4.5
#: A button press is answered at once when the core is this quick, else answered empty first
#: (Telegram gives up on an unanswered press after about 15 seconds).
CALLBACK_QUICK_S = 2.0
#: Quiet time after an inline query before it is answered (newer keystrokes replace it).
INLINE_SETTLE_S = 0.6
#: How long ``stop`` lets taken-over requests finish.
STOP_GRACE_S = 10.0
#: Telegram's words for an edit that would change nothing (the edit was made before) and for a
#: message that is no longer there to edit (deleted by someone in the chat).
NOT_MODIFIED = "message is not modified"
GONE = ("message to edit not found", "message_id_invalid", "message can't be edited")

#: How a call to Telegram went: done, refused for good (a user who blocked the bot, a deleted
#: chat), or failed for now (the network).
Outcome = Literal["done", "refused", "failed"]


class TelegramFrontend:
    """One bot account on the shared app; ``start`` and ``stop`` it from the runner."""

    #: What ``/health`` calls it, as the metrics label it.
    platform = PLATFORM

    def __init__(
        self,
        app: App,
        settings: TelegramSettings,
        *,
        render: Render = "text",
        rate_limiter: BaseRateLimiter | None = None,
        queue_notice_after_s: float = 3.0,
        resume_max_age_s: float = 600.0,
    ) -> None:
        self.app = app
        self.core = app.core
        self.settings = settings
        self.render = render
        self.queue_notice_after_s = queue_notice_after_s
        self.resume_max_age_s = resume_max_age_s
        self._resumer: Resumer | None = None
        self._intake: ConfirmingPoller | WebhookIntake | None = None
        self._latest_inline: dict[str, str] = {}
        #: The photo placeholders show (a card that says it is being written), once uploaded:
        #: Telegram's file id, so later ones do not upload it again.
        self._placeholder_photo: str | bytes | None = None
        builder = (
            Application.builder()
            .token(settings.token)
            .updater(None)
            .concurrent_updates(256)
            .rate_limiter(rate_limiter or AIORateLimiter(max_retries=3))
            .connection_pool_size(64)
            .pool_timeout(30)
        )
        if settings.base_url:
            builder = builder.base_url(settings.base_url).base_file_url(
                settings.base_url.replace("/bot", "/file/bot", 1)
            )
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.application.add_handler(
            MessageHandler(filters.UpdateType.MESSAGE & filters.COMMAND, self._on_command)
        )
        self.application.add_handler(MessageHandler(
            filters.UpdateType.MESSAGE & filters.REPLY & filters.TEXT & ~filters.COMMAND, self._on_reply
        ))
        self.application.add_handler(CallbackQueryHandler(self._on_button))
        self.application.add_handler(InlineQueryHandler(self._on_inline))
        self.application.add_error_handler(self._on_error)
        app.core.register_editor(PLATFORM, self.edit)

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, register the command menu, start taking updates, and start taking over
        what dead or stopped processes left unanswered."""
        application = self.application
        await application.initialize()
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in MENU])
        await application.start()
        settings = self.settings
        if settings.webhook_url:
            self._intake = WebhookIntake(
                application.bot, self._process, url=settings.webhook_url, listen=settings.webhook_listen,
                port=settings.webhook_port, path=urlparse(settings.webhook_url).path,
                secret=settings.webhook_secret,
            )
        else:
            self._intake = ConfirmingPoller(application.bot, self._process, timeout_s=10)
        await self._intake.start()
        log.info("telegram: @%s taking updates", application.bot.username)
        self._resumer = Resumer(
            self.core, PLATFORM, self.resume_max_age_s, self._answer_logged,
            answerable=lambda request: request.chat_kind != "inline",  # the inline query is gone
            origin_of=self._resumed_origin,
        )
        self._resumer.start()

    async def stop(self) -> None:
        """Stop taking updates (a webhook's port closes first, so a balancer moves on), let the
        ones in hand finish, stop taking requests over, and close the connection."""
        application = self.application
        if self._intake is not None:
            await self._intake.stop()
        if self._resumer is not None:
            await self._resumer.stop(STOP_GRACE_S)
        if application.running:
            await application.stop()
        await application.shutdown()

    async def _answer_logged(self, request: LoggedRequest, reply: Reply) -> None:
        """Deliver the answer of a request taken over (into its placeholder when it has one)."""
        chat_id, message_id = _logged_message(request)
        await self.deliver(reply, chat_id, int(message_id) if message_id.isdigit() else None)

    def _resumed_origin(self, request: LoggedRequest) -> Origin:
        """A taken-over request's origin: its placeholder goes up as a reply to its message."""
        chat_id, message_id = _logged_message(request)
        placeholder = _Placeholder(self, chat_id, int(message_id) if message_id.isdigit() else None)
        return replace(self.core.origin_of(request), placeholder=placeholder)

    # -- intake ------------------------------------------------------------------------------
    async def _process(self, update: Update) -> None:
        """Handle one polled update as PTB would (its handlers, within its concurrency limit)."""
        application = self.application
        await application.update_processor.process_update(update, application.process_update(update))

    def _origin(self, update: Update) -> Origin | None:
        """The update's origin: its command's logging confirms the update to Telegram, and a
        tweet's placeholder goes up as a reply to its message (not for inline messages)."""
        origin = update_origin(update)
        if origin is None:
            return None
        changes: dict[str, Any] = {}
        if self._intake is not None:
            changes["on_logged"] = self._intake.acknowledger(update.update_id)
        if origin.chat_kind != "inline" and origin.message_id.isdigit():
            changes["placeholder"] = _Placeholder(self, origin.chat_id, int(origin.message_id))
        return replace(origin, **changes)

    # -- handlers ----------------------------------------------------------------------------
    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        origin = self._origin(update)
        if message is None or origin is None:
            return
        text = command_text(message, context.bot.username)
        if text is None:
            return
        reply, notice = await self._while_working(
            message.chat_id, message.message_id, self.core.handle(Incoming(origin, text)), origin.placeholder
        )
        await self.deliver(reply, message.chat_id, message.message_id, notice=notice)

    async def _on_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Plain text replying to one of this bot's messages ("más enojado", "otra"): a
        follow-up of the tweet it replies to, when it asks for one (``core.reply_to_tweet``).
        In groups a bot in privacy mode still receives replies to its own messages."""
        message = update.message
        origin = self._origin(update)
        replied = message.reply_to_message if message is not None else None
        if message is None or origin is None or replied is None or replied.from_user is None \
                or replied.from_user.id != context.bot.id:
            return
        reply, notice = await self._while_working(
            message.chat_id, message.message_id, self.core.reply_to_tweet(origin, message.text or ""),
            origin.placeholder,
        )
        await self.deliver(reply, message.chat_id, message.message_id, notice=notice)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        origin = self._origin(update)
        if query is None or origin is None:
            return
        work = asyncio.ensure_future(self.core.press(origin, query.data or ""))
        done, _ = await asyncio.wait({work}, timeout=CALLBACK_QUICK_S)
        answered = False
        if not done:
            await _quietly(query.answer())
            answered = True
        message = query.message
        if done or message is None:
            reply, notice = await work, None
        else:
            reply, notice = await self._while_working(message.chat.id, message.message_id, work, origin.placeholder)
        if reply.kind == "ignored":
            return
        if reply.kind == "update":  # the press changes the message it was under
            if not answered:
                await _quietly(query.answer())
            if message is not None:
                await self.edit({"chat_id": str(message.chat.id), "message_id": str(message.message_id)}, reply)
            return
        if reply.kind != "tweet":
            text = fit(reply.text, CALLBACK_ANSWER)
            if not answered:
                await _quietly(query.answer(text, show_alert=reply.is_error and len(text) > 60))
            elif message is not None:
                await self.deliver(reply, message.chat.id, message.message_id, notice=notice)
            return
        if not answered:
            await _quietly(query.answer())
        if message is not None:
            await self.deliver(reply, message.chat.id, message.message_id, notice=notice)
        elif query.inline_message_id and reply.tweet and await self.core.mark_sending(reply.tweet.generation_id):
            _, outcome = await _attempt(self.application.bot.edit_message_text(
                fit(reply.text, MESSAGE_TEXT), inline_message_id=query.inline_message_id,
                reply_markup=keyboard(reply.buttons),
            ))
            await self._report(reply, f"inline:{query.inline_message_id}", outcome)

    async def _on_inline(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.inline_query
        origin = update_origin(update)
        if self._intake is not None:
            # Nothing to keep across a crash: an unanswered inline query is gone in seconds.
            self._intake.acknowledger(update.update_id)()
        if query is None or origin is None:
            return
        # Telegram sends a query per keystroke: only the one still current after a pause is
        # generated, so typing "derecha positivo" costs one tweet, not sixteen.
        self._latest_inline[origin.user_id] = query.id
        await asyncio.sleep(INLINE_SETTLE_S)
        if self._latest_inline.get(origin.user_id) != query.id:
            return
        self._latest_inline.pop(origin.user_id, None)
        reply = await self.core.handle(Incoming(origin, f"{INLINE_PROMPT} {query.query}".strip()))
        if reply.kind == "ignored":
            return
        if reply.kind == "tweet" and reply.tweet is not None:
            if not await self.core.mark_sending(reply.tweet.generation_id):
                return
            tweet = reply.tweet
            title = " · ".join(x for x in (tweet.party, tweet.coalition, tweet.side) if x)
            result = InlineQueryResultArticle(
                id=f"g{tweet.generation_id}",
                title=fit(f"🤖 {title or 'Tuit ficticio'}", INLINE_TITLE),
                description=fit(tweet.text, INLINE_DESCRIPTION),
                input_message_content=InputTextMessageContent(fit(reply.text, MESSAGE_TEXT)),
                reply_markup=keyboard(reply.buttons),
            )
        else:
            result = InlineQueryResultArticle(
                id=f"{reply.kind}",
                title=fit(reply.text.splitlines()[0] if reply.text.strip() else "…", INLINE_TITLE),
                description=fit(reply.text, INLINE_DESCRIPTION),
                input_message_content=InputTextMessageContent(fit(reply.text, MESSAGE_TEXT)),
            )
        _, outcome = await _attempt(query.answer([result], cache_time=0, is_personal=True))
        await self._report(reply, f"inline:{query.id}", outcome)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the failure and tell the person, instead of leaving them without an answer."""
        if not isinstance(update, Update):
            log.warning("telegram: %s", context.error)
            return
        log.error("telegram: update %s failed", update.update_id, exc_info=context.error)
        if update.callback_query is not None:
            await _quietly(update.callback_query.answer(FAILURE))
        elif update.message is not None and update.message.text:
            await _quietly(self.application.bot.send_message(
                update.message.chat_id, FAILURE, reply_parameters=_reply_to(update.message.message_id)
            ))

    # -- sending -----------------------------------------------------------------------------
    async def _while_working(
        self, chat_id: int, reply_to: int, work: Awaitable[Reply], placeholder: Placeholder | None = None,
    ) -> tuple[Reply, Message | None]:
        """Await the core. A command that takes more than a moment and put up no placeholder
        (it writes no tweet, or the placeholder failed) shows "typing" and, past a few seconds,
        an "en cola" message that its answer replaces."""
        task = asyncio.ensure_future(work)
        loop = asyncio.get_running_loop()
        notice_at = loop.time() + self.queue_notice_after_s
        notice: Message | None = None
        wait = min(QUIET_S, self.queue_notice_after_s)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=max(wait, 0))
                if done:
                    return task.result(), notice
                if isinstance(placeholder, _Placeholder) and placeholder.up:
                    return await task, notice  # the placeholder already says a tweet is coming
                await _quietly(self.application.bot.send_chat_action(chat_id, ChatAction.TYPING))
                if notice is None and loop.time() >= notice_at:
                    notice = await (placeholder.notice() if isinstance(placeholder, _Placeholder)
                                    else self.send_notice(chat_id, reply_to))
                wait = TYPING_EVERY_S if notice else min(TYPING_EVERY_S, notice_at - loop.time())
        finally:
            task.cancel()

    async def send_notice(self, chat_id: int | str, reply_to: int | None) -> Message | None:
        """The "en cola" notice a slow command shows until its answer replaces it."""
        return await _quietly(self.application.bot.send_message(
            chat_id, QUEUE_NOTICE, reply_parameters=_reply_to(reply_to)))

    async def put_up(self, chat_id: int | str, reply_to: int | None) -> MessageRef | None:
        """The placeholder a tweet will be edited into, as a reply to ``reply_to``; None when
        Telegram refused it (the tweet is then sent as a new message)."""
        bot = self.application.bot
        if self.render == "text":
            sent = await _quietly(bot.send_message(chat_id, PLACEHOLDER, reply_parameters=_reply_to(reply_to)))
        else:
            if self._placeholder_photo is None:
                self._placeholder_photo = await asyncio.to_thread(_placeholder_card)
            sent = await _quietly(bot.send_photo(
                chat_id, self._placeholder_photo, caption=PLACEHOLDER, reply_parameters=_reply_to(reply_to),
            ))
            if sent is not None and sent.photo:
                self._placeholder_photo = sent.photo[-1].file_id  # uploaded once, reused after
        if sent is None:
            return None
        return {"ref": f"{sent.chat_id}:{sent.message_id}", "chat_id": str(sent.chat_id),
                "message_id": str(sent.message_id)}

    async def deliver(
        self, reply: Reply, chat_id: int | str, reply_to: int | None, *, notice: Message | None = None
    ) -> Message | None:
        """Show ``reply`` in ``chat_id``: edited into its placeholder when it has one, else sent
        as a new reply (replacing ``notice``); then the delivery is reported to the core (a
        refusal for good counts as delivered, a failure for now leaves it to be done again)."""
        if reply.kind == "ignored":
            return None
        tweet = reply.tweet if reply.kind == "tweet" else None
        png: bytes | None = None
        if tweet is not None and self.render != "text":
            from bot.card import render_card

            png = await asyncio.to_thread(render_card, tweet)
        target = _message_of(reply.answer_ref)
        if target is not None:
            if notice is not None and (str(notice.chat_id), notice.message_id) != target:
                await _quietly(notice.delete())
            ref, outcome = await self._into_placeholder(target, reply, png)
            if outcome != "gone":
                await self._report(reply, ref, outcome)
                return None
        if tweet is not None and not await self.core.mark_sending(tweet.generation_id):
            return None  # another process began sending it as a new message: not twice
        sent, outcome = await self._send_new(reply, chat_id, reply_to, png, notice)
        await self._report(reply, f"{sent.chat_id}:{sent.message_id}" if sent else "", outcome)
        if reply.on_sent is not None and sent is not None:
            await reply.on_sent({"ref": f"{sent.chat_id}:{sent.message_id}", "chat_id": str(sent.chat_id),
                                 "message_id": str(sent.message_id)})
        return sent

    async def _into_placeholder(
        self, target: tuple[str, int], reply: Reply, png: bytes | None
    ) -> tuple[str, Outcome | Literal["gone"]]:
        """Edit the answer into its placeholder. An edit that changes nothing was made before
        (by a process that died before recording it): done. A placeholder that is gone (or a
        photo one, for an answer that is text) means a new message instead."""
        bot = self.application.bot
        chat_id, message_id = target
        ref = f"{chat_id}:{message_id}"
        markup = keyboard(reply.buttons)
        if png is not None:
            caption = reply.text if self.render == "both" and len(reply.text) <= CAPTION else FICTION_LABEL
            call = bot.edit_message_media(InputMediaPhoto(png, caption=fit(caption, CAPTION)),
                                          chat_id=chat_id, message_id=message_id, reply_markup=markup)
        elif self.render != "text":  # a photo placeholder cannot become text: replaced
            await _quietly(bot.delete_message(chat_id, message_id))
            return ref, "gone"
        else:
            call = bot.edit_message_text(fit(reply.text, MESSAGE_TEXT), chat_id=chat_id,
                                         message_id=message_id, reply_markup=markup)
        try:
            await call
        except BadRequest as exc:
            said = str(exc).casefold()
            if NOT_MODIFIED in said:
                return ref, "done"
            if any(words in said for words in GONE):
                return ref, "gone"
            log.info("telegram refused an edit: %s", exc)
            return ref, "refused"
        except Forbidden as exc:
            log.info("telegram refused an edit: %s", exc)
            return ref, "refused"
        except TelegramError as exc:
            log.warning("telegram edit failed: %s", exc)
            return ref, "failed"
        return ref, "done"

    async def _send_new(
        self, reply: Reply, chat_id: int | str, reply_to: int | None, png: bytes | None, notice: Message | None,
    ) -> tuple[Message | None, Outcome]:
        """Send the answer as a new message (the card as a photo), or in place of ``notice``."""
        bot = self.application.bot
        markup = keyboard(reply.buttons)
        if png is not None:
            caption = reply.text if self.render == "both" else FICTION_LABEL
            if notice is not None:
                await _quietly(notice.delete())
            return await _attempt(bot.send_photo(
                chat_id, png, caption=fit(caption if len(caption) <= CAPTION else FICTION_LABEL, CAPTION),
                reply_markup=markup, reply_parameters=_reply_to(reply_to),
            ))
        if notice is not None:
            edited, outcome = await _attempt(notice.edit_text(fit(reply.text, MESSAGE_TEXT), reply_markup=markup))
            return (edited if isinstance(edited, Message) else None), outcome
        return await _attempt(bot.send_message(
            chat_id, fit(reply.text, MESSAGE_TEXT), reply_markup=markup, reply_parameters=_reply_to(reply_to),
        ))

    async def _report(self, reply: Reply, ref: str, outcome: str) -> None:
        """Tell the core where the answer of a logged request went (see ``deliver``)."""
        if reply.request_id is None and reply.tweet is None:
            return
        if outcome == "failed":
            await self.core.undelivered(reply)
        else:
            await self.core.delivered(reply, ref if outcome == "done" else "")

    async def edit(self, where: MessageRef, reply: Reply) -> bool:
        """Replace the text and buttons of a message this bot sent (``where``: its chat and
        message ids); False when Telegram refused."""
        edited = await _quietly(self.application.bot.edit_message_text(
            fit(reply.text, MESSAGE_TEXT), chat_id=where["chat_id"], message_id=int(where["message_id"]),
            reply_markup=keyboard(reply.buttons),
        ))
        return edited is not None


@dataclass
class _Placeholder:
    """An origin's placeholder: put up in ``chat_id`` as a reply to ``reply_to`` when the core
    asks (``up`` tells ``_while_working`` that a message already says a tweet is coming). A
    command has one message before its answer: an "en cola" notice already up serves as the
    placeholder (a photo one replaces it when tweets are cards)."""

    frontend: TelegramFrontend
    chat_id: int | str
    reply_to: int | None
    up: bool = False
    _notice: Message | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def __call__(self) -> MessageRef | None:
        async with self._lock:
            notice = self._notice
            if notice is not None and self.frontend.render == "text":
                ref: MessageRef | None = {"ref": f"{notice.chat_id}:{notice.message_id}",
                                          "chat_id": str(notice.chat_id), "message_id": str(notice.message_id)}
            else:
                ref = await self.frontend.put_up(self.chat_id, self.reply_to)
            self.up = ref is not None
            return ref

    async def notice(self) -> Message | None:
        """The "en cola" notice, unless a placeholder is up already."""
        async with self._lock:
            if not self.up and self._notice is None:
                self._notice = await self.frontend.send_notice(self.chat_id, self.reply_to)
            return self._notice


def _placeholder_card() -> bytes:
    """The card a photo placeholder shows until the tweet's card replaces it."""
    from bot.card import render_card

    return render_card(Tweet(generation_id=0, request_id=0, text=PLACEHOLDER))


def _message_of(ref: MessageRef | None) -> tuple[str, int] | None:
    """The chat and message of a placeholder's ref (``chat_id:message_id``), if it is one."""
    chat_id, _, message_id = (ref or {}).get("ref", "").rpartition(":")
    return (chat_id, int(message_id)) if chat_id and message_id.isdigit() else None


def _logged_message(request: LoggedRequest) -> tuple[str, str]:
    """The chat and message a logged request came from."""
    return (str(request.reply_to.get("chat_id") or request.chat_external_id),
            str(request.reply_to.get("message_id", "")))


def _reply_to(message_id: int | None) -> ReplyParameters | None:
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


async def _attempt(call: Awaitable[T]) -> tuple[T | None, Outcome]:
    """Run a Bot API call and say how it went (see :data:`Outcome`), logging a refusal."""
    try:
        return await call, "done"
    except (BadRequest, Forbidden) as exc:
        log.info("telegram refused a call: %s", exc)
        return None, "refused"
    except TelegramError as exc:
        log.warning("telegram call failed: %s", exc)
        return None, "failed"


async def _quietly(call: Awaitable[T]) -> T | None:
    """Run a Bot API call whose failure must not end the handler (a blocked bot, an old query):
    Telegram's refusals are ordinary here; they are logged and the handler goes on."""
    return (await _attempt(call))[0]
