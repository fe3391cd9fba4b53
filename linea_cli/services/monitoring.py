"""Reading the server's own statistics without ever waiting behind the platform, nor harming it.

Monitoring runs when something is already wrong: a deploy's `ALTER TABLE` holding an ACCESS
EXCLUSIVE lock, a stuck transaction, a full pool. PgHero hung behind such locks (pghero#246,
#344, #444). So every monitoring read here is in a read-only transaction with a short lock wait and
statement time, and each check runs in a savepoint of its own: one that cannot run (blocked, no
privilege, an extension missing) becomes a `Blocked` answer saying why, and the others still report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from linea_cli.db.engine import TRANSACTION_SETTINGS_INFO
from linea_cli.errors import first_line

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

    from linea_cli.db.engine import Database

# Long enough for a catalog read on a busy server, short enough that an admin never waits on a
# lock: a check blocked this long is reported as blocked, with who holds the lock when known.
MONITOR_LOCK_TIMEOUT = "200ms"
MONITOR_STATEMENT_TIMEOUT = "5s"

T = TypeVar("T")


@dataclass(frozen=True)
class Blocked:
    """A check that could not run, and why (in words an admin can act on); when a lock stopped it,
    the pids of the sessions holding (or queued for) an ACCESS EXCLUSIVE lock in this database."""

    reason: str
    holders: tuple[int, ...] = ()


@contextmanager
def monitoring_connection(database: Database) -> Iterator[Connection]:
    """One connection whose transactions are read-only, wait at most MONITOR_LOCK_TIMEOUT for a
    lock and run at most MONITOR_STATEMENT_TIMEOUT per statement (applied at each BEGIN)."""
    with database.connect() as connection:
        connection.info[TRANSACTION_SETTINGS_INFO] = {
            "lock_timeout": MONITOR_LOCK_TIMEOUT,
            "statement_timeout": MONITOR_STATEMENT_TIMEOUT,
            "transaction_read_only": "on",
        }
        connection.begin()
        yield connection


def probe(connection: Connection, check: Callable[[Connection], T]) -> T | Blocked:
    """`check(connection)` in a savepoint: its answer, or `Blocked` when the server refused it (a lock
    wait or statement time over the limit, a privilege, a missing object); the transaction goes on."""
    savepoint = connection.begin_nested()
    try:
        answer = check(connection)
    except DBAPIError as error:
        if error.connection_invalidated:  # the connection is gone: no other check can run either
            raise
        savepoint.rollback()
        if _sqlstate(error) == LOCK_NOT_AVAILABLE:
            return _blocked_by_lock(connection)
        return Blocked(_reason(error))
    savepoint.commit()
    return answer


LOCK_NOT_AVAILABLE = "55P03"
# A read takes ACCESS SHARE locks only, which nothing but ACCESS EXCLUSIVE conflicts with: a check
# that timed out on a lock waited behind a session holding one (a deploy's ALTER TABLE, a LOCK
# TABLE, VACUUM FULL) or queued for one behind a long transaction. The wait is over when this runs,
# so the holders are read from pg_locks: each session with such a lock in this database, and what
# it locks (the first few relations), the ones holding first. Not temporary tables (a session
# holds ACCESS EXCLUSIVE on each it created, which no other session can touch), nor relations
# created in a transaction not yet committed (invisible to others: pg_class has no row for them).
_EXCLUSIVE_HOLDERS = """
SELECT l.pid, bool_or(l.granted) AS holds,
       array_agg(coalesce(l.relation::regclass::text, '?') ORDER BY l.relation::regclass::text) AS relations,
       CASE WHEN bool_or(l.granted) THEN '{}'::int[] ELSE pg_blocking_pids(l.pid) END AS behind
