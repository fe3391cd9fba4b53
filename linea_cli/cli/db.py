"""`linea db ...`: migrations, status, doctor, reset, seed, and the embedded server."""

from __future__ import annotations

import enum
import re
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from linea_cli.cli.confirm import confirm_or_stop
from linea_cli.cli.context import open_database, require_admin_for, state, transaction
from linea_cli.cli.options import (
    FieldsOption,
    FormatOption,
    JsonOption,
    Output,
    ServerOption,
    YesOption,
    chosen_format,
    output_options,
)
from linea_cli.cli.progress import byte_progress
from linea_cli.output import Column, Kind, OutputFormat, render, say, select_columns, warn

app = typer.Typer(help="Migrate, inspect, seed and reset the database; manage the embedded server.", no_args_is_help=True)
server_app = typer.Typer(help="Start, stop and inspect the embedded PostgreSQL server.", no_args_is_help=True)
app.add_typer(server_app, name="server")

def _lock_policy():  # noqa: ANN202  (the type lives behind a lazy import)
    from linea_cli.services.migrations import LockPolicy

    settings = state().settings()
    return LockPolicy.from_settings(settings.migration_lock_timeout, settings.migration_attempts)


SqlOption = Annotated[bool, typer.Option("--sql", help="Print the SQL instead of running it (for review).")]
_RELATIVE = re.compile(r"[+-]\d+")
ForceOption = Annotated[
    bool, typer.Option("--force", help="Allow destroying data on a server other than the embedded one.")
]


def _confirm_destruction(database, what: str, *, force: bool, yes: bool) -> None:  # noqa: ANN001
    """Off the embedded server: --force, then the database name typed at the prompt (or --yes)."""
    from linea_cli.errors import PermissionDenied

    name = database.identify().database  # the server's name for it, whatever the URL said
    if not force:
        raise PermissionDenied(
            f"refusing: this {what} in {database.target}, which is not the embedded server",
            hint="pass --force, and type the database name when asked (or --force --yes in scripts)",
        )
    confirm_or_stop(f"this {what} in {database.target}", yes=yes, flags="--force --yes", type_back=name)


