"""The per-step logits rules of batched decoding, each a fixed set of tensor operations.

Every rule holds its per-row state as columns of the batch's :class:`Store`, one row per
decoding row, so a step costs the same number of operations whether 1 or 500 rows decode (the
design of vLLM v1's sampler: per-request settings live in batch tensors, updated when a request
joins or leaves, and each rule is one vectorized pass). A rule adds the columns of joining rows
to a :class:`Pack` (``columns``), which the batch sends to the device and appends at once; rows
leave through the store. Nothing in a rule's step-time methods reads the device, so they can
be recorded as a CUDA graph (``generation/decoding/stepgraph.py``).

- :class:`History` — the tokens each row has written, its count and its random numbers (drawn
  at admission from the row's seed, so a row samples the same whatever shares its batch, on the
  CPU; on a GPU see ``generation/decoding/sampling.py``).
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
from generation.decoding.store import Store
from generation.decoding.upload import Pack

#: Topic spellings are guided for their first this many tokens (a name or hashtag is shorter).
MAX_TOPIC_TOKENS = 24


class Column:
    """A rule's live view of one column of its store (``rule.store``): the rows shown now."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, rule: object, owner: type | None = None) -> torch.Tensor:
        return rule.store[self.name]  # type: ignore[attr-defined,no-any-return]


class History:
    """Each row's written tokens (rows × the longest tweet allowed, ``-1`` after the end), its
    count, and the uniform numbers its sampling steps consume (one per step)."""

    tokens, count, uniforms = Column("history.tokens"), Column("history.count"), Column("history.uniforms")

    def __init__(self, store: Store) -> None:
        self.store = store
        store.declare("history.tokens", (0,), torch.long, -1)
        store.declare("history.count", (), torch.long, 0)
        store.declare("history.uniforms", (0,), torch.float32, 0.5)

    def columns(self, pack: Pack, seeds: Sequence[int], max_new: Sequence[int]) -> None:
        width = max(max_new)
        draws = torch.stack([torch.rand(width, generator=torch.Generator().manual_seed(seed)) for seed in seeds])
        pack.add("history.uniforms", draws, torch.float32)
        self.store.widen("history.tokens", (width,))

    def uniform(self) -> torch.Tensor:
        """This step's uniform number per row."""
        uniforms = self.uniforms
        at = self.count.clamp(max=uniforms.shape[1] - 1)
        return uniforms.gather(1, at[:, None]).squeeze(1)

    def tail(self, width: int) -> torch.Tensor:
        """The last ``width`` written tokens per row, right-aligned (``-2`` before the start)."""
        count = self.count
        at = count[:, None] - width + torch.arange(width, device=count.device)
        picked = self.tokens.gather(1, at.clamp(min=0))
        return torch.where(at >= 0, picked, -2)

    def append(self, tokens: torch.Tensor, added: torch.Tensor) -> None:
        """Write ``tokens`` for the rows where ``added``; the others stay as they were."""
        written, count = self.tokens, self.count
        at = count.clamp(max=written.shape[1] - 1)[:, None]
        old = written.gather(1, at)
        written.scatter_(1, at, torch.where(added[:, None], tokens[:, None], old))
        count.add_(added.long())


class NgramRule:
    """Bans the tokens that would repeat an n-gram of the row's own tweet (size per row; 0 off)."""

    size = Column("ngram.size")

    def __init__(self, store: Store) -> None:
        self.store = store
        store.declare("ngram.size", (), torch.long, 0)
        #: The largest size any row asks (0: the rule is off), known on the host.
        self.largest = 0


    def columns(self, pack: Pack, sizes: Sequence[int]) -> None:
        pack.add("ngram.size", list(sizes), torch.long)
        self.largest = max(self.largest, *sizes)

    def clear(self) -> None:
        self.largest = 0

    def bans(self, history: History, ban: torch.Tensor) -> None:
        """Mark in ``ban`` (rows × vocabulary + 1 spare column) each row's repeating tokens."""
        n = self.largest
        if n < 1:
            return
        tokens, count, size = history.tokens, history.count, self.size
        rows, width = tokens.shape
        # Every n-gram written so far, as windows ending at each position.
        padded = torch.cat([tokens.new_full((rows, n - 1), -3), tokens], 1)
        windows = padded.unfold(1, n, 1)  # rows × width × n
        suffix = history.tail(n - 1)  # what the next token would follow
        # Row i compares only its last size-1 tokens (smaller n-grams than the largest).
        ignored = torch.arange(n - 1, device=ban.device)[None, :] < (n - size)[:, None]
        same = (windows[:, :, : n - 1] == suffix[:, None, :]) | ignored[:, None, :]
        ends = torch.arange(width, device=ban.device)[None, :]
        hit = same.all(-1) & (ends < count[:, None]) & (size > 0)[:, None]
        column = torch.where(hit, windows[:, :, n - 1], ban.shape[1] - 1)
        ban.scatter_(1, column, True)


