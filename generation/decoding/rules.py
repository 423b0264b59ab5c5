"""The per-step logits rules of batched decoding, each a fixed set of tensor operations.

Every rule holds its per-row state as tensors with one row per decoding row, so a step costs the
same number of operations whether 1 or 500 rows decode (the design of vLLM v1's sampler:
per-request settings live in batch tensors, updated when a request joins or leaves, and each
rule is one vectorized pass). Rows join (``cat``) and leave (``take``) between steps.

- :class:`History` — the tokens each row has written, its count and its random numbers (drawn
  at admission from the row's seed, so a row samples the same whatever shares its batch).
- :class:`NgramRule` — no repeated n-grams within the tweet (the prompt is control context).
- :class:`StringRule` — banned strings, on bytes: byte-level BPE tokens may hold part of a UTF-8
  character, so each string is a small automaton over bytes whose token transitions are
  tabulated once per vocabulary (:class:`StringTables`). (Stop strings are matched on the
  decoded text, on the host, as servers' users write them.)
- :class:`TopicRule` — topic guidance's bonuses (``generation/decoding/guidance.py``): the
  longest begun spelling of a pending topic gets ``guide_bias`` on its next token, a topic not
  begun ``guide_start_bias`` on its first.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch

from generation.decoding.guidance import Variants

#: Topic spellings are guided for their first this many tokens (a name or hashtag is shorter).
MAX_TOPIC_TOKENS = 24


def cat_rows(a: torch.Tensor, b: torch.Tensor, fill: float | int | bool) -> torch.Tensor:
    """``a`` then ``b`` along rows, trailing dimensions padded with ``fill`` to the larger."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

    def padded(t: torch.Tensor) -> torch.Tensor:
        if list(t.shape[1:]) == shape:
            return t
        out = t.new_full((t.shape[0], *shape), fill)
        out[tuple(slice(0, n) for n in t.shape)] = t
        return out

    return torch.cat([padded(a), padded(b)])


class History:
    """Each row's written tokens (rows × capacity, ``-1`` after the end), count, and the uniform
    numbers its sampling steps consume (one per step)."""

    def __init__(self, device: torch.device) -> None:
        self.tokens = torch.empty((0, 1), dtype=torch.long, device=device)
        self.count = torch.empty(0, dtype=torch.long, device=device)
        self.uniforms = torch.empty((0, 1), device=device)

    def cat(self, seeds: Sequence[int], max_new: Sequence[int]) -> None:
        width = max(max_new)
        device = self.count.device
        draws = torch.stack([
            torch.rand(width, generator=torch.Generator().manual_seed(seed)) for seed in seeds
        ]).to(device)
        self.tokens = cat_rows(self.tokens, torch.full((len(seeds), width), -1, device=device), -1)
        self.count = torch.cat([self.count, torch.zeros(len(seeds), dtype=torch.long, device=device)])
        self.uniforms = cat_rows(self.uniforms, draws, 0.5)

    def take(self, rows: torch.Tensor) -> None:
        self.tokens, self.count, self.uniforms = self.tokens[rows], self.count[rows], self.uniforms[rows]

    def uniform(self) -> torch.Tensor:
        """This step's uniform number per row."""
        at = self.count.clamp(max=self.uniforms.shape[1] - 1)
        return self.uniforms.gather(1, at[:, None]).squeeze(1)

    def tail(self, width: int) -> torch.Tensor:
        """The last ``width`` written tokens per row, right-aligned (``-2`` before the start)."""
        at = self.count[:, None] - width + torch.arange(width, device=self.count.device)
        picked = self.tokens.gather(1, at.clamp(min=0))
        return torch.where(at >= 0, picked, -2)

    def append(self, tokens: torch.Tensor, added: torch.Tensor) -> None:
        """Write ``tokens`` for the rows where ``added``; the others stay as they were."""
        at = self.count.clamp(max=self.tokens.shape[1] - 1)[:, None]
        old = self.tokens.gather(1, at)
        self.tokens.scatter_(1, at, torch.where(added[:, None], tokens[:, None], old))
        self.count += added.long()


class NgramRule:
    """Bans the tokens that would repeat an n-gram of the row's own tweet (size per row; 0 off)."""

    def __init__(self, device: torch.device) -> None:
        self.size = torch.empty(0, dtype=torch.long, device=device)
        self.largest = 0

    def cat(self, sizes: Sequence[int]) -> None:
        self.size = torch.cat([self.size, torch.tensor(list(sizes), dtype=torch.long, device=self.size.device)])
        self.largest = max(self.largest, *sizes)

    def take(self, rows: torch.Tensor) -> None:
        self.size = self.size[rows]

    def bans(self, history: History, ban: torch.Tensor) -> None:
        """Mark in ``ban`` (rows × vocabulary + 1 spare column) each row's repeating tokens."""
        n = self.largest
        if n < 1:
            return
        rows, width = history.tokens.shape
        # Every n-gram written so far, as windows ending at each position.
        padded = torch.cat([history.tokens.new_full((rows, n - 1), -3), history.tokens], 1)
        windows = padded.unfold(1, n, 1)  # rows × width × n
        suffix = history.tail(n - 1)  # what the next token would follow
        # Row i compares only its last size-1 tokens (smaller n-grams than the largest).
        ignored = torch.arange(n - 1, device=ban.device)[None, :] < (n - self.size)[:, None]
        same = (windows[:, :, : n - 1] == suffix[:, None, :]) | ignored[:, None, :]
        ends = torch.arange(width, device=ban.device)[None, :]
        hit = same.all(-1) & (ends < history.count[:, None]) & (self.size > 0)[:, None]
        column = torch.where(hit, windows[:, :, n - 1], ban.shape[1] - 1)
        ban.scatter_(1, column, True)


