"""What tests use: run linea like a user would, and look at the database afterwards."""

from __future__ import annotations

import functools
import gc
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL
from typer.testing import CliRunner, Result

from linea_cli.db.libpq_environment import SERVER_CHOOSING_VARIABLES

ROOT = Path(__file__).resolve().parent.parent


def plain_url(url: URL) -> str:
    """The URL as a user writes it (postgresql://...), password included and percent-encoded.

    Built by hand: SQLAlchemy's renderer leaves a space in a password as is, which libpq rejects.
    """
    userinfo = quote(url.username or "", safe="")
    if url.password:
        userinfo += ":" + quote(str(url.password), safe="")
    host = url.host or ""
    if url.port:
        host += f":{url.port}"
    text = f"postgresql://{userinfo}{'@' if userinfo else ''}{host}/{url.database or ''}"
    if url.query:
        text += "?" + urlencode(sorted(url.query.items()), doseq=True)
    return text


def libpq_conninfo(url: URL) -> str:
    return plain_url(url)


def admin_execute(server_url: URL, statement: str) -> None:
    with psycopg.connect(libpq_conninfo(server_url), autocommit=True) as conn:
        conn.execute(statement)


class Database:
    """A plain SQLAlchemy connection to the test database, autocommitting, for tests only."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def all(self, query: str, **params: Any) -> list[sa.Row]:
        with self.engine.begin() as conn:
            return list(conn.execute(sa.text(query), params))

    def one(self, query: str, **params: Any) -> sa.Row:
        rows = self.all(query, **params)
        assert len(rows) == 1, f"expected one row, got {len(rows)}: {query}"
        return rows[0]

    def scalar(self, query: str, **params: Any) -> Any:
        with self.engine.begin() as conn:
            return conn.execute(sa.text(query), params).scalar()

    def execute(self, query: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(query), params)

    def count(self, table: str, where: str = "true", **params: Any) -> int:
        return int(self.scalar(f'SELECT count(*) FROM "{table}" WHERE {where}', **params))

    def close(self) -> None:
        self.engine.dispose()


class Run(Result):
    """What one `linea ...` printed and how it exited."""

    @property
    def json(self) -> Any:
        """stdout read as the JSON document a `--json` command prints."""
        return json.loads(self.stdout)


@dataclass
class CliRun:
    """Call with the words after `linea`; checks the exit code and shows the output on a mismatch."""

    env: dict[str, str]
    secrets: tuple[str, ...] = ()

    def __call__(self, *args: str, exit_code: int = 0, input: str | None = None, env: dict[str, str] | None = None) -> Run:
        result = invoke(args, env={**self.env, **(env or {})}, input=input)
        # Whatever the command, the database password never reaches the user's screen.
        for secret in self.secrets:
            assert secret not in result.stdout + result.stderr, f"`linea {' '.join(args)}` printed a password"
        if result.exit_code != exit_code:
            pytest.fail(
                f"`linea {' '.join(args)}` exited {result.exit_code}, expected {exit_code}\n"
                f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}",
                pytrace=False,
            )
        return result


@functools.cache
def linea_command() -> Any:
    """The Click command Typer builds from linea's whole app, for walking the command tree (built
    once: building it costs more than most commands take to run)."""
    import typer.main

    from linea_cli.cli import app

    return typer.main.get_command(app)


def leaf_commands(group: Any = None, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, command) in linea's command tree (or under `group`), groups walked down to commands."""
    for name, command in getattr(group or linea_command(), "commands", {}).items():
        path = (*prefix, name)
        if getattr(command, "commands", None):
            yield from leaf_commands(command, path)
        else:
            yield path, command


