"""What runs on the database now, who blocks whom, and ending a stuck query or session.

`read_activity` is a monitoring read (run it on `monitoring.monitoring_connection`, through
`monitoring.probe`): the backends of the connected database from `pg_stat_activity`, each with the
pids it waits for (`pg_blocking_pids`) and the pids waiting for it, in tree order (a blocker, then
what it blocks, indented by `depth`). `find_backend` and `signal_backend` are the two steps of
`db cancel` / `db terminate`: the session is looked up (and shown, and confirmed) first; the
signal is then sent only to that same session (same pid *and* start time, a pid being reused once
its process ends); its audit row is written after (`audit_signal`), in a transaction of its own,
for the session may hold the lock that row needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from linea_cli.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    NotFound,
    PermissionDenied,
    first_line,
)
from linea_cli.services.actors import Actor, require_admin
from linea_cli.services.audit_log import AuditAction, record
from linea_cli.services.monitoring import LOCK_NOT_AVAILABLE, exclusive_holders
from linea_cli.services.statement_text import mask_statement

# A transaction open this long is marked as long (PgHero's long-running query default).
LONG_TRANSACTION_SECONDS = 60
# What PostgreSQL shows instead of another role's query to a role without pg_read_all_stats.
HIDDEN_QUERY = "<insufficient privilege>"

_ACTIVITY = sa.text(
    """
    SELECT a.pid, a.application_name AS application, a.usename AS "user", a.backend_type,
           host(a.client_addr) AS client_addr, a.state,
           round(extract(epoch FROM now() - a.xact_start)::numeric, 3)::float8 AS transaction_seconds,
           CASE WHEN a.state = 'active'
                THEN round(extract(epoch FROM now() - a.query_start)::numeric, 3)::float8 END AS query_seconds,
           round(extract(epoch FROM now() - a.state_change)::numeric, 3)::float8 AS state_seconds,
           a.wait_event_type, a.wait_event, pg_blocking_pids(a.pid) AS blocked_by,
           a.xact_start, a.query_start, a.query
      FROM pg_stat_activity a
     WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
    """
)


@dataclass(frozen=True)
class Activity:
    """The backends of the database (`sessions`, dicts in tree order) and how many of them
    belong to other roles whose queries this role may not read (no pg_read_all_stats)."""

    sessions: list[dict[str, Any]]
    role: str
    hidden: int = 0


def read_activity(connection: Connection) -> Activity:
    """Every backend of the connected database but this one, blockers before what they block."""
    rows = [dict(row) for row in connection.execute(_ACTIVITY).mappings()]
    role = connection.execute(sa.text("SELECT current_user")).scalar_one()
    for row in rows:
        row["query"] = mask_statement(row["query"])  # as run: a password in it is masked
        row["blocked_by"] = sorted(row["blocked_by"] or [])
        state = row["state"] or ""
        row["idle_in_transaction"] = state.startswith("idle in transaction")
        seconds = row["transaction_seconds"]
        row["long_transaction"] = seconds is not None and seconds >= LONG_TRANSACTION_SECONDS
    hidden = sum(1 for row in rows if row["query"] == HIDDEN_QUERY)
    return Activity(sessions=_as_tree(rows), role=role, hidden=hidden)


def _as_tree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows in tree order: each blocked backend under the first of its blockers listed here
    (`depth` one more than it); `blocking` names the pids each one blocks. Roots that block others
    first, then the oldest transactions."""
    by_pid = {row["pid"]: row for row in rows}
    children: dict[int, list[dict[str, Any]]] = {pid: [] for pid in by_pid}
    for row in rows:
        row["blocking"] = sorted(other["pid"] for other in rows if row["pid"] in other["blocked_by"])
        parent = next((pid for pid in row["blocked_by"] if pid in by_pid), None)
        row["_parent"] = parent
        if parent is not None:
            children[parent].append(row)

    def age(row: Mapping[str, Any]) -> tuple[bool, float, int]:
        seconds = row["transaction_seconds"]
        return (not row["blocking"], -(seconds if seconds is not None else -1.0), row["pid"])

    ordered: list[dict[str, Any]] = []
    placed: set[int] = set()

    def place(row: dict[str, Any], depth: int) -> None:
        if row["pid"] in placed:  # a cycle (a deadlock about to be broken): shown once
            return
        placed.add(row["pid"])
        row["depth"] = depth
        ordered.append(row)
        for child in sorted(children[row["pid"]], key=age):
            place(child, depth + 1)

    for row in sorted((row for row in rows if row["_parent"] is None), key=age):
        place(row, 0)
    for row in sorted((row for row in rows if row["pid"] not in placed), key=age):  # cycles only
        place(row, 0)
    for row in ordered:
        del row["_parent"]
    return ordered


class Signal(StrEnum):
    """What `signal_backend` sends: cancel the running query, or end the whole session."""

    cancel = "cancel"
    terminate = "terminate"


_BACKEND = sa.text(
    """
    SELECT a.pid, a.application_name AS application, a.usename AS "user", a.backend_type, a.state,
           a.backend_start, a.xact_start, a.query_start, a.query_id, a.query,
           a.pid = pg_backend_pid() AS is_own
      FROM pg_stat_activity a
     WHERE a.pid = :pid AND a.datname = current_database()
    """
)