FROM pg_locks l JOIN pg_class c ON c.oid = l.relation AND c.relpersistence <> 't'
WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
GROUP BY l.pid ORDER BY bool_or(l.granted) DESC, l.pid
"""
_SESSIONS_NAMED = 3
_RELATIONS_NAMED = 3


def _blocked_by_lock(connection: Connection) -> Blocked:
    """`Blocked` for a check that waited MONITOR_LOCK_TIMEOUT for a lock, naming who holds it."""
    waited = f"blocked: waited {MONITOR_LOCK_TIMEOUT} for a lock"
    rows = _holder_rows(connection)
    if isinstance(rows, DBAPIError):
        return Blocked(f"{waited}; its holder could not be read ({_reason(rows)})")
    if not rows:  # released meanwhile, or a lock of another kind (an advisory one)
        return Blocked(f"{waited}, released before its holder could be read")
    pids = dict.fromkeys(pid for row in rows for pid in (row.pid, *row.behind))
    return Blocked(f"{waited}: {_holders_named(rows)}", holders=tuple(pids))


def exclusive_holders(connection: Connection) -> str | None:
    """Who holds or queues for an ACCESS EXCLUSIVE lock in this database, in words (`pid 4242
    holds ACCESS EXCLUSIVE on users`), read in a savepoint; None when nobody does or it cannot be read."""
    rows = _holder_rows(connection)
    return None if isinstance(rows, DBAPIError) or not rows else _holders_named(rows)


def _holder_rows(connection: Connection) -> list[Row] | DBAPIError:
    """The sessions holding or queued for ACCESS EXCLUSIVE locks (_EXCLUSIVE_HOLDERS), read in a
    savepoint; the server's refusal instead when it could not be read."""
    savepoint = connection.begin_nested()
    try:
        rows = connection.execute(text(_EXCLUSIVE_HOLDERS)).all()
    except DBAPIError as error:
        if error.connection_invalidated:
            raise
        savepoint.rollback()
        return error
    savepoint.commit()
    return list(rows)


def _holders_named(rows: list[Row]) -> str:
    more = f"; and {len(rows) - _SESSIONS_NAMED} more sessions" if len(rows) > _SESSIONS_NAMED else ""
    return "; ".join(_holding(row) for row in rows[:_SESSIONS_NAMED]) + more


def _holding(row: Row) -> str:
    relations = row.relations  # regclass text: quoted where need be
    named = ", ".join(relations[:_RELATIONS_NAMED]) + (
        f" and {len(relations) - _RELATIONS_NAMED} more" if len(relations) > _RELATIONS_NAMED else ""
    )
    if row.holds:
        return f"pid {row.pid} holds ACCESS EXCLUSIVE on {named}"
    # Queued behind others (a deploy's ALTER behind a long transaction): every later reader waits too.
    behind = ", ".join(f"pid {pid}" for pid in row.behind)
    return f"pid {row.pid} waits for ACCESS EXCLUSIVE on {named}" + (f", behind {behind}" if behind else "")


def _sqlstate(error: DBAPIError) -> str:
    return getattr(error.orig, "sqlstate", None) or ""


def _reason(error: DBAPIError) -> str:
    """The server's one-line message, with what kind of refusal it was."""
    sqlstate = _sqlstate(error)
    message = first_line(error, default="the server refused it")
    if sqlstate == LOCK_NOT_AVAILABLE:
        return f"blocked: waited {MONITOR_LOCK_TIMEOUT} for a lock ({message})"
    if sqlstate == "57014":
        return f"took longer than {MONITOR_STATEMENT_TIMEOUT} ({message})"
    if sqlstate == "42501":
        return f"not permitted to this role ({message})"
    return message


# --- `db doctor`'s checks of the server's health -------------------------------------------------
# Each reads statistics views and catalogs only (never a platform table's rows), so a lock on the
# platform's tables cannot stop it; each threshold is in README ("Health checks").

OK, WARN, FAIL, UNKNOWN = "OK", "WARN", "FAIL", "UNKNOWN"  # UNKNOWN: the check could not run


@dataclass(frozen=True)
class Check:
    check: str
    status: str
    detail: str


