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

from sqlalchemy.exc import DBAPIError

from linea_cli.db.engine import TRANSACTION_SETTINGS_INFO

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from linea_cli.db.engine import Database

# Long enough for a catalog read on a busy server, short enough that an admin never waits on a
# lock: a check blocked this long is reported as blocked, with who holds the lock when known.
MONITOR_LOCK_TIMEOUT = "200ms"
MONITOR_STATEMENT_TIMEOUT = "5s"

T = TypeVar("T")


@dataclass(frozen=True)
class Blocked:
    """A check that could not run, and why (in words an admin can act on)."""

    reason: str


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
        savepoint.rollback()
        return Blocked(_reason(error))
    savepoint.commit()
    return answer


def _reason(error: DBAPIError) -> str:
    """The server's one-line message, with what kind of refusal it was."""
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None) or ""
    message = (str(original).strip().splitlines() or ["the server refused it"])[0]
    if sqlstate == "55P03":
        return f"blocked: waited {MONITOR_LOCK_TIMEOUT} for a lock ({message})"
    if sqlstate == "57014":
        return f"took longer than {MONITOR_STATEMENT_TIMEOUT} ({message})"
    if sqlstate == "42501":
        return f"not permitted to this role ({message})"
    return message
