"""``politico crowd --quick`` end to end on the tiny model: the report's shape and that every
user got a labelled tweet (timing is the benchmark's business, never a test's)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from bot import cli
from bot.catalog import Catalog
from bot.config import Settings
from bot.crowd import ask, commands
from bot.parser import ParsedCommand, parse_command
from bot.types import Incoming, Reply, Tweet


def test_quick_crowd_writes_a_report_where_everyone_got_a_tweet(config_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "crowd.json"
    code = cli.main(["crowd", "--config", str(config_path), "--quick", "--rounds", "2",
                     "--set", "generation.engine.threads=1", "--out", str(out)])
    report = json.loads(out.read_text(encoding="utf-8"))
    assert code == 0, report["rounds"]
    assert report["plan"] == {"users": 3, "late_s": 0.2, "rounds": 2, "warmup": 1, "seed": 0}
    assert report["failures"] == 0 and report["warmup"]["ok"] == 1
    assert len(report["rounds"]) == 2
    for round_ in report["rounds"]:
        assert round_["crowd"]["ok"] == 3 and round_["late"]["ok"] and round_["failures"] == []
        requests = round_["requests"]
        assert [r["late"] for r in requests] == [False, False, False, True]
        assert all(r["ok"] and r["kind"] == "tweet" and r["wait_s"] > 0 for r in requests)
        assert all(r["command"].startswith("/tuit") for r in requests)
        assert len({r["user"] for r in requests}) == 4
    assert set(report["median"]) == {"crowd_p50_s", "crowd_p90_s", "crowd_max_s", "late_wait_s"}
    assert set(report["targets"]) == {"crowd_p50_s", "crowd_max_s", "late_wait_s"}
    settings = report["settings"]
    assert settings["max_new_tokens"] == 16 and settings["engine"]["threads"] == 1
    assert settings["overrides"][-1] == "generation.engine.threads=1"
    stats = report["engine_stats"]
    assert stats["completed"] >= 1 + 2 * 4 and stats["errors"] == 0
    assert report["machine"]["torch_threads"] == 1 and len(report["machine"]["load_average_end"]) == 3


def test_quick_crowd_also_through_politico_serve(config_path: Path, tmp_path: Path) -> None:
    """``--serve 1``: the same crowd, alternated, through a real ``politico serve`` on loopback."""
    out = tmp_path / "crowd.json"
    code = cli.main(["crowd", "--config", str(config_path), "--quick", "--serve", "1",
                     "--set", "generation.engine.threads=1", "--out", str(out)])
    report = json.loads(out.read_text(encoding="utf-8"))
    assert code == 0 and report["failures"] == 0, report
    remote = report["remote"]
    assert len(remote["endpoints"]) == 1 and remote["endpoints"][0].startswith("http://127.0.0.1:")
    assert remote["warmup"]["ok"] == 1 and [r["crowd"]["ok"] for r in remote["rounds"]] == [3]
    # The same commands on both bots, each answered with a labelled tweet.
    assert [r["command"] for r in remote["rounds"][0]["requests"]] == [r["command"] for r in report["rounds"][0]["requests"]]
    assert remote["p50_over_in_process"] == round(remote["median"]["crowd_p50_s"] / report["median"]["crowd_p50_s"], 3)


def test_crowd_commands_are_valid_and_varied(settings: Settings) -> None:
    catalog = Catalog.from_settings(settings.politics)
    made = commands(random.Random(3), 60)
    parsed = [parse_command(command, catalog, settings.bot.max_command_chars) for command in made]
    assert all(isinstance(p, ParsedCommand) for p in parsed), [p for p in parsed if not isinstance(p, ParsedCommand)]
    assert len(set(made)) > 50
    assert any(p.hashtags for p in parsed) and any(e.startswith("@") for p in parsed for e in p.entities)
    assert {p.side for p in parsed} >= {"derecha", "izquierda", "centro", ""}


class CannedCore:
    """Answers every command with one reply, as a busy or broken core would."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.seen: list[Incoming] = []

    async def handle(self, incoming: Incoming) -> Reply:
        self.seen.append(incoming)
        return self.reply

    async def mark_sending(self, generation_id: int) -> bool:
        return True

    async def mark_sent(self, generation_id: int, message_ref: str) -> bool:
        return True


async def test_a_reply_that_is_not_a_labelled_tweet_is_a_failure_with_its_message() -> None:
    busy = CannedCore(Reply("busy", "Hay mucha gente pidiendo tuits.\nIntenta en un rato."))
    outcome = await ask(busy, 42, "/tuit derecha", 0.0)  # type: ignore[arg-type]
    assert not outcome.ok and outcome.kind == "busy" and outcome.error == "Hay mucha gente pidiendo tuits."
    origin = busy.seen[0].origin
    assert (origin.platform, origin.user_id, origin.chat_id, origin.source) == ("telegram", "42", "42", "42:1")
    unlabelled = CannedCore(Reply("tweet", "un tuit", Tweet(generation_id=1, request_id=1, text="un tuit")))
    outcome = await ask(unlabelled, 43, "/tuit", 0.0)  # type: ignore[arg-type]
    assert not outcome.ok and "label" in outcome.error
