"""``politico-train prepare`` keeps the tweets' dates (``fecha``), and its rows are the game's pool."""

from __future__ import annotations

import json
from pathlib import Path

from bot.game.pool import RealTweets
from tests.training.conftest import AUTHORS, synthetic_rows, write_csv
from training.prepare import PrepareOptions, prepare


def prepared(folder: Path, dated: bool) -> list[dict]:
    rows = synthetic_rows()
    if dated:
        rows = [{**row, "created_at": f"Wed Nov {index % 28 + 1:02d} 20:19:24 +0000 2017"}
                for index, row in enumerate(rows)]
    tweets = write_csv(folder / "tweets.csv", rows)
    authors = write_csv(folder / "autores.csv", [
        {"screen_name": a, "partido": p, "coalicion": c, "lado": s} for a, p, c, s in AUTHORS
    ])
    out = folder / "data"
    prepare(PrepareOptions(tweets=[tweets], out=out, authors=authors, sentiment="lexicon",
                           entities="heuristic", validation=0.2, test=0.3, progress=False))
    return [json.loads(line) for line in (out / "all.jsonl").read_text(encoding="utf-8").splitlines()]


def test_prepare_keeps_created_at_as_fecha_and_the_game_reads_it(tmp_path: Path) -> None:
    (tmp_path / "dated").mkdir()
    (tmp_path / "plain").mkdir()
    dated = prepared(tmp_path / "dated", dated=True)
    assert dated and all(row["fecha"].endswith("+0000 2017") for row in dated)
    assert all("fecha" not in row for row in prepared(tmp_path / "plain", dated=False))

    pool = RealTweets(max_chars=280).pool("demo", str(tmp_path / "dated" / "data" / "test.jsonl"))
    assert pool and all(t.date.startswith("2017-11-") and t.party and t.sentiment for t in pool)
