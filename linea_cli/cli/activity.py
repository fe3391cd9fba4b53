"""`linea db activity`, `db cancel PID`, `db terminate PID`: what runs now, and ending what is stuck.

Commands of the `db` group (registered on `linea_cli.cli.db.app`), kept apart from the group's
schema and backup commands: they read the server's live state through `services/monitoring.py`
and signal its backends through `services/activity.py`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from linea_cli.cli.confirm import confirm_or_stop
from linea_cli.cli.context import state, transaction
from linea_cli.cli.db import app, monitored
from linea_cli.cli.options import Output, ServerOption, YesOption, output_options
from linea_cli.output import TABLE_FORMATS, Column, Kind, say, warn

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from linea_cli.services.activity import Activity, Signal

ACTIVITY_COLUMNS = [
    Column("pid", kind=Kind.id),
    Column("application", priority=2),
    Column("user", priority=4),
    Column("state", priority=1),
    Column("transaction_seconds", header="in tx", justify="right", priority=1),
    Column("query_seconds", header="in query", justify="right", priority=2),
    Column("wait_event", header="wait", kind=Kind.id, priority=1),  # a name, short: never cut
    Column("blocked_by", header="blocked by", priority=2),
    Column("query"),
    Column("depth", wide=True),
    Column("blocking", wide=True),
    Column("wait_event_type", wide=True),
    Column("state_seconds", wide=True),
    Column("long_transaction", wide=True),
    Column("idle_in_transaction", wide=True),
    Column("backend_type", wide=True),
    Column("client_addr", wide=True),
    Column("xact_start", kind=Kind.timestamp, wide=True),
    Column("query_start", kind=Kind.timestamp, wide=True),
]
TITLE = "Database sessions"

WatchOption = Annotated[
    bool, typer.Option("--watch", "-w", help="Redraw every --interval seconds at a terminal, like top; q or Ctrl-C quits.")
]
INTERVAL_MIN, INTERVAL_MAX = 0.5, 3600


def _interval(value: Any) -> float:
    """--interval's seconds: a finite number in range (pydantic's bounds let nan through to a
    misleading "must be at most 3600", and inf to a wait that never ends)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError("not a number") from None
    if not math.isfinite(seconds):
        raise ValueError("not a finite number")
    if seconds < INTERVAL_MIN:
        raise ValueError(f"must be at least {INTERVAL_MIN}")
    if seconds > INTERVAL_MAX:
        raise ValueError(f"must be at most {INTERVAL_MAX}")
    return seconds


IntervalOption = Annotated[
    float,
    typer.Option(
        "--interval", min=INTERVAL_MIN, max=INTERVAL_MAX, parser=_interval, metavar="SECONDS",
        help="Seconds between redraws with --watch.",
    ),
]
# Signalling is the primary's only: accepted to say so in one line, not "no such option".
SignalServerOption = Annotated[
    str, typer.Option("--server", metavar="primary", help="Only primary (the default): a replica's sessions are not signalled."),
]
PidArgument = Annotated[
    int, typer.Argument(metavar="PID", help="The session's pid, as `linea db activity` shows it.")
]


@app.command()
@output_options(title=TITLE, columns=ACTIVITY_COLUMNS)
def activity(
    watch: WatchOption = False, interval: IntervalOption = 2.0, server: ServerOption = "primary", *, out: Output
) -> None:
    """Show the database's sessions now and who blocks whom.

    Each session's pid, application, role, state, time in its transaction and in its query, wait
    event and query. A session waiting for a lock is shown under the session holding it (pg_blocking_pids), and
    its pids are in `blocked_by` (`blocking` the other way) in JSON. `!` marks a transaction open
    a minute or longer; `idle in tx` a session idle inside its transaction. --watch redraws it at
    a terminal until q or Ctrl-C; it needs stdout on a terminal and a table (exit 1 otherwise).
    --server 1 shows the sessions of the first replica of LINEA_READ_DATABASE_URL.

    Example: linea db activity --watch
    """
    from linea_cli.errors import InvalidInput

    if watch and out.format not in TABLE_FORMATS:
        raise InvalidInput("--watch redraws a table: it takes no --format/--json", hint="without --watch, db activity prints once")
    if watch and not sys.stdout.isatty():
        raise InvalidInput("--watch redraws a terminal, and stdout is not one", hint="without --watch, db activity prints once")
    out.check()
    database = monitored(server, out)
    if watch:
        _watch(database, interval, out)
        return
    from linea_cli.services.monitoring import monitoring_connection

    with monitoring_connection(database) as connection:
        now = _read(connection)
    people = out.for_people and sys.stdout.isatty()
    out.rows([_for_people(row) for row in now.sessions] if people else now.sessions)
    _notes(now, people=people)


