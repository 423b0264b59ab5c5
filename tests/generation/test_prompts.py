"""The prompts the engine is given, token by token, against the documented thesis format."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from generation.prompts import ControlFields
from generation.registry import LoadedModel, ModelRegistry
from generation.serving.backends.local import encode, encode_casual
from generation.serving.server import encode_controlled_text
from generation.types import PromptSpec

# The example of shared/docs/thesis-format.md, as fields and as the documented text.
FIELDS = ControlFields(
    coalicion="Chile Vamos", partido="UDI", sentimiento="POSITIVE", entidades=("carabineros",),
    hashtags=("#CuentaPública",), frases=("cuentan con el apoyo",),
)
DOCUMENTED = (
    " [COALICION] Chile Vamos [PARTIDO] UDI [SENTIMIENTO] POSITIVE [ENTIDADES] carabineros"
    " [HASHTAGS] CuentaPública [FRASES] cuentan con el apoyo [TWEET] "
)


def expected(tokenizer, pairs: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
    """Ids and types built by hand from the format: ``" " + marker`` then ``" " + value``."""
    ids: list[int] = []
    types: list[int] = []
    for marker, value in pairs:
        marker_id = tokenizer.convert_tokens_to_ids(marker)
        piece = [
            *tokenizer.encode(" ", add_special_tokens=False), marker_id,
            *tokenizer.encode(f" {value}", add_special_tokens=False),
        ]
        ids += piece
        types += [marker_id] * len(piece)
    return ids, types


def test_controlled_prompt_matches_the_documented_format(lm: LoadedModel) -> None:
    tok = lm.tokenizer
    ids, types = encode(lm, PromptSpec("controlled", FIELDS))
    want_ids, want_types = expected(tok, [
        ("[COALICION]", "Chile Vamos"), ("[PARTIDO]", "UDI"), ("[SENTIMIENTO]", "POSITIVE"),
        ("[ENTIDADES]", "carabineros"), ("[HASHTAGS]", "CuentaPública"),
        ("[FRASES]", "cuentan con el apoyo"), ("[TWEET]", ""),
    ])
    assert ids == want_ids
    assert types == want_types
    assert tok.decode(ids) == DOCUMENTED
    # The prompt ends on " [TWEET] ": the marker, then a space, all typed as [TWEET].
    tweet = tok.convert_tokens_to_ids("[TWEET]")
    assert ids[-2] == tweet and tok.decode(ids[-1:]) == " "
    assert set(types[-3:]) == {tweet}


def test_controlled_prompt_leaves_out_empty_fields_and_defaults_sentiment(lm: LoadedModel) -> None:
    tok = lm.tokenizer
    ids, types = encode(lm, PromptSpec("controlled", ControlFields(partido="RD")))
    want_ids, want_types = expected(tok, [("[PARTIDO]", "RD"), ("[SENTIMIENTO]", "NEUTRAL"), ("[TWEET]", "")])
    assert (ids, types) == (want_ids, want_types)
    assert tok.decode(ids) == " [PARTIDO] RD [SENTIMIENTO] NEUTRAL [TWEET] "


def test_a_start_goes_after_the_tweet_marker_tokenized_as_training_tweets_are(lm: LoadedModel) -> None:
    tok = lm.tokenizer
    plain, plain_types = encode(lm, PromptSpec("controlled", FIELDS))
    ids, types = encode(lm, PromptSpec("controlled", FIELDS, seed_text="Hoy en La Moneda"))
    start = tok.encode("Hoy en La Moneda", add_special_tokens=False)
    tweet = tok.convert_tokens_to_ids("[TWEET]")
    assert ids == [*plain, *start] and types == [*plain_types, *[tweet] * len(start)]
    assert tok.decode(ids) == DOCUMENTED + "Hoy en La Moneda"
    # Any seed text is the tweet's start, whatever kind of prompt asked for it.
    assert encode(lm, PromptSpec("casual", seed_text="Hola"))[0][-len(tok.encode("Hola")):] == tok.encode("Hola")


def test_politico_serve_rebuilds_a_prompt_with_a_start_from_its_text(lm: LoadedModel) -> None:
    """The remote backend sends ``PromptSpec.text()``: the server must cut it back into the very
    ids and types the in-process backend makes, the start tokenized apart from the marker."""
    # " [TWEET] salud…" in one piece would tokenize otherwise (" s" is one token here).
    for prompt in (PromptSpec("controlled", FIELDS, seed_text="salud digna para las familias"),
                   PromptSpec("controlled", FIELDS), PromptSpec("controlled", seed_text="#Chile ")):
        rebuilt = encode_controlled_text(lm.tokenizer, prompt.text())
        assert (rebuilt.ids, rebuilt.token_types) == encode(lm, prompt)


def test_casual_prompt_is_bos_then_seed_text(registry: ModelRegistry) -> None:
    casual = registry.get("casual")
    tok = casual.tokenizer
    ids, types = encode(casual, PromptSpec("casual", seed_text="Hoy conversamos"))
    assert types is None
    assert ids == [tok.bos_token_id, *tok.encode("Hoy conversamos", add_special_tokens=False)]
    assert encode(casual, PromptSpec("casual"))[0] == [tok.bos_token_id]


def test_casual_prompt_falls_back_to_eos_and_refuses_a_tokenizer_without_either() -> None:
    def tokenizer(bos: int | None, eos: int | None) -> SimpleNamespace:
        return SimpleNamespace(bos_token_id=bos, eos_token_id=eos, encode=lambda text, add_special_tokens: [9])

    assert encode_casual(tokenizer(None, 0), "x") == [0, 9]
    assert encode_casual(tokenizer(5, 0)) == [5]
    with pytest.raises(ValueError, match="neither a BOS nor an EOS"):
        encode_casual(tokenizer(None, None))
