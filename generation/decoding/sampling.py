"""Batched decoding with a KV cache, where every row has its own parameters and random stream.

Hugging Face's ``generate`` applies one set of parameters to a whole batch, so requests with
different temperatures or banned strings could not share a forward pass. This loop runs the model
itself: left-padded prompts, position ids from the mask, one forward per step for all rows, and
per-row logits processing done on the whole batch at once where it can be. Each row draws its
randomness from its own generator seeded by the request, so a seed gives the same tweet whether
the request decoded alone or beside thirty others. Rows that finish leave the batch (their cache
is dropped), so short answers do not pay for long ones.

Beam search (the thesis's decoding) has no per-row form here: such requests go one at a time
through ``generate``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from generation.decoding.contrast import NegativeLines
from generation.decoding.guidance import (
    GuideProcessor,
    Variants,
    boosts,
    just_written,
    topic_variants,
)
from generation.decoding.penalties import tweet_penalties
from generation.decoding.stepper import make_stepper
from generation.registry import LoadedModel
from generation.types import SamplingParams

FinishReason = Literal["stop", "length", "cancelled"]

#: ``generate`` draws from torch's global generator: one seeded call at a time per process.
_GLOBAL_RNG = threading.Lock()


def candidate_seed(seed: int, index: int) -> int:
    """The seed of candidate ``index`` of a request: independent streams, reproducible."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


@dataclass
class Row:
    """One sequence to decode: a prompt, its parameters and its own seed."""

    prompt_ids: list[int]
    token_type_ids: list[int] | None
    params: SamplingParams
    seed: int
    cancelled: Callable[[], bool] = lambda: False
    #: Negative prompts for contrast guidance (``params.contrast_guidance``): ids and types.
    negatives: tuple[tuple[list[int], list[int] | None], ...] = ()


@dataclass
class RowResult:
    token_ids: list[int]
    text: str
    finish_reason: FinishReason


def _byte_decoder() -> dict[str, int] | None:
    try:
        from transformers.convert_slow_tokenizer import bytes_to_unicode
    except ImportError:  # pragma: no cover - very old or very new transformers
        return None
    return {char: byte for byte, char in bytes_to_unicode().items()}


class TokenTable:
    """What each token id writes, as bytes, and which ids can spell a banned string.

    Byte-level BPE tokens may hold part of a UTF-8 character (``…`` can come out in three
    tokens), so bans are decided on bytes: a token is refused when it contains a banned string
    or completes one that the row's text already began.
    """

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.eos_id: int | None = tokenizer.eos_token_id
        pad = tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else (self.eos_id if self.eos_id is not None else 0)
        special = set(tokenizer.all_special_ids)
        tokens = tokenizer.convert_ids_to_tokens(list(range(min(vocab_size, len(tokenizer)))))
        decoder = _byte_decoder()
        byte_level = decoder is not None and all(
            t is None or i in special or all(c in decoder for c in t) for i, t in enumerate(tokens)
        )
        pieces: list[bytes] = []
        for i, token in enumerate(tokens):
            if token is None or i in special:
                pieces.append(b"")  # skipped from the text, so it never spells anything
            elif byte_level:
                pieces.append(bytes(decoder[c] for c in token))  # type: ignore[index]
            else:
                pieces.append(tokenizer.decode([i]).encode())
        self.pieces = pieces
        #: Ids the logits have but the tokenizer cannot write (embedding padding): never chosen.
        self.invalid = torch.zeros(vocab_size, dtype=torch.bool)
        self.invalid[len(pieces):] = True
        self._containing: dict[bytes, list[int]] = {}
        self._completing: dict[tuple[bytes, int], list[int]] = {}
        self._lock = threading.Lock()

    def piece(self, token: int) -> bytes:
        return self.pieces[token] if token < len(self.pieces) else b""

    def containing(self, banned: bytes) -> list[int]:
        """Ids whose bytes contain ``banned`` whole."""
        with self._lock:
            if banned not in self._containing:
                self._containing[banned] = [i for i, p in enumerate(self.pieces) if banned in p]
            return self._containing[banned]

    def completing(self, banned: bytes, done: int) -> list[int]:
        """Ids that finish ``banned`` when the text already ends with its first ``done`` bytes."""
        key = (banned, done)
        with self._lock:
            if key not in self._completing:
                rest = banned[done:]
                self._completing[key] = [i for i, p in enumerate(self.pieces) if p.startswith(rest)]
            return self._completing[key]

    def banned_ids(self, strings: tuple[str, ...]) -> list[int]:
        """Every id that contains one of ``strings`` (for ``generate``'s ``bad_words_ids``)."""
        return sorted({i for s in strings if s for i in self.containing(s.encode())})


