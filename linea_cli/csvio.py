"""CSV files as people and spreadsheets write them: streaming records in, formula-safe cells out.

Nothing here knows a table or a database: what the columns mean is the caller's business
(linea_cli.services.waitlist_csv for the waitlist), COPY lives in linea_cli.db.copy.

Reading: the file is read as bytes, one physical line at a time, and decoded strictly as UTF-8
(an optional BOM is dropped) or in the encoding named, so a line that does not decode is refused
with its number (and, for UTF-8, the encoding it likely is: `likely_encoding`); the csv module
then joins physical lines into records (quoted commas, quotes and newlines, CRLF, LF or CR). Memory
stays constant: records are yielded as they are read, never kept in a list. A UTF-16 file with a
byte order mark (Excel's "Unicode text"), or any encoding that does not keep ASCII bytes as they
are, is converted to UTF-8 as it streams (`decoded_input`). Without a delimiter, the header line
decides (`detect_delimiter`).

Writing: spreadsheets run a cell starting with `=`, `+`, `-`, `@`, tab, CR or LF as a formula
(OWASP "CSV injection"); such a cell gets a leading `'`, unless it is a plain negative number
(`-42`, `-3.5`: a number to the spreadsheet, so left as it is). To keep the round trip exact, a cell that
already is quotes followed by one of those characters gets one more quote, and import removes one.
The rule is written once (`_FORMULA_START`) and used both in Python (`neutralize`, for rendered
CSV) and in SQL (`neutralized_sql`, for CSV that COPY writes).
"""

from __future__ import annotations

import csv
import hashlib
import io
import operator
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from linea_cli.errors import InvalidInput, shown

# The characters a spreadsheet takes as the start of a formula, as a bracket expression that means
# the same in Python's and in PostgreSQL's regular expressions ("-" first: a literal in both).
_FORMULA_START = "[-=+@\t\r\n]"
# Except a plain negative number (`-2482586837789799585`, a queryid given as text; `-3.5`): a
# spreadsheet reads it as the number it is, and a `'` would change the data. Nothing may follow it
# (`\Z`, the end of the text in both dialects: `-1+1` is a formula, `-1\n` not a number); ASCII
# digits only, as a spreadsheet reads them (Python's `\d` takes `٣` too).
_PLAIN_NEGATIVE = r"(?!-[0-9]+(?:\.[0-9]+)?\Z)"
_NEEDS_QUOTE = re.compile(_PLAIN_NEGATIVE + "'*" + _FORMULA_START)
_QUOTED_TRIGGER = re.compile("'+" + _FORMULA_START)
_SQL_NEEDS_QUOTE = "^" + _PLAIN_NEGATIVE + "'*" + _FORMULA_START

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


# --- reading ---------------------------------------------------------------------------------

UTF_16 = "UTF-16"
AUTO = "auto"
_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
# What a spreadsheet saves as "CSV" where UTF-8 is not the default, most likely first: Western
# Europe's (Excel's "ANSI" in France, Germany, Spain...), Central Europe's, Cyrillic.
_LIKELY_ENCODINGS = ("windows-1252", "windows-1250", "windows-1251")
_ASCII_PROBE = "email,status;created_at\tname\r\n\"@.-+_'0123456789"


def check_encoding(name: str) -> str:
    """--encoding: `auto`, or a Python codec name (`windows-1252`, `latin-1`, `utf-16`...)."""
    import codecs

    if name.strip().lower() == AUTO:
        return AUTO
    try:
        codecs.lookup(name.strip())
    except LookupError:
        raise InvalidInput(
            f"unknown encoding {shown(name)}", hint="name a Python codec such as windows-1252, latin-1 or utf-16, or use auto"
        ) from None
    try:
        "x".encode(name.strip()).decode(name.strip())
    except (TypeError, LookupError, UnicodeError, AttributeError):  # rot13, base64, ...: not a text encoding
        raise InvalidInput(f"{shown(name)} is not a text encoding", hint="name one such as windows-1252, latin-1 or utf-16") from None
    return name.strip()  # as the user wrote it, for messages; Python takes its aliases


