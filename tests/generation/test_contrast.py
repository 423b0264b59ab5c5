"""Contrast guidance: each step leans toward the requested controls, away from the negatives."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from generation.decoding.contrast import PLAUSIBLE, guide
from generation.decoding.sampling import Row, TokenTable, decode_batch
from generation.prompts import ControlFields
from generation.registry import LoadedModel
from generation.serving.backends.local import encode
from generation.types import PromptSpec, SamplingParams


def prompt(lm: LoadedModel, party: str) -> tuple[list[int], list[int] | None]:
    return encode(lm, PromptSpec("controlled", ControlFields(partido=party, sentimiento="POSITIVE")))


def guided_row(lm: LoadedModel, seed: int, weight: float, negatives: tuple[str, ...] = ("RD", "PS"),
               party: str = "UDI", **params: object) -> Row:
    ids, types = prompt(lm, party)
    return Row(ids, types, SamplingParams(**{"max_new_tokens": 12, "contrast_guidance": weight, **params}),
               seed, negatives=tuple(prompt(lm, n) for n in negatives))


def test_combine_adds_the_weighted_contrast_with_the_negatives_mixture() -> None:
    main = torch.tensor([[2.0, 1.0, 0.0, -9.0], [0.0, 0.0, 0.0, 0.0]])
    negative = torch.tensor([[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])
    # lines 0-1 are the rows' own, 2-3 row 0's negatives; row 1 has none: left alone
    lines = torch.cat([main, negative])
    out = guide(main, lines, torch.tensor([[2, 3], [0, 0]]), torch.tensor([[True, True], [False, False]]),
                torch.tensor([0.5, 1.0]))
    logp = main[0].log_softmax(-1)
    mixture = (negative.softmax(-1).sum(0) / 2).log()
    expected = logp + 0.5 * (logp - mixture)
    assert torch.allclose(out[0, :3], expected[:3])
    assert torch.equal(out[1], main[1])
    # token 3 is far below 1% of the most likely one: out of play, whatever the negatives say
    assert logp[3] < logp.max() + math.log(PLAUSIBLE)
    assert out[0, 3] < out[0, :3].min() - 1000


def test_a_token_the_negatives_prefer_loses_ground() -> None:
    main = torch.tensor([[1.0, 1.0, 1.0]])
    negative = torch.tensor([[3.0, 0.0, 0.0]])
    out = guide(main, torch.cat([main, negative]), torch.tensor([[1]]), None, torch.tensor([1.0])).softmax(-1)[0]
    assert out[0] < out[1] == out[2]


@torch.inference_mode()
def reference_greedy(lm: LoadedModel, row: Row) -> list[int]:
    """Guided greedy decoding the slow way: full forward passes, no cache, no batching."""
    generated: list[int] = []

    def last_logits(ids: list[int], types: list[int] | None) -> torch.Tensor:
        tail_type = types[-1:] if types else []
        out = lm.model(
            input_ids=torch.tensor([ids + generated]),
            token_type_ids=None if types is None else torch.tensor([types + tail_type * len(generated)]),
        )
        return out.logits[:, -1, :].float()

    for _ in range(row.params.max_new_tokens):
        main = last_logits(row.prompt_ids, row.token_type_ids)
        lines = torch.cat([main, *(last_logits(ids, types) for ids, types in row.negatives)])
        negatives = torch.arange(1, len(lines))[None, :]
        logits = guide(main, lines, negatives, None, torch.tensor([row.params.contrast_guidance]))
        generated.append(int(logits.argmax(-1)))
    return generated


def test_negative_lines_follow_their_rows_step_by_step(lm: LoadedModel, table: TokenTable) -> None:
    """Greedy guided decoding in a batch (rows of different lengths, one leaving early, one
    unguided) gives what the slow reference computes for each row on its own."""
    rows = [
        guided_row(lm, 1, 2.0, temperature=0.0, ignore_eos=True),
        guided_row(lm, 2, 1.0, ("Partido Comunista de Chile",), party="RN", temperature=0.0, ignore_eos=True,
                   max_new_tokens=4),
        guided_row(lm, 3, 0.0, temperature=0.0, ignore_eos=True),
        guided_row(lm, 4, 3.0, ("PS",), party="Evópoli", temperature=0.0, ignore_eos=True),
    ]
    out = decode_batch(lm, table, rows)
    for row, result in zip(rows, out, strict=True):
        if row.params.contrast_guidance > 0:
            assert result.token_ids == reference_greedy(lm, row)
    unguided = decode_batch(lm, table, [guided_row(lm, 3, 0.0, (), temperature=0.0, ignore_eos=True)])[0]
    assert out[2].token_ids == unguided.token_ids


def test_guidance_changes_the_tweet_and_keeps_it_reproducible(lm: LoadedModel, table: TokenTable) -> None:
    plain = [decode_batch(lm, table, [guided_row(lm, s, 0.0, temperature=1.0, top_p=1.0)])[0] for s in range(6)]
    guided = [decode_batch(lm, table, [guided_row(lm, s, 3.0, temperature=1.0, top_p=1.0)])[0] for s in range(6)]
    assert [p.token_ids for p in plain] != [g.token_ids for g in guided]
    beside = decode_batch(lm, table, [guided_row(lm, 9, 0.0), guided_row(lm, 0, 3.0, temperature=1.0, top_p=1.0)])
    assert beside[1].token_ids == guided[0].token_ids


def test_topic_bonuses_still_reach_a_guided_row(lm: LoadedModel, table: TokenTable) -> None:
    """A topic the model finds implausible on its own is written anyway: the bonus is the
    row's, given to its negative lines too, before the plausibility cut."""
    topic = "Puente Alto"
    ids, types = encode(lm, PromptSpec("controlled", ControlFields(partido="UDI", entidades=(topic,))))
    params = SamplingParams(max_new_tokens=40, ignore_eos=True, temperature=0.0, contrast_guidance=2.0,
                            guide=(topic,), guide_start_bias=20.0, guide_bias=20.0)
    row = Row(ids, types, params, seed=3, negatives=(prompt(lm, "RD"),))
    assert topic in decode_batch(lm, table, [row])[0].text
    assert topic not in decode_batch(lm, table, [replace(row, params=replace(params, guide=()))])[0].text
