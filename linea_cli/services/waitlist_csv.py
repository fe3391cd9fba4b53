"""The waitlist's file format and the SQL that moves it: what `waitlist import` reads and
`waitlist export` writes, in one place.

Import: the file's rows are read, validated and sent with COPY into a temporary table as they are
read (constant memory), then set-based statements merge that table into `waitlist_entries`.
Export: one SELECT that COPY writes as CSV (cells a spreadsheet would run as formulas
neutralized in SQL), and the same columns as records for JSON and NDJSON.

Adding a column means editing this module: the header (`IMPORT_COLUMNS`, `map_header`), the row
(`stream_import_rows`), the staging table and the merge, or the export's columns and SELECTs.
The rules around them (who may import, all or nothing, dry runs, the audit row) stay in
linea_cli.services.waitlist.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlmodel import Session

from linea_cli.csvio import AUTO, DELIMITER_NAMES, csv_input, header_hint, neutralized_sql, unneutralize
from linea_cli.db import copy as db_copy
from linea_cli.db.models import User, WaitlistEntry
from linea_cli.enums import WaitlistStatus
from linea_cli.errors import InvalidInput, shown
from linea_cli.services.emails import check_email, international_canonical_email, simple_email
from linea_cli.timeutil import SQL_ISO_TIMESTAMP, parse_datetime

IMPORT_COLUMNS = ("email", "status", "created_at", "name")
# Written by `waitlist export` but set by the database on import; accepted without a warning.
IGNORED_EXPORT_COLUMNS = ("updated_at",)
EXPORT_COLUMNS = ("email", "status", "created_at", "updated_at", "name")
STATUSES = tuple(status.name for status in WaitlistStatus)
ON_DUPLICATE = ("skip", "update")


# --- the header ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportHeader:
    email: int
    status: int | None
    created_at: int | None
    width: int
    name: int | None = None
    unknown: tuple[str, ...] = ()


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
            hint=header_hint(fields, delimiter, column="email")
            or "the first line must name the columns: " + IMPORT_COLUMNS[0] + "".join(f"[,{c}]" for c in IMPORT_COLUMNS[1:]),
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


# --- the rows --------------------------------------------------------------------------------

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
    named_rows: int = 0  # rows with a name: names are not imported, and the user is told
    first_invalid: list[InvalidRow] = field(default_factory=list)


_STATUS_BY_NAME = {name: name for name in STATUSES}
_STATUS_CHOICES = ", ".join(STATUSES[:-1]) + " or " + STATUSES[-1]
_COPY_NULL = db_copy.COPY_NULL

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
    return parse_datetime(text, timezone=timezone, field="created_at").isoformat(sep=" ") + "+00"


def _copy_line(line: int, fields: list[str], header: ImportHeader, timezone: str) -> str:
    """One valid row as a `line\temail\tstatus\tcreated_at` COPY text line; InvalidInput saying
    what is wrong with it otherwise."""
    if len(fields) != header.width:
        raise InvalidInput(f"{len(fields)} fields where the header has {header.width}")
    raw_email = fields[header.email]
    # A leading quote may be linea's own neutralization: the exact path removes it. An accented
    # address never matches `simple_email` (ASCII only): it is not tried.
    if raw_email[:1] != "'" and raw_email.isascii() and simple_email(raw_email):
        email = raw_email.lower()
    elif raw_email[:1] != "'" and (international := international_canonical_email(raw_email)) is not None:
        email = international  # as fast, and needs no COPY escaping
    else:
        checked, reason = check_email(unneutralize(raw_email.strip()))
        if checked is None:
            raise InvalidInput(reason or "invalid email")
        email = db_copy.copy_text(checked)
    status = _COPY_NULL
    text = fields[header.status].strip() if header.status is not None else ""
    if text:
        status = _STATUS_BY_NAME.get(text.upper(), "")
        if not status:
            raise InvalidInput(f"unknown status {shown(text)}: use {_STATUS_CHOICES}")
    text = fields[header.created_at].strip() if header.created_at is not None else ""
    created = created_at_text(text, timezone) if text else _COPY_NULL
    return f"{line}\t{email}\t{status}\t{created}\n"


def stream_import_rows(
    source: BinaryIO,
    *,
    write: Callable[[str], Any],
    delimiter: str | None = None,
    encoding: str = AUTO,
    on_delimiter: Callable[[str], None] | None = None,
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
    the header line decides (comma, semicolon or tab) and `on_delimiter` hears which one when it
    is not a comma.
    """
    tell = getattr(source, "tell", None) if on_progress is not None else None  # bytes of the file itself
    header, records = _header_and_records(source, delimiter, encoding=encoding, on_delimiter=on_delimiter)
    stats = StreamStats(unknown_columns=header.unknown)
    batches = _Batches(write, batch_rows, progress=(lambda: on_progress(tell())) if tell is not None else None)  # type: ignore[misc]
    for line, fields in records:
        stats.rows += 1
        try:
            copy_line = _copy_line(line, fields, header, timezone)
        except InvalidInput as exc:
            row = InvalidRow(line, fields[header.email] if len(fields) > header.email else "", exc.message)
            stats.invalid += 1
            if len(stats.first_invalid) < sample_size:
                stats.first_invalid.append(row)
            if on_invalid is not None:
                on_invalid(row)
            if not keep_writing_after_invalid:
                batches.stop()
            continue
        stats.valid += 1
        if header.name is not None and fields[header.name].strip():
            stats.named_rows += 1
        batches.add(copy_line)
    batches.close()
    return stats


