"""Everything linea prints: records to stdout as table / wide / json / ndjson / csv, messages to stderr.

Commands never format on their own; they hand rows (mappings keyed by the columns' snake_case
names) to `render`, a single record to `render_record`, the rows a job acted on with its summary
to `render_summary`, and words for people to `say`/`warn`; `_write` is the one switch on the
format. A file filled row by row (an errors file) gets its CSV rows from `csv_rows`.
A command declares each column once (`Column`: its kind and importance); from that a table at
a terminal fits the width without breaking an id, slug or email (`fit_columns`), and a table
that is piped is tab-separated lines with one header line, for `cut` and `awk`.

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
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from linea_cli.csvio import neutralize
from linea_cli.errors import InvalidInput, UsageProblem, shown
from linea_cli.serialize import jsonable
from linea_cli.timeutil import iso_timestamp


class OutputFormat(enum.StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"


TABLE_FORMATS = (OutputFormat.table, OutputFormat.wide)


class Kind(enum.StrEnum):
    """What a column holds, which decides how a table for people may show it."""

    id = "id"  # copied back into commands: shown whole, never shortened or broken
    slug = "slug"
    email = "email"
    timestamp = "timestamp"  # whole; at a terminal shortened to the minute, in UTC
    text = "text"  # the only kind a table shortens (with …) to make room


@dataclass(frozen=True)
class Column:
    """One column of a list, declared once by its command.

    `priority` is its importance in a table for people: 0 is always shown; when a terminal is too
    narrow, the column with the highest number goes first. `wide` columns are shown only with
    `--format wide`; `deleted` columns (deleted at) only when deleted rows are listed, since they
    are empty otherwise. A `wrap` text column (a diagnosis) is wrapped onto more lines at a
    terminal rather than shortened. JSON, NDJSON and CSV always carry every column.
    """

    key: str
    header: str | None = None
    justify: str = "left"
    kind: Kind | None = None
    priority: int = 0
    wide: bool = False
    deleted: bool = False
    wrap: bool = False

    @property
    def title(self) -> str:
        return self.header or self.key.replace("_", " ")

    @property
    def holds(self) -> Kind:
        return self.kind or kind_of(self.key)


def kind_of(key: str) -> Kind:
    """A column's kind from its snake_case name, as linea names them (`owner_email`, `venue_id`)."""
    for kind in (Kind.id, Kind.slug, Kind.email):
        if key == kind.value or key.endswith("_" + kind.value):
            return kind
    return Kind.timestamp if key.endswith(("_at", "_date")) else Kind.text


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
    plain = bool(os.environ.get("NO_COLOR")) or not terminal
    return _Console(
        file=stream,
        # NO_COLOR means plain: no bold either (a style Rich would still write without colour).
        color_system=None if plain else "auto",
        no_color=plain,
        highlight=False,
        # Rich output that is not a terminal (stderr in a log): not squeezed to 80 columns.
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


def _write_json(
    rows: Iterable[Mapping[str, Any]], cols: Sequence[Column], stream: TextIO, *, paginated: bool, next_cursor: str | None
) -> int:
    count = 0
    stream.write('{"items": [' if paginated else "[")
    for row in rows:
        stream.write(("," if count else "") + "\n  " + dumps(_cut(row, cols)))
        count += 1
    stream.write(("\n" if count else "") + "]")
    if paginated:
        stream.write(', "next_cursor": ' + dumps(next_cursor) + "}")
    stream.write("\n")
    return count


def _cut(row: Mapping[str, Any], cols: Sequence[Column]) -> dict[str, Any]:
    return {c.key: row.get(c.key) for c in cols}


def csv_rows(
    stream: TextIO, keys: Sequence[str], *, raw: bool = False, own: Collection[str] = ()
) -> Callable[[Mapping[str, Any]], None]:
    """Write a CSV header of `keys`, and return the function that writes one row (cells as
    `csv_cell` makes them; the `own` keys hold linea's own words, never neutralized): for a file
    filled row by row while a job runs (an errors file) as for `render`."""
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(keys)
    return lambda row: writer.writerow([csv_cell(row.get(key), raw=raw or key in own) for key in keys])


def _write_table(
    rows: Iterable[Mapping[str, Any]],
    cols: Sequence[Column],
    fmt: OutputFormat,
    stream: TextIO,
    *,
    title: str | None,
    include_deleted: bool,
    fields: str | None,
    pager: bool = False,
) -> int:
    """A table fitted to the terminal (through the pager when taller than it), or tab-separated when piped."""
    # Columns named by --fields are shown as asked, like --format wide shows every column.
    chosen_by_user = fmt is OutputFormat.wide or fields is not None
    if not chosen_by_user:
        cols = [c for c in cols if not c.wide and (include_deleted or not c.deleted)]
    count = 0
    if _stdout_is_terminal(stream):
        count = _print_table(rows, cols, title=title, wide=chosen_by_user, stream=stream, pager=pager)
    else:
        stream.write("\t".join(c.key for c in cols) + "\n")
        for row in rows:
            stream.write("\t".join(tsv_cell(row.get(c.key)) for c in cols) + "\n")
            count += 1
    if not count:
        say("no " + (title.lower() if title else "records") + " found")
    return count


@dataclass(frozen=True)
class _Shape:
    """What is written: rows (a list, a page) or one record (`one`); `summary` is the record a
    JSON document carries the rows in (under `items`), as `render_summary` writes it."""

    one: bool = False
    paginated: bool = False
    next_cursor: str | None = None
    summary: Mapping[str, Any] | None = None
    items: str = "items"


def _write(
    rows: Iterable[Mapping[str, Any]],
    cols: Sequence[Column],
    fmt: OutputFormat,
    stream: TextIO,
    shape: _Shape,
    *,
    title: str | None = None,
    include_deleted: bool = False,
    raw_csv: bool = False,
    fields: str | None = None,
    pager: bool = False,
) -> int:
    """The one format switch: rows (or one record) in `fmt`, the columns `cols`; how many were
    written. With `pager`, a table for people taller than the terminal goes through the pager."""
    count = 0
    if fmt is OutputFormat.json and shape.summary is not None:
        cut = [_cut(row, cols) for row in rows]
        stream.write(dumps({**shape.summary, shape.items: cut}, indent=2) + "\n")
        count = len(cut)
    elif fmt is OutputFormat.json and shape.one:
        for row in rows:
            stream.write(dumps(_cut(row, cols), indent=2) + "\n")
            count += 1
    elif fmt is OutputFormat.json:
        count = _write_json(rows, cols, stream, paginated=shape.paginated, next_cursor=shape.next_cursor)
    elif fmt is OutputFormat.ndjson:
        for row in rows:
            stream.write(dumps(_cut(row, cols)) + "\n")
            count += 1
    elif fmt is OutputFormat.csv:
        write_row = csv_rows(stream, [c.key for c in cols], raw=raw_csv)
        for row in rows:
            write_row(row)
            count += 1
    elif shape.one:
        for row in rows:
            _write_fields(_cut(row, cols), stream, title=title, pager=pager)
            count += 1
    else:
        count = _write_table(
            rows, cols, fmt, stream, title=title, include_deleted=include_deleted, fields=fields, pager=pager
        )
    if shape.next_cursor and fmt is not OutputFormat.json:
        say(f"more: --after {shape.next_cursor}")
    stream.flush()
    return count


def render(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[ColumnSpec],
    fmt: OutputFormat,
    *,
    title: str | None = None,
    paginated: bool = False,
    next_cursor: str | None = None,
    include_deleted: bool = False,
    raw_csv: bool = False,
    stream: TextIO | None = None,
    fields: str | None = None,
    pager: bool = False,
) -> int:
    """Write rows in the chosen format; returns how many were written.

    Paginated JSON is `{"items": [...], "next_cursor": ...}`; elsewhere the next cursor goes to
    stderr as a hint. Rows are streamed, never collected, for json, ndjson, csv and piped tables.
    `include_deleted` says deleted rows were asked for: only then do tables show `deleted` columns.
    `fields` is the `--fields` text: the columns shown, in its order (`select_columns`), in every
    format, hidden ones included. With `pager`, a table at a terminal that is taller than it
    goes through the user's pager (`Screen`).
    """
    return _write(
        rows, select_columns(columns, fields), fmt, stream or sys.stdout,
        _Shape(paginated=paginated, next_cursor=next_cursor),
        title=title, include_deleted=include_deleted, raw_csv=raw_csv, fields=fields, pager=pager,
    )


@dataclass(frozen=True)
class Picture:
    """What a record shows people at a terminal as a picture instead of values: its `keys` leave
    the table, and `draw(record, width)` gives the lines drawn below it (a chart). Piped, in wide,
    with --fields and in every other format the record keeps them as values."""

    keys: tuple[str, ...]
    draw: Callable[[Mapping[str, Any], int], list[str]]


def render_record(
    record: Mapping[str, Any],
    fmt: OutputFormat,
    *,
    title: str | None = None,
    fields: str | None = None,
    stream: TextIO | None = None,
    picture: Picture | None = None,
    pager: bool = False,
) -> None:
    """One record: field and value lines for people (tab-separated when piped), an object for
    json (indented) and ndjson, a row for csv; `fields` (`--fields`) picks and orders its fields.
    With a `picture`, people at a terminal see it drawn instead of its fields' values."""
    out = stream or sys.stdout
    if picture is not None and fmt is OutputFormat.table and fields is None:
        shown = {key: value for key, value in record.items() if key not in picture.keys}
        _write([shown], select_columns(list(shown), None), fmt, out, _Shape(one=True), title=title)
        if _stdout_is_terminal(out):
            import shutil

            write_stdout("\n".join(picture.draw(record, shutil.get_terminal_size().columns)) + "\n")
        return
    _write([record], select_columns(list(record), fields), fmt, out, _Shape(one=True), title=title, pager=pager)


def render_summary(
    summary: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[ColumnSpec],
    fmt: OutputFormat,
    *,
    items: str,
    title: str | None = None,
    fields: str | None = None,
    pager: bool = False,
) -> int:
    """The rows a job acted on: in JSON one document, `summary` with the rows under `items`;
    in every other format the rows, as `render` writes them. `fields` picks the rows' fields."""
    return _write(
        rows, select_columns(columns, fields), fmt, sys.stdout, _Shape(summary=summary, items=items),
        title=title, fields=fields, pager=pager,
    )


def tsv_cell(value: Any) -> str:
    """A cell of a piped table: one line without tabs, read back by undoing the escapes as in
    PostgreSQL's text COPY format (a backslash is doubled; a tab is `\\t`, a newline `\\n`)."""
    return visible(text_cell(value).replace("\\", "\\\\"))


# Between two columns of a table for people; how narrow a text column may be shortened (an
# essential one, priority 0, keeps more, since it names the row for people).
_GAP = 2
_TEXT_MIN_WIDTH = 12
_MAIN_TEXT_MIN_WIDTH = 20
_TEXT_FLOOR = 6
_ISO_UTC = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d):\d\d(?:\.\d+)?\+00:00")


