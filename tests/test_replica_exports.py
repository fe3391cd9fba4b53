"""Exports, stats, the audit log and the proof of erasure read on a streaming replica (issue 22).

Where a read ran is told by the servers' own statistics (pg_stat_user_tables is per server; a
backend reports its counts when idle, at most once a second: polled). A replica that goes away
mid-export is made deterministic by the servers, never by timing: a lock replayed from the primary
holds the export's read on the replica until the test ends that backend, or a pipe nobody reads
holds linea (and the replica's COPY behind it, waiting to write to linea) mid-export.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.factories import make_event, make_user, make_venue, make_waitlist_entry
from tests.harness import (
    CliRun,
    Database,
    libpq_conninfo,
    pause_replay,
    plain_url,
    read_on_the_replica_only,
    wait_for_replay,
    wait_until,
)


@pytest.fixture
def on_replica(replica_database_url: URL, direct_database_url: URL) -> Callable[[], dict[str, str]]:
    """linea's environment naming the replica, once the rows arranged so far are replayed there."""

    def caught_up() -> dict[str, str]:
        wait_for_replay(replica_database_url, primary=direct_database_url)
        return {"LINEA_READ_DATABASE_URL": plain_url(replica_database_url)}

    return caught_up


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --- each read on the replica --------------------------------------------------------------------


def test_waitlist_export_reads_its_rows_on_the_replica_and_audits_on_the_primary(
    linea: CliRun, db: Database, primary: psycopg.Connection, replica: psycopg.Connection, on_replica: Callable[[], dict[str, str]]
) -> None:
    event = make_event(db)
    emails = [make_waitlist_entry(db, event=event)["email"] for _ in range(3)]
    env = on_replica()

    result = read_on_the_replica_only(
        primary, replica, "waitlist_entries", lambda: linea("waitlist", "export", event["slug"], env=env)
    )

    assert [row["email"] for row in csv_rows(result.stdout)] == emails
    assert result.stderr == ""
    assert db.count("audit_logs", "action = 'EXPORT' AND resource_id = :id", id=event["id"]) == 1


def test_waitlist_export_as_ndjson_reads_on_the_replica(
    linea: CliRun, db: Database, primary: psycopg.Connection, replica: psycopg.Connection,
    replica_database_url: URL, direct_database_url: URL,
) -> None:
    event = make_event(db)
    emails = [make_waitlist_entry(db, event=event)["email"] for _ in range(3)]
    wait_for_replay(replica_database_url, primary=direct_database_url)
    env = {"LINEA_READ_DATABASE_URL": plain_url(replica_database_url)}

    result = read_on_the_replica_only(
        primary, replica, "waitlist_entries",
        lambda: linea("waitlist", "export", event["slug"], "--format", "ndjson", env=env),
    )

    assert [json.loads(line)["email"] for line in result.stdout.splitlines()] == emails
    assert result.stderr == ""


def test_an_export_right_after_an_import_holds_the_imported_rows_read_on_the_replica_only(
    linea: CliRun, db: Database, primary: psycopg.Connection, replica: psycopg.Connection,
    on_replica: Callable[[], dict[str, str]], tmp_path: Path,
) -> None:
    """The import's write is linea's last (the fence): the replica serves once it has replayed it."""
    event = make_event(db)
    source = tmp_path / "signups.csv"
    source.write_text("email\n" + "".join(f"imported{n}@example.com\n" for n in range(200)))
    env = on_replica()

    linea("waitlist", "import", event["slug"], str(source), "--yes", env=env)
    result = read_on_the_replica_only(
        primary, replica, "waitlist_entries", lambda: linea("waitlist", "export", event["slug"], env=env)
    )

    assert sorted(row["email"] for row in csv_rows(result.stdout)) == sorted(f"imported{n}@example.com" for n in range(200))
    assert result.stderr == ""