@dataclass
class _State:
    """Bookkeeping of one row while it decodes.

    Repeated n-grams are tracked over the generated tokens only: the prompt is control context,
    and counting it would forbid the tweet to name the very topic the user asked for.
    """

    row: Row
    generator: torch.Generator
    #: The row's guide topics not yet written, as token sequences (generation/decoding/guidance.py).
    topics: tuple[Variants, ...] = ()
    generated: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    ngrams: dict[tuple[int, ...], set[int]] = field(default_factory=dict)
    finish: FinishReason | None = None

    def add(self, token: int, piece: bytes) -> None:
        self.generated.append(token)
        self.text.extend(piece)
        n = self.row.params.no_repeat_ngram_size
        if n > 0 and len(self.generated) >= n:
            gram = self.generated[-n:]
            self.ngrams.setdefault(tuple(gram[:-1]), set()).add(gram[-1])
        if self.topics:
            self.topics = tuple(t for t in self.topics if not just_written(self.generated, t))

    def boosts(self) -> dict[int, float]:
        """Topic guidance's logit bonuses for the next token."""
        if not self.topics:
            return {}
        params = self.row.params
        return boosts(self.generated, self.topics, params.guide_start_bias, params.guide_bias)

    def dynamic_bans(self, table: TokenTable) -> list[int]:
        """Ids refused at this step: early EOS, ids that finish a banned string, repeated n-grams."""
        params = self.row.params
        out: list[int] = []
        if table.eos_id is not None and (params.ignore_eos or len(self.generated) < params.min_new_tokens):
            out.append(table.eos_id)
        for banned in params.banned:
            data = banned.encode()
            for done in range(1, len(data)):
                if self.text.endswith(data[:done]):
                    out.extend(table.completing(data, done))
        n = params.no_repeat_ngram_size
        if n > 0 and len(self.generated) >= n - 1:
            out.extend(self.ngrams.get(tuple(self.generated[len(self.generated) - n + 1:]), ()))
        return out


def _typical_rank(probs: torch.Tensor, typical_p: torch.Tensor) -> torch.Tensor:
    """Per row and sorted position, whether locally typical sampling keeps the token.

    Tokens are taken in order of how close their surprise is to the distribution's entropy
    (Meister et al., 2023) until ``typical_p`` of the mass is covered; 1 keeps everything.
    """
    logp = probs.clamp_min(1e-12).log()
    entropy = -(probs * logp).sum(-1, keepdim=True)
    distance = (-logp - entropy).abs()
    by_typical = distance.argsort(dim=-1, stable=True)
    mass = probs.gather(1, by_typical)
    kept_sorted = (mass.cumsum(-1) - mass) < typical_p[:, None]
    keep = torch.zeros_like(kept_sorted)
    keep.scatter_(1, by_typical, kept_sorted)
    return keep | (typical_p[:, None] >= 1)


#: How many of a row's most likely tokens ``_sample`` sorts before falling back to the whole
#: vocabulary: a full sort costs a few milliseconds per row and step on a 50k vocabulary, about
#: as much as a whole int8 decoding step of a 124M model.
CANDIDATES = 1024


