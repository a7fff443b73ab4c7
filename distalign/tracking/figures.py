"""The figure logged with each cell run: its TV histogram, written as SVG text (no plotting library)."""

from __future__ import annotations

import math

import numpy as np


def nice_ticks(top: float, most: int = 6) -> list[float]:
    """Whole-number ticks from 0 at a step of 1, 2, 2.5 or 5 times a power of ten, at most ``most`` of
    them, the last at or above ``top`` (the count axis of a histogram)."""
    top = max(float(top), 1.0)
    raw = top / (most - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    steps = (1, 2, 2.5, 5, 10) if power >= 10 else (1, 2, 5, 10)  # 2.5 is no whole step below 10
    step = max(1.0, next(m * power for m in steps if m * power >= raw))
    return [i * step for i in range(int(math.ceil(top / step - 1e-9)) + 1)]


#: the per-cell histogram's canvas and plot area, in SVG user units (pixels)
_W, _H = 500, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 485, 14, 268


def tv_histogram_svg(tv: np.ndarray, bins: int = 20) -> str:
    """The distribution of a cell's item x group TV distances, as an SVG document.

    Drawn once per cell of every sweep, so it is written as text (well under a millisecond) instead of
    rendered by matplotlib (about a tenth of a second per figure, the largest part of logging a cell).
    The MLflow UI shows SVG artifacts as images, and they stay sharp at any zoom.
    """
    tv = np.asarray(tv, dtype=float)
    tv = tv[np.isfinite(tv)]
    counts, edges = np.histogram(tv, bins=bins, range=(0, 1))
    ticks = nice_ticks(int(counts.max(initial=0)))
    top = float(ticks[-1])
    width, height = _RIGHT - _LEFT, _BOTTOM - _TOP

    def x(v: float) -> float:
        return _LEFT + v * width

    def y(v: float) -> float:
        return _BOTTOM - v / top * height

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        '<g class="bars" fill="#4C72B0">',
    ]
    for c, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True):
        if c:
            out.append(
                f'<rect x="{x(lo):.2f}" y="{y(c):.2f}" width="{x(hi) - x(lo):.2f}" '
                f'height="{_BOTTOM - y(c):.2f}" data-count="{int(c)}"/>'
            )
    out.append("</g>")
    out.append('<g class="axes" stroke="black" stroke-width="1">')
    out.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{width}" height="{height}" fill="none"/>')
    for v in np.linspace(0, 1, 6):
        out.append(f'<line x1="{x(v):.2f}" y1="{_BOTTOM}" x2="{x(v):.2f}" y2="{_BOTTOM + 4}"/>')
    for v in ticks:
        out.append(f'<line x1="{_LEFT - 4}" y1="{y(v):.2f}" x2="{_LEFT}" y2="{y(v):.2f}"/>')
    out.append("</g>")
    out.append('<g class="labels" fill="black">')
    for v in np.linspace(0, 1, 6):
        out.append(f'<text x="{x(v):.2f}" y="{_BOTTOM + 16}" text-anchor="middle">{v:.1f}</text>')
    for v in ticks:
        out.append(f'<text x="{_LEFT - 7}" y="{y(v) + 4:.2f}" text-anchor="end">{int(v)}</text>')
    out.append(
        f'<text x="{_LEFT + width / 2:.1f}" y="{_H - 12}" text-anchor="middle" font-size="12">'
        "total variation (item x group)</text>"
    )
    out.append(
        f'<text transform="translate(16 {_TOP + height / 2:.1f}) rotate(-90)" text-anchor="middle" '
        'font-size="12">count</text>'
    )
    out.append("</g>")
    if len(tv):
        mean = float(np.mean(tv))
        out.append(
            f'<line class="mean" x1="{x(mean):.2f}" y1="{_TOP}" x2="{x(mean):.2f}" y2="{_BOTTOM}" '
            f'stroke="black" stroke-dasharray="6 3" data-mean="{mean!r}"/>'
        )
        out.append(f'<text x="{_RIGHT - 8}" y="{_TOP + 18}" text-anchor="end">- - mean {mean:.3f}</text>')
    else:
        out.append(
            f'<text x="{_LEFT + width / 2:.1f}" y="{_TOP + height / 2:.1f}" text-anchor="middle">'
            "no scored rows</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
