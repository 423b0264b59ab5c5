"""``politico chat``: driven as a subprocess over a pipe (the real engine and a tiny model),
and its prompt loop in-process."""

from __future__ import annotations

import io
import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import App
from bot.config import Settings, load_settings
from bot.console import PROMPT, converse, run
from bot.core import BotCore
from bot.ratelimit import MemoryRateLimiter
from bot.types import FICTION_LABEL
from db.leases import Heartbeat
from db.log import GenerationLog
from db.migrate import upgrade
from tests.bot.test_core import FakeGenerator

ROOT = Path(__file__).resolve().parents[2]


def politico(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("politico")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*command, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=300)


def rows(config_path: Path) -> list[tuple[str, str]]:
    url = load_settings(config_path).database.url
    with sqlite3.connect(url.split("///", 1)[1]) as db:
        return db.execute(
            "select r.status, g.message_ref from requests r left join generations g on g.request_id = r.id order by r.id"
        ).fetchall()


def test_piped_lines_are_answered_and_logged(config_path: Path) -> None:
    lines = "/tuit derecha positivo pensiones\n\n/tuit partido=XYZ\nizquierda #Salud\n/otra\n/ayuda\n"
    done = politico("chat", "--config", str(config_path), stdin=lines)
    assert done.returncode == 1, done.stderr  # one answer was an error
    assert "Loading weights" not in done.stderr and "it/s]" not in done.stderr  # no progress bars
    out = done.stdout
    assert out.count(FICTION_LABEL) == 3 + 1  # three tweets, and the help mentions it
    assert "Entendí: lado derecha" in out and "Entendí: lado izquierda" in out and "#Salud" in out
    assert "No conozco el partido «XYZ»" in out
    assert "Cómo pedir un tuit" in out
    logged = rows(config_path)
    assert [status for status, _ in logged] == ["ok", "invalid", "ok", "ok"]
    assert all(ref.startswith("console:") for status, ref in logged if status == "ok")


def test_json_prints_one_object_per_answer(config_path: Path) -> None:
    done = politico("--config", str(config_path), "chat", "--json", stdin="/tuit centro mixto salud\n/tuit\n")
    assert done.returncode == 0, done.stderr
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(objects) == 2
    for obj in objects:
        assert obj["kind"] == "tweet" and obj["label"] == FICTION_LABEL and obj["text"]
        assert obj["model"] == "demo" and isinstance(obj["seed"], int) and obj["latency_ms"] > 0
        assert isinstance(obj["id"], int)
    first = objects[0]["controls"]
    assert (first["side"], first["party"], first["sentiment"], first["entities"]) == ("centro", "PDC", "MIXED", ["salud"])


def test_otra_with_a_change_and_a_tweet_that_starts_with_your_words(config_path: Path) -> None:
    lines = ('/tuit derecha feliz pensiones empieza: "Hoy en La Moneda"\n/otra más negativo\n'
             "/otra ahora sobre salud\n")
    done = politico("chat", "--config", str(config_path), "--json", stdin=lines)
    assert done.returncode == 0, done.stderr
    first, angrier, health = (json.loads(line) for line in done.stdout.splitlines())
    assert first["text"].startswith("Hoy en La Moneda") and first["controls"]["start"] == "Hoy en La Moneda"
    assert (first["controls"]["sentiment"], angrier["controls"]["sentiment"]) == ("POSITIVE", "NEGATIVE")
    assert angrier["controls"]["party"] == first["controls"]["party"] and angrier["controls"]["entities"] == ["pensiones"]
    assert angrier["text"].startswith("Hoy en La Moneda")
    assert (health["controls"]["entities"], health["controls"]["sentiment"]) == (["salud"], "NEGATIVE")


def test_config_error_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text('[generation]\nbackend = "quantum"\n', encoding="utf-8")
    done = politico("chat", "--config", str(bad), stdin="/tuit\n")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "generation.backend" in done.stderr


async def test_interactive_prompt_until_salir(settings: Settings) -> None:
    await upgrade(settings.database.url)
    log = await GenerationLog.open(settings.database.url)
    generator = FakeGenerator()
    core = BotCore(settings, generator, log, MemoryRateLimiter(), rng=random.Random(0))
    heartbeat = Heartbeat(log, core.lease_s, core.lease_s / 3, core.max_hold_s)
    app = App(settings, core, log, generator, generator, MemoryRateLimiter(), heartbeat)  # type: ignore[arg-type]
    out = io.StringIO()
    try:
        code = await converse(app, io.StringIO("derecha\n/salir\n/tuit\n"), out, as_json=False,
                              interactive=True, user="ana")
    finally:
        await log.aclose()
    assert code == 0
    text = out.getvalue()
    assert text.count(PROMPT) == 2 and text.count(FICTION_LABEL) == 1 and "/salir" in text
    assert len(generator.requests) == 1  # nothing after /salir


async def test_a_model_that_will_not_load_is_one_line(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code = await run(settings, as_json=False, user="ana")  # the settings' model folder does not exist
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("politico chat: no pude iniciar") and "no-model" in err[0]
