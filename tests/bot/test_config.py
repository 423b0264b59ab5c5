"""``with_overrides``: ``KEY=VALUE`` on top of the loaded config, validated like the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings, with_overrides
from generation.config import ConfigError
from tests.conftest import write_config


def test_overrides_are_typed_validated_and_win_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLITICO_BOT__CANDIDATES", "2")
    settings = load_settings(write_config(tmp_path, tmp_path / "model"))
    assert settings.bot.candidates == 2
    changed = with_overrides(settings, [
        "bot.candidates=4", "generation.engine.batch_window_ms=2.5", "generation.ranking.enabled=false",
        "generation.models.demo.decoding.max_new_tokens=16", "database.url=sqlite+aiosqlite:////tmp/x.db",
        "rate_limits.redis_url=''",
    ])
    assert changed.bot.candidates == 4 and changed.generation.engine.batch_window_ms == 2.5
    assert changed.generation.ranking.enabled is False
    assert changed.generation.models["demo"].decoding.max_new_tokens == 16
    assert changed.database.url == "sqlite+aiosqlite:////tmp/x.db" and changed.rate_limits.redis_url == ""
    assert changed.politics == settings.politics and changed.logging == settings.logging
    assert settings.bot.candidates == 2  # the original is untouched
    admin = with_overrides(settings, ["admin.trusted_proxies=['127.0.0.1', '10.0.0.0/8']", "admin.timezone='UTC'"]).admin
    assert (admin.trusted_proxies, admin.timezone) == (["127.0.0.1", "10.0.0.0/8"], "UTC")
    assert (settings.admin.trusted_proxies, settings.admin.timezone) == ([], "America/Santiago")  # the defaults


@pytest.mark.parametrize(("assignment", "named"), [
    ("bot.candidatez=3", "bot.candidatez: unknown key"),
    ("bot.candidates=99", "bot.candidates"),
    ("bot.candidates", "KEY=VALUE"),
    ("bot.candidates.x=1", "bot.candidates is not a table"),
    ("admin.timezone='Marte/Olympus'", "admin.timezone"),
    ("admin.trusted_proxies=['10.0.0.300']", "admin.trusted_proxies"),
    ("admin.trusted_proxy=[]", "admin.trusted_proxy: unknown key"),
])
def test_a_wrong_override_is_one_line_naming_it(tmp_path: Path, assignment: str, named: str) -> None:
    settings = load_settings(write_config(tmp_path, tmp_path / "model"))
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")) as raised:
        with_overrides(settings, [assignment])
    assert "\n" not in str(raised.value)
