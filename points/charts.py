"""Server-rendered SVG charts (no JavaScript, nothing downloaded)."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD, LABEL = 640, 220, 28, 18


def _frame(body: str, title: str) -> Markup:
    # Every label and title inserted into ``body`` was escaped by the callers.
    return Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + LABEL}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def _axis() -> str:
    y = HEIGHT - PAD
    return f'<line x1="{PAD}" y1="{y}" x2="{WIDTH - PAD}" y2="{y}" stroke="#999"/>'


def _scale(values: list[float]) -> float:
    top = max([v for v in values] + [0])
    return top if top > 0 else 1


def bars(points: list[tuple[str, float]], *, unit: str = "", title: str = "") -> Markup:
    """A bar chart of (label, value) pairs."""
    if not points:
        return Markup("")
    top = _scale([v for _, v in points])
    step = (WIDTH - 2 * PAD) / len(points)
    parts = []
    for i, (label, value) in enumerate(points):
        h = (HEIGHT - 2 * PAD) * value / top
        x = PAD + i * step + step * 0.15
        y = HEIGHT - PAD - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
            f'fill="#3b82f6"><title>{escape(label)}: {value:.1f}{escape(unit)}</title></rect>'
            f'<text x="{x + step * 0.35:.1f}" y="{y - 3:.1f}" font-size="10" '
            f'text-anchor="middle">{value:.1f}{escape(unit)}</text>'
            f'<text x="{x + step * 0.35:.1f}" y="{HEIGHT + 4:.1f}" font-size="10" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    axis = _axis()
    return _frame(axis + "".join(parts), title or "bars")


def line(points: list[tuple[str, int]], *, title: str = "") -> Markup:
    """A line chart of (label, value) pairs."""
    if not points:
        return Markup("")
    values = [v for _, v in points]
    top = _scale(values)
    low = min(values + [0])
    span = (top - low) or 1
    step = (WIDTH - 2 * PAD) / max(1, len(points) - 1)
    coords = [
        (PAD + i * step, HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v - low) / span)
        for i, v in enumerate(values)
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts = [f'<polyline points="{path}" fill="none" stroke="#16a34a" stroke-width="2"/>']
    for (x, y), (label, value) in zip(coords, points, strict=True):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#16a34a">'
            f"<title>{escape(label)}: {value}</title></circle>"
            f'<text x="{x:.1f}" y="{HEIGHT + 4:.1f}" font-size="10" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    axis = _axis()
    return _frame(axis + "".join(parts), title or "line")