# Transaction IDs and multixact IDs wrap around after 2^31; PostgreSQL stops assigning new ones
# shortly before (3 million left since PostgreSQL 14). Autovacuum freezes from 200 million on by
# default (autovacuum_freeze_max_age): an age past WRAPAROUND_WARN means it has not kept up for
# a long time; past WRAPAROUND_FAIL the stop is near (check_postgres warns at 1.3 billion).
WRAPAROUND_LIMIT = 2**31
WRAPAROUND_WARN = 1_000_000_000
WRAPAROUND_FAIL = 1_500_000_000
# Autovacuum's own trigger (threshold + scale factor x rows, from the server's settings) passed,
# and no vacuum (or analyze) for this long: autovacuum is not keeping up with that table.
STALE_AFTER_HOURS = 24
# Dead rows this share of a table of at least DEAD_ROWS_MIN_ROWS rows (live and dead).
DEAD_ROWS_WARN = 0.20
DEAD_ROWS_MIN_ROWS = 10_000
# PgHero's threshold; judged once at least CACHE_MIN_BLOCKS blocks were asked for.
CACHE_HIT_WARN = 0.99
CACHE_MIN_BLOCKS = 10_000
# Client connections against those open to ordinary roles (max_connections less the reserved ones).
CONNECTIONS_WARN = 0.80
CONNECTIONS_FAIL = 0.95
# PgHero's long-running query threshold; a transaction idle this long holds its locks and snapshot.
LONG_QUERY_SECONDS = 60
IDLE_IN_TRANSACTION_SECONDS = 60
REPLICATION_LAG_SECONDS = 60
_NAMED = 3  # sessions, tables or constraints named in a detail; the rest are counted


def _duration(seconds: float) -> str:
    """3 d 4 h, 2 h 5 min, 4 min 12 s, 9 s."""
    whole = int(seconds)
    for unit, size, smaller, smaller_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60), ("min", 60, "s", 1)):
        if whole >= size:
            rest = (whole % size) // smaller_size
            return f"{whole // size} {unit}" + (f" {rest} {smaller}" if rest else "")
    return f"{whole} s"


def _listed(items: list[str]) -> str:
    return ", ".join(items[:_NAMED]) + (f" and {len(items) - _NAMED} more" if len(items) > _NAMED else "")


def wraparound_checks(connection: Connection) -> list[Check]:
    """Transaction-ID and multixact age of this database (its oldest unfrozen table's), against 2^31."""
    row = connection.execute(text(
        "SELECT age(d.datfrozenxid) AS xid_age, mxid_age(d.datminmxid) AS mxid_age, "
        "(SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind IN ('r', 'm', 't') "
        " AND c.relfrozenxid <> '0' ORDER BY age(c.relfrozenxid) DESC LIMIT 1) AS oldest "
        "FROM pg_database d WHERE d.datname = current_database()"
    )).one()
    checks = []
    for name, age, what in (
        ("transaction ID age", row.xid_age, "transaction IDs"), ("multixact ID age", row.mxid_age, "multixact IDs")
    ):
        status = FAIL if age >= WRAPAROUND_FAIL else WARN if age >= WRAPAROUND_WARN else OK
        detail = f"the oldest unfrozen is {age:,} {what} old: {age / WRAPAROUND_LIMIT:.1%} of the way to wraparound (2^31)"
        if status != OK:
            oldest = f" (the oldest: {row.oldest})" if name.startswith("transaction") and row.oldest else ""
            detail += f": autovacuum is not freezing fast enough; VACUUM (FREEZE) the oldest tables{oldest}"
        checks.append(Check(name, status, detail))
    return checks


_TABLE_STATISTICS = """
SELECT s.relname AS name, s.n_live_tup AS live, s.n_dead_tup AS dead, s.n_mod_since_analyze AS modified,
       extract(epoch FROM now() - greatest(s.last_vacuum, s.last_autovacuum)) AS since_vacuum,
       extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze)) AS since_analyze,
       current_setting('autovacuum_vacuum_threshold')::float8
         + current_setting('autovacuum_vacuum_scale_factor')::float8 * greatest(c.reltuples, 0) AS vacuum_trigger,
       current_setting('autovacuum_analyze_threshold')::float8
         + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0) AS analyze_trigger,
       EXISTS (SELECT 1 FROM unnest(c.reloptions) o
               WHERE o ~* '^autovacuum_enabled=(false|off|no|n|f|0)$') AS autovacuum_off
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = 'public'
ORDER BY s.relname
"""


