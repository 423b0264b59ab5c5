"""Measure a sentiment annotator against the hand-labelled sample in ``resources/``.

The sample holds no tweet text (the data stays outside the repository): each row names a tweet
by a hash of its cleaned text, so the measurement needs the original tweets file::

    python -m training.sentiment_check --tweets ../shared/data/elecciones2017/candidatos.csv

It prints accuracy, the majority-class baseline and the confusion counts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from pathlib import Path

from training.clean import CleanStats, clean_tweets, duplicate_key
from training.sentiment import make_sentiment
from training.tables import pick_column, read_rows

SAMPLE = Path(__file__).parent / "resources" / "sentiment_sample.csv"


def tweet_key(text: str) -> str:
    """The sample's name for a cleaned tweet."""
    return hashlib.sha1(duplicate_key(text).encode("utf-8")).hexdigest()[:16]


def measure(tweets: Path, annotator: str = "lexicon", sample: Path = SAMPLE) -> dict:
    gold = {row["key"]: row["label"] for row in read_rows(sample)}
    column = pick_column(tweets, None, ("text", "tweet"), "text")
    texts = {}
    for text in (c.text for c in clean_tweets((str(r[column]) for r in read_rows(tweets)), 1, CleanStats())):
        key = tweet_key(text)
        if key in gold:
            texts[key] = text
    keys = sorted(texts)
    predicted = make_sentiment(annotator)([texts[k] for k in keys])
    pairs = [(gold[k], p) for k, p in zip(keys, predicted, strict=True)]
    majority = Counter(gold[k] for k in keys).most_common(1)[0]
    return {
        "annotator": annotator,
        "found": len(keys),
        "sample": len(gold),
        "accuracy": sum(g == p for g, p in pairs) / len(pairs),
        "majority_baseline": majority[1] / len(pairs),
        "confusion (gold→predicted)": dict(Counter(f"{g}→{p}" for g, p in pairs).most_common()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=Path, required=True)
    parser.add_argument("--annotator", default="lexicon")
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    args = parser.parse_args()
    print(json.dumps(measure(args.tweets, args.annotator, args.sample), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
