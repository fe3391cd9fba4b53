"""`linea db pool`: the connection budget in one view.

The server's side: its client connections (`pg_stat_activity`, client backends only: autovacuum and
the server's own workers have slots of their own) grouped by database, application and state,
against `max_connections` less the slots reserved for superusers (and, from PostgreSQL 16, for
roles with pg_use_reserved_connections). PgBouncer's side, when `LINEA_PGBOUNCER_ADMIN_URL` names
its admin console: `SHOW POOLS`, `SHOW STATS` and `SHOW DATABASES`, read by column name (PgBouncer
adds columns between versions) over the simple query protocol (the console speaks no other),
pools with waiting clients first, the longest wait first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from linea_cli.errors import first_line
from linea_cli.services.monitoring import CLIENT_BACKENDS, Blocked, monitoring_connection, probe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from linea_cli.db.engine import Database

# Seconds libpq waits for PgBouncer's console before linea says it cannot be reached.
PGBOUNCER_CONNECT_TIMEOUT = 5
HIDDEN_STATE = "(hidden)"  # another role's session, for a role without pg_read_all_stats

_SETTINGS = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,
       current_setting('reserved_connections', true)::int AS reserved_connections
"""

# Other roles' sessions, to a role without pg_read_all_stats, are counted too (CLIENT_BACKENDS):
# their state is null, shown as HIDDEN_STATE.
_GROUPS = f"""
SELECT datname AS database, application_name AS application, state, count(*)::int AS connections,
       extract(epoch FROM max(now() - state_change))::bigint AS longest_in_state_seconds,
       extract(epoch FROM max(now() - xact_start))::bigint AS oldest_transaction_seconds
  FROM pg_stat_activity
 WHERE {CLIENT_BACKENDS}
 GROUP BY 1, 2, 3
 ORDER BY count(*) DESC, 1, 2, 3
"""