class RevisionCommand(TyperCommand):
    """Takes `-1` as the relative revision it is, not as an unknown option (no `--` needed)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        options, rest = (args[: args.index("--")], args[args.index("--") + 1 :]) if "--" in args else (args, [])
        numbers = [arg for arg in options if _RELATIVE.fullmatch(arg)]
        if numbers:
            args = [arg for arg in options if not _RELATIVE.fullmatch(arg)] + ["--", *numbers, *rest]
        return super().parse_args(ctx, args)


def _refuse_the_other_way(direction: str, revision: str) -> None:
    """`db upgrade -1` (or `db downgrade +1`): the user asked the other command."""
    from linea_cli.errors import InvalidInput

    if _RELATIVE.fullmatch(revision) and (revision[0] == "-") == (direction == "upgrade"):
        other = "downgrade" if direction == "upgrade" else "upgrade"
        raise InvalidInput(f"db {direction} {revision} goes the other way: use `linea db {other} {revision}`")


@app.command(cls=RevisionCommand)
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, or +N for N more.")] = "head",
    sql: SqlOption = False,
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Do not back up an external database before migrating it.")
    ] = False,
) -> None:
    """Migrate the database up to REVISION (default: head).

    On a server other than the embedded one, a database holding rows that has something to
    migrate is first backed up into the backup directory (see `linea db backup`), unless
    --no-backup. --sql never backs up.

    Example: linea db upgrade
    """
    from linea_cli.services import migrations

    _refuse_the_other_way("upgrade", revision)
    database = state().database(for_migrations=True)
    if not sql:
        require_admin_for(database, "migrate the database")
    now_at = migrations.upgrade(
        database, revision, sql=sql, locks=_lock_policy(), back_up=None if no_backup else lambda: _back_up_first(database),
        on_retry=warn, on_note=lambda note: say(f"note: {note}"),
    )
    if not sql:
        state().wrote = True  # reads on a replica wait for it (services/fences.py)
        say(f"{database.target} is at {now_at or 'base'}")


def _back_up_first(database) -> None:  # noqa: ANN001 (a lazy type)
    """The backup `db upgrade` takes first; when it fails, nothing is migrated."""
    from linea_cli.errors import LineaError

    try:
        _back_up(database, None, label="before-upgrade")
    except LineaError as exc:
        exc.message = f"nothing was migrated: the backup before it failed: {exc.marked_message}"
        exc.hint = (f"{exc.marked_hint}; " if exc.marked_hint else "") + "or migrate without one: --no-backup"
        raise


@app.command(cls=RevisionCommand)
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, -N for N fewer, or 'base' to remove what linea added.")],
    sql: SqlOption = False,
    force: ForceOption = False,
    yes: YesOption = False,
) -> None:
    """Migrate the database down to REVISION.

    On a database linea adopted from the platform only linea's indexes, triggers and bookkeeping
    go; the platform's tables and rows stay. Where linea made the tables, a downgrade that would
    drop tables holding rows on a server other than the embedded one needs the confirmation
    `db reset` asks for.

    Example: linea db downgrade -1
    """
    from linea_cli.services import migrations

    _refuse_the_other_way("downgrade", revision)
    database = state().database(for_migrations=True)
    if not sql:
        require_admin_for(database, "migrate the database")
    now_at = migrations.downgrade(
        database, revision, sql=sql, locks=_lock_policy(), on_retry=warn,
        confirm_dropping=lambda doomed: _confirm_destruction(
            database, f"drops {', '.join(doomed)} with their rows", force=force, yes=yes
        ),
    )
    if not sql:
        state().wrote = True  # reads on a replica wait for it (services/fences.py)
        say(f"{database.target} is at {now_at or 'base'}")


REPLICA_COLUMNS = [
    Column("position", header="#", kind=Kind.id), Column("where", wrap=True),
    Column("reachable", header="up", priority=3), Column("in_recovery", header="recovery", priority=2),
    Column("replay_paused", header="paused", priority=1),
    Column("bytes_behind", header="bytes behind", justify="right"),
    Column("seconds_behind", header="s behind", justify="right"),
    Column("would_use", header="use"), Column("why_not", header="why not", wrap=True),
    Column("replay_lsn", wide=True),
]


@app.command()
@output_options(title="Database")
def status(*, out: Output) -> None:
    """Show the server, the masked URL, the schema revision, row counts, and each replica's lag.

    With LINEA_READ_DATABASE_URL, each replica (`replicas` in JSON): where it is, whether it answers, is
    in recovery and replaying, how far behind the primary it is (bytes and seconds), and
    whether a read command would use it now, and if not why (LINEA_REPLICA_MAX_LAG, the fence of
    linea's last write). The rest is read on the primary.

    Example: linea db status --json
    """
    from linea_cli.services import database as database_service

    database = open_database(require_schema=False)
    record = {"profile": state().settings().profile, **database_service.status(database)}
    if database.is_embedded:
        record["data_directory"] = str(state().settings().data_dir)
    checked = _replica_checks(database)
    replicas = None if checked is None else [check.record() for check in checked]
    if replicas is not None and (out.fields is not None or not out.for_people):
        record["replicas"] = replicas
    out.record(record)
    if replicas is not None and "replicas" not in record:  # people see them as a table of their own
        from linea_cli.output import write_stdout

        write_stdout("\n")
        out.rows(replicas, REPLICA_COLUMNS, title="Replicas")
    if record["unfillable_columns"]:
        warn(
            f"{', '.join(record['unfillable_columns'])}: NOT NULL without a default, unknown to linea; "
            "inserts into these tables fail (exit 5) until the platform gives each a default (see `linea db doctor`)"
        )


def _replica_checks(database) -> list | None:  # noqa: ANN001 (lazy types)
    """Each configured replica as a read would find it now (`context.replica_checks`); None without any."""
    from linea_cli.cli.context import replica_checks

    if not state().replicas_configured():
        return None
    return replica_checks(database)


@app.command()
@output_options(title="Migrations")
def history(*, out: Output) -> None:
    """List the migrations, newest first, marking the current one.

    Example: linea db history
    """
    from linea_cli.services.migrations import history as migrations

    database = open_database(require_schema=False)
    rows = (vars(info) for info in migrations(database))
    out.rows(rows, [
        Column("revision", kind=Kind.id), Column("down_revision", kind=Kind.id, priority=3), Column("description", wrap=True),
        Column("is_head", priority=2), Column("is_current", priority=1),
    ])


@app.command()
@output_options(title="Checks")
def doctor(*, out: Output) -> None:
    """Check that the database is fit for linea and cron jobs; exit 5 when a check fails.

    A WARN is worth a look and exits 0. Each replica of LINEA_READ_DATABASE_URL is a check of its
    own (`replica N`): WARN when reads would not go there now (unreachable, promoted, paused,
    behind LINEA_REPLICA_MAX_LAG or linea's last write); the rest is read on the primary.

    Example: linea db doctor
    """
    from linea_cli.errors import DatabaseUnavailable
    from linea_cli.services import database as database_service
    from linea_cli.services.replica_reads import replica_health

    database = open_database(require_schema=False)
    checks = database_service.doctor(database)
    checks.extend(replica_health(_replica_checks(database) or []))
    out.rows((vars(check) for check in checks), ["check", "status", Column("detail", wrap=True)])
    failed = [check.check for check in checks if check.status == database_service.FAIL]
    # A check that could not run (another session's lock, a privilege) vouches for nothing: not 0.
    unknown = [check.check for check in checks if check.status == database_service.UNKNOWN]
    if failed or unknown:
        raise DatabaseUnavailable("; ".join(
            ([f"{len(failed)} check(s) failed: {', '.join(failed)}"] if failed else [])
            + ([f"{len(unknown)} could not run: {', '.join(unknown)}"] if unknown else [])
        ))


INDEX_COLUMNS = [
    Column("table", kind=Kind.id, priority=3), Column("index", kind=Kind.id), Column("size", justify="right", priority=2),
    Column("scans", justify="right"), Column("bloat", justify="right", priority=4), Column("verdict", wrap=True),
    Column("covered_by", kind=Kind.id, priority=1),
    Column("size_bytes", wide=True), Column("bloat_bytes", wide=True), Column("verdicts", wide=True),
    Column("unique", wide=True), Column("primary", wide=True),
    Column("valid", wide=True), Column("definition", wide=True, wrap=True),
]


@app.command()
@output_options(columns=INDEX_COLUMNS, title="Indexes")
def indexes(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Scans since then (1h, 7d, 2026-12-01), from `linea db snapshot`'s snapshots."),
    ] = None,
    server: ServerOption = "primary",
    *,
    out: Output,
) -> None:
    """Show each index's size and scans, and which are unused, duplicate, invalid or bloated.

    Verdicts: UNUSED (not unique, no scan since the statistics were reset: their age is said),
    DUPLICATE (another index of the table begins with the same columns, expressions and
    predicate: PgHero's rule), INVALID (a failed concurrent build), BLOATED (an estimate: half of
    it or more free space, and at least 1 MiB). Tables of 10,000 rows or more read under 95% by an
    index are named too. It only reads, and never waits behind a lock a DDL statement holds.

    With --since, scans are counted from the snapshot taken then (`linea db snapshot`), and
    UNUSED means not scanned since: a window the statistics' reset cannot choose.

    Scans are counted per server: --server 1 shows what the reads on the first replica of
    LINEA_READ_DATABASE_URL use (an index UNUSED on the primary may serve them).

    Example: linea db indexes --since 7d
    """
    from rich.filesize import decimal

    from linea_cli.errors import DatabaseUnavailable, cut
    from linea_cli.services import index_health

    columns = [*INDEX_COLUMNS, *(SINCE_COLUMNS if since is not None else ())]
    out.check(columns)
    moment = _since(since)
    database = monitored(server, out, since=since)
    try:
        report = index_health.index_report(database, since=moment)
    except index_health.IndexesUnreadable as exc:
        raise DatabaseUnavailable(f"cannot read the indexes of {database.target}: {exc}") from None
    for row in report.indexes:
        row["size"] = None if row["size_bytes"] is None else decimal(row["size_bytes"])
        row["bloat"] = None if row["bloat_bytes"] is None else decimal(row["bloat_bytes"])
        row["verdict"] = ", ".join(row["verdicts"])
    summary = {
        "statistics_reset": report.statistics_reset,
        "statistics_age_seconds": report.statistics_age_seconds,
        "sequential_scan_tables": report.sequential_scan_tables,
        "notes": report.notes,
    }
    out.summary(summary, report.indexes, items="indexes", columns=columns)
    if out.format is OutputFormat.json:
        return
    for note in report.notes:
        warn(note)
    if moment is not None:
        counted_from = next((row["counted_from"] for row in report.indexes if not row["partial"]), None)
        if counted_from is not None:
            say(f"scans counted since the snapshot of {counted_from:%Y-%m-%d %H:%M} UTC: UNUSED means not scanned since")
    elif report.statistics_reset is None:
        say("scans counted since the statistics began (never reset): UNUSED means never scanned on this server")
    else:
        say(f"scans counted since the statistics' reset {_age(report.statistics_age_seconds)} ago "
            f"({report.statistics_reset:%Y-%m-%d %H:%M} UTC): UNUSED means not scanned since")
    for row in report.indexes:
        if row["covered_by"] is not None:
            say(f"{row['index']}: DUPLICATE, {row['covered_by']} begins with the same columns")
    for table in report.sequential_scan_tables:
        say(f"{table['table']}: read mostly by sequential scans ({table['live_rows']} rows, "
            f"{table['index_scan_share']}% of {table['sequential_scans'] + table['index_scans']} scans by an index): "
            "an index for its frequent queries may be missing")
        if table["query"] is not None:
            say(f"  its costliest statement ({table['query_calls']} calls): {cut(' '.join(table['query'].split()), limit=300)}")


def _age(seconds: int | None) -> str:
    """`3 days`, `5 hours`, `12 minutes`: how long, to its largest whole unit."""
    seconds = max(0, seconds or 0)
    for unit, length in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


POOL_COLUMNS = [
    Column("database", kind=Kind.id, priority=1), Column("application"), Column("state"),
    Column("connections", justify="right"),
    Column("longest_in_state_seconds", header="in state (s)", justify="right", priority=2),
    Column("oldest_transaction_seconds", header="oldest xact (s)", justify="right", priority=3),
]
PGBOUNCER_POOL_COLUMNS = [
    Column("database", kind=Kind.id), Column("user", kind=Kind.id, priority=1),
    Column("cl_waiting", header="waiting", justify="right"),
    Column("oldest_wait_seconds", header="oldest wait (s)", justify="right"),
    Column("cl_active", header="active", justify="right"), Column("sv_active", header="servers busy", justify="right", priority=2),
    Column("sv_idle", header="servers idle", justify="right", priority=3), Column("pool_mode", header="mode", priority=4),
]
PGBOUNCER_STATS_COLUMNS = [
    Column("database", kind=Kind.id), Column("total_xact_count", header="transactions", justify="right"),
    Column("total_query_count", header="queries", justify="right", priority=2),
    Column("avg_xact_time", header="avg xact (us)", justify="right", priority=1),
    Column("avg_wait_time", header="avg wait (us)", justify="right"),
]
PGBOUNCER_DATABASE_COLUMNS = [
    Column("name", kind=Kind.id), Column("host", kind=Kind.id, priority=2), Column("port", priority=3),
    Column("database", kind=Kind.id, priority=1), Column("pool_size", header="pool size", justify="right"),
    Column("current_connections", header="connections", justify="right"),
    Column("max_connections", header="max", justify="right", priority=4), Column("paused", priority=5),
    Column("disabled", priority=5),
]


def _read_console(report: Any, admin_url: str, shown_admin: str | None) -> str | None:
    """PgBouncer's part of `report`, read from its admin console; what went wrong, or None."""
    from linea_cli.services import connection_pool

    try:
        report.pgbouncer = connection_pool.pgbouncer_report(admin_url)
    except connection_pool.NotPgBouncerConsole as exc:
        return f"LINEA_PGBOUNCER_ADMIN_URL ({shown_admin}) is not PgBouncer's admin console: {exc}"
    except connection_pool.PgBouncerUnreachable as exc:
        return f"PgBouncer's admin console at {shown_admin} (LINEA_PGBOUNCER_ADMIN_URL): {exc}"
    return None


@app.command()
@output_options(columns=POOL_COLUMNS, title="Connections")
def pool(server: ServerOption = "primary", *, out: Output) -> None:
    """Show connections by application and state against the limit, and PgBouncer's pools.

    The server's client connections (pg_stat_activity) grouped by database, application and
    state, against max_connections less the reserved ones; with LINEA_PGBOUNCER_ADMIN_URL
    (postgresql://USER@HOST:PORT/pgbouncer, a user of its admin_users or stats_users), PgBouncer's
    SHOW POOLS (waiting clients and the longest wait first), SHOW STATS and SHOW DATABASES. Tables
    and JSON show them all; CSV and NDJSON the server's groups. --server 1 shows the first
    replica's connections instead (PgBouncer's part is the same whichever server).

    Example: linea db pool --json
    """
    import shutil

    from linea_cli.charts import capacity_bar
    from linea_cli.errors import DatabaseUnavailable
    from linea_cli.output import write_stdout
    from linea_cli.services import connection_pool

    out.check()
    admin_url = state().settings().pgbouncer_admin_url
    shown_admin = connection_pool.console_shown(admin_url) if admin_url else None  # a bad URL stops here, exit 1
    database = monitored(server, out)
    report = connection_pool.pool_report(database)
    unreachable = _read_console(report, admin_url, shown_admin) if admin_url else None
    bouncer = report.pgbouncer
    summary = {
        "max_connections": report.max_connections,
        "superuser_reserved_connections": report.superuser_reserved_connections,
        "reserved_connections": report.reserved_connections,
        "in_use": report.in_use,
        "available": report.available,
        "notes": report.notes,
        "pgbouncer": None if bouncer is None else vars(bouncer),
    }
    out.summary(summary, report.groups, items="connections")
    if out.format is not OutputFormat.json:
        for note in report.notes:
            warn(note)
    if out.for_people:
        if report.max_connections is not None:
            reserved = report.superuser_reserved_connections + (report.reserved_connections or 0)
            noun = "client connection" if report.in_use == 1 else "client connections"
            line = (f"{report.in_use} {noun} of {report.max_connections - reserved} for ordinary roles "
                    f"(max_connections {report.max_connections}, {reserved} reserved)")
            if sys.stdout.isatty():
                line += "\n" + capacity_bar("in use", report.in_use, report.max_connections - reserved,
                                            width=shutil.get_terminal_size().columns)
            write_stdout(line + "\n")
        if bouncer is not None:
            for rows, columns, title in (
                (bouncer.pools, PGBOUNCER_POOL_COLUMNS, "PgBouncer pools"),
                (bouncer.stats, PGBOUNCER_STATS_COLUMNS, "PgBouncer stats"),
                (bouncer.databases, PGBOUNCER_DATABASE_COLUMNS, "PgBouncer databases"),
            ):
                write_stdout("\n")
                render(rows, columns, out.format, title=title)
    elif bouncer is not None and out.format is not OutputFormat.json:
        say("PgBouncer's pools, stats and databases are in the table and JSON formats")
    if unreachable:
        raise DatabaseUnavailable(unreachable)


class QuerySort(enum.StrEnum):
    total = "total"
    mean = "mean"
    calls = "calls"


QUERY_COLUMNS = (
    Column("query"),
    Column("calls", justify="right"),
    Column("total_ms", header="total ms", justify="right"),
    Column("mean_ms", header="mean ms", justify="right", priority=1),
    Column("rows", justify="right", priority=3),
    Column("share", header="share %", justify="right", priority=2),
    Column("cache_hit", header="hit %", justify="right", priority=4),
    Column("role", priority=5, wide=True),
    Column("queryid", kind=Kind.id, wide=True),
)
SINCE_COLUMNS = (Column("counted_from", wide=True), Column("partial", priority=2))


@app.command()
@output_options(title="Statements by cost", columns=QUERY_COLUMNS + SINCE_COLUMNS)
def queries(
    sort: Annotated[QuerySort, typer.Option("--sort", case_sensitive=False, help="Order by total time, mean time or calls.")]
    = QuerySort.total,
    # Not `limit`: @output_options keeps that name for the paged lists' --limit.
    at_most: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many statements.")] = 20,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only what ran since then (1h, 7d, 2026-12-01), from `linea db snapshot`'s snapshots."),
    ] = None,
    server: ServerOption = "primary",
    *,
    out: Output,
) -> None:
    """List the statements that cost most, from pg_stat_statements; exit 5 without it.

    The normalized text is shortened in tables and whole in JSON; `share` is the part of all
    this database's statements' time, `cache_hit` the share of blocks found in shared buffers.
    With --since, the differences from the snapshot taken then (linea never resets the
    statistics): a reset or an evicted statement in between is said, not shown as negative.
    --server 1 shows what ran on the first replica of LINEA_READ_DATABASE_URL (its own counters).

    Example: linea db queries --sort mean --limit 10
    """
    from linea_cli.services import query_stats
    from linea_cli.services.monitoring import monitoring_connection

    columns = QUERY_COLUMNS + (SINCE_COLUMNS if since is not None else ())
    out.check(columns)
    moment = _since(since)
    database = monitored(server, out, since=since)
    with monitoring_connection(database) as connection:
        access = query_stats.require_statements(connection, embedded=database.is_embedded)
        if moment is None:
            rows, notes, history = query_stats.top_statements(connection, sort=sort.value, limit=at_most), [], []
        else:
            rows, notes = query_stats.statements_since(connection, moment, sort=sort.value, limit=at_most)
            history = query_stats.query_time_history(connection, since=moment) if out.for_people else []
    note = query_stats.visibility_note(access)
    for line in ([note] if note else []) + notes:
        warn(line)
    if out.for_people:
        rows = [{**row, "query": " ".join((row["query"] or "").split())} for row in rows]
    out.rows(rows, columns)
    _draw_query_time(out, history)