def _person_cell(value: Any, column: Column) -> str:
    """A table cell at a terminal: a timestamp to the minute (`2026-11-25 11:55`, UTC, said in
    the header), anything else as `table_cell` shows it."""
    if column.holds is Kind.timestamp:
        text = iso_timestamp(value) if isinstance(value, datetime) else value
        match = _ISO_UTC.fullmatch(text) if isinstance(text, str) else None
        if match:
            return f"{match.group(1)} {match.group(2)}"
    return visible(text_cell(value))


def _person_header(column: Column) -> str:
    return visible(column.title) + (" (UTC)" if column.holds is Kind.timestamp else "")


def fit_columns(
    columns: Sequence[Column], cells: Sequence[Sequence[str]], width: int, *, drop: bool = True
) -> list[tuple[int, int]]:
    """Which columns a terminal `width` cells wide shows, and how wide: `(index, width)` pairs.

    Ids, slugs, emails and timestamps keep their whole width; only text is shortened, to at
    least `_TEXT_MIN_WIDTH` (`_MAIN_TEXT_MIN_WIDTH` for an essential column, priority 0). The
    essential columns are shown, and the others join, most important first, while they fit;
    room left over widens the shortened text, most important first. If the essential columns
    alone do not fit, their text is cut further (to `_TEXT_FLOOR`), then the least important
    of them are left out, never the first. Without `drop` (`--format wide`) every column stays,
    and a line may run past the terminal's edge rather than break an id.
    """
    natural = [
        max([cell_len(_person_header(column))] + [cell_len(row[i]) for row in cells]) for i, column in enumerate(columns)
    ]
    least = [
        min(natural[i], _TEXT_MIN_WIDTH if column.priority else _MAIN_TEXT_MIN_WIDTH)
        if column.holds is Kind.text else natural[i]
        for i, column in enumerate(columns)
    ]
    by_importance = sorted(range(len(columns)), key=lambda i: (columns[i].priority, i))

    def needed(chosen: Iterable[int]) -> int:
        chosen = list(chosen)
        return sum(least[i] for i in chosen) + _GAP * (len(chosen) - 1)

    def squeezed(chosen: list[int]) -> tuple[dict[int, int], int]:
        """Widths with the text cut down to `_TEXT_FLOOR`, the widest first, and the cells left over."""
        widths = {i: least[i] for i in chosen}
        excess = needed(chosen) - width
        while drop and excess > 0:
            squeezable = [i for i in chosen if columns[i].holds is Kind.text and widths[i] > min(natural[i], _TEXT_FLOOR)]
            if not squeezable:
                break
            widths[max(squeezable, key=lambda i: widths[i])] -= 1
            excess -= 1
        return widths, -excess

    shown = [i for i in by_importance if not drop or columns[i].priority == 0]
    widths, spare = squeezed(shown)
    while drop and spare < 0 and len(shown) > 1:
        shown.pop()
        widths, spare = squeezed(shown)
    for i in by_importance:
        if drop and i not in shown and needed([*shown, i]) <= width:
            shown.append(i)
            widths[i] = least[i]
            spare -= least[i] + _GAP
    for i in by_importance:
        if i in widths:
            grant = max(0, min(natural[i] - widths[i], spare))
            widths[i] += grant
            spare -= grant
    return [(i, widths[i]) for i in sorted(shown)]


