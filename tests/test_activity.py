"""`db activity`, `db cancel`, `db terminate`: live sessions, who blocks whom, ending what is stuck."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.harness import (
    ROOT,
    CliRun,
    Database,
    admin_execute,
    libpq_conninfo,
    plain_url,
    run_linea_in_terminal,
    wait_for_lock_waiters,
    wait_until,
)
from tests.platform import ADAM, VERA


@dataclass
class Waiter:
    """A session whose query waits for a lock in a thread; `error` is how its query ended."""

    connection: psycopg.Connection
    pid: int
    thread: threading.Thread | None = None
    error: list[BaseException] = field(default_factory=list)


@pytest.fixture
def lock_and_waiter(platform_url: URL, platform_db: Database) -> Iterator[tuple[psycopg.Connection, Waiter]]:
    """A session holding an ACCESS EXCLUSIVE lock on events (idle in its transaction), and a
    second one whose `SELECT count(*) FROM events` waits for it. Both directly on the server."""
    holder = psycopg.connect(libpq_conninfo(platform_url), application_name="test-holder")
    holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    connection = psycopg.connect(libpq_conninfo(platform_url), application_name="test-waiter", autocommit=True)
    waiter = Waiter(connection, connection.info.backend_pid)

    def wait_for_the_lock() -> None:
        try:
            connection.execute("SELECT count(*) FROM events")
        except psycopg.Error as error:
            waiter.error.append(error)

    waiter.thread = threading.Thread(target=wait_for_the_lock)
    waiter.thread.start()
    wait_for_lock_waiters(platform_db, "test-waiter", [], count=1)
    try:
        yield holder, waiter
    finally:
        holder.close()
        waiter.thread.join()
        connection.close()


def test_a_waiting_session_is_shown_with_its_wait_and_its_blocker(
    adopted: CliRun, lock_and_waiter: tuple[psycopg.Connection, Waiter]
) -> None:
    holder, waiter = lock_and_waiter
    holder_pid = holder.info.backend_pid
    sessions = adopted("db", "activity", "--json").json
    by_pid = {row["pid"]: row for row in sessions}
    waiting, holding = by_pid[waiter.pid], by_pid[holder_pid]
    assert (waiting["application"], waiting["state"], waiting["wait_event_type"], waiting["wait_event"]) == (
        "test-waiter", "active", "Lock", "relation"
    )
    assert waiting["blocked_by"] == [holder_pid] and waiting["depth"] == 1
    assert waiting["query"] == "SELECT count(*) FROM events" and waiting["query_seconds"] >= 0
    assert (holding["state"], holding["idle_in_transaction"], holding["blocking"], holding["depth"]) == (
        "idle in transaction", True, [waiter.pid], 0
    )
    assert holding["query"] == "LOCK TABLE events IN ACCESS EXCLUSIVE MODE" and holding["blocked_by"] == []
    # The blocker comes first, what it blocks right under it.
    pids = [row["pid"] for row in sessions]
    assert pids.index(waiter.pid) == pids.index(holder_pid) + 1
    # linea's own session is not listed.
    assert not [row for row in sessions if row["application"].startswith("linea/") and row["state"] == "active"]

    # At a terminal, a tree: the waiter indented under its blocker, within 80 columns.
    code, screen, _ = run_linea_in_terminal(["db", "activity"], env=adopted.env, columns=80)
    assert code == 0
    lines = screen.splitlines()
    [holder_line] = [line for line in lines if line.startswith(f"{holder_pid} ")]
    [waiter_line] = [line for line in lines if line.startswith(f"└ {waiter.pid} ")]
    assert lines.index(waiter_line) == lines.index(holder_line) + 1
    assert "idle in tx" in holder_line and "Lock:relation" in waiter_line and "test-waiter" in waiter_line
    assert max(len(line) for line in lines) <= 80


def test_db_cancel_ends_the_waiting_query_and_is_audited(
    adopted: CliRun, platform_db: Database, lock_and_waiter: tuple[psycopg.Connection, Waiter]
) -> None:
    holder, waiter = lock_and_waiter
    # Not an ADMIN: refused, nothing sent.
    result = adopted("--as", VERA["email"], "db", "cancel", str(waiter.pid), "--yes", exit_code=6)
    assert "ADMIN only" in result.stderr
    # No terminal to ask on and no --yes: stopped with a hint.
    result = adopted("--as", ADAM["email"], "db", "cancel", str(waiter.pid), exit_code=1)
    assert "needs confirmation: pass --yes" in result.stderr
    assert platform_db.count("audit_logs", "resource = 'Backend'") == 0
    assert waiter.thread is not None and waiter.thread.is_alive()

    done = adopted("--as", ADAM["email"], "db", "cancel", str(waiter.pid), "--yes", "--json")
    assert done.json["pid"] == waiter.pid and done.json["action"] == "cancel"
    assert done.json["application"] == "test-waiter" and done.json["state"] == "active"
    assert f"cancelled the query of pid {waiter.pid}" in done.stderr
    wait_until(lambda: not waiter.thread.is_alive(), what="the cancelled query to end")
    [error] = waiter.error
    assert isinstance(error, psycopg.errors.QueryCanceled)
    row = platform_db.one("SELECT action, resource_id, user_id, metadata FROM audit_logs WHERE resource = 'Backend'")
    assert (row.action, row.resource_id, row.user_id) == ("CANCEL", str(waiter.pid), ADAM["id"])
    assert (row.metadata["application"], row.metadata["state"]) == ("test-waiter", "active")
    # The holder still holds its lock: a cancel ends a query, never a session.
    assert holder.execute("SELECT 1").fetchone() == (1,)


def test_cancel_and_terminate_refuse_what_they_cannot_end(
    adopted: CliRun, platform_db: Database, lock_and_waiter: tuple[psycopg.Connection, Waiter]
) -> None:
    holder, waiter = lock_and_waiter
    holder_pid = holder.info.backend_pid
    # Not a session of this database (the server's own processes are not either): exit 3.
    result = adopted("db", "cancel", "2147483647", "--yes", exit_code=3)
    assert result.stderr.startswith("error: no session with pid 2147483647 in this database\n")
    checkpointer = platform_db.scalar("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
    adopted("db", "terminate", str(checkpointer), "--yes", exit_code=3)
    # Idle in its transaction: no query to cancel (exit 4), which db terminate ends.
    result = adopted("db", "cancel", str(holder_pid), "--yes", exit_code=4)
    assert "runs no query (idle in transaction)" in result.stderr and f"linea db terminate {holder_pid}" in result.stderr
    assert platform_db.count("audit_logs", "resource = 'Backend'") == 0

    adopted("db", "terminate", str(holder_pid), "--yes")
    with pytest.raises(psycopg.OperationalError):
        holder.execute("SELECT 1")
    assert waiter.thread is not None
    wait_until(lambda: not waiter.thread.is_alive(), what="the waiting query to run")  # the lock went with the session
    assert waiter.error == []
    row = platform_db.one("SELECT action, resource_id, user_id, metadata FROM audit_logs WHERE resource = 'Backend'")
    assert (row.action, row.resource_id, row.user_id) == ("TERMINATE", str(holder_pid), None)
    assert row.metadata["actor"] == "system" and row.metadata["application"] == "test-holder"


def test_linea_never_signals_its_own_session(database_url: URL) -> None:
    import linea_cli
    from linea_cli.errors import InvalidInput
    from linea_cli.services.activity import Signal, find_backend

    with linea_cli.open_database(database_url, name="tests") as database, database.unit_of_work() as session:
        own = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with pytest.raises(InvalidInput, match=f"pid {own} is linea's own connection; refusing to terminate it"):
            find_backend(session, pid=own, how=Signal.terminate, actor=None)


def test_watch_needs_a_terminal_and_a_table(linea: CliRun) -> None:
    result = linea("db", "activity", "--watch", exit_code=1)
    assert result.stderr == (
        "error: --watch redraws a terminal, and stdout is not one\nhint: without --watch, db activity prints once\n"
    )
    result = linea("db", "activity", "--watch", "--json", exit_code=1)
    assert result.stderr.startswith("error: --watch redraws a table: it takes no --format/--json\n")


@pytest.mark.parametrize(
    ("interval", "reason"),
    [("nan", "not a finite number"), ("inf", "not a finite number"), ("-inf", "not a finite number"),
     ("soon", "not a number"), ("0.1", "must be at least 0.5"), ("3601", "must be at most 3600")],
)
def test_an_interval_that_is_no_number_of_seconds_in_range_is_exit_2_saying_why(
    linea: CliRun, interval: str, reason: str
) -> None:
    result = linea("db", "activity", "--watch", "--interval", interval, exit_code=2)
    assert result.stderr.splitlines()[0] == f"error: invalid value for --interval: {reason}"


@pytest.mark.parametrize("quit_with", ["q", "Ctrl-C"])
def test_watch_redraws_at_a_terminal_until_q_or_ctrl_c(linea: CliRun, direct_database_url: URL, quit_with: str) -> None:
    """`db activity --watch` with its terminal as stdin, stdout and stderr, as a person runs it;
    Ctrl-C is the SIGINT the terminal sends its foreground process."""
    import pty

    idle = psycopg.connect(libpq_conninfo(direct_database_url), application_name="test-idle")
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "linea_cli", "db", "activity", "--watch", "--interval", "0.5"], cwd=ROOT,
        env={**os.environ, **linea.env, "LINEA_PAGER": ""}, stdin=secondary, stdout=secondary, stderr=secondary,
    )
    os.close(secondary)
    shown = bytearray()

    def read() -> bool:
        import select

        while select.select([primary], [], [], 0.01)[0]:
            try:
                data = os.read(primary, 65536)
            except OSError:
                return True
            if not data:
                return True
            shown.extend(data)
        return False

    # Two redraws, then q (or Ctrl-C).
    wait_until(lambda: read() or shown.count(b"q quits") >= 2, what="two redraws", processes=[process])
    if quit_with == "q":
        os.write(primary, b"q")
    else:
        process.send_signal(signal.SIGINT)
    wait_until(lambda: read() or process.poll() is not None, what=f"db activity --watch to quit on {quit_with}")
    assert process.wait() == 0
    read()
    os.close(primary)
    idle.close()
    assert b"database sessions of" in shown and b"test-idle" in shown and b"pid" in shown
    assert b"\x1b[?1049h" in shown and b"\x1b[?1049l" in shown  # the alternate screen, left again


def test_a_role_that_may_not_read_others_sessions_is_told_so(
    linea: CliRun, direct_server_url: URL, direct_database_url: URL
) -> None:
    role = f"test_nobody_{uuid.uuid4().hex[:8]}"
    admin_execute(direct_server_url, f"CREATE ROLE {role} LOGIN PASSWORD 'not-a-secret'")
    other = psycopg.connect(libpq_conninfo(direct_database_url), application_name="test-other-role")
    try:
        as_nobody = {"LINEA_DATABASE_URL": plain_url(direct_database_url.set(username=role, password="not-a-secret"))}
        result = linea("db", "activity", "--json", env=as_nobody)
        [hidden] = [row for row in result.json if row["pid"] == other.info.backend_pid]
        assert (hidden["query"], hidden["state"], hidden["application"]) == ("<insufficient privilege>", None, "test-other-role")
        assert re.search(
            rf"^warning: \d+ session\(s\) of other roles show no query, state or wait: role {role} may not read them "
            rf"\(GRANT pg_read_all_stats TO {role}\)$",
            result.stderr, re.MULTILINE,
        )
        sees_all = "SELECT rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') FROM pg_roles WHERE rolname = current_user"
        with psycopg.connect(libpq_conninfo(direct_database_url)) as suite:
            if suite.execute(sees_all).fetchone() == (True,):
                assert "pg_read_all_stats" not in linea("db", "activity", "--json").stderr
    finally:
        other.close()
        admin_execute(direct_server_url, f"DROP ROLE {role}")


def test_a_signal_the_server_refuses_is_exit_6_and_leaves_no_audit_row(
    adopted: CliRun, platform_url: URL, platform_db: Database, direct_server_url: URL,
    lock_and_waiter: tuple[psycopg.Connection, Waiter],
) -> None:
    _, waiter = lock_and_waiter
    role = f"test_signaller_{uuid.uuid4().hex[:8]}"
    admin_execute(direct_server_url, f"CREATE ROLE {role} LOGIN PASSWORD 'not-a-secret'")
    try:
        # It may read and write linea's tables (the audit log too), but not signal others' sessions.
        platform_db.execute(
            f"GRANT USAGE ON SCHEMA public, linea TO {role}; GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role}; "
            f"GRANT SELECT ON ALL TABLES IN SCHEMA linea TO {role}"
        )
        as_role = {"LINEA_DATABASE_URL": plain_url(platform_url.set(username=role, password="not-a-secret"))}
        result = adopted("db", "cancel", str(waiter.pid), "--yes", env=as_role, exit_code=6)
        assert result.stderr.startswith(f"error: the database refused to cancel pid {waiter.pid}: ")
        assert "hint: the role needs to be the session's own role, a member of pg_signal_backend" in result.stderr
        assert platform_db.count("audit_logs", "resource = 'Backend'") == 0
        assert waiter.thread is not None and waiter.thread.is_alive() and waiter.error == []
    finally:
        platform_db.execute(f"DROP OWNED BY {role}")
        admin_execute(direct_server_url, f"DROP ROLE {role}")


def _queued(url: URL, statement: str, name: str, platform_db: Database) -> Waiter:
    """A session in a transaction whose `statement` waits for a lock (in a thread)."""
    connection = psycopg.connect(libpq_conninfo(url), application_name=name)
    waiter = Waiter(connection, connection.info.backend_pid)

    def wait_for_the_lock() -> None:
        try:
            connection.execute(statement)
        except psycopg.Error as error:
            waiter.error.append(error)

    waiter.thread = threading.Thread(target=wait_for_the_lock)
    waiter.thread.start()
    wait_for_lock_waiters(platform_db, name, [], count=1)
    return waiter


# A lock wait of half a second: the tests wait for linea to give up.
SHORT_WAIT = {"LINEA_LOCK_TIMEOUT": "500ms"}


def test_a_session_locking_users_is_ended_by_the_system_and_audited(
    adopted: CliRun, platform_url: URL, platform_db: Database
) -> None:
    """A session holding ACCESS EXCLUSIVE on users (a LOCK TABLE, a deploy's ALTER TABLE): the
    audit row's INSERT needs users too (its foreign key), so it is written once the session is gone."""
    holder = psycopg.connect(libpq_conninfo(platform_url), application_name="test-users-holder")
    try:
        holder.execute("LOCK TABLE events, users IN ACCESS EXCLUSIVE MODE")
        pid = holder.info.backend_pid
        # Acting as a user needs reading users: one line saying so, and that the system can end it.
        result = adopted("--as", ADAM["email"], "db", "terminate", str(pid), "--yes", env=SHORT_WAIT, exit_code=5)
        assert result.stderr == (
            f"error: cannot check the acting user {ADAM['email']!r} (--as / LINEA_ACTOR): another session holds "
            "or waits for a lock on the users table (gave up waiting for it)\n"
            "hint: `linea db activity` shows that session; without --as / LINEA_ACTOR (as the system), "
            "`linea db terminate PID` can end it\n"
        )
        assert holder.execute("SELECT 1").fetchone() == (1,)

        done = adopted("db", "terminate", str(pid), "--yes", "--json", env=SHORT_WAIT)
        assert (done.json["pid"], done.json["action"], done.json["ended"]) == (pid, "terminate", True)
        assert f"terminated pid {pid}" in done.stderr
        with pytest.raises(psycopg.OperationalError):
            holder.execute("SELECT 1")
    finally:
        holder.close()
    row = platform_db.one("SELECT action, resource_id, user_id, metadata FROM audit_logs WHERE resource = 'Backend'")
    assert (row.action, row.resource_id, row.user_id) == ("TERMINATE", str(pid), None)
    assert row.metadata["application"] == "test-users-holder"


def test_a_lock_queued_on_users_behind_a_reader(adopted: CliRun, platform_url: URL, platform_db: Database) -> None:
    """A reads users in a transaction left open; B queues for ACCESS EXCLUSIVE on users behind it
    (every later reader of users queues behind B). Cancelling B's LOCK frees users: audited.
    Terminating A lets B take its lock: A is ended, and the audit row that cannot be written says so."""
    reader = psycopg.connect(libpq_conninfo(platform_url), application_name="test-users-reader")
    reader.execute("SELECT count(*) FROM users")
    queued = _queued(platform_url, "LOCK TABLE users, events IN ACCESS EXCLUSIVE MODE", "test-users-locker", platform_db)
    try:
        # Acting as a user reads users, which queues behind B too: exit 5, the system can.
        result = adopted("--as", ADAM["email"], "db", "cancel", str(queued.pid), "--yes", env=SHORT_WAIT, exit_code=5)
        assert result.stderr.startswith(f"error: cannot check the acting user {ADAM['email']!r} (--as / LINEA_ACTOR): ")
        done = adopted("db", "cancel", str(queued.pid), "--yes", env=SHORT_WAIT)
        assert f"cancelled the query of pid {queued.pid}" in done.stderr
        assert queued.thread is not None
        wait_until(lambda: not queued.thread.is_alive(), what="the cancelled LOCK to end")
        assert isinstance(queued.error[0], psycopg.errors.QueryCanceled)
        row = platform_db.one("SELECT action, resource_id, user_id FROM audit_logs WHERE resource = 'Backend'")
        assert (row.action, row.resource_id, row.user_id) == ("CANCEL", str(queued.pid), None)

        # Queued again; now A is terminated and B gets the lock the audit row needs.
        queued.connection.rollback()
        queued.error.clear()
        queued.thread = threading.Thread(target=lambda: queued.connection.execute("LOCK TABLE users, events IN ACCESS EXCLUSIVE MODE"))
        queued.thread.start()
        wait_for_lock_waiters(platform_db, "test-users-locker", [], count=1)
        reader_pid = reader.info.backend_pid
        result = adopted("db", "terminate", str(reader_pid), "--yes", env=SHORT_WAIT, exit_code=5)
        assert result.stderr == (
            f"error: terminated pid {reader_pid}, but its audit row (TERMINATE, resource Backend) could not be written: "
            f"gave up waiting for a lock: pid {queued.pid} holds ACCESS EXCLUSIVE on events, users\n"
            "hint: `linea db activity` shows the session holding it\n"
        )
        with pytest.raises(psycopg.OperationalError):
            reader.execute("SELECT 1")
        queued.thread.join()
        queued.connection.rollback()
        assert platform_db.count("audit_logs", "resource = 'Backend'") == 1
    finally:
        reader.close()
        if queued.thread is not None:
            queued.thread.join()
        queued.connection.close()


def test_a_cancelled_query_whose_transaction_still_locks_users_leaves_the_audit_row_unwritten_saying_so(
    adopted: CliRun, platform_url: URL, platform_db: Database
) -> None:
    """A query cancelled inside a savepoint aborts the savepoint only: the transaction's lock on
    users stays until the client rolls back, and keeps the audit row out. Exit 5, saying the
    query was cancelled. (A cancelled transaction releases its locks at once.)"""
    connection = psycopg.connect(libpq_conninfo(platform_url), application_name="test-users-sleeper")
    connection.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    connection.execute("SAVEPOINT inside")
    sleeper = Waiter(connection, connection.info.backend_pid)

    def sleep() -> None:
        try:
            connection.execute("SELECT pg_sleep(60)")
        except psycopg.Error as error:
            sleeper.error.append(error)

    sleeper.thread = threading.Thread(target=sleep)
    sleeper.thread.start()
    try:
        wait_until(
            lambda: platform_db.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND state = 'active'", pid=sleeper.pid
            ) == 1,
            what="the sleeper's query to run",
        )
        result = adopted("db", "cancel", str(sleeper.pid), "--yes", env=SHORT_WAIT, exit_code=5)
        assert result.stderr == (
            f"error: cancelled the query of pid {sleeper.pid}, but its audit row (CANCEL, resource Backend) could not be "
            f"written: gave up waiting for a lock: pid {sleeper.pid} holds ACCESS EXCLUSIVE on users\n"
            "hint: `linea db activity` shows the session holding it\n"
        )
        sleeper.thread.join()
        assert isinstance(sleeper.error[0], psycopg.errors.QueryCanceled)
    finally:
        if sleeper.thread.is_alive():  # the test failed before the cancel
            connection.cancel_safe()
        sleeper.thread.join()
        connection.rollback()
        connection.close()
    assert platform_db.count("audit_logs", "resource = 'Backend'") == 0


