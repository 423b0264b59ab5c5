"""The Telegram bot: python-telegram-bot handlers that hand every command to the shared core.

Every command (``/tuit``, ``/otra``, ``/ayuda``, ``/opciones``, ``/start`` and any other, such as
the review commands) goes to ``core.handle`` as typed; every button press to ``core.press``;
inline queries become ``/tuit <query>``. Updates are handled concurrently, so a slow generation
never holds up other chats. While a tweet is being written the chat shows "typing", and a
request that waits long gets a short "en cola" message that the tweet later replaces.
Replies are plain text (no parse mode), cut to Telegram's limits, and sent as replies to the
command's message.

Polling goes through :class:`~bot.telegram.polling.ConfirmingPoller`, which confirms an update to
Telegram only once its command is logged; each origin carries the message's identity
(``source``), so an update delivered again after a crash is not answered twice. In webhook mode
PTB answers Telegram's call before the update is handled (see README, "Nothing lost").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlparse

from telegram import (
    BotCommand,
    InlineQueryResultArticle,
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
from bot.types import FICTION_LABEL, Incoming, MessageRef, Origin, Reply

if TYPE_CHECKING:
    from bot.app import App
    from db.log import LoggedRequest

log = logging.getLogger(__name__)

Render = Literal["text", "card", "both"]
T = TypeVar("T")

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
FAILURE = "😕 Algo salió mal al responder. Inténtalo de nuevo en un momento."
INLINE_PROMPT = "/tuit"
#: Telegram shows "typing" for about 5 seconds; it is renewed this often while generating.
TYPING_EVERY_S = 4.5
#: A button press is answered at once when the core is this quick, else answered empty first
#: (Telegram gives up on an unanswered press after about 15 seconds).
CALLBACK_QUICK_S = 2.0
#: Quiet time after an inline query before it is answered (newer keystrokes replace it).
INLINE_SETTLE_S = 0.6
#: How long ``stop`` lets resumed requests finish.
STOP_GRACE_S = 10.0


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
        self._resuming: asyncio.Task[None] | None = None
        self._poller: ConfirmingPoller | None = None
        self._latest_inline: dict[str, str] = {}
        self._started_at = datetime.now(UTC)
        builder = (
            Application.builder()
            .token(settings.token)
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
        """Connect, register the command menu, and start taking updates."""
        application = self.application
        await application.initialize()
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in MENU])
        await application.start()
        # Requests logged from now on are this run's own, in flight here: not for resuming.
        self._started_at = datetime.now(UTC)
        updater = application.updater
        assert updater is not None
        if self.settings.webhook_url:
            await updater.start_webhook(
                listen=self.settings.webhook_listen,
                port=self.settings.webhook_port,
                url_path=urlparse(self.settings.webhook_url).path.lstrip("/"),
                webhook_url=self.settings.webhook_url,
                secret_token=self.settings.webhook_secret or None,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            self._poller = ConfirmingPoller(application.bot, self._process, timeout_s=10)
            await self._poller.start()
        log.info("telegram: @%s taking updates", application.bot.username)
        self._resuming = asyncio.create_task(self.resume_pending(), name="telegram-resume")

    async def stop(self) -> None:
        """Stop fetching updates, let the ones in hand finish, and close the connection."""
        application = self.application
        if self._resuming is not None:
            # Like updates in hand, resumed requests get a moment to finish before being cut.
            await asyncio.wait({self._resuming}, timeout=STOP_GRACE_S)
            self._resuming.cancel()
            await asyncio.gather(self._resuming, return_exceptions=True)
        if self._poller is not None:
            await self._poller.stop()
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()

    async def resume_pending(self) -> None:
        """Answer the commands earlier runs logged but never answered or never sent.

        After a crash the log is the only trace of them. Recent ones are answered now, as
        replies to their message; older ones are marked expired (an answer an hour late would
        only confuse the chat). See ``bot/resume.py``.
        """
        await Resumer(
            self.core, PLATFORM, self.resume_max_age_s, self._started_at, self._answer_logged,
            answerable=lambda request: request.chat_kind != "inline",  # the inline query is gone
        ).run()

    async def _answer_logged(self, request: LoggedRequest, reply: Reply) -> None:
        chat_id = str(request.reply_to.get("chat_id") or request.chat_external_id)
        message_id = str(request.reply_to.get("message_id", ""))
        await self.deliver(reply, chat_id, int(message_id) if message_id.isdigit() else None)

    # -- intake ------------------------------------------------------------------------------
    async def _process(self, update: Update) -> None:
        """Handle one polled update as PTB would (its handlers, within its concurrency limit)."""
        application = self.application
        await application.update_processor.process_update(update, application.process_update(update))

    def _origin(self, update: Update) -> Origin | None:
        """The update's origin; when polling, its command's logging confirms the update."""
        origin = update_origin(update)
        if origin is None or self._poller is None:
            return origin
        return replace(origin, on_logged=self._poller.acknowledger(update.update_id))

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
            message.chat_id, message.message_id, self.core.handle(Incoming(origin, text))
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
        reply = await self.core.reply_to_tweet(origin, message.text or "")
        await self.deliver(reply, message.chat_id, message.message_id)

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
            reply, notice = await self._while_working(message.chat.id, message.message_id, work)
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
            await _quietly(self.application.bot.edit_message_text(
                fit(reply.text, MESSAGE_TEXT), inline_message_id=query.inline_message_id,
                reply_markup=keyboard(reply.buttons),
            ))

    async def _on_inline(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.inline_query
        origin = update_origin(update)
        if self._poller is not None:
            # Nothing to keep across a crash: an unanswered inline query is gone in seconds.
            self._poller.acknowledge(update.update_id)
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
        await _quietly(query.answer([result], cache_time=0, is_personal=True))

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
        self, chat_id: int, reply_to: int, work: Awaitable[Reply]
    ) -> tuple[Reply, Message | None]:
        """Await the core, showing "typing" and, past a few seconds, an "en cola" message."""
        task = asyncio.ensure_future(work)
        loop = asyncio.get_running_loop()
        notice_at = loop.time() + self.queue_notice_after_s
        notice: Message | None = None
        try:
            while True:
                await _quietly(self.application.bot.send_chat_action(chat_id, ChatAction.TYPING))
                wait = TYPING_EVERY_S if notice else min(TYPING_EVERY_S, notice_at - loop.time())
                done, _ = await asyncio.wait({task}, timeout=max(wait, 0))
                if done:
                    return task.result(), notice
                if notice is None and loop.time() >= notice_at:
                    notice = await _quietly(self.application.bot.send_message(
                        chat_id, QUEUE_NOTICE, reply_parameters=_reply_to(reply_to)
                    ))
        finally:
            task.cancel()

    async def deliver(
        self, reply: Reply, chat_id: int | str, reply_to: int | None, *, notice: Message | None = None
    ) -> Message | None:
        """Send ``reply`` in ``chat_id`` (replacing ``notice``); tweets are recorded as being
        sent right before the call, and as sent with their message id after it."""
        if reply.kind == "ignored":
            return None
        bot = self.application.bot
        markup = keyboard(reply.buttons)
        tweet = reply.tweet if reply.kind == "tweet" else None
        sent: Message | None
        png: bytes | None = None
        if tweet is not None and self.render != "text":
            from bot.card import render_card

            png = await asyncio.to_thread(render_card, tweet)
        if tweet is not None and not await self.core.mark_sending(tweet.generation_id):
            return None  # another process began sending it (it resumed this unsent tweet)
        if png is not None:
            caption = reply.text if self.render == "both" else FICTION_LABEL
            if notice is not None:
                await _quietly(notice.delete())
            sent = await _quietly(bot.send_photo(
                chat_id, png, caption=fit(caption if len(caption) <= CAPTION else FICTION_LABEL, CAPTION),
                reply_markup=markup, reply_parameters=_reply_to(reply_to),
            ))
        elif notice is not None:
            edited = await _quietly(notice.edit_text(fit(reply.text, MESSAGE_TEXT), reply_markup=markup))
            sent = edited if isinstance(edited, Message) else None
        else:
            sent = await _quietly(bot.send_message(
                chat_id, fit(reply.text, MESSAGE_TEXT), reply_markup=markup,
                reply_parameters=_reply_to(reply_to),
            ))
        if tweet is not None and sent is not None:
            await self.core.mark_sent(tweet.generation_id, f"{sent.chat_id}:{sent.message_id}")
        if reply.on_sent is not None and sent is not None:
            await reply.on_sent({"ref": f"{sent.chat_id}:{sent.message_id}", "chat_id": str(sent.chat_id),
                                 "message_id": str(sent.message_id)})
        return sent

    async def edit(self, where: MessageRef, reply: Reply) -> bool:
        """Replace the text and buttons of a message this bot sent (``where``: its chat and
        message ids); False when Telegram refused."""
        edited = await _quietly(self.application.bot.edit_message_text(
            fit(reply.text, MESSAGE_TEXT), chat_id=where["chat_id"], message_id=int(where["message_id"]),
            reply_markup=keyboard(reply.buttons),
        ))
        return edited is not None


def _reply_to(message_id: int | None) -> ReplyParameters | None:
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


async def _quietly(call: Awaitable[T]) -> T | None:
    """Run a Bot API call whose failure must not end the handler (a blocked bot, an old query).

    Telegram's refusals (the user blocked the bot, the query expired, the message is gone) are
    ordinary here: they are logged and the handler goes on.
    """
    try:
        return await call
    except (BadRequest, Forbidden) as exc:
        log.info("telegram refused a call: %s", exc)
    except TelegramError as exc:
        log.warning("telegram call failed: %s", exc)
    return None