def _header_and_records(
    source: BinaryIO, delimiter: str | None, *, encoding: str = AUTO, on_delimiter: Callable[[str], None] | None = None
) -> tuple[ImportHeader, Iterator[tuple[int, list[str]]]]:
    """The file's mapped header and its remaining records. Without a `delimiter`, the header line
    decides (`csvio.detect_delimiter`): a file with one column is comma-separated, or
    tab-separated for Excel's "Unicode text" (UTF-16)."""
    read = csv_input(source, encoding=encoding, delimiter=delimiter)
    records = read.records
    try:
        _, header_fields = next(records)
    except StopIteration:
        raise InvalidInput("the file is empty: it needs a header row naming an 'email' column") from None
    if read.detected and read.delimiter != "," and on_delimiter is not None:
        on_delimiter(DELIMITER_NAMES.get(read.delimiter, read.delimiter))
    return map_header(header_fields, delimiter=read.delimiter), records


class _Batches:
    """COPY text lines written `size` at a time; after `stop()` (all-or-nothing and a row was
    invalid) nothing more is written, the rest of the file is only validated."""

    def __init__(self, write: Callable[[str], Any], size: int, *, progress: Callable[[], None] | None) -> None:
        self.write, self.size, self.progress = write, size, progress
        self.buffer: list[str] = []
        self.writing = True

    def add(self, copy_line: str) -> None:
        if not self.writing:
            return
        self.buffer.append(copy_line)
        if len(self.buffer) >= self.size:
            self.write("".join(self.buffer))
            self.buffer.clear()
            if self.progress is not None:
                self.progress()

    def stop(self) -> None:
        self.writing = False
        self.buffer.clear()

    def close(self) -> None:
        if self.writing and self.buffer:
            self.write("".join(self.buffer))
        if self.progress is not None:
            self.progress()


# --- import: stage, then merge ---------------------------------------------------------------

STAGE_TABLE = _STAGE = "linea_waitlist_import"
# cuid-shaped ids that sort like the file: rows without created_at share one timestamp, and
# (created_at, id) is the sign-up order `promote` follows, so the file's order is kept.
_IMPORT_ID = (
    "('c' || lpad(to_hex((extract(epoch FROM statement_timestamp()) * 1000)::bigint), 12, '0')"
    " || lpad(to_hex(i.line), 8, '0') || :salt)"
)


def stage_import(
    session: Session,
    source: BinaryIO,
    *,
    delimiter: str | None,
    encoding: str = AUTO,
    on_delimiter: Callable[[str], None] | None = None,
    timezone: str,
    keep_writing_after_invalid: bool,
    on_invalid: Callable[[InvalidRow], None] | None,
    on_progress: Callable[[int], None] | None,
    sample_size: int,
) -> StreamStats:
    """Read the file into a temporary table (dropped at commit) with COPY; the rows' numbers come back."""
    session.execute(sa.text("SET LOCAL work_mem = '64MB'"))
    session.execute(sa.text(
        f'CREATE TEMP TABLE {_STAGE} (line integer NOT NULL, email text NOT NULL, '
        f'status "WaitlistStatus", created_at timestamptz) ON COMMIT DROP'
    ))
    return db_copy.copy_in(
        session,
        f"COPY {_STAGE} (line, email, status, created_at) FROM STDIN",
        lambda write: stream_import_rows(
            source, write=write, delimiter=delimiter, encoding=encoding, on_delimiter=on_delimiter, timezone=timezone,
            keep_writing_after_invalid=keep_writing_after_invalid,
            on_invalid=on_invalid, on_progress=on_progress, sample_size=sample_size,
        ),
    )