def _read(connection: Any) -> Activity:
    from linea_cli.errors import DatabaseUnavailable
    from linea_cli.services.activity import read_activity
    from linea_cli.services.monitoring import Blocked, probe

    answer = probe(connection, read_activity)
    if isinstance(answer, Blocked):
        raise DatabaseUnavailable(f"cannot read pg_stat_activity: {answer.reason}")
    return answer


def _notes(now: Activity, *, people: bool) -> None:
    """What a person must know to read the table right (stderr): hidden queries, the marks."""
    from linea_cli.services.activity import LONG_TRANSACTION_SECONDS

    if now.hidden:
        warn(
            f"{now.hidden} session(s) of other roles show no query, state or wait: role {now.role} may not read them "
            f"(GRANT pg_read_all_stats TO {now.role})"
        )
    if people and any(row["long_transaction"] for row in now.sessions):
        say(f"! marks a transaction open {LONG_TRANSACTION_SECONDS} s or longer")


def _duration(seconds: float | None) -> str:
    """12.3s, 4m05s, 2h03m, 3d04h: short enough for a column, exact enough to compare."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _for_people(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as a terminal shows it: the pid indented under its blocker, durations in words, the
    wait with its kind, `!` on a long transaction."""
    state = row["state"] or ""
    if state.startswith("idle in transaction"):
        state = "idle in tx" + state.removeprefix("idle in transaction")
    # An idle session waits for its client (Client:ClientRead): not worth a person's eye.
    waits = state == "active" or row["wait_event_type"] == "Lock"
    wait = ":".join(part for part in (row["wait_event_type"], row["wait_event"]) if part) if waits else ""
    depth = row["depth"]
    return {
        **row,
        "pid": ("  " * (depth - 1) + "└ " if depth else "") + str(row["pid"]),
        "state": state,
        "transaction_seconds": _duration(row["transaction_seconds"]) + ("!" if row["long_transaction"] else ""),
        "query_seconds": _duration(row["query_seconds"]),
        "state_seconds": _duration(row["state_seconds"]),
        "wait_event": wait,
        "blocked_by": ", ".join(str(pid) for pid in row["blocked_by"]),
        "blocking": ", ".join(str(pid) for pid in row["blocking"]),
    }


def _watch(database: Any, interval: float, out: Output) -> None:
    """Redraw the sessions every `interval` seconds on the terminal's alternate screen (as top
    does) until q is typed or Ctrl-C; each redraw reads in a transaction of its own (the server
    keeps one picture of pg_stat_activity per transaction)."""
    from rich.console import Group
    from rich.live import Live

    from linea_cli.output import console
    from linea_cli.services.monitoring import monitoring_connection

    screen = console()
    try:
        with _keys() as quit_within, monitoring_connection(database) as connection, Live(
            console=screen, screen=True, auto_refresh=False, redirect_stdout=False, redirect_stderr=False
        ) as live:
            while True:
                now = _read(connection)
                connection.commit()
                connection.begin()
                live.update(Group(*_screen(now, screen, database.target, interval, out=out)), refresh=True)
                if quit_within(interval):
                    return
    except KeyboardInterrupt as interrupt:
        if type(interrupt) is not KeyboardInterrupt:  # SIGTERM (cli.TerminatedBySignal) ends it as always
            raise


