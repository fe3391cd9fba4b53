"""CSV at COPY speed: streaming read and validation, COPY helpers, the spreadsheet-safe writer.

Reading: the file is read as bytes, one physical line at a time, and decoded strictly as UTF-8
(an optional BOM is dropped), so a non-UTF-8 file is refused with the exact line; the csv module
then joins physical lines into records (quoted commas, quotes and newlines, CRLF, LF or CR). Memory
stays constant: rows go to PostgreSQL as they are read, never into a list. A UTF-16 file with a
byte order mark (Excel's "Unicode text") is converted to UTF-8 as it streams (`decoded_input`).

Emails are validated with email-validator (no DNS). It costs ~60 µs an address, which would make a
million-row import take a minute, so ordinary ASCII addresses go through a stricter regular
expression first: whatever it accepts, email-validator accepts too, with the same canonical form
(tests/test_waitlist_csv.py checks the two agree). Anything else takes the slow, exact path.

Writing: spreadsheets run a cell starting with `=`, `+`, `-`, `@`, tab, CR or LF as a formula
(OWASP "CSV injection"); such a cell gets a leading `'`. To keep the round trip exact, a cell that
already is quotes followed by one of those characters gets one more quote, and import removes one.
"""

from __future__ import annotations

import csv
import inspect
import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

from linea_cli.errors import InvalidInput, shown
from linea_cli.interrupts import interrupts_held

T = TypeVar("T")

_NEEDS_QUOTE = re.compile(r"'*[=+\-@\t\r\n]")
_QUOTED_TRIGGER = re.compile(r"'+[=+\-@\t\r\n]")
# The same test in PostgreSQL's regular expression syntax, for COPY ... TO STDOUT.
_SQL_NEEDS_QUOTE = "^'*[-=+@\t\r\n]"

csv.field_size_limit(16 * 1024 * 1024)  # a name may be long; a runaway quote should still stop somewhere