def _keep(
    probs: torch.Tensor, top_p: torch.Tensor, top_k: torch.Tensor, min_p: torch.Tensor | None
) -> torch.Tensor:
    """Per row and sorted position, whether top-k, top-p and min-p keep the token.

    Each rule keeps a prefix of the sorted tokens, so together they do too.
    """
    ranks = torch.arange(probs.shape[-1], device=probs.device)[None, :]
    keep = ranks < torch.where(top_k > 0, top_k, probs.shape[-1])[:, None]
    keep &= (probs.cumsum(-1) - probs) < top_p[:, None]
    if min_p is not None and bool((min_p > 0).any()):
        keep &= probs >= min_p[:, None] * probs[:, :1]
    return keep


def _draw(probs: torch.Tensor, keep: torch.Tensor, order: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse CDF over the kept mass in sorted order: the token found at ``u`` of it."""
    keep[:, 0] = True  # the most likely token always stays
    cdf = (probs * keep).cumsum(-1)
    choice = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None].contiguous()).clamp_(max=probs.shape[-1] - 1)
    return order.gather(1, choice).squeeze(1)


def _sample(
    logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, top_k: torch.Tensor,
    generators: list[torch.Generator], min_p: torch.Tensor | None = None,
    typical_p: torch.Tensor | None = None,
) -> torch.Tensor:
    """One token per row: greedy where temperature is 0, else temperature → top-k → top-p →
    min-p → typical.

    Sampling is inverse-CDF on the sorted distribution with one uniform number per row drawn from
    that row's generator, so a row's choice depends on nothing but its own logits and seed.
    Only the ``CANDIDATES`` most likely tokens are sorted (normalised over the whole vocabulary)
    when the row's cut falls among them, which is what a trained model's distribution does
    nearly always; a row whose cut falls further out, or that uses typical sampling, sorts
    everything. Either way the kept tokens and their order are the same.
    """
    greedy = temperature == 0
    if bool(greedy.all()):
        return logits.argmax(-1)
    scaled = logits / torch.where(greedy, torch.ones_like(temperature), temperature)[:, None]
    u = torch.stack([torch.rand((), generator=g) for g in generators]).to(scaled.device)
    slow = torch.ones(len(scaled), dtype=torch.bool, device=scaled.device)
    picked = torch.zeros(len(scaled), dtype=torch.long, device=scaled.device)
    if scaled.shape[-1] > CANDIDATES:
        values, order = scaled.topk(CANDIDATES, dim=-1)
        probs = (values - scaled.logsumexp(-1, keepdim=True)).exp()
        keep = _keep(probs, top_p, top_k, min_p)
        slow = keep[:, -1].clone()  # the last candidate is kept: the cut may lie beyond
        if typical_p is not None:
            slow |= typical_p < 1
        picked = _draw(probs, keep, order, u)
    if bool(slow.any()):
        rows = slow.nonzero().squeeze(1)
        values, order = scaled[rows].sort(dim=-1, descending=True, stable=True)
        probs = values.softmax(-1)
        keep = _keep(probs, top_p[rows], top_k[rows], None if min_p is None else min_p[rows])
        if typical_p is not None and bool((typical_p[rows] < 1).any()):
            keep &= _typical_rank(probs, typical_p[rows])
        picked[rows] = _draw(probs, keep, order, u[rows])
    if bool(greedy.any()):
        picked = torch.where(greedy, logits.argmax(-1), picked)
    return picked


@torch.inference_mode()
def decode_batch(lm: LoadedModel, table: TokenTable, rows: list[Row]) -> list[RowResult]:
    """Decode ``rows`` together until each has finished (EOS, stop string, length, cancelled).

    All rows must agree on having token type ids or not (the engine batches them that way).
    """
    if not rows:
        return []
    if len({r.token_type_ids is None for r in rows}) > 1:
        raise ValueError("rows with and without token type ids cannot share a batch")
    device = lm.device
    stepper = make_stepper(lm.model)
    size = len(rows)
    # The batch's lines: every row's prompt, then the negative prompts of guided rows.
    guided = [(i, negative) for i, r in enumerate(rows) if r.params.contrast_guidance > 0 for negative in r.negatives]
    negatives = NegativeLines([i for i, _ in guided], [r.params.contrast_guidance for r in rows])
    prompts = [(r.prompt_ids, r.token_type_ids) for r in rows] + [negative for _, negative in guided]
    width = max(len(ids) for ids, _ in prompts)
    ids = torch.full((len(prompts), width), table.pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    types = None if rows[0].token_type_ids is None else torch.zeros((len(prompts), width), dtype=torch.long)
    for i, (prompt_ids, type_ids) in enumerate(prompts):
        n = len(prompt_ids)
        ids[i, width - n:] = torch.tensor(prompt_ids)
        mask[i, width - n:] = 1
        if types is not None:
            types[i, width - n:] = torch.tensor(type_ids)
    ids, mask = ids.to(device), mask.to(device)
    next_type = None
    if types is not None:
        types = types.to(device)
        next_type = types[:, -1:]  # the type of the prompt's last token: [TWEET]

    states = [
        _State(r, torch.Generator().manual_seed(r.seed), topic_variants(lm.tokenizer, r.params.guide))
        for r in rows
    ]
    active = list(range(size))  # which row each batch line holds
    params = [r.params for r in rows]
    temperature = torch.tensor([p.temperature for p in params], device=device)
    top_p = torch.tensor([p.top_p for p in params], device=device)
    top_k = torch.tensor([p.top_k for p in params], device=device)
    min_p = torch.tensor([p.min_p for p in params], device=device)
    typical_p = torch.tensor([p.typical_p for p in params], device=device)
    penalty = torch.tensor([p.repetition_penalty for p in params], device=device)
    penalise = bool((penalty != 1).any())
    vocab = table.vocab_size
    static_ban = table.invalid.repeat(size, 1)
    for i, p in enumerate(params):
        for banned in p.banned:
            if banned:
                static_ban[i, table.containing(banned.encode())] = True
    static_ban = static_ban.to(device)
    # Like the n-grams, the repetition penalty counts the tweet's own tokens, not the prompt's.
    seen = torch.zeros((size, vocab), dtype=torch.bool, device=device) if penalise else None

    max_steps = max(p.max_new_tokens for p in params)
    next_logits = stepper.prefill(ids, mask, types, max_steps)
    for _ in range(max_steps):
        # The repetition penalty and topic bonuses are the row's, so its negative lines get
        # them too: guidance then weighs the controls alone (generation/decoding/contrast.py).
        logits = next_logits.float()
        if penalise:
            rp = negatives.spread(penalty)[:, None]
            logits = torch.where(negatives.spread(seen), torch.where(logits > 0, logits / rp, logits * rp), logits)
        for line, index in enumerate(active):
            bonus = states[index].boosts()
            if bonus:
                lines = negatives.lines_of(line)
                for token, bias in bonus.items():
                    logits[lines, token] += bias
        logits = negatives.combine(logits[:len(active)], logits[len(active):])
        ban = static_ban.clone()
        for line, index in enumerate(active):
            extra = states[index].dynamic_bans(table)
            if extra:
                ban[line, extra] = True
        logits.masked_fill_(ban, float("-inf"))
        stuck = torch.isinf(logits).all(-1)  # everything banned: end the row
        tokens = _sample(
            logits, temperature, top_p, top_k, [states[i].generator for i in active], min_p, typical_p
        ).tolist()
        stuck_rows = stuck.tolist()
        if seen is not None:
            seen[torch.arange(len(active), device=device), torch.tensor(tokens, device=device)] = True
        for line, index in enumerate(active):
            state = states[index]
            token = tokens[line]
            p = state.row.params
            if state.row.cancelled():
                state.finish = "cancelled"
            elif stuck_rows[line] or (token == table.eos_id and not p.ignore_eos):
                state.finish = "stop"
            else:
                state.add(token, table.piece(token))
                if p.stop and _text(lm.tokenizer, state.generated, p.stop)[1]:
                    state.finish = "stop"
                elif len(state.generated) >= p.max_new_tokens:
                    state.finish = "length"
        keep = [line for line, index in enumerate(active) if states[index].finish is None]
        if not keep:
            break
        if len(keep) < len(active):
            stay = negatives.keep(keep)
            lines = torch.tensor([*keep, *(len(active) + j for j in stay)], device=device)
            stepper.keep(lines)
            if next_type is not None:
                next_type = next_type[lines]
            select = torch.tensor(keep, device=device)
            static_ban, temperature, top_p, top_k, min_p, typical_p = (
                static_ban[select], temperature[select], top_p[select], top_k[select],
                min_p[select], typical_p[select],
            )
            penalty = penalty[select]
            if seen is not None:
                seen = seen[select]
            active = [active[line] for line in keep]
        # A negative line is given its row's token: it follows the row, never samples.
        kept_tokens = [tokens[line] for line in keep]
        step = torch.tensor([[t] for t in [*kept_tokens, *(kept_tokens[o] for o in negatives.owners)]],
                            device=device)
        next_logits = stepper.step(step, next_type)
    return [_result(lm, s) for s in states]


def _text(tokenizer: Any, generated: list[int], stop: tuple[str, ...]) -> tuple[str, bool]:
    """The continuation's text (special tokens skipped), cut before the first stop string."""
    text = tokenizer.decode(generated, skip_special_tokens=True)
    cuts = [text.find(s) for s in stop if s and s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _result(lm: LoadedModel, state: _State) -> RowResult:
    text, _ = _text(lm.tokenizer, state.generated, state.row.params.stop)
    return RowResult(state.generated, text, state.finish or "length")


@torch.inference_mode()
def beam_generate(lm: LoadedModel, table: TokenTable, row: Row) -> RowResult:
    """The thesis's decoding (beam search, optionally sampled) through ``generate``, seeded."""
    p = row.params
    ids = torch.tensor([row.prompt_ids], device=lm.device)
    kwargs: dict[str, Any] = {}
    if row.token_type_ids is not None:
        kwargs["token_type_ids"] = torch.tensor([row.token_type_ids], device=lm.device)
    banned = table.banned_ids(p.banned)
    if banned:
        kwargs["bad_words_ids"] = [[i] for i in banned]
    penalties = tweet_penalties(p.no_repeat_ngram_size, p.repetition_penalty, ids.shape[1])
    topics = topic_variants(lm.tokenizer, p.guide)
    if topics:
        penalties["logits_processor"].append(
            GuideProcessor([topics] * p.num_beams, ids.shape[1], p.guide_start_bias, p.guide_bias)
        )
    sample = p.temperature > 0
    if sample:
        kwargs.update(temperature=p.temperature, top_p=p.top_p, top_k=p.top_k)
    min_new = p.max_new_tokens if p.ignore_eos else p.min_new_tokens
    with _GLOBAL_RNG:
        torch.manual_seed(row.seed)
        out = lm.model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=sample, num_beams=p.num_beams,
            max_new_tokens=p.max_new_tokens, min_new_tokens=min_new,
            pad_token_id=table.pad_id, eos_token_id=table.eos_id, **penalties, **kwargs,
        )
    generated = out[0, ids.shape[1]:].tolist()
    finish: FinishReason = "length"
    if table.eos_id in generated and not p.ignore_eos:
        generated = generated[: generated.index(table.eos_id)]
        finish = "stop"
    text, stopped = _text(lm.tokenizer, generated, p.stop)
    return RowResult(generated, text, "stop" if stopped else finish)
