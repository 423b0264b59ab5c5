"""``rerank``: try ranking weights on candidates already drawn, without drawing them again.

``evaluate`` keeps every candidate of every prompt with the parts the ranker measured
(``samples.jsonl``). Choosing among them with other weights needs no model, so a whole grid of
weights is compared on the same draws in seconds, on the validation split; the chosen weights
then go to ``[generation.ranking]`` and the test split is evaluated once with them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generation.decoding.judge import FILENAME, ReaderJudge
from generation.decoding.ranking import total
from generation.settings import RankingSettings
from training.decode import parse_overrides
from training.errors import InputError
from training.invented import DEFAULT_DICTIONARY
from training.judge import Judge
from training.tables import read_jsonl

SHOWN = ("open_share", "realism_accuracy", "realism_style", "side_adherence", "side_adherence_check",
         "sentiment_adherence", "topic_inclusion", "memorization", "distinct_2", "invented_share")


def choose(sample: dict[str, Any], weights: RankingSettings) -> str:
    """The candidate these weights would show (the stored order breaks ties)."""
    candidates = sample["candidates"]
    if not candidates:
        return ""
    best = max(range(len(candidates)), key=lambda i: (total(candidates[i]["parts"], weights), -i))
    return candidates[best]["text"]


def add_reader_part(samples: list[dict[str, Any]], folder: Path) -> None:
    """Give every candidate the reader's judge's parts (``real``, ``unknown``, ``lean``, ``copied``;
    ``generation/decoding/judge.py``), replacing any the draw recorded, so that its weights can
    be tried on draws made without it, or with another judge."""
    reader = ReaderJudge.load(folder)
    if reader is None:
        raise InputError(f"{folder}: no {FILENAME} (train one with politico-train judge)")
    for sample in samples:
        party = sample["prompt"].get("partido", "")
        for candidate in sample["candidates"]:
            for name in ("real", "unknown", "lean", "copied"):
                candidate["parts"].pop(name, None)
            candidate["parts"].update(reader.read(candidate["text"], party))


def rerank(samples_path: Path, train: Path, settings: list[str], out: Path | None = None,
           sentiment: str = "lexicon", copy_words: int = 8, seed: int = 42, reader: Path | None = None,
           dictionary: Path = DEFAULT_DICTIONARY, candidates: int | None = None,
           held_out: Path | None = None, fold_seeds: int = 1) -> dict[str, Any]:
    """Metrics of the shown tweets under each weight setting (``"side=2,open=3"``; unnamed weights
    keep their defaults); with ``reader``, the judge in that folder adds its part first; with
    ``candidates``, only each prompt's first that many are there to choose from (what a request
    gets from an engine shedding candidates under load: ``[generation.engine] shed_candidates``);
    with ``held_out`` (the split the samples were drawn on), side is also checked by a classifier
    trained on its real tweets (``side_adherence_check``); with ``fold_seeds`` > 1, realism
    is also given as its mean over that many fold splits (``realism_folds``)."""
    if fold_seeds < 1:
        raise InputError(f"--fold-seeds must be 1 or more, not {fold_seeds}")
    samples = read_jsonl(samples_path)
    if not all("candidates" in s and "real" in s for s in samples):
        raise InputError(f"{samples_path}: not an evaluate samples.jsonl with candidates")
    if candidates is not None:
        for sample in samples:
            sample["candidates"] = sample["candidates"][:candidates]
    if reader is not None:
        add_reader_part(samples, reader)
    judge = Judge(read_jsonl(train), sentiment, copy_words, seed, dictionary,
                  read_jsonl(held_out) if held_out else None, fold_seeds)
    shown = ("realism_folds", *SHOWN) if fold_seeds > 1 else SHOWN
    results = []
    for setting in settings:
        try:
            weights = RankingSettings.model_validate(parse_overrides([p for p in setting.split(",") if p]))
        except ValueError as exc:
            raise InputError(f"{setting!r}: {exc}") from None
        if not weights.enabled:
            raise InputError("the stored candidates are already ranked: evaluate with --rank enabled=false instead")
        texts = [choose(s, weights) for s in samples]
        results.append({"weights": setting, **judge.measure(texts, samples, *judge.label(texts))})
    table = ["| weights | " + " | ".join(shown) + " |", "|" + " --- |" * (len(shown) + 1)]
    table += ["| " + r["weights"] + " | " + " | ".join(f"{r[m]:.3f}" for m in shown) + " |" for r in results]
    if judge.skipped:
        table.append(f"invented_share: NaN, {judge.skipped}")
    summary = {"samples": str(samples_path), "results": results, "table": "\n".join(table)}
    if out:
        out.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary
