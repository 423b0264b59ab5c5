"""CUDA graph recording emulated on the CPU, holding the graphed path to a graph's rules.

A recorded graph replays the same kernels on the same memory: whatever the recorded work read
from a tensor it reads from that tensor's address again, and it cannot read the device back,
create a tensor from host values or change shape. :class:`EmulatedRecorder` keeps those
promises in the open: it records a work by keeping it, replays it by running it again, copies
the answer into the outputs fixed at recording (so callers must read them, as they must read a
graph's), and fails any host read or host-made tensor inside the work, as capturing it would.
It counts recordings and memory pools, so tests can see when graphs are dropped and a fresh
pool begins.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from generation.decoding.stepgraph import _copy_into

T = TypeVar("T")

#: What a CUDA graph cannot record: reading a value back, shapes that depend on values, a
#: tensor made from host data (a copy from host memory baked into the graph).
FORBIDDEN = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "lift_fresh", "item"}


class NoHostReads(TorchDispatchMode):
    """Fails the first operation a graph could not record."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = str(func.overloadpacket).removeprefix("aten.")
        if name in FORBIDDEN:
            raise AssertionError(f"a recorded step ran {name}: a CUDA graph cannot record it")
        return func(*args, **(kwargs or {}))


def _clone(value: Any) -> Any:
    """Outputs of the same shapes at addresses of their own (a graph's outputs)."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_clone(v) for v in value))
    if isinstance(value, tuple | list):
        return type(value)(_clone(v) for v in value)
    return value


_recording = threading.local()
_tolist = torch.Tensor.tolist


def _refusing_tolist(self: torch.Tensor) -> Any:
    if getattr(_recording, "active", False):
        raise AssertionError("a recorded step read the device back (tolist)")
    return _tolist(self)


def _guarded(work: Callable[[], T]) -> T:
    """``work()`` with this thread's host reads refused (other threads are not recording)."""
    torch.Tensor.tolist = _refusing_tolist  # type: ignore[method-assign]
    _recording.active = True
    try:
        with NoHostReads():
            return work()
    finally:
        _recording.active = False


class EmulatedGraph:
    def __init__(self, work: Callable[[], Any], outputs: Any) -> None:
        self.work = work
        self.outputs = outputs
        self.replays = 0

    def replay(self) -> None:
        _copy_into(self.outputs, _guarded(self.work))
        self.replays += 1


class EmulatedRecorder:
    """A ``Recorder`` for the CPU (see the module)."""

    def __init__(self) -> None:
        self.pool: object | None = None
        self.pools = 0
        self.resets = 0
        self.graphs: list[EmulatedGraph] = []

    def capture(self, work: Callable[[], T]) -> tuple[EmulatedGraph, T, T]:
        if self.pool is None:
            self.pool = object()
            self.pools += 1
        now = _guarded(work)
        graph = EmulatedGraph(work, _clone(now))
        self.graphs.append(graph)
        return graph, now, graph.outputs

    def reset(self) -> None:
        self.pool = None
        self.resets += 1

    @property
    def recorded(self) -> int:
        return len(self.graphs)

    @property
    def replays(self) -> int:
        return sum(g.replays for g in self.graphs)
