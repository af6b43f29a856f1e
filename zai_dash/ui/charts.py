"""The two timeline charts, drawn as text: usage per bucket, and the running total against the pool.

One quantity per chart and per axis, each axis titled; bars never below zero; lines told apart by marker as
well as colour; the legend sits on the title row, outside the plot, so it never covers the pool line; the
projection takes the forecast's verdict as its colour role. `Glyphs` switches everything to ASCII.

Pure layout: the functions return rows of (text, role) runs; the widget maps roles to theme styles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from itertools import pairwise

from zai_dash import text as fmt
from zai_dash.domain.series import UsageSeries
from zai_dash.text import fmt_amount
from zai_dash.ui.glyphs import Glyphs

UNIT_NAMES = {"credits": "credits", "prompts": "prompts"}
MIN_PLOT_ROWS = 1
"""The fewest plot rows a chart is drawn with."""
CHROME_ROWS = 2
"""Rows around the plot: the title (and legend) and the x axis (the time labels are set into it)."""
LABEL_WIDTH = 5
"""Columns for the y labels (`12.3k`), the same in both charts."""


@dataclass
class Canvas:
    """A grid of characters, each with a role (its style) and an optional background role."""

    width: int
    height: int
    chars: list[list[str]] = field(init=False)
    roles: list[list[str]] = field(init=False)
    shade: list[list[bool]] = field(init=False)

    def __post_init__(self) -> None:
        self.chars = [[" "] * self.width for _ in range(self.height)]
        self.roles = [[""] * self.width for _ in range(self.height)]
        self.shade = [[False] * self.width for _ in range(self.height)]

    def put(self, x: int, y: int, ch: str, role: str) -> None:
        """One character; outside the grid is ignored."""
        if 0 <= x < self.width and 0 <= y < self.height:
            self.chars[y][x] = ch
            self.roles[y][x] = role

    def write(self, x: int, y: int, text: str, role: str) -> None:
        """A run of text from (x, y), clipped at the right edge."""
        for i, ch in enumerate(text):
            self.put(x + i, y, ch, role)

    def empty(self, x: int, y: int) -> bool:
        """Whether nothing is drawn at (x, y)."""
        return 0 <= x < self.width and 0 <= y < self.height and self.chars[y][x] == " "

    def runs(self) -> list[list[tuple[str, str, bool]]]:
        """Each row as (text, role, shaded) runs of equal role and shade."""
        out: list[list[tuple[str, str, bool]]] = []
        for y in range(self.height):
            row: list[tuple[str, str, bool]] = []
            for x in range(self.width):
                key = (self.roles[y][x], self.shade[y][x])
                if row and (row[-1][1], row[-1][2]) == key:
                    row[-1] = (row[-1][0] + self.chars[y][x], *key)
                else:
                    row.append((self.chars[y][x], *key))
            out.append(row)
        return out


def nice_ceiling(value: float, whole: bool) -> float:
    """The smallest 1, 2, 3, 4, 5, 6 or 8 × 10ⁿ at or above `value` (whole numbers only when `whole`)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 3, 4, 5, 6, 8, 10):
        top = m * exp
        if top >= value - 1e-9 and (not whole or top == int(top)):
            return float(top)
    return float(10 * exp)


@dataclass(frozen=True, slots=True)
class Axis:
    """Where the plot sits in the canvas."""

    x0: int
    """First plot column (the y axis is at x0 − 1)."""
    width: int
    """Plot columns."""
    rows: int
    """Plot rows (canvas rows 1..rows)."""


def _frame(canvas: Canvas, labels: Sequence[tuple[int, str]], rows: int) -> Axis:
    """Draw the y labels (row, text) and return the plot area (`rows` high) right of them."""
    # One label width for both charts, so their time axes line up column for column.
    label_w = max(LABEL_WIDTH, *(len(t) for _, t in labels))
    x0 = label_w + 1
    for row, text in labels:
        canvas.write(label_w - len(text), row, text, "axis")
    return Axis(x0, max(0, canvas.width - x0), rows)