def maintenance_checks(connection: Connection) -> list[Check]:
    """Vacuum and analyze staleness and the share of dead rows, on the platform's tables (`public`)."""
    tables = connection.execute(text(_TABLE_STATISTICS)).all()
    autovacuum_on = connection.execute(text("SELECT current_setting('autovacuum') = 'on'")).scalar()
    stale = STALE_AFTER_HOURS * 3600
    checks = []
    for name, count, trigger, since in (
        ("vacuum", "dead", "vacuum_trigger", "since_vacuum"), ("analyze", "modified", "analyze_trigger", "since_analyze")
    ):
        behind = [
            f"{table.name} ({getattr(table, count):,} {'dead' if name == 'vacuum' else 'changed'} rows, "
            + ("never" if getattr(table, since) is None else f"last {_duration(getattr(table, since))} ago") + ")"
            for table in tables
            if getattr(table, count) > getattr(table, trigger) and (getattr(table, since) is None or getattr(table, since) > stale)
        ]
        off = [table.name for table in tables if table.autovacuum_off]
        problems = []
        if not autovacuum_on:
            problems.append("autovacuum is off on this server")
        if off:
            problems.append(f"autovacuum is off for {_listed(off)}")
        if behind:
            problems.append(
                f"past autovacuum's trigger and not {name}d for {STALE_AFTER_HOURS} h: {_listed(behind)}; run ANALYZE"
                if name == "analyze" else
                f"past autovacuum's trigger and not {name}ed for {STALE_AFTER_HOURS} h: {_listed(behind)}; run VACUUM"
            )
        checks.append(Check(
            name, WARN if problems else OK,
            "; ".join(problems) if problems else f"autovacuum keeps up with the {len(tables)} tables of the platform's schema",
        ))
    heavy = [
        (table.dead / (table.live + table.dead), table)
        for table in tables
        if table.live + table.dead >= DEAD_ROWS_MIN_ROWS and table.dead / (table.live + table.dead) >= DEAD_ROWS_WARN
    ]
    heavy.sort(key=lambda pair: -pair[0])
    worst = max(
        ((table.dead / (table.live + table.dead), table.name) for table in tables if table.live + table.dead),
        default=None,
    )
    checks.append(Check(
        "dead rows",
        WARN if heavy else OK,
        f"{_listed([f'{table.name} {share:.0%} of {table.live + table.dead:,}' for share, table in heavy])} rows dead: "
        "VACUUM them, and see why autovacuum does not" if heavy
        else f"under {DEAD_ROWS_WARN:.0%} in every table of {DEAD_ROWS_MIN_ROWS:,} rows or more"
        + (f" (the most: {worst[1]} {worst[0]:.0%})" if worst and worst[0] >= 0.005 else ""),
    ))
    return checks


def cache_check(connection: Connection) -> Check:
    """The share of table and index blocks found in shared buffers since the statistics' reset."""
    row = connection.execute(text(
        "SELECT coalesce(sum(heap_blks_hit), 0) AS table_hit, coalesce(sum(heap_blks_read), 0) AS table_read, "
        "coalesce(sum(idx_blks_hit), 0) AS index_hit, coalesce(sum(idx_blks_read), 0) AS index_read "
        "FROM pg_statio_user_tables"
    )).one()
    ratios = {}
    for what, hit, read in (("tables", row.table_hit, row.table_read), ("indexes", row.index_hit, row.index_read)):
        if hit + read >= CACHE_MIN_BLOCKS:
            ratios[what] = hit / (hit + read)
    if not ratios:
        return Check("cache hit ratio", OK, f"too few reads to judge (under {CACHE_MIN_BLOCKS:,} blocks since the statistics' reset)")
    low = [what for what, ratio in ratios.items() if ratio < CACHE_HIT_WARN]
    detail = ", ".join(f"{what} {ratio:.2%}" for what, ratio in ratios.items()) + " of blocks found in memory"
    if low:
        detail += f"; under {CACHE_HIT_WARN:.0%}: shared_buffers may be too small for the working set"
    return Check("cache hit ratio", WARN if low else OK, detail)


