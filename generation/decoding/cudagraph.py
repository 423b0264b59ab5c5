"""The lean decoding step replayed as CUDA graphs, one per batch-size bucket.

On a GPU a decoding step of a small model is a few hundred tiny kernels, and launching them from
Python costs more than running them: the step is bound by the CPU, not the GPU. A CUDA graph
records the step's kernels once and replays them with one launch. A graph fixes every shape and
address, so the step it records is ``GPT2Stepper.static_step``: the lines padded up to a bucket
(8, 16, 32, … rows), attention over every cached position, inputs copied into buffers the graph
owns, padding rows that do not advance. A new bucket is recorded the first time a batch of that
size steps; growing the cache (more line slots or positions) drops the recorded graphs, since
their addresses are gone. Elsewhere (CPU) the same padded step runs eagerly, which is how the
tests check it computes what the plain step does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

#: The smallest bucket: below it a graph per size would cost more memory than it saves.
SMALLEST = 8


class StaticStepper(Protocol):
    cache: list[torch.Tensor]
    lengths: torch.Tensor
    host_lengths: list[int]
    lines: int
    device: torch.device

    def static_step(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                    active: torch.Tensor) -> torch.Tensor: ...

    def _reserve(self, lines: int, positions: int) -> None: ...


def bucket(lines: int) -> int:
    """The padded batch size ``lines`` rows step at: the next power of two, at least 8."""
    return max(SMALLEST, 1 << (lines - 1).bit_length())


@dataclass
class _Recorded:
    graph: Any  # torch.cuda.CUDAGraph (None when stepping eagerly)
    ids: torch.Tensor
    types: torch.Tensor | None
    active: torch.Tensor
    out: torch.Tensor | None


class StaticSteps:
    """Steps a ``GPT2Stepper`` through ``static_step``, recorded as CUDA graphs when ``record``."""

    def __init__(self, stepper: StaticStepper, record: bool) -> None:
        self.stepper = stepper
        self.record = record
        self.recorded: dict[tuple[int, bool], _Recorded] = {}
        self.addresses: tuple[int, ...] = ()
        self.pool: Any = None

    def step(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        stepper = self.stepper
        lines = stepper.lines
        size = bucket(lines)
        stepper._reserve(size, 0)
        addresses = (stepper.lengths.data_ptr(), *(kv.data_ptr() for kv in stepper.cache))
        if addresses != self.addresses:  # the cache moved: recorded graphs point at freed memory
            self.recorded.clear()
            self.addresses = addresses
        key = (size, token_type_ids is not None)
        entry = self.recorded.get(key)
        if entry is None:
            entry = self.recorded[key] = self._prepare(size, token_type_ids is not None)
        entry.ids[:lines].copy_(input_ids)
        entry.ids[lines:].zero_()
        if entry.types is not None and token_type_ids is not None:
            entry.types[:lines].copy_(token_type_ids)
        entry.active[:lines] = 1
        entry.active[lines:] = 0
        if entry.graph is not None:
            entry.graph.replay()
            out = entry.out
        else:
            out = stepper.static_step(entry.ids, entry.types, entry.active)
        stepper.host_lengths = [n + 1 for n in stepper.host_lengths]
        assert out is not None
        return out[:lines]

    def _prepare(self, size: int, typed: bool) -> _Recorded:
        device = self.stepper.device
        ids = torch.zeros((size, 1), dtype=torch.long, device=device)
        types = torch.zeros((size, 1), dtype=torch.long, device=device) if typed else None
        active = torch.zeros(size, dtype=torch.long, device=device)
        if not self.record:
            return _Recorded(None, ids, types, active, None)
        # A warm-up on a side stream, then the recording, both with every row inactive: the
        # keys they write land where the rows' next real tokens will be written anyway.
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            self.stepper.static_step(ids, types, active)
        torch.cuda.current_stream(device).wait_stream(side)
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            out = self.stepper.static_step(ids, types, active)
        return _Recorded(graph, ids, types, active, out)