def _since(value: str | None):  # noqa: ANN202 (datetime, imported lazily)
    """`--since` as an aware UTC time: a span back from now, or a date in LINEA_TIMEZONE without an offset."""
    if value is None:
        return None
    from datetime import UTC, datetime

    from linea_cli.services.query_stats import parse_since

    return parse_since(value, now=datetime.now(UTC), timezone=state().settings().timezone)


def monitored(server: str, out: Output, *, since: str | None = None):  # noqa: ANN201 (a lazy type)
    """The database a monitoring view reads (`--server`: `context.monitored_database`), said on
    stderr for people when it is a replica. `--since` compares with `db snapshot`'s snapshots,
    which hold the primary's counters: with it the view is the primary's, the schema at head."""
    from linea_cli.cli.context import monitored_database
    from linea_cli.errors import UsageProblem

    if since is not None and server.strip().lower() != "primary":
        raise UsageProblem(f"--since compares with the snapshots of the primary's statistics (`linea db snapshot`): "
                           f"it takes no --server {server}")
    database, label = monitored_database(server)
    if since is not None:
        open_database()  # snapshots live in linea's schema: at head, as for any read of it
    if label is not None and out.for_people:
        say(f"showing {label}")
    return database


def _draw_query_time(out: Output, history: list[dict]) -> None:
    """Below a table at a terminal: total statement time per interval between snapshots."""
    points = [(row["taken_at"], row["total_ms"]) for row in history if row["total_ms"] is not None]
    _draw_timeline(out, points, what="statement time between snapshots", unit="ms")


