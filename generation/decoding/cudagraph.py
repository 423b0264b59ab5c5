"""The lean decoding step replayed as CUDA graphs, one per bucket of lines and of positions.

On a GPU a decoding step of a small model is a few hundred tiny kernels, and launching them from
Python costs more than running them: the step is bound by the CPU, not the GPU. A CUDA graph
records the step's kernels once and replays them with one launch. A graph fixes every shape and
address, so the step it records is ``GPT2Stepper.static_step``: the lines padded up to a bucket
(8, 16, 32, … rows), attention over a bucket of positions (32, 64, 128, …: the longest line's,
so one long request does not slow every later step once it has gone), inputs copied into
buffers the graph owns, padding rows that do not advance, and the logits written into one
buffer (``logits``) that the batch reads and that every step overwrites.

Graphs are made ahead of use (:meth:`StaticSteps.prepare`, at load, for every bucket up to the
engine's batch and a tweet's span) and otherwise the first time a bucket steps. The KV cache
moves when it grows (more line slots or positions): every graph then points at freed memory, so
all are dropped and the recorder starts a fresh memory pool (``generation/decoding/capture.py``).
Elsewhere (CPU) the same padded step runs eagerly, which is how the tests check it computes
what the plain step does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from generation.decoding.capture import Graph, Recorder

#: The smallest bucket of lines: below it a graph per size would cost more memory than it saves.
SMALLEST = 8
#: The shortest span of positions attended over (a tweet's prompt alone is about 20-40 tokens).
SHORTEST_SPAN = 32


class StaticStepper(Protocol):
    cache: list[torch.Tensor]
    lengths: torch.Tensor
    host_lengths: list[int]
    lines: int
    device: torch.device
    max_positions: int
    vocab: int

    def static_step(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                    active: torch.Tensor, span: int, out: torch.Tensor) -> None: ...

    def _reserve(self, lines: int, positions: int) -> None: ...


def bucket(lines: int) -> int:
    """The padded batch size ``lines`` rows step at: the next power of two, at least 8."""
    return max(SMALLEST, 1 << (lines - 1).bit_length())


def span_bucket(positions: int, limit: int) -> int:
    """The span ``positions`` positions are attended at: the next power of two, at least
    ``SHORTEST_SPAN``, never past the model's ``limit`` (nor below ``positions``)."""
    return max(min(max(SHORTEST_SPAN, 1 << (positions - 1).bit_length()), limit), positions)


@dataclass
class _Inputs:
    """What a bucket's graphs read besides the cache: the step's tokens, types and which rows
    are real."""

    ids: torch.Tensor
    types: torch.Tensor | None
    active: torch.Tensor


class StaticSteps:
    """Steps a ``GPT2Stepper`` through ``static_step``, recorded as graphs with a recorder.

    It holds no reference to the stepper (each call is handed it), so a stepper and its graphs
    are freed by reference counting the moment the batch lets go, not by the cycle collector.
    """

    def __init__(self, recorder: Recorder | None) -> None:
        self.recorder = recorder
        self.graphs: dict[tuple[int, int, bool], Graph] = {}
        self.inputs: dict[tuple[int, bool], _Inputs] = {}
        self.addresses: tuple[int, ...] = ()
        #: Line slots × vocabulary, float32: every step's logits, read by the batch (valid until
        #: the next step). It keeps its address while the cache does.
        self.logits: torch.Tensor | None = None
        #: Bumped whenever the graphs are dropped (the cache or ``logits`` moved).
        self.version = 0

    def step(self, stepper: StaticStepper, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        lines = stepper.lines
        size, span = bucket(lines), span_bucket(max(stepper.host_lengths) + 1, stepper.max_positions)
        inputs = self._ready(stepper, size, span, token_type_ids is not None)
        inputs.ids[:lines].copy_(input_ids)
        inputs.ids[lines:].zero_()
        if inputs.types is not None and token_type_ids is not None:
            inputs.types[:lines].copy_(token_type_ids)
        inputs.active[:lines].fill_(1)
        inputs.active[lines:].zero_()
        self._run(stepper, size, span, inputs)
        stepper.host_lengths = [n + 1 for n in stepper.host_lengths]
        assert self.logits is not None
        return self.logits[:lines]

    def prepare(self, stepper: StaticStepper, lines: int, positions: int, typed: bool) -> int:
        """Record every bucket up to ``lines`` lines and ``positions`` positions now, before any
        line decodes (the warm-up steps are inert: no row is active and every slot is free).
        Returns how many graphs were recorded."""
        if stepper.lines:
            raise RuntimeError("graphs are prepared before any line decodes")
        top = span_bucket(positions, stepper.max_positions)
        spans = sorted({span_bucket(1 << p, stepper.max_positions) for p in range(top.bit_length())} | {top})
        sizes = [s for s in (SMALLEST << i for i in range(16)) if s <= bucket(lines)]
        stepper._reserve(sizes[-1], top)  # the largest first: growing later would drop the rest
        made = 0
        for size in sizes:
            for span in (s for s in spans if s <= top):
                inputs = self._ready(stepper, size, span, typed)
                for tensor in (inputs.ids, inputs.types, inputs.active):
                    if tensor is not None:
                        tensor.zero_()
                if (size, span, typed) not in self.graphs:
                    self._run(stepper, size, span, inputs)
                    made += 1
        return made

    def hold(self, stepper: StaticStepper, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (one row per line) copied where the graphed steps write theirs: the batch
        reads every step's logits from one place."""
        self._track(stepper)
        assert self.logits is not None
        self.logits[: len(logits)].copy_(logits)
        return self.logits[: len(logits)]

    def _ready(self, stepper: StaticStepper, size: int, span: int, typed: bool) -> _Inputs:
        """Room in the cache for the bucket, graphs that still point at it, and its inputs."""
        stepper._reserve(size, span)
        self._track(stepper)
        inputs = self.inputs.get((size, typed))
        if inputs is None:
            device = stepper.device
            ids = torch.zeros((size, 1), dtype=torch.long, device=device)
            types = torch.zeros((size, 1), dtype=torch.long, device=device) if typed else None
            active = torch.zeros(size, dtype=torch.long, device=device)
            inputs = self.inputs[(size, typed)] = _Inputs(ids, types, active)
        return inputs

    def _track(self, stepper: StaticStepper) -> None:
        """Drop every graph, and start a fresh pool, when the cache has moved since they were
        recorded; the logits buffer follows the cache's line slots."""
        slots = stepper.cache[0].shape[1] if stepper.cache else 0
        if self.logits is None or self.logits.shape[0] != slots:
            self.logits = torch.zeros((slots, stepper.vocab), dtype=torch.float32, device=stepper.device)
        addresses = (stepper.lengths.data_ptr(), self.logits.data_ptr(), *(kv.data_ptr() for kv in stepper.cache))
        if addresses != self.addresses:
            self.graphs.clear()
            if self.recorder is not None:
                self.recorder.reset()
            self.addresses = addresses
            self.version += 1

    def _run(self, stepper: StaticStepper, size: int, span: int, inputs: _Inputs) -> None:
        """One padded step: replayed, recorded now (with a real run first), or eager."""
        assert self.logits is not None
        key = (size, span, inputs.types is not None)
        graph = self.graphs.get(key)
        if graph is not None:
            graph.replay()
            return
        out = self.logits[:size]

        def work() -> None:
            stepper.static_step(inputs.ids, inputs.types, inputs.active, span, out)

        if self.recorder is None:
            work()
        else:
            self.graphs[key], _, _ = self.recorder.capture(work)
