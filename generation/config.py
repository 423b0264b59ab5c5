"""Reading ``config.toml``: the machinery every room's program shares, and the tables it owns.

Each room owns the schema of its own tables (``[generation]`` in ``generation/settings.py``,
``[database]`` in ``db/config.py``, the chat tables in ``bot/config.py``) and its own program
(``politico serve`` reads only ``[generation]`` and ``[logging]``; ``politico db`` only
``[database]``). This module is the bottom layer they all reach without the engine or the log
importing the bot: the file is read here, relative paths are resolved by the room that owns
them, ``POLITICO_<TABLE>__<KEY>`` environment variables win over the file (secrets belong
there), and a wrong key or value becomes one :class:`ConfigError` line that names it.

A program's *root* is a :class:`ConfigRoot` subclass naming the tables it reads; the bot's root
(``bot.config.Settings``) names them all and refuses unknown ones, while a room's own root
ignores the tables of the other rooms.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from generation.settings import GenerationSettings

ENV_PREFIX = "POLITICO_"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"

#: Makes the relative paths of one table relative to the config file's folder (in place).
PathResolver = Callable[[dict[str, Any], Path], None]
Root = TypeVar("Root", bound="ConfigRoot")


class ConfigError(Exception):
    """A config problem, phrased as one line that names the key."""


class LoggingSettings(BaseModel):
    """The ``[logging]`` table: every long-running program logs the same way."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(False, alias="json")


class ConfigRoot(BaseSettings):
    """The tables one program reads; the environment overrides the file."""

    model_config = SettingsConfigDict(
        extra="ignore", frozen=True, env_prefix=ENV_PREFIX, env_nested_delimiter="__"
    )
    #: Table name → what resolves its relative paths (the table's owner provides it).
    path_resolvers: ClassVar[Mapping[str, PathResolver]] = {}

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


def resolve_generation_paths(table: dict[str, Any], base: Path) -> None:
    """Model folders and files of ``[generation.models.*]`` relative to the config file."""
    for spec in table.get("models", {}).values():
        if not isinstance(spec, dict):
            continue
        real = spec.get("real_tweets")
        if isinstance(real, str) and real:
            spec["real_tweets"] = str((base / Path(real).expanduser()).resolve())
        path = spec.get("path")
        # A path written as one, or whose parent folder exists beside the config ("models/demo"
        # before it is trained), is a local folder; anything else is a hub id ("owner/name").
        if isinstance(path, str) and (
            path.startswith(("./", "../", "/", "~")) or ((base / path).parent.is_dir() and "/" in path)
        ):
            spec["path"] = str((base / Path(path).expanduser()).resolve())


class ServeSettings(ConfigRoot):
    """What ``politico serve`` and the engine benchmarks read: models, engine, logging."""

    path_resolvers: ClassVar[Mapping[str, PathResolver]] = {"generation": resolve_generation_paths}

    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)


def load_config(root: type[Root], path: str | os.PathLike[str] | None = None) -> Root:
    """Read, resolve and validate a config file (``config.toml`` beside the code by default)
    as ``root``'s tables; raises :class:`ConfigError` with one line naming the problem."""
    config_path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    base = config_path.resolve().parent
    for name, resolve in root.path_resolvers.items():
        table = raw.get(name)
        if isinstance(table, dict):
            resolve(table, base)
    try:
        return root(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{config_path}: {_first_problem(exc)}") from None


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--config PATH`` option every program accepts."""
    parser.add_argument(
        "--config", metavar="PATH", default=None,
        help="archivo de configuración (por omisión config.toml junto al código)",
    )


def _first_problem(exc: ValidationError) -> str:
    """``key.path: what is wrong`` for the first error pydantic found."""
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    shown = error["type"] != "extra_forbidden" and not isinstance(error.get("input"), dict)
    return f"{key}: {message}" + (f" (got {error['input']!r})" if shown else "")