def _middle_tick(top: float, rows: int, unit: str) -> int | None:
    """The row nearest the middle whose top edge its label names exactly (`20`, `4`, `1.5k`; never `4.6` for
    4.57 or a rounded count), if one is near; else no middle tick."""
    for offset in (0, 1, -1):
        row = rows // 2 + 1 + offset
        value = top * (rows - row + 1) / rows
        if 2 < row <= rows - 1 and _exact(value, unit):
            return row
    return None


def _exact(value: float, unit: str) -> bool:
    """Whether `fmt_amount(value, unit)` reads back as `value` (so a tick label is not a rounded figure)."""
    label = fmt_amount(value, unit)
    scale = {"k": 1e3, "M": 1e6}.get(label[-1:], 1.0)
    shown = float(label[:-1] if scale != 1.0 else label) * scale
    return abs(shown - value) <= 1e-9 * max(1.0, abs(value))


def _columns(axis: Axis, total_minutes: float) -> Callable[[float], int]:
    """Minute of the window → plot column; both charts share it, so their time axes match."""

    def col_of(minute: float) -> int:
        return axis.x0 + round(minute / total_minutes * (axis.width - 1))

    return col_of


def _y_axis(canvas: Canvas, axis: Axis, glyphs: Glyphs, ticks: Iterable[int]) -> None:
    tick_rows = set(ticks)
    for row in range(1, axis.rows + 1):
        canvas.put(axis.x0 - 1, row, glyphs.y_tick if row in tick_rows else glyphs.vertical, "axis")
    canvas.put(axis.x0 - 1, axis.rows + 1, glyphs.corner, "axis")


