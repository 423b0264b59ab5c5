"""Between Telegram objects and the core's plain data: origins, command text, keyboards."""

from __future__ import annotations

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
    User,
)

from bot.telegram.limits import fits_callback
from bot.types import Button, Origin

PLATFORM = "telegram"
NAME_CHARS = 128


def user_name(user: User) -> str:
    return (user.full_name or user.username or str(user.id))[:NAME_CHARS]


def message_origin(message: Message, user: User) -> Origin:
    """Who wrote ``message`` and where; ``reply_ref`` lets a restarted bot answer it in place,
    and ``source`` (``chat_id:message_id``, unique in Telegram) recognises it when delivered again."""
    chat = message.chat
    return Origin(
        platform=PLATFORM,
        user_id=str(user.id),
        chat_id=str(chat.id),
        user_name=user_name(user),
        chat_kind=chat.type,
        chat_title=(chat.title or "")[:NAME_CHARS],
        message_id=str(message.message_id),
        reply_ref={"chat_id": str(chat.id), "message_id": str(message.message_id)},
        source=f"{chat.id}:{message.message_id}",
        replied_ref=replied_ref(message),
    )


def replied_ref(message: Message) -> str:
    """``chat_id:message_id`` of the bot's message that ``message`` replies to ("" when it
    replies to no bot): a reply to one of the bot's tweets follows up on that tweet."""
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or not replied.from_user.is_bot:
        return ""
    return f"{replied.chat.id}:{replied.message_id}"


def update_origin(update: Update) -> Origin | None:
    """The origin of a command, button press or inline query (None when nobody sent it).

    A press's ``source`` is its query id: the message under which it was pressed is the bot's,
    pressed again and again.
    """
    user = update.effective_user
    if user is None:
        return None
    query = update.callback_query
    if query is not None and query.message is not None:
        message = query.message
        chat = message.chat
        return Origin(
            platform=PLATFORM, user_id=str(user.id), chat_id=str(chat.id),
            user_name=user_name(user), chat_kind=chat.type,
            chat_title=(chat.title or "")[:NAME_CHARS], message_id=str(message.message_id),
            reply_ref={"chat_id": str(chat.id), "message_id": str(message.message_id)},
            source=f"callback:{query.id}",
        )
    if update.message is not None:
        return message_origin(update.message, user)
    # Inline queries and button presses under inline messages have no chat: the user is it.
    asked = query or update.inline_query
    return Origin(
        platform=PLATFORM, user_id=str(user.id), chat_id=str(user.id),
        user_name=user_name(user), chat_kind="inline",
        source=f"{'callback' if query else 'inline'}:{asked.id}" if asked else "",
    )


def command_text(message: Message, bot_username: str) -> str | None:
    """The command as the core reads it (``/tuit@Bot x`` → ``/tuit x``).

    None when the message holds no leading command or the command names another bot
    (``/tuit@OtraBot``), which a bot in a group must leave alone.
    """
    text = message.text or ""
    entity = next(
        (e for e in message.entities if e.type == MessageEntity.BOT_COMMAND and e.offset == 0), None
    )
    if entity is None:
        return None
    command = message.parse_entity(entity)
    if not command.startswith("/") or not text.startswith(command):
        return None
    name, _, addressee = command.partition("@")
    if addressee and addressee.casefold() != bot_username.casefold():
        return None
    return name + text[len(command):]


def keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """One row of inline buttons; a button whose data would not fit Telegram is left out."""
    row = [InlineKeyboardButton(b.label, callback_data=b.data) for b in buttons if fits_callback(b.data)]
    return InlineKeyboardMarkup([row]) if row else None
