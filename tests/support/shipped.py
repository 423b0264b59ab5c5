"""Running the shipped configuration (the repo's config.toml, the demo model) in tests.

Tests that claim "this is what users run" start the programs on config.toml itself, changing
only what a deployment changes: tokens, the database and its spool, service addresses, ports
(through ``POLITICO_<TABLE>__<KEY>``, as operators do). A change to config.toml's defaults then
runs in CI as users run it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ROOT

#: The file users run.
SHIPPED_CONFIG = ROOT / "config.toml"


def shipped_env(folder: Path, *, database_url: str = "", **settings: object) -> dict[str, str]:
    """Environment overrides for a program on the shipped config: a database of the test's own
    (SQLite in ``folder`` unless ``database_url``), its spool in ``folder``, and ``settings``
    given as ``table__key=value`` (lists and tables as JSON), e.g. ``telegram__token="1:X"``."""
    env = {
        "POLITICO_DATABASE__URL": database_url or f"sqlite+aiosqlite:///{folder / 'politico.db'}",
        "POLITICO_DATABASE__SPOOL_PATH": str(folder / "politico-spool.jsonl"),
        # One process per core is how a shared CPU host runs several (docs/deploy.md): torch's
        # OpenMP threads otherwise spin against each other. Not a config key: the shipped
        # config is left as it is.
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    for key, value in settings.items():
        env[f"POLITICO_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env
