"""Sampling rows with their own parameters and random numbers, and the token table it needs.

Hugging Face's ``generate`` applies one set of parameters to a whole batch, so requests with
different temperatures or banned strings could not share a forward pass. Here every row carries
its own settings as batch tensors (``generation/decoding/batch.py`` runs the loop,
``generation/decoding/rules.py`` the logits rules) and draws its uniform numbers from its own
seed at admission.

What that makes reproducible depends on the device:

- **On the CPU** a seed gives the same tweet whether the request decoded alone or beside thirty
  others, and whenever it joined the batch (tested): each row's arithmetic is its own.
- **On a GPU** only the same rows in the same batch shape, through the same path, give the same
  tweet (run after run). Under another load the logits can change in their last bits, and a
  sampled token with them where two candidates nearly tie: cuBLAS picks its kernels by the
  padded batch size; a join step runs eagerly where other steps replay graphs; the attention
  span is a bucket of positions; the model's body runs in bfloat16 (the final layer norm and
  the head run in float32, ``generation/decoding/fastgpt2.py``). So a logged seed replayed on a
  GPU under another load may write another tweet. Contrast guidance sums its negatives in a
  fixed order (no float atomics), so nothing varies between two runs of the same batch.

Beam search (the thesis's decoding) has no per-row form here: such requests go one at a time
through ``generate``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from generation.decoding.guidance import (
    GuideProcessor,
    topic_variants,
)
from generation.decoding.penalties import tweet_penalties
from generation.decoding.rules import StringTables
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
    #: Keep the summed log-probability of the tweet (and its EOS) under the prompt and under
    #: each negative prompt as it is written: the ranking's evidence, without a second pass.
    score: bool = False


@dataclass
class RowResult:
    token_ids: list[int]
    text: str
    finish_reason: FinishReason
    #: With ``Row.score`` and a tweet that ended on EOS: its log-probability (EOS included)
    #: after the prompt, then after each negative prompt; empty when it ended otherwise.
    logprobs: tuple[float, ...] = ()


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
        #: Banned strings' matching automata over this vocabulary, built on first use and shared
        #: by every batch that decodes with this table.
        self.strings = StringTables(pieces)

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


#: How many of a row's most likely tokens ``draw`` sorts; a row whose cut falls further out is
#: drawn again over the whole vocabulary (``redraw``). A full sort costs a few milliseconds per
#: row and step on a 50k vocabulary on the CPU (about a whole int8 decoding step of a 124M
#: model), and on a GPU at 128-512 rows more than the forward, with about ten rows × vocabulary
#: temporaries; over the candidates, those temporaries are rows × 1024.
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
    if min_p is not None:  # 0 keeps everything
        keep &= probs >= min_p[:, None] * probs[:, :1]
    return keep


def _draw(probs: torch.Tensor, keep: torch.Tensor, order: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse CDF over the kept mass in sorted order: the token found at ``u`` of it."""
    keep[:, 0].fill_(True)  # the most likely token always stays
    cdf = (probs * keep).cumsum(-1)
    choice = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None].contiguous()).clamp_(max=probs.shape[-1] - 1)
    return order.gather(1, choice).squeeze(1)


@dataclass(frozen=True)
class Modes:
    """What the batch's rows ask of the sampler, known on the host when rows join or leave (so
    the sampler never reads the device to decide)."""

    all_greedy: bool = False
    any_greedy: bool = False
    any_min_p: bool = False
    any_typical: bool = False

    @classmethod
    def of(cls, params: list[SamplingParams]) -> Modes:
        greedy = [p.temperature == 0 for p in params]
        return cls(all(greedy), any(greedy), any(p.min_p > 0 for p in params),
                   any(p.typical_p < 1 for p in params))


