"""Bar charts as plain numbers for an inline-SVG template: no JavaScript, no front-end build."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    baseline: float


def bar_chart(
    items: Sequence[tuple[str, float | None]],
    *,
    width: int = 640,
    height: int = 180,
    percent: bool = False,
) -> Chart:
    """Vertical bars scaled to the largest value (to 1.0 for rates), leaving room for labels.

    A value of None (a rate with nothing to divide) draws no bar and reads "—".
    """
    top, bottom = 18.0, 28.0
    plot = height - top - bottom
    peak = 1.0 if percent else max((v or 0 for _, v in items), default=0) or 1
    slot = width / max(len(items), 1)
    bars = []
    for index, (label, value) in enumerate(items):
        size = plot * ((value or 0) / peak)
        text = "—" if value is None else f"{value:.0%}" if percent else f"{value:g}"
        bars.append(
            Bar(
                label=label or "—",
                value=value or 0,
                text=text,
                x=index * slot + slot * 0.15,
                y=top + plot - size,
                width=slot * 0.7,
                height=size,
            )
        )
    return Chart(width=width, height=height, bars=bars, baseline=top + plot)
