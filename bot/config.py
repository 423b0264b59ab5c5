"""The whole program's configuration: ``config.toml`` validated at start-up.

The chat layer's tables are defined here and composed with the tables other rooms own
(``[generation]``: ``generation/settings.py``, ``[database]``: ``db/config.py``, ``[logging]``
and the file machinery: ``generation/config.py``), so the engine and the log never import the
bot. Every table forbids unknown keys, so a typo stops the program with one line naming the key
(``ConfigError``). Secrets come from the environment: ``POLITICO_<TABLE>__<KEY>`` overrides any
key (``POLITICO_TELEGRAM__TOKEN``, ``POLITICO_DATABASE__URL``), and relative paths in the file
are relative to the file, so the program runs the same from any working directory.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.lexicon import LexiconFile
from db.config import DatabaseSettings, resolve_database_paths
from generation.config import (
    ConfigError,
    ConfigRoot,
    LoggingSettings,
    PathResolver,
    load_config,
    resolve_generation_paths,
)
from generation.settings import GenerationSettings


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SideSpec(Strict):
    """A political side (derecha, centro, izquierda)."""

    aliases: list[str] = Field(default_factory=list)
    #: A casual model (name from [generation.models]) that writes for this side; "" prompts the
    #: controlled model with one of the side's parties and its coalition.
    model: str = ""


class CoalitionSpec(Strict):
    aliases: list[str] = Field(default_factory=list)


class PartySpec(Strict):
    """A party as the controlled model knows it (its PARTIDO value is the table key)."""

    name: str = ""
    aliases: list[str] = Field(default_factory=list)
    coalition: str
    side: str
    #: How often ``/tuit`` with no party picks it; 0 never (parties the model has not seen).
    weight: float = Field(1.0, ge=0)


class PoliticsSettings(Strict):
    """Names users may type, and how they map onto the model's control values.

    Parties are the unit: each names its coalition and side, so a coalition may span sides
    (independents stood on the right and the left in 2017).
    """

    sides: dict[str, SideSpec] = Field(default_factory=dict)
    coalitions: dict[str, CoalitionSpec] = Field(default_factory=dict)
    parties: dict[str, PartySpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> PoliticsSettings:
        for name, party in self.parties.items():
            if party.coalition not in self.coalitions:
                raise ValueError(f"parties.{name}.coalition: unknown coalition {party.coalition!r}")
            if party.side not in self.sides:
                raise ValueError(f"parties.{name}.side: unknown side {party.side!r}")
        return self


class BotSettings(Strict):
    """Behaviour shared by every front-end."""

    max_command_chars: int = Field(300, ge=20, le=4000)
    candidates: int = Field(1, ge=1, le=8)
    #: Tweet delivery: plain text, a PNG card, or both.
    render: Literal["text", "card", "both"] = "text"
    #: After a restart, requests left unanswered are answered when younger than this (seconds)
    #: and marked expired when older.
    resume_max_age_s: float = Field(600, ge=0)
    #: A request's lease (seconds): the process answering it renews it every third of this
    #: while it works, so a dead process's requests are taken over this long after it died.
    lease_s: float = Field(15, ge=1, le=600)
    #: An operator's lexicon file (the shape of ``bot/lexicon.toml``) whose words are read
    #: besides the shipped ones; "" reads the shipped lexicon alone.
    lexicon: str = ""

    @field_validator("lexicon")
    @classmethod
    def _lexicon_reads(cls, value: str) -> str:
        if value:
            LexiconFile.read(Path(value))  # a wrong word list stops the start with one line
        return value


def resolve_bot_paths(table: dict[str, Any], base: Path) -> None:
    """An operator's lexicon file is relative to the config file."""
    lexicon = table.get("lexicon")
    if isinstance(lexicon, str) and lexicon and not Path(lexicon).expanduser().is_absolute():
        table["lexicon"] = str((base / lexicon).resolve())


class FrontendLimits(Strict):
    """One front-end's limits; a value left out is the ``[rate_limits]`` one."""

    per_user_per_minute: int | None = Field(None, ge=0)
    per_chat_per_minute: int | None = Field(None, ge=0)


class RateLimitSettings(Strict):
    """Requests allowed per user and per chat in a sliding minute (0 turns a limit off).

    The values apply to every front-end unless its own table (``[rate_limits.console]``…) says
    otherwise. The console has none by default: its one user is the operator at the keyboard,
    trying the bot or piping a script, not a crowd sharing an engine.
    """

    per_user_per_minute: int = Field(6, ge=0)
    per_chat_per_minute: int = Field(20, ge=0)
    #: When set, limits are shared by every bot process through Redis.
    redis_url: str = ""
    telegram: FrontendLimits = Field(default_factory=FrontendLimits)
    discord: FrontendLimits = Field(default_factory=FrontendLimits)
    console: FrontendLimits = Field(
        default_factory=lambda: FrontendLimits(per_user_per_minute=0, per_chat_per_minute=0)
    )

    def for_platform(self, platform: str) -> tuple[int, int]:
        """(per user, per chat) limits of a front-end (``telegram``, ``discord``, ``console``)."""
        own = getattr(self, platform, None)
        own = own if isinstance(own, FrontendLimits) else FrontendLimits()
        return (
            self.per_user_per_minute if own.per_user_per_minute is None else own.per_user_per_minute,
            self.per_chat_per_minute if own.per_chat_per_minute is None else own.per_chat_per_minute,
        )


