"""The statements that cost most (`pg_stat_statements`), and snapshots of the server's counters.

PostgreSQL's statistics are cumulative since their last reset. PgHero's way to see "what happened
since" is to reset them, which wipes what every other tool and person reads (pghero#325, #259).
linea never calls a reset: `take_snapshot` copies the counters of `pg_stat_statements`,
`pg_stat_user_tables` and `pg_stat_user_indexes` into linea's schema (`linea.stat_*`), and
`statements_since` / `index_scans_since` subtract a snapshot from the live counters.

A difference is only a difference when nothing restarted a counter in between. Each snapshot
keeps when the statistics were last reset (`pg_stat_statements_info.stats_reset`,
`pg_stat_database.stats_reset`) and how many statements pg_stat_statements had evicted
(`dealloc`, when more distinct statements ran than `pg_stat_statements.max`). A statement whose
counters went down was evicted (or reset) and came back: its figures count from its return,
which is said (`partial`), never shown as a negative number. After a whole reset every figure
counts from the reset (`counted_from`).

Reads run through `services.monitoring` (read-only, short lock and statement timeouts); only
`take_snapshot` writes, in the command's transaction, and only linea's own tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from linea_cli.errors import DatabaseUnavailable, InvalidInput, NotFound, parameter, shown
from linea_cli.services.actors import Actor, require_admin
from linea_cli.services.statement_text import mask_statement
from linea_cli.timeutil import parse_span

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SORTS = {"total": "total_ms", "mean": "mean_ms", "calls": "calls"}
DEFAULT_KEEP = timedelta(days=30)

# Statements of this database only: pg_stat_statements holds the whole server's.
_THIS_DATABASE = "s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"

def parse_since(value: str, *, now: datetime, timezone: str = "UTC", field_name: str = "since") -> datetime:
    """`1h`, `7d`, `1d12h` (that long before `now`, an aware time) or a date or time
    (`2026-12-01`, `2026-12-01T08:00:00+00:00`; without an offset, in `timezone`), as aware UTC:
    compared with timestamptz columns whatever the session's TimeZone."""
    from datetime import UTC

    from linea_cli.timeutil import parse_datetime

    span = parse_span(value, field=parameter(field_name))
    if span is not None:
        try:
            return now - span
        except OverflowError:
            raise InvalidInput(f"{parameter(field_name)} {shown(value)} reaches back before year 1") from None
    try:
        return parse_datetime(value, timezone=timezone, field=parameter(field_name)).replace(tzinfo=UTC)
    except InvalidInput:
        raise InvalidInput(
            f"invalid {parameter(field_name)} {shown(value)}: use a span (30m, 1h, 7d) or a date (2026-12-01)"
        ) from None


def parse_keep(value: str, *, field_name: str = "keep") -> timedelta:
    """`30d`, `12h`, `2w`: how long snapshots are kept."""
    # Snapshots older than year 1 are no snapshots: the database would refuse the cutoff.
    span = parse_span(value, field=parameter(field_name))
    if span is None:
        raise InvalidInput(f"invalid {parameter(field_name)} {shown(value)}: use e.g. 12h, 30d or 2w")
    if span <= timedelta():
        raise InvalidInput(f"{parameter(field_name)} must be longer than 0 (the snapshot just taken would go)")
    return span


# --- whether pg_stat_statements can answer ----------------------------------------------------


@dataclass(frozen=True)
class StatementsAccess:
    """Whether this role sees every role's statements (superuser or pg_read_all_stats)."""

    role: str
    sees_all: bool


def _statements_state(connection: Connection) -> Mapping[str, Any]:
    # The library defines pg_stat_statements.max when the server loaded it at start.
    return connection.execute(text(
        "SELECT current_database() AS database, current_user AS role, "
        "EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') AS available, "
        "current_setting('pg_stat_statements.max', true) IS NOT NULL AS loaded, "
        "(SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        " WHERE e.extname = 'pg_stat_statements') AS schema, "
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
        " OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all"
    )).mappings().one()


