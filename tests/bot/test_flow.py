"""The command layer's one-way flow: the parser takes its messages from ``bot/texts.py`` and
builds ``bot/command.py``'s data; ``texts`` describes that data and never reaches back into the
parser (nor into the reading or the lexicon), so neither can grow a cycle again."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parents[2] / "bot"


def imported(module: str) -> set[str]:
    """Every ``bot.*`` module that ``bot/<module>.py`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((BOT / f"{module}.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bot"):
            found |= {node.module} if node.module != "bot" else {f"bot.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bot.")}
    return found


def test_texts_never_reach_back_into_the_parser() -> None:
    # The catalogue only as a type, for /opciones.
    assert imported("texts") <= {"bot.command", "bot.types", "bot.catalog"}
    assert "bot.texts" in imported("parser")


def test_the_data_and_the_words_import_nothing_of_the_commands() -> None:
    assert imported("command") == set()
    assert imported("lexicon") == set()
    assert "bot.parser" not in imported("reading") and "bot.texts" not in imported("reading")