def _screen(now: Activity, screen: Console, target: str, interval: float, *, out: Output) -> list[Text]:
    """One screenful: a title line, then the table cut to the terminal's height."""
    from rich.text import Text

    from linea_cli.output import select_columns, table_lines, visible

    stamp = time.strftime("%H:%M:%S", time.gmtime())
    width, height = screen.size
    title = Text(visible(f"{stamp} UTC, every {interval:g} s, q quits: {TITLE.lower()} of {target}")[:width], style="bold")
    from linea_cli.output import OutputFormat

    columns = select_columns(ACTIVITY_COLUMNS, out.fields)
    every = out.format is OutputFormat.wide or out.fields is not None
    rows = [_for_people(row) for row in now.sessions]
    lines = table_lines(rows, columns, width=width, out=screen, every=every) if rows else []
    notes = []
    if now.hidden:
        notes.append(f"{now.hidden} session(s) of other roles hidden from {now.role}: GRANT pg_read_all_stats")
    if not now.sessions:
        notes.append("no other session")
    room = max(height - 1 - len(notes), 2)
    if len(lines) > room:
        lines = [*lines[: room - 1], Text(f"… {len(lines) - room + 1} more lines")]
    return [title, *lines, *(Text(visible(note)[:width]) for note in notes)]


@contextmanager
def _keys() -> Iterator[Any]:
    """`quit_within(seconds)`: waits that long for q on the terminal (read a key at a time,
    unechoed, for the block), True when typed. Without a terminal on stdin it only waits."""
    import select

    fd = sys.stdin.fileno() if sys.stdin.isatty() else None
    saved = None
    if fd is not None:
        import termios
        import tty

        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)

    def quit_within(seconds: float) -> bool:
        nonlocal fd
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if fd is None:
                time.sleep(left)
                return False
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                typed = os.read(fd, 64)
                if not typed:  # end of input: only the time is left to wait
                    fd = None
                elif b"q" in typed.lower():
                    return True
        return False

    try:
        yield quit_within
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)


@app.command()
@output_options(title="Cancelled")
def cancel(pid: PidArgument, yes: YesOption = False, server: SignalServerOption = "primary", *, out: Output) -> dict[str, Any]:
    """Cancel the query a database session runs (ADMIN only; asks first).

    PID is a session of this database (`linea db activity`), not linea's own; one running no
    query is refused (exit 4: `db terminate` ends it). --yes skips the question. Audited (CANCEL,
    resource Backend).

    Example: linea db cancel 12345 --yes
    """
    from linea_cli.services.activity import Signal

    return _signal(Signal.cancel, pid, yes=yes, server=server, out=out)


@app.command()
@output_options(title="Terminated")
def terminate(pid: PidArgument, yes: YesOption = False, server: SignalServerOption = "primary", *, out: Output) -> dict[str, Any]:
    """End a database session, rolling back its transaction (ADMIN only).

    PID is a session of this database (`linea db activity`), not linea's own. It asks first
    (--yes skips it). Audited (TERMINATE, resource Backend).

    Example: linea db terminate 12345 --yes
    """
    from linea_cli.services.activity import Signal

    return _signal(Signal.terminate, pid, yes=yes, server=server, out=out)


def _signal(how: Signal, pid: int, *, yes: bool, server: str, out: Output) -> dict[str, Any]:
    """Look the session up, ask (naming it), signal it, then audit that in a transaction of its
    own: the session may hold the very lock the audit row needs (services/activity.py)."""
    from linea_cli.errors import UsageProblem, cut
    from linea_cli.services.activity import Signal, audit_signal, did, find_backend, signal_backend

    if server.strip().lower() != "primary":
        # The lookup, the signal and its audit row are one story on one server: the audit log is
        # the primary's, and a replica's session is another server's pid. Not done halfway.
        raise UsageProblem(f"db {how.value} signals the primary's sessions only: it takes no --server {server}")

    with transaction() as (session, actor):
        backend = find_backend(session, pid=pid, how=how, actor=actor)
    verb = "Cancel the query of" if how is Signal.cancel else "Terminate"
    who = f"{backend['application'] or 'no application'}, role {backend['user']}, {backend['state'] or 'no state'}"
    query = f": {cut(' '.join((backend['query'] or '').split()), limit=60)}" if backend["query"] else ""
    database = state().database()
    confirm_or_stop(f"{verb} pid {pid} ({who}{query}) in {database.target}", yes=yes)
    with database.unit_of_work() as session:
        done = signal_backend(session, backend=backend, how=how, actor=actor)
        out.check(done)
    # The acting user as resolved above: reading users again could wait for the same lock.
    with database.unit_of_work() as session:
        audit_signal(session, backend=backend, done=done, actor=actor)
    say(did(done))
    return done
