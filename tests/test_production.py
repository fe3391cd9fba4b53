"""linea on a busy production database: locks, timeouts, lost connections, signals, TLS options."""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

import linea_cli
from tests.harness import CliRun, Database, libpq_conninfo, plain_url, wait_for_lock_waiters


def test_upgrade_fails_fast_when_live_traffic_holds_a_lock(
    linea: CliRun, db: Database, direct_database_url: URL
) -> None:
    # Someone reads users in an open transaction: dropping the table must wait for them.
    with psycopg.connect(libpq_conninfo(direct_database_url)) as reader:
        reader.execute("SELECT count(*) FROM users").fetchone()
        result = linea(
            "db", "downgrade", "base",
            env={"LINEA_MIGRATION_LOCK_TIMEOUT": "100ms", "LINEA_MIGRATION_ATTEMPTS": "2"},
            exit_code=5,
        )
        reader.rollback()
    assert "gave up after 2 attempts" in result.stderr
    assert "retrying with lock_timeout 200 ms" in result.stderr
    # Nothing the reader held was changed. Each revision is its own transaction: the newest one
    # (the import journal, linea's own table) went down before the one that needed `users` waited.
    assert db.count("pg_tables", "schemaname = 'public' AND tablename = 'users'") == 1
    assert linea("db", "status", "--json").json["current_revision"] == "5f3c8e1a7b20"
    linea("db", "upgrade")
    assert linea("db", "status", "--json").json["at_head"] is True


def test_statement_timeout_applies_to_every_transaction(linea: CliRun, db: Database) -> None:
    result = linea(
        "db", "seed", "--users", "20000", "--events", "10", "--waitlist", "0", "--sessions", "0",
        env={"LINEA_STATEMENT_TIMEOUT": "1ms"},
        exit_code=5,
    )
    assert "timed out" in result.stderr or "canceling statement" in result.stderr
    assert db.count("users") == 0


def test_an_unknown_host_names_host_and_database(linea: CliRun) -> None:
    result = linea("--database-url", "postgresql://u:pw@nohost.invalid:5432/platform", "events", "list", exit_code=5)
    assert 'database "platform" on nohost.invalid:5432' in result.stderr
    assert "pw@" not in result.stderr


def test_a_missing_database_is_unavailable(linea: CliRun, database_url: URL) -> None:
    missing = plain_url(database_url.set(database="no_such_database_here"))
    result = linea("--database-url", missing, "events", "list", exit_code=5)
    assert "no_such_database_here" in result.stderr


def test_a_server_older_than_15_is_refused(linea: CliRun, monkeypatch: pytest.MonkeyPatch) -> None:
    from linea_cli.db import connected, engine

    monkeypatch.setattr(engine, "server_version_num", lambda connection: 140011)
    # ... and as a read command's own connection reads it (linea_cli.db.direct).
    monkeypatch.setattr(connected, "server_version_num", lambda connection: 140011)
    result = linea("events", "list", exit_code=5)
    assert "PostgreSQL 14" in result.stderr and "15 or newer" in result.stderr


def test_tls_options_pass_through_to_libpq(linea: CliRun, database_url: URL) -> None:
    # sslmode=require against a server without TLS must fail, which proves the option reached libpq.
    secured = database_url.update_query_dict({"sslmode": "require"})
    if database_url.query.get("host", "").startswith("/"):
        pytest.skip("a Unix socket never uses TLS; libpq ignores sslmode there")
    result = linea("--database-url", plain_url(secured), "events", "list", exit_code=5)
    assert "SSL" in result.stderr or "ssl" in result.stderr


