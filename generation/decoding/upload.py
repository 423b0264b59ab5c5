"""Host values to the device in one copy per dtype, from pinned memory, without waiting.

``torch.tensor(values, device="cuda")`` copies from pageable memory: the host waits for the copy,
and the copy waits for the work already queued on the stream, so a join that builds thirty such
tensors after queueing a forward waits thirty times, the first time for the forward itself. A
:class:`Pack` gathers every value a join or a leave sends (settings, seeds' draws, prompts, index
lists) into one host tensor per dtype, pinned on a GPU, and sends each with one copy that does
not block the host. The pinned block is handed back to torch's host allocator, which keeps it
until the copy has run. On the CPU there is no copy: the views are of the host tensor itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


@dataclass
class _Part:
    name: str
    shape: tuple[int, ...]
    #: Where the part's values sit: in the group's list of Python values, or its tensors.
    listed: bool
    index: int


@dataclass
class _Group:
    values: list[float | int | bool] = field(default_factory=list)
    tensors: list[torch.Tensor] = field(default_factory=list)
    parts: list[_Part] = field(default_factory=list)


class Pack:
    """Named values of a few dtypes, sent to a device together (see the module)."""

    def __init__(self) -> None:
        self._groups: dict[torch.dtype, _Group] = {}

    def add(self, name: str, values: Sequence[float | int | bool] | torch.Tensor, dtype: torch.dtype,
            shape: Sequence[int] | None = None) -> None:
        """``values`` (a flat list, or a host tensor) to arrive as ``name``, shaped ``shape``
        (default: as given, a flat list as one dimension)."""
        group = self._groups.setdefault(dtype, _Group())
        if isinstance(values, torch.Tensor):
            size = tuple(values.shape) if shape is None else tuple(shape)
            group.parts.append(_Part(name, size, False, len(group.tensors)))
            group.tensors.append(values.reshape(-1))
        else:
            size = (len(values),) if shape is None else tuple(shape)
            group.parts.append(_Part(name, size, True, len(group.values)))
            group.values.extend(values)

    def send(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Every value on ``device``: one copy per dtype, none waited for."""
        out: dict[str, torch.Tensor] = {}
        pinned = device.type == "cuda"
        for dtype, group in self._groups.items():
            listed = torch.tensor(group.values, dtype=dtype)
            host = torch.cat([listed, *(t.to(dtype) for t in group.tensors)]) if group.tensors else listed
            if pinned:
                host = host.pin_memory()
            sent = host.to(device, non_blocking=True) if host.device != device else host
            offsets = [len(group.values)]
            for t in group.tensors:
                offsets.append(offsets[-1] + t.numel())
            for part in group.parts:
                start = part.index if part.listed else offsets[part.index]
                out[part.name] = sent[start:start + math.prod(part.shape)].view(part.shape)
        self._groups.clear()
        return out
