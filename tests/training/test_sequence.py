"""The contextual training sequence, checked token by token against the thesis layout."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from generation.prompts import IGNORE_INDEX, ControlFields, encode_prompt
from training.contextual import ContextualDataset, Example, drop_fields

FIELDS = ControlFields(
    "Chile Vamos", "UDI", "POSITIVE", ("Valparaíso",), ("Pensiones",), ("pensiones dignas",)
)
TWEET = "Vamos a defender la educación pública en todo Chile"
SEGMENTS = [
    ("[COALICION]", " [COALICION] Chile Vamos"),
    ("[PARTIDO]", " [PARTIDO] UDI"),
    ("[SENTIMIENTO]", " [SENTIMIENTO] POSITIVE"),
    ("[ENTIDADES]", " [ENTIDADES] Valparaíso"),
    ("[HASHTAGS]", " [HASHTAGS] Pensiones"),
    ("[FRASES]", " [FRASES] pensiones dignas"),
    ("[TWEET]", " [TWEET] "),
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def expected(tokenizer, segments, tweet_ids):
    """The sequence written out by hand: each segment's ids typed with its marker's id."""
    ids, types, labels = [], [], []
    for marker, text in segments:
        piece = tokenizer.encode(text, add_special_tokens=False)
        marker_id = tokenizer.convert_tokens_to_ids(marker)
        assert marker_id in piece  # the marker is one token, never split
        ids += piece
        types += [marker_id] * len(piece)
        labels += [IGNORE_INDEX] * len(piece)
    tweet_type = tokenizer.convert_tokens_to_ids("[TWEET]")
    return ids + tweet_ids, types + [tweet_type] * len(tweet_ids), labels + tweet_ids


def test_full_sequence_types_and_labels(tokenizer) -> None:
    item = ContextualDataset([Example(FIELDS, TWEET)], tokenizer, block_size=256)[0]
    tweet_ids = [*tokenizer.encode(TWEET, add_special_tokens=False), tokenizer.eos_token_id]
    ids, types, labels = expected(tokenizer, SEGMENTS, tweet_ids)
    assert item["input_ids"] == ids
    assert item["token_type_ids"] == types
    assert item["labels"] == labels
    # Training sees exactly the prompt that generation builds, then the tweet.
    prompt = encode_prompt(tokenizer, FIELDS)
    assert item["input_ids"][: len(prompt.input_ids)] == prompt.input_ids
    assert item["token_type_ids"][: len(prompt.input_ids)] == prompt.token_type_ids


def test_an_open_tweet_learns_its_words_but_no_ending(tokenizer) -> None:
    item = ContextualDataset([Example(FIELDS, TWEET, complete=False)], tokenizer, block_size=256)[0]
    ids, types, labels = expected(tokenizer, SEGMENTS, tokenizer.encode(TWEET, add_special_tokens=False))
    assert (item["input_ids"], item["token_type_ids"], item["labels"]) == (ids, types, labels)
    assert tokenizer.eos_token_id not in item["labels"]


def test_truncation_drops_frases_then_entidades_then_cuts_the_tweet(tokenizer) -> None:
    tweet_ids = [*tokenizer.encode(TWEET, add_special_tokens=False), tokenizer.eos_token_id]
    full = len(ContextualDataset([Example(FIELDS, TWEET)], tokenizer, 256)[0]["input_ids"])
    frases = len(tokenizer.encode(SEGMENTS[5][1], add_special_tokens=False))
    entidades = len(tokenizer.encode(SEGMENTS[3][1], add_special_tokens=False))

    item = ContextualDataset([Example(FIELDS, TWEET)], tokenizer, full - 1)[0]
    without_frases = [s for s in SEGMENTS if s[0] != "[FRASES]"]
    assert item["input_ids"] == expected(tokenizer, without_frases, tweet_ids)[0]

    item = ContextualDataset([Example(FIELDS, TWEET)], tokenizer, full - frases - 1)[0]
    without_both = [s for s in without_frases if s[0] != "[ENTIDADES]"]
    ids, types, labels = expected(tokenizer, without_both, tweet_ids)
    assert (item["input_ids"], item["token_type_ids"], item["labels"]) == (ids, types, labels)

    block = full - frases - entidades - 3
    item = ContextualDataset([Example(FIELDS, TWEET)], tokenizer, block)[0]
    ids, types, labels = expected(tokenizer, without_both, tweet_ids[:-3])
    assert len(item["input_ids"]) == block
    assert (item["input_ids"], item["token_type_ids"], item["labels"]) == (ids, types, labels)


def test_field_dropout_keeps_labels_and_draws_partial_contexts() -> None:
    rng = random.Random(0)
    assert drop_fields(FIELDS, rng, 0.0) == FIELDS
    many = ControlFields("FA", "RD", "NEGATIVE", ("Temuco", "Osorno"), ("Salud",), ("salud digna",))
    drawn = [drop_fields(many, rng, 0.5) for _ in range(200)]
    assert all((d.coalicion, d.partido, d.sentimiento) == ("FA", "RD", "NEGATIVE") for d in drawn)
    assert {len(d.entidades) for d in drawn} == {0, 1, 2}
    assert any(not d.frases for d in drawn) and any(d.frases for d in drawn)