def test_waitlist_stats_read_on_the_replica_only(
    linea: CliRun, db: Database, primary: psycopg.Connection, replica: psycopg.Connection,
    replica_database_url: URL, direct_database_url: URL,
) -> None:
    event = make_event(db, capacity=10)
    for _ in range(4):
        make_waitlist_entry(db, event=event)
    wait_for_replay(replica_database_url, primary=direct_database_url)
    env = {"LINEA_READ_DATABASE_URL": plain_url(replica_database_url)}

    result = read_on_the_replica_only(
        primary, replica, "waitlist_entries", lambda: linea("waitlist", "stats", event["slug"], "--json", env=env)
    )

    assert result.json["pending"] == 4
    assert result.stderr == ""


def test_users_export_reads_on_the_replica_and_audits_on_the_primary(
    linea: CliRun, db: Database, primary: psycopg.Connection, replica: psycopg.Connection,
    replica_database_url: URL, direct_database_url: URL, tmp_path: Path,
) -> None:
    person = make_user(db, email="ann@example.com")
    make_waitlist_entry(db, event=make_event(db), email="ann@example.com", user_id=person["id"])
    wait_for_replay(replica_database_url, primary=direct_database_url)
    env = {"LINEA_READ_DATABASE_URL": plain_url(replica_database_url)}
    out = tmp_path / "ann.json"

    read_on_the_replica_only(
        primary, replica, "waitlist_entries", lambda: linea("users", "export", "ann@example.com", "-o", str(out), env=env)
    )

    document = json.loads(out.read_text())
    assert document["subject"] == {"email": "ann@example.com", "user_id": person["id"]}
    assert [entry["email"] for entry in document["waitlist_entries"]] == ["ann@example.com"]
    audit = db.one("SELECT resource, metadata FROM audit_logs WHERE action = 'EXPORT' AND resource_id = :id", id=person["id"])
    assert audit.resource == "User"
    assert audit.metadata["counts"]["waitlist_entries"] == 1


def test_audit_list_and_export_read_on_the_replica_only(
    linea: CliRun, db: Database, primary: psycopg.Connection, replica: psycopg.Connection,
    replica_database_url: URL, direct_database_url: URL,
) -> None:
    from tests.factories import make_audit_row

    ids = [make_audit_row(db, resource="Venue")["id"] for _ in range(3)]
    wait_for_replay(replica_database_url, primary=direct_database_url)
    env = {"LINEA_READ_DATABASE_URL": plain_url(replica_database_url)}

    listed = read_on_the_replica_only(
        primary, replica, "audit_logs", lambda: linea("audit", "list", "--resource", "Venue", "--all", "--json", env=env)
    )
    exported = read_on_the_replica_only(
        primary, replica, "audit_logs", lambda: linea("audit", "export", "--resource", "Venue", env=env)
    )

    assert sorted(row["id"] for row in listed.json["items"]) == sorted(ids)
    assert [json.loads(line)["id"] for line in exported.stdout.splitlines()] == ids
    assert listed.stderr == exported.stderr == ""


def test_verify_erased_searches_on_a_replica_that_replayed_the_erasure(
    linea: CliRun, db: Database, primary: psycopg.Connection, replica: psycopg.Connection, on_replica: Callable[[], dict[str, str]]
) -> None:
    make_user(db, email="gone@example.com")
    make_venue(db)
    env = on_replica()

    linea("users", "anonymize", "gone@example.com", "--yes", env=env)
    result = read_on_the_replica_only(
        primary, replica, "venues", lambda: linea("users", "verify-erased", "gone@example.com", env=env)
    )

    assert result.stdout.startswith("OK: no trace in ")
    assert result.stderr == ""


# --- never from a replica that has not replayed the write -----------------------------------------