def _time_labels(canvas: Canvas, s: UsageSeries, axis: Axis, col_of: Callable[[float], int], tz: tzinfo | None) -> None:
    """HH:MM set into the x axis under every hour from the window's start (the first flush left, the last
    flush right), a blank either side; labels that would touch are skipped. In the axis row, not under it, so
    a short pane keeps that row for the plot."""
    y = canvas.height - 1
    left, right = axis.x0, axis.x0 + axis.width
    last_end = left - 2
    minute = 0.0
    while minute <= s.total_minutes + 0.01:
        label = f" {fmt.hhmm(s.start + timedelta(minutes=minute), tz)} "
        col = min(max(col_of(minute) - len(label) // 2, left), right - len(label))
        if col > last_end and col >= left:
            canvas.write(col, y, label, "axis")
            last_end = col + len(label) - 1
        minute += 60


def _title(canvas: Canvas, title: str, legend: Sequence[tuple[str, str]]) -> None:
    """The axis title left and the legend right on row 0; the legend gives way first when narrow."""
    legend_w = sum(len(t) for t, _ in legend) + 2 * max(0, len(legend) - 1)
    if legend and len(title) + 2 + legend_w > canvas.width:
        legend = [(t.split(" ", 1)[0], r) for t, r in legend]  # glyphs only
        legend_w = sum(len(t) for t, _ in legend) + max(0, len(legend) - 1)
        gap = 1
    else:
        gap = 2
    canvas.write(0, 0, title, "title")
    if legend and len(title) + 2 + legend_w <= canvas.width:
        x = canvas.width - legend_w
        for text, role in legend:
            canvas.write(x, 0, text, role)
            x += len(text) + gap


def usage_chart(
    s: UsageSeries, width: int, height: int, glyphs: Glyphs, tz: tzinfo | None, *, time_labels: bool = True
) -> Canvas:
    """Bars of usage per bucket (merged when the pane is narrower than the buckets), peak buckets shaded.

    Args:
        s: the series.
        width, height: the chart's size in cells.
        glyphs: Unicode or ASCII.
        tz: display timezone for the time labels.
        time_labels: set HH:MM into the axis; not right above the pool chart (its columns are the same
            minutes), where the axis stays whole to carry the peak-hours marks.
    """
    canvas = Canvas(width, height)
    rows = height - CHROME_ROWS
    if rows < MIN_PLOT_ROWS or width < 12:
        return canvas
    whole = s.unit != "credits"
    # Buckets per bar: merge neighbours when there are more buckets than columns (at least 2 columns a bar).
    group = max(1, math.ceil(s.buckets * 2 / max(1, width - LABEL_WIDTH - 1)))
    slots = math.ceil(s.buckets / group)
    values = [sum(s.per_bucket[i * group : (i + 1) * group]) for i in range(slots)]
    peaks = [any(s.peak[i * group : (i + 1) * group]) for i in range(slots)]
    top = nice_ceiling(max(values, default=0.0), whole)
    # A bar fills row y (1 = top) once its value reaches the row's top edge, top × (rows − y + 1) / rows; each
    # label sits on the row whose top edge it names, and 0 on the axis, so the ticks read the bars exactly.
    labels = [(1, fmt_amount(top, s.unit)), (rows + 1, "0")]
    if rows >= 4:
        middle = _middle_tick(top, rows, s.unit)
        if middle is not None:
            labels.insert(1, (middle, fmt_amount(top * (rows - middle + 1) / rows, s.unit)))
    axis = _frame(canvas, labels, rows)
    minutes_per_slot = s.bucket_minutes * group
    col_of = _columns(axis, s.total_minutes)
    _y_axis(canvas, axis, glyphs, (r for r, _ in labels))
    axis_row = rows + 1
    for i in range(slots):
        left = col_of(i * minutes_per_slot)
        right = axis.x0 + axis.width if i == slots - 1 else col_of((i + 1) * minutes_per_slot)
        for x in range(left, right):
            canvas.put(x, axis_row, glyphs.axis_peak if peaks[i] else glyphs.axis, "peak" if peaks[i] else "axis")
            if peaks[i]:
                for y in range(1, rows + 1):
                    canvas.shade[y][x] = True
        if i >= len(values) or values[i] <= 0:
            continue
        eighths = max(1, round(values[i] / top * rows * 8))  # a non-zero bucket always shows
        full, part = divmod(min(eighths, rows * 8), 8)
        for x in range(left, max(left + 1, right - 1)):  # one column of gap between bars
            for k in range(full):
                canvas.put(x, rows - k, glyphs.eighths[-1], "bar")
            if part:
                canvas.put(x, rows - full, glyphs.eighths[part - 1], "bar")
    minutes_per_slot = s.bucket_minutes * group
    title = f"{UNIT_NAMES.get(s.unit, s.unit)} per {minutes_per_slot} min"
    legend = [(f"{glyphs.axis_peak * 2} peak hours", "peak")] if any(peaks) else []
    _title(canvas, title, legend)
    if time_labels:
        _time_labels(canvas, s, axis, col_of, tz)
    return canvas


def pool_chart(s: UsageSeries, width: int, height: int, glyphs: Glyphs, tz: tzinfo | None) -> Canvas:
    """The running total as a filled area against the pool line, a now marker and the projection to the reset.

    The area is drawn in eighths of a cell, so a window a few percent used still shows its rise in a pane
    of three rows; the projection and the pool are lines with their own markers.

    Args:
        s: the series.
        width, height: the chart's size in cells.
        glyphs: Unicode or ASCII.
        tz: display timezone for the time labels.
    """
    canvas = Canvas(width, height)
    rows = height - CHROME_ROWS
    if rows < MIN_PLOT_ROWS or width < 12:
        return canvas
    projected = max((v for _, v in s.projection), default=0.0)
    top = max(s.limit, s.used, projected, 1.0)

    def level(value: float) -> float:
        """A value in eighths of a cell above the axis (the plot is `rows` × 8 of them)."""
        return max(0.0, min(value, top)) / top * rows * 8

    def row_of(value: float) -> int:
        """The row whose band holds `value`: row `rows` holds the first band above 0, row 1 the top."""
        return rows - min(rows - 1, int(level(value) // 8))

    limit_row = row_of(s.limit)
    # As in the usage chart, 0 is the axis and a label names the row its value falls in.
    labels = [(limit_row, fmt_amount(s.limit, s.unit)), (rows + 1, "0")]
    axis = _frame(canvas, labels, rows)
    if axis.width < 2:
        return canvas

    col_of = _columns(axis, s.total_minutes)
    _y_axis(canvas, axis, glyphs, (r for r, _ in labels))
    for x in range(axis.x0, axis.x0 + axis.width):
        canvas.put(x, rows + 1, glyphs.axis, "axis")
        canvas.put(x, limit_row, glyphs.limit, "limit")
    now_col = col_of(s.now_minute)
    for x in range(axis.x0, now_col + 1):
        minute = (x - axis.x0) / max(1, axis.width - 1) * s.total_minutes
        eighths = min(rows * 8, round(level(_value_at(s.cumulative, minute))))
        full, part = divmod(eighths, 8)
        for k in range(full):
            canvas.put(x, rows - k, glyphs.eighths[-1], "used")
        if part:
            canvas.put(x, rows - full, glyphs.eighths[part - 1], "used")
    for y in range(1, rows + 1):
        if y != limit_row and canvas.empty(now_col, y):
            canvas.put(now_col, y, glyphs.now, "now")
    canvas.put(now_col, rows + 1, glyphs.now_axis, "now")
    pace_role = f"pace-{s.verdict}"
    if s.projection:
        _line(canvas, [(col_of(m), row_of(v)) for m, v in s.projection], glyphs.pace, pace_role, skip_first=True)
        if s.verdict == "critical" and s.projection[-1][1] >= s.limit and s.projection[-1][0] < s.total_minutes:
            canvas.put(col_of(s.projection[-1][0]), limit_row, glyphs.out, pace_role)
    title = f"{UNIT_NAMES.get(s.unit, s.unit)} used of {fmt_amount(s.limit, s.unit)}"
    legend = [
        (f"{glyphs.used} used", "used"),
        (f"{glyphs.pace} pace", pace_role),
        (f"{glyphs.limit} pool", "limit"),
        (f"{glyphs.now} now", "now"),
    ]
    _title(canvas, title, legend)
    _time_labels(canvas, s, axis, col_of, tz)
    return canvas


def _value_at(points: Sequence[tuple[float, float]], minute: float) -> float:
    """The running total at a minute, linear between (minute, total) points; the last total after them."""
    for (m1, v1), (m2, v2) in pairwise(points):
        if minute <= m2:
            return v1 if m2 <= m1 else v1 + (v2 - v1) * max(0.0, minute - m1) / (m2 - m1)
    return points[-1][1] if points else 0.0


def _line(
    canvas: Canvas, points: Sequence[tuple[int, int]], marker: str, role: str, *, skip_first: bool = False
) -> None:
    """A polyline through (column, row) points: one marker per column, vertical gaps filled, so it stays joined."""
    prev: tuple[int, int] | None = None
    for (x1, y1), (x2, y2) in pairwise(points):
        span = max(1, x2 - x1)
        for x in range(x1, x2 + 1):
            y = round(y1 + (y2 - y1) * (x - x1) / span)
            if prev is not None and prev[0] == x - 1 and abs(prev[1] - y) > 1:
                step = 1 if y > prev[1] else -1
                for yy in range(prev[1] + step, y, step):
                    canvas.put(x, yy, marker, role)
            if not (skip_first and prev is None and x == x1):
                canvas.put(x, y, marker, role)
            prev = (x, y)


def spark_chart(s: UsageSeries, width: int, height: int, glyphs: Glyphs) -> Canvas:
    """Usage per bucket as bare bars across the whole window (buckets merged when narrow), for small panes.

    Args:
        s: the series.
        width, height: the strip's size in cells (1–3 rows).
        glyphs: Unicode or ASCII.
    """
    canvas = Canvas(width, height)
    if width < 1 or height < 1:
        return canvas
    group = max(1, math.ceil(s.buckets / width))
    # The whole window spans the strip: each slot as many columns as fit, so the empty future shows as room.
    cols = max(1, width // math.ceil(s.buckets / group))
    slots = math.ceil(len(s.per_bucket) / group)
    values = [sum(s.per_bucket[i * group : (i + 1) * group]) for i in range(slots)]
    peaks = [any(s.peak[i * group : (i + 1) * group]) for i in range(slots)]
    top = max(values, default=0.0)
    for i, value in enumerate(values):
        for x in range(i * cols, min(width, (i + 1) * cols)):
            if peaks[i]:
                for y in range(height):
                    canvas.shade[y][x] = True
            if value <= 0 or top <= 0:
                continue
            full, part = divmod(max(1, round(value / top * height * 8)), 8)
            for k in range(min(full, height)):
                canvas.put(x, height - 1 - k, glyphs.eighths[-1], "bar")
            if part and full < height:
                canvas.put(x, height - 1 - full, glyphs.eighths[part - 1], "bar")
    return canvas
