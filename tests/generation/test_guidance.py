"""Topic guidance: the rule, and both decoders (batched loop and ``generate``) following it."""

from __future__ import annotations

from dataclasses import replace

import torch

from generation.decoding.guidance import (
    GuideProcessor,
    boosts,
    topic_variants,
    written,
)
from generation.decoding.rules import History, TopicRule
from generation.decoding.sampling import Row, TokenTable, beam_generate, decode_batch
from generation.decoding.store import Store
from generation.decoding.upload import Pack
from generation.prompts import ControlFields
from generation.registry import LoadedModel
from generation.serving.backends.local import encode
from generation.types import PromptSpec, SamplingParams

TOPIC = (5, 6, 7)


def test_a_missing_topic_pushes_its_first_token() -> None:
    assert boosts([1, 2], ((TOPIC,),), start_bias=1.0, follow_bias=8.0) == {5: 1.0}


def test_a_begun_topic_pushes_the_token_that_continues_it() -> None:
    assert boosts([1, 5], ((TOPIC,),), 1.0, 8.0) == {6: 8.0}
    assert boosts([1, 5, 6], ((TOPIC,),), 1.0, 8.0) == {7: 8.0}
    assert boosts([5, 6, 9], ((TOPIC,),), 1.0, 8.0) == {5: 1.0}  # went astray: start again


def test_written_topics_are_recognised_anywhere() -> None:
    assert written([1, 5, 6, 7, 1], (TOPIC,)) and not written([5, 6, 1, 7], (TOPIC,))


def test_the_batch_rule_gives_the_bonuses_boosts_gives() -> None:
    """``TopicRule`` (every row at once, as tensors) against ``boosts`` (one row, in Python),
    over random tweets of rows with different topics, spellings and biases."""
    generator = torch.Generator().manual_seed(0)
    vocab = 12
    topics = [((TOPIC, (5, 8)), ((9,),)), ((TOPIC,),), (), (((3, 4, 3, 4, 5),), ((6, 6),))]
    biases = [(1.0, 8.0), (0.5, 2.0), (1.0, 1.0), (2.0, 6.0)]
    for _ in range(30):
        store, pack = Store(torch.device("cpu")), Pack()
        history, rule = History(store), TopicRule(store)
        history.columns(pack, list(range(len(topics))), [20] * len(topics))
        rule.columns(pack, topics, [b[0] for b in biases], [b[1] for b in biases])
        store.append(len(topics), pack.send(store.device))
        tweets: list[list[int]] = [[] for _ in topics]
        for _ in range(12):
            got = rule.bonuses(history, vocab)
            for r, (row_topics, (start, follow)) in enumerate(zip(topics, biases, strict=True)):
                pending = tuple(t for t in row_topics if not written(tweets[r], t))
                expected = torch.zeros(vocab)
                for token, bias in boosts(tweets[r], pending, start, follow).items():
                    expected[token] = bias
                assert torch.equal(got[r], expected), (r, tweets[r])
            tokens = torch.randint(3, 10, (len(topics),), generator=generator)
            history.append(tokens, torch.ones(len(topics), dtype=torch.bool))
            rule.advance(history)
            for r, token in enumerate(tokens.tolist()):
                tweets[r].append(token)


def test_any_spelling_counts(lm: LoadedModel) -> None:
    (variants,) = topic_variants(lm.tokenizer, ["pensiones"])
    assert len(variants) == 2  # at the start of the tweet, and after a space
    assert topic_variants(lm.tokenizer, ["", "  "]) == ()


def _row(lm: LoadedModel, guide: tuple[str, ...], **params: object) -> Row:
    ids, types = encode(lm, PromptSpec("controlled", ControlFields(partido="UDI", entidades=guide)))
    base = SamplingParams(max_new_tokens=40, ignore_eos=True, temperature=0.0, **params)  # type: ignore[arg-type]
    return Row(ids, types, replace(base, guide=guide), seed=3)


def test_guided_decoding_writes_a_topic_the_model_would_not(lm: LoadedModel, table: TokenTable) -> None:
    topic = "Puente Alto"
    free = decode_batch(lm, table, [_row(lm, ())])[0]
    assert topic not in free.text
    guided = decode_batch(lm, table, [_row(lm, (topic,), guide_start_bias=20.0, guide_bias=20.0)])[0]
    assert topic in guided.text
    assert guided.text.count(topic) == 1  # once written, the push stops (no_repeat is off here)


def test_beam_search_is_guided_too(lm: LoadedModel, table: TokenTable) -> None:
    topic = "@CarolinaLeitao"
    row = _row(lm, (topic,), num_beams=3, guide_start_bias=20.0, guide_bias=20.0)
    assert topic in beam_generate(lm, table, row).text
    assert topic not in beam_generate(lm, table, _row(lm, (), num_beams=3)).text


def test_the_generate_processor_skips_written_topics_row_by_row() -> None:
    rules = GuideProcessor([((TOPIC,),), None, ((TOPIC,),)], prompt_length=1, start_bias=1.0, follow_bias=8.0)
    scores = rules(torch.tensor([[0, 1, 5], [0, 1, 5], [0, 5, 6]]), torch.zeros((3, 10)))
    assert scores[0, 6] == 8.0 and scores[1].abs().sum() == 0 and scores[2, 7] == 8.0
    done = rules(torch.tensor([[0, 5, 6, 7], [0, 1, 1, 1], [0, 1, 2, 3]]), torch.zeros((3, 10)))
    assert done[0].abs().sum() == 0 and done[2, 5] == 1.0
