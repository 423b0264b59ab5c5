"""The house's one-way flow: the engine (``generation/``) and the log (``db/``) never reach into
the chat layer (``bot/``), neither by an import, at the top of a module or inside a function,
nor by naming a ``bot`` module for a subprocess or ``importlib`` to load. Settings and
command-line wiring they need live in ``generation/config.py`` and ``db/config.py``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("generation", "db")
#: "bot", "bot.cli", "bot.config:load_settings": how a module is named to be loaded.
BOT_MODULE = re.compile(r"^bot(\.\w+)*(:\w+)?$")


def bot_references(source: str) -> list[str]:
    """Every way ``source`` imports or names a module of the chat layer."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "bot"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "bot":
            found.append(node.module or "")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value \
                and BOT_MODULE.match(node.value):
            found.append(node.value)
    return found


def modules(room: str) -> list[Path]:
    return sorted((ROOT / room).rglob("*.py"))


@pytest.mark.parametrize("room", ROOMS)
def test_the_engine_and_the_log_never_import_the_bot(room: str) -> None:
    assert modules(room), f"no modules found in {room}/"
    offenders = {
        str(path.relative_to(ROOT)): refs
        for path in modules(room)
        if (refs := bot_references(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_every_kind_of_reference_is_caught() -> None:
    source = '''
import bot
import bot.config as config
from bot.cli import main

def later():
    from bot import texts
    subprocess.run([sys.executable, "-m", "bot.cli", "serve"])
    importlib.import_module("bot.runner")

harmless = ("bot", "robot.cli", "bots.x", "phase: bot")
'''
    assert sorted(bot_references(source)) == ["bot", "bot", "bot.cli", "bot.cli", "bot.config", "bot.runner"]
