"""The batched decoding loop: per-row parameters and seeds, bans, stops, early finishes."""

from __future__ import annotations

import torch

from generation.decoding.penalties import tweet_penalties
from generation.decoding.rules import History, NgramRule, StringRule, StringTables
from generation.decoding.sampling import (
    Row,
    TokenTable,
    beam_generate,
    candidate_seed,
    decode_batch,
)
from generation.decoding.store import Store
from generation.decoding.upload import Pack
from generation.prompts import ControlFields
from generation.registry import LoadedModel
from generation.serving.backends.local import encode
from generation.types import PromptSpec, SamplingParams


def row(lm: LoadedModel, seed: int, party: str = "UDI", **params: object) -> Row:
    ids, types = encode(lm, PromptSpec("controlled", ControlFields(partido=party)))
    return Row(ids, types, SamplingParams(**{"max_new_tokens": 16, **params}), seed)


def test_same_seed_same_text_alone_or_inside_a_mixed_batch(lm: LoadedModel, table: TokenTable) -> None:
    target = row(lm, 42)
    alone = decode_batch(lm, table, [target])[0]
    mixed = decode_batch(lm, table, [
        row(lm, 1, "Partido Comunista de Chile", temperature=1.5, top_k=5),
        target,
        row(lm, 2, "RD", temperature=0.0, max_new_tokens=3),
        row(lm, 3, repetition_penalty=1.5, no_repeat_ngram_size=2, max_new_tokens=30),
    ])
    assert mixed[1].token_ids == alone.token_ids
    assert mixed[1].text == alone.text
    assert decode_batch(lm, table, [row(lm, 42)])[0].token_ids == alone.token_ids
    assert decode_batch(lm, table, [row(lm, 43)])[0].token_ids != alone.token_ids


def test_rows_keep_their_own_parameters(lm: LoadedModel, table: TokenTable) -> None:
    greedy_alone = decode_batch(lm, table, [row(lm, 7, temperature=0.0, max_new_tokens=5, ignore_eos=True)])[0]
    out = decode_batch(lm, table, [
        row(lm, 7, temperature=0.0, max_new_tokens=5, ignore_eos=True),
        row(lm, 8, max_new_tokens=12, ignore_eos=True),
        row(lm, 9, max_new_tokens=2, ignore_eos=True),
    ])
    assert out[0].token_ids == greedy_alone.token_ids
    assert [len(r.token_ids) for r in out] == [5, 12, 2]
    assert all(r.finish_reason == "length" for r in out)


def test_greedy_ignores_the_seed(lm: LoadedModel, table: TokenTable) -> None:
    texts = {decode_batch(lm, table, [row(lm, s, temperature=0.0)])[0].text for s in range(3)}
    assert len(texts) == 1


def test_candidates_get_distinct_reproducible_seeds() -> None:
    seeds = [candidate_seed(5, i) for i in range(4)]
    assert len(set(seeds)) == 4
    assert seeds == [candidate_seed(5, i) for i in range(4)]


def test_banned_strings_never_appear_even_across_tokens(lm: LoadedModel, table: TokenTable) -> None:
    banned = ("a", "es", "ó")
    rows = [row(lm, s, temperature=2.0, top_p=1.0, max_new_tokens=40, banned=banned) for s in range(24)]
    free = decode_batch(lm, table, [row(lm, s, temperature=2.0, top_p=1.0, max_new_tokens=40) for s in range(24)])
    assert any(b in r.text for r in free for b in banned)  # the model would write them
    for result in decode_batch(lm, table, rows):
        raw = b"".join(table.piece(t) for t in result.token_ids)
        assert not any(b.encode() in raw for b in banned), result.text


def test_a_multibyte_character_is_banned_byte_by_byte(lm: LoadedModel, table: TokenTable) -> None:
    data = "ó".encode()
    first = table.completing(data, 1)
    assert first and all(table.piece(i).startswith(data[1:]) for i in first)
    assert all(data in table.piece(i) for i in table.containing(data))


def test_stop_strings_end_the_row_and_are_cut_from_the_text(lm: LoadedModel, table: TokenTable) -> None:
    free = decode_batch(lm, table, [row(lm, 0, top_p=1.0, max_new_tokens=30, ignore_eos=True)])[0]
    middle = len(free.text) // 2
    stop = free.text[middle:middle + 2]
    assert len(stop.strip()) == 2
    out = decode_batch(lm, table, [row(lm, 0, top_p=1.0, max_new_tokens=30, ignore_eos=True, stop=(stop,))])[0]
    assert out.finish_reason == "stop"
    assert out.text == free.text[: free.text.find(stop)]
    assert len(out.token_ids) < len(free.token_ids)


def test_eos_ends_a_row_unless_ignored_or_too_early(lm: LoadedModel, table: TokenTable) -> None:
    eos = table.eos_id
    rows = [row(lm, s, temperature=3.0, top_p=1.0, max_new_tokens=60) for s in range(16)]
    stopped = [r for r in decode_batch(lm, table, rows) if r.finish_reason == "stop"]
    assert stopped and all(eos not in r.token_ids for r in stopped)
    held = decode_batch(lm, table, [row(lm, s, temperature=3.0, top_p=1.0, max_new_tokens=60, min_new_tokens=60) for s in range(16)])
    assert all(len(r.token_ids) == 60 and eos not in r.token_ids for r in held)


def test_no_repeat_ngram_size_holds(lm: LoadedModel, table: TokenTable) -> None:
    for result in decode_batch(lm, table, [row(lm, s, temperature=0.0, no_repeat_ngram_size=2, max_new_tokens=40, ignore_eos=True, party=p) for s, p in enumerate(["UDI", "RN", "PS"])]):
        grams = list(zip(result.token_ids, result.token_ids[1:], strict=False))
        assert len(grams) == len(set(grams))


