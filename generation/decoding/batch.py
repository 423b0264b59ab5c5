"""The running batch: rows join between steps, decode together, and leave when they finish.

A row is one candidate tweet; it decodes on one *line* of the model (its prompt) plus one line
per negative prompt when contrast guidance is on, each line following the row's tokens. A step
is a fixed sequence of tensor operations over all rows and lines (penalty, topic bonuses,
contrast guidance, bans, sampling: ``generation/decoding/rules.py``), then one read of the
step's tokens back to the host, then the commit (the tokens written into the rules' state),
then the model's forward for the rows that go on. Rows that finish leave at once (the last row
moves into the hole, so nothing else is copied), and rows that arrive join at the next step
with their prompts fed into free cache slots (continuous batching, as Orca and vLLM schedule:
nobody waits for a batch to end).

Every per-row setting and state is a column of a :class:`Store` whose buffers keep their
address while rows come and go, so on a GPU the draw and the commit are replayed as CUDA graphs
(``generation/decoding/stepgraph.py``) around the graphed forward
(``generation/decoding/cudagraph.py``), each padded to a bucket of rows and lines. The sampler
sorts only each row's most likely tokens; a row whose cut falls further out is flagged, and the
host, which reads the flags with the tokens, draws it again over the whole vocabulary before
the commit: a second read, on the steps that need it only.

With ``Row.score`` every line also sums the log-probability of the tokens it was given, so a
finished candidate already carries its score after the prompt and after each negative prompt:
the ranking pass needs only the contrasts that no line followed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

import torch

from generation.decoding.capture import Recorder, recorder_for
from generation.decoding.contrast import guide
from generation.decoding.cudagraph import bucket
from generation.decoding.guidance import topic_variants
from generation.decoding.rules import History, NgramRule, StringRule, TopicRule
from generation.decoding.sampling import (
    FinishReason,
    Modes,
    Row,
    RowResult,
    TokenTable,
    _text,
    draw,
    redraw,
)
from generation.decoding.stepgraph import StepGraphs
from generation.decoding.stepper import Stepper, make_stepper
from generation.decoding.store import Store
from generation.decoding.upload import Pack
from generation.registry import LoadedModel

T = TypeVar("T")

#: Step outcome codes, decided on the host from the tokens and the stuck flags read back.
_GOES_ON, _EOS, _LENGTH, _STUCK = 0, 1, 2, 3
_CANCELLED = -1
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


#: Graphs made at load cover a row and its two negative lines (the bot's contrast guidance)
#: for every row the engine may hold, over this many positions (a tweet and its prompt).
PREPARED_LINES_PER_ROW = 3
PREPARED_SPAN = 128
#: Per-row settings: name, dtype, the value a spare row holds.
_SETTINGS: tuple[tuple[str, torch.dtype, float | int | bool], ...] = (
    ("temperature", torch.float32, 1.0), ("top_p", torch.float32, 1.0), ("top_k", torch.long, 0),
    ("min_p", torch.float32, 0.0), ("typical_p", torch.float32, 1.0), ("penalty", torch.float32, 1.0),
    ("weight", torch.float32, 0.0), ("min_new", torch.long, 0), ("ignore_eos", torch.bool, False),
)


class _Drawn(NamedTuple):
    """What a step's rules and sampler leave for the host and the commit."""

    #: rows × vocabulary: the logits the rows sampled from (what a redraw needs).
    main: torch.Tensor
    tokens: torch.Tensor
    #: Rows whose every token was banned: they end.
    stuck: torch.Tensor
    #: lines × vocabulary log-probabilities when lines keep scores (else the raw logits).
    logp: torch.Tensor
    #: Per line, the log-probability of the token its row wrote (when lines keep scores).
    given: torch.Tensor
    #: The step's one read (float32, exact for token ids below 2²⁴): tokens, stuck and redraw
    #: flags per row, then each line's score with this step's token.
    read: torch.Tensor


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

    def __init__(self, lm: LoadedModel, table: TokenTable, stepper: Stepper | None = None,
                 recorder: Recorder | None = None) -> None:
        """``recorder``: how graphs are recorded (default: CUDA graphs on a GPU when the model's
        ``cuda_graphs`` is on; none elsewhere, where every step runs eagerly)."""
        self.lm = lm
        self.table = table
        device = self.device = lm.device
        self.vocab = table.vocab_size
        if recorder is None and stepper is None:
            recorder = recorder_for(device, lm.spec.cuda_graphs)
        self.stepper = stepper if stepper is not None else make_stepper(lm.model, recorder is not None, recorder)
        #: The draw and the commit as graphs: with a recorder and a stepper that graphs its steps.
        graphed = recorder is not None and getattr(self.stepper, "graphs", None) is not None
        self.graphs = StepGraphs(recorder) if graphed and recorder is not None else None
        self.members: list[_Member] = []
        rows = self.row_state = Store(device)
        for name, dtype, fill in _SETTINGS:
            rows.declare(name, (), dtype, fill)
        rows.declare("seen", (self.vocab,), torch.bool, False)
        rows.declare("live", (), torch.bool, False)  # a real row, not padding up to a bucket
        rows.declare("main_line", (), torch.long, 0)  # the line of the row's own prompt
        rows.declare("negatives", (0,), torch.long, 0)  # the lines of its negative prompts
        rows.declare("present", (0,), torch.bool, False)  # which of those are real
        self.history = History(rows)
        self.ngrams = NgramRule(rows)
        self.strings = StringRule(table.strings, self.vocab, rows)
        self.topics = TopicRule(rows)
        lines = self.line_state = Store(device)
        lines.declare("row", (), torch.long, 0)
        lines.declare("types", (1,), torch.long, 0)  # the type each line's next token gets
        lines.declare("score", (), torch.float32, 0.0)  # log-probability of the tokens given
        self.invalid = table.invalid.to(device)
        #: Per line: its row.
        self.line_row: list[int] = []
        #: Per row: the line of its own prompt (the others following it are negative lines).
        self.main_line: list[int] = []
        #: Rows that joined while others decode: their prompts are fed with the next step.
        self.pending: list[tuple[Row, Hashable]] = []
        #: The last step: rows whose first token it sampled (time to first token), rows it
        #: sampled, and tokens it wrote.
        self.started: list[Hashable] = []
        self.stepped = self.written = 0
        #: Whether the rows carry token type ids (None while the batch is empty).
        self.typed: bool | None = None
        self.logits = torch.empty((0, self.vocab), device=device)
        self._index()

    def _buffer(self) -> torch.Tensor | None:
        """The stepper's logits buffer when its steps are graphed (where every step writes)."""
        graphs = getattr(self.stepper, "graphs", None)
        return None if graphs is None or graphs.recorder is None else graphs.logits

    def _clear_rules(self) -> None:
        """Rule state for no rows. A rule's widths (longest n-gram, banned strings, topic
        columns) only grow while rows come and go, so an emptied batch starts afresh: one
        request's bans are not paid for by every later step. The buffers stay where they are."""
        self.row_state.clear()
        self.line_state.clear()
        self.ngrams.clear()
        self.strings.clear()

    def __len__(self) -> int:
        return len(self.members)

    @property
    def lines(self) -> int:
        return len(self.line_row)

    def can_join(self) -> bool:
        """Whether rows may join now (a model without the lean stepper takes a batch at a time)."""
        return self.stepper.joins or not self.members

    @torch.inference_mode()
    def prepare(self, rows: int) -> int:
        """Record the graphed forward of every bucket up to ``rows`` rows with their negative
        lines now, before any request (``PREPARED_LINES_PER_ROW``, ``PREPARED_SPAN``), so no
        user's step pays for it; how many graphs were recorded (0 without graphs)."""
        return self.stepper.prepare(rows * PREPARED_LINES_PER_ROW, PREPARED_SPAN, self.lm.spec.kind == "controlled")

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
            (self.members or self.pending) and self.typed != typed
        ):
            raise ValueError("rows with and without token type ids cannot share a batch")
        if self.members:  # (a stepper that joins: checked above)
            self.pending += zip(rows, tags, strict=True)
            return
        # An empty batch: typed or not as its first rows are, its rules afresh.
        self.typed = typed
        self._clear_rules()
        if self.stepper.joins:
            self.stepper.reset()
            self._feed(rows, tags)
        else:
            lines = self._lines_of(rows)
            self._attach(rows, tags, lines, self._prefill(lines.prompts, lines.longest))

    def _types(self) -> torch.Tensor | None:
        return self.line_state["types"] if self.typed else None

    def _feed(self, rows: Sequence[Row], tags: Sequence[Hashable], step_ids: torch.Tensor | None = None) -> None:
        """Feed ``rows``' prompts (each distinct one once, then copied) and take the rows in;
        with ``step_ids``, in the same forward as the current lines' next step."""
        lines = self._lines_of(rows)
        distinct, which = _distinct(lines.prompts)
        if step_ids is None:
            first = self.stepper.join(*distinct, lines.longest)
        else:
            self.logits, first = self.stepper.step_and_join(step_ids, self._types(), *distinct, lines.longest)
        if which != list(range(len(which))):
            self._fork(which)
            pack = Pack()
            pack.add("which", which, torch.long)
            first = first[pack.send(first.device)["which"]]
        self._attach(rows, tags, lines, first)

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
        self.stepper.keep([*range(first), *(first + w for w in which)])

    def _attach(self, rows: Sequence[Row], tags: Sequence[Hashable], lines: _NewLines,
                logits: torch.Tensor) -> None:
        """Record rows whose lines the stepper now holds (after the current ones)."""
        self.logits = self.stepper.hold(torch.cat([self.logits, logits]) if self.members else logits)
        self.main_line += range(len(self.line_row), len(self.line_row) + len(rows))
        self.members += [_Member(r, tag) for r, tag in zip(rows, tags, strict=True)]
        self.line_row += lines.owners
        pack = Pack()
        self._row_columns(pack, rows)
        if self.typed:
            pack.add("types", [t[-1] for _, t in lines.prompts], torch.long, (len(lines.prompts), 1))  # type: ignore[index]
        sent = pack.send(self.device)
        line_types = sent.pop("types", None)
        self.row_state.append(len(rows), sent)
        self.line_state.append(len(lines.prompts), {} if line_types is None else {"types": line_types})
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

    def _row_columns(self, pack: Pack, rows: Sequence[Row]) -> None:
        """Every column of the joining rows (the ones left out start at their fill)."""
        params = [r.params for r in rows]
        values = {
            "temperature": [p.temperature for p in params], "top_p": [p.top_p for p in params],
            "top_k": [p.top_k for p in params], "min_p": [p.min_p for p in params],
            "typical_p": [p.typical_p for p in params], "penalty": [p.repetition_penalty for p in params],
            "weight": [p.contrast_guidance for p in params], "min_new": [p.min_new_tokens for p in params],
            "ignore_eos": [p.ignore_eos for p in params],
        }
        for name, dtype, _ in _SETTINGS:
            pack.add(name, values[name], dtype)
        self.history.columns(pack, [r.seed for r in rows], [p.max_new_tokens for p in params])
        self.ngrams.columns(pack, [p.no_repeat_ngram_size for p in params])
        self.strings.columns(pack, [p.banned for p in params])
        self.topics.columns(pack, [topic_variants(self.lm.tokenizer, p.guide) for p in params],
                            [p.guide_start_bias for p in params], [p.guide_bias for p in params])

    def _extents(self) -> tuple[int, int]:
        """Rows and lines a step computes: as many as there are, or (graphs) their buckets."""
        rows, lines = len(self.members), self.lines
        if self.graphs is None or not rows:
            return rows, lines
        return bucket(rows), bucket(lines)

    def _index(self) -> None:
        """Host-known facts and index columns of the current rows and lines (after any change),
        padded to the extents a step computes with in-range indices."""
        params = [m.row.params for m in self.members]
        self.modes = Modes.of(params) if params else Modes()
        self.penalise = any(p.repetition_penalty != 1 for p in params)
        self.score = any(m.row.score for m in self.members)
        mains = set(self.main_line)
        negative = [j for j in range(len(self.line_row)) if j not in mains]
        self.follow = bool(negative)  # some row is guided away from its negative prompts
        #: No negative lines, and each row's line has the row's index (leaving rows can break
        #: that: rows and lines fill their holes each on their own).
        self.aligned = not negative and self.main_line == list(range(len(self.members)))
        #: Each row's negative lines, in line order: whose scores follow its own in its logprobs.
        self.follower_lines: dict[int, list[int]] = {}
        for line in negative:
            self.follower_lines.setdefault(self.line_row[line], []).append(line)
        rows, lines = self._extents()
        pack = Pack()
        pack.add("main_line", self.main_line + [0] * (rows - len(self.members)), torch.long)
        pack.add("live", [True] * len(self.members) + [False] * (rows - len(self.members)), torch.bool)
        pack.add("row", self.line_row + [0] * (lines - self.lines), torch.long)
        width = max((len(f) for f in self.follower_lines.values()), default=0)
        if self.follow:
            followers = [self.follower_lines.get(r, []) for r in range(rows)]
            pack.add("negatives", [x for f in followers for x in (*f, *[0] * (width - len(f)))], torch.long, (rows, width))
            pack.add("present", [j < len(f) for f in followers for j in range(width)], torch.bool, (rows, width))
        sent = pack.send(self.device)
        self.row_state.reserve(rows)
        self.line_state.reserve(lines)
        self.line_state.write({"row": sent.pop("row")})
        self.row_state.write(sent)
        #: Every row has exactly as many negatives as the column is wide: no mask needed.
        self.full_negatives = self.follow and all(
            len(self.follower_lines.get(r, [])) == self.row_state.width("negatives")[0] for r in range(len(self.members))
        ) and len(self.members) == rows

    # --- one step ---------------------------------------------------------------------------------

    @torch.inference_mode()
    def step(self) -> list[Finished]:
        """Sample one token for every row, let finished rows leave, run the model for the rest."""
        rows, lines = len(self.members), self.lines
        drawn = self._run("draw", self._draw)
        extent, _ = self._extents()
        read = drawn.read.tolist()  # the one read of the step
        values = [int(t) for t in read[:rows]]
        stuck = read[extent:extent + rows]
        scores = read[3 * extent:3 * extent + lines]
        again = [r for r in range(rows) if read[2 * extent + r]]
        if again:
            self._redraw(drawn, again, values, scores)
        self._run("commit", lambda: self._commit(drawn))
        return self._settle(drawn.tokens, values, self._codes(values, stuck), scores)

    def _run(self, part: str, work: Callable[[], T]) -> T:
        """``work`` eagerly, or (graphs) replayed over the buckets the rows and lines fill."""
        if self.graphs is None:
            return work()
        rows, lines = self._extents()
        key = (part, rows, lines, self.modes, self.penalise, self.topics.active, self.follow,
               self.full_negatives, self.aligned, self.score, self.ngrams.largest, len(self.strings.strings),
               self.typed, self.row_state.widths(), self.line_state.widths())
        buffer = self._buffer()
        assert buffer is not None
        generation = (self.row_state.version, self.line_state.version, self.strings.version, buffer.data_ptr())
        with self.row_state.showing(rows), self.line_state.showing(lines):
            return self.graphs.run(generation, key, work)

    def _draw(self) -> _Drawn:
        """The rules and the sampler over every row and line the step computes."""
        state, vocab = self.row_state, self.vocab
        if self.graphs is None:
            raw = self.logits
        else:
            buffer = self._buffer()
            assert buffer is not None
            raw = buffer[: self.line_state.extent]
        logits = raw
        lines_rows = self.line_state["row"]
        # The repetition penalty and topic bonuses are the row's, so its negative lines get them
        # too: guidance then weighs the controls alone (generation/decoding/contrast.py).
        if self.penalise:
            rp = state["penalty"][lines_rows][:, None]
            logits = torch.where(state["seen"][lines_rows], torch.where(logits > 0, logits / rp, logits * rp), logits)
        if self.topics.active:
            logits = logits + self.topics.bonuses(self.history, vocab)[lines_rows]
        if self.follow:
            main = guide(logits[state["main_line"]], logits, state["negatives"],
                         None if self.full_negatives else state["present"], state["weight"])
        elif self.aligned:  # line r is row r's own: a copy only if the raw logits are kept
            main = logits.clone() if logits is raw and self.score else logits
        else:
            main = logits[state["main_line"]]
        main.masked_fill_(self.invalid, float("-inf"))
        eos = self.table.eos_id
        if eos is not None:
            early = state["ignore_eos"] | (self.history.count < state["min_new"])
            main[:, eos].masked_fill_(early, float("-inf"))
        if self.ngrams.largest or self.strings.strings:
            ban = torch.zeros((main.shape[0], vocab + 1), dtype=torch.bool, device=self.device)
            self.ngrams.bans(self.history, ban)
            self.strings.bans(ban)
            main.masked_fill_(ban[:, :vocab], float("-inf"))
        stuck = torch.isinf(main).all(-1)  # everything banned: the row ends
        tokens, again = draw(main, state["temperature"], state["top_p"], state["top_k"], self.history.uniform(),
                             state["min_p"], state["typical_p"], self.modes)
        parts = [tokens.float(), stuck.float(), again.float()]
        logp = given = raw
        if self.score:
            logp = raw.log_softmax(-1)
            given = logp.gather(1, tokens[lines_rows][:, None]).squeeze(1)
            parts.append(self.line_state["score"] + given)
        return _Drawn(main, tokens, stuck, logp, given, torch.cat(parts))

    def _redraw(self, drawn: _Drawn, rows: list[int], values: list[int], scores: list[float]) -> None:
        """Draw ``rows`` again over the whole vocabulary (their cut fell past the candidates),
        and their lines' scores with the new tokens: a second read, on this step only."""
        state = self.row_state
        lines = [line for r in rows for line in (self.main_line[r], *self.follower_lines.get(r, []))]
        pack = Pack()
        pack.add("rows", rows, torch.long)
        pack.add("lines", lines, torch.long)
        sent = pack.send(self.device)
        index = sent["rows"]
        min_p = state["min_p"][index] if self.modes.any_min_p else None
        fixed = redraw(drawn.main[index], state["temperature"][index], state["top_p"][index], state["top_k"][index],
                       self.history.uniform()[index], min_p)
        drawn.tokens[index] = fixed
        parts = [fixed.float()]
        if self.score:
            at = sent["lines"]
            given = drawn.logp[at].gather(1, drawn.tokens[self.line_state["row"][at]][:, None]).squeeze(1)
            drawn.given[at] = given
            parts.append(self.line_state["score"][at] + given)
        read = torch.cat(parts).tolist()
        for r, token in zip(rows, read[:len(rows)], strict=True):
            values[r] = int(token)
        for line, score in zip(lines, read[len(rows):], strict=True) if self.score else ():
            scores[line] = score

    def _commit(self, drawn: _Drawn) -> None:
        """Write the step's tokens into the rules' state (and the lines' scores)."""
        state, tokens = self.row_state, drawn.tokens
        eos = self.table.eos_id
        ended = (tokens == eos) & ~state["ignore_eos"] if eos is not None else torch.zeros_like(drawn.stuck)
        added = ~(drawn.stuck | ended) & state["live"]  # padding rows never advance
        self.strings.advance(tokens)
        self.history.append(tokens, added)
        if self.penalise:
            seen, column = state["seen"], tokens[:, None]
            seen.scatter_(1, column, seen.gather(1, column) | added[:, None])
        if self.topics.active:
            self.topics.advance(self.history)
        if self.score:
            self.line_state["score"].add_(drawn.given)

    def _codes(self, values: list[int], stuck: list[float]) -> list[int]:
        """Each row's outcome: stuck, EOS, its last allowed token, or going on."""
        eos = self.table.eos_id
        codes = []
        for r, member in enumerate(self.members):
            params = member.row.params
            if stuck[r]:
                codes.append(_STUCK)
            elif eos is not None and values[r] == eos and not params.ignore_eos:
                codes.append(_EOS)
            elif len(member.generated) + 1 >= params.max_new_tokens:
                codes.append(_LENGTH)
            else:
                codes.append(_GOES_ON)
        return codes

    def _settle(self, tokens: torch.Tensor, values: list[int], codes: list[int],
                scores: list[float]) -> list[Finished]:
        """The host's side of a step: record tokens, let finished rows leave, step the rest."""
        finished: list[Finished] = []
        leaving: set[int] = set()
        self.started = [m.tag for m in self.members if not m.generated]
        self.stepped, self.written = len(self.members), 0
        for r, member in enumerate(self.members):
            code = codes[r]
            stop = member.row.params.stop
            text: str | None = None
            stopped = False
            if member.row.cancelled():
                code = _CANCELLED
            elif code not in (_EOS, _STUCK):
                member.generated.append(values[r])
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
            step_ids = rows_tokens[self.line_state["row"]][:, None]
            if rows:
                self._feed(rows, tags, step_ids)
            else:
                self.logits = self.stepper.step(step_ids, self._types())
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
            if self.members:
                self.logits = self.stepper.hold(self.logits[self._line_order_tensor])
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
        self.members = [self.members[old] for old in row_order]
        self.line_row = [new_row[self.line_row[old]] for old in line_order]
        self.main_line = [new_line[self.main_line[old]] for old in row_order]
        pack = Pack()
        pack.add("rows", row_order, torch.long)
        pack.add("lines", line_order, torch.long)
        sent = pack.send(self.device)
        self._row_order_tensor, self._line_order_tensor = sent["rows"], sent["lines"]
        self.row_state.take(sent["rows"], row_order)
        self.line_state.take(sent["lines"], line_order)
        if row_order:
            self.stepper.keep(line_order)  # the host's list: a device tensor would be read back
        self._index()