def find_backend(session: Session, *, pid: int, how: Signal, actor: Actor | None) -> dict[str, Any]:
    """The backend of the connected database with this pid, about to be signalled `how`.

    Refused: anyone but the system or an ADMIN; linea's own backend; a pid that is no backend of
    this database (not found); a cancel of a backend that runs no query (it would do nothing).
    """
    require_admin(actor, f"{how.value} a database session")
    row = session.execute(_BACKEND, {"pid": pid}).mappings().first()
    if row is None:
        raise NotFound(
            f"no session with pid {pid} in this database", hint="`linea db activity` lists the sessions and their pids"
        )
    backend = dict(row)
    backend["query"] = mask_statement(backend["query"])  # shown in the question: a password in it masked
    if backend.pop("is_own"):
        raise InvalidInput(f"pid {pid} is linea's own connection; refusing to {how.value} it")
    # A state this role may not see (another role's session, no pg_read_all_stats) is the server's to judge.
    if how is Signal.cancel and backend["state"] not in ("active", None):
        state = backend["state"]
        raise Conflict(
            f"pid {pid} runs no query ({state}): a cancel would do nothing",
            hint=f"`linea db terminate {pid}` ends its session (and rolls back its transaction)",
        )
    return backend


# How long `db terminate` waits for the session to exit (pg_terminate_backend's timeout): its
# locks go with it, and the audit row, written after, may need them (see `signal_backend`).
TERMINATE_WAIT_MS = 5000


def signal_backend(session: Session, *, backend: Mapping[str, Any], how: Signal, actor: Actor | None) -> dict[str, Any]:
    """Cancel the query of (or terminate) the backend `find_backend` gave, if it is still that
    session. Returns what was done, for the record (`audit_signal`, in a transaction of its own).

    The signal goes first and writes nothing: the session to end may hold a lock on users or
    audit_logs (a LOCK TABLE, a deploy's ALTER TABLE), which an audit row's INSERT would wait for
    (its foreign key's check opens users even for the system's NULL user). A terminate waits up to
    TERMINATE_WAIT_MS for the session to exit, its locks with it; commit the caller's transaction
    before auditing."""
    require_admin(actor, f"{how.value} a database session")
    pid, started = backend["pid"], backend["backend_start"]
    details = _details(backend)
    # The row is written after the signal: a role that could not write it is refused before.
    # (has_table_privilege reads the catalog: no lock on audit_logs, which the session may hold.)
    role, may_audit = session.execute(
        sa.text("SELECT current_user, has_table_privilege('audit_logs', 'INSERT')")
    ).one()
    if not may_audit:
        from linea_cli.db.refusals import ROLES_HINT

        raise PermissionDenied(
            f"role {role!r} lacks the INSERT privilege on table audit_logs: a {how.value} is audited; nothing was done",
            hint=ROLES_HINT,
        )
    call = "pg_cancel_backend(pid)" if how is Signal.cancel else "pg_terminate_backend(pid, :wait)"
    try:
        sent = session.execute(
            sa.text(
                f"SELECT {call} FROM pg_stat_activity "
                # backend_start is null to a role that may not see the session: then the pid alone.
                "WHERE pid = :pid AND backend_start IS NOT DISTINCT FROM :started AND datname = current_database()"
            ),
            {"pid": pid, "started": started, "wait": TERMINATE_WAIT_MS},
        ).scalar()
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != "42501":
            raise
        message = first_line(error, default="")
        raise PermissionDenied(
            f"the database refused to {how.value} pid {pid}: {message}",
            hint="the role needs to be the session's own role, a member of pg_signal_backend (not for superusers' sessions), "
            "or a superuser",
        ) from None
    if sent is None:
        raise NotFound(f"pid {pid} ended before it could be signalled; nothing was done")
    done = {"pid": pid, "action": how.value, **{k: v for k, v in details.items() if k != "query_id"}}
    if how is Signal.terminate:
        # False: signalled, but still running after the wait (busy in a long uninterruptible step).
        done["ended"] = bool(sent)
    return done


def _details(backend: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit row keeps of the session (never its query text)."""
    keys = ("application", "user", "backend_type", "state", "backend_start", "xact_start", "query_start", "query_id")
    return {key: backend[key] for key in keys}


def did(done: Mapping[str, Any]) -> str:
    """What `signal_backend` did, in words: `terminated pid 4242`."""
    if done["action"] == Signal.cancel.value:
        return f"cancelled the query of pid {done['pid']}"
    if done.get("ended", True):
        return f"terminated pid {done['pid']}"
    return f"signalled pid {done['pid']} to terminate (still running after {TERMINATE_WAIT_MS // 1000} s)"


def audit_signal(
    session: Session, *, backend: Mapping[str, Any], done: Mapping[str, Any], actor: Actor | None
) -> None:
    """The audit row of what `signal_backend` did (`done`) to `backend`, in the caller's
    transaction. A lock that still keeps the row from being written (a query
    cancelled in a savepoint leaves its transaction's locks held; a session queued behind the
    terminated one took it) is exit
    5 saying what was done, that the row is missing, and who holds the lock."""
    action = AuditAction.CANCEL if done["action"] == Signal.cancel.value else AuditAction.TERMINATE
    savepoint = session.begin_nested()
    try:
        record(
            session, action=action, resource="Backend", resource_id=str(done["pid"]), actor=actor, details=_details(backend)
        )
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE or error.connection_invalidated:
            raise
        savepoint.rollback()
        holders = exclusive_holders(session.connection())
        raise DatabaseUnavailable(
            f"{did(done)}, but its audit row ({action.value}, resource Backend) could not be written: gave up waiting "
            f"for a lock{': ' + holders if holders else ''}",
            hint="`linea db activity` shows the session holding it",
        ) from None
    savepoint.commit()