def _steps(database: str, *, loaded: bool, created: bool = False) -> tuple[str, ...]:
    """What is left to do: load the library (and restart), then create the extension in this
    database, unless it exists there already (created before the library was unloaded, say)."""
    if loaded:
        return (f"in database {database}, as a superuser: CREATE EXTENSION pg_stat_statements;",)
    steps = (
        "1. in postgresql.conf: shared_preload_libraries = 'pg_stat_statements'",
        "   (added to the libraries listed there already, if any)",
        "2. restart PostgreSQL (a reload is not enough)",
    )
    if created:
        return (*steps, f"   (the extension exists in database {database} already: nothing to create)")
    return (*steps, f"3. in database {database}, as a superuser: CREATE EXTENSION pg_stat_statements;")


def require_statements(connection: Connection, *, embedded: bool = False) -> StatementsAccess:
    """Stop (exit 5, with the exact steps) unless pg_stat_statements answers in this database."""
    state = _statements_state(connection)
    database = state["database"]
    if not state["available"]:
        if embedded:
            raise DatabaseUnavailable(
                "the embedded server has no pg_stat_statements: its binaries ship no contrib modules",
                hint="point linea at a PostgreSQL server that has them (--database-url, a profile)",
            )
        raise DatabaseUnavailable(
            "this PostgreSQL server has no pg_stat_statements module: install its contrib modules first "
            "(Debian and Ubuntu: postgresql-NN has them; RPM: postgresqlNN-contrib)",
            details=_steps(database, loaded=False),
        )
    if not state["loaded"]:
        raise DatabaseUnavailable(
            "pg_stat_statements is not loaded by the server (shared_preload_libraries)",
            details=_steps(database, loaded=False, created=state["schema"] is not None),
        )
    if state["schema"] is None:
        raise DatabaseUnavailable(
            f"pg_stat_statements is loaded but not created in database {database}",
            details=_steps(database, loaded=True),
        )
    return StatementsAccess(role=state["role"], sees_all=bool(state["sees_all"]))


def visibility_note(access: StatementsAccess) -> str | None:
    """What a role that may not read other roles' statements should know, or None."""
    if access.sees_all:
        return None
    return (
        f"role {access.role} sees only its own statements' text; other roles' show as "
        f"<insufficient privilege>: GRANT pg_read_all_stats TO {access.role}; shows them all"
    )


# --- the statements now -----------------------------------------------------------------------


def _hit_ratio(hit: float, read: float) -> float | None:
    return None if hit + read <= 0 else round(100.0 * hit / (hit + read), 2)


def _statement_row(entry: Mapping[str, Any], grand_total: float) -> dict[str, Any]:
    calls = int(entry["calls"])
    total = float(entry["total_exec_time"])
    return {
        # A utility statement keeps the constants it was run with: a password among them is masked.
        "query": mask_statement(entry["query"]),
        "calls": calls,
        "total_ms": round(total, 3),
        "mean_ms": round(total / calls, 3) if calls else 0.0,
        "rows": int(entry["rows"]),
        "share": round(100.0 * total / grand_total, 2) if grand_total > 0 else 0.0,
        "cache_hit": _hit_ratio(float(entry["shared_blks_hit"]), float(entry["shared_blks_read"])),
        "role": entry["role"],
        "queryid": None if entry["queryid"] is None else str(entry["queryid"]),
    }


_LIVE_STATEMENTS = (
    "SELECT s.queryid, s.userid, s.toplevel, r.rolname AS role, s.query, "
    "s.calls, s.total_exec_time, s.rows, s.shared_blks_hit, s.shared_blks_read, {stats_since} AS stats_since "
    "FROM {schema}.pg_stat_statements AS s LEFT JOIN pg_roles AS r ON r.oid = s.userid "
    "WHERE " + _THIS_DATABASE
)


def _stats_since(connection: Connection) -> str:
    """SQL for when an entry's counters started: `stats_since` from PostgreSQL 17 on (a statement
    reset alone, or evicted and back, is then told even when it ran more often since); unknown before."""
    version = int(connection.execute(text("SELECT current_setting('server_version_num')")).scalar_one())
    return "s.stats_since" if version >= 170000 else "NULL::timestamptz"


