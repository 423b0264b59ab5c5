"""Candidate ranking: the parts, their weights, and a model that judges its own candidates."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from generation.decoding.ranking import contrasts_for, names, parts, rank, total, weighted
from generation.decoding.scoring import score_candidates
from generation.prompts import ControlFields
from generation.registry import LoadedModel, ModelRegistry
from generation.serving.backends.local import encode
from generation.settings import ModelSpec, RankingSettings
from generation.types import Completion, Contrast, PromptSpec, SamplingParams

UDI = ControlFields("Chile Vamos", "UDI", "POSITIVE", ("pensiones",))
SIDES = [("Frente Amplio", "RD")]
CONTRASTS = contrasts_for(UDI, SIDES, ["NEGATIVE"])


def test_contrasts_vary_one_control_and_keep_the_rest() -> None:
    assert [c.group for c in CONTRASTS] == ["side", "sentiment"]
    side, sentiment = (c.fields for c in CONTRASTS)
    assert (side.coalicion, side.partido, side.sentimiento, side.entidades) == (
        "Frente Amplio", "RD", "POSITIVE", ("pensiones",))
    assert (sentiment.partido, sentiment.sentimiento) == ("UDI", "NEGATIVE")


def test_parts_measure_fit_contrast_topic_and_ending() -> None:
    # log p(x | UDI) = -10 over 5 tokens; the other side and sentiment explain it worse.
    done = Completion("Pensiones dignas para Chile.", 4, "stop", (-10.0, -12.0, -10.0), 5)
    detail = parts("Pensiones dignas para Chile.", done, CONTRASTS, ["pensiones"])
    assert detail["fit"] == pytest.approx(-2.0)
    assert detail["side"] == pytest.approx(-10 - math.log(math.exp(-10) + math.exp(-12)))
    assert detail["sentiment"] == pytest.approx(-math.log(2))  # as likely as the contrast
    assert (detail["topic"], detail["open"]) == (1.0, 0.0)
    cut = parts("Pensiones dignas para", Completion("x", 3), CONTRASTS, ["#vivienda"])
    assert cut == {"topic": 0.0, "open": 1.0}  # no scores from this backend: text parts only


def test_each_part_enters_the_sum_with_its_weight_and_sign() -> None:
    """What the admin desk shows per part adds up to exactly the score ranked."""
    weights = RankingSettings(fit=0.5, side=6, sentiment=0.5, topic=16, open=3, real=3, unknown=2, lean=4, copied=4)
    detail = {"fit": -2.5, "side": -0.25, "sentiment": -0.5, "topic": 0.5, "open": 1.0, "real": -0.75,
              "unknown": 1.0, "lean": -0.1, "copied": 1.0}
    terms = weighted(detail, weights)
    assert terms["side"] == -1.5 and terms["topic"] == 8.0
    assert terms["open"] == -3.0 and terms["unknown"] == -2.0 and terms["copied"] == -4.0  # penalties
    assert sum(terms.values()) == total(detail, weights)
    assert weighted({}, weights) == dict.fromkeys(terms, 0.0)


def test_weights_decide_and_ties_keep_sampling_order() -> None:
    weights = RankingSettings(fit=1, side=0, sentiment=0, topic=2, open=3)
    assert total({"fit": -2.0, "topic": 1.0, "open": 1.0}, weights) == pytest.approx(-3.0)
    candidates = [
        ("Hablemos de vivienda y", Completion("a", 4)),         # open, off topic
        ("Pensiones dignas ya.", Completion("b", 4)),            # complete, on topic
        ("Hablemos de vivienda.", Completion("c", 4)),           # complete, off topic
        ("Otra cosa distinta.", Completion("d", 4)),             # same score as the one before
    ]
    ranked = rank(candidates, (), ["pensiones"], weights)
    assert [r.text for r in ranked] == [
        "Pensiones dignas ya.", "Hablemos de vivienda.", "Otra cosa distinta.", "Hablemos de vivienda y"]
    off = rank(candidates, (), ["pensiones"], RankingSettings(enabled=False))
    assert [r.text for r in off] == [t for t, _ in candidates] and off[0].detail == {}


def test_topics_are_whole_words_without_case_accents_or_marks() -> None:
    assert names("Gran día en VALPARAÍSO", "Valparaiso")
    assert names("Vamos #Pensiones", "#pensiones") and names("gracias @Juan", "Juan")
    assert not names("pensionesx", "pensiones")


# --- the model as its own judge ----------------------------------------------------------------

STYLE = {  # two parties that write unmistakably different tweets
    "UDI": "Orden y seguridad para las familias de Chile.",
    "RD": "Educación pública y gratuita para todos.",
}


@pytest.fixture(scope="module")
def taught(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """The tiny test model, trained for a few steps to write each party's tweet after its prompt."""
    from tests.support.tiny_model import build_taught_model

    folder = build_taught_model(tmp_path_factory.mktemp("taught"), STYLE)
    spec = ModelSpec(path=str(folder), kind="controlled", device="cpu")
    return ModelRegistry({"demo": spec}, threads=1, warmup=False).get("demo")


