"""Discord's message limits, and fitting replies into them."""

from __future__ import annotations

CONTENT = 2000
BUTTON_LABEL = 80
CUSTOM_ID = 100
CHOICES = 25
CHOICE_NAME = 100
CHOICE_VALUE = 100
OPTION_VALUE = 6000  # a slash-command string option, as Discord delivers it at most
ELLIPSIS = "…"


def fit(text: str, limit: int) -> str:
    """``text`` stripped and cut to ``limit`` characters (ending in "…" when cut); never empty."""
    text = text.strip()
    if not text:
        return ELLIPSIS
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def chunks(text: str, limit: int = CONTENT) -> list[str]:
    """``text`` in messages of at most ``limit`` characters, split between lines when possible."""
    text = text.strip() or ELLIPSIS
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        parts.append(current)
    return [p for p in parts if p.strip()] or [ELLIPSIS]
