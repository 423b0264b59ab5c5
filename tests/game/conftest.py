"""¿Real o ficticio? tests: a real-tweets file, and configs that point the demo model at it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import write_config

#: Rows as ``politico-train prepare`` writes them; only the first two are usable in a round.
ROWS: list[dict[str, Any]] = [
    {"tweet": "Hoy recorrimos la feria de Puente Alto y conversamos con los vecinos sobre seguridad",
     "autor": "sebastianpinera", "partido": "IND-RN", "coalicion": "Chile Vamos", "lado": "derecha",
     "sentimiento": "POSITIVE", "entidades": ["Puente Alto"], "hashtags": [], "frases": ["feria"],
     "completo": True, "fecha": "2017-10-03T14:05:00"},
    {"tweet": "La educación pública gratuita es un derecho y no vamos a retroceder #NoMasLucro",
     "autor": "labeasanchez", "partido": "IND-FA", "coalicion": "Frente Amplio", "lado": "izquierda",
     "sentimiento": "NEGATIVE", "entidades": ["educación pública"], "hashtags": ["NoMasLucro"],
     "frases": [], "completo": True, "fecha": "Wed Nov 08 20:19:24 +0000 2017"},
    {"tweet": "Un tuit cortado que termina en", "autor": "x", "partido": "PDC", "coalicion": "Convergencia Democrática",
     "lado": "centro", "sentimiento": "NEUTRAL", "entidades": [], "hashtags": [], "completo": False},
    {"tweet": "Sin partido ni sentimiento", "autor": "y"},
]
REAL_TEXTS = {row["tweet"] for row in ROWS[:2]}


def write_real_tweets(folder: Path, rows: list[dict[str, Any]] = ROWS) -> Path:
    """The rows as JSONL, with a line that is not JSON (skipped, as a hand-edited file may have)."""
    path = folder / "test_tweets.jsonl"
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    path.write_text("\n".join([lines[0], "{no es json", *lines[1:]]) + "\n", encoding="utf-8")
    return path


def game_config(folder: Path, model_dir: Path, extra: str, real_tweets: str | None) -> Path:
    """``write_config`` with the demo model's ``real_tweets`` set (None: left out)."""
    path = write_config(folder, model_dir, extra)
    if real_tweets is not None:
        text = path.read_text(encoding="utf-8")
        marker = 'kind = "controlled"\n'
        assert text.count(marker) == 1
        path.write_text(text.replace(marker, f'{marker}real_tweets = "{real_tweets}"\n'), encoding="utf-8")
    return path