def invoke(args: Sequence[str], *, env: dict[str, str], input: str | None = None, catch_exceptions: bool = False) -> Run:
    """`linea ARGS` in-process through `main()`, the function the `linea` script runs: the same
    root (one group's, or every group's), error boundary, signal handler and final flush.

    What `main()` changes for a whole process (sys.argv, the SIGTERM handler, the garbage
    collector held during start-up and frozen after it, Typer's excepthook) is put back afterwards.
    """
    from linea_cli.cli import main

    runner = CliRunner()
    exit_code, exception = 0, None
    saved_argv, saved_hook = sys.argv, sys.excepthook
    saved_handler, gc_was_enabled = signal.getsignal(signal.SIGTERM), gc.isenabled()
    with runner.isolation(input=input, env=env) as (stdout, stderr, output):
        sys.argv = ["linea", *args]
        try:
            main()
        except SystemExit as exc:
            code = 0 if exc.code is None else exc.code
            exit_code = code if isinstance(code, int) else 1
            exception = exc if exit_code else None
        except Exception as exc:
            if not catch_exceptions:
                raise
            exit_code, exception = 1, exc
        finally:
            sys.argv, sys.excepthook = saved_argv, saved_hook
            if saved_handler is not None:  # None: a handler not set from Python, left alone
                signal.signal(signal.SIGTERM, saved_handler)
            gc.unfreeze()
            if gc_was_enabled:
                gc.enable()
            sys.stdout.flush()
            sys.stderr.flush()
            streams = stdout.getvalue(), stderr.getvalue(), output.getvalue()
    return Run(runner, *streams, return_value=None, exit_code=exit_code, exception=exception)


def make_cli_run(
    url: URL, data_dir: Path, monkeypatch: pytest.MonkeyPatch, *, migration_url: URL | None = None
) -> CliRun:
    env = {"LINEA_DATABASE_URL": plain_url(url), "LINEA_DATA_DIR": str(data_dir / "data"), "NO_COLOR": "1"}
    # The developer's own profiles (~/.config/linea) must not leak into tests either.
    env["XDG_CONFIG_HOME"] = str(data_dir / "config")
    # Nor its fences (the WAL positions of its own writes, read before a read on a replica).
    env["XDG_STATE_HOME"] = str(data_dir / "state")
    if migration_url is not None and migration_url != url:
        env["LINEA_MIGRATION_DATABASE_URL"] = plain_url(migration_url)
    # The developer's PGHOST or PGSERVICE must not choose the server a test without a URL reaches.
    for key in (
        "LINEA_ACTOR", "LINEA_MIGRATION_DATABASE_URL", "LINEA_TIMEZONE", "LINEA_PROFILE", "LINEA_READ_DATABASE_URL",
        "LINEA_REPLICA_MAX_LAG", *SERVER_CHOOSING_VARIABLES,
    ):
        monkeypatch.delenv(key, raising=False)
    # A .env in the working directory must not leak into tests.
    monkeypatch.chdir(data_dir)
    passwords = {str(u.password) for u in (url, migration_url) if u is not None and u.password}
    return CliRun(env=env, secrets=tuple(passwords))


