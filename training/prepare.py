"""``prepare``: raw tweets + an authors table → cleaned, annotated JSONL with a fixed split.

Output folder layout (what the other commands read):

- ``all.jsonl``, ``train.jsonl``, ``validation.jsonl``, ``test.jsonl``: one annotated tweet a
  line, with the fields of :class:`generation.prompts.ControlFields` plus ``tweet``, ``autor``,
  ``lado`` and ``completo`` (False: the tweet ends open and must not teach an ending), and
  ``fecha`` when the tweets have a date column (``created_at``).
- ``derecha/`` and ``izquierda/``: the same split, only that side's tweets (the casual models).
- ``corpus.txt``: the training split's complete tweets, one a line (tokenizer and pretraining).
- ``stats.json``: counts per label and what cleaning dropped.

Settings are chosen on *validation*; *test* is read once, for the report. Without an authors
table only ``corpus.txt`` (all kept complete tweets) and ``stats.json`` are written: that is how
tweets without labels (e.g. the public's) join the tokenizer and base-model corpus; ``--exclude``
then drops any text that shares a run of words with held-out tweets, so that no test tweet
reaches a model through someone quoting or retweeting it. The split is decided by a hash of
the tweet's text, so it does not depend on row order or seed and a tweet never moves between
splits when more data is added.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from generation.prompts import SENTIMENTS
from training.annotate import Annotator, make_entities
from training.clean import CleanStats, clean_tweets, duplicate_key
from training.errors import InputError
from training.metrics import CopyDetector
from training.sentiment import make_sentiment
from training.tables import columns_of, pick_column, read_rows, write_jsonl

TEXT_COLUMNS = ("text", "full_text", "tweet", "texto")
AUTHOR_COLUMNS = ("screen_name", "author", "autor", "user", "username")
#: A tweet's date, kept as ``fecha`` when the source has one (the bot's game shows it).
DATE_COLUMNS = ("created_at", "fecha", "date")
PARTY_COLUMNS = ("partido", "party")
COALITION_COLUMNS = ("coalicion", "coalition")
SIDE_COLUMNS = ("lado", "side")
SIDES = ("derecha", "centro", "izquierda")
#: Subsets written for the casual side models.
SIDE_SUBSETS = ("derecha", "izquierda")


@dataclass
class PrepareOptions:
    tweets: list[Path]
    out: Path
    authors: Path | None = None
    text_column: str | None = None
    author_column: str | None = None
    validation: float = 0.1
    test: float = 0.1
    retweets: bool = False
    exclude: list[Path] | None = None
    exclude_words: int = 8
    exclude_authors: Path | None = None
    min_words: int = 4
    sentiment: str = "auto"
    entities: str = "auto"
    max_entities: int = 3
    max_phrases: int = 2
    skip_unknown_authors: bool = False
    progress: bool = True


SPLITS = ("train", "validation", "test")


def split_of(text: str, validation: float, test: float) -> str:
    """The split a tweet belongs to, by a stable hash of its text."""
    digest = hashlib.sha1(duplicate_key(text).encode("utf-8")).digest()
    share = int.from_bytes(digest[:4], "big") / 2**32
    if share < validation:
        return "validation"
    return "test" if share < validation + test else "train"


def held_out_copies(paths: list[Path], words: int) -> CopyDetector:
    """Finds texts sharing ``words`` consecutive words with the tweets of ``paths``."""
    from training.corpus import iter_documents

    return CopyDetector(iter_documents(paths), words)


def load_authors(path: Path) -> dict[str, dict[str, str]]:
    """Author key → ``{partido, coalicion, lado}``; every side must be a known one."""
    key = pick_column(path, None, AUTHOR_COLUMNS, "author")
    party = pick_column(path, None, PARTY_COLUMNS, "party")
    coalition = pick_column(path, None, COALITION_COLUMNS, "coalition")
    side = pick_column(path, None, SIDE_COLUMNS, "side")
    authors = {}
    for row in read_rows(path):
        label = str(row[side]).strip().lower()
        if label not in SIDES:
            raise InputError(f"{path}: author {row[key]!r} has unknown side {row[side]!r} (use {', '.join(SIDES)})")
        authors[str(row[key]).strip().lower()] = {
            "partido": str(row[party]).strip(),
            "coalicion": str(row[coalition]).strip(),
            "lado": label,
        }
    if not authors:
        raise InputError(f"{path}: no authors")
    return authors


def read_tweets(options: PrepareOptions, need_author: bool) -> list[tuple[str, str, str]]:
    """``(author, raw text, date or "")`` of every row of every tweets file."""
    rows: list[tuple[str, str, str]] = []
    for path in options.tweets:
        text = pick_column(path, options.text_column, TEXT_COLUMNS, "text")
        author = pick_column(path, options.author_column, AUTHOR_COLUMNS, "author") if need_author else None
        date = next((c for c in DATE_COLUMNS if c in columns_of(path)), None)
        for row in read_rows(path):
            rows.append((str(row[author]).strip() if author else "", str(row[text] or ""),
                         str(row[date] or "").strip() if date else ""))
    return rows


def label_counts(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {
        field: dict(Counter(r[field] for r in rows).most_common())
        for field in ("autor", "partido", "coalicion", "lado", "sentimiento")
    }


def prepare(options: PrepareOptions) -> dict[str, Any]:
    """Run the whole step; returns the statistics also written to ``stats.json``."""
    authors = load_authors(options.authors) if options.authors else None
    raw = read_tweets(options, need_author=authors is not None)
    stats = CleanStats()
    skip = frozenset(load_authors(options.exclude_authors)) if options.exclude_authors else frozenset()
    kept = list(clean_tweets((text for _, text, _ in raw), options.min_words, stats, options.retweets, skip))
    if not kept:
        raise InputError("no tweet left after cleaning (is the text column right?)")
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"cleaning": asdict(stats)}
    if authors is None:
        held_out = held_out_copies(options.exclude or [], options.exclude_words)
        corpus = [c.text for c in kept if c.complete and not held_out.copies(c.text)]
        (out / "corpus.txt").write_text("".join(t + "\n" for t in corpus), encoding="utf-8")
        summary.update(corpus=len(corpus), open=sum(not c.complete for c in kept),
                       excluded=sum(c.complete for c in kept) - len(corpus))
        (out / "stats.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
        return summary

    unknown = Counter(raw[c.index][0] for c in kept if raw[c.index][0].lower() not in authors)
    if unknown and not options.skip_unknown_authors:
        names = ", ".join(f"{a!r} ({n})" for a, n in unknown.most_common(5))
        raise InputError(f"tweets by authors missing from the authors table: {names} "
                         "(add them or pass --skip-unknown-authors)")
    kept = [c for c in kept if raw[c.index][0].lower() in authors]
    annotator = Annotator(
        make_sentiment(options.sentiment),
        make_entities(options.entities, options.max_entities),
    )
    annotator.phrases.extractor.top = options.max_phrases
    notes = annotator.annotate([c.text for c in kept], progress=options.progress)
    rows = []
    for cleaned, note in zip(kept, notes, strict=True):
        if note.sentimiento not in SENTIMENTS:
            raise InputError(f"sentiment annotator returned unknown label {note.sentimiento!r}")
        author = raw[cleaned.index][0]
        rows.append({
            "autor": author, **authors[author.lower()],
            "sentimiento": note.sentimiento, "entidades": note.entidades,
            "hashtags": note.hashtags, "frases": note.frases, "tweet": cleaned.text,
            "completo": cleaned.complete,
            **({"fecha": raw[cleaned.index][2]} if raw[cleaned.index][2] else {}),
        })
    if not (options.validation >= 0 and options.test >= 0 and options.validation + options.test < 1):
        raise InputError("--validation and --test must be shares that add up to less than 1")
    splits = {name: [] for name in SPLITS}
    for row in rows:
        splits[split_of(row["tweet"], options.validation, options.test)].append(row)
    write_jsonl(out / "all.jsonl", rows)
    for name, split in splits.items():
        write_jsonl(out / f"{name}.jsonl", split)
        for side in SIDE_SUBSETS:
            write_jsonl(out / side / f"{name}.jsonl", (r for r in split if r["lado"] == side))
    train = splits["train"]
    (out / "corpus.txt").write_text("".join(r["tweet"] + "\n" for r in train if r["completo"]), encoding="utf-8")
    summary.update({
        "annotators": annotator.describe(),
        "rows": {"all": len(rows), **{name: len(split) for name, split in splits.items()},
                 **{side: sum(r["lado"] == side for r in rows) for side in SIDE_SUBSETS}},
        "labels": label_counts(rows),
        "with_entities": sum(bool(r["entidades"]) for r in rows),
        "with_hashtags": sum(bool(r["hashtags"]) for r in rows),
    })
    (out / "stats.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary
