"""People's verdict for ``evaluate --human-db``: how often players of ¿Real o ficticio? took the
model's tweets for real ones.

The bot logs every round of its game (a real held-out tweet against one the model wrote with the
same controls) and every vote (``db/game.py``). Read from that database, the share of votes the
fictional tweet won is a human measure of realism next to the automatic ones: 0.5 means people
cannot tell the model's tweets from real ones. Only closed rounds count. The bot names a model
as ``config.toml`` does; ``evaluate`` passes the model folder's name (``models/demo`` → ``demo``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from db.engine import create_engine
from db.game import GameStore


async def _figures(url: str, model: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        figures = await GameStore(engine).figures(model, top=3)
    finally:
        await engine.dispose()
    return {
        "human_model": model, "human_rounds": figures.rounds, "human_votes": figures.votes,
        "human_fooled": figures.fooled, "human_fooled_share": figures.fooled_share,
        "human_most_fooling": [f.fake_text for f in figures.most_fooling],
    }


def human_figures(url: str, model: str) -> dict[str, Any]:
    """The game's figures for ``model`` in the bot's database at ``url`` (its SQLAlchemy URL, as
    in ``[database] url``); ``human_fooled_share`` is None while nobody has voted."""
    return asyncio.run(_figures(url, model))


def report_lines(figures: dict[str, Any]) -> list[str]:
    """The Markdown section ``evaluate`` appends to its report."""
    share = figures["human_fooled_share"]
    lines = [
        "", "## People: ¿Real o ficticio?", "",
        f"Model `{figures['human_model']}` in the bot's game: {figures['human_rounds']} finished "
        f"round(s), {figures['human_votes']} vote(s); the fictional tweet was taken for the real "
        "one in " + (f"**{share:.1%}** of the votes (50% = people cannot tell)." if share is not None
                     else "— (no votes yet)."),
    ]
    if figures["human_most_fooling"]:
        lines += ["", "The generated tweets that fooled most:", ""]
        lines += [f"- {text}" for text in figures["human_most_fooling"]]
    return lines


def add_human_figures(url: str, model_folder: str, out: Path, metrics: dict[str, Any]) -> None:
    """Add the game's figures to ``evaluate``'s metrics (and ``metrics.json``) and its report."""
    figures = human_figures(url, Path(model_folder).name)
    metrics.update(figures)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
    with (out / "report.md").open("a", encoding="utf-8") as report:
        report.write("\n".join(report_lines(figures)) + "\n")
