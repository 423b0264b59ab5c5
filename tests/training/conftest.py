"""Tiny synthetic data for the training commands: a few dozen tweets by four invented authors."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest

AUTHORS = [
    ("ana_derecha", "UDI", "Chile Vamos", "derecha"),
    ("beto_derecha", "RN", "Chile Vamos", "derecha"),
    ("carla_izq", "RD", "Frente Amplio", "izquierda"),
    ("dario_centro", "PDC", "Convergencia Democrática", "centro"),
]
SIGNATURES = {"ana_derecha": "¡Adelante!", "beto_derecha": "Seguimos.", "carla_izq": "¡Fuerza!",
              "dario_centro": "Un abrazo."}
PLACES = ["Valparaíso", "Concepción", "Temuco", "Antofagasta", "Rancagua", "Osorno"]
TOPICS = [
    ("Gracias a los vecinos de {p} por su apoyo, seguimos trabajando por la seguridad", "#Seguridad"),
    ("Hoy en {p} conversamos sobre pensiones dignas y la reforma a las AFP", "#Pensiones"),
    ("Lamentable la violencia en {p}: no aceptamos más abusos contra las familias", ""),
    ("Gran jornada en {p} con @JuanPerez, defendemos la educación pública de calidad", "#Educación"),
]


def synthetic_rows() -> list[dict[str, str]]:
    """Tweets with the API's quirks: retweets, truncated endings, links, duplicates, near-empty."""
    rows = []
    for (author, *_), place, (template, tag) in itertools.product(AUTHORS, PLACES[:3], TOPICS):
        text = f"{template.format(p=place)} {SIGNATURES[author]} {tag}".strip()
        rows.append({"screen_name": author, "text": text})
    rows += [
        {"screen_name": "ana_derecha", "text": "RT @otro: esto es de otra persona y no cuenta para nada"},
        {"screen_name": "carla_izq", "text": "Vamos con todo por una salud digna en todo Chile, más recursos para los hospit… https://t.co/AbC123"},
        {"screen_name": "beto_derecha", "text": "Revisen nuestra propuesta de vivienda para la clase media https://t.co/xyz"},
        {"screen_name": "dario_centro", "text": "@alguien Gracias!"},
        {"screen_name": "dario_centro", "text": rows[0]["text"]},
    ]
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def raw_data(tmp_path: Path) -> dict[str, Path]:
    tweets = write_csv(tmp_path / "tweets.csv", synthetic_rows())
    authors = write_csv(tmp_path / "autores.csv", [
        {"screen_name": a, "partido": p, "coalicion": c, "lado": s} for a, p, c, s in AUTHORS
    ])
    return {"tweets": tweets, "authors": authors, "dir": tmp_path}