def merge_staged(session: Session, *, event_id: str, staged: int, on_duplicate: str, now: datetime) -> tuple[int, int]:
    """Write the staged rows into the event's waitlist, set-based; returns (inserted, updated).

    Duplicates (in the file or already on the list) are not errors: `skip` keeps the existing
    entry (the file's first row for an address wins), `update` sets its status from the file.
    Removed entries stay removed.
    """
    if staged > 10_000:
        session.execute(sa.text(f"ANALYZE {_STAGE}"))
    params = {"event_id": event_id, "now": now, "salt": secrets.token_hex(2)}
    updated = 0
    if on_duplicate == "update":
        updated = session.execute(sa.text(f"""
            UPDATE waitlist_entries AS w SET status = s.status, updated_at = :now
            FROM (SELECT DISTINCT ON (email) email, status FROM {_STAGE} ORDER BY email, line) AS s
            WHERE w.event_id = :event_id AND lower(w.email) = s.email AND w.deleted_at IS NULL
              AND s.status IS NOT NULL AND w.status <> s.status
        """), params).rowcount
    inserted = session.execute(sa.text(f"""
        INSERT INTO waitlist_entries (id, email, event_id, user_id, status, created_at, updated_at)
        SELECT {_IMPORT_ID}, i.email, :event_id, u.id, coalesce(i.status, 'PENDING'), coalesce(date_trunc('milliseconds', i.created_at AT TIME ZONE 'UTC'), :now), :now
        FROM {_STAGE} AS i LEFT JOIN (
            SELECT DISTINCT ON (lower(email)) lower(email) AS email, id FROM users
            WHERE deleted_at IS NULL ORDER BY lower(email), created_at, id
        ) AS u ON u.email = i.email
        -- Entries already on the list are dropped by one anti-join (a re-import is cheap); ON CONFLICT
        -- still catches the file's own duplicates and sign-ups committed meanwhile.
        -- Staged addresses are canonical (lower case); the platform's rows may not be.
        WHERE NOT EXISTS (SELECT 1 FROM waitlist_entries AS w WHERE w.event_id = :event_id AND lower(w.email) = i.email)
        ORDER BY i.line
        ON CONFLICT (email, event_id) DO NOTHING
    """), params).rowcount
    return inserted, updated


def listed_join(address: str) -> str:
    """A LEFT JOIN LATERAL giving `listed.found` (NULL: `address` has no entry in the event
    `:event_id`, removed ones included), for set-based statements over many rows.

    One lookup per row in the lower(email) index, whatever the statistics say: they are stale
    while an import runs, and planned for an empty event an anti-join, or the event_id index,
    rescans the event's growing entries for every row. `|| ''` keeps the event_id index out (an
    address is on few lists; an event may have millions of entries).
    """
    return (
        "LEFT JOIN LATERAL (SELECT 1 AS found FROM waitlist_entries AS w "
        f"WHERE lower(w.email) = {address} AND w.event_id || '' = :event_id LIMIT 1) AS listed ON true"
    )


def dry_run_counts(session: Session, *, event_id: str, on_duplicate: str) -> tuple[int, int]:
    """What merge_staged would write, (inserted, updated), found by reading only: a dry run takes
    no lock on the event row (a long one beside the platform's updates is what short batches avoid)."""
    row = session.execute(sa.text(f"""
        WITH s AS (SELECT DISTINCT ON (email) email, status FROM {_STAGE} ORDER BY email, line)
        SELECT
          (SELECT count(*) FROM s {listed_join("s.email")} WHERE listed.found IS NULL) AS inserted,
          (SELECT count(*) FROM s JOIN waitlist_entries AS w ON lower(w.email) = s.email
           WHERE :update AND w.event_id = :event_id AND w.deleted_at IS NULL
             AND s.status IS NOT NULL AND w.status <> s.status) AS updated
    """), {"event_id": event_id, "update": on_duplicate == "update"}).one()
    return row.inserted, row.updated


# --- export ----------------------------------------------------------------------------------