def test_verify_erased_after_anonymize_reads_the_primary_while_the_replica_is_paused(
    linea: CliRun, db: Database, replica: psycopg.Connection, on_replica: Callable[[], dict[str, str]]
) -> None:
    """The replica still holds the address: an OK from it would be a lie."""
    make_user(db, email="erase-me@example.com")
    env = on_replica()  # the user is on the replica before replay pauses
    pause_replay(replica)

    linea("users", "anonymize", "erase-me@example.com", "--yes", env=env)
    assert replica.execute("SELECT count(*) FROM users WHERE email = 'erase-me@example.com'").fetchone() == (1,)
    result = linea("users", "verify-erased", "erase-me@example.com", env=env)

    assert result.stdout.startswith("OK: no trace in ")
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1 and "replica 1" in warnings[0] and "the primary" in warnings[0], result.stderr

    required = linea("--replica", "required", "users", "verify-erased", "erase-me@example.com", env=env, exit_code=5)
    assert required.stdout == ""
    assert "--replica required" in required.stderr and "Traceback" not in required.stderr


def test_anonymize_searches_on_the_primary_after_its_write(
    linea: CliRun, db: Database, replica: psycopg.Connection, on_replica: Callable[[], dict[str, str]]
) -> None:
    """Its own proof right after the erasure: on the primary, even with a replica configured (and
    --replica required: the replica is never asked, so it cannot refuse)."""
    make_user(db, email="right-away@example.com")
    env = on_replica()
    pause_replay(replica)

    result = linea("--replica", "required", "users", "anonymize", "right-away@example.com", "--yes", env=env)

    assert "right-away@example.com" not in result.stdout
    assert "replica" not in result.stderr
    assert replica.execute("SELECT count(*) FROM users WHERE email = 'right-away@example.com'").fetchone() == (1,)


def test_an_export_with_the_replica_paused_reads_the_primary_and_says_so(
    linea: CliRun, db: Database, replica: psycopg.Connection, on_replica: Callable[[], dict[str, str]], tmp_path: Path
) -> None:
    """The export's own audit row is a write the paused replica has not replayed."""
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="first@example.net")
    env = on_replica()
    pause_replay(replica)
    make_waitlist_entry(db, event=event, email="second@example.net")
    out = tmp_path / "list.csv"
    out.write_text("the previous export\n")

    result = linea("waitlist", "export", event["slug"], "-o", str(out), env=env)
    assert [row["email"] for row in csv_rows(out.read_text())] == ["first@example.net", "second@example.net"]
    assert len(result.stderr.splitlines()) == 2 and "skipped" in result.stderr  # the warning, then "exported 2 ..."

    required = linea("--replica", "required", "waitlist", "export", event["slug"], "-o", str(tmp_path / "new.csv"),
                     env=env, exit_code=5)
    assert "--replica required" in required.stderr
    assert not (tmp_path / "new.csv").exists()


# --- a replica that goes away mid-export -----------------------------------------------------------


def linea_process(linea: CliRun, args: list[str], env: dict[str, str], **options: Any) -> subprocess.Popen:
    import os

    return subprocess.Popen(
        [sys.executable, "-m", "linea_cli", *args], env={**os.environ, **linea.env, **env}, text=True, **options
    )


