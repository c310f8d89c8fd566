"""Charts drawn by Apache ECharts (vendored in static/vendor): query rows in, a chart spec out.

A view turns its rows into a spec with ``line()``, ``bars()`` or ``pie()``; a page shows it
with ``{{ chart(spec) }}`` and includes ``core/_charts.html`` once. The spec travels as JSON
in a ``data-echart`` attribute; ``static/console/charts.js`` finds those elements and calls
``echarts.init`` (the CSP allows no inline script, and none is needed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from markupsafe import Markup, escape

PALETTE = ["#07c160", "#3b82f6", "#f59e0b", "#c8102e", "#8b5cf6", "#14b8a6", "#64748b"]


def _get(row, key):
    if isinstance(row, dict):
        return row[key]
    mapping = getattr(row, "_mapping", None)
    if mapping is not None:
        return mapping[key]
    if isinstance(row, Sequence) and isinstance(key, int):
        return row[key]
    return getattr(row, key)


def _number(value):
    if value is None:
        return 0
    return value if isinstance(value, int | float) else float(value)


def _axes(
    rows: Iterable,
    *,
    x,
    series: Sequence[tuple[object, str]],
    kind: str,
    title: str,
    unit: str,
    stack: bool,
    horizontal: bool = False,
) -> dict:
    rows = list(rows)
    spec: dict = {
        "color": PALETTE,
        "animationDuration": 400,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 48, "right": 24, "top": 48 if title else 32, "bottom": 32},
        "xAxis": {"type": "category", "data": [str(_get(r, x)) for r in rows]},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [],
    }
    if title:
        spec["title"] = {"text": title, "left": 0, "textStyle": {"fontSize": 14}}
    if len(series) > 1:
        spec["legend"] = {"top": 0, "right": 0}
    if unit:
        spec["yAxis"]["axisLabel"] = {"formatter": "{value}" + unit}
    if horizontal:  # long names (coupons, stores) read best down the side
        spec["xAxis"], spec["yAxis"] = spec["yAxis"], spec["xAxis"]
        spec["yAxis"]["inverse"] = True
        spec["grid"]["left"] = 8
        spec["grid"]["containLabel"] = True
        spec["tooltip"]["axisPointer"] = {"type": "shadow"}
    for key, name in series:
        s = {"name": name, "type": kind, "data": [_number(_get(r, key)) for r in rows]}
        if kind == "line":
            s["showSymbol"] = len(rows) <= 31
        if stack:
            s["stack"] = "total"
        spec["series"].append(s)
    return spec


def line(
    rows: Iterable,
    *,
    x,
    series: Sequence[tuple[object, str]],
    title: str = "",
    unit: str = "",
) -> dict:
    """A line chart: ``x`` names the label column, ``series`` (column, name) pairs."""
    return _axes(rows, x=x, series=series, kind="line", title=title, unit=unit, stack=False)


def bars(
    rows: Iterable,
    *,
    x,
    series: Sequence[tuple[object, str]],
    title: str = "",
    unit: str = "",
    stack: bool = False,
    horizontal: bool = False,
) -> dict:
    """A bar chart: ``x`` names the label column, ``series`` (column, name) pairs; with
    ``horizontal`` the labels run down the side."""
    return _axes(
        rows,
        x=x,
        series=series,
        kind="bar",
        title=title,
        unit=unit,
        stack=stack,
        horizontal=horizontal,
    )


def pie(rows: Iterable, *, name, value, title: str = "") -> dict:
    """A ring chart of (name, value) rows: shares of a whole."""
    data = [{"name": str(_get(r, name)), "value": _number(_get(r, value))} for r in rows]
    spec: dict = {
        "color": PALETTE,
        "animationDuration": 400,
        "tooltip": {"trigger": "item", "formatter": "{b}: {c} ({d}%)"},
        "legend": {"type": "scroll", "orient": "vertical", "right": 0, "top": "middle"},
        "series": [
            {
                "type": "pie",
                "radius": ["40%", "68%"],
                "center": ["35%", "55%"],
                "label": {"show": False},
                "data": data,
            }
        ],
    }
    if title:
        spec["title"] = {"text": title, "left": 0, "textStyle": {"fontSize": 14}}
    return spec


def render(spec: dict | None, *, height: int = 280, label: str = "") -> Markup:
    """The element ``charts.js`` draws ``spec`` into (empty markup for no spec)."""
    if not spec:
        return Markup("")
    data = escape(json.dumps(spec, ensure_ascii=False, separators=(",", ":")))
    aria = escape(label or spec.get("title", {}).get("text", ""))
    return Markup(  # noqa: S704 - every inserted value is escaped above
        f'<div class="echart" role="img" aria-label="{aria}" '
        f'style="height:{int(height)}px" data-echart="{data}"></div>'
    )