def run_linea_process(
    args: Sequence[str], *, env: dict[str, str], input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`linea ...` as a separate process (for concurrency, signals and real terminals)."""
    return subprocess.run(
        [sys.executable, "-m", "linea_cli", *args],
        env={**os.environ, **env},
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_linea_into_closed_pipe(args: Sequence[str], *, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`linea ...` writing its stdout into a pipe whose reader is already gone, as `| head -1`
    leaves it once head has its line (deterministic: the very first write fails)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "linea_cli", *args],
            env={**os.environ, **env},
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)


@dataclass
class TerminalRun:
    returncode: int
    terminal: bytes  # what the process wrote to the terminal
    other: bytes  # the other stream (stderr when stdout is the terminal, and the other way round)


def run_linea_on_terminal(
    args: Sequence[str],
    *,
    env: dict[str, str | None],
    terminal: str = "stdout",
    columns: int | None = None,
    typed: bytes = b"",
) -> TerminalRun:
    """`linea ...` as a separate process with stdout, stderr or stdin on a pseudo-terminal.

    `columns` sets the terminal's width; `typed` is typed ahead (the terminal keeps it until linea
    reads it; b"\\x04" on an empty line ends the input). With stdin on the terminal, `other` is
    stdout and stderr together. A variable set to None in `env` is unset. No pager runs unless
    `env` names one (LINEA_PAGER; None for PAGER or less): a terminal shows linea's own layout.
    """
    import fcntl
    import pty
    import struct
    import termios

    primary, secondary = pty.openpty()
    if columns is not None:
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environment = {**os.environ, "LINEA_PAGER": "", **env}
    if columns is not None:  # the terminal's own size, not one a variable claims
        environment.update(COLUMNS=None, LINES=None)
    streams = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, terminal: secondary}
    if terminal == "stdin":
        streams["stderr"] = subprocess.STDOUT
    process = subprocess.Popen(
        [sys.executable, "-m", "linea_cli", *args], cwd=ROOT,
        env={key: value for key, value in environment.items() if value is not None},
        **streams,  # type: ignore[arg-type]
    )
    os.close(secondary)
    if typed:
        os.write(primary, typed)
    written = b""
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        written += data
    stdout, stderr = process.communicate(timeout=120)
    os.close(primary)
    return TerminalRun(process.returncode, written, stderr if terminal == "stdout" else stdout)


def run_linea_in_terminal(args: Sequence[str], *, env: dict[str, str], columns: int) -> tuple[int, str, str]:
    """`linea ...` with stdout on a pseudo-terminal `columns` wide, as a person runs it: the exit
    code, what the terminal showed (less the bold and colour sequences Rich writes, and carriage
    returns; any other escape sequence is left for the test to find) and stderr."""
    run = run_linea_on_terminal(args, env=env, columns=columns)
    text = re.sub(r"\x1b\[[0-9;]*m", "", run.terminal.decode()).replace("\r\n", "\n")
    return run.returncode, text, run.other.decode()



# Not a timing expectation: waits below poll for a condition for as long as it takes, and this only
# turns a process hung for good into a failed test rather than a CI job that never ends.
HANG_GUARD_SECONDS = 900


def wait_until(condition: Callable[[], Any], *, what: str, processes: Sequence[subprocess.Popen] = ()) -> None:
    """Poll `condition` until it holds; fail at once if one of `processes` exits first (with its stderr)."""
    guard = time.monotonic() + HANG_GUARD_SECONDS
    while not condition():
        for process in processes:
            if process.poll() is not None:
                _, stderr = process.communicate()
                pytest.fail(f"a process exited ({process.returncode}) before {what}:\n{stderr}", pytrace=False)
        if time.monotonic() > guard:
            pytest.fail(f"still waiting after {HANG_GUARD_SECONDS} s for {what}", pytrace=False)
        time.sleep(0.02)


def replayed(replica: URL, lsn: str) -> bool:
    """Whether the replica has replayed the primary's WAL up to `lsn`."""
    with psycopg.connect(libpq_conninfo(replica), autocommit=True) as conn:
        row = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()
    return bool(row and row[0])


def pause_replay(replica: psycopg.Connection) -> None:
    """Pause the replica's replay and wait until the pause has taken effect."""
    replica.execute("SELECT pg_wal_replay_pause()")
    wait_until(
        lambda: replica.execute("SELECT pg_get_wal_replay_pause_state()").fetchone() == ("paused",),
        what="the replica's replay paused",
    )


def table_reads(connection: psycopg.Connection, table: str) -> int:
    """The reads of `table` this server counted (sequential and index scans, and the rows a
    sequential or TID range scan read): pg_stat_user_tables is each server's own."""
    connection.execute("SELECT pg_stat_clear_snapshot()")  # the counts as they are now
    row = connection.execute(
        "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) + coalesce(seq_tup_read, 0)"
        " FROM pg_stat_user_tables WHERE relname = %s",
        (table,),
    ).fetchone()
    assert row is not None, table
    return int(row[0])


def read_on_the_replica_only(
    primary: psycopg.Connection, replica: psycopg.Connection, table: str, run: Callable[[], Any]
) -> Any:
    """`run()`; wait until the replica counted a read of `table` (a backend reports its counts
    when idle, at most once a second: polled); the primary counted none."""
    on_primary, on_replica = table_reads(primary, table), table_reads(replica, table)
    result = run()
    wait_until(lambda: table_reads(replica, table) > on_replica, what=f"the replica counted reads of {table}")
    assert table_reads(primary, table) == on_primary, f"{table} was read on the primary too"
    return result