def neutralize(cell: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading `'`; harmless cells stay as they are."""
    return "'" + cell if _NEEDS_QUOTE.match(cell) else cell


def unneutralize(cell: str) -> str:
    """Undo `neutralize` (import of a file linea exported)."""
    return cell[1:] if _QUOTED_TRIGGER.match(cell) else cell


def neutralized_sql(expression: str) -> str:
    """`neutralize` as a SQL expression over a text `expression` (NULL stays NULL)."""
    return f"CASE WHEN {expression} ~ E'{_sql_escape(_SQL_NEEDS_QUOTE)}' THEN '''' || {expression} ELSE {expression} END"


def _sql_escape(pattern: str) -> str:
    return pattern.replace("\\", "\\\\").replace("'", "''").replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")


# --- emails, fast and exact ------------------------------------------------------------------

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# At most 254 characters, a local part of at most 64, no "--" anywhere (Punycode and the label
# rules about it take the exact path), and a letters-only top-level label that is not one of the
# special-use names email-validator refuses (arpa, invalid, local, localhost, onion, test).
_SIMPLE_EMAIL = re.compile(
    rf"(?=.{{3,254}}\Z)(?=[^@]{{1,64}}@)(?!.*--)(?:{_ATOM}(?:\.{_ATOM})*)@(?:{_LABEL}\.)+"
    r"(?!(?i:arpa|invalid|local|localhost|onion|test)\Z)[A-Za-z]{2,63}",
    re.ASCII,
)
_simple_email = _SIMPLE_EMAIL.fullmatch


def fast_canonical_email(raw: str) -> str | None:
    """The canonical form of a plain ASCII address that is certainly valid, else None (use the exact path)."""
    return raw.lower() if _simple_email(raw) else None


def check_email(raw: str) -> tuple[str | None, str | None]:
    """(canonical address, None) or (None, reason)."""
    from linea_cli.services.emails import canonical_email, email_problem

    text = raw.strip()
    canonical = fast_canonical_email(text)
    if canonical is not None:
        return canonical, None
    if not text:
        return None, "email is empty"
    reason = email_problem(text)
    if reason is not None:
        return None, f"invalid email {shown(text)}: {reason}"
    return canonical_email(text), None


# --- reading ---------------------------------------------------------------------------------

UTF_16 = "UTF-16"
_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decoded_input(source: BinaryIO) -> tuple[BinaryIO, str | None]:
    """The file as UTF-8 bytes, and the encoding it was converted from (None: read as it is).

    Excel's "Unicode text" is UTF-16 with a byte order mark (and tab-separated): it is converted
    here, as it streams. UTF-32 is refused by name. Anything else is read as UTF-8.
    """
    if not hasattr(source, "peek"):  # an in-memory stream, say
        source = io.BufferedReader(source)  # type: ignore[arg-type]
    head = source.peek(4)[:4]  # type: ignore[attr-defined]
    if head.startswith(_UTF32_BOMS):
        raise InvalidInput("the file is UTF-32, which linea does not read", hint="save it as UTF-8 (CSV UTF-8 in Excel)")
    if head.startswith(_UTF16_BOMS):
        return io.BufferedReader(_Utf16AsUtf8(source), 1 << 20), UTF_16  # type: ignore[return-value]
    return source, None


class _Utf16AsUtf8(io.RawIOBase):
    """A UTF-16 file (with its byte order mark) read as UTF-8 bytes, a chunk at a time."""

    def __init__(self, source: BinaryIO) -> None:
        # newline="": line endings stay as they are, for csv to see (quoted line breaks included).
        self._text = io.TextIOWrapper(source, encoding="utf-16", errors="strict", newline="")  # type: ignore[arg-type]
        self._pending = memoryview(b"")
        self._characters = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                chunk = self._text.read(1 << 16)
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"the file starts as UTF-16 but is not valid UTF-16 after {self._characters} characters",
                    hint="save it again as UTF-8 (CSV UTF-8) or as Unicode text",
                ) from None
            if not chunk:
                return 0
            self._characters += len(chunk)
            try:
                self._pending = memoryview(chunk.encode("utf-8"))
            except UnicodeEncodeError:  # an unpaired surrogate
                raise InvalidInput(
                    f"the UTF-16 file holds an unpaired surrogate within its first {self._characters} characters",
                    hint="save it again as UTF-8 (CSV UTF-8)",
                ) from None
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def read_records(source: BinaryIO, *, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(line number where the record starts, fields) for every non-blank record, header included.

    Lines are split on b"\\n" (never part of a UTF-8 sequence) and decoded strictly, one by one, so
    a decoding error names its line; csv joins the lines of quoted fields back together.
    """
    if len(delimiter) != 1 or delimiter in "\"\r\n":
        raise InvalidInput(f"invalid delimiter {shown(delimiter)}: use one character such as ',' ';' or a tab")
    reader = csv.reader(map(bytes.decode, _physical_lines(source)), delimiter=delimiter, strict=True)
    previous_end = 0
    first = True
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"line {reader.line_num + 1} is not UTF-8 (byte {exc.start + 1} of the line is {exc.object[exc.start:exc.start + 1]!r})",
                hint="save the file as UTF-8 (with or without BOM) and import it again",
            ) from None
        except csv.Error as exc:
            if "new-line character" in str(exc):  # csv's own words suggest a Python-level fix
                raise InvalidInput(
                    f"line {previous_end + 1}: a carriage return (CR) inside an unquoted field",
                    hint="quote that field, or save the file with LF or CRLF line endings",
                ) from None
            raise InvalidInput(f"line {previous_end + 1}: malformed CSV ({exc})") from None
        start, previous_end = previous_end + 1, reader.line_num
        if first and fields and fields[0].startswith("\ufeff"):
            fields[0] = fields[0][1:]
        first = False
        # Blank lines and rows of empty cells (spreadsheets write ",,," rows) are not records.
        if fields and (fields[0].strip() or any(cell.strip() for cell in fields[1:])):
            yield start, fields


_LINE_END = re.compile(rb"\r\n|\r|\n")