def linea_backends(conn: psycopg.Connection, where: str = "true") -> list[int]:
    rows = conn.execute(
        f"SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'linea/%%' AND {where}"
    ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def lock_on_the_primary(direct_database_url: URL, replica_database_url: URL) -> Iterator[Callable[[], Callable[[], None]]]:
    """Once called (the rows arranged): ACCESS EXCLUSIVE on waitlist_entries, held on the primary
    and replayed on the replica, where a read of the table then waits for it (wait_event_type
    Lock) until the lock is let go (the callable returned), whatever the timing."""
    holder = psycopg.connect(libpq_conninfo(direct_database_url))

    def hold() -> Callable[[], None]:
        holder.execute("LOCK TABLE waitlist_entries IN ACCESS EXCLUSIVE MODE")
        # From another session: the lock's WAL record is flushed and streamed, then replayed.
        with psycopg.connect(libpq_conninfo(direct_database_url), autocommit=True) as other:
            other.execute("SELECT pg_switch_wal()")
        wait_for_replay(replica_database_url, primary=direct_database_url)
        return holder.rollback

    try:
        yield hold
    finally:
        holder.rollback()
        holder.close()


def test_a_replica_gone_before_the_rows_leaves_the_export_to_the_primary_and_the_file_whole(
    linea: CliRun, db: Database, primary: psycopg.Connection, replica: psycopg.Connection,
    on_replica: Callable[[], dict[str, str]], lock_on_the_primary: Callable[[], Callable[[], None]], tmp_path: Path,
) -> None:
    event = make_event(db)
    emails = [make_waitlist_entry(db, event=event)["email"] for _ in range(5)]
    env = on_replica()
    out = tmp_path / "list.csv"
    out.write_text("the previous export\n")
    let_go = lock_on_the_primary()

    process = linea_process(linea, ["waitlist", "export", event["slug"], "-o", str(out)], env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    waiting = "wait_event_type = 'Lock'"
    wait_until(lambda: linea_backends(replica, waiting), what="the export waiting on the replica", processes=[process])
    replica.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'linea/%'")
    let_go()  # the primary's read may go on
    stdout, stderr = process.communicate(timeout=120)

    assert process.returncode == 0, stderr
    assert [row["email"] for row in csv_rows(out.read_text())] == emails
    warnings = [line for line in stderr.splitlines() if not line.startswith("exported ")]
    assert len(warnings) == 1 and "went away" in warnings[0] and "the primary" in warnings[0], stderr
    assert stdout == ""


def test_a_replica_gone_with_replica_required_exits_5_and_keeps_the_old_file(
    linea: CliRun, db: Database, replica: psycopg.Connection, on_replica: Callable[[], dict[str, str]],
    lock_on_the_primary: Callable[[], Callable[[], None]], tmp_path: Path,
) -> None:
    event = make_event(db)
    make_waitlist_entry(db, event=event)
    env = on_replica()
    out = tmp_path / "list.csv"
    out.write_text("the previous export\n")
    lock_on_the_primary()

    process = linea_process(linea, ["--replica", "required", "waitlist", "export", event["slug"], "-o", str(out)],
                            env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: linea_backends(replica, "wait_event_type = 'Lock'"), what="the export waiting on the replica",
               processes=[process])
    replica.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'linea/%'")
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 5
    assert len(stderr.strip().splitlines()) <= 2 and "--replica required" in stderr and "Traceback" not in stderr
    assert out.read_text() == "the previous export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no .part left


def test_a_replica_gone_mid_copy_leaves_the_rest_to_the_primary_each_row_once(
    linea: CliRun, db: Database, replica: psycopg.Connection, on_replica: Callable[[], dict[str, str]],
    replica_database_url: URL, direct_database_url: URL,
) -> None:
    """linea writes into a pipe the test does not read yet: it stops mid-export, and the replica's
    COPY behind it waits to write to linea (ClientWrite). The replica's backend is ended there;
    the rows written from the replica are not written again, none is left out."""
    event = make_event(db)
    db.execute(
        "INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at)"
        " SELECT 'bulk' || n, 'guest' || n || '@example.net', :event, 'PENDING',"
        " now() - interval '1 day' + n * interval '1 millisecond', now() FROM generate_series(1, 40000) AS n",
        event=event["id"],
    )
    env = on_replica()

    process = linea_process(linea, ["waitlist", "export", event["slug"]], env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writing = "state = 'active' AND wait_event = 'ClientWrite'"
    wait_until(lambda: linea_backends(replica, writing), what="the replica's COPY waiting on linea", processes=[process])
    replica.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'linea/%'")
    stdout, stderr = process.communicate(timeout=120)

    assert process.returncode == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "email,status,created_at,updated_at,name"
    emails = [row["email"] for row in csv_rows(stdout)]
    assert emails == [f"guest{n}@example.net" for n in range(1, 40001)]
    assert len(stderr.splitlines()) == 1 and "went away" in stderr and "the primary" in stderr, stderr