# What linea shows of each console table: PgBouncer's own column names (None where this version
# has no such column). `maxwait` and `maxwait_us` are read into one `oldest_wait_seconds`.
POOL_KEYS = ("database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "sv_login", "pool_mode")
STATS_KEYS = (
    "database", "total_xact_count", "total_query_count", "total_wait_time", "avg_xact_count", "avg_query_count",
    "avg_xact_time", "avg_query_time", "avg_wait_time",
)
DATABASE_KEYS = (
    "name", "host", "port", "database", "force_user", "pool_size", "reserve_pool", "pool_mode", "max_connections",
    "current_connections", "paused", "disabled",
)


@dataclass
class PgBouncerReport:
    """PgBouncer's console, as `SHOW POOLS`, `SHOW STATS` and `SHOW DATABASES` answered."""

    version: str | None
    pools: list[dict[str, Any]]
    stats: list[dict[str, Any]]
    databases: list[dict[str, Any]]


@dataclass
class PoolReport:
    """The server's connection budget (None where a read could not be made: see `notes`)."""

    max_connections: int | None
    superuser_reserved_connections: int | None
    reserved_connections: int | None
    in_use: int | None
    available: int | None
    groups: list[dict[str, Any]]
    pgbouncer: PgBouncerReport | None = None
    notes: list[str] = field(default_factory=list)


def pool_report(database: Database) -> PoolReport:
    """The server's connections against its budget (through linea's monitoring connection)."""
    with monitoring_connection(database) as connection:
        return read_pool_report(connection)


def read_pool_report(connection: Connection) -> PoolReport:
    notes: list[str] = []
    settings = probe(connection, lambda c: c.execute(text(_SETTINGS)).one())
    groups = probe(connection, lambda c: [dict(row._mapping) for row in c.execute(text(_GROUPS))])
    if isinstance(groups, Blocked):
        notes.append(f"connections: {groups.reason}")
        groups = []
    hidden = False
    for group in groups:
        if group["state"] is None:
            group["state"], hidden = HIDDEN_STATE, True
    if hidden:
        notes.append("other roles' sessions show no state to this role: grant it pg_read_all_stats to see them")
    if isinstance(settings, Blocked):
        notes.append(f"the server's limits: {settings.reason}")
        return PoolReport(None, None, None, sum(g["connections"] for g in groups) or None, None, groups, notes=notes)
    in_use = sum(group["connections"] for group in groups)
    reserved = settings.superuser_reserved_connections + (settings.reserved_connections or 0)
    return PoolReport(
        max_connections=settings.max_connections,
        superuser_reserved_connections=settings.superuser_reserved_connections,
        reserved_connections=settings.reserved_connections,
        in_use=in_use,
        available=max(0, settings.max_connections - reserved - in_use),
        groups=groups,
        notes=notes,
    )


class PgBouncerUnreachable(Exception):
    """PgBouncer's admin console could not be read: why, without the URL's password."""


class NotPgBouncerConsole(PgBouncerUnreachable):
    """What answers at the console's URL is not PgBouncer's admin console (a PostgreSQL server,
    or a PgBouncer database other than `pgbouncer`): why."""


CONSOLE_URL = "postgresql://USER[:PASSWORD]@HOST:PORT/pgbouncer"


def console_shown(url: str) -> str:
    """PgBouncer's admin console URL as linea shows it (its password masked); one that does not
    parse is refused (InvalidInput, naming LINEA_PGBOUNCER_ADMIN_URL) before anything connects."""
    from linea_cli.db.urls import EXPECTED_URL, display_url, parse_database_url
    from linea_cli.errors import InvalidInput

    try:
        return display_url(parse_database_url(url))
    except InvalidInput as exc:
        # Never echoed (it may hold a password): what is wrong with it, and which setting it is.
        reason = exc.marked_message.removeprefix("the database URL is ").removesuffix(f"; {EXPECTED_URL}")
        raise InvalidInput(
            f"invalid LINEA_PGBOUNCER_ADMIN_URL: {reason}", hint=f"PgBouncer's admin console is {CONSOLE_URL}"
        ) from None


def pgbouncer_report(conninfo: str) -> PgBouncerReport:
    """PgBouncer's pools, statistics and databases from its admin console at `conninfo` (a
    postgresql:// URL whose database is `pgbouncer`, for a user in its admin_users or stats_users)."""
    import psycopg

    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=PGBOUNCER_CONNECT_TIMEOUT) as console:
            try:
                version = _show(console, "SHOW VERSION")
            except psycopg.errors.UndefinedObject as exc:  # PostgreSQL's answer: no setting "version"
                raise NotPgBouncerConsole(
                    f"it answered SHOW VERSION as PostgreSQL does ({first_line(exc)}); the console is "
                    f"PgBouncer's port and its database pgbouncer: {CONSOLE_URL}"
                ) from None
            pools, stats, databases = (_show(console, command) for command in ("SHOW POOLS", "SHOW STATS", "SHOW DATABASES"))
    except psycopg.Error as exc:
        raise PgBouncerUnreachable(first_line(exc)) from None
    return PgBouncerReport(
        version=next(iter(version[0].values()), None) if version else None,
        pools=sorted(
            (_pool(row) for row in pools),
            key=lambda pool: (-(pool["cl_waiting"] or 0), -(pool["oldest_wait_seconds"] or 0), str(pool["database"]), str(pool["user"])),
        ),
        stats=[_pick(row, STATS_KEYS) for row in stats],
        databases=[_pick(row, DATABASE_KEYS) for row in databases],
    )


def _show(console: Any, command: str) -> list[dict[str, Any]]:
    """A console command's rows by column name, over the simple query protocol: psycopg's
    ClientCursor sends a query without parameters as one simple Query message."""
    import psycopg

    with psycopg.ClientCursor(console) as cursor:
        cursor.execute(command)
        names = [column.name for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _pick(row: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {key: _number(row.get(key)) for key in keys}


def _number(value: Any) -> Any:
    """A count as the int it is (the console's numeric columns arrive as decimals or floats)."""
    if isinstance(value, float | Decimal) and value == int(value):
        return int(value)
    return value


def _pool(row: Mapping[str, Any]) -> dict[str, Any]:
    pool = _pick(row, POOL_KEYS)
    wait = row.get("maxwait")
    if wait is not None:
        wait = round(int(wait) + int(row.get("maxwait_us") or 0) / 1_000_000, 3)
    pool["oldest_wait_seconds"] = wait
    return pool