def _physical_lines(source: BinaryIO) -> Iterator[bytes]:
    """The file's lines, each with its ending, for csv (which then keeps quoted line breaks).

    LF and CRLF files iterate at C speed. A file whose first line ends in a bare CR (classic Mac
    OS, some old exports) would be one endless line that way, so it is split on CR, LF and CRLF
    in chunks instead (constant memory, a little slower).
    """
    if not hasattr(source, "peek"):  # an in-memory stream, say
        source = io.BufferedReader(source)  # type: ignore[arg-type]
    head = source.peek(1 << 16)[: 1 << 16]  # type: ignore[attr-defined]
    first_cr, first_lf = head.find(b"\r"), head.find(b"\n")
    if first_cr == -1 or (first_lf != -1 and first_lf <= first_cr + 1):
        return iter(source)
    return _universal_lines(source)


def _universal_lines(source: BinaryIO, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    pending = b""
    while chunk := source.read(chunk_size):
        data = pending + chunk
        start = 0
        for end in _LINE_END.finditer(data):
            if end.end() == len(data) and data.endswith(b"\r"):
                break  # the LF of a CRLF may open the next chunk
            yield data[start:end.end()]
            start = end.end()
        pending = data[start:]
    if pending:
        yield pending


def parse_delimiter(text: str) -> str:
    """--delimiter: a character, or `tab` / `\\t`."""
    if text.lower() in ("tab", "\\t"):
        return "\t"
    return text


# --- the import row format -------------------------------------------------------------------

IMPORT_COLUMNS = ("email", "status", "created_at", "name")
# Written by `waitlist export` but set by the database on import; accepted without a warning.
IGNORED_EXPORT_COLUMNS = ("updated_at",)


@dataclass(frozen=True)
class ImportHeader:
    email: int
    status: int | None
    created_at: int | None
    width: int
    name: int | None = None
    unknown: tuple[str, ...] = ()


DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab"}


def map_header(fields: list[str], *, delimiter: str = ",") -> ImportHeader:
    names = [name.strip().lower() for name in fields]
    seen: set[str] = set()
    for name in names:
        if name in seen and name:
            raise InvalidInput(f"the header names column {shown(name)} twice")
        seen.add(name)
    if "email" not in names:
        raise InvalidInput(
            "the header has no 'email' column (found: " + ", ".join(repr(n) for n in fields) + ")",
            hint=_header_hint(fields, delimiter),
        )
    known = set(IMPORT_COLUMNS) | set(IGNORED_EXPORT_COLUMNS)
    return ImportHeader(
        email=names.index("email"),
        status=names.index("status") if "status" in names else None,
        created_at=names.index("created_at") if "created_at" in names else None,
        width=len(names),
        name=names.index("name") if "name" in names else None,
        unknown=tuple(fields[i] for i, name in enumerate(names) if name not in known),
    )


def _header_hint(fields: list[str], delimiter: str) -> str:
    """What to do about a header without an email column: most often, another separator."""
    line = delimiter.join(fields)
    if "\x00" in line:
        return "the file looks like UTF-16 without a byte order mark: save it as UTF-8 (CSV UTF-8)"
    for candidate, option in DELIMITER_NAMES.items():
        if candidate != delimiter and candidate in line:
            names = next(csv.reader([line], delimiter=candidate), [])
            if "email" in (name.strip().lower() for name in names):
                return f"the columns are separated by {option}: use --delimiter {option}"
    return "the first line must name the columns: email[,status][,created_at][,name]"


@dataclass(frozen=True)
class InvalidRow:
    line: int
    email: str
    reason: str


@dataclass
class StreamStats:
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    unknown_columns: tuple[str, ...] = ()
    has_name_column: bool = False
    named_rows: int = 0  # rows with a name: names are not imported, and the user is told
    first_invalid: list[InvalidRow] = field(default_factory=list)


STATUSES = ("PENDING", "CONFIRMED", "CANCELLED")
_STATUS_BY_NAME = {name: name for name in STATUSES}
COPY_NULL = "\\N"
_COPY_SPECIALS = re.compile(r"[\\\t\n\r]")


def copy_text(value: str) -> str:
    """A value in COPY's text format."""
    if _COPY_SPECIALS.search(value) is None:
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


# ISO 8601 with an explicit offset, as `waitlist export` writes it: checked by Python (ranges)
# and sent as is to a timestamptz column. Anything else is parsed here (naive means `timezone`).
_PLAIN_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-]\d\d:\d\d)", re.ASCII)
_from_iso = datetime.fromisoformat


