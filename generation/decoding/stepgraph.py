"""A batch's per-step tensor work replayed as CUDA graphs: the rules, the sampler, the commit.

The forward is one graph per bucket (``generation/decoding/cudagraph.py``); around it a step of
``generation/decoding/batch.py`` runs about two hundred small kernels of its own (penalty, topic
bonuses, contrast guidance, bans, the sampler, then writing the tokens into the rules' state),
which cost the host 2-3 ms a step to launch one by one, against about 0.1 ms for the demo
model's graphed forward. They read nothing back and their state lives in buffers that keep
their address (``generation/decoding/store.py``), so each part is recorded too, once per
*key*: the padded row and line counts, the rules in play and every column's width. A bot's
requests share their settings, so a few keys cover its traffic.

A key is recorded the first time it steps: that step runs for real (the recorder's warm-up),
then the kernels are recorded, and the step's answer is copied into the graph's outputs, where
every later replay writes. When any buffer the graphs read moves (``generation``: the stores'
and tables' versions), every graph is dropped, with its memory pool.

Elsewhere (no recorder: the CPU, or ``cuda_graphs = false``) the same work runs eagerly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import torch

from generation.decoding.capture import Graph, Recorder

T = TypeVar("T")


def _copy_into(target: Any, source: Any) -> None:
    """Copy every tensor of ``source`` into the same place of ``target`` (tuples, dataclasses)."""
    if isinstance(target, torch.Tensor):
        target.copy_(source)
    elif isinstance(target, tuple | list):
        for t, s in zip(target, source, strict=True):
            _copy_into(t, s)
    elif dataclasses.is_dataclass(target):
        for f in dataclasses.fields(target):
            _copy_into(getattr(target, f.name), getattr(source, f.name))


class StepGraphs:
    """Records and replays work by key (see the module)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._graphs: dict[Hashable, tuple[Graph, Any]] = {}
        self._generation: Hashable = None

    def __len__(self) -> int:
        return len(self._graphs)

    def run(self, generation: Hashable, key: Hashable, work: Callable[[], T]) -> T:
        """``work()``'s answer: replayed when ``key`` was recorded over the buffers of
        ``generation``, else run and recorded now."""
        if generation != self._generation:
            self.drop()
            self._generation = generation
        entry = self._graphs.get(key)
        if entry is not None:
            graph, outputs = entry
            graph.replay()
            return outputs  # type: ignore[no-any-return]
        graph, now, outputs = self.recorder.capture(work)
        _copy_into(outputs, now)
        self._graphs[key] = (graph, outputs)
        return outputs

    def drop(self) -> None:
        """Forget every graph (their buffers moved) and start a fresh memory pool."""
        self._graphs.clear()
        self.recorder.reset()
