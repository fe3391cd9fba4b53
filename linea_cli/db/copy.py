"""COPY in the session's transaction: text rows in, CSV out, with Ctrl-C and SIGTERM handled.

Many rows go to and from PostgreSQL through COPY, never a Python loop of INSERTs. psycopg's COPY
runs on the connection under the SQLAlchemy session, so it commits or rolls back with the
command's unit of work.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from linea_cli.interrupts import interrupts_held

T = TypeVar("T")

COPY_NULL = "\\N"
_COPY_SPECIALS = re.compile(r"[\\\t\n\r]")


def copy_text(value: str) -> str:
    """A value in COPY's text format."""
    if _COPY_SPECIALS.search(value) is None:
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def driver_connection(session: Any) -> Any:
    """The psycopg 3 connection under a SQLAlchemy session, inside the session's transaction."""
    return session.connection().connection.driver_connection


def run_copy(session: Any, statement: Any, body: Callable[[Any], T]) -> T:
    """`body(copy)` inside psycopg's `cursor.copy(statement)`, in the session's transaction.

    The context is entered and left by hand, with Ctrl-C and SIGTERM held back while psycopg
    starts and finishes the COPY: an interrupt landing just as `with` calls `__enter__`/`__exit__`
    (CPython bpo-29988) would otherwise leave the connection's lock held, and the rollback that
    follows would wait forever. During `body` (reading the file, streaming rows) they act at once.
    """
    connection = driver_connection(session)
    manager = connection.cursor().copy(statement)
    try:
        with interrupts_held():
            copy = manager.__enter__()
        result = body(copy)
        with interrupts_held():
            manager.__exit__(None, None, None)
    except BaseException as exc:
        if inspect.getgeneratorstate(manager.gen) == inspect.GEN_SUSPENDED:
            with interrupts_held():
                manager.__exit__(type(exc), exc, exc.__traceback__)  # fails the COPY, frees the lock
        raise as_statement_error(exc, statement, connection) from exc
    return result


def as_statement_error(exc: BaseException, statement: Any, connection: Any) -> BaseException:
    """A psycopg error raised outside SQLAlchemy, wrapped as SQLAlchemy wraps the others: with the
    statement, so the error boundary names what a refused privilege was needed for (COPY ... FROM
    is INSERT, COPY ... TO is SELECT) exactly as for any other statement."""
    import psycopg
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, psycopg.Error):
        return exc
    text = statement if isinstance(statement, str) else statement.as_string(connection)
    return DBAPIError.instance(text, None, exc, psycopg.Error)


def copy_in(session: Any, statement: str, produce: Callable[[Callable[[str], Any]], T]) -> T:
    """Run `COPY ... FROM STDIN` in the session's transaction; `produce(write)` feeds it text."""
    return run_copy(session, statement, lambda copy: produce(copy.write))


def copy_out_csv(
    session: Any, query: str, params: dict[str, Any], out: BinaryIO, *, header: list[str] | None,
    key_fields: int = 0, on_written: Callable[[bytes, int], Any] | None = None,
) -> int:
    """Stream `query` as RFC 4180 CSV (UTF-8, CRLF, header first unless None) into `out`; returns
    the row count.

    PostgreSQL writes each row as one chunk ending in LF; the LF becomes CRLF here. A name's own
    newlines are inside quotes and stay as they are.

    With `key_fields`, the query's first that many columns are a row's key (never quoted: hex,
    digits) and are not written; `on_written(key, count)` follows each write into `out`, with the
    key of the last row written and how many were: where to go on from should the COPY fail.
    """
    import psycopg
    from psycopg import sql

    selected = sql.SQL(query).format(**{key: sql.Literal(value) for key, value in params.items()})
    # Take the query's table locks with an ordinary statement first: a lock wait inside the COPY's
    # start would happen while run_copy holds Ctrl-C back, leaving linea deaf to it meanwhile.
    connection = driver_connection(session)
    take_locks = sql.SQL("SELECT 1 FROM ({}) AS take_locks LIMIT 0").format(selected)
    try:
        connection.execute(take_locks)
    except psycopg.Error as exc:
        raise as_statement_error(exc, take_locks, connection) from exc
    buffer = bytearray(",".join(header).encode() + b"\r\n" if header is not None else b"")
    write = out.write
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, ENCODING 'UTF8')").format(selected)
    last_key = b""

    def written(count: int) -> None:
        write(buffer)
        buffer.clear()
        if on_written is not None:
            on_written(last_key, count)

    def stream(copy: Any) -> int:
        nonlocal last_key
        count = 0
        for chunk in copy:
            if key_fields:
                line = bytes(chunk)  # a memoryview: bytes can be searched
                cut = -1
                for _ in range(key_fields):
                    cut = line.index(b",", cut + 1)
                last_key = line[:cut]
                buffer.extend(line[cut + 1:-1])
            else:
                buffer.extend(chunk[:-1])
            buffer.extend(b"\r\n")
            count += 1
            if len(buffer) >= 1 << 18:
                written(count)
        return count

    count = run_copy(session, statement, stream)
    written(count)
    return count
