"""Small pictures for a terminal, drawn with plain Unicode block characters (no colour needed).

`column_chart` draws counts over time as columns, one or more terminal columns per period (or
several periods per column when there are more periods than room), never wider than `width`.
`capacity_bar` draws one quantity against its limit (`confirmed ████░░░░ 8/50`). Both return
lines of text; `linea_cli.output` is what writes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

EIGHTHS = " ▁▂▃▄▅▆▇█"
FULL, EMPTY = "█", "░"
CHART_HEIGHT = 4  # rows: 32 levels with eighth blocks
MAX_COLUMN_WIDTH = 3
CAPACITY_BAR_WIDTH = 40


def column_chart(points: Sequence[tuple[date, int]], *, period: str, width: int) -> list[str]:
    """Counts per period as a column chart at most `width` characters wide.

    A title line says what one column stands for and the highest count, which also labels the
    top of the scale; the bottom line names the first and last dates.
    """
    if not points:
        return []
    # The scale on the left is as wide as the highest count; the highest possible is the total.
    axis_width = len(str(sum(count for _, count in points))) + 1
    room = max(width - axis_width, 1)
    per_column = math.ceil(len(points) / room)  # periods merged into one column
    columns = [sum(count for _, count in points[i : i + per_column]) for i in range(0, len(points), per_column)]
    column_width = max(1, min(MAX_COLUMN_WIDTH, room // len(columns)))
    peak = max(columns)
    unit = period if per_column == 1 else f"{per_column} {period}s"
    lines = [f"sign-ups per {unit} (most: {peak})"]
    levels = [0 if peak == 0 else math.ceil(count * CHART_HEIGHT * 8 / peak) for count in columns]
    for row in range(CHART_HEIGHT, 0, -1):
        floor = (row - 1) * 8
        cells = "".join(EIGHTHS[min(max(level - floor, 0), 8)] * column_width for level in levels)
        label = str(peak) if row == CHART_HEIGHT else ""
        lines.append(f"{label:>{axis_width - 1}} {cells}".rstrip())
    span = len(columns) * column_width
    first, last = points[0][0].isoformat(), points[-1][0].isoformat()
    axis = first + last.rjust(span - len(first)) if span >= len(first) + len(last) + 1 else first
    lines.append(" " * axis_width + axis)
    return [line[:width] for line in lines]


def capacity_bar(label: str, value: int, limit: int | None, *, width: int) -> str:
    """`confirmed ████████░░░░ 8/50`; without a limit just the number; beyond it, a full bar and by how much."""
    if limit is None:
        return f"{label} {value} (no capacity set)"
    text = f"{value}/{limit}" + (f" (over by {value - limit})" if value > limit else "")
    room = min(CAPACITY_BAR_WIDTH, width - len(label) - len(text) - 2)
    if room < 4:
        return f"{label} {text}"[:width]
    filled = room if limit <= 0 or value >= limit else round(room * value / limit)
    if value > 0 and filled == 0:
        filled = 1  # one confirmed entry is not nothing
    return f"{label} {FULL * filled}{EMPTY * (room - filled)} {text}"


def signups_picture(record: Mapping[str, Any], width: int) -> list[str]:
    """`waitlist stats` for people: the sign-ups over time as columns, then confirmed against capacity."""
    points = [(point["date"], point["count"]) for point in record["signups"]]
    lines = column_chart(points, period=record["signups_period"] or "day", width=width)
    lines.append(capacity_bar("confirmed", record["confirmed"], record["capacity"], width=width))
    return lines


def timeline_chart(points: Sequence[tuple[str, float]], *, what: str, unit: str, width: int) -> list[str]:
    """Values at successive moments (`(label, value)`, oldest first) as columns, the newest at the
    right: one column per moment, the oldest left out when there are more than room. A title line
    says what is drawn and the highest value; the bottom line names the first and last moments."""
    if not points:
        return []
    peak = max(value for _, value in points)
    peak_text = f"{peak:,.0f}" if peak >= 10 else f"{peak:.2f}"
    axis_width = len(peak_text) + 1
    room = max(width - axis_width, 1)
    shown_points = list(points[-room:])
    column_width = max(1, min(MAX_COLUMN_WIDTH, room // len(shown_points)))
    lines = [f"{what} (most: {peak_text} {unit})"[:width]]
    levels = [0 if peak <= 0 else math.ceil(max(value, 0) * CHART_HEIGHT * 8 / peak) for _, value in shown_points]
    for row in range(CHART_HEIGHT, 0, -1):
        floor = (row - 1) * 8
        cells = "".join(EIGHTHS[min(max(level - floor, 0), 8)] * column_width for level in levels)
        label = peak_text if row == CHART_HEIGHT else ""
        lines.append(f"{label:>{axis_width - 1}} {cells}".rstrip())
    span = len(shown_points) * column_width
    first, last = shown_points[0][0], shown_points[-1][0]
    axis = first + last.rjust(span - len(first)) if span >= len(first) + len(last) + 1 else first
    lines.append(" " * axis_width + axis)
    return [line[:width] for line in lines]