def _scaled(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    greedy = temperature == 0
    return logits / torch.where(greedy, torch.ones_like(temperature), temperature)[:, None]


def draw(
    logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, top_k: torch.Tensor,
    u: torch.Tensor, min_p: torch.Tensor | None, typical_p: torch.Tensor | None, modes: Modes,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row, and whether the row must be drawn again (``redraw``): greedy where
    temperature is 0, else temperature → top-k → top-p → min-p → typical.

    Sampling is inverse-CDF on the sorted distribution at the row's uniform number ``u``, so a
    row's choice depends on nothing but its own logits and seed. Only the ``CANDIDATES`` most
    likely tokens are sorted (normalised over the whole vocabulary); when the row's cut falls
    among them, which a trained model's distribution does nearly always, the kept tokens and
    their order are those of the full sort, so the token is too. A row whose last candidate is
    still kept may be cut further out: it is flagged, and its caller draws it again with
    ``redraw`` once it has read the flags (with the step's one read, so nothing here reads the
    device). Typical sampling needs every token's distance from the entropy: with it, every row
    sorts everything.
    """
    if modes.all_greedy:
        greedy_tokens = logits.argmax(-1)
        return greedy_tokens, torch.zeros_like(greedy_tokens, dtype=torch.bool)
    min_p = min_p if modes.any_min_p else None
    typical_p = typical_p if modes.any_typical else None
    scaled = _scaled(logits, temperature)
    if scaled.shape[-1] > CANDIDATES and typical_p is None:
        values, order = scaled.topk(CANDIDATES, dim=-1)
        probs = (values - scaled.logsumexp(-1, keepdim=True)).exp()
        keep = _keep(probs, top_p, top_k, min_p)
        slow = keep[:, -1]  # the last candidate is kept: the cut may lie beyond
        picked = _draw(probs, keep, order, u)  # (which changes only the first column of keep)
    else:
        picked = _sorted_draw(scaled, top_p, top_k, min_p, typical_p, u)
        slow = torch.zeros_like(picked, dtype=torch.bool)
    if modes.any_greedy:
        greedy = temperature == 0
        picked = torch.where(greedy, logits.argmax(-1), picked)
        slow = slow & ~greedy
    return picked, slow


def redraw(
    logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, top_k: torch.Tensor,
    u: torch.Tensor, min_p: torch.Tensor | None,
) -> torch.Tensor:
    """``draw`` for rows flagged by it, over the whole vocabulary sorted (the exact answer)."""
    return _sorted_draw(_scaled(logits, temperature), top_p, top_k, min_p, None, u)


def _sample(
    logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, top_k: torch.Tensor,
    u: torch.Tensor, min_p: torch.Tensor | None = None, typical_p: torch.Tensor | None = None,
) -> torch.Tensor:
    """``draw`` with its flagged rows drawn again at once (reading the flags): one exact token
    per row, for callers without a step's read to fold the flags into."""
    modes = Modes(bool((temperature == 0).all()), bool((temperature == 0).any()),
                  min_p is not None and bool((min_p > 0).any()),
                  typical_p is not None and bool((typical_p < 1).any()))
    picked, slow = draw(logits, temperature, top_p, top_k, u, min_p, typical_p, modes)
    rows = slow.nonzero().squeeze(1)
    if len(rows):
        picked[rows] = redraw(logits[rows], temperature[rows], top_p[rows], top_k[rows], u[rows],
                              None if min_p is None or not modes.any_min_p else min_p[rows])
    return picked


def _sorted_draw(
    scaled: torch.Tensor, top_p: torch.Tensor, top_k: torch.Tensor, min_p: torch.Tensor | None,
    typical_p: torch.Tensor | None, u: torch.Tensor,
) -> torch.Tensor:
    """``_draw`` over the whole vocabulary, sorted."""
    values, order = scaled.sort(dim=-1, descending=True, stable=True)
    probs = values.softmax(-1)
    keep = _keep(probs, top_p, top_k, min_p)
    if typical_p is not None:
        keep &= _typical_rank(probs, typical_p)
    return _draw(probs, keep, order, u)


def decode_batch(lm: LoadedModel, table: TokenTable, rows: list[Row]) -> list[RowResult]:
    """Decode ``rows`` together until each has finished (EOS, stop string, length, cancelled).

    All rows must agree on having token type ids or not. The engine runs the same batch
    continuously, rows joining as requests arrive; this is the batch with everyone there from
    the start.
    """
    from generation.decoding.batch import Batch

    if not rows:
        return []
    batch = Batch(lm, table)
    batch.join(rows, list(range(len(rows))))
    results: list[RowResult | None] = [None] * len(rows)
    while len(batch):
        for done in batch.step():
            results[done.tag] = done.result
    return [r for r in results if r is not None]


def _text(tokenizer: Any, generated: list[int], stop: tuple[str, ...]) -> tuple[str, bool]:
    """The continuation's text (special tokens skipped), cut before the first stop string."""
    text = tokenizer.decode(generated, skip_special_tokens=True)
    cuts = [text.find(s) for s in stop if s and s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


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