def _draw_timeline(out: Output, points: list[tuple[Any, float]], *, what: str, unit: str) -> None:
    """Below a table at a terminal, values at successive snapshots ((time, value)) as columns."""
    import shutil

    from linea_cli.charts import timeline_chart
    from linea_cli.output import write_stdout

    if not out.for_people or len(points) < 2 or not sys.stdout.isatty():
        return
    labelled = [(moment.strftime("%Y-%m-%d %H:%M"), value) for moment, value in points]
    lines = timeline_chart(labelled, what=what, unit=unit, width=shutil.get_terminal_size().columns)
    write_stdout("\n".join(lines) + "\n")


@app.command()
@output_options(title="Snapshot")
def snapshot(
    keep: Annotated[str, typer.Option("--keep", help="Delete snapshots older than this (12h, 30d, 2w).")] = "30d",
    *,
    out: Output,
) -> None:
    """Store the server's statistics counters in linea's schema, for `db queries --since` (cron).

    Copies pg_stat_statements (when the server has it), pg_stat_user_tables and
    pg_stat_user_indexes as they are now; never resets them.

    Example: linea db snapshot --keep 30d
    """
    from linea_cli.services import query_stats

    kept_for = query_stats.parse_keep(keep)
    open_database()
    with transaction() as (session, actor):
        record = query_stats.take_snapshot(session.connection(), keep=kept_for, actor=actor)
        out.check(record)
    if record["statements"] is None:
        warn("pg_stat_statements cannot answer here (`linea db queries` says why): kept the tables' and indexes' counters only")
    out.record(record)


