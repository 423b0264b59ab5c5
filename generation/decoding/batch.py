"""The running batch: rows join between steps, decode together, and leave when they finish.

A row is one candidate tweet; it decodes on one *line* of the model (its prompt) plus one line
per negative prompt when contrast guidance is on, each line following the row's tokens. A step
is a fixed sequence of tensor operations over all rows and lines (penalty, topic bonuses,
contrast guidance, bans, sampling, bookkeeping: ``generation/decoding/rules.py``), then one
read of the step's tokens and outcomes back to the host, then the model's forward for the rows
that go on. Rows that finish leave at once (the last row moves into the hole, so nothing else
is copied), and rows that arrive join at the next step with their prompts fed into free cache
slots (continuous batching, as Orca and vLLM schedule: nobody waits for a batch to end).

With ``Row.score`` every line also sums the log-probability of the tokens it was given, so a
finished candidate already carries its score after the prompt and after each negative prompt:
the ranking pass needs only the contrasts that no line followed.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import torch

from generation.decoding.contrast import guide
from generation.decoding.guidance import topic_variants
from generation.decoding.rules import History, NgramRule, StringRule, TopicRule
from generation.decoding.sampling import (
    FinishReason,
    Modes,
    Row,
    RowResult,
    TokenTable,
    _sample,
    _text,
)
from generation.decoding.stepper import Stepper, make_stepper
from generation.registry import LoadedModel

#: Step outcome codes, as read back from the device.
_GOES_ON, _EOS, _LENGTH, _STUCK = 0, 1, 2, 3
_CANCELLED = -1  # decided on the host
_REASON: dict[int, FinishReason] = {_EOS: "stop", _LENGTH: "length", _STUCK: "stop", _CANCELLED: "cancelled"}


@dataclass
class Finished:
    """A row that left the batch: its caller's tag and what it wrote."""

    tag: Hashable
    result: RowResult


@dataclass
class _Member:
    row: Row
    tag: Hashable
    generated: list[int] = field(default_factory=list)


Prompt = tuple[list[int], list[int] | None]


@dataclass
class _NewLines:
    prompts: list[Prompt]
    owners: list[int]
    longest: int


def _distinct(prompts: list[Prompt]) -> tuple[tuple[list[list[int]], list[list[int]] | None], list[int]]:
    """Each distinct prompt once (ids, types), and which of them every prompt is: a request's
    candidates share their prompt and negative prompts, so 8 candidates with 2 negatives each
    cost 3 prompts' passes, not 24."""
    index: dict[tuple[tuple[int, ...], tuple[int, ...] | None], int] = {}
    which = [index.setdefault((tuple(i), None if t is None else tuple(t)), len(index)) for i, t in prompts]
    keys = list(index)
    types = None if keys[0][1] is None else [list(t) for _, t in keys]  # type: ignore[union-attr]
    return ([list(i) for i, _ in keys], types), which


def holes_filled(size: int, leaving: set[int]) -> list[int]:
    """The new order (new index → old) after ``leaving`` go: the last survivors fill the holes,
    everything else stays where it is (so a cache moves only those lines)."""
    remaining = size - len(leaving)
    movers = [i for i in range(remaining, size) if i not in leaving]
    order = list(range(remaining))
    for hole, mover in zip(sorted(i for i in leaving if i < remaining), movers, strict=True):
        order[hole] = mover
    return order


