"""The whole program's configuration: ``config.toml`` validated at start-up.

Every table forbids unknown keys, so a typo stops the program with one line naming the key
(``ConfigError``). Secrets come from the environment: ``POLITICO_<TABLE>__<KEY>`` overrides any
key (``POLITICO_TELEGRAM__TOKEN``, ``POLITICO_DATABASE__URL``), and relative paths in the file
are relative to the file, so the program runs the same from any working directory.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from generation.settings import GenerationSettings

ENV_PREFIX = "POLITICO_"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"


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


class RateLimitSettings(Strict):
    """Requests allowed per user and per chat in a sliding minute (0 turns a limit off)."""

    per_user_per_minute: int = Field(6, ge=0)
    per_chat_per_minute: int = Field(20, ge=0)
    #: When set, limits are shared by every bot process through Redis.
    redis_url: str = ""


class DatabaseSettings(Strict):
    url: str = "sqlite+aiosqlite:///politico.db"
    #: Append-only file where log records wait while the database is unreachable.
    spool_path: str = "politico-spool.jsonl"
    echo: bool = False


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


class LoggingSettings(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(False, alias="json")


class Settings(BaseSettings):
    """The root of ``config.toml``."""

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix=ENV_PREFIX, env_nested_delimiter="__"
    )

    bot: BotSettings = Field(default_factory=BotSettings)
    politics: PoliticsSettings = Field(default_factory=PoliticsSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    game: GameSettings = Field(default_factory=GameSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file (given as init values) so secrets stay out of it.
        return env_settings, init_settings

    @model_validator(mode="after")
    def _sides_use_declared_models(self) -> Settings:
        for name, side in self.politics.sides.items():
            if side.model and side.model not in self.generation.models:
                raise ValueError(f"politics.sides.{name}.model: unknown model {side.model!r}")
        return self


class ConfigError(Exception):
    """A config problem, phrased as one line that names the key."""


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read, resolve and validate a config file (``config.toml`` beside the code by default)."""
    config_path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    _resolve_paths(raw, config_path.resolve().parent)
    try:
        return Settings(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{config_path}: {_first_problem(exc)}") from None


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Make file paths relative to the config file (model folders, SQLite files, the spool)."""
    for spec in raw.get("generation", {}).get("models", {}).values():
        real = spec.get("real_tweets") if isinstance(spec, dict) else None
        if isinstance(real, str) and real:
            spec["real_tweets"] = str((base / Path(real).expanduser()).resolve())
        path = spec.get("path") if isinstance(spec, dict) else None
        # A path written as one, or whose parent folder exists beside the config ("models/demo"
        # before it is trained), is a local folder; anything else is a hub id ("owner/name").
        if isinstance(path, str) and (
            path.startswith(("./", "../", "/", "~")) or ((base / path).parent.is_dir() and "/" in path)
        ):
            spec["path"] = str((base / Path(path).expanduser()).resolve())
    database = raw.get("database", {})
    url = database.get("url")
    prefix = "sqlite+aiosqlite:///"
    if isinstance(url, str) and url.startswith(prefix) and not url[len(prefix):].startswith("/"):
        rest = url[len(prefix):]
        if rest and rest != ":memory:":
            database["url"] = prefix + str((base / rest).resolve())
    spool = database.get("spool_path")
    if isinstance(spool, str) and not Path(spool).is_absolute():
        database["spool_path"] = str((base / spool).resolve())


def _first_problem(exc: ValidationError) -> str:
    """``key.path: what is wrong`` for the first error pydantic found."""
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{key}: {message}" + (f" (got {error['input']!r})" if error["type"] != "extra_forbidden" and not isinstance(error.get("input"), dict) else "")
