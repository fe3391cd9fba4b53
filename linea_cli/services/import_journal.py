"""The journal of a large `waitlist import`: its rows written in short transactions, all or nothing.

Why: one long transaction inserting N entries holds the event row's FOR KEY SHARE lock (each
inserted row's foreign key check takes it) until it commits. Every platform transaction that
updates that event meanwhile (a sign-up sets the event's `updated_at`) then leaves behind a row
version whose xmax is a multixact (the import's lock and the update), and no version can be
pruned while the import's transaction runs. Each later foreign key check, and each platform
statement that reads the event, walks that whole chain, looking every version's multixact up in
the SLRU caches (on PostgreSQL 15, eight and sixteen pages): the time per row grows with the
time spent so far. 100,000 rows took 2.2 s on a quiet PostgreSQL 15 and 161 s beside three
platform writers (benchmarks/README.md, "Heavy jobs beside live traffic"). Taking the event's
FOR KEY SHARE lock first makes it worse: the chain then has multixacts from the first row on.
A plain `psql \\copy` suffers the same; only short transactions keep the chain short.

How: the transaction that reads the file (COPY into a temporary table, validated, as before)
copies the rows to write, each address once (the file's first row for it) and in the file's
order, to a private unnamed local file (the spool), and opens the import's row in
`linea.imports`. The rows then go into `waitlist_entries` in batches of about BATCH_SECONDS,
each batch one transaction that also records how far it got; a chain of versions lasts at most
one batch. The last batch's transaction writes the audit row and deletes the journal row.

The journal holds no address (a person's data stays in the platform's tables, where erasure and
its proof look): counts, the file's name and SHA-256, and the prefix and suffix of the ids of
the entries the import writes (the file's line in between). So an unfinished import's entries
are known exactly: undoing it deletes them and its journal row in one transaction, and resuming
it reads the same file again (checked by its SHA-256) and goes on from the last batch.

While it runs, the importer holds a transaction-level advisory lock on a connection of its own
(a transaction with no snapshot and no transaction id: it keeps no row version alive, and behind
PgBouncer's transaction pooling it keeps its server connection, so the lock stays). A journal
row whose lock is free belongs to no running linea. An importer that is interrupted (Ctrl-C,
SIGTERM, an error) undoes its own import before it exits; only `kill -9` or a lost connection
leave one behind: `db doctor` reports it, `waitlist import EVENT FILE --resume` finishes it, any
other `waitlist import` undoes it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import datetime
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from linea_cli.db import copy as db_copy
from linea_cli.errors import Conflict
from linea_cli.ids import new_id
from linea_cli.interrupts import interrupts_held
from linea_cli.services.waitlist_csv import listed_join

# Fewer rows to write than this: one transaction, as before (written before a chain can grow).
JOURNAL_FROM_ROWS = 10_000
BATCH_SECONDS = 0.1
FIRST_BATCH_ROWS = 2_000
MIN_BATCH_ROWS, MAX_BATCH_ROWS = 500, 20_000

Connect = Callable[[], AbstractContextManager[Connection]]
UnitOfWork = Callable[[], AbstractContextManager[tuple[Session, Any]]]

# The advisory lock a running import holds, as SQL over the journal row's id (`id` column or `:id`).
LOCK_KEY = "hashtextextended('linea.import:' || {}, 0)"
# Whether the journal's table exists, read from the catalog (to_regclass needs USAGE on the schema).
JOURNAL_EXISTS = (
    "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'linea' AND c.relname = 'imports')"
)
ENTRY_ID_LENGTH = 25  # 'c', 12 hex digits of the import's time, 8 of the file's line, 4 random


@dataclass
class Journal:
    id: str
    event_id: str
    event_slug: str
    source: str
    file_sha256: str
    on_duplicate: str
    skip_invalid: bool
    rows: int
    invalid: int
    valid: int
    to_write: int
    ignored_columns: list[str]
    id_prefix: str
    id_suffix: str
    written: int
    inserted: int
    updated: int
    now: datetime
    started_by: str | None
    started_at: datetime | None = None

    @property
    def own_entries(self) -> str:
        """A LIKE pattern matching the ids of the entries this import wrote, and nothing else's."""
        return f"{self.id_prefix}{'_' * 8}{self.id_suffix}"


_COLUMNS = ", ".join(field.name for field in fields(Journal))


def _journal_from(row: Any) -> Journal:
    return Journal(**{**row, "ignored_columns": list(row["ignored_columns"] or [])})


def spool_rows(session: Session, stage: str, spool: IO[bytes]) -> int:
    """Copy the staged rows to write into `spool` (CSV: line, email, status, created_at as UTC
    text): each address once, the file's first row for it, in the file's order. Returns the count."""
    query = f"""
        SELECT line, email, status, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')
        FROM (SELECT DISTINCT ON (email) line, email, status, created_at FROM {stage} ORDER BY email, line) AS first
        ORDER BY line
    """

    def write_all(copy: Any) -> int:
        count = 0
        for chunk in copy:
            spool.write(chunk)
            count += 1
        return count

    count = db_copy.run_copy(session, f"COPY ({query}) TO STDOUT (FORMAT csv, ENCODING 'UTF8')", write_all)
    spool.flush()
    spool.seek(0)
    return count


