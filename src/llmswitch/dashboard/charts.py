"""Charts as inline SVG, drawn on the server (no script, no external file). Every chart comes
with its numbers as an HTML table on the page; the SVG carries them in `<title>` tooltips."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from llmswitch.dashboard.html import Markup, h

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
           "#8c8c8c", "#ccb974", "#64b5cd")


def color(i: int) -> str:
    """The i-th series colour."""
    return PALETTE[i % len(PALETTE)]


def swatch(i: int) -> Markup:
    """A small square of the i-th series colour, for legends and tables."""
    return h("svg", {"class": "swatch", "width": 10, "height": 10, "viewBox": "0 0 10 10",
                     "aria-hidden": "true"},
             h("rect", {"width": 10, "height": 10, "fill": color(i)}))


def _label(ts: float, size: int) -> str:
    fmt = "%m-%d %H:00" if size < 86400 else "%Y-%m-%d"
    return datetime.fromtimestamp(ts, UTC).strftime(fmt)


def stacked_bars(buckets: Sequence[float], bucket_s: int, groups: Mapping[str, Sequence[float]],
                 title: str, width: int = 800, height: int = 260) -> Markup:
    """Stacked columns: one per time bucket, one colour per group (cost in USD)."""
    left, bottom, top = 70.0, 40.0, 12.0
    plot_w, plot_h = width - left - 10, height - bottom - top
    n = max(1, len(buckets))
    stacks = [sum(series[i] for series in groups.values()) for i in range(len(buckets))]
    peak = max(stacks, default=0.0) or 1.0
    col = plot_w / n
    bars: list[Markup] = []
    for i, start in enumerate(buckets):
        y = top + plot_h
        for gi, (name, series) in enumerate(groups.items()):
            value = series[i]
            if value <= 0:
                continue
            bar_h = value / peak * plot_h
            y -= bar_h
            bars.append(h("rect", {"x": f"{left + i * col + col * 0.1:.2f}", "y": f"{y:.2f}",
                                   "width": f"{max(col * 0.8, 0.5):.2f}",
                                   "height": f"{max(bar_h, 0.5):.2f}", "fill": color(gi)},
                          h("title", None, f"{_label(start, bucket_s)} {name}: "
                                           f"${value:.6f}")))
    ticks = []
    for k in range(5):
        value = peak * k / 4
        y = top + plot_h - plot_h * k / 4
        ticks.append(h("line", {"x1": left, "x2": width - 10, "y1": f"{y:.1f}",
                                "y2": f"{y:.1f}", "class": "grid"}))
        ticks.append(h("text", {"x": left - 6, "y": f"{y + 4:.1f}", "text-anchor": "end",
                                "class": "tick"}, f"${value:.4g}"))
    step = max(1, n // 6)
    labels = [h("text", {"x": f"{left + (i + 0.5) * col:.1f}", "y": height - bottom + 16,
                         "text-anchor": "middle", "class": "tick"}, _label(t, bucket_s))
              for i, t in enumerate(buckets) if i % step == 0]
    return h("svg", {"class": "chart", "viewBox": f"0 0 {width} {height}", "role": "img",
                     "aria-label": title, "preserveAspectRatio": "xMidYMid meet"},
             h("title", None, title), ticks, bars, labels)


def hbars(rows: Sequence[tuple[str, Sequence[float]]], series: Sequence[str], title: str,
          fmt: str = "${:.6f}", width: int = 800) -> Markup:
    """Horizontal bars: one row per label, one bar per series side by side."""
    if not rows:
        return Markup("")
    bar_h, gap, left = 14.0, 10.0, 220.0
    per_row = bar_h * len(series) + gap
    height = per_row * len(rows) + 10
    peak = max((v for _, values in rows for v in values), default=0.0) or 1.0
    shapes: list[Markup] = []
    for r, (label, values) in enumerate(rows):
        y0 = 5 + r * per_row
        shapes.append(h("text", {"x": left - 8, "y": y0 + bar_h * len(series) / 2 + 4,
                                 "text-anchor": "end", "class": "tick"}, label[:32]))
        for s, value in enumerate(values):
            w = max(value / peak * (width - left - 120), 0.5 if value > 0 else 0)
            y = y0 + s * bar_h
            shapes.append(h("rect", {"x": left, "y": y, "width": f"{w:.2f}",
                                     "height": bar_h - 2, "fill": color(s)},
                            h("title", None, f"{label} {series[s]}: {fmt.format(value)}")))
            shapes.append(h("text", {"x": f"{left + w + 4:.2f}", "y": y + bar_h - 4,
                                     "class": "tick"}, fmt.format(value)))
    return h("svg", {"class": "chart", "viewBox": f"0 0 {width} {height}", "role": "img",
                     "aria-label": title}, h("title", None, title), shapes)


def legend(names: Sequence[str]) -> Markup:
    """The colour key of a chart."""
    return h("ul", {"class": "legend"},
             [h("li", None, swatch(i), " ", name) for i, name in enumerate(names)])