class StringTables:
    """Per string of bytes, the token transitions of its matching automaton over a vocabulary.

    State ``s`` means the text ends with the string's first ``s`` bytes (the longest such);
    ``step[s, t]`` is the state after token ``t`` and ``hit[s, t]`` whether the string occurs
    in the text once ``t`` is written. Built once per string (Knuth–Morris–Pratt over each
    token's bytes) and shared by every batch of the model; sent to each device once.
    """

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.pieces = pieces
        self._tables: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}
        self._on_device: dict[tuple[bytes, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
        self._lock = threading.Lock()

    def get(self, data: bytes) -> tuple[torch.Tensor, torch.Tensor]:
        with self._lock:
            if data not in self._tables:
                self._tables[data] = self._build(data)
            return self._tables[data]

    def on(self, data: bytes, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``get`` on ``device``, copied there the first time only."""
        step, hit = self.get(data)
        with self._lock:
            key = (data, device)
            if key not in self._on_device:
                self._on_device[key] = (step.to(device), hit.to(device))
            return self._on_device[key]

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
    """Strings a row may not write (``banned``), matched on bytes.

    The automata of the strings in use sit in two tables (strings × states × vocabulary) that
    keep their memory when the batch empties: the next rows, which usually ban the same strings
    in the same order, rewrite them in place, so a graph recorded over them stays valid.
    """

    state, banned = Column("strings.state"), Column("strings.banned")

    def __init__(self, tables: StringTables, vocab: int, store: Store) -> None:
        self.tables = tables
        self.vocab = vocab
        self.store = store
        self.device = store.device
        store.declare("strings.state", (0,), torch.long, 0)
        store.declare("strings.banned", (0,), torch.bool, False)
        self.strings: list[bytes] = []
        self._step = torch.zeros((0, 1, vocab), dtype=torch.long, device=self.device)
        self._hit = torch.zeros((0, 1, vocab), dtype=torch.bool, device=self.device)
        #: Bumped when the tables move (a graph recorded over the old ones is stale).
        self.version = 0

    def columns(self, pack: Pack, banned: Sequence[tuple[str, ...]]) -> None:
        for data in dict.fromkeys(s.encode() for row in banned for s in row if s):
            if data not in self.strings:
                self._add(data)
        index = {s: i for i, s in enumerate(self.strings)}
        flags = torch.zeros((len(banned), len(self.strings)), dtype=torch.bool)
        for r, strings in enumerate(banned):
            for s in strings:
                if s:
                    flags[r, index[s.encode()]] = True
        pack.add("strings.banned", flags, torch.bool)
        self.store.widen("strings.state", (len(self.strings),))

    def clear(self) -> None:
        self.strings = []

    def _add(self, data: bytes) -> None:
        step, hit = self.tables.on(data, self.device)
        at, depth = len(self.strings), step.shape[0]
        have, deep = self._step.shape[:2]
        if at >= have or depth > deep:
            size = (max(at + 1, 2 * have), max(depth, deep), self.vocab)
            bigger_step = torch.zeros(size, dtype=torch.long, device=self.device)
            bigger_hit = torch.zeros(size, dtype=torch.bool, device=self.device)
            bigger_step[:have, :deep], bigger_hit[:have, :deep] = self._step, self._hit
            self._step, self._hit = bigger_step, bigger_hit
            self.version += 1
        width = min(step.shape[1], self.vocab)
        self._step[at].zero_()
        self._hit[at].zero_()
        self._step[at, :depth, :width] = step[:, :width]
        self._hit[at, :depth, :width] = hit[:, :width]
        self.strings.append(data)

    def _hits(self) -> torch.Tensor:
        """rows × strings × vocabulary: which tokens would complete each string now."""
        which = torch.arange(len(self.strings), device=self.device)[None, :]
        return self._hit[which, self.state]

    def bans(self, ban: torch.Tensor) -> None:
        if self.strings:
            ban[:, : self.vocab] |= (self._hits() & self.banned[:, :, None]).any(1)

    def advance(self, tokens: torch.Tensor) -> None:
        """Move every row's automata past ``tokens``."""
        if self.strings:
            state = self.state
            which = torch.arange(len(self.strings), device=self.device)[None, :]
            column = tokens[:, None].clamp(max=self.vocab - 1)
            state.copy_(self._step[which, state, column])


class TopicRule:
    """Topic guidance as tensors: each row's topic spellings, which topics are still pending."""

    spellings, lengths = Column("topics.spellings"), Column("topics.lengths")  # rows × spellings (× tokens)
    topic, pending = Column("topics.topic"), Column("topics.pending")  # spelling → topic; topics
    start, follow = Column("topics.start"), Column("topics.follow")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.device = store.device
        store.declare("topics.spellings", (0, 1), torch.long, -1)  # rows × spellings × tokens
        store.declare("topics.lengths", (0,), torch.long, 0)
        store.declare("topics.topic", (0,), torch.long, 0)  # spelling → topic
        store.declare("topics.pending", (0,), torch.bool, False)
        store.declare("topics.start", (), torch.float32, 0.0)
        store.declare("topics.follow", (), torch.float32, 0.0)

    def columns(self, pack: Pack, topics: Sequence[tuple[Variants, ...]], start: Sequence[float],
                follow: Sequence[float]) -> None:
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
        pack.add("topics.spellings", ids, torch.long)
        pack.add("topics.lengths", lengths, torch.long)
        pack.add("topics.topic", topic, torch.long)
        pack.add("topics.pending", pending, torch.bool)
        pack.add("topics.start", list(start), torch.float32)
        pack.add("topics.follow", list(follow), torch.float32)

    @property
    def active(self) -> bool:
        return self.store.width("topics.spellings")[0] > 0

    def bonuses(self, history: History, vocab: int) -> torch.Tensor:
        """rows × vocabulary: the logit bonus each row's next token would get."""
        spellings, lengths = self.spellings, self.lengths
        rows, _, width = spellings.shape
        tail = history.tail(width)  # rows × width
        begun_max = max(width - 1, 1)
        ks = torch.arange(1, begun_max + 1, device=self.device)  # prefix lengths that can be begun
        js = torch.arange(begun_max, device=self.device)
        # prefix k begun: the tail's last k tokens equal the spelling's first k
        at = (width - ks[:, None] + js[None, :]).clamp(max=width - 1)  # k × j
        seen = tail[:, at]  # rows × k × j
        spelled = spellings[:, :, None, :begun_max]  # rows × s × 1 × j
        same = (seen[:, None] == spelled) | (js[None, :] >= ks[:, None])[None, None]
        begun = same.all(-1) & (ks[None, None, :] < lengths[:, :, None])  # rows × s × k
        longest = (begun * ks).amax(-1)  # rows × s (0: not begun)
        token = spellings.gather(2, longest[:, :, None]).squeeze(2)
        bias = torch.where(longest > 0, self.follow[:, None], self.start[:, None])
        live = self.pending.gather(1, self.topic) & (lengths > 0) & (bias > 0)
        out = torch.zeros((rows, vocab + 1), device=self.device)
        out.scatter_reduce_(1, torch.where(live, token, vocab), torch.where(live, bias, 0.0), "amax")
        return out[:, :vocab]

    def advance(self, history: History) -> None:
        """After a token: topics whose spelling the tweet now ends with are no longer pending."""
        spellings, lengths, pending = self.spellings, self.lengths, self.pending
        rows, count, width = spellings.shape
        tail = history.tail(width)
        js = torch.arange(width, device=self.device)
        at = (width - lengths[:, :, None] + js).clamp(0, width - 1)  # rows × s × j
        seen = tail[:, None, :].expand(rows, count, width).gather(2, at)
        done = ((seen == spellings) | (js >= lengths[:, :, None])).all(-1) & (lengths > 0)
        written = torch.zeros(pending.shape, dtype=torch.long, device=self.device)
        written.scatter_add_(1, self.topic, done.long())
        pending.logical_and_(written == 0)