def wait_for_replay(replica: URL, *, primary: URL) -> str:
    """Wait until the replica has replayed everything the primary wrote so far; the primary's position."""
    with psycopg.connect(libpq_conninfo(primary), autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    lsn = str(row[0])
    wait_until(lambda: replayed(replica, lsn), what=f"the replica replayed the primary's WAL up to {lsn}")
    return lsn


def lock_waiters(db: Database, application_name: str) -> list[int]:
    """Backend pids of this database whose application_name is LIKE `application_name` and that wait on a lock."""
    return [
        row.pid
        for row in db.all(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE :name AND wait_event_type = 'Lock'",
            name=application_name,
        )
    ]


def wait_for_lock_waiters(
    db: Database, application_name: str, processes: Sequence[subprocess.Popen], count: int | None = None
) -> list[int]:
    """The pids of linea's backends once `count` of them (default: one per process) wait on a lock the test holds."""
    wanted = len(processes) if count is None else count
    found: list[int] = []

    def enough() -> bool:
        found[:] = lock_waiters(db, application_name)
        return len(found) >= wanted

    wait_until(enough, what=f"{wanted} {application_name!r} backend(s) waited on a lock", processes=processes)
    return found


Factory = Callable[..., dict[str, Any]]


def interrupted_at(linea_db: Any, call: int, *, actor: Callable[[Any], Any] = lambda session: None) -> Callable[[], Any]:
    """The unit of work a batched job takes (`unit_of_work()` yields a session and the actor),
    whose `call`-th unit is interrupted by Ctrl-C after its work, before its commit."""
    calls = 0

    @contextmanager
    def unit_of_work() -> Iterator[tuple[Any, Any]]:
        nonlocal calls
        calls += 1
        with linea_db.unit_of_work() as session:
            yield session, actor(session)
            if calls == call:
                raise KeyboardInterrupt

    return unit_of_work


# --- PgBouncer (transaction pooling) in front of a test server ---------------------------------

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def pgbouncer_installed() -> bool:
    return os.path.exists(PGBOUNCER)


@dataclass(frozen=True)
class Bouncer:
    port: int

    def url(self, database: str, user: str = "linea_pool") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    @property
    def admin_url(self) -> str:
        return self.url("pgbouncer", "linea_admin")

    def pools(self) -> list[dict]:
        with psycopg.connect(self.admin_url, autocommit=True) as console, psycopg.ClientCursor(console) as cursor:
            cursor.execute("SHOW POOLS")
            names = [column.name for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pgbouncer_quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextmanager
def running_pgbouncer(server: URL, *, pool_size: int = 1) -> Iterator[Bouncer]:
    """A PgBouncer in front of `server` (any of its databases), stopped on leaving: transaction
    pooling, `pool_size` server connections per pool, no reset query (as production runs it), any
    client user of its list let in without a password (linea_pool; linea_admin for its console):
    the server login is `server`'s own role. With a pool of one, every client shares one server
    connection, so what a client leaves on it (a prepared statement) meets the next client."""
    host = server.host or server.query.get("host") or "127.0.0.1"
    login = f"host={_pgbouncer_quoted(str(host))} port={server.port or 5432} user={_pgbouncer_quoted(server.username or '')}"
    if server.password:
        login += f" password={_pgbouncer_quoted(str(server.password))}"
    directory = Path(tempfile.mkdtemp(prefix="linea-pgbouncer-"))
    port = free_port()
    (directory / "userlist.txt").write_text('"linea_pool" ""\n"linea_admin" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"[databases]\n* = {login}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory}/userlist.txt\nadmin_users = linea_admin\npool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmax_client_conn = 20\nserver_reset_query =\nlogfile = {directory}/pgbouncer.log\n"
        f"pidfile = {directory}/pgbouncer.pid\n"
    )
    command = [PGBOUNCER, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: it runs as the user who may reach the server's socket.
        owner = pwd.getpwuid(os.stat(host).st_uid) if str(host).startswith("/") else pwd.getpwnam("postgres")
        for path in (directory, *directory.iterdir()):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        command[1:1] = ["-u", owner.pw_name]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    bouncer = Bouncer(port)

    def listening() -> bool:
        try:
            bouncer.pools()
        except psycopg.OperationalError:
            return False
        return True

    try:
        wait_until(listening, what="PgBouncer to listen", processes=[process])
        yield bouncer
    finally:
        process.terminate()
        process.communicate()
        shutil.rmtree(directory, ignore_errors=True)