def _live(connection: Connection, schema: str) -> list[Mapping[str, Any]]:
    quoted = '"' + schema.replace('"', '""') + '"'
    statement = _LIVE_STATEMENTS.format(schema=quoted, stats_since=_stats_since(connection))
    return list(connection.execute(text(statement)).mappings())


def _extension_schema(connection: Connection) -> str:
    return connection.execute(text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_stat_statements'"
    )).scalar_one()


def _sorted(rows: list[dict[str, Any]], sort: str, limit: int) -> list[dict[str, Any]]:
    key = SORTS[sort]
    rows.sort(key=lambda row: (-row[key], -row["total_ms"], row["query"] or ""))
    return rows[:limit]


_ORDER = {
    "total": "s.total_exec_time DESC",
    "mean": "s.total_exec_time / nullif(s.calls, 0) DESC NULLS LAST, s.total_exec_time DESC",
    "calls": "s.calls DESC, s.total_exec_time DESC",
}


def top_statements(connection: Connection, *, sort: str = "total", limit: int = 20) -> list[dict[str, Any]]:
    """This database's statements from pg_stat_statements, costliest first by `sort`
    (total, mean or calls), at most `limit`; `share` is of all its statements' total time.
    Chosen by the server: only those `limit` texts are read out and masked."""
    if sort not in SORTS:
        raise InvalidInput(f"{parameter('sort')} is one of {', '.join(SORTS)}, not {shown(sort)}")
    schema = '"' + _extension_schema(connection).replace('"', '""') + '"'
    grand_total = float(connection.execute(text(
        f"SELECT coalesce(sum(s.total_exec_time), 0) FROM {schema}.pg_stat_statements(false) AS s "
        f"WHERE {_THIS_DATABASE}"
    )).scalar_one())
    statement = _LIVE_STATEMENTS.format(schema=schema, stats_since="NULL::timestamptz")
    entries = connection.execute(
        text(f"{statement} ORDER BY {_ORDER[sort]}, s.queryid LIMIT :limit"), {"limit": limit}
    ).mappings()
    return _sorted([_statement_row(entry, grand_total) for entry in entries], sort, limit)


# --- snapshots ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    statements_reset_at: datetime | None
    statements_evicted: int | None
    counters_reset_at: datetime | None


def _database_reset_at(connection: Connection) -> datetime | None:
    return connection.execute(text(
        "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()"
    )).scalar()


