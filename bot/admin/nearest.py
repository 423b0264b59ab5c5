"""The training tweet closest to a generated one, when a model's card names a training index.

A model folder's card (``README.md``) may declare, in its front matter,
``training_index: train-tweets.jsonl``: a file beside it with one training tweet per line
(``{"text": ...}``). The desk shows the closest one (rapidfuzz similarity) so a reviewer can
spot a tweet the model copied instead of invented. Models without an index show nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from bot.config import Settings

CARD = "README.md"
KEY = "training_index"


def index_file(folder: Path) -> Path | None:
    """The index a model card's front matter points to (inside the model folder), if any."""
    card = folder / CARD
    try:
        lines = card.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, _, value = line.partition(":")
        if key.strip() == KEY and value.strip():
            path = (folder / value.strip().strip("'\"")).resolve()
            return path if path.is_relative_to(folder.resolve()) and path.is_file() else None
    return None


def load_tweets(path: Path) -> list[str]:
    tweets = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        text = item.get("text") if isinstance(item, dict) else item
        if isinstance(text, str) and text:
            tweets.append(text)
    return tweets


@dataclass
class TrainingIndex:
    """Model name → folder; each index is read on first use and kept."""

    folders: dict[str, Path]
    _tweets: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainingIndex:
        return cls({
            name: Path(spec.path)
            for name, spec in settings.generation.models.items()
            if Path(spec.path).is_dir()
        })

    def nearest(self, model: str, text: str) -> tuple[str, float] | None:
        """(closest training tweet, similarity 0-100), or None without an index."""
        if model not in self._tweets:
            folder = self.folders.get(model)
            path = index_file(folder) if folder else None
            self._tweets[model] = load_tweets(path) if path else []
        tweets = self._tweets[model]
        if not tweets or not text:
            return None
        found = process.extractOne(text, tweets, scorer=fuzz.ratio)
        return (found[0], float(found[1])) if found else None
