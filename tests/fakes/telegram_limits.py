"""What the real Bot API refuses, as a checker the fake server runs on every call.

Telegram measures text in UTF-16 code units after entity parsing; the bot sends plain text
(no parse mode), so the length is the text's own. A call that breaks a rule gets the same
``400 Bad Request`` Telegram would send, and the problem is recorded for the test to assert on.
"""

from __future__ import annotations

from typing import Any

MESSAGE_TEXT = 4096
CAPTION = 1024
CALLBACK_DATA_BYTES = 64
CALLBACK_ANSWER = 200
BUTTON_TEXT = 64  # not documented as a hard limit; longer labels are cut by clients
INLINE_RESULTS = 50
INLINE_RESULT_ID_BYTES = 64
INLINE_TITLE = 256
COMMAND_NAME = 32
COMMAND_DESCRIPTION = 256
COMMANDS = 100
PARSE_MODES = {"", "HTML", "Markdown", "MarkdownV2"}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def check_text(text: Any, field: str, limit: int, *, required: bool) -> list[str]:
    if text is None:
        return [f"{field}: missing"] if required else []
    if not isinstance(text, str):
        return [f"{field}: not a string"]
    size = utf16_len(text)
    if required and not text.strip():
        return [f"{field}: empty"]
    if size > limit:
        return [f"{field}: {size} > {limit} characters"]
    return []


def check_markup(markup: Any) -> list[str]:
    """An inline keyboard: every button has a label and callback data within 64 bytes."""
    if markup is None:
        return []
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return ["reply_markup: not an inline keyboard"]
    problems: list[str] = []
    for row in markup["inline_keyboard"]:
        for button in row:
            label = button.get("text", "")
            if not label.strip():
                problems.append("button: empty text")
            if "callback_data" in button:
                size = len(button["callback_data"].encode("utf-8"))
                if not 1 <= size <= CALLBACK_DATA_BYTES:
                    problems.append(f"button: callback_data {size} bytes")
    return problems


def check_parse_mode(params: dict[str, Any]) -> list[str]:
    mode = params.get("parse_mode", "")
    if mode not in PARSE_MODES:
        return [f"parse_mode: unknown {mode!r}"]
    if mode:
        # The bot promises plain text; a parse mode would make label characters markup.
        return [f"parse_mode: {mode} used; the bot sends plain text"]
    return []


def check_call(method: str, params: dict[str, Any]) -> list[str]:
    """Problems Telegram would report for this call (empty when it would accept it)."""
    problems = check_parse_mode(params)
    if method in ("sendMessage", "editMessageText"):
        problems += check_text(params.get("text"), "text", MESSAGE_TEXT, required=True)
        problems += check_markup(params.get("reply_markup"))
    elif method in ("sendPhoto", "editMessageCaption"):
        problems += check_text(params.get("caption"), "caption", CAPTION, required=False)
        problems += check_markup(params.get("reply_markup"))
    elif method == "answerCallbackQuery":
        problems += check_text(params.get("text"), "callback text", CALLBACK_ANSWER, required=False)
    elif method == "answerInlineQuery":
        problems += _check_inline_results(params.get("results"))
    elif method == "setMyCommands":
        problems += _check_commands(params.get("commands"))
    elif method == "editMessageMedia":
        media = params.get("media") if isinstance(params.get("media"), dict) else {}
        problems += check_text(media.get("caption"), "caption", CAPTION, required=False)
        problems += check_parse_mode(media)
        problems += check_markup(params.get("reply_markup"))
    elif method == "editMessageReplyMarkup":
        problems += check_markup(params.get("reply_markup"))
    return problems


def _check_inline_results(results: Any) -> list[str]:
    if not isinstance(results, list):
        return ["results: not a list"]
    problems = [f"results: {len(results)} > {INLINE_RESULTS}"] if len(results) > INLINE_RESULTS else []
    ids = set()
    for result in results:
        result_id = str(result.get("id", ""))
        if not 1 <= len(result_id.encode()) <= INLINE_RESULT_ID_BYTES:
            problems.append("inline result: bad id")
        if result_id in ids:
            problems.append("inline result: duplicate id")
        ids.add(result_id)
        problems += check_text(result.get("title"), "inline title", INLINE_TITLE, required=True)
        content = result.get("input_message_content") or {}
        problems += check_text(
            content.get("message_text"), "inline message_text", MESSAGE_TEXT, required=True
        )
        problems += check_markup(result.get("reply_markup"))
    return problems


def _check_commands(commands: Any) -> list[str]:
    if not isinstance(commands, list) or not 1 <= len(commands) <= COMMANDS:
        return ["commands: bad list"]
    problems = []
    for command in commands:
        name = command.get("command", "")
        if not (1 <= len(name) <= COMMAND_NAME and name.islower() and name.replace("_", "").isalnum()):
            problems.append(f"command: bad name {name!r}")
        problems += check_text(command.get("description"), "description", COMMAND_DESCRIPTION, required=True)
    return problems