# The client connections among pg_stat_activity's rows. Another role's session shows no
# backend_type to a role without pg_read_all_stats (nor its state): such a row is a client
# connection when it has a database and a role (autovacuum workers and the server's own
# processes have no role; the walsenders of physical replication no database).
CLIENT_BACKENDS = (
    "datid IS NOT NULL AND usesysid IS NOT NULL AND coalesce(backend_type, 'client backend') = 'client backend'"
)


def connections_check(connection: Connection) -> Check:
    """Client connections against max_connections less the reserved ones."""
    row = connection.execute(text(
        f"SELECT count(*) FILTER (WHERE {CLIENT_BACKENDS}) AS clients, "
        "current_setting('max_connections')::int AS max, "
        "current_setting('superuser_reserved_connections')::int "
        "+ coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved "
        "FROM pg_stat_activity"
    )).one()
    available = max(row.max - row.reserved, 1)
    share = row.clients / available
    status = FAIL if share >= CONNECTIONS_FAIL else WARN if share >= CONNECTIONS_WARN else OK
    detail = f"{row.clients} of the {available} open to ordinary roles ({share:.0%}; max_connections {row.max}, {row.reserved} reserved)"
    if status != OK:
        detail += ": new connections will be refused soon; see `linea db pool`, or pool them with PgBouncer"
    return Check("connections", status, detail)


_SESSIONS = """
SELECT pid, coalesce(nullif(application_name, ''), '?') AS application, usename AS role, state,
       extract(epoch FROM now() - query_start) AS in_query, extract(epoch FROM now() - state_change) AS in_state
FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND datname = current_database()
  AND coalesce(backend_type, 'client backend') = 'client backend'
ORDER BY pid
"""


def session_checks(connection: Connection) -> list[Check]:
    """Queries running longer than LONG_QUERY_SECONDS, and transactions left idle over
    IDLE_IN_TRANSACTION_SECONDS, in this database (the sessions of other roles only with pg_read_all_stats)."""
    sessions = connection.execute(text(_SESSIONS)).all()
    hidden = sum(1 for session in sessions if session.state is None)
    unseen = (
        f"; {hidden} session(s) of other roles not visible to this one (grant it pg_read_all_stats)" if hidden else ""
    )
    long = sorted(
        (session for session in sessions if session.state == "active" and (session.in_query or 0) >= LONG_QUERY_SECONDS),
        key=lambda session: -session.in_query,
    )
    idle = sorted(
        (session for session in sessions
         if session.state is not None and session.state.startswith("idle in transaction")
         and (session.in_state or 0) >= IDLE_IN_TRANSACTION_SECONDS),
        key=lambda session: -session.in_state,
    )

    def named(found: list, seconds: str) -> str:
        return _listed([f"pid {s.pid} ({s.application}, {s.role}) {_duration(getattr(s, seconds))}" for s in found])

    return [
        Check(
            "long-running queries", WARN if long else OK,
            (f"running over {_duration(LONG_QUERY_SECONDS)}: {named(long, 'in_query')}; see `linea db activity`" if long
             else f"none over {_duration(LONG_QUERY_SECONDS)}") + unseen,
        ),
        Check(
            "idle in transaction", WARN if idle else OK,
            (f"idle over {_duration(IDLE_IN_TRANSACTION_SECONDS)} in an open transaction (holding its locks, "
             f"holding back vacuum): {named(idle, 'in_state')}; see `linea db activity`" if idle
             else f"none over {_duration(IDLE_IN_TRANSACTION_SECONDS)}") + unseen,
        ),
    ]