class Batch:
    """The rows one model is decoding now, with their settings and state as batch tensors."""

    def __init__(self, lm: LoadedModel, table: TokenTable, stepper: Stepper | None = None) -> None:
        self.lm = lm
        self.table = table
        device = self.device = lm.device
        self.vocab = table.vocab_size
        graphs = lm.device.type == "cuda" and lm.spec.cuda_graphs
        self.stepper = stepper if stepper is not None else make_stepper(lm.model, graphs)
        self.members: list[_Member] = []
        self._fresh_rules()
        self.invalid = table.invalid.to(device)
        empty = torch.empty(0, device=device)
        self.temperature = self.top_p = self.min_p = self.typical_p = self.penalty = self.weight = empty
        self.top_k = self.min_new = self.max_new = torch.empty(0, dtype=torch.long, device=device)
        self.ignore_eos = torch.empty(0, dtype=torch.bool, device=device)
        self.seen = torch.empty((0, self.vocab), dtype=torch.bool, device=device)
        #: Per line: its row, and the log-probability summed over the tokens it was given.
        self.line_row: list[int] = []
        #: Per row: the line of its own prompt (the others following it are negative lines).
        self.main_line: list[int] = []
        #: Rows that joined while others decode: their prompts are fed with the next step.
        self.pending: list[tuple[Row, Hashable]] = []
        #: The last step: rows whose first token it sampled (time to first token), rows it
        #: sampled, and tokens it wrote.
        self.started: list[Hashable] = []
        self.stepped = self.written = 0
        self.line_types: torch.Tensor | None = None  # the type each line's next token gets
        self.scores = torch.empty(0, device=device)
        self.logits = torch.empty((0, self.vocab), device=device)
        self._index()

    def _fresh_rules(self) -> None:
        """Rule state sized for no rows. A rule's widths (longest n-gram, banned strings, topic
        columns) only grow while rows come and go, so an emptied batch starts afresh: one
        request's bans are not paid for by every later step."""
        self.history = History(self.device)
        self.ngrams = NgramRule(self.device)
        self.strings = StringRule(self.table.strings, self.vocab, self.device)
        self.topics = TopicRule(self.device)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def lines(self) -> int:
        return len(self.line_row)

    def can_join(self) -> bool:
        """Whether rows may join now (a model without the lean stepper takes a batch at a time)."""
        return self.stepper.joins or not self.members

    # --- rows joining ---------------------------------------------------------------------------

    @torch.inference_mode()
    def join(self, rows: Sequence[Row], tags: Sequence[Hashable]) -> None:
        """Take ``rows`` (and their negative prompts) into the batch; they sample from the step
        after their prompts are fed.

        While other rows decode, the prompts wait for the next step and are fed in the same
        forward as its tokens: the weights are read once for both, instead of once per arrival.
        """
        if not rows:
            return
        if not self.can_join():
            raise ValueError("this model decodes one batch at a time: wait until the batch is empty")
        typed = rows[0].token_type_ids is not None
        if any((r.token_type_ids is not None) != typed for r in rows) or (
            (self.members or self.pending) and (self.line_types is not None) != typed
        ):
            raise ValueError("rows with and without token type ids cannot share a batch")
        if self.members:  # (a stepper that joins: checked above)
            self.pending += zip(rows, tags, strict=True)
            return
        # An empty batch: typed or not as its first rows are, its rules afresh.
        self.line_types = None
        self._fresh_rules()
        if self.stepper.joins:
            self.stepper.reset()
            self._feed(rows, tags)
        else:
            lines = self._lines_of(rows)
            self._attach(rows, tags, lines, self._prefill(lines.prompts, lines.longest))

    def _feed(self, rows: Sequence[Row], tags: Sequence[Hashable], step_ids: torch.Tensor | None = None) -> None:
        """Feed ``rows``' prompts (each distinct one once, then copied) and take the rows in;
        with ``step_ids``, in the same forward as the current lines' next step."""
        lines = self._lines_of(rows)
        distinct, which = _distinct(lines.prompts)
        if step_ids is None:
            first = self.stepper.join(*distinct, lines.longest)
        else:
            logits, first = self.stepper.step_and_join(step_ids, self.line_types, *distinct, lines.longest)
            self.logits = logits.float()
        self._fork(which)
        self._attach(rows, tags, lines, first[torch.tensor(which, device=first.device)])

    def _lines_of(self, rows: Sequence[Row]) -> _NewLines:
        """The lines ``rows`` bring (their prompts, then their negative prompts) and their owners."""
        first_row = len(self.members)
        prompts = [(r.prompt_ids, r.token_type_ids) for r in rows]
        owners = list(range(first_row, first_row + len(rows)))
        for i, row in enumerate(rows):
            if row.params.contrast_guidance > 0:
                prompts += row.negatives
                owners += [first_row + i] * len(row.negatives)
        return _NewLines(prompts, owners, max(r.params.max_new_tokens for r in rows))

    def _fork(self, which: list[int]) -> None:
        """The distinct prompts just fed sit on the last lines: give every new line its copy."""
        first = self.lines
        if len(set(which)) < len(which):  # (without repeats, ``which`` is 0, 1, 2, …)
            self.stepper.keep([*range(first), *(first + w for w in which)])

    def _attach(self, rows: Sequence[Row], tags: Sequence[Hashable], lines: _NewLines,
                logits: torch.Tensor) -> None:
        """Record rows whose lines the stepper now holds (after the current ones)."""
        self.logits = torch.cat([self.logits, logits.float()]) if self.members else logits.float()
        self.main_line += range(len(self.line_row), len(self.line_row) + len(rows))
        self.members += [_Member(r, tag) for r, tag in zip(rows, tags, strict=True)]
        self.line_row += lines.owners
        if rows[0].token_type_ids is not None:
            last = torch.tensor([[t[-1]] for _, t in lines.prompts], device=self.device)  # type: ignore[index]
            self.line_types = last if self.line_types is None else torch.cat([self.line_types, last])
        self.scores = torch.cat([self.scores, torch.zeros(len(lines.prompts), device=self.device)])
        self._admit_rows(rows)
        self._index()

    def _prefill(self, prompts: list[Prompt], longest: int) -> torch.Tensor:
        """A fresh batch: the prompts left-padded, through the stepper's prefill."""
        ids = [list(i) for i, _ in prompts]
        types = [list(t) for _, t in prompts] if prompts[0][1] is not None else None  # type: ignore[arg-type]
        width = max(map(len, ids))
        padded = torch.full((len(ids), width), self.table.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        type_ids = None if types is None else torch.zeros((len(ids), width), dtype=torch.long)
        for i, prompt in enumerate(ids):
            padded[i, width - len(prompt):] = torch.tensor(prompt)
            mask[i, width - len(prompt):] = 1
            if type_ids is not None and types is not None:
                type_ids[i, width - len(prompt):] = torch.tensor(types[i])
        d = self.device
        return self.stepper.prefill(padded.to(d), mask.to(d), None if type_ids is None else type_ids.to(d), longest)

    def _admit_rows(self, rows: Sequence[Row]) -> None:
        d = self.device
        params = [r.params for r in rows]

        def column(values: list[float] | list[int] | list[bool], dtype: torch.dtype) -> torch.Tensor:
            return torch.tensor(values, dtype=dtype, device=d)

        f, i = torch.float32, torch.long
        self.temperature = torch.cat([self.temperature, column([p.temperature for p in params], f)])
        self.top_p = torch.cat([self.top_p, column([p.top_p for p in params], f)])
        self.top_k = torch.cat([self.top_k, column([p.top_k for p in params], i)])
        self.min_p = torch.cat([self.min_p, column([p.min_p for p in params], f)])
        self.typical_p = torch.cat([self.typical_p, column([p.typical_p for p in params], f)])
        self.penalty = torch.cat([self.penalty, column([p.repetition_penalty for p in params], f)])
        self.weight = torch.cat([self.weight, column([p.contrast_guidance for p in params], f)])
        self.min_new = torch.cat([self.min_new, column([p.min_new_tokens for p in params], i)])
        self.max_new = torch.cat([self.max_new, column([p.max_new_tokens for p in params], i)])
        self.ignore_eos = torch.cat([self.ignore_eos, column([p.ignore_eos for p in params], torch.bool)])
        self.seen = torch.cat([self.seen, torch.zeros((len(rows), self.vocab), dtype=torch.bool, device=d)])
        self.history.cat([r.seed for r in rows], [p.max_new_tokens for p in params])
        self.ngrams.cat([p.no_repeat_ngram_size for p in params])
        self.strings.cat([p.banned for p in params])
        self.topics.cat([topic_variants(self.lm.tokenizer, p.guide) for p in params],
                        [p.guide_start_bias for p in params], [p.guide_bias for p in params])

    def _index(self) -> None:
        """Host-known facts and index tensors of the current rows and lines (after any change)."""
        d = self.device
        params = [m.row.params for m in self.members]
        self.modes = Modes.of(params) if params else Modes()
        self.penalise = any(p.repetition_penalty != 1 for p in params)
        self.score = any(m.row.score for m in self.members)
        self.rows_of_lines = torch.tensor(self.line_row, dtype=torch.long, device=d)
        self.main_lines = torch.tensor(self.main_line, dtype=torch.long, device=d)
        mains = set(self.main_line)
        negative = [j for j in range(len(self.line_row)) if j not in mains]
        self.follow = bool(negative)  # some row is guided away from its negative prompts
        #: No negative lines, and each row's line has the row's index (leaving rows can break
        #: that: rows and lines fill their holes each on their own).
        self.aligned = not negative and self.main_line == list(range(len(self.members)))
        self.negative_lines = torch.tensor(negative, dtype=torch.long, device=d)
        self.negative_rows = torch.tensor([self.line_row[j] for j in negative], dtype=torch.long, device=d)
        #: Each row's negative lines, in line order: whose scores follow its own in its logprobs.
        self.follower_lines: dict[int, list[int]] = {}
        for line in negative:
            self.follower_lines.setdefault(self.line_row[line], []).append(line)

    # --- one step ---------------------------------------------------------------------------------

    @torch.inference_mode()
    def step(self) -> list[Finished]:
        """Sample one token for every row, let finished rows leave, run the model for the rest."""
        rows, vocab = len(self.members), self.vocab
        raw = self.logits
        logits = raw
        lines_rows = self.rows_of_lines
        # The repetition penalty and topic bonuses are the row's, so its negative lines get them
        # too: guidance then weighs the controls alone (generation/decoding/contrast.py).
        if self.penalise:
            rp = self.penalty[lines_rows][:, None]
            logits = torch.where(self.seen[lines_rows], torch.where(logits > 0, logits / rp, logits * rp), logits)
        if self.topics.active:
            logits = logits + self.topics.bonuses(self.history, vocab)[lines_rows]
        if self.follow:
            main = guide(logits[self.main_lines], logits[self.negative_lines], self.negative_rows, self.weight)
        elif self.aligned:  # line r is row r's own: a copy only if the raw logits are kept
            main = logits.clone() if logits is raw and self.score else logits
        else:
            main = logits[self.main_lines]
        main.masked_fill_(self.invalid, float("-inf"))
        eos = self.table.eos_id
        if eos is not None:
            early = self.ignore_eos | (self.history.count < self.min_new)
            main[:, eos].masked_fill_(early, float("-inf"))
        if self.ngrams.largest or self.strings.strings:
            ban = torch.zeros((rows, vocab + 1), dtype=torch.bool, device=self.device)
            self.ngrams.bans(self.history, ban)
            self.strings.bans(ban)
            main.masked_fill_(ban[:, :vocab], float("-inf"))
        stuck = torch.isinf(main).all(-1)  # everything banned: the row ends
        tokens = _sample(main, self.temperature, self.top_p, self.top_k, self.history.uniform(),
                         self.min_p, self.typical_p, self.modes)
        ended = (tokens == eos) & ~self.ignore_eos if eos is not None else torch.zeros_like(stuck)
        added = ~(stuck | ended)
        self.strings.advance(tokens)
        self.history.append(tokens, added)
        if self.penalise:
            column = tokens[:, None]
            self.seen.scatter_(1, column, self.seen.gather(1, column) | added[:, None])
        if self.topics.active:
            self.topics.advance(self.history)
        code = torch.where(stuck, _STUCK, torch.where(
            ended, _EOS, torch.where(self.history.count >= self.max_new, _LENGTH, _GOES_ON)))
        if self.score:
            given = tokens[lines_rows][:, None]
            self.scores += raw.float().log_softmax(-1).gather(1, given).squeeze(1)
        # The one read of the step: tokens, outcomes and (for ranking) the lines' scores.
        read = torch.cat([tokens.double(), code.double(), self.scores.double()]).tolist()
        return self._settle(tokens, read[:rows], read[rows:2 * rows], read[2 * rows:])

    def _settle(self, tokens: torch.Tensor, values: list[float], codes: list[float],
                scores: list[float]) -> list[Finished]:
        """The host's side of a step: record tokens, let finished rows leave, step the rest."""
        finished: list[Finished] = []
        leaving: set[int] = set()
        self.started = [m.tag for m in self.members if not m.generated]
        self.stepped, self.written = len(self.members), 0
        for r, member in enumerate(self.members):
            code = int(codes[r])
            stop = member.row.params.stop
            text: str | None = None
            stopped = False
            if member.row.cancelled():
                code = _CANCELLED
            elif code not in (_EOS, _STUCK):
                member.generated.append(int(values[r]))
                self.written += 1
                if stop:  # stop strings are written in text: checked as decoded, here
                    text, stopped = _text(self.lm.tokenizer, member.generated, stop)
                    code = _EOS if stopped else code
            reason = _REASON.get(code)
            if reason is None:
                continue
            leaving.add(r)
            logprobs: tuple[float, ...] = ()
            # A row cut at a stop string wrote tokens its text leaves out: it is scored afresh.
            if member.row.score and code == _EOS and not stopped:
                own = scores[self.main_line[r]]
                logprobs = (own, *(scores[line] for line in self.follower_lines.get(r, [])))
            if text is None:
                text, _ = _text(self.lm.tokenizer, member.generated, stop)
            finished.append(Finished(member.tag, RowResult(member.generated, text, reason, logprobs)))
        if leaving:
            self._leave(leaving)
        arriving, self.pending = self.pending, []
        rows, tags = [r for r, _ in arriving], [t for _, t in arriving]
        if self.members:
            rows_tokens = tokens if not leaving else tokens[self._row_order_tensor]
            step_ids = rows_tokens[self.rows_of_lines][:, None]
            if rows:
                self._feed(rows, tags, step_ids)
            else:
                self.logits = self.stepper.step(step_ids, self.line_types).float()
        elif rows:
            self.join(rows, tags)
        return finished

    @torch.inference_mode()
    def drop(self, tags: set[Hashable]) -> list[Finished]:
        """Take the rows with these tags out now (cancelled); what they wrote so far."""
        leaving = {r for r, m in enumerate(self.members) if m.tag in tags}
        out = [Finished(self.members[r].tag, RowResult(self.members[r].generated, "", "cancelled"))
               for r in sorted(leaving)]
        out += [Finished(tag, RowResult([], "", "cancelled")) for _, tag in self.pending if tag in tags]
        self.pending = [(row, tag) for row, tag in self.pending if tag not in tags]
        if leaving:
            self._leave(leaving)
            self.logits = self.logits[self._line_order_tensor]
        if not self.members and self.pending:  # nobody left to feed them with: feed them now
            waiting, self.pending = self.pending, []
            self.join([row for row, _ in waiting], [tag for _, tag in waiting])
        return out

    def _leave(self, leaving: set[int]) -> None:
        """Remove rows and their lines; the last rows and lines move into the holes."""
        row_order = holes_filled(len(self.members), leaving)
        line_order = holes_filled(self.lines, {j for j, r in enumerate(self.line_row) if r in leaving})
        new_row = {old: new for new, old in enumerate(row_order)}
        new_line = {old: new for new, old in enumerate(line_order)}
        rows = len(row_order)
        self.members = [self.members[old] for old in row_order]
        self.line_row = [new_row[self.line_row[old]] for old in line_order]
        self.main_line = [new_line[self.main_line[old]] for old in row_order]
        d = self.device
        row_index = self._row_order_tensor = torch.tensor(row_order, dtype=torch.long, device=d)
        line_index = self._line_order_tensor = torch.tensor(line_order, dtype=torch.long, device=d)
        for name in ("temperature", "top_p", "top_k", "min_p", "typical_p", "penalty", "weight",
                     "min_new", "max_new", "ignore_eos", "seen"):
            setattr(self, name, getattr(self, name)[row_index])
        self.history.take(row_index)
        self.ngrams.take(row_index)
        self.strings.take(row_index)
        self.topics.take(row_index)
        self.scores = self.scores[line_index]
        if self.line_types is not None:
            self.line_types = self.line_types[line_index]
        if rows:
            self.stepper.keep(line_order)  # the host's list: a device tensor would be read back
        self._index()