def spooled_batches(spool: IO[bytes], *, skip: int) -> Callable[[int], list[tuple[int, str, str | None, str | None]]]:
    """`next_rows(n)`: the next n spooled rows (fewer at the end), after the first `skip`."""
    reader = csv.reader(io.TextIOWrapper(spool, encoding="utf-8", newline=""))
    for _ in range(skip):
        next(reader, None)

    def next_rows(count: int) -> list[tuple[int, str, str | None, str | None]]:
        rows = []
        for record in reader:
            line, email, status, created_at = record
            rows.append((int(line), email, status or None, created_at or None))
            if len(rows) >= count:
                break
        return rows

    return next_rows


def open_journal(
    session: Session, *, event_id: str, event_slug: str, source: str, file_sha256: str, on_duplicate: str,
    skip_invalid: bool, rows: int, invalid: int, valid: int, to_write: int, ignored_columns: list[str],
    now: datetime, started_by: str | None,
) -> Journal:
    """Open the import's journal row in the caller's transaction (the one that read the file)."""
    journal = Journal(
        id=new_id(), event_id=event_id, event_slug=event_slug, source=source, file_sha256=file_sha256,
        on_duplicate=on_duplicate, skip_invalid=skip_invalid, rows=rows, invalid=invalid, valid=valid,
        to_write=to_write, ignored_columns=ignored_columns, id_prefix=f"c{int(now.timestamp() * 1000):012x}",
        id_suffix=secrets.token_hex(2), written=0, inserted=0, updated=0, now=now, started_by=started_by,
    )
    values = {field.name: getattr(journal, field.name) for field in fields(Journal) if field.name != "started_at"}
    session.execute(
        sa.text(f"INSERT INTO linea.imports ({', '.join(values)}) VALUES ({', '.join(':' + name for name in values)})"),
        values,
    )
    return journal


def _locked(session: Session, import_id: str, *, skip_locked: bool = False) -> Journal | None:
    row = session.execute(
        sa.text(f"SELECT {_COLUMNS} FROM linea.imports WHERE id = :id FOR UPDATE" + (" SKIP LOCKED" if skip_locked else "")),
        {"id": import_id},
    ).mappings().first()
    return _journal_from(row) if row else None


def unfinished(session: Session, *, event_id: str | None = None) -> list[Journal]:
    """The journal rows in the database (running imports included), oldest first."""
    if not session.execute(sa.text(JOURNAL_EXISTS)).scalar():
        return []
    rows = session.execute(
        sa.text(f"SELECT {_COLUMNS} FROM linea.imports" + (" WHERE event_id = :event_id" if event_id else "")
                + " ORDER BY started_at, id"),
        {"event_id": event_id},
    ).mappings().all()
    return [_journal_from(row) for row in rows]


@contextlib.contextmanager
def held(connect: Connect, journal_id: str, *, wait: bool = True) -> Iterator[bool]:
    """The import's advisory lock, held on a connection of its own until the block ends; yields
    False (nothing held) when `wait` is false and another linea holds it."""
    from psycopg import sql as psycopg_sql

    with connect() as connection:
        engine = connection.engine
    # A plain driver connection, outside SQLAlchemy's transaction events: nothing but the lock
    # runs in its transaction, so it holds no snapshot (an xmin would keep every dead version of
    # the event row alive, the very thing the batches avoid).
    keeper = engine.raw_connection()
    try:
        function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        # The id as a literal, never a bound parameter: a statement with parameters goes by the
        # extended protocol, whose unnamed portal stays open after it ran, and its snapshot with it
        # (seen as the backend's xmin for the whole import). Without, psycopg uses the simple one.
        statement = psycopg_sql.SQL(f"SELECT {function}({LOCK_KEY})").format(psycopg_sql.Literal(journal_id))
        got = keeper.driver_connection.execute(statement).fetchone()[0]
        yield got is not False
    finally:
        with interrupts_held():
            keeper.close()  # the server ends the transaction, and the lock with it


_BATCH = """unnest(CAST(:lines AS integer[]), CAST(:emails AS text[]), CAST(:statuses AS text[]),
                   CAST(:created AS text[])) AS b(line, email, status, created_at)"""


