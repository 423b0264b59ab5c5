"""Recording CUDA graphs safely in a process that runs several models, one thread each.

A CUDA graph records a fixed sequence of kernels once and replays it with one launch, which is
what makes a decoding step of a small model cheap on a GPU (``generation/decoding/cudagraph.py``
records the forward, ``generation/decoding/stepgraph.py`` the rules and the sampler). Recording
has rules of its own, and this module is where they are kept:

- **One recording at a time in the process** (:data:`CAPTURE_LOCK`). ``politico serve`` and the
  bot run one engine thread per model, and the registry loads models on helper threads. The
  lock is also taken by a CUDA model load (``generation/registry.py``), so no weights are being
  copied while another thread records.
- **Errors stay with the recording thread** (``capture_error_mode="thread_local"``): in the
  default global mode another thread's allocation or host read during a recording fails it,
  or fails that thread with "operation not permitted when stream is capturing".
- **Its own stream per recorder**: each model's recorder warms up and records on one side stream
  made once (not one per recording), so two models never record on the process-wide default
  capture stream, and the work it records waits only for the caller's stream.
- **The warm-up runs on the capture stream itself**, so cuBLAS allocates that stream's
  workspace outside the graph's memory pool. A workspace allocated during the first recording
  lives in the pool and keeps it in use after the graphs are dropped.
- **A fresh pool after the graphs are dropped** (:meth:`CudaRecorder.reset`): when the KV cache
  moves, every graph that points into it is dropped, and the next recording must not reuse the
  old pool handle. Reusing a handle whose memory is still held is what fails with
  ``use_count > 0 INTERNAL ASSERT FAILED``.

None of this has run on a GPU yet: the rules above come from reading torch's graph code and
the CUDA programming guide, and ``politico gpu-check`` (``generation/measuring/gpucheck.py``) is
the check that will prove them. The CPU tests drive the same callers through an emulated
recorder (``tests/support/graphs.py``) that keeps static buffers and refuses host reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import torch

T = TypeVar("T")

#: Held while any graph in this process is recorded, and while a model is moved to a GPU.
CAPTURE_LOCK = threading.RLock()


class Graph(Protocol):
    def replay(self) -> None: ...


class Recorder(Protocol):
    """Records work as a graph that replays it with the same tensors (addresses and shapes)."""

    #: Graphs recorded so far.
    recorded: int

    def capture(self, work: Callable[[], T]) -> tuple[Graph, T, T]:
        """Run ``work`` once for real, then record it without running it again.

        Returns the graph, what the real run returned and the graph's own outputs (what every
        replay rewrites). The real run is the caller's: a step's answer when a graph is made on
        first use, a warm-up over inert inputs when graphs are made ahead of use.
        """
        ...

    def reset(self) -> None:
        """Forget the memory pool: the graphs recorded so far are being dropped."""
        ...


class CudaRecorder:
    """:class:`Recorder` for one model's graphs on one CUDA device (see the module's rules).

    ``cuda`` is ``torch.cuda``; the CPU tests hand in a stand-in to check the order of calls.
    """

    def __init__(self, device: torch.device, cuda: Any = torch.cuda) -> None:
        self.device = device
        self.cuda = cuda
        self.stream = cuda.Stream(device)
        self.pool: Any = None
        #: Graphs recorded by this recorder (``politico gpu-check`` reports it).
        self.recorded = 0

    def capture(self, work: Callable[[], T]) -> tuple[Graph, T, T]:
        cuda = self.cuda
        caller = cuda.current_stream(self.device)
        with CAPTURE_LOCK:
            self.stream.wait_stream(caller)
            with cuda.stream(self.stream):
                now = work()
                if self.pool is None:
                    self.pool = cuda.graph_pool_handle()
                graph = cuda.CUDAGraph()
                graph.capture_begin(pool=self.pool, capture_error_mode="thread_local")
                try:
                    recorded = work()
                finally:
                    graph.capture_end()
            caller.wait_stream(self.stream)
            self.recorded += 1
        return graph, now, recorded

    def reset(self) -> None:
        self.pool = None


def recorder_for(device: torch.device, enabled: bool) -> Recorder | None:
    """A CUDA recorder where graphs are wanted and the device is a GPU; None steps eagerly."""
    return CudaRecorder(device) if enabled and device.type == "cuda" else None