def _table_lines(
    cells: Sequence[str], layout: Sequence[tuple[int, int]], columns: Sequence[Column], out: Console
) -> list[Text]:
    """A row's lines: each cell cut to its column's width with `…` (a `wrap` column's wrapped
    at spaces instead, onto more lines), padded, two spaces apart."""
    pieces = [
        [line.plain.rstrip() for line in Text(cells[i]).wrap(out, width, overflow="fold")] or [""]
        if columns[i].wrap else [cells[i]]
        for i, width in layout
    ]
    lines = []
    for k in range(max(len(piece) for piece in pieces)):
        line = Text()
        for n, (i, width) in enumerate(layout):
            cell = Text(pieces[n][k] if k < len(pieces[n]) else "")
            if columns[i].holds is Kind.text:  # an id, slug, email or timestamp is never cut
                cell.truncate(width, overflow="ellipsis")
            padding = " " * (width - cell.cell_len)
            if columns[i].justify == "right":
                cell = Text(padding) + cell
            elif n < len(layout) - 1:
                cell.append(padding)
            line.append_text(cell if not n else Text(" " * _GAP) + cell)
        line.rstrip()
        lines.append(line)
    return lines


def _print_table(
    rows: Iterable[Mapping[str, Any]], cols: Sequence[Column], *, title: str | None, wide: bool, stream: TextIO,
    pager: bool = False,
) -> int:
    """Rows as a table that fits the terminal, a line per row.

    The columns are sized from the first `LAYOUT_ROWS` rows (a page of `--all`); the rows after
    them are written as they come, so a long list starts showing at once and memory holds one
    page. A later id, slug or email wider than its column is never cut: its line runs longer.
    """
    rows = iter(rows)
    first = [[_person_cell(row.get(c.key), c) for c in cols] for row in itertools.islice(rows, LAYOUT_ROWS)]
    if not first:
        return 0
    count = 0
    with Screen(stream, pager=pager) as screen:
        out = console(screen)
        layout = fit_columns(cols, first, out.width, drop=not wide)
        if title:
            out.print(Text(visible(title), style="bold"))
        [header] = _table_lines([_person_header(c) for c in cols], layout, [replace(c, wrap=False) for c in cols], out)
        header.stylize("bold")
        # Lines are cut to fit already; soft_wrap keeps Rich from folding a `wide` line that does not.
        out.print(header, soft_wrap=True)
        for cells in itertools.chain(first, ([_person_cell(row.get(c.key), c) for c in cols] for row in rows)):
            for line in _table_lines(cells, layout, cols, out):
                out.print(line, soft_wrap=True)
            count += 1
            if count == len(first):
                first.clear()  # laid out: let the first page go
    return count