class StringTables:
    """Per string of bytes, the token transitions of its matching automaton over a vocabulary.

    State ``s`` means the text ends with the string's first ``s`` bytes (the longest such);
    ``step[s, t]`` is the state after token ``t`` and ``hit[s, t]`` whether the string occurs
    in the text once ``t`` is written. Built once per string (Knuth–Morris–Pratt over each
    token's bytes) and shared by every batch of the model.
    """

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.pieces = pieces
        self._tables: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}
        self._lock = threading.Lock()

    def get(self, data: bytes) -> tuple[torch.Tensor, torch.Tensor]:
        with self._lock:
            if data not in self._tables:
                self._tables[data] = self._build(data)
            return self._tables[data]

    def _build(self, data: bytes) -> tuple[torch.Tensor, torch.Tensor]:
        fail = [0] * (len(data) + 1)
        k = 0
        for i in range(1, len(data)):
            while k and data[i] != data[k]:
                k = fail[k]
            k += data[i] == data[k]
            fail[i + 1] = k
        states = len(data)
        step = torch.zeros((states, len(self.pieces)), dtype=torch.long)
        hit = torch.zeros((states, len(self.pieces)), dtype=torch.bool)
        for t, piece in enumerate(self.pieces):
            for s in range(states):
                state, found = s, False
                for byte in piece:
                    while state and byte != data[state]:
                        state = fail[state]
                    state += byte == data[state]
                    if state == states:
                        found, state = True, fail[state]
                step[s, t], hit[s, t] = state, found
        return step, hit


class StringRule:
    """Strings a row may not write (``banned``), matched on bytes."""

    def __init__(self, tables: StringTables, vocab: int, device: torch.device) -> None:
        self.tables = tables
        self.vocab = vocab
        self.device = device
        self.strings: list[bytes] = []
        self.step_table = torch.zeros((0, 1, vocab), dtype=torch.long, device=device)
        self.hit_table = torch.zeros((0, 1, vocab), dtype=torch.bool, device=device)
        self.state = torch.zeros((0, 0), dtype=torch.long, device=device)
        self.banned = torch.zeros((0, 0), dtype=torch.bool, device=device)

    def cat(self, banned: Sequence[tuple[str, ...]]) -> None:
        new = [s.encode() for row in banned for s in row if s]
        for data in dict.fromkeys(new):
            if data not in self.strings:
                self._add(data)
        count = len(self.strings)
        index = {s: i for i, s in enumerate(self.strings)}

        def flags(rows: Sequence[tuple[str, ...]]) -> torch.Tensor:
            out = torch.zeros((len(rows), count), dtype=torch.bool)
            for r, strings in enumerate(rows):
                for s in strings:
                    if s:
                        out[r, index[s.encode()]] = True
            return out.to(self.device)

        self.state = cat_rows(self.state, torch.zeros((len(banned), count), dtype=torch.long, device=self.device), 0)
        self.banned = cat_rows(self.banned, flags(banned), False)

    def _add(self, data: bytes) -> None:
        step, hit = self.tables.get(data)
        depth = max(self.step_table.shape[1], step.shape[0])

        def grown(table: torch.Tensor, fill: int | bool) -> torch.Tensor:
            out = table.new_full((table.shape[0], depth, self.vocab), fill)
            out[:, : table.shape[1]] = table
            return out

        def padded(table: torch.Tensor, fill: int | bool) -> torch.Tensor:
            out = table.new_full((depth, self.vocab), fill)
            out[: table.shape[0], : table.shape[1]] = table[:, : self.vocab]
            return out.to(self.device)[None]

        self.step_table = torch.cat([grown(self.step_table, 0), padded(step, 0)])
        self.hit_table = torch.cat([grown(self.hit_table, False), padded(hit, False)])
        self.strings.append(data)
        self.state = cat_rows(self.state, self.state.new_zeros((0, len(self.strings))), 0)
        self.banned = cat_rows(self.banned, self.banned.new_zeros((0, len(self.strings))), False)

    def take(self, rows: torch.Tensor) -> None:
        self.state, self.banned = self.state[rows], self.banned[rows]

    def _hits(self) -> torch.Tensor:
        """rows × strings × vocabulary: which tokens would complete each string now."""
        which = torch.arange(len(self.strings), device=self.device)[None, :]
        return self.hit_table[which, self.state]

    def bans(self, ban: torch.Tensor) -> None:
        if self.strings:
            ban[:, : self.vocab] |= (self._hits() & self.banned[:, :, None]).any(1)

    def advance(self, tokens: torch.Tensor) -> None:
        """Move every row's automata past ``tokens``."""
        if self.strings:
            which = torch.arange(len(self.strings), device=self.device)[None, :]
            column = tokens[:, None].clamp(max=self.vocab - 1)
            self.state = self.step_table[which, self.state, column]


