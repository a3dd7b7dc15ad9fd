"""Charts as inline SVG drawn on the server: no script, no external library, CSP-safe."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

PALETTE = ("#2563eb", "#0891b2", "#7c3aed", "#db2777", "#ea580c", "#16a34a", "#ca8a04", "#475569")


def bar_chart(
    items: Sequence[tuple[str, float]], *, width: int = 520, unit: str = "", signed: bool = False
) -> str:
    """Horizontal bars with their labels and values (`signed`: negative ones in red)."""
    if not items:
        return '<p class="muted">No data yet.</p>'
    row, label_w, value_w = 26, 150, 80
    top = max(abs(v) for _, v in items) or 1
    bar_w = width - label_w - value_w
    height = row * len(items) + 4
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="bar chart" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value) in enumerate(items):
        y = i * row + 2
        w = max(2.0, bar_w * abs(value) / top)
        color = ("#dc2626" if value < 0 else "#16a34a") if signed else PALETTE[i % len(PALETTE)]
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" class="lbl">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" rx="3" '
            f'fill="{color}"><title>{escape(label)}: {value:,.0f}{unit}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 17}" class="val">{value:,.0f}{unit}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def area_chart(points: Sequence[tuple[datetime, float]], *, width: int = 720) -> str:
    """Daily volume as an area with a few date ticks and the peak value."""
    if len(points) < 2:
        return '<p class="muted">Not enough days of data for a trend yet.</p>'
    height, pad_l, pad_b, pad_t = 180, 48, 24, 10
    top = max(v for _, v in points) or 1
    n = len(points) - 1
    inner_w, inner_h = width - pad_l - 8, height - pad_b - pad_t

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad_l + inner_w * i / n, pad_t + inner_h * (1 - v / top)

    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, (_, v) in enumerate(points)))
    base_y = pad_t + inner_h
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="events per day" xmlns="http://www.w3.org/2000/svg">',
        f'<polygon points="{pad_l},{base_y} {line} {pad_l + inner_w},{base_y}" fill="#2563eb22"/>',
        f'<polyline points="{line}" fill="none" stroke="#2563eb" stroke-width="1.6"/>',
        f'<text x="{pad_l - 6}" y="{pad_t + 10}" text-anchor="end" class="val">{top:,.0f}</text>',
        f'<text x="{pad_l - 6}" y="{base_y}" text-anchor="end" class="val">0</text>',
    ]
    for i in sorted({0, n // 4, n // 2, 3 * n // 4, n}):
        x, _ = xy(i, 0)
        anchor = "start" if i == 0 else "end" if i == n else "middle"
        parts.append(
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}" class="lbl">'
            f"{points[i][0]:%b %d}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: Sequence[tuple[str, float]], *, width: int = 520, unit: str = "") -> str:
    """A score over time: a line through labelled points, with its range."""
    if len(points) < 2:
        return '<p class="muted">Not enough periods for a trend yet.</p>'
    height, pad_l, pad_b, pad_t = 160, 44, 22, 10
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    n = len(points) - 1
    inner_w, inner_h = width - pad_l - 8, height - pad_b - pad_t

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad_l + inner_w * i / n, pad_t + inner_h * (1 - (v - low) / span)

    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="trend" xmlns="http://www.w3.org/2000/svg">',
        f'<polyline points="{line}" fill="none" stroke="#2563eb" stroke-width="1.8"/>',
        f'<text x="{pad_l - 6}" y="{pad_t + 10}" text-anchor="end" class="val">'
        f"{high:,.1f}{unit}</text>",
        f'<text x="{pad_l - 6}" y="{pad_t + inner_h}" text-anchor="end" class="val">'
        f"{low:,.1f}{unit}</text>",
    ]
    for i, (label, value) in enumerate(points):
        x, y = xy(i, value)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#2563eb">'
            f"<title>{escape(label)}: {value:,.1f}{unit}</title></circle>"
        )
    for i in sorted({0, n // 2, n}):
        x, _ = xy(i, low)
        anchor = "start" if i == 0 else "end" if i == n else "middle"
        parts.append(
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}" class="lbl">'
            f"{escape(points[i][0])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def sankey_chart(
    nodes: Sequence[str], links: Sequence[tuple[int, int, int]], *, width: int = 1000
) -> str:
    """A left-to-right Sankey diagram of an acyclic set of weighted links."""
    if not links:
        return '<p class="muted">No transitions yet.</p>'
    depth = {i: 0 for i in range(len(nodes))}
    for _ in range(len(nodes)):  # longest path from a source: the column of each node
        for s, t, _w in links:
            depth[t] = max(depth[t], depth[s] + 1)
    columns = max(depth.values()) + 1
    # A node is as tall as the larger of what flows in and what flows out.
    outflow, inflow = [0.0] * len(nodes), [0.0] * len(nodes)
    for s, t, w in links:
        outflow[s] += w
        inflow[t] += w
    weight = [max(a, b) for a, b in zip(outflow, inflow, strict=True)]
    per_column: dict[int, list[int]] = {}
    for node in sorted(depth, key=lambda n: (depth[n], -weight[n])):
        if weight[node] > 0:
            per_column.setdefault(depth[node], []).append(node)
    height, pad, node_w, gap = 420, 8, 12, 10
    busiest = max((sum(weight[n] for n in col) for col in per_column.values()), default=1.0)
    most = max(len(col) for col in per_column.values())
    scale = (height - 2 * pad - gap * (most - 1)) / busiest
    step_x = (width - 220) / max(1, columns - 1)
    box: dict[int, tuple[float, float, float]] = {}
    for col, members in per_column.items():
        y = pad
        for node in members:
            h = max(2.0, weight[node] * scale)
            box[node] = (40 + col * step_x, y, h)
            y += h + gap
    parts = [
        f'<svg class="chart sankey" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="transitions between touchpoints" xmlns="http://www.w3.org/2000/svg">'
    ]
    out_y = {n: box[n][1] for n in box}
    in_y = {n: box[n][1] for n in box}
    for s, t, w in sorted(links, key=lambda link: -link[2]):
        if s not in box or t not in box:
            continue
        thick = max(1.0, w * scale)
        x0, x1 = box[s][0] + node_w, box[t][0]
        y0, y1 = out_y[s] + thick / 2, in_y[t] + thick / 2
        out_y[s] += thick
        in_y[t] += thick
        mid = (x0 + x1) / 2
        color = PALETTE[s % len(PALETTE)]
        curve = f"M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}"
        parts.append(
            f'<path d="{curve}" '
            f'fill="none" stroke="{color}" stroke-opacity="0.35" stroke-width="{thick:.1f}">'
            f"<title>{escape(nodes[s])} → {escape(nodes[t])}: {w:,} customers</title></path>"
        )
    for node, (x, y, h) in box.items():
        color = PALETTE[node % len(PALETTE)]
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{node_w}" height="{h:.1f}" fill="{color}">'
            f"<title>{escape(nodes[node])}</title></rect>"
            f'<text x="{x + node_w + 4:.1f}" y="{y + min(h / 2, 12) + 4:.1f}" class="lbl">'
            f"{escape(_short(nodes[node], int(step_x / 7)))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(label: str, room: int) -> str:
    """A label cut to the room beside its node (the full name is in the node's tooltip)."""
    room = max(8, room)
    return label if len(label) <= room else label[: room - 1] + "…"