def export_csv_query(
    event_id: str, *, status: WaitlistStatus | None = None, raw: bool = False, keyed: bool = False,
    after: ExportKey | None = None,
) -> tuple[str, dict[str, Any]]:
    """The SELECT behind a CSV export ({placeholders} for db.copy.copy_out_csv), also used by the benchmark.

    `keyed`: each row starts with its key (EXPORT_KEY_FIELDS columns, see `ExportKey`); `after`:
    only the rows after that key, in the export's order (created_at, id).
    """
    safe = (lambda expression: expression) if raw else neutralized_sql
    key = f"{_KEY_SQL}, " if keyed else ""
    query = f"""
        SELECT {key}{safe('e.email')}, e.status::text, to_char(e.created_at, {SQL_ISO_TIMESTAMP}), to_char(e.updated_at, {SQL_ISO_TIMESTAMP}),
               {safe('u.name')}
        FROM waitlist_entries AS e LEFT JOIN users AS u ON u.id = e.user_id AND u.deleted_at IS NULL
        WHERE e.event_id = {{event_id}} AND e.deleted_at IS NULL {"AND e.status = {status}" if status else ""}
          {_AFTER_SQL if after else ""}
        ORDER BY e.created_at, e.id
    """
    params: dict[str, Any] = {"event_id": event_id}
    if status:
        params["status"] = status.name
    if after:
        params.update(after_created=after.created_at, after_id=after.id)
    return query, params


@dataclass(frozen=True)
class ExportKey:
    """Where an export got to: the (created_at, id) of the last row written, in the export's order."""

    created_at: str  # UTC, 'YYYY-MM-DD HH24:MI:SS.US', exact to the microsecond
    id: str

    @classmethod
    def from_copy(cls, key: bytes) -> ExportKey:
        hex_id, created_at = key.split(b",")
        return cls(created_at=created_at.decode(), id=bytes.fromhex(hex_id.decode()).decode())


# A key COPY never quotes (hex, digits), whatever the id holds: the CSV line is cut at its commas.
_KEY_SQL = "encode(convert_to(e.id, 'UTF8'), 'hex'), to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
EXPORT_KEY_FIELDS = 2
_AFTER_SQL = "AND (e.created_at, e.id) > ({after_created}::timestamp AT TIME ZONE 'UTC', {after_id})"


@dataclass
class ExportProgress:
    """How far a CSV export got (rows written, the last one's key), so that it can go on elsewhere."""

    count: int = 0
    after: ExportKey | None = None


def copy_export_csv(
    session: Session, *, event_id: str, out: BinaryIO, status: WaitlistStatus | None, raw: bool,
    progress: ExportProgress | None = None,
) -> int:
    """The event's live entries as CSV into `out`, written by COPY (constant memory); returns the
    row count. With `progress`, only the rows after `progress.after` (the header with the first),
    `progress` kept up to date as rows are written: a COPY that fails can go on elsewhere."""
    progress = progress if progress is not None else ExportProgress()
    query, params = export_csv_query(event_id, status=status, raw=raw, keyed=True, after=progress.after)
    before = progress.count

    def written(key: bytes, count: int) -> None:
        progress.count = before + count
        if key:
            progress.after = ExportKey.from_copy(key)

    db_copy.copy_out_csv(
        session, query, params, out, header=list(EXPORT_COLUMNS) if progress.after is None else None,
        key_fields=EXPORT_KEY_FIELDS, on_written=written,
    )
    return progress.count


def export_records(
    session: Session, *, event_id: str, status: WaitlistStatus | None, batch_size: int, after: ExportKey | None = None,
) -> Iterator[tuple[ExportKey, dict[str, Any]]]:
    """The same entries as (key, record keyed by EXPORT_COLUMNS) (for json/ndjson), through a
    server-side cursor; with `after`, only those after it."""
    entries, users = WaitlistEntry.__table__, User.__table__
    created = sa.func.to_char(sa.func.timezone("UTC", entries.c.created_at), "YYYY-MM-DD HH24:MI:SS.US")
    query = (
        sa.select(
            entries.c.email, entries.c.status, entries.c.created_at, entries.c.updated_at, users.c.name,
            entries.c.id.label("key_id"), created.label("key_created_at"),
        )
        .outerjoin(users, sa.and_(users.c.id == entries.c.user_id, users.c.deleted_at.is_(None)))
        .where(entries.c.event_id == event_id, entries.c.deleted_at.is_(None))
        .order_by(entries.c.created_at, entries.c.id)
    )
    if status is not None:
        query = query.where(entries.c.status == status)
    if after is not None:
        since = sa.func.timezone("UTC", sa.cast(after.created_at, sa.DateTime))
        query = query.where(sa.tuple_(entries.c.created_at, entries.c.id) > sa.tuple_(since, after.id))
    result = session.execute(query.execution_options(yield_per=batch_size))
    for row in result.mappings():
        record = {name: row[name] for name in EXPORT_COLUMNS}
        yield ExportKey(created_at=row["key_created_at"], id=row["key_id"]), record
