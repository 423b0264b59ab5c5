"""Telegram's message limits, and cutting text so every reply is one Telegram accepts.

Replies go out as plain text (no parse mode), so what is counted is the text itself, in
UTF-16 code units as Telegram counts it: an emoji outside the BMP costs two.
"""

from __future__ import annotations

MESSAGE_TEXT = 4096
CAPTION = 1024
CALLBACK_ANSWER = 200
CALLBACK_DATA_BYTES = 64
INLINE_TITLE = 256
INLINE_DESCRIPTION = 512
ELLIPSIS = "…"


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int) -> str:
    """``text`` stripped and cut to ``limit`` UTF-16 units (ending in "…" when cut); never empty."""
    text = text.strip()
    if not text:
        return ELLIPSIS
    if utf16_len(text) <= limit:
        return text
    kept: list[str] = []
    size = len(ELLIPSIS)
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if size + width > limit:
            break
        kept.append(char)
        size += width
    return "".join(kept).rstrip() + ELLIPSIS


def fits_callback(data: str) -> bool:
    return 1 <= len(data.encode("utf-8")) <= CALLBACK_DATA_BYTES
