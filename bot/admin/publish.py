"""Publishing approved tweets to a Telegram channel and/or a Discord channel.

Plain REST calls (Telegram Bot API ``sendMessage``, Discord ``POST /channels/{id}/messages``)
keep the desk independent of the running bots; every post carries the fiction label.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from bot.config import Settings
from bot.types import FICTION_LABEL

TELEGRAM_API = "https://api.telegram.org/bot"
DISCORD_API = "https://discord.com/api/v10"


class PublishError(Exception):
    """A destination refused the post or could not be reached (message names it)."""


@dataclass(frozen=True)
class Publisher:
    telegram_token: str = ""
    telegram_base: str = TELEGRAM_API
    telegram_chat: str = ""
    discord_token: str = ""
    discord_base: str = DISCORD_API
    discord_channel: int = 0
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Publisher:
        tg, dc = settings.telegram, settings.discord
        return cls(
            telegram_token=tg.token,
            telegram_base=tg.base_url or TELEGRAM_API,
            telegram_chat=tg.publish_chat_id if tg.token else "",
            discord_token=dc.token,
            discord_base=(dc.api_base or DISCORD_API).rstrip("/"),
            discord_channel=dc.publish_channel_id if dc.token else 0,
        )

    @property
    def destinations(self) -> list[str]:
        found = []
        if self.telegram_chat:
            found.append(f"telegram:{self.telegram_chat}")
        if self.discord_channel:
            found.append(f"discord:{self.discord_channel}")
        return found

    async def publish(self, text: str) -> list[str]:
        """Post ``text`` (with the label) everywhere configured; returns where it went."""
        if not self.destinations:
            raise PublishError("no hay canal de publicación configurado")
        message = f"{text}\n\n{FICTION_LABEL}"
        done = []
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            if self.telegram_chat:
                await _post(
                    client,
                    "Telegram",
                    f"{self.telegram_base}{self.telegram_token}/sendMessage",
                    {"chat_id": self.telegram_chat, "text": message},
                    {},
                )
                done.append(f"telegram:{self.telegram_chat}")
            if self.discord_channel:
                await _post(
                    client,
                    "Discord",
                    f"{self.discord_base}/channels/{self.discord_channel}/messages",
                    {"content": message, "allowed_mentions": {"parse": []}},
                    {"Authorization": f"Bot {self.discord_token}"},
                )
                done.append(f"discord:{self.discord_channel}")
        return done


async def _post(
    client: httpx.AsyncClient, name: str, url: str, body: dict, headers: dict[str, str]
) -> None:
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise PublishError(f"{name}: no se pudo conectar ({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise PublishError(f"{name}: respondió {response.status_code}")
