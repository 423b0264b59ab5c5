"""Per-row state of a running batch, in buffers that keep their address while rows come and go.

Each per-row setting and rule state of ``generation/decoding/batch.py`` (a temperature, the tokens
written, an automaton's state, …) is a column of a :class:`Store`: one buffer with room for more
rows than are decoding. Rows join after the live ones and leave by the last ones moving into the
holes, both written in place, so a buffer's address only changes when the batch outgrows it.
That is what lets a CUDA graph recorded over the columns (``generation/decoding/stepgraph.py``)
replay step after step while requests join and leave, as vLLM's persistent input batch does.

Some columns have widths that depend on the rows (the longest tweet allowed, the banned strings,
the topics' spellings). A width only grows while rows decode; when the batch empties
(:meth:`Store.clear`) every width goes back to its start, while the buffers stay: the next
rows neither pay for a wide request that has gone nor move the buffers.

``extent`` is how many rows the columns show: the live rows when a step runs eagerly, the
graph's padded row count when it is recorded or replayed. Rows past the live ones hold the
values of rows that left (or the fill), which are valid settings, so the padded rows compute
harmlessly and nobody reads their results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

Fill = float | int | bool


@dataclass
class _Column:
    buffer: torch.Tensor  # capacity × physical widths
    fill: Fill
    start: tuple[int, ...]  # widths after clear()
    width: tuple[int, ...]  # the widths the rows use now (at most the buffer's)


def _within(width: Sequence[int]) -> tuple[slice, ...]:
    return (slice(None), *(slice(0, w) for w in width))


class Store:
    """Named per-row tensors with spare rows (see the module)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        #: Live rows.
        self.count = 0
        #: Rows the columns show (``count`` unless a graph pads them).
        self.extent = 0
        self.capacity = 0
        #: Bumped whenever a buffer is replaced: a graph recorded before reads freed memory.
        self.version = 0
        self._columns: dict[str, _Column] = {}
        #: Views handed out since the rows, widths or buffers last changed (a step asks each
        #: column several times).
        self._views: dict[str, torch.Tensor] = {}

    def declare(self, name: str, width: Sequence[int], dtype: torch.dtype, fill: Fill) -> None:
        """A column of rows × ``width``; rows start as (and spare rows are padded with) ``fill``."""
        start = tuple(width)
        buffer = torch.full((self.capacity, *start), fill, dtype=dtype, device=self.device)
        self._columns[name] = _Column(buffer, fill, start, start)

    def __getitem__(self, name: str) -> torch.Tensor:
        """The column's first ``extent`` rows at the width in use."""
        view = self._views.get(name)
        if view is None:
            column = self._columns[name]
            view = column.buffer[: self.extent]
            if column.width != tuple(column.buffer.shape[1:]):
                view = view[_within(column.width)]
            self._views[name] = view
        return view

    def width(self, name: str) -> tuple[int, ...]:
        return self._columns[name].width

    def widths(self) -> tuple[tuple[int, ...], ...]:
        """Every column's width in use: with ``extent``, the shapes a recorded graph fixes."""
        return tuple(column.width for column in self._columns.values())

    @contextlib.contextmanager
    def showing(self, rows: int) -> Iterator[None]:
        """Columns show ``rows`` rows (padding past the live ones) inside the block."""
        self.reserve(rows)
        self._show(rows)
        try:
            yield
        finally:
            self._show(self.count)

    def _show(self, rows: int) -> None:
        if rows != self.extent:
            self.extent = rows
            self._views.clear()

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` rows (doubling, so a growing batch moves its buffers rarely)."""
        if rows <= self.capacity:
            return
        capacity = max(rows, 2 * self.capacity, 8)
        for column in self._columns.values():
            bigger = column.buffer.new_full((capacity, *column.buffer.shape[1:]), column.fill)
            bigger[: self.capacity] = column.buffer
            column.buffer = bigger
        self.capacity = capacity
        self.version += 1
        self._views.clear()

    def append(self, count: int, values: dict[str, torch.Tensor]) -> None:
        """``count`` new rows after the live ones: the columns named get ``values`` (``count``
        × at most the width, narrower ones padded with the fill, wider ones widening the
        column for every row), the others their fill."""
        self.reserve(self.count + count)
        self.write(values, self.count)
        for name, column in self._columns.items():
            if name not in values:
                column.buffer[self.count:self.count + count][_within(column.width)].fill_(column.fill)
        self.count += count
        self._show(self.count)

    def write(self, values: dict[str, torch.Tensor], start: int = 0) -> None:
        """Overwrite rows ``start …`` of the columns named (up to the capacity: padding rows too)."""
        for name, value in values.items():
            self.widen(name, tuple(value.shape[1:]))
            column = self._columns[name]
            region = column.buffer[start:start + len(value)][_within(column.width)]
            if tuple(value.shape[1:]) == column.width:
                region.copy_(value)
            else:
                region.fill_(column.fill)
                region[_within(value.shape[1:])] = value

    def take(self, order: torch.Tensor, host_order: Sequence[int]) -> None:
        """Keep rows ``order`` (old indices: on the device, and ``host_order`` here) as the new
        rows 0, 1, …; rows that keep their place are not copied at all."""
        count = len(host_order)
        if list(host_order) != list(range(count)):
            for column in self._columns.values():
                column.buffer[:count] = column.buffer[order]
        self.count = count
        self._show(count)

    def clear(self) -> None:
        """No rows; every width back to its start, every value to its fill, buffers kept."""
        for column in self._columns.values():
            column.buffer.fill_(column.fill)
            column.width = column.start
        self.count = 0
        self.extent = 0
        self._views.clear()

    def widen(self, name: str, width: tuple[int, ...]) -> None:
        """Widen ``name`` to hold ``width`` (the buffer too when it is narrower)."""
        column = self._columns[name]
        wanted = tuple(max(a, b) for a, b in zip(column.width, width, strict=True))
        if wanted == column.width:
            return
        physical = tuple(column.buffer.shape[1:])
        if any(w > p for w, p in zip(wanted, physical, strict=True)):
            grown = tuple(max(w, p) for w, p in zip(wanted, physical, strict=True))
            bigger = column.buffer.new_full((self.capacity, *grown), column.fill)
            bigger[_within(physical)] = column.buffer
            column.buffer = bigger
            self.version += 1
        self._views.pop(name, None)
        # What the new width uncovers held rows gone (or the fill): every row gets the fill.
        for dim, (old, new) in enumerate(zip(column.width, wanted, strict=True)):
            if new > old:
                index: list[slice] = [slice(None)] * (len(wanted) + 1)
                index[dim + 1] = slice(old, new)
                column.buffer[tuple(index)].fill_(column.fill)
        column.width = wanted