def table_lines(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[ColumnSpec], *, width: int, out: Console, every: bool = False
) -> list[Text]:
    """The lines of a table for people `width` cells wide (its header first, in bold), as
    `_print_table` writes them: for a screen linea redraws in place (`db activity --watch`).
    With `every` (`--format wide`, `--fields`), every column given, as `_write_table` shows them."""
    cols = [c for c in _columns(columns) if every or (not c.wide and not c.deleted)]
    cells = [[_person_cell(row.get(c.key), c) for c in cols] for row in rows]
    layout = fit_columns(cols, cells, width, drop=not every)
    [header] = _table_lines([_person_header(c) for c in cols], layout, [replace(c, wrap=False) for c in cols], out)
    header.stylize("bold")
    return [header, *(line for row in cells for line in _table_lines(row, layout, cols, out))]

# The rows a table at a terminal is laid out from: the rest are written as they come.
LAYOUT_ROWS = 1000


class PagerClosed(Exception):
    """The person quit the pager before the end of the table: nothing more is written."""


def pager_command() -> list[str] | None:
    """The pager a person's environment names: `LINEA_PAGER`, else `PAGER`, else `less -FRX`
    (quit at once when it fits, keep colours, leave the text on the screen); an empty value
    means none. The value is a command line split as a shell would (no shell runs it)."""
    for name in ("LINEA_PAGER", "PAGER"):
        value = os.environ.get(name)
        if value is not None:
            try:
                return shlex.split(value) or None
            except ValueError as exc:
                raise InvalidInput(f"{name} is not a command line: {exc}", hint=f"unset {name}, or quote it as a shell would") from exc
    return ["less", "-FRX"]


