"""``politico-train evaluate --human-db``: the game's figures for a model, read by training/."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from db.engine import create_engine
from db.game import GameStore
from db.migrate import upgrade
from tests.game.test_store import new_round
from training.human import add_human_figures, human_figures

ROOT = Path(__file__).resolve().parents[2]


async def seed(url: str) -> None:
    await upgrade(url)
    engine = create_engine(url)
    store = GameStore(engine)
    for index, (fake, real_slot, choices) in enumerate((
        ("Fingí muy bien", "A", "BBA"), ("Me pillaron", "B", "B"), ("Aún abierta", "A", "B"),
    )):
        item = await store.start(new_round(fake, real_slot=real_slot, chat=str(index)))
        for user, choice in enumerate(choices):
            await store.vote(item.id, "telegram", str(user), f"U{user}", choice)
        if fake != "Aún abierta":
            await store.close(item.id, "time")
    await engine.dispose()


def test_evaluate_gets_the_share_of_votes_the_fake_won(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    asyncio.run(seed(url))
    out = tmp_path / "eval"
    out.mkdir()
    (out / "report.md").write_text("# Evaluation\n", encoding="utf-8")
    metrics = {"perplexity": 12.5}
    add_human_figures(url, str(tmp_path / "models" / "demo"), out, metrics)
    assert metrics["human_model"] == "demo"
    assert (metrics["human_rounds"], metrics["human_votes"], metrics["human_fooled"]) == (2, 4, 2)
    assert metrics["human_fooled_share"] == 0.5 and metrics["human_most_fooling"] == ["Fingí muy bien"]
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8")) == metrics
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# Evaluation\n") and "**50.0%** of the votes" in report
    assert "- Fingí muy bien" in report
    nobody = human_figures(url, "otro")
    assert (nobody["human_rounds"], nobody["human_fooled_share"]) == (0, None)


def test_training_reads_the_game_without_the_bot() -> None:
    code = "import sys, training.human; assert not [m for m in sys.modules if m == 'bot' or m.startswith('bot.')]"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_politico_train_evaluate_human_db(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The real ``evaluate`` on the tiny model, with the bot's game figures for it added."""
    from tests.game.conftest import ROWS
    from training.cli import main

    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"

    async def rounds() -> None:
        await upgrade(url)
        engine = create_engine(url)
        store = GameStore(engine)
        item = await store.start(new_round("Engañé", real_slot="A", model=tiny_model_dir.name))
        for user, choice in enumerate("BBBA"):
            await store.vote(item.id, "telegram", str(user), f"U{user}", choice)
        await store.close(item.id, "time")
        await engine.dispose()

    asyncio.run(rounds())
    rows = [{**row, "tweet": f"{row['tweet']} {n}"} for row in ROWS[:2] for n in range(3)]
    for name, part in (("train", rows), ("validation", rows[:2])):
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8")
    out = tmp_path / "eval"
    status = main(["--quiet", "evaluate", "--model", str(tiny_model_dir), "--train", str(tmp_path / "train.jsonl"),
                   "--held-out", str(tmp_path / "validation.jsonl"), "--out", str(out), "--samples", "2",
                   "--set", "max_new_tokens=8", "--candidates", "2", "--latency-requests", "0",
                   "--sentiment", "lexicon", "--human-db", url])
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["human_fooled_share"] == 0.75 and metrics["human_votes"] == 4 and "perplexity" in metrics
    assert "**75.0%** of the votes" in (out / "report.md").read_text(encoding="utf-8")