def replication_check(connection: Connection) -> Check:
    """On a primary, each replica's replay lag; on a replica, how far its replay is behind."""
    if connection.execute(text("SELECT pg_is_in_recovery()")).scalar():
        row = connection.execute(text(
            "SELECT pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() AS caught_up, "
            "extract(epoch FROM now() - pg_last_xact_replay_timestamp()) AS behind"
        )).one()
        if row.caught_up or row.behind is None:
            return Check("replication lag", OK, "a replica, its replay caught up with what it received")
        status = WARN if row.behind >= REPLICATION_LAG_SECONDS else OK
        return Check("replication lag", status, f"a replica, replaying changes {_duration(row.behind)} old")
    replicas = connection.execute(text(
        "SELECT coalesce(nullif(application_name, ''), client_addr::text, '?') AS name, state, "
        "extract(epoch FROM replay_lag) AS lag FROM pg_stat_replication ORDER BY 1"
    )).all()
    if not replicas:
        return Check("replication lag", OK, "no replicas")
    if all(replica.state is None for replica in replicas):
        return Check(
            "replication lag", OK,
            f"{len(replicas)} replica(s), their lag not visible to this role (grant it pg_read_all_stats)",
        )
    behind = [
        f"{replica.name} " + (f"{_duration(replica.lag)}" if replica.state == "streaming" else f"{replica.state}")
        for replica in replicas
        if replica.state is not None and (replica.state != "streaming" or (replica.lag or 0) >= REPLICATION_LAG_SECONDS)
    ]
    if behind:
        return Check("replication lag", WARN, f"behind or not streaming: {_listed(behind)}")
    return Check("replication lag", OK, f"{len(replicas)} replica(s) streaming, each under {_duration(REPLICATION_LAG_SECONDS)} behind")


def constraints_check(connection: Connection) -> Check:
    """Constraints added NOT VALID and never validated: the rows from before them were never checked."""
    rows = connection.execute(text(
        "SELECT c.conrelid::regclass::text AS tablename, c.conname FROM pg_constraint c "
        "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public' AND NOT c.convalidated "
        "ORDER BY 1, 2"
    )).all()
    if not rows:
        return Check("constraints valid", OK, "every constraint of the platform's tables was validated")
    return Check(
        "constraints valid", WARN,
        f"not validated (rows from before it may break it): {_listed([f'{row.conname} on {row.tablename}' for row in rows])}; "
        "ALTER TABLE ... VALIDATE CONSTRAINT checks them",
    )


def health_checks(connection: Connection) -> list[Check]:
    """Every health check above, each in a probe of its own: one blocked is UNKNOWN, the rest report."""
    return [
        *checked(connection, ("transaction ID age", "multixact ID age"), wraparound_checks),
        *checked(connection, ("vacuum", "analyze", "dead rows"), maintenance_checks),
        *checked(connection, ("cache hit ratio",), cache_check),
        *checked(connection, ("connections",), connections_check),
        *checked(connection, ("long-running queries", "idle in transaction"), session_checks),
        *checked(connection, ("replication lag",), replication_check),
        *checked(connection, ("constraints valid",), constraints_check),
    ]


def checked(
    connection: Connection, names: tuple[str, ...], check: Callable[[Connection], Check | list[Check] | None]
) -> list[Check]:
    """`check` in a probe: its checks, or each of `names` UNKNOWN with why it could not run.

    Then the transaction ends and a new one begins (read-only, the same short waits): the ACCESS
    SHARE locks a read takes are held to the end of its transaction, and a deploy's ALTER TABLE
    arriving meanwhile would queue behind them, and every query of the platform behind it. So
    nothing a check read stays locked while the next one runs.
    """
    answer = probe(connection, check)
    next_transaction(connection)
    if isinstance(answer, Blocked):
        return [Check(name, UNKNOWN, answer.reason) for name in names]
    if answer is None:
        return []
    return [answer] if isinstance(answer, Check) else answer


def next_transaction(connection: Connection) -> None:
    """End the monitoring transaction, releasing its locks, and begin the next (with its settings)."""
    connection.commit()
    connection.begin()
