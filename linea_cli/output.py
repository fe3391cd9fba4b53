"""Everything linea prints: records to stdout as table / json / ndjson / csv, messages to stderr.

Commands never format on their own; they hand rows (mappings keyed by the columns' snake_case
names) to `render`, a single record to `render_record`, and words for people to `say`/`warn`.
"""

from __future__ import annotations

import csv
import enum
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from linea_cli.serialize import jsonable
from linea_cli.timeutil import from_database


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"


@dataclass(frozen=True)
class Column:
    key: str
    header: str | None = None
    justify: str = "left"

    @property
    def title(self) -> str:
        return self.header or self.key.replace("_", " ")


ColumnSpec = str | Column

# OWASP CSV injection: a cell starting with one of these is read as a formula by spreadsheets.
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def _columns(specs: Sequence[ColumnSpec]) -> list[Column]:
    return [spec if isinstance(spec, Column) else Column(spec) for spec in specs]


def _stdout_is_terminal(stream: TextIO) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


def console(stream: TextIO | None = None) -> Console:
    stream = stream or sys.stdout
    terminal = _stdout_is_terminal(stream)
    return Console(
        file=stream,
        no_color=bool(os.environ.get("NO_COLOR")) or not terminal,
        highlight=False,
        # Piped tables are read by people in logs: do not squeeze them to 80 columns.
        width=None if terminal else 200,
        soft_wrap=False,
    )


def error_console() -> Console:
    return console(sys.stderr)


def text_cell(value: Any) -> str:
    """A value as a person reads it in a table or a CSV cell."""
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return from_database(value).isoformat(sep=" ", timespec="minutes")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(jsonable(value), ensure_ascii=False)
    return str(value)


def spreadsheet_safe(cell: str) -> str:
    """Neutralize a cell a spreadsheet would run as a formula (leading quote), else leave it."""
    return "'" + cell if cell.startswith(_FORMULA_TRIGGERS) else cell


def dumps(value: Any, *, indent: int | None = None) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False, indent=indent)


def render(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[ColumnSpec],
    fmt: OutputFormat,
    *,
    title: str | None = None,
    paginated: bool = False,
    next_cursor: str | None = None,
    raw_csv: bool = False,
    stream: TextIO | None = None,
) -> int:
    """Write rows in the chosen format; returns how many were written.

    Paginated JSON is `{"items": [...], "next_cursor": ...}`; elsewhere the next cursor goes to
    stderr as a hint. Rows are streamed, never collected, for json, ndjson and csv.
    """
    stream = stream or sys.stdout
    cols = _columns(columns)
    count = 0
    if fmt is OutputFormat.json:
        stream.write('{"items": [' if paginated else "[")
        for row in rows:
            stream.write(("," if count else "") + "\n  " + dumps({c.key: row.get(c.key) for c in cols}))
            count += 1
        stream.write(("\n" if count else "") + "]")
        if paginated:
            stream.write(', "next_cursor": ' + json.dumps(next_cursor) + "}")
        stream.write("\n")
    elif fmt is OutputFormat.ndjson:
        for row in rows:
            stream.write(dumps({c.key: row.get(c.key) for c in cols}) + "\n")
            count += 1
    elif fmt is OutputFormat.csv:
        writer = csv.writer(stream, lineterminator="\r\n")
        writer.writerow([c.key for c in cols])
        for row in rows:
            cells = [text_cell(row.get(c.key)) for c in cols]
            writer.writerow(cells if raw_csv else [spreadsheet_safe(cell) for cell in cells])
            count += 1
    else:
        table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
        for col in cols:
            table.add_column(col.title, justify=col.justify, overflow="fold")
        for row in rows:
            table.add_row(*(text_cell(row.get(c.key)) for c in cols))
            count += 1
        out = console(stream)
        if count:
            out.print(table)
        else:
            say("no " + (title.lower() if title else "records") + " found")
    if next_cursor and fmt is not OutputFormat.json:
        say(f"more: --after {next_cursor}")
    stream.flush()
    return count


def render_record(record: Mapping[str, Any], fmt: OutputFormat, *, title: str | None = None) -> None:
    """One record: a two-column table for people, an object for json/ndjson, a row for csv."""
    if fmt in (OutputFormat.json, OutputFormat.ndjson):
        indent = 2 if fmt is OutputFormat.json else None
        sys.stdout.write(dumps(record, indent=indent) + "\n")
        return
    if fmt is OutputFormat.csv:
        render([record], list(record.keys()), fmt)
        return
    table = Table(title=title, box=box.SIMPLE, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in record.items():
        if isinstance(value, Mapping | list) and fmt is OutputFormat.table:
            value = json.dumps(jsonable(value), ensure_ascii=False, indent=2)
        table.add_row(key.replace("_", " "), text_cell(value) if not isinstance(value, str) else value)
    console().print(table)


def say(message: str) -> None:
    """A message for the person at the terminal (stderr, so stdout stays data)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    say(f"warning: {message}")


def warn_if_overbooked(slug: str, capacity: int | None, places_left: int | None) -> None:
    """Say so on stderr when an event holds more confirmed entries than places (see `update --force`)."""
    if capacity is not None and places_left is not None and places_left < 0:
        warn(f"event {slug} is over capacity by {-places_left} ({capacity - places_left} confirmed, capacity {capacity})")