def test_a_role_that_may_signal_but_not_audit_is_refused_before_the_signal(
    adopted: CliRun, platform_url: URL, platform_db: Database, direct_server_url: URL
) -> None:
    """The audit row follows the signal: a role that could not write it (no INSERT on audit_logs)
    may still signal its own sessions, and is refused first (exit 6), the session untouched."""
    role = f"test_unaudited_{uuid.uuid4().hex[:8]}"
    admin_execute(direct_server_url, f"CREATE ROLE {role} LOGIN PASSWORD 'not-a-secret'")
    try:
        platform_db.execute(
            f"GRANT USAGE ON SCHEMA public, linea TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA public, linea TO {role}"
        )
        as_role = platform_url.set(username=role, password="not-a-secret")
        with psycopg.connect(libpq_conninfo(as_role), application_name="test-own-session") as own:
            own.execute("SELECT 1")  # idle in its transaction
            result = adopted(
                "db", "terminate", str(own.info.backend_pid), "--yes", env={"LINEA_DATABASE_URL": plain_url(as_role)},
                exit_code=6,
            )
            assert result.stderr.startswith(
                f"error: role '{role}' lacks the INSERT privilege on table audit_logs: a terminate is audited; nothing was done\n"
            )
            assert own.execute("SELECT 1").fetchone() == (1,)
    finally:
        platform_db.execute(f"DROP OWNED BY {role}")
        admin_execute(direct_server_url, f"DROP ROLE {role}")


