"""The ``politico`` entry point: lazy subcommands, --config anywhere, one-line failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import cli


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "comandos" in capsys.readouterr().out


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["volar"])
    assert exit_.value.code == 2
    assert "volar" in capsys.readouterr().err


def test_missing_module_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(cli.COMMANDS, "nada", ("bot.no_such_module:main", "x"))
    monkeypatch.setitem(cli.COMMANDS, "sinfuncion", ("bot.texts:no_such_function", "x"))
    assert cli.main(["nada"]) == 2
    assert cli.main(["sinfuncion"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("politico ") for line in err)


def test_config_before_the_command_is_handed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "load_target", lambda spec: lambda argv: seen.append(argv) or 3)
    assert cli.main(["--config", "x.toml", "chat", "--json"]) == 3
    assert cli.main(["chat", "--config", "y.toml"]) == 3
    assert seen == [["--config", "x.toml", "--json"], ["--config", "y.toml"]]


def test_config_error_is_one_line_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[bot]\nmax_command_charz = 10\n", encoding="utf-8")
    assert cli.main(["chat", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bot.max_command_charz" in err[0]
    assert cli.main(["db", "upgrade", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "not found" in capsys.readouterr().err