@app.command()
@output_options(
    title="Snapshots",
    columns=(Column("taken_at"), Column("total_ms", header="total ms", justify="right"),
             Column("calls", justify="right"), Column("statements", justify="right", priority=2),
             Column("reset", priority=1), Column("tables_size", header="tables", justify="right", priority=3),
             Column("previous_at", wide=True), Column("tables_bytes", wide=True)),
)
def snapshots(
    since: Annotated[str | None, typer.Option("--since", help="Only snapshots taken since then (1h, 7d, 2026-12-01).")] = None,
    *,
    out: Output,
) -> None:
    """List the statistics snapshots with the statements' time in each interval, charted at a terminal.

    Example: linea db snapshots --since 7d
    """
    from rich.filesize import decimal

    from linea_cli.services import query_stats
    from linea_cli.services.monitoring import monitoring_connection

    out.check()
    moment = _since(since)
    database = open_database()
    with monitoring_connection(database) as connection:
        history = query_stats.query_time_history(connection, since=moment)
    for row in history:
        row["tables_size"] = None if row["tables_bytes"] is None else decimal(row["tables_bytes"])
    out.rows(history)
    _draw_query_time(out, history)
    _draw_timeline(
        out, [(row["taken_at"], row["tables_bytes"] / 1e6) for row in history if row["tables_bytes"] is not None],
        what="size of the platform's tables", unit="MB",
    )


