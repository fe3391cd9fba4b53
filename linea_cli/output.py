"""Everything linea prints: records to stdout as table / json / ndjson / csv, messages to stderr.

Commands never format on their own; they hand rows (mappings keyed by the columns' snake_case
names) to `render`, a single record to `render_record`, and words for people to `say`/`warn`.

Every value may be hostile (user names come from a public sign-up form), so what reaches a
terminal goes through `visible`: control characters are shown as backslash escapes (`\\x1b`,
`\\n`), never sent to the terminal, and table cells are Rich `Text`, so `[bold]` or `[/]` in data
is shown, never interpreted. JSON escapes control characters (C1 and line separators included);
CSV carries data as it is, neutralizing only typed text a spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import enum
import errno
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from linea_cli.csvio import neutralize
from linea_cli.errors import UsageProblem, shown
from linea_cli.serialize import jsonable
from linea_cli.timeutil import iso_timestamp


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

# What a terminal may act on: C0 and C1 control characters and DEL (escape sequences, bell,
# backspace, carriage return), line and paragraph separators, and the bidirectional overrides
# that make text display in another order than it reads ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# The same characters outside C0 (which json.dumps escapes already), for JSON strings.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED_ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def visible(text: str) -> str:
    """`text` safe for a terminal: control characters become backslash escapes (`\\x1b`, `\\n`)."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def _columns(specs: Sequence[ColumnSpec]) -> list[Column]:
    return [spec if isinstance(spec, Column) else Column(spec) for spec in specs]


def select_columns(columns: Sequence[ColumnSpec], fields: str | None) -> list[Column]:
    """The columns `--fields a,b,c` names, in that order (any case, `-` for `_`); all of them without it.

    This is the only place --fields is read: every format renders what it returns, so a selection
    means the same in a table, JSON, NDJSON and CSV. An unknown name is a usage error (exit 2)
    listing the valid ones, raised before anything is written.
    """
    cols = _columns(columns)
    if fields is None:
        return cols
    by_key = {col.key: col for col in cols}
    names = [name.strip().lower().replace("-", "_") for name in fields.split(",")]
    names = list(dict.fromkeys(name for name in names if name))  # a repeated name is shown once
    if not names:
        raise UsageProblem("--fields names no field", hint="valid fields: " + ", ".join(by_key))
    unknown = [name for name in names if name not in by_key]
    if unknown:
        raise UsageProblem(
            f"unknown field{'s' if len(unknown) > 1 else ''} for --fields: {', '.join(shown(name) for name in unknown)}",
            hint="valid fields: " + ", ".join(by_key),
        )
    return [by_key[name] for name in names]


def select_fields(record: Mapping[str, Any], fields: str | None) -> dict[str, Any]:
    """A single record cut down to `--fields` (see `select_columns`); a command that changes data
    calls it before its commit, so an unknown name stops the change too."""
    return {col.key: record[col.key] for col in select_columns(list(record), fields)}


def _stdout_is_terminal(stream: TextIO) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich would exit 1 on its own; the error boundary ends every closed pipe the same way.
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def console(stream: TextIO | None = None) -> Console:
    stream = stream or sys.stdout
    terminal = _stdout_is_terminal(stream)
    return _Console(
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
    """A value as text, as it is (CSV); tables show `visible(text_cell(value))`."""
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return iso_timestamp(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping | list | tuple):
        return dumps(value)
    return str(value)


def csv_cell(value: Any, *, raw: bool = False) -> str:
    """A CSV cell: text people typed is neutralized (a spreadsheet would run `=...` as a formula);
    numbers, timestamps, booleans and enum names are never touched (`-37.7869` stays a number)."""
    cell = text_cell(value)
    return neutralize(cell) if isinstance(value, str) and not raw else cell


def table_cell(value: Any) -> Text:
    """A table cell: Rich `Text`, so markup in data is shown as typed, with controls escaped."""
    return Text(visible(text_cell(value)))


def dumps(value: Any, *, indent: int | None = None) -> str:
    """JSON text; every control character is escaped, so printing it cannot drive a terminal."""
    text = json.dumps(jsonable(value), ensure_ascii=False, indent=indent)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _UNSAFE_IN_JSON.search(text) else text


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
    fields: str | None = None,
) -> int:
    """Write rows in the chosen format; returns how many were written.

    Paginated JSON is `{"items": [...], "next_cursor": ...}`; elsewhere the next cursor goes to
    stderr as a hint. Rows are streamed, never collected, for json, ndjson and csv. `fields` is
    the `--fields` text: the columns shown, in its order (`select_columns`).
    """
    stream = stream or sys.stdout
    cols = select_columns(columns, fields)
    count = 0
    if fmt is OutputFormat.json:
        stream.write('{"items": [' if paginated else "[")
        for row in rows:
            stream.write(("," if count else "") + "\n  " + dumps({c.key: row.get(c.key) for c in cols}))
            count += 1
        stream.write(("\n" if count else "") + "]")
        if paginated:
            stream.write(', "next_cursor": ' + dumps(next_cursor) + "}")
        stream.write("\n")
    elif fmt is OutputFormat.ndjson:
        for row in rows:
            stream.write(dumps({c.key: row.get(c.key) for c in cols}) + "\n")
            count += 1
    elif fmt is OutputFormat.csv:
        writer = csv.writer(stream, lineterminator="\r\n")
        writer.writerow([c.key for c in cols])
        for row in rows:
            writer.writerow([csv_cell(row.get(c.key), raw=raw_csv) for c in cols])
            count += 1
    else:
        table = Table(title=Text(visible(title)) if title else None, box=box.SIMPLE_HEAD, title_justify="left")
        for col in cols:
            table.add_column(Text(visible(col.title)), justify=col.justify, overflow="fold")
        for row in rows:
            table.add_row(*(table_cell(row.get(c.key)) for c in cols))
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


def render_record(
    record: Mapping[str, Any], fmt: OutputFormat, *, title: str | None = None, fields: str | None = None
) -> None:
    """One record: a two-column table for people, an object for json/ndjson, a row for csv;
    `fields` (`--fields`) picks and orders its fields."""
    record = select_fields(record, fields)
    if fmt in (OutputFormat.json, OutputFormat.ndjson):
        indent = 2 if fmt is OutputFormat.json else None
        sys.stdout.write(dumps(record, indent=indent) + "\n")
        return
    if fmt is OutputFormat.csv:
        render([record], list(record.keys()), fmt)
        return
    table = Table(title=Text(visible(title)) if title else None, box=box.SIMPLE, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in record.items():
        # Nested values pretty-printed: dumps has escaped their control characters already.
        cell = Text(dumps(value, indent=2)) if isinstance(value, Mapping | list) else table_cell(value)
        table.add_row(Text(visible(key.replace("_", " "))), cell)
    console().print(table)


def write_stdout(text: str) -> None:
    """A document linea generated itself (SQL, a schema file), to stdout as it is."""
    sys.stdout.write(text)
    sys.stdout.flush()


def say(message: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays data); values in it may be
    data as it is: control characters are escaped here, a newline in a value included."""
    sys.stderr.write(visible(message) + "\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    say(f"warning: {message}")


def warn_if_overbooked(slug: str, capacity: int | None, places_left: int | None) -> None:
    """Say so on stderr when an event holds more confirmed entries than places (see `update --force`)."""
    if capacity is not None and places_left is not None and places_left < 0:
        warn(f"event {slug} is over capacity by {-places_left} ({capacity - places_left} confirmed, capacity {capacity})")