def test_a_password_a_session_sent_is_masked_in_db_activity_and_the_question_to_end_it(
    adopted: CliRun, platform_url: URL, direct_server_url: URL
) -> None:
    """Each session is left idle in the transaction of an ALTER ROLE ... PASSWORD: pg_stat_activity
    keeps its text as run, whatever the literal's form."""
    tag = uuid.uuid4().hex[:6]
    forms = {  # role: (what it ran after ALTER ROLE role, what linea shows)
        f"r{tag}a": ("PASSWORD 'activitySecret9'", "PASSWORD '***'"),
        f"r{tag}b": ("PASSWORD $$dollarSecret2$$", "PASSWORD '***'"),
        f"r{tag}c": ("PASSWORD $q$tagSecret5$q$", "PASSWORD '***'"),
        f"r{tag}d": ("PASSWORD'nospaceSecret3'", "PASSWORD'***'"),
        f"r{tag}e": ("PASSWORD /*c*/ 'commentSecret6'", "PASSWORD /*c*/ '***'"),
        f"r{tag}f": ("PASSWORD U&'unicodeSecret7'", "PASSWORD '***'"),
        f"r{tag}g": ("PASSWORD E'escapeSecret4'", "PASSWORD '***'"),
    }
    for role in forms:
        admin_execute(direct_server_url, f"CREATE ROLE {role}")
    sessions: dict[int, str] = {}
    connections: list[psycopg.Connection] = []
    try:
        for role, (password, _) in forms.items():
            connections.append(psycopg.connect(libpq_conninfo(platform_url), application_name="test-password"))
            connections[-1].execute(f"ALTER ROLE {role} {password}")  # and idle in its transaction
            sessions[connections[-1].info.backend_pid] = role
        result = adopted("db", "activity", "--json")
        shown = {sessions[row["pid"]]: row["query"] for row in result.json if row["pid"] in sessions}
        assert shown == {role: f"ALTER ROLE {role} {masked}" for role, (_, masked) in forms.items()}
        assert "Secret" not in result.stdout
        code, screen, _ = run_linea_in_terminal(["db", "activity", "--fields", "pid,query"], env=adopted.env, columns=120)
        assert code == 0 and "Secret" not in screen and "'***'" in screen
        for pid, role in sessions.items():  # the question names the session and its query: masked
            asked = adopted("--as", ADAM["email"], "db", "terminate", str(pid), exit_code=1)
            assert f"ALTER ROLE {role} {forms[role][1]}" in asked.stderr and "Secret" not in asked.stderr
    finally:
        for connection in connections:
            connection.close()
        for role in forms:
            admin_execute(direct_server_url, f"DROP ROLE IF EXISTS {role}")