def decoded_input(source: BinaryIO, encoding: str = AUTO) -> tuple[BinaryIO, str, str | None]:
    """(the file as bytes whose lines decode with the codec, the codec, the encoding it was
    converted from, or None when it is read as it is).

    `auto`: UTF-8 with or without a byte order mark, or Excel's "Unicode text" (UTF-16 with a byte
    order mark), converted to UTF-8 as it streams; UTF-32 is refused by name; a file that is none
    of these is refused at its first line that is not UTF-8 (`read_records`) with the encoding it
    most likely is. A named encoding that keeps ASCII as ASCII (windows-1252, latin-1...) is
    decoded line by line, so an error names its line; any other (UTF-16, UTF-32...) is converted.
    """
    if not hasattr(source, "peek"):  # an in-memory stream, say
        source = io.BufferedReader(source)  # type: ignore[arg-type]
    if encoding == AUTO:
        head = source.peek(4)[:4]  # type: ignore[attr-defined]
        if head.startswith(_UTF32_BOMS):
            raise InvalidInput("the file is UTF-32, which linea reads only when told", hint="use --encoding utf-32, or save it as UTF-8 (CSV UTF-8 in Excel)")
        if head.startswith(_UTF16_BOMS):
            return io.BufferedReader(_Utf16AsUtf8(source, "utf-16"), 1 << 20), "utf-8", UTF_16  # type: ignore[return-value]
        return source, AUTO, None
    if _ascii_compatible(encoding):
        return source, encoding, None
    return io.BufferedReader(_Utf16AsUtf8(source, encoding), 1 << 20), "utf-8", encoding  # type: ignore[return-value]


def _ascii_compatible(encoding: str) -> bool:
    try:
        return _ASCII_PROBE.encode(encoding) == _ASCII_PROBE.encode("ascii") and b"\n".decode(encoding) == "\n"
    except UnicodeError:
        return False


def likely_encoding(data: bytes) -> tuple[str, str] | None:
    """The encoding a line that is not UTF-8 most likely is, and the line read in it (None: no idea).

    A Western text read as windows-1252 has its accented letters among ASCII ones ("Zoë"); a
    Cyrillic one read so is runs of accented Latin letters ("Ïðèâåò"), read as windows-1251 instead.
    """
    if b"\x00" in data:
        return None
    readings: dict[str, str] = {}
    for candidate in _LIKELY_ENCODINGS:
        try:
            readings[candidate] = data.decode(candidate)
        except UnicodeDecodeError:
            continue
    western = readings.get("windows-1252")
    if western is not None and "windows-1251" in readings and re.search(r"[^\x00-\x7f]{3}", western):
        return "windows-1251", readings["windows-1251"]
    for candidate, text in readings.items():
        if all(ch.isalpha() or ch in "’‘“”–—€«»°§£¿¡·" for ch in text if ord(ch) > 127):
            return candidate, text
    return None