def test_a_cancelled_row_stops_early_without_holding_up_the_others(lm: LoadedModel, table: TokenTable) -> None:
    calls = iter(range(1000))
    doomed = row(lm, 1, max_new_tokens=50, ignore_eos=True)
    doomed.cancelled = lambda: next(calls) >= 3
    out = decode_batch(lm, table, [doomed, row(lm, 2, max_new_tokens=20, ignore_eos=True)])
    assert out[0].finish_reason == "cancelled" and len(out[0].token_ids) == 3
    assert len(out[1].token_ids) == 20


def test_casual_rows_decode_without_token_types(registry, table: TokenTable) -> None:
    casual = registry.get("casual")
    ids, types = encode(casual, PromptSpec("casual", seed_text="Hoy"))
    out = decode_batch(casual, table, [Row(ids, types, SamplingParams(max_new_tokens=8, ignore_eos=True), 1)])
    assert len(out[0].token_ids) == 8


def test_beam_search_is_seeded_and_honours_bans(lm: LoadedModel, table: TokenTable) -> None:
    def beams(seed: int):
        return beam_generate(lm, table, row(lm, seed, num_beams=4, max_new_tokens=20, min_new_tokens=20,
                                             no_repeat_ngram_size=2, banned=("a",)))

    first = beams(11)
    assert first.token_ids == beams(11).token_ids
    assert len(first.token_ids) == 20
    assert not any(b"a" in table.piece(t) for t in first.token_ids)


def test_repetition_rules_do_not_count_the_prompt(lm: LoadedModel, table: TokenTable) -> None:
    """A topic named in the prompt may appear in the tweet: only the tweet's own n-grams repeat."""
    store, pack = Store(torch.device("cpu")), Pack()
    history, rule = History(store), NgramRule(store)
    history.columns(pack, [0], [16])
    rule.columns(pack, [3])
    store.append(1, pack.send(store.device))
    topic = [11, 12, 13]

    def banned() -> set[int]:
        ban = torch.zeros((1, table.vocab_size + 1), dtype=torch.bool)
        rule.bans(history, ban)
        return set(ban[0, :-1].nonzero().squeeze(1).tolist())

    def write(tokens: list[int]) -> None:
        for token in tokens:
            history.append(torch.tensor([token]), torch.tensor([True]))

    write(topic[:2])  # the prompt held the whole topic: it does not count
    assert topic[2] not in banned()
    write([topic[2], *topic[:2]])
    assert banned() == {topic[2]}


def test_generate_penalties_skip_the_prompt() -> None:
    prompt, tweet = [5, 6, 7], [5, 6]
    scores = torch.ones((1, 10))
    rules = tweet_penalties(no_repeat_ngram_size=3, repetition_penalty=2.0, prompt_length=len(prompt))["logits_processor"]
    out = rules(torch.tensor([prompt + tweet]), scores.clone())
    assert out[0, 7] == 1.0  # in the prompt only: neither banned nor penalised
    assert out[0, 5] == 0.5 and out[0, 6] == 0.5  # already in the tweet: penalised
    again = rules(torch.tensor([[*prompt, 5, 6, 7, 5, 6]]), scores.clone())
    assert again[0, 7] == float("-inf")  # the tweet's own 3-gram would repeat


def test_banned_strings_are_refused_on_bytes_across_tokens() -> None:
    """``StringRule`` refuses exactly the tokens whose bytes would put a banned string into
    the text (whole, or finishing one the text began), over random byte tokens."""
    generator = torch.Generator().manual_seed(1)
    pieces = [b"", b"a", b"b", b"ab", b"ba", b"\xe2", b"\x80", b"\xa6", b"\xe2\x80", b"x\xe2\x80\xa6y", b"&", b"aab"]
    banned = [("…", "aba"), ("&",), ()]
    store, pack = Store(torch.device("cpu")), Pack()
    rule = StringRule(StringTables(pieces), len(pieces), store)
    rule.columns(pack, banned)
    store.append(len(banned), pack.send(store.device))
    texts = [b"" for _ in banned]
    for _ in range(40):
        ban = torch.zeros((len(banned), len(pieces) + 1), dtype=torch.bool)
        rule.bans(ban)
        for r, strings in enumerate(banned):
            expected = [any(s.encode() in texts[r] + piece for s in strings) for piece in pieces]
            assert ban[r, :-1].tolist() == expected, (r, texts[r])
        allowed = [[t for t in range(len(pieces)) if not ban[r, t]] for r in range(len(banned))]
        tokens = torch.tensor([a[int(torch.randint(len(a), (), generator=generator))] for a in allowed])
        rule.advance(tokens)
        texts = [text + pieces[t] for text, t in zip(texts, tokens.tolist(), strict=True)]


def test_a_row_with_stop_strings_that_ends_on_eos_keeps_its_text(lm: LoadedModel, table: TokenTable) -> None:
    rows = [row(lm, s, temperature=3.0, top_p=1.0, max_new_tokens=60) for s in range(16)]
    guarded = [row(lm, s, temperature=3.0, top_p=1.0, max_new_tokens=60, stop=("never-written-zz",)) for s in range(16)]
    free, with_stop = decode_batch(lm, table, rows), decode_batch(lm, table, guarded)
    assert any(r.finish_reason == "stop" for r in free)  # some end on EOS
    assert [r.text for r in with_stop] == [r.text for r in free]
    assert all(r.text for r in with_stop if r.token_ids)