@pytest.mark.parametrize(("party", "other"), [("UDI", "RD"), ("RD", "UDI")])
def test_the_candidate_that_fits_the_requested_party_wins(taught: LoadedModel, party: str, other: str) -> None:
    fields = ControlFields(partido=party, sentimiento="POSITIVE")
    contrasts = (Contrast("side", ControlFields(partido=other, sentimiento="POSITIVE")),)
    prompts = [encode(taught, PromptSpec("controlled", f)) for f in (fields, contrasts[0].fields)]
    texts = [STYLE[other], STYLE[party]]  # the fitting one sampled second
    tokens = [taught.tokenizer.encode(t, add_special_tokens=False) for t in texts]
    scores = score_candidates(taught, prompts, tokens)
    candidates = [(t, Completion(t, len(ids), "stop", s, len(ids) + 1))
                  for t, ids, s in zip(texts, tokens, scores, strict=True)]
    ranked = rank(candidates, contrasts, (), RankingSettings())
    assert ranked[0].text == STYLE[party]
    assert ranked[0].detail["side"] > math.log(0.5) > ranked[1].detail["side"]
    assert ranked[0].detail["fit"] > ranked[1].detail["fit"]


async def test_the_engine_scores_its_own_candidates(taught: LoadedModel, tmp_path: Path) -> None:
    from generation.serving.engine import Engine
    from generation.settings import EngineSettings

    registry = ModelRegistry({"demo": taught.spec}, threads=1, warmup=False)
    registry._loaded["demo"] = taught  # the taught weights, not the folder's
    engine = Engine(registry, EngineSettings(batch_window_ms=1))
    try:
        fields = ControlFields(partido="UDI", sentimiento="POSITIVE")
        ids, types = encode(taught, PromptSpec("controlled", fields))
        other = encode(taught, PromptSpec("controlled", ControlFields(partido="RD", sentimiento="POSITIVE")))
        done = await engine.generate("demo", ids, types, SamplingParams(max_new_tokens=12), 7, n=3,
                                     contrasts=[other])
    finally:
        await engine.aclose()
    for completion in done:
        assert len(completion.logprobs) == 2 and completion.scored == completion.tokens + 1
        tokens = taught.tokenizer.encode(completion.text, add_special_tokens=False)
        again = score_candidates(taught, [(ids, types), other], [tokens])[0]
        assert again == pytest.approx(completion.logprobs, abs=1e-3)


def test_batched_scores_equal_one_full_forward_each(taught: LoadedModel) -> None:
    """Padding, the prompt's token types and scoring only the continuation's positions change
    nothing: each sum is what one unpadded forward pass over prompt + continuation gives."""
    from generation.decoding.scoring import continuation_logprobs

    prompts = [encode(taught, PromptSpec("controlled", ControlFields(partido=p, sentimiento="POSITIVE")))
               for p in ("UDI", "RD", "Partido Comunista de Chile")]
    continuations = [taught.tokenizer.encode(t, add_special_tokens=False) for t in STYLE.values()]
    pairs = [(p, c) for p in prompts for c in continuations]
    expected = []
    with torch.inference_mode():
        for (ids, types), cont in pairs:
            out = taught.model(input_ids=torch.tensor([ids + cont]),
                               token_type_ids=torch.tensor([types + [types[-1]] * len(cont)]))
            logp = out.logits[0].float().log_softmax(-1)
            expected.append(sum(float(logp[len(ids) - 1 + k, t]) for k, t in enumerate(cont)))
    assert continuation_logprobs(taught, pairs, batch_size=4) == pytest.approx(expected, abs=1e-3)


def test_scores_kept_while_decoding_equal_a_scoring_pass(taught: LoadedModel) -> None:
    """A candidate's log-probability after its prompt and its negative prompts, summed line by
    line while it was written, is what the scoring pass computes afresh."""
    from generation.decoding.sampling import Row, TokenTable, decode_batch

    table = TokenTable(taught.tokenizer, taught.model.get_output_embeddings().out_features)
    ids, types = encode(taught, PromptSpec("controlled", ControlFields(partido="UDI", sentimiento="POSITIVE")))
    negatives = tuple(encode(taught, PromptSpec("controlled", ControlFields(partido=p, sentimiento="POSITIVE")))
                      for p in ("RD", "Partido Comunista de Chile"))
    params = SamplingParams(max_new_tokens=40, temperature=1.0, repetition_penalty=1.2,
                            guide=("Chile",), guide_bias=4.0, contrast_guidance=1.5)
    rows = [Row(ids, types, params, seed, negatives=negatives, score=True) for seed in range(8)]
    ended = [r for r in decode_batch(taught, table, rows) if r.finish_reason == "stop"]
    assert ended, "the taught model ends its tweets"
    for result in ended:
        again = score_candidates(taught, [(ids, types), *negatives], [result.token_ids])[0]
        assert result.logprobs == pytest.approx(again, abs=1e-3)


def test_an_empty_candidate_is_scored_by_its_eos_alone(taught: LoadedModel) -> None:
    """A candidate that ended at once (only its EOS to score) gets the EOS's log-probability
    after each prompt; batches made only of such candidates too."""
    prompts = [encode(taught, PromptSpec("controlled", ControlFields(partido=p, sentimiento="POSITIVE")))
               for p in ("UDI", "RD")]
    eos = taught.tokenizer.eos_token_id
    with torch.inference_mode():
        expected = []
        for ids, types in prompts:
            out = taught.model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types]))
            expected.append(float(out.logits[0, -1].float().log_softmax(-1)[eos]))
    assert score_candidates(taught, prompts, [[]]) == [pytest.approx(tuple(expected), abs=1e-3)]
    tokens = taught.tokenizer.encode(STYLE["UDI"], add_special_tokens=False)
    assert score_candidates(taught, prompts, [[], tokens])[0] == pytest.approx(tuple(expected), abs=1e-3)