def take_snapshot(connection: Connection, *, keep: timedelta = DEFAULT_KEEP, actor: Actor | None = None) -> dict[str, Any]:
    """Copy the cumulative counters into linea.stat_* and delete snapshots older than `keep`.

    The system (cron) or an ADMIN, as every `db` command that writes. Not audited: the server's
    counters are nobody's data, and a cron job taking one an hour would fill the audit
    log with them. pg_stat_statements' part is left out (statements: None) when the extension
    cannot answer; the tables' and indexes' counters are always kept. Returns what was stored."""
    require_admin(actor, "take a statistics snapshot")
    state = _statements_state(connection)
    with_statements = bool(state["available"] and state["loaded"] and state["schema"] is not None)
    reset_at, evicted = None, None
    if with_statements:
        schema = '"' + state["schema"].replace('"', '""') + '"'
        reset_at, evicted = connection.execute(text(
            f"SELECT stats_reset, dealloc FROM {schema}.pg_stat_statements_info"
        )).one()
    taken_at = connection.execute(text(
        "INSERT INTO linea.stat_snapshots (taken_at, statements_reset_at, statements_evicted, counters_reset_at) "
        "VALUES (date_trunc('milliseconds', clock_timestamp()), :reset_at, :evicted, (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database())) "
        "RETURNING taken_at"
    ), {"reset_at": reset_at, "evicted": evicted}).scalar_one()
    statements = None
    if with_statements:
        # Statements of roles this one may not see have no queryid: nothing to compare them by.
        statements = connection.execute(text(
            "INSERT INTO linea.stat_statements (taken_at, queryid, userid, toplevel, role, calls, "
            "total_exec_time, rows, shared_blks_hit, shared_blks_read, stats_since) "
            "SELECT :taken_at, s.queryid, s.userid, s.toplevel, r.rolname, s.calls, "
            f"s.total_exec_time, s.rows, s.shared_blks_hit, s.shared_blks_read, {_stats_since(connection)} "
            # Counters only (showtext false: the texts' file is not even read).
            f"FROM {schema}.pg_stat_statements(false) AS s LEFT JOIN pg_roles AS r ON r.oid = s.userid "
            f"WHERE {_THIS_DATABASE} AND s.queryid IS NOT NULL"
        ), {"taken_at": taken_at}).rowcount
    tables = connection.execute(text(
        "INSERT INTO linea.stat_tables (taken_at, relid, schema_name, table_name, seq_scan, seq_tup_read, "
        "idx_scan, idx_tup_fetch, n_tup_ins, n_tup_upd, n_tup_del, n_live_tup, n_dead_tup, size_bytes) "
        "SELECT :taken_at, relid, schemaname, relname, seq_scan, seq_tup_read, idx_scan, idx_tup_fetch, "
        "n_tup_ins, n_tup_upd, n_tup_del, n_live_tup, n_dead_tup, pg_total_relation_size(relid) "
        "FROM pg_stat_user_tables"
    ), {"taken_at": taken_at}).rowcount
    indexes = connection.execute(text(
        "INSERT INTO linea.stat_indexes (taken_at, indexrelid, schema_name, table_name, index_name, idx_scan, "
        "idx_tup_read, idx_tup_fetch, size_bytes) "
        "SELECT :taken_at, indexrelid, schemaname, relname, indexrelname, idx_scan, idx_tup_read, idx_tup_fetch, "
        "pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
    ), {"taken_at": taken_at}).rowcount
    removed = connection.execute(text(
        "DELETE FROM linea.stat_snapshots WHERE taken_at < :taken_at - :keep"
    ), {"taken_at": taken_at, "keep": keep}).rowcount
    return {
        "taken_at": taken_at, "statements": statements, "tables": tables, "indexes": indexes,
        "removed": removed, "kept_for": _span_text(keep),
    }


def _span_text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(
        taken_at=row.taken_at, statements_reset_at=row.statements_reset_at,
        statements_evicted=row.statements_evicted, counters_reset_at=row.counters_reset_at,
    )


@dataclass
class Baseline:
    """The snapshot a `--since` difference starts from, and what the caller should be told."""

    snapshot: Snapshot
    notes: list[str] = field(default_factory=list)


def baseline_for(connection: Connection, since: datetime) -> Baseline:
    """The newest snapshot taken at or before `since`; when none is that old, the oldest one (said)."""
    columns = "taken_at, statements_reset_at, statements_evicted, counters_reset_at"
    row = connection.execute(text(
        f"SELECT {columns} FROM linea.stat_snapshots WHERE taken_at <= :since ORDER BY taken_at DESC LIMIT 1"
    ), {"since": since}).one_or_none()
    if row is not None:
        return Baseline(_snapshot(row))
    row = connection.execute(text(
        f"SELECT {columns} FROM linea.stat_snapshots ORDER BY taken_at LIMIT 1"
    )).one_or_none()
    if row is None:
        raise NotFound(
            "no statistics snapshot yet: nothing to compare with",
            hint="`linea db snapshot` takes one (run it from cron, e.g. hourly)",
        )
    baseline = Baseline(_snapshot(row))
    baseline.notes.append(
        f"no snapshot from before {since.isoformat(timespec='seconds')}: counting from the oldest, "
        f"taken at {row.taken_at.isoformat(timespec='seconds')}"
    )
    return baseline


_COUNTERS = ("calls", "total_exec_time", "rows", "shared_blks_hit", "shared_blks_read")