def created_at_text(text: str, timezone: str) -> str:
    """The COPY text of a created_at cell (InvalidInput when it is not a date)."""
    if _PLAIN_TIMESTAMP.fullmatch(text):
        try:
            _from_iso(text)
            return text
        except ValueError:
            pass
    from linea_cli.timeutil import parse_datetime

    return parse_datetime(text, timezone=timezone, field="created_at").isoformat(sep=" ") + "+00"


def stream_import_rows(
    source: BinaryIO,
    *,
    write: Callable[[str], Any],
    delimiter: str | None = None,
    timezone: str = "UTC",
    keep_writing_after_invalid: bool = True,
    on_invalid: Callable[[InvalidRow], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    sample_size: int = 20,
    batch_rows: int = 4000,
) -> StreamStats:
    """Read, validate and write `line\\temail\\tstatus\\tcreated_at` COPY text rows in batches.

    Invalid rows are counted, the first `sample_size` kept, each passed to `on_invalid`; with
    `keep_writing_after_invalid=False` (all-or-nothing) nothing more is written after the first
    one, but the rest is still validated so that the report is complete. Without a `delimiter`,
    a UTF-16 file (Excel's "Unicode text") is tab-separated and anything else comma-separated.
    """
    stats = StreamStats()
    tell = getattr(source, "tell", None) if on_progress is not None else None  # bytes of the file itself
    source, encoding = decoded_input(source)
    if delimiter is None:
        delimiter = "\t" if encoding == UTF_16 else ","
    records = read_records(source, delimiter=delimiter)
    try:
        _, header_fields = next(records)
    except StopIteration:
        raise InvalidInput("the file is empty: it needs a header row naming an 'email' column") from None
    header = map_header(header_fields, delimiter=delimiter)
    stats.unknown_columns = header.unknown
    stats.has_name_column = header.name is not None
    email_at, status_at, created_at_at, width = header.email, header.status, header.created_at, header.width
    name_at = header.name
    buffer: list[str] = []
    writing = True
    simple_email = _simple_email

    def invalid(line: int, email: str, reason: str) -> None:
        nonlocal writing
        stats.invalid += 1
        row = InvalidRow(line, email, reason)
        if len(stats.first_invalid) < sample_size:
            stats.first_invalid.append(row)
        if on_invalid is not None:
            on_invalid(row)
        if not keep_writing_after_invalid:
            writing = False
            buffer.clear()

    for line, fields in records:
        stats.rows += 1
        if len(fields) != width:
            invalid(line, fields[email_at] if len(fields) > email_at else "",
                    f"{len(fields)} fields where the header has {width}")
            continue
        raw_email = fields[email_at]
        # A leading quote may be linea's own neutralization: the exact path removes it.
        if raw_email[:1] != "'" and simple_email(raw_email):
            email = raw_email.lower()
        else:
            checked, reason = check_email(unneutralize(raw_email.strip()))
            if checked is None:
                invalid(line, raw_email, reason or "invalid email")
                continue
            email = copy_text(checked)
        status = COPY_NULL
        if status_at is not None:
            text = fields[status_at].strip()
            if text:
                found = _STATUS_BY_NAME.get(text.upper())
                if found is None:
                    invalid(line, raw_email, f"unknown status {shown(text)}: use PENDING, CONFIRMED or CANCELLED")
                    continue
                status = found
        created = COPY_NULL
        if created_at_at is not None:
            text = fields[created_at_at].strip()
            if text:
                try:
                    created = created_at_text(text, timezone)
                except InvalidInput as exc:
                    invalid(line, raw_email, exc.message)
                    continue
        stats.valid += 1
        if name_at is not None and fields[name_at].strip():
            stats.named_rows += 1
        if writing:
            buffer.append(f"{line}\t{email}\t{status}\t{created}\n")
            if len(buffer) >= batch_rows:
                write("".join(buffer))
                buffer.clear()
                if tell is not None:
                    on_progress(tell())  # type: ignore[misc]
    if writing and buffer:
        write("".join(buffer))
    if tell is not None:
        on_progress(tell())  # type: ignore[misc]
    return stats


# --- COPY helpers ----------------------------------------------------------------------------

def driver_connection(session: Any) -> Any:
    """The psycopg 3 connection under a SQLAlchemy session, inside the session's transaction."""
    return session.connection().connection.driver_connection


def run_copy(session: Any, statement: Any, body: Callable[[Any], T]) -> T:
    """`body(copy)` inside psycopg's `cursor.copy(statement)`, in the session's transaction.

    The context is entered and left by hand, with Ctrl-C and SIGTERM held back while psycopg
    starts and finishes the COPY: an interrupt landing just as `with` calls `__enter__`/`__exit__`
    (CPython bpo-29988) would otherwise leave the connection's lock held, and the rollback that
    follows would wait forever. During `body` (reading the file, streaming rows) they act at once.
    """
    manager = driver_connection(session).cursor().copy(statement)
    try:
        with interrupts_held():
            copy = manager.__enter__()
        result = body(copy)
        with interrupts_held():
            manager.__exit__(None, None, None)
    except BaseException as exc:
        if inspect.getgeneratorstate(manager.gen) == inspect.GEN_SUSPENDED:
            with interrupts_held():
                manager.__exit__(type(exc), exc, exc.__traceback__)  # fails the COPY, frees the lock
        raise
    return result


def copy_in(session: Any, statement: str, produce: Callable[[Callable[[str], Any]], T]) -> T:
    """Run `COPY ... FROM STDIN` in the session's transaction; `produce(write)` feeds it text."""
    return run_copy(session, statement, lambda copy: produce(copy.write))


def copy_out_csv(session: Any, query: str, params: dict[str, Any], out: BinaryIO, *, header: list[str]) -> int:
    """Stream `query` as RFC 4180 CSV (UTF-8, CRLF, header first) into `out`; returns the row count.

    PostgreSQL writes each row as one chunk ending in LF; the LF becomes CRLF here. A name's own
    newlines are inside quotes and stay as they are.
    """
    from psycopg import sql

    selected = sql.SQL(query).format(**{key: sql.Literal(value) for key, value in params.items()})
    # Take the query's table locks with an ordinary statement first: a lock wait inside the COPY's
    # start would happen while run_copy holds Ctrl-C back, leaving linea deaf to it meanwhile.
    driver_connection(session).execute(sql.SQL("SELECT 1 FROM ({}) AS take_locks LIMIT 0").format(selected))
    buffer = bytearray(",".join(header).encode() + b"\r\n")
    write = out.write
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, ENCODING 'UTF8')").format(selected)

    def stream(copy: Any) -> int:
        count = 0
        for chunk in copy:
            buffer.extend(chunk[:-1])
            buffer.extend(b"\r\n")
            count += 1
            if len(buffer) >= 1 << 18:
                write(buffer)
                buffer.clear()
        return count

    count = run_copy(session, statement, stream)
    write(buffer)
    return count


# --- files -----------------------------------------------------------------------------------

@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """The file to import as bytes (`-` is stdin); a missing file is invalid input."""
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = open(path, "rb", buffering=1 << 20)  # closed in the finally below
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not a CSV file") from None
    except PermissionError:
        raise InvalidInput(f"cannot read {path}: permission denied") from None
    except OSError as exc:  # a name too long, a broken device, ...
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        yield handle


def input_size(path: str) -> int | None:
    if path == "-":
        return None
    try:
        return os.stat(path).st_size
    except OSError:
        return None