def write_batch(session: Session, journal: Journal, rows: list[tuple[int, str, str | None, str | None]]) -> None:
    """Write the next spooled rows in the caller's transaction, and how far the import got.

    Raises Conflict when the journal row is gone or moved on (another linea found the import
    unfinished and undid or resumed it).
    """
    current = _locked(session, journal.id)
    if current is None or current.written != journal.written:
        raise Conflict(f"the import into {journal.event_slug} was undone or taken over meanwhile (its lock was lost)")
    lines, emails, statuses, created = (list(column) for column in zip(*rows, strict=True))
    params = {
        "lines": lines, "emails": emails, "statuses": statuses, "created": created, "event_id": journal.event_id,
        "now": journal.now, "prefix": journal.id_prefix, "suffix": journal.id_suffix, "own": journal.own_entries,
    }
    updated = 0
    if journal.on_duplicate == "update":
        # Entries already on the list take the file's status (each address is in the spool once).
        updated = session.execute(sa.text(f"""
            UPDATE waitlist_entries AS w SET status = b.status::"WaitlistStatus", updated_at = :now
            FROM {_BATCH}
            WHERE w.event_id || '' = :event_id AND lower(w.email) = b.email AND w.deleted_at IS NULL
              AND b.status IS NOT NULL AND w.status <> b.status::"WaitlistStatus" AND w.id NOT LIKE :own
        """), params).rowcount
    inserted = session.execute(sa.text(f"""
        INSERT INTO waitlist_entries (id, email, event_id, user_id, status, created_at, updated_at)
        SELECT :prefix || lpad(to_hex(b.line), 8, '0') || :suffix, b.email, :event_id, u.id,
               coalesce(b.status::"WaitlistStatus", 'PENDING'),
               coalesce(date_trunc('milliseconds', b.created_at::timestamp), :now), :now
        FROM {_BATCH}
        LEFT JOIN LATERAL (
            SELECT id FROM users WHERE lower(email) = b.email AND deleted_at IS NULL ORDER BY created_at, id LIMIT 1
        ) AS u ON true
        {listed_join("b.email")}
        WHERE listed.found IS NULL
        ORDER BY b.line
        ON CONFLICT (email, event_id) DO NOTHING
    """), params).rowcount
    session.execute(sa.text(
        "UPDATE linea.imports SET written = written + :rows, inserted = inserted + :inserted, "
        "updated = updated + :updated, updated_at = now() WHERE id = :id"
    ), {"id": journal.id, "rows": len(rows), "inserted": inserted, "updated": updated})
    journal.written += len(rows)
    journal.inserted += inserted
    journal.updated += updated


def finish(session: Session, journal: Journal) -> None:
    """The import's last step, in the caller's transaction (with the audit row): the journal row goes."""
    current = _locked(session, journal.id)
    if current is None or current.written != journal.written:
        raise Conflict(f"the import into {journal.event_slug} was undone or taken over meanwhile (its lock was lost)")
    session.execute(sa.text("DELETE FROM linea.imports WHERE id = :id"), {"id": journal.id})


@dataclass(frozen=True)
class Undone:
    journal: Journal
    removed: int
    kept: int = 0  # entries of the import that someone changed since: theirs now


def claim_event(session: Session, event_id: str, event_slug: str) -> None:
    """Make this the only import into the event, for the caller's transaction (the one that reads
    the file) and, through the journal's lock, for its batches: two imports into one event at once
    would skip each other's rows as already listed, and an undo of one would then lose them."""
    if not session.execute(
        sa.text(f"SELECT pg_try_advisory_xact_lock({LOCK_KEY.format(':key')})"), {"key": "event:" + event_id}
    ).scalar():
        raise Conflict(f"another import into {event_slug} is starting; try again when it is done")


def undo(session: Session, import_id: str, *, wait: bool = True) -> Undone | None:
    """Undo an unfinished import in the caller's transaction: delete the entries it wrote and its
    journal row. None when there is nothing to undo, when its linea is still running (holds the
    lock), or (without `wait`) when a transaction of it is still ending."""
    if not session.execute(sa.text(f"SELECT pg_try_advisory_xact_lock({LOCK_KEY.format(':id')})"), {"id": import_id}).scalar():
        return None
    journal = _locked(session, import_id, skip_locked=not wait)
    if journal is None:
        return None
    # Only the entries as the import wrote them: one someone confirmed, cancelled or removed since
    # (its updated_at moved on) is theirs now, kept and counted.
    removed, kept = session.execute(sa.text("""
        WITH own AS (
            SELECT id, updated_at = :now AND deleted_at IS NULL AS untouched FROM waitlist_entries
            WHERE event_id = :event_id AND id LIKE :own AND length(id) = :length
        ), gone AS (
            DELETE FROM waitlist_entries AS w USING own WHERE w.id = own.id AND own.untouched RETURNING 1
        )
        SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM own WHERE NOT untouched)
    """), {"event_id": journal.event_id, "own": journal.own_entries, "length": ENTRY_ID_LENGTH, "now": journal.now}).one()
    session.execute(sa.text("DELETE FROM linea.imports WHERE id = :id"), {"id": import_id})
    return Undone(journal, removed, kept)


def next_batch_rows(rows: int, seconds: float) -> int:
    """Aim the next batch at BATCH_SECONDS: at most double or halve it at a time."""
    factor = min(2.0, max(0.5, BATCH_SECONDS / max(seconds, 0.001)))
    return min(MAX_BATCH_ROWS, max(MIN_BATCH_ROWS, int(rows * factor)))