class _Utf16AsUtf8(io.RawIOBase):
    """A file in another encoding (UTF-16 with its byte order mark, ...) read as UTF-8 bytes, a chunk at a time."""

    def __init__(self, source: BinaryIO, encoding: str) -> None:
        # newline="": line endings stay as they are, for csv to see (quoted line breaks included).
        self._text = io.TextIOWrapper(source, encoding=encoding, errors="strict", newline="")  # type: ignore[arg-type]
        self._name = "UTF-16" if encoding == "utf-16" else encoding
        self._pending = memoryview(b"")
        self._characters = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                chunk = self._text.read(1 << 16)
            except UnicodeDecodeError:
                starts = "starts as UTF-16 but " if self._name == "UTF-16" else ""
                raise InvalidInput(
                    f"the file {starts}is not valid {self._name} after {self._characters} characters",
                    hint="save it again as UTF-8 (CSV UTF-8) or as Unicode text",
                ) from None
            if not chunk:
                return 0
            self._characters += len(chunk)
            try:
                self._pending = memoryview(chunk.encode("utf-8"))
            except UnicodeEncodeError:  # an unpaired surrogate
                raise InvalidInput(
                    f"the {self._name} file holds an unpaired surrogate within its first {self._characters} characters",
                    hint="save it again as UTF-8 (CSV UTF-8)",
                ) from None
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class HashedInput(io.RawIOBase):
    """A binary source read through, its bytes' SHA-256 kept (to know the same file again)."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        # read1: what is there now (a pipe's rows go on as they come, as without the hash)
        self._read_some = getattr(source, "read1", source.read)
        self._hash = hashlib.sha256()
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._read_some(len(buffer))
        if not data:
            return 0
        self._hash.update(data)
        self._read += len(data)
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self._read

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def hashed_input(source: BinaryIO) -> tuple[BinaryIO, HashedInput]:
    """`source` as a buffered reader, and the HashedInput under it (its `hexdigest()` once read)."""
    hashed = HashedInput(source)
    return io.BufferedReader(hashed, 1 << 20), hashed  # type: ignore[return-value]


@dataclass(frozen=True)
class CsvInput:
    """A file's records, and how it was read: its delimiter (`detected` from the header line or
    given) and the encoding it was converted from (None: read as it is)."""

    records: Iterator[tuple[int, list[str]]]
    delimiter: str
    detected: bool
    converted_from: str | None


def csv_input(source: BinaryIO, *, encoding: str = AUTO, delimiter: str | None = None) -> CsvInput:
    """The records of a CSV file in `encoding` (`auto`: see `decoded_input`). Without a
    `delimiter`, the header line decides between comma, semicolon and tab (`detect_delimiter`)."""
    source, codec, converted_from = decoded_input(source, check_encoding(encoding))
    detected = delimiter is None
    if delimiter is None:
        head = source.peek(1 << 16)[: 1 << 16]  # type: ignore[attr-defined]
        first_line = _LINE_END.split(head, maxsplit=1)[0]
        text = first_line.decode("utf-8" if codec == AUTO else codec, errors="replace")
        delimiter = detect_delimiter(text, default="\t" if converted_from == UTF_16 else ",")
    return CsvInput(read_records(source, delimiter=delimiter, codec=codec), delimiter, detected, converted_from)


def detect_delimiter(header: str, *, default: str = ",") -> str:
    """The delimiter of a header line: the one of comma, semicolon and tab that gives it an `email`
    column, else the one that gives it most columns; `default` when none splits it."""
    best, best_score = default, (False, 1)
    for candidate in (default, *(c for c in DELIMITER_NAMES if c != default)):
        names = [name.strip().lower() for name in next(csv.reader([header], delimiter=candidate), [])]
        score = ("email" in names, len(names))
        if score > best_score:
            best, best_score = candidate, score
    return best


def read_records(source: BinaryIO, *, delimiter: str = ",", codec: str = AUTO) -> Iterator[tuple[int, list[str]]]:
    """(line number where the record starts, fields) for every non-blank record, header included.

    Lines are split on b"\\n" (never part of a character in UTF-8 or in the ASCII-compatible
    `codec`) and decoded strictly, one by one, so a decoding error names its line; csv joins the
    lines of quoted fields back together. `auto`: UTF-8, and a line that is not gets a hint naming
    the encoding it likely is.
    """
    if len(delimiter) != 1 or delimiter in "\"\r\n":
        raise InvalidInput(f"invalid delimiter {shown(delimiter)}: use one character such as ',' ';' or a tab")
    decode = bytes.decode if codec == AUTO else operator.methodcaller("decode", codec)
    reader = csv.reader(map(decode, _physical_lines(source)), delimiter=delimiter, strict=True)
    previous_end = 0
    first = True
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise _not_decodable(exc, line=reader.line_num + 1, codec=codec) from None
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


def _not_decodable(exc: UnicodeDecodeError, *, line: int, codec: str) -> InvalidInput:
    data: bytes = exc.object  # type: ignore[assignment]
    byte = f"byte {exc.start + 1} of the line is {data[exc.start:exc.start + 1]!r}"
    if codec != AUTO:
        return InvalidInput(f"line {line} is not {codec} ({byte})", hint="name the file's encoding with --encoding")
    likely = likely_encoding(data)
    if likely is None:
        hint = "save the file as UTF-8 (with or without BOM), or name its encoding with --encoding"
    else:
        name, text = likely
        hint = f"it reads as {name}: {shown(text.rstrip(chr(13) + chr(10))[:80])}; use --encoding {name}"
    return InvalidInput(f"line {line} is not UTF-8 ({byte})", hint=hint)


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


DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab"}


def header_hint(fields: list[str], delimiter: str, *, column: str) -> str | None:
    """What to do about a header without `column`: most often, another separator (None: no idea)."""
    line = delimiter.join(fields)
    if "\x00" in line:
        return "the file looks like UTF-16 without a byte order mark: save it as UTF-8 (CSV UTF-8)"
    for candidate, option in DELIMITER_NAMES.items():
        if candidate != delimiter and candidate in line:
            names = next(csv.reader([line], delimiter=candidate), [])
            if column in (name.strip().lower() for name in names):
                return f"the columns are separated by {option}: use --delimiter {option}"
    return None


# --- files -----------------------------------------------------------------------------------

@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """The file to import as bytes (`-` is stdin); a missing file is invalid input."""
    if path == "-":
        yield sys.stdin.buffer
        return
    if not path:
        raise InvalidInput("the file name is empty: name a CSV file, or - for stdin")
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