class Screen:
    """A terminal as a table is written to it: lines are held until they fill the screen, and a
    table taller than that goes through the pager (`pager_command`) from its first line on; a
    shorter one is written to the terminal when it ends. Without `pager` it is the terminal itself.

    Used as a context manager: at its end the pager's input is closed and linea waits for the
    person to quit it (Ctrl-C then belongs to the pager), so that nothing is written below it.
    A pager quit early raises `PagerClosed` at the next write, caught at the end: the command
    stops reading rows and ends as it would have.
    """

    def __init__(self, stream: TextIO, *, pager: bool) -> None:
        self.stream = stream
        self.encoding = getattr(stream, "encoding", "utf-8")
        self.command = pager_command() if pager and _stdout_is_terminal(stream) else None
        self.room = shutil_lines() - 1  # a line stays for the prompt below
        self.held: list[str] = []
        self.lines = 0
        self.process: subprocess.Popen[str] | None = None

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.process is not None:
            self._to_pager(text)
        elif self.command is None:
            self.stream.write(text)
        else:
            self.held.append(text)
            self.lines += text.count("\n")
            if self.lines > self.room:
                self._start()
        return len(text)

    def flush(self) -> None:
        if self.process is not None:
            self._to_pager("")
        elif self.command is None:
            self.stream.flush()

    def _start(self) -> None:
        assert self.command is not None
        self.stream.flush()
        try:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=self.stream, text=True, encoding=self.encoding,
                errors="replace",
            )
        except OSError as exc:
            warn(f"cannot run the pager {shlex.join(self.command)} ({exc.strerror}); showing the table as it is")
            self.command = None
            self.stream.write("".join(self.held))
            self.held = []
            return
        held, self.held = "".join(self.held), []
        self._to_pager(held)

    def _to_pager(self, text: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        try:
            if text:
                self.process.stdin.write(text)
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:  # ValueError: closed after an earlier quit
            raise PagerClosed from exc

    def __enter__(self) -> Screen:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        if self.process is None:
            if self.held:
                self.stream.write("".join(self.held))
            self.stream.flush()
            return False
        # Ctrl-C while the pager shows the table is the pager's: linea waits for it, as git does.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            self.process.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
        return kind is PagerClosed


def shutil_lines() -> int:
    """The terminal's height in lines (`LINES` first, as Rich reads `COLUMNS`)."""
    import shutil

    return shutil.get_terminal_size().lines


def _write_fields(record: Mapping[str, Any], stream: TextIO, *, title: str | None, pager: bool = False) -> None:
    """One record for people: a line per field, its name and its value, fitted to the terminal
    (tab-separated when piped)."""
    if not _stdout_is_terminal(stream):
        stream.write("".join(f"{key}\t{tsv_cell(value)}\n" for key, value in record.items()))
        return
    out = console(stream)
    # Field names stand whole on one line; values wrap at spaces in the room they leave. A value
    # with a word too long for that room (a URL, a long email) goes on the lines below its name,
    # where it has the whole width, so that an id, slug, email or URL is never broken.
    labels = {key: visible(key.replace("_", " ")) for key in record}
    label_width = max(map(cell_len, labels.values()), default=0)
    room = max(out.width - _GAP - label_width, 1)

    def fields_table() -> Table:
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, _GAP // 2), show_edge=False)
        # Bold on the name, not the column: the padding after it stays plain, and is cut below.
        table.add_column("field", width=label_width, overflow="fold")
        table.add_column("value", overflow="fold", width=room)
        return table

    pieces: list[Table | Text] = [fields_table()]
    for key, value in record.items():
        cell = _field_value(value)
        longest = max((cell_len(word) for word in cell.plain.split()), default=0)
        table = pieces[-1]
        if longest <= room and isinstance(table, Table):
            table.add_row(Text(labels[key], style="bold"), cell)
            continue
        indent = _GAP if longest + _GAP <= out.width else 0
        below = Text(labels[key], style="bold") + "\n"
        for line in cell.wrap(out, out.width - indent, overflow="fold"):
            below.append_text(Text(" " * indent) + line + "\n")
        below.rstrip()
        pieces.extend([below, fields_table()])
    # Without the padding Rich adds to every line, so that what is copied is what was shown.
    with out.capture() as captured:
        if title:
            out.print(Text(visible(title), style="bold"))
        for piece in pieces:
            if not isinstance(piece, Table) or piece.row_count:
                out.print(piece, soft_wrap=isinstance(piece, Text))
    with Screen(stream, pager=pager) as screen:
        screen.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def _field_value(value: Any) -> Text:
    """A value in a `show` view: counts and other flat mappings as aligned `name  value` lines, a
    list of plain values comma-separated, anything nested as indented JSON (escaped by `dumps`)."""
    plain = (str, int, float, bool, type(None), enum.Enum, datetime)
    if isinstance(value, Mapping) and value and all(isinstance(item, plain) for item in value.values()):
        names = {key: visible(str(key)) for key in value}
        width = max(map(cell_len, names.values()))
        return Text("\n".join(f"{names[key]}{' ' * (width - cell_len(names[key]) + _GAP)}{visible(text_cell(item))}"
                              for key, item in value.items()))
    if isinstance(value, list | tuple) and all(isinstance(item, plain) for item in value):
        return Text(", ".join(visible(text_cell(item)) for item in value))
    if isinstance(value, Mapping | list):
        return Text(dumps(value, indent=2))
    return table_cell(value)


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
