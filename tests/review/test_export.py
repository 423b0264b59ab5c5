"""Exports that open well in a spreadsheet: a BOM, the formula guard only where a cell would
run, and the judgement columns (score and parts, user, chat, reviewer, note, decision time)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.admin.app import create_app
from bot.admin.auth import AdminAuth
from bot.admin.exports import BOM, runs_as_formula
from db.engine import create_engine
from db.migrate import upgrade
from db.review import ReviewStore
from db.review_export import EXPORT_COLUMNS
from tests.review.factory import LogFactory
from tests.review.live import cheap_hash, signed_in

PASSWORD = "secreta"
TEXTS = ["@usuario hola, ¿cómo va la educación?", "=HYPERLINK(\"http://x\")", "-2+3+cmd|' /C calc'!A0",
         "@SUM(1+1)*2", "- Las pensiones, ya", "+56 9 1234 5678 llámame", "  =1+1", "ñandú"]


@pytest.mark.parametrize(("text", "runs"), [
    ("=1+1", True), ("  =1+1", True), ("\t=1", True), ("@SUM(1+1)", True), ("+cmd|' /C calc'!A0", True),
    ("-2+3+cmd|' /C calc'!A0", True), ("@usuario hola", False), ("- Las pensiones, ya", False),
    ("+56 9 1234 5678", False), ("hola =1", False), ("Pensiones (ya)", False), ("", False),
])
def test_the_formula_guard_goes_only_where_a_cell_would_run(text: str, runs: bool) -> None:
    assert runs_as_formula(text) is runs


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"

    async def seed() -> None:
        await upgrade(url)
        engine = create_engine(url)
        factory = LogFactory(engine)
        for index, text in enumerate(TEXTS):
            _, (g,) = await factory.tweet(text, created_at=datetime(2026, 11, 1, 12, index, tzinfo=UTC),
                                          user_name="Ana Ñuñez", chat="Vecinos Ñuñoa")
            if index == 0:
                async with engine.begin() as connection:
                    await connection.exec_driver_sql(
                        "UPDATE generations SET score = 1.5, score_detail = '{\"topic\": 1.0}' WHERE id = ?", (g,))
                await ReviewStore(engine).decide([g], "rejected", "camila", "fuera de tono", reason="offensive")
        await engine.dispose()

    asyncio.run(seed())
    with TestClient(create_app(ReviewStore(create_engine(url)), AdminAuth(cheap_hash(PASSWORD)))) as client:
        yield signed_in(client, PASSWORD)


def test_csv_has_a_bom_and_guards_only_cells_that_would_run(client: TestClient) -> None:
    body = client.get("/export.csv").content.decode("utf-8")
    assert body.startswith(BOM)
    rows = list(csv.DictReader(io.StringIO(body.removeprefix(BOM))))
    jsonl = [json.loads(line) for line in client.get("/export.jsonl").text.splitlines()]
    assert [r["text"] for r in jsonl] == TEXTS
    expected = [("'" + t) if runs_as_formula(t) else t for t in TEXTS]
    assert [r["text"] for r in rows] == expected
    assert rows[0]["text"] == jsonl[0]["text"] == "@usuario hola, ¿cómo va la educación?"  # as written
    assert [r["text"] for r in rows].count("'" + TEXTS[1]) == 1 and rows[1]["text"].startswith("'=")


def test_exports_carry_scores_parts_people_and_decisions(client: TestClient) -> None:
    rows = list(csv.DictReader(io.StringIO(client.get("/export.csv").text.removeprefix(BOM))))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    first = rows[0]
    assert (first["score"], json.loads(first["score_parts"])) == ("1.5", {"topic": 1.0})
    assert first["user"] == "Ana Ñuñez (telegram:100)" and first["chat"] == "Vecinos Ñuñoa"
    assert (first["review_status"], first["reason"], first["reviewer"], first["note"]) == (
        "rejected", "offensive", "camila", "fuera de tono")
    decided = datetime.fromisoformat(first["decided_at"])
    assert decided.utcoffset() is not None and first["decided_at"].endswith(("-03:00", "-04:00"))
    assert first["created_at"] == "2026-11-01T09:00:00-03:00"  # 12:00 UTC, in the desk's zone
    assert rows[1]["reviewer"] == rows[1]["decided_at"] == ""  # not decided
    jsonl = json.loads(client.get("/export.jsonl").text.splitlines()[0])
    assert jsonl["score_parts"] == {"topic": 1.0} and jsonl["reviewer"] == "camila"