def statements_since(
    connection: Connection, since: datetime, *, sort: str = "total", limit: int = 20
) -> tuple[list[dict[str, Any]], list[str]]:
    """What this database's statements cost since the snapshot `baseline_for(since)` chose, and
    notes for the reader (a reset, evicted statements). Each row has `counted_from` (the
    snapshot's time, or the reset's) and `partial` (the statement's counters restarted after the
    snapshot: evicted or reset, then run again; its figures count from its return)."""
    if sort not in SORTS:
        raise InvalidInput(f"{parameter('sort')} is one of {', '.join(SORTS)}, not {shown(sort)}")
    schema = _extension_schema(connection)
    baseline = baseline_for(connection, since)
    notes = baseline.notes
    then = baseline.snapshot
    reset_at, evicted = connection.execute(text(
        f'SELECT stats_reset, dealloc FROM "{schema.replace(chr(34), chr(34) * 2)}".pg_stat_statements_info'
    )).one()
    counted_from = then.taken_at
    whole_reset = reset_at is not None and reset_at > then.taken_at
    if whole_reset:
        counted_from = reset_at
        notes.append(
            f"pg_stat_statements was reset at {reset_at.isoformat(timespec='seconds')}, after the snapshot of "
            f"{then.taken_at.isoformat(timespec='seconds')}: the figures count from the reset"
        )
    elif then.statements_evicted is not None and evicted is not None and evicted > then.statements_evicted:
        notes.append(
            f"pg_stat_statements evicted statements {evicted - then.statements_evicted} time(s) since the snapshot "
            "(more distinct statements than pg_stat_statements.max): a statement evicted then run again counts "
            "from its return (partial)"
        )
    before: dict[tuple[Any, ...], Any] = {}
    if not whole_reset:
        for row in connection.execute(text(
            "SELECT queryid, userid, toplevel, calls, total_exec_time, rows, shared_blks_hit, shared_blks_read "
            "FROM linea.stat_statements WHERE taken_at = :taken_at"
        ), {"taken_at": then.taken_at}):
            before[(row.queryid, row.userid, row.toplevel)] = row
    differences: list[dict[str, Any]] = []
    for entry in _live(connection, schema):
        old = before.get((entry["queryid"], entry["userid"], entry["toplevel"]))
        since_then = entry["stats_since"]
        # Any counter lower than in the snapshot: restarted (reset alone, or evicted and back), so
        # a statement reset and run as often since is not shown with a negative time.
        partial = old is not None and (
            any(entry[key] < getattr(old, key) for key in _COUNTERS)
            or (since_then is not None and since_then > then.taken_at)
        )
        if old is not None and not partial:
            entry = {
                **entry,
                **{key: entry[key] - getattr(old, key) for key in _COUNTERS},
            }
        if int(entry["calls"]) <= 0:
            continue
        differences.append({**entry, "partial": partial})
    grand_total = sum(float(entry["total_exec_time"]) for entry in differences)
    rows = []
    for entry in differences:
        row = _statement_row(entry, grand_total)
        row["counted_from"] = counted_from
        row["partial"] = entry["partial"]
        rows.append(row)
    if any(row["partial"] for row in rows):
        notes.append(
            "statements marked partial restarted their counters after the snapshot (evicted or reset, then run "
            "again): their figures count from their return"
        )
    return _sorted(rows, sort, limit), notes