def _start(args: list[str], url: URL, tmp_path, **env: str) -> subprocess.Popen[str]:  # noqa: ANN001
    import os

    return subprocess.Popen(
        [sys.executable, "-m", "linea_cli", *args],
        env={**os.environ, "LINEA_DATABASE_URL": plain_url(url), "LINEA_DATA_DIR": str(tmp_path), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


SEED = ["db", "seed", "--users", "200", "--events", "20", "--waitlist", "2000", "--sessions", "100"]


@contextlib.contextmanager
def _seed_held_at_its_last_statement(
    db: Database, database_url: URL, direct_database_url: URL, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """(process, backend pid) of a `linea db seed` that has written every row and now waits, uncommitted,
    to write its audit row: the test holds the audit log in SHARE mode (reads pass, inserts wait). No
    lock_timeout, so the seed waits for as long as the test needs, however busy the machine is."""
    holder = psycopg.connect(libpq_conninfo(direct_database_url))
    try:
        holder.execute("LOCK TABLE audit_logs IN SHARE MODE")
        process = _start(SEED, database_url, tmp_path, LINEA_LOCK_TIMEOUT="0")
        try:
            # application_name tells an operator which linea command a backend belongs to.
            [pid] = wait_for_lock_waiters(db, "linea/db seed", [process])
            assert db.scalar("SELECT query FROM pg_stat_activity WHERE pid = :pid", pid=pid).lstrip().startswith("INSERT")
            yield process, pid
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    finally:
        with contextlib.suppress(psycopg.Error):
            holder.close()


def test_a_lost_connection_mid_command_is_exit_5_and_writes_nothing(
    db: Database, database_url: URL, direct_database_url: URL, tmp_path: Path
) -> None:
    with _seed_held_at_its_last_statement(db, database_url, direct_database_url, tmp_path) as (process, pid):
        db.scalar("SELECT pg_terminate_backend(:pid)", pid=pid)
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 5, stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert "terminat" in stderr  # the connection was lost, not a lock given up on
    assert db.count("users") == 0 and db.count("waitlist_entries") == 0 and db.count("audit_logs") == 0


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_roll_back_and_exit_with_the_shell_codes(
    sig: signal.Signals, code: int, db: Database, database_url: URL, direct_database_url: URL, tmp_path: Path
) -> None:
    with _seed_held_at_its_last_statement(db, database_url, direct_database_url, tmp_path) as (process, _):
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "rolled back" in stderr and "Traceback" not in stderr
    assert db.count("users") == 0 and db.count("waitlist_entries") == 0 and db.count("audit_logs") == 0


def test_a_server_restart_mid_command_is_exit_5_and_writes_nothing(
    owned_server: linea_cli.TemporaryServer, db: Database, database_url: URL, direct_database_url: URL, tmp_path: Path
) -> None:
    with _seed_held_at_its_last_statement(db, database_url, direct_database_url, tmp_path) as (process, _):
        db.close()
        owned_server.restart()
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 5, stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert db.count("users") == 0 and db.count("waitlist_entries") == 0 and db.count("audit_logs") == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_during_import_export_and_purge_leave_everything_as_before(
    sig: signal.Signals, db: Database, database_url: URL, direct_database_url: URL, tmp_path: Path
) -> None:
    """Each command is held on a lock, signalled, and must exit 143/130 having changed nothing."""
    from tests.factories import days_from_now, make_event, make_session, make_user, make_waitlist_entry

    code = 143 if sig is signal.SIGTERM else 130
    event = make_event(db, slug="held")
    make_waitlist_entry(db, event=event, email="before@example.com")
    user = make_user(db)
    expired = [make_session(db, user=user, expires_at=days_from_now(-1)) for _ in range(3)]
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("email\nnew1@example.com\nnew2@example.com\n")
    target = tmp_path / "out" / "list.csv"
    target.parent.mkdir()
    commands = {
        "waitlist import": (["waitlist", "import", "held", str(csv_in)], "waitlist_entries"),
        "waitlist export": (["waitlist", "export", "held", "-o", str(target)], "waitlist_entries"),
        "sessions purge": (["sessions", "purge"], "sessions"),
    }
    for name, (args, table) in commands.items():
        audit_rows = db.count("audit_logs")
        with psycopg.connect(libpq_conninfo(direct_database_url)) as holder:
            holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            process = subprocess.Popen(
                [sys.executable, "-m", "linea_cli", *args],
                env={**__import__("os").environ, "LINEA_DATABASE_URL": plain_url(database_url),
                     "LINEA_DATA_DIR": str(tmp_path), "LINEA_LOCK_TIMEOUT": "0"},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            wait_for_lock_waiters(db, f"linea/{name}", [process])
            process.send_signal(sig)
            stdout, stderr = process.communicate(timeout=60)
            holder.rollback()
        assert process.returncode == code, f"{name}: {stderr}"
        assert "rolled back" in stderr and "Traceback" not in stderr, name
        assert db.count("audit_logs") == audit_rows, name
    assert {r.email for r in db.all("SELECT email FROM waitlist_entries")} == {"before@example.com"}
    assert db.count("sessions") == len(expired)
    assert list(target.parent.iterdir()) == []  # no target, no temporary file beside it


# --- a signal at the worst moment, sent from inside the process at an exact point ------------------

def _fire_sigterm_on_call(nth: int) -> tuple[list[int], object]:
    """(calls so far, hook): the hook sends this process SIGTERM on its nth call."""
    import os

    calls: list[int] = []

    def hook(*_args: object) -> None:
        calls.append(1)
        if len(calls) == nth:
            os.kill(os.getpid(), signal.SIGTERM)

    return calls, hook


@pytest.fixture
def sigterm_handled_by_linea() -> object:
    """A SIGTERM that linea's own handler does not take fails the test: `linea` (main(), which the
    in-process runner goes through) installs that handler for the run; the test process has none."""

    def not_linea(signum: int, frame: object) -> None:
        pytest.fail("SIGTERM reached a handler other than linea's: the run did not go through main()")

    previous = signal.signal(signal.SIGTERM, not_linea)
    yield
    signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _sigterm_at(point: str, nth: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """SIGTERM on the nth time linea reaches `point`:

    - "commit": right after a COMMIT succeeded on the server (SQLAlchemy's after_commit);
    - "reset": while a connection is handed back to the pool (the pool's reset);
    - "close": while a connection is being closed (the dialect's close).
    """
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
    from sqlalchemy.orm import Session

    calls, hook = _fire_sigterm_on_call(nth)
    if point == "commit":
        sa.event.listen(Session, "after_commit", hook)
    elif point == "reset":
        sa.event.listen(sa.pool.Pool, "reset", hook)
    else:
        close = PGDialect_psycopg.do_close
        monkeypatch.setattr(PGDialect_psycopg, "do_close", lambda dialect, connection: (hook(), close(dialect, connection)))
    try:
        yield calls
    finally:
        if point == "commit":
            sa.event.remove(Session, "after_commit", hook)
        elif point == "reset":
            sa.event.remove(sa.pool.Pool, "reset", hook)


# Purge's batches share one connection: it is reset and closed after the schema check's, once.
SIGNAL_POINTS = [("commit", 1), ("commit", 2), ("commit", 3), ("reset", 1), ("reset", 2), ("close", 1), ("close", 2)]


@pytest.mark.parametrize(("point", "nth"), SIGNAL_POINTS)
def test_purge_stopped_at_any_commit_or_close_audits_exactly_what_it_deleted(
    point: str, nth: int, linea: CliRun, db: Database, sigterm_handled_by_linea: None,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """One session per batch; SIGTERM lands right after a batch's COMMIT, or while a connection closes."""
    from tests.factories import days_from_now, make_session, make_user

    user = make_user(db)
    for _ in range(5):
        make_session(db, user=user, expires_at=days_from_now(-1))
    with _sigterm_at(point, nth, monkeypatch) as calls:
        result = linea("sessions", "purge", "--batch-size", "1", exit_code=143)
    assert len(calls) >= nth, f"linea reached {point} only {len(calls)} times"
    deleted = 5 - db.count("sessions")
    audited = db.all("SELECT metadata FROM audit_logs WHERE action = 'PURGE'")
    assert sum(row.metadata["purged"] for row in audited) == deleted, (point, nth, deleted, audited)
    assert len(audited) == (1 if deleted else 0)
    # The database it purges is named first (not the embedded one, and nothing to filter).
    named, *rest = result.stderr.splitlines()
    assert named.startswith(f'purge every expired session in database "{db.url.database}" on ')
    assert rest == ["error: terminated; anything not yet committed was rolled back"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text  # no pool traceback


# One connection: the schema check runs in the command's own first transaction.
@pytest.mark.parametrize(("point", "nth"), [("commit", 1), ("reset", 1), ("close", 1)])
@pytest.mark.parametrize(
    "args",
    [
        ["users", "create", "new@example.com"],
        ["events", "complete-past"],
        ["db", "seed", "--users", "3", "--venues", "1", "--events", "2", "--waitlist", "2", "--sessions", "2", "--append"],
        ["waitlist", "import", "signalled", "signups.csv"],
    ],
    ids=["users create", "events complete-past", "db seed", "waitlist import"],
)
def test_a_signal_at_commit_or_close_keeps_the_change_and_its_audit_row_together(
    point: str, nth: int, args: list[str], linea: CliRun, db: Database, sigterm_handled_by_linea: None,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path,  # noqa: ANN001
) -> None:
    from tests.factories import days_from_now, make_event

    make_event(db, slug="signalled", status="PUBLISHED", start_date=days_from_now(-2))
    (tmp_path / "signups.csv").write_text("email\nann@example.com\nbob@example.com\n")  # linea runs in tmp_path
    tables = ("users", "events", "venues", "waitlist_entries", "sessions")
    before = {table: db.count(table) for table in tables}
    with _sigterm_at(point, nth, monkeypatch) as calls:
        result = linea(*args, exit_code=143)
    assert len(calls) >= nth, f"linea reached {point} only {len(calls)} times"
    changed = {table: db.count(table) for table in tables} != before or db.count(
        "events", "status = 'COMPLETED'"
    ) > 0
    audited = db.count("audit_logs")
    # All or nothing: the change and its audit row committed together, or neither did.
    assert changed == (audited > 0), (changed, audited)
    assert result.stderr.splitlines() == ["error: terminated; anything not yet committed was rolled back"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