@app.command()
def reset(
    force: ForceOption = False,
    yes: YesOption = False,
) -> None:
    """Drop every table and rebuild the schema at head (all data is lost).

    On the embedded server it asks first (--yes skips the question). Anywhere else it needs
    --force, and then the database name typed at the prompt (or --force --yes in scripts).

    Example: linea db reset --yes
    """
    from linea_cli.services import database as database_service

    database = state().database(for_migrations=True)
    require_admin_for(database, "reset the database")
    database.identify()  # the question names the database as the server does, as the answer will
    if database.is_embedded:
        confirm_or_stop(f"Reset {database.target} (deletes every row)", yes=yes)
    else:
        _confirm_destruction(database, "deletes every row", force=force, yes=yes)
    database_service.reset_schema(database, locks=_lock_policy())
    state().wrote = True
    say(f"{database.target} was reset to an empty schema at head")


@app.command()
def roles(
    sql: SqlOption = False,
    prefix: Annotated[
        str, typer.Option("--prefix", metavar="PREFIX", help="Name the roles PREFIX_reader, PREFIX_operator, ...")
    ] = "linea",
    force: Annotated[
        bool, typer.Option("--force", help="Allow changing roles on a server other than the embedded one.")
    ] = False,
    yes: YesOption = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Create or update least-privilege PostgreSQL roles for linea's jobs.

    Four NOLOGIN group roles: PREFIX_reader (every read command; never sessions.token),
    PREFIX_operator (the write commands; audit_logs only grows), PREFIX_eraser (the operator,
    and the audit-row scrub of `users anonymize`), PREFIX_migrator (the schema). Grants name the
    tables that exist now: run it again after the platform adds tables. Running it again changes
    nothing else. Existing roles of these names that linea did not make (other attributes,
    memberships, owned tables) are refused, exit 4, and left as they are. The system or an ADMIN
    only; on a server other than the embedded one it needs --force and the database name typed
    (or --force --yes). --sql prints the SQL instead.

    Example: linea db roles --sql > roles.sql
    """
    from linea_cli.output import write_stdout
    from linea_cli.services.roles import RoleNames, roles_sql

    names = RoleNames.with_prefix(prefix)
    columns = ["role", Column("may", wrap=True)]
    select_columns(columns, fields)
    database = state().database(for_migrations=True)
    if sql:
        write_stdout(roles_sql(database, names))
        return
    require_admin_for(database, "create database roles")
    if not database.is_embedded:
        shown_names = ", ".join(vars(names).values())
        _confirm_destruction(database, f"creates or changes the roles {shown_names} and their grants", force=force, yes=yes)
    from linea_cli.services.actors import resolve_actor
    from linea_cli.services.roles import apply_roles

    with database.unit_of_work() as session:
        plan = apply_roles(session, names=names, actor=resolve_actor(session, state().settings().actor))
    state().wrote = True
    for note in plan.notes:
        warn(note)
    say(f"granted on the {len(plan.tables)} tables that exist in {database.target}; run it again after the platform adds tables")
    render(plan.summary(), columns, chosen_format(fmt, as_json), title="Roles", fields=fields)


OutputOption = Annotated[
    str | None,
    typer.Option(
        "--output", "-o", metavar="FILE",
        help="Write the archive to FILE (atomically; - for stdout). Default: a new file in the backup directory.",
    ),
]


@app.command()
def backup(
    output: OutputOption = None,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Write a pg_dump archive (custom format) of the database, then its size and rows per table.

    Without -o the archive goes to the backup directory (LINEA_BACKUP_DIR, default
    <data dir>/backups) as DATABASE-YYYYMMDDTHHMMSSZ.dump. It runs the pg_dump closest to the
    server's version, not older (or LINEA_PG_DUMP), and says which. ADMIN only. Restore it with
    `linea db restore FILE`.

    Example: linea db backup -o before-the-import.dump
    """
    from linea_cli.errors import InvalidInput
    from linea_cli.output_file import writes_to_stdout

    columns = ["table", Column("rows", justify="right")]
    select_columns(columns, fields)  # an unknown --fields name stops before pg_dump runs
    to_stdout = output is not None and writes_to_stdout(output)
    if to_stdout and sys.stdout.isatty():
        raise InvalidInput("refusing to write a binary archive to the terminal", hint="give -o FILE, or redirect stdout")
    database = state().database(for_migrations=True)
    # Everyone's data, the audit log included (which only ADMINs read): ADMIN only, like reading the log.
    require_admin_for(database, "back up the database")
    summary = _back_up(database, output, label=None)
    render(
        ({"table": table, "rows": rows} for table, rows in summary.tables.items()),
        columns, chosen_format(fmt, as_json), title="Backed up", fields=fields,
        stream=sys.stderr if to_stdout else None,
    )


def _back_up(database, output: str | None, *, label: str | None):  # noqa: ANN001, ANN202 (lazy types)
    """Back `database` up into `output` (None: a new file in the backup directory), saying with
    what, where to and how much."""
    from rich.filesize import decimal

    from linea_cli.services.backups import back_up

    settings = state().settings()
    with byte_progress("pg_dump") as bar:
        done = back_up(
            database, output, directory=settings.backups_path, label=label, pg_dump=settings.pg_dump,
            lock_timeout=settings.lock_timeout, on_bytes=bar.advance if bar else lambda written: None,
            # Said once the target opened: an -o that cannot be written is then the only line.
            on_start=lambda tool, target: say(f"backing up {database.target} with {tool} to {target}"),
        )
    summary = done.summary
    say(f"wrote {done.target}: {decimal(summary.size)} ({summary.size} bytes), {len(summary.tables)} tables, {sum(summary.tables.values())} rows")
    return summary


@app.command()
def restore(
    file: Annotated[str, typer.Argument(metavar="FILE", help="An archive `linea db backup` (or pg_dump -Fc) wrote.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the contents of a database that is not empty.")
    ] = False,
    include_foreign: Annotated[
        bool,
        typer.Option(
            "--include-foreign-objects",
            help="Also restore what linea did not make (functions, triggers, views...), after listing it and asking.",
        ),
    ] = False,
    yes: YesOption = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Restore a pg_dump archive into the database, in one transaction (all of it or nothing).

    Only what linea knows is restored: the platform's tables and linea's, their rows, indexes,
    constraints and sequences. An archive holding anything else (functions, triggers, event
    triggers, extensions, views, other schemas, or constraints, defaults and indexes calling
    functions linea does not know) is refused, naming those objects, unless
    --include-foreign-objects, which lists them and asks for the database name (or --yes).
    Owners and privileges are never restored (functions restored that way are callable by their
    owner only); linea's own triggers and functions are recreated from its definitions. Every
    pass reads the file opened once (a copy, when others may write to it). Into an empty database it just restores. A database holding tables
    needs --force, and then the confirmation `db reset` asks for. ADMIN only. The restored audit
    log gets one RESTORE row naming the archive.

    Example: linea db restore backups/linea-20260101T020000Z.dump --force
    """
    from rich.filesize import decimal

    from linea_cli.services import backups

    columns = ["table", Column("rows", justify="right")]
    select_columns(columns, fields)
    database = state().database(for_migrations=True)
    require_admin_for(database, "restore the database")
    settings = state().settings()
    # Opened once: every pass of pg_restore reads these bytes, whatever is renamed over FILE meanwhile.
    with backups.opened_archive(file, copy_into=settings.backups_path) as archive:
        plan = backups.plan_restore(database, archive, pg_restore=settings.pg_restore)
        _confirm_restore(database, plan, force=force, include_foreign=include_foreign, yes=yes)
        say(f"restoring {file} into {database.target} with {plan.tool}")
        restored = backups.restore(
            database, plan, include_foreign=include_foreign, actor_reference=settings.actor, locks=_lock_policy()
        )
    state().wrote = True
    _say_restored(database, plan, restored)
    summary = restored.summary
    if not summary.tables:
        say(f"restored {file} ({decimal(summary.size)}): it held no tables, and {database.target} has none")
    else:
        say(f"restored {file} ({decimal(summary.size)}): {len(summary.tables)} tables, {sum(summary.tables.values())} rows")
    fmt = chosen_format(fmt, as_json)
    if summary.tables or fmt not in (OutputFormat.table, OutputFormat.wide):
        render(
            ({"table": table, "rows": rows} for table, rows in summary.tables.items()),
            columns, fmt, title="Restored", fields=fields,
        )


def _confirm_restore(database, plan, *, force: bool, include_foreign: bool, yes: bool) -> None:  # noqa: ANN001 (lazy types)
    """What `db restore` asks and says before anything runs: foreign objects refused unless asked
    for, a database holding tables replaced only when confirmed, foreign objects confirmed by name."""
    from linea_cli.errors import InvalidInput

    file, foreign = plan.archive.name, plan.foreign
    if foreign and not include_foreign:  # one line per kind, nothing restored
        role = database.identify().user
        raise InvalidInput(
            f"{file} holds objects linea did not make, which would run as {role}; nothing was restored",
            details=foreign,
            hint="restore from an archive of the platform's database as linea backs it up, or, having read the list, "
            "pass --include-foreign-objects (it asks first)",
        )
    _confirm_replacing(database, file, plan.existing, force=force, yes=yes)
    if foreign:
        for line in foreign:
            warn(f"not made by linea, to be restored as asked: {line}")
        name = database.identify().database
        confirm_or_stop(
            f"this restore runs code linea did not make ({len(foreign)} kinds, listed above) in {database.target}",
            yes=yes, flags="--include-foreign-objects --yes", type_back=name,
        )
    if plan.contents.never:
        say(f"not restored (owners and privileges never are): {', '.join(plan.contents.never_names())}")
    if plan.contents.extra_tables:
        say(f"the platform's tables the data model does not name are restored too: {', '.join(plan.contents.extra_tables)}")


def _say_restored(database, plan, restored) -> None:  # noqa: ANN001 (lazy types)
    """What a restore brought back that the user must know: foreign objects, owner-only functions, repairs."""
    if plan.foreign:
        kinds = ", ".join(line.split(": ", 1)[0] for line in plan.foreign)
        warn(f"restored what linea did not make, as asked: {kinds} (listed above)")
    routines = restored.summary.routines
    if routines:
        owner = database.identify().user
        named = ", ".join(routines[:20]) + (f" and {len(routines) - 20} more" if len(routines) > 20 else "")
        say(f"note: restored functions {named} are callable only by their owner, {owner}: EXECUTE revoked from PUBLIC")
    repaired = restored.repaired
    rest = repaired.words
    if repaired.guard and repaired.guard_was_absent:  # as after every restore: the archive's copy is never taken
        say("recreated linea's append-only guard on audit_logs")
        rest = repaired.other
    if rest:
        say(f"note: repaired: {'; '.join(rest)}")


def _confirm_replacing(database, file: str, existing: dict[str, int], *, force: bool, yes: bool) -> None:  # noqa: ANN001
    """A database holding tables (`existing`) is replaced only with --force, then the confirmation `db reset` asks."""
    from linea_cli.errors import PermissionDenied

    if not existing:
        return
    what = f"replaces {len(existing)} tables holding {sum(existing.values())} rows"
    if not force:
        raise PermissionDenied(
            f"refusing: {database.target} is not empty ({len(existing)} tables, {sum(existing.values())} rows); nothing was changed",
            hint="pass --force to replace its contents with the archive's (it asks first), or restore into an empty database",
        )
    if database.is_embedded:
        confirm_or_stop(f"Restore {file} over {database.target} ({what})", yes=yes)
    else:
        _confirm_destruction(database, what, force=force, yes=yes)


@app.command()
def seed(
    users: Annotated[int, typer.Option(min=0, help="Users to create.")] = 50,
    venues: Annotated[int, typer.Option(min=0, help="Venues to create.")] = 10,
    events: Annotated[int, typer.Option(min=0, help="Events to create.")] = 40,
    waitlist: Annotated[int, typer.Option(min=0, help="Waitlist entries to create.")] = 500,
    sessions: Annotated[int, typer.Option(min=0, help="Login sessions to create.")] = 50,
    seed_value: Annotated[int, typer.Option("--seed", help="Same seed, same rows.")] = 42,
    anchor: Annotated[
        str | None, typer.Option(help="Date the data is placed around (default: today, UTC).", metavar="DATE")
    ] = None,
    append: Annotated[bool, typer.Option("--append", help="Add to a database that already has data.")] = False,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Seed only an empty database; otherwise do nothing and exit 0.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Fill the database with deterministic fake data for demos and CI.

    Example: linea db seed --users 1000 --events 200 --waitlist 1000000 --seed 7
    """
    from linea_cli.services.seed import SeedPlan, seed_database
    from linea_cli.timeutil import parse_datetime

    plan = SeedPlan(
        users=users,
        venues=venues,
        events=events,
        waitlist=waitlist,
        sessions=sessions,
        seed=seed_value,
        anchor=parse_datetime(anchor, field="--anchor") if anchor is not None else None,
    )
    columns = ["table", Column("rows", justify="right")]
    select_columns(columns, fields)  # an unknown --fields name stops before anything is seeded
    show_steps = sys.stderr.isatty()
    with transaction() as (session, actor):
        result = seed_database(
            session,
            plan=plan,
            actor=actor,
            append=append,
            if_empty=if_empty,
            on_step=(lambda step: say(f"seeding {step}...")) if show_steps else (lambda step: None),
        )
    if result.skipped:
        say("the database already has data; nothing seeded (--if-empty)")
        return
    counts = {k: v for k, v in vars(result).items() if k != "skipped"}
    render(
        ({"table": table, "rows": rows} for table, rows in counts.items()),
        columns,
        chosen_format(fmt, as_json),
        title="Seeded",
        fields=fields,
    )


@app.command("prisma-schema")
def prisma_schema(
    platform_schema: Annotated[
        str | None,
        typer.Option("--from", metavar="FILE", help="The platform's schema.prisma to add linea's indexes to."),
    ] = None,
) -> None:
    """Print the schema.prisma that describes the database as linea leaves it.

    The platform's models (from --from FILE, else the data model's as linea knows it) with an
    `@@index(..., map: "idx_...")` line for each index linea adds, so that Prisma's schema diff
    neither drops nor renames them.

    Example: linea db prisma-schema --from apps/api/prisma/schema.prisma > schema.prisma.new
    """
    from linea_cli.errors import InvalidInput, shown
    from linea_cli.output import write_stdout
    from linea_cli.services.migrations import prisma_schema as schema_text

    text = None
    if platform_schema is not None:
        try:
            with open(platform_schema, encoding="utf-8") as source:
                text = source.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read --from {shown(platform_schema)}: {getattr(exc, 'strerror', None) or exc}") from None
    write_stdout(schema_text(text))


@server_app.command("status")
@output_options(title="Embedded PostgreSQL")
def server_status(*, out: Output) -> None:
    """Show whether the embedded server is running, and where its data lives (exit 3 when not).

    Example: linea db server status
    """
    from linea_cli.errors import EXIT_NOT_FOUND
    from linea_cli.services import server as embedded

    current = embedded.status(state().settings().data_dir)
    out.record(vars(current))
    if not current.running:  # as `pg_ctl status`: scripts ask with the exit code
        raise typer.Exit(EXIT_NOT_FOUND)


@server_app.command("start")
def server_start() -> None:
    """Start the embedded server (it also starts by itself on first use).

    Example: linea db server start
    """
    from linea_cli.services import server as embedded

    data_directory, started = embedded.start(state().settings().data_dir)
    say(("started" if started else "already running") + f": embedded PostgreSQL in {data_directory}")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the embedded server.

    Example: linea db server stop
    """
    from linea_cli.services import server as embedded

    stopped = embedded.stop(state().settings().data_dir)
    say("stopped the embedded PostgreSQL server" if stopped else "the embedded PostgreSQL server was not running")




# `db activity`, `db cancel`, `db terminate` (cli/activity.py) join this group.
from linea_cli.cli import activity as _activity  # noqa: E402, F401