class TopicRule:
    """Topic guidance as tensors: each row's topic spellings, which topics are still pending."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.spellings = torch.full((0, 0, 1), -1, dtype=torch.long, device=device)  # rows × s × tokens
        self.lengths = torch.zeros((0, 0), dtype=torch.long, device=device)
        self.topic = torch.zeros((0, 0), dtype=torch.long, device=device)  # spelling → topic
        self.pending = torch.zeros((0, 0), dtype=torch.bool, device=device)
        self.start_bias = torch.zeros(0, device=device)
        self.follow_bias = torch.zeros(0, device=device)

    def cat(self, topics: Sequence[tuple[Variants, ...]], start: Sequence[float], follow: Sequence[float]) -> None:
        count = len(topics)
        spellings = max((sum(len(variants) for variants in row) for row in topics), default=0)
        width = max((min(len(s), MAX_TOPIC_TOKENS) for row in topics for v in row for s in v), default=1)
        width = max(width, 1)
        ids = torch.full((count, spellings, width), -1, dtype=torch.long)
        lengths = torch.zeros((count, spellings), dtype=torch.long)
        topic = torch.zeros((count, spellings), dtype=torch.long)
        pending = torch.zeros((count, max((len(row) for row in topics), default=0)), dtype=torch.bool)
        for r, row in enumerate(topics):
            k = 0
            for t, variants in enumerate(row):
                pending[r, t] = True
                for spelling in variants:
                    cut = spelling[:MAX_TOPIC_TOKENS]
                    ids[r, k, : len(cut)] = torch.tensor(cut)
                    lengths[r, k], topic[r, k] = len(cut), t
                    k += 1
        d = self.device
        self.spellings = cat_rows(self.spellings, ids.to(d), -1)
        self.lengths = cat_rows(self.lengths, lengths.to(d), 0)
        self.topic = cat_rows(self.topic, topic.to(d), 0)
        self.pending = cat_rows(self.pending, pending.to(d), False)
        self.start_bias = torch.cat([self.start_bias, torch.tensor(list(start), dtype=torch.float32, device=d)])
        self.follow_bias = torch.cat([self.follow_bias, torch.tensor(list(follow), dtype=torch.float32, device=d)])

    def take(self, rows: torch.Tensor) -> None:
        self.spellings, self.lengths, self.topic = self.spellings[rows], self.lengths[rows], self.topic[rows]
        self.pending = self.pending[rows]
        self.start_bias, self.follow_bias = self.start_bias[rows], self.follow_bias[rows]

    @property
    def active(self) -> bool:
        return self.spellings.shape[1] > 0

    def bonuses(self, history: History, vocab: int) -> torch.Tensor:
        """rows × vocabulary: the logit bonus each row's next token would get."""
        rows, _, width = self.spellings.shape
        tail = history.tail(width)  # rows × width
        begun_max = max(width - 1, 1)
        ks = torch.arange(1, begun_max + 1, device=self.device)  # prefix lengths that can be begun
        js = torch.arange(begun_max, device=self.device)
        # prefix k begun: the tail's last k tokens equal the spelling's first k
        at = (width - ks[:, None] + js[None, :]).clamp(max=width - 1)  # k × j
        seen = tail[:, at]  # rows × k × j
        spelled = self.spellings[:, :, None, :begun_max]  # rows × s × 1 × j
        same = (seen[:, None] == spelled) | (js[None, :] >= ks[:, None])[None, None]
        begun = same.all(-1) & (ks[None, None, :] < self.lengths[:, :, None])  # rows × s × k
        longest = (begun * ks).amax(-1)  # rows × s (0: not begun)
        token = self.spellings.gather(2, longest[:, :, None]).squeeze(2)
        bias = torch.where(longest > 0, self.follow_bias[:, None], self.start_bias[:, None])
        live = self.pending.gather(1, self.topic) & (self.lengths > 0) & (bias > 0)
        out = torch.zeros((rows, vocab + 1), device=self.device)
        out.scatter_reduce_(1, torch.where(live, token, vocab), torch.where(live, bias, 0.0), "amax")
        return out[:, :vocab]

    def advance(self, history: History) -> None:
        """After a token: topics whose spelling the tweet now ends with are no longer pending."""
        rows, count, width = self.spellings.shape
        tail = history.tail(width)
        js = torch.arange(width, device=self.device)
        at = (width - self.lengths[:, :, None] + js).clamp(0, width - 1)  # rows × s × j
        seen = tail[:, None, :].expand(rows, count, width).gather(2, at)
        done = ((seen == self.spellings) | (js >= self.lengths[:, :, None])).all(-1) & (self.lengths > 0)
        written = torch.zeros(self.pending.shape, dtype=torch.long, device=self.device)
        written.scatter_add_(1, self.topic, done.long())
        self.pending &= written == 0
