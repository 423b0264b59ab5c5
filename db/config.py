"""The ``[database]`` table, which the log owns, and the root ``politico db`` reads.

The config machinery (file, environment, one-line errors) is ``generation/config.py``'s, the
bottom layer every room reaches; the chat layer composes this table into its own settings
(``bot/config.py``), so the log never imports the bot.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from generation.config import ConfigRoot, PathResolver

SQLITE_PREFIX = "sqlite+aiosqlite:///"


class DatabaseSettings(BaseModel):
    """Where the generation log lives, and where its records wait while it is unreachable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "sqlite+aiosqlite:///politico.db"
    #: Append-only file where log records wait while the database is unreachable.
    spool_path: str = "politico-spool.jsonl"
    echo: bool = False


def resolve_database_paths(table: dict[str, Any], base: Path) -> None:
    """A relative SQLite file and spool path are relative to the config file."""
    url = table.get("url")
    if isinstance(url, str) and url.startswith(SQLITE_PREFIX):
        rest = url[len(SQLITE_PREFIX):]
        if rest and rest != ":memory:" and not rest.startswith("/"):
            table["url"] = SQLITE_PREFIX + str((base / rest).resolve())
    spool = table.get("spool_path")
    if isinstance(spool, str) and not Path(spool).is_absolute():
        table["spool_path"] = str((base / spool).resolve())


class DatabaseConfig(ConfigRoot):
    """What ``politico db`` reads: the ``[database]`` table (the other tables are not its own)."""

    path_resolvers: ClassVar[Mapping[str, PathResolver]] = {"database": resolve_database_paths}

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