class TelegramSettings(Strict):
    token: str = ""
    base_url: str = ""
    admins: list[int] = Field(default_factory=list)
    render: Literal["text", "card", "both"] | None = None
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(8443, ge=1, le=65535)
    webhook_secret: str = ""
    publish_chat_id: str = ""


class DiscordSettings(Strict):
    token: str = ""
    #: Sync slash commands to this guild only (instant, for development); 0 syncs globally.
    guild_id: int = 0
    admins: list[int] = Field(default_factory=list)
    render: Literal["text", "card", "both"] | None = None
    sharded: bool = False
    publish_channel_id: int = 0
    #: Base URL of the REST API (tests point it at a fake server); "" is Discord's own.
    api_base: str = ""


class GameSettings(Strict):
    """¿Real o ficticio? (``/adivina``, ``bot/game``)."""

    #: How long a round takes votes before it is revealed (Discord edits need it under 15 min).
    round_s: float = Field(60, ge=1, le=600)


class MonitorSettings(Strict):
    """``politico run``'s own HTTP port for ``/health`` and Prometheus ``/metrics`` (off by
    default: a bot process otherwise opens no port, and an open one should be a choice)."""

    #: 0 is off.
    port: int = Field(0, ge=0, le=65535)
    #: Where to listen; 127.0.0.1 keeps the metrics on the machine, 0.0.0.0 opens them to all.
    host: str = Field("127.0.0.1", min_length=1)


class AdminSettings(Strict):
    """``politico admin``, the web review desk."""

    #: Addresses (or networks) of reverse proxies whose ``X-Forwarded-For`` names the client.
    #: Empty: the header is ignored, so nobody can forge an address past the login lockout.
    trusted_proxies: list[str] = Field(default_factory=list)
    #: The desk shows times, and reads date filters, in this zone (an IANA name).
    timezone: str = "America/Santiago"
    #: How long a login lasts (hours) unless its admin logs out first.
    session_hours: float = Field(8, gt=0, le=720)
    #: How long the review stream keeps a tweet for the admin reviewing it (minutes).
    claim_minutes: float = Field(5, gt=0, le=120)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. America/Santiago, UTC)") from None
        return value


class Settings(ConfigRoot):
    """The root of ``config.toml``: every table, none unknown."""

    model_config = SettingsConfigDict(extra="forbid")
    path_resolvers: ClassVar[Mapping[str, PathResolver]] = {
        "generation": resolve_generation_paths, "database": resolve_database_paths,
        "bot": resolve_bot_paths,
    }

    bot: BotSettings = Field(default_factory=BotSettings)
    politics: PoliticsSettings = Field(default_factory=PoliticsSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    game: GameSettings = Field(default_factory=GameSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)

    @model_validator(mode="after")
    def _sides_use_declared_models(self) -> Settings:
        for name, side in self.politics.sides.items():
            if side.model and side.model not in self.generation.models:
                raise ValueError(f"politics.sides.{name}.model: unknown model {side.model!r}")
        return self

    @model_validator(mode="after")
    def _monitor_port_is_free(self) -> Settings:
        telegram = self.telegram
        if self.monitor.port and telegram.webhook_url and self.monitor.port == telegram.webhook_port:
            raise ValueError(f"monitor.port: {self.monitor.port} is telegram.webhook_port already")
        return self


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read, resolve and validate a config file (``config.toml`` beside the code by default);
    a problem raises ``generation.config.ConfigError``, one line naming the key."""
    return load_config(Settings, path)


def with_overrides(settings: Settings, assignments: Sequence[str]) -> Settings:
    """``settings`` with ``KEY=VALUE`` assignments applied (``generation.engine.max_batch=64``).

    For programs that try variants of one config without editing the file (``politico crowd
    --set``). A value is read as a TOML value when it is one (``64``, ``true``, ``"x"``,
    ``[1, 2]``) and as plain text otherwise; the result is validated like the file, so a wrong
    key or value raises :class:`ConfigError` naming it. The assignments win over the file and
    the environment; a path given here is taken as written, not relative to the file.
    """
    data: dict[str, Any] = settings.model_dump(by_alias=True)
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        parts = key.strip().split(".")
        if not equals or not all(parts):
            raise ConfigError(f"--set {assignment!r}: write it as KEY=VALUE (e.g. bot.candidates=4)")
        table = data
        for depth, part in enumerate(parts[:-1]):
            table = table.get(part)
            if not isinstance(table, dict):
                raise ConfigError(f"--set {key}: {'.'.join(parts[:depth + 1])} is not a table")
        table[parts[-1]] = _toml_value(text.strip())
    try:
        return _Given(**data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        raise ConfigError(f"--set: {where}: {message}") from None


class _Given(Settings):
    """Settings from the values given alone: the environment was applied when they were first
    loaded, and read again it would undo the overrides."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _toml_value(text: str) -> Any:
    """``text`` as a TOML value, or the text itself when it is not one (``models/demo``)."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text
