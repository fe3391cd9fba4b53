"""The connection a read command uses: psycopg's, made as the engine makes its own, without SQLAlchemy.

`events list`, `users show` and `waitlist stats` run a few queries (`services/reads.py`); importing
SQLAlchemy and SQLModel to run them cost more than the queries. This module connects with the
arguments `Database.open` and `build_engine` would hand psycopg for the same settings (so the same
server, and the same driver errors): the URL read as SQLAlchemy reads it (`make_url`, then its
psycopg dialect's `create_connect_args`), or nothing at all when libpq's PG* variables choose the
server, or the embedded server's socket as its `postmaster.pid` announces it; application_name
`linea/COMMAND`, connect_timeout, no prepared statements (PgBouncer); each transaction starts with
linea's timeouts and learns where it runs (`connected.TRANSACTION_START`).

It decides nothing of its own. Whenever the configuration is not plain (a URL that does not parse
or that SQLAlchemy reads in its own way: several hosts, a port in the query, a repeated
parameter; an embedded server not announced or not answering, which the engine's path starts) or
the database is not at linea's head revision (the engine's path migrates the embedded one or
says what to run), `connect` or `at_head` answers None or False and the command takes the
engine's path, which says and does what it always did. A server that refuses a connection made
here is reported as the engine's would be: the same psycopg error, the same target in the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from linea_cli.db import connected
from linea_cli.db.connected import TRANSACTION_START, ConnectedTo, connected_to
from linea_cli.db.libpq_environment import libpq_environment
from linea_cli.db.revision import HEAD_REVISION, VERSION_TABLES
from linea_cli.db.urls import url_parts
from linea_cli.interrupts import interrupts_held

if TYPE_CHECKING:
    from linea_cli.config import Settings

CONNECT_TIMEOUT_SECONDS = 10  # build_engine's
# linea_cli.db.embedded's database and role on its own server.
_EMBEDDED_DATABASE, _EMBEDDED_USER = "linea", "postgres"


def url_arguments(raw: str) -> dict[str, Any] | None:
    """psycopg.connect's keyword arguments for a linea URL, as SQLAlchemy's psycopg dialect makes
    them; None when the URL is not one this module reads the same way (the engine's path decides)."""
    match = url_parts(raw)
    if match is None:
        return None
    query: dict[str, str] = {}
    for key, value in parse_qsl(match["query"] or ""):
        if key in query:  # a list to SQLAlchemy (several hosts)
            return None
        query[key] = value
    # Several hosts, or a host with its port, in the query: SQLAlchemy's multihost rules.
    if "port" in query or any(c in query.get("host", "") for c in ",:"):
        return None
    arguments: dict[str, Any] = {}
    for name, value in (
        ("host", match["ipv4host"] or match["ipv6host"]),
        ("dbname", unquote(match["database"]) if match["database"] is not None else None),
        ("user", unquote(match["username"]) if match["username"] is not None else None),
        ("password", unquote(match["password"]) if match["password"] is not None else None),
    ):
        if value:  # URL.translate_connect_args leaves out what is empty
            arguments[name] = value
    if match["port"] and int(match["port"]):
        arguments["port"] = int(match["port"])
    arguments.update(query)
    return arguments


def connect_arguments(settings: Settings) -> tuple[dict[str, Any], bool] | None:
    """(psycopg.connect's keyword arguments, whether it is the embedded server), or None."""
    raw = settings.database_url
    if raw:
        arguments = url_arguments(raw)
        return None if arguments is None else (arguments, False)
    if libpq_environment():  # everything left to libpq, which reads its environment
        return {}, False
    # The rule `embedded.announced_url` applies, without SQLAlchemy's URL (completion reads it so too).
    from linea_cli.completion_fast import _announced_socket

    socket_directory = _announced_socket(Path(settings.data_dir) / "postgres")
    if socket_directory is None:  # not running: the engine's path starts it
        return None
    return {"host": str(socket_directory), "user": _EMBEDDED_USER, "dbname": _EMBEDDED_DATABASE}, True


def connect(settings: Settings, *, command: str) -> Any | None:
    """A psycopg connection to the configured database, or None for the engine's path.

    A refused connection to a configured server raises psycopg's error, as the engine would
    (cli/__init__.py names the target from the settings); the embedded server not answering is
    the engine's path's to start.
    """
    found = connect_arguments(settings)
    if found is None:
        return None
    arguments, embedded = found
    import psycopg

    try:
        return psycopg.connect(
            "", **arguments, prepare_threshold=None, application_name=f"linea/{command}"[:63],
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except psycopg.OperationalError:
        if embedded:
            return None
        raise


@contextmanager
def transaction(
    connection: Any, settings: Settings, *, on_connected: Callable[[ConnectedTo], None] = lambda where: None
) -> Iterator[Any]:
    """One transaction on `connection`: linea's timeouts first, committed on success, rolled back
    (by closing the connection, as `Database.unit_of_work` does) on any error."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(TRANSACTION_START, {"lock": settings.lock_timeout, "statement": settings.statement_timeout})
            row = cursor.fetchone()
        on_connected(connected_to(row[2], connection.info))
        yield connection
    except BaseException:
        with interrupts_held():
            connection.close()
        raise
    with interrupts_held():
        connection.commit()


def at_head(connection: Any) -> bool:
    """Whether the server is new enough and the database at linea's newest revision (in the
    current transaction); False sends the command down the engine's path, which says why."""
    if connected.server_version_num(connection) < connected.MINIMUM_SERVER_VERSION:
        return False
    return linea_revision(connection) == HEAD_REVISION


def linea_revision(connection: Any) -> str | None:
    """linea's revision, from its version table in the linea schema (or, before the move, public):
    `db.catalog.current_linea_revision`'s reads, on a psycopg connection."""
    with connection.cursor() as cursor:
        for qualified in VERSION_TABLES:
            if cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()[0]:
                found = cursor.execute(f"SELECT version_num FROM {qualified}").fetchone()
                return found[0] if found else None
    return None