def query_time_history(connection: Connection, *, since: datetime | None = None) -> list[dict[str, Any]]:
    """Each snapshot (from `since` on) with the statements' total time and calls in the interval
    that ends at it (none for the first): a statement whose calls or time went down, or that
    started counting after the previous snapshot (stats_since, PostgreSQL 17 on), or every one
    after a reset, counts whole, as run since; evicted ones are lost to the sum (`reset` says when the
    whole set restarted). `tables_bytes` is the size of the platform's tables (the current
    schema's, with their indexes and TOAST) when it was taken."""
    return [dict(row) for row in connection.execute(text(
        """
        WITH ordered AS (
            SELECT taken_at, statements_reset_at, statements_evicted,
                   lag(taken_at) OVER (ORDER BY taken_at) AS previous_at,
                   -- pg_stat_statements_info's eviction count is stored exactly when the
                   -- statements were: without them at either end, the interval's time is unknown.
                   statements_evicted IS NULL
                   OR lag(statements_evicted IS NULL, 1, true) OVER (ORDER BY taken_at) AS unknown
            FROM linea.stat_snapshots
        )
        SELECT o.taken_at, o.previous_at,
               o.statements_reset_at > o.previous_at AS reset,
               CASE WHEN o.unknown THEN NULL ELSE round(coalesce(sum(
                   CASE WHEN p.calls IS NULL OR p.calls > c.calls OR p.total_exec_time > c.total_exec_time
                          OR o.statements_reset_at > o.previous_at
                          OR c.stats_since > o.previous_at
                        THEN c.total_exec_time ELSE c.total_exec_time - p.total_exec_time END
               ), 0)::numeric, 3)::float8 END AS total_ms,
               CASE WHEN o.unknown THEN NULL ELSE coalesce(sum(
                   CASE WHEN p.calls IS NULL OR p.calls > c.calls OR p.total_exec_time > c.total_exec_time
                          OR o.statements_reset_at > o.previous_at
                          OR c.stats_since > o.previous_at
                        THEN c.calls ELSE c.calls - p.calls END
               ), 0)::bigint END AS calls,
               CASE WHEN o.statements_evicted IS NULL THEN NULL ELSE count(c.queryid) END AS statements,
               (SELECT sum(t.size_bytes) FROM linea.stat_tables AS t
                 WHERE t.taken_at = o.taken_at AND t.schema_name = current_schema())::bigint AS tables_bytes
        FROM ordered AS o
        LEFT JOIN linea.stat_statements AS c ON c.taken_at = o.taken_at
        LEFT JOIN linea.stat_statements AS p
               ON p.taken_at = o.previous_at AND (p.queryid, p.userid, p.toplevel) = (c.queryid, c.userid, c.toplevel)
        WHERE CAST(:since AS timestamptz) IS NULL OR o.taken_at >= CAST(:since AS timestamptz)
        GROUP BY o.taken_at, o.previous_at, o.statements_reset_at, o.statements_evicted, o.unknown
        ORDER BY o.taken_at
        """
    ), {"since": since}).mappings()]


# --- indexes -----------------------------------------------------------------------------------


def index_scans_since(connection: Connection, since: datetime) -> tuple[list[dict[str, Any]], list[str]]:
    """Each index of this database's user tables with its scans since the snapshot
    `baseline_for(since)` chose (for `db indexes --since`), and notes for the reader.

    `scans` is the difference of `pg_stat_user_indexes.idx_scan`; after a reset of this database's
    statistics (`pg_stat_database.stats_reset` later than the snapshot), or for an index whose
    count went down or that is newer than the snapshot, it counts from then, and `partial` says so.
    """
    baseline = baseline_for(connection, since)
    then = baseline.snapshot
    notes = baseline.notes
    reset_at = _database_reset_at(connection)
    whole_reset = reset_at is not None and reset_at > then.taken_at
    if whole_reset:
        notes.append(
            f"this database's statistics were reset at {reset_at.isoformat(timespec='seconds')}, after the snapshot "
            f"of {then.taken_at.isoformat(timespec='seconds')}: scans count from the reset"
        )
    rows = connection.execute(text(
        "SELECT i.indexrelid AS oid, i.schemaname AS schema_name, i.relname AS table_name, "
        "i.indexrelname AS index_name, i.idx_scan AS now, p.idx_scan AS then "
        "FROM pg_stat_user_indexes AS i "
        "LEFT JOIN linea.stat_indexes AS p ON p.taken_at = :taken_at AND p.indexrelid = i.indexrelid "
        "ORDER BY i.schemaname, i.relname, i.indexrelname"
    ), {"taken_at": then.taken_at}).mappings()
    answer = []
    for row in rows:
        now_scans = int(row["now"] or 0)
        partial = whole_reset or row["then"] is None or now_scans < int(row["then"])
        answer.append({
            "oid": row["oid"], "schema_name": row["schema_name"], "table_name": row["table_name"], "index_name": row["index_name"],
            "scans": now_scans if partial else now_scans - int(row["then"]),
            "counted_from": reset_at if whole_reset else then.taken_at,
            "partial": partial,
        })
    return answer, notes
