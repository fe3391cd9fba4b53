"""`linea sessions ...`: listing without tokens, revocation, and the cron purge."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.factories import days_from_now, make_session, make_user
from tests.harness import CliRun, Database, interrupted_at, plain_url, wait_for_lock_waiters


def insert_sessions(db: Database, user: dict, count: int, *, expires_in_days: float, prefix: str) -> None:
    """Many sessions at once (set-based), tokens as SHA-256 digests like every stored token."""
    db.execute(
        "INSERT INTO sessions (id, user_id, token, expires_at, created_at, updated_at) "
        "SELECT :prefix || n, :user_id, encode(sha256(convert_to(:prefix || n, 'UTF8')), 'hex'), "
        "(now() AT TIME ZONE 'UTC') + make_interval(secs => :days * 86400 - n), "
        "(now() AT TIME ZONE 'UTC') - interval '30 days', (now() AT TIME ZONE 'UTC') - interval '30 days' "
        "FROM generate_series(1, :count) AS n",
        prefix=prefix, user_id=user["id"], count=count, days=expires_in_days,
    )


# --- list -------------------------------------------------------------------------------------


def test_list_never_prints_a_token(linea: CliRun, db: Database) -> None:
    user = make_user(db, email="ann@example.com")
    sessions = [make_session(db, user=user) for _ in range(3)]
    # A row some other writer stored unhashed: not even a piece of it is shown.
    sessions.append(make_session(db, user=user, token="plain-secret-token-value"))
    for fmt in ("table", "json", "ndjson", "csv"):
        output = linea("sessions", "list", "--format", fmt).stdout
        for row in sessions:
            assert row["id"] in output
            assert row["token"][:6] not in output
            assert hashlib.sha256(row["token"].encode()).hexdigest()[:8] in output  # the fingerprint


def test_list_filters_by_user_and_state(linea: CliRun, db: Database) -> None:
    ann, bob = make_user(db, email="ann@example.com"), make_user(db, email="bob@example.com")
    live = make_session(db, user=ann)
    expired = make_session(db, user=ann, expires_at=days_from_now(-1))
    revoked = make_session(db, user=ann, deleted_at=days_from_now(-0.5))
    bobs = make_session(db, user=bob)

    def ids(*args: str) -> set[str]:
        return {row["id"] for row in linea("sessions", "list", "--json", *args).json["items"]}

    assert ids() == {live["id"], expired["id"], bobs["id"]}
    assert ids("--user", "ANN@example.com") == {live["id"], expired["id"]}
    assert ids("--user", "ann@example.com", "--live") == {live["id"]}
    assert ids("--user", "ann@example.com", "--expired") == {expired["id"]}
    assert ids("--user", "ann@example.com", "--include-revoked") == {live["id"], expired["id"], revoked["id"]}
    states = {r["id"]: r["state"] for r in linea("sessions", "list", "--include-revoked", "--json").json["items"]}
    assert states[revoked["id"]] == "REVOKED" and states[expired["id"]] == "EXPIRED" and states[live["id"]] == "LIVE"
    linea("sessions", "list", "--expired", "--live", exit_code=1)
    linea("sessions", "list", "--user", "nobody@example.com", exit_code=3)


def test_list_paginates_newest_first(linea: CliRun, db: Database) -> None:
    user = make_user(db)
    made = [make_session(db, user=user, created_at=days_from_now(-i)) for i in range(5)]
    page = linea("sessions", "list", "--limit", "3", "--json").json
    rest = linea("sessions", "list", "--limit", "3", "--after", page["next_cursor"], "--json").json
    assert [r["id"] for r in page["items"] + rest["items"]] == [s["id"] for s in made]
    assert rest["next_cursor"] is None


def test_users_see_only_their_own_sessions(linea: CliRun, db: Database) -> None:
    ann, bob = make_user(db, email="ann@example.com"), make_user(db, email="bob@example.com")
    mine = make_session(db, user=ann)
    theirs = make_session(db, user=bob)
    rows = linea("--as", "ann@example.com", "sessions", "list", "--json").json["items"]
    assert [r["id"] for r in rows] == [mine["id"]]
    linea("--as", "ann@example.com", "sessions", "list", "--user", "bob@example.com", exit_code=6)
    linea("--as", "ann@example.com", "sessions", "revoke", theirs["id"], exit_code=6)
    linea("--as", "ann@example.com", "sessions", "revoke", "--user", "bob@example.com", exit_code=6)
    linea("--as", "ann@example.com", "sessions", "purge", exit_code=6)
    assert db.count("sessions", "deleted_at IS NOT NULL") == 0
    linea("--as", "ann@example.com", "sessions", "revoke", mine["id"])
    assert db.scalar("SELECT deleted_at FROM sessions WHERE id = :id", id=mine["id"]) is not None


# --- revoke -----------------------------------------------------------------------------------


def test_revoke_one_session(linea: CliRun, db: Database) -> None:
    user = make_user(db)
    target, other = make_session(db, user=user), make_session(db, user=user)
    linea("sessions", "revoke", target["id"])
    assert db.scalar("SELECT deleted_at FROM sessions WHERE id = :id", id=target["id"]) is not None
    assert db.scalar("SELECT deleted_at FROM sessions WHERE id = :id", id=other["id"]) is None
    assert db.count("sessions") == 2
    audit = db.one("SELECT action, resource, resource_id, metadata FROM audit_logs")
    assert (audit.action, audit.resource, audit.resource_id) == ("REVOKE", "Session", target["id"])
    assert target["token"] not in json.dumps(audit.metadata)
    assert "already revoked" in linea("sessions", "revoke", target["id"], exit_code=4).stderr
    linea("sessions", "revoke", "nope", exit_code=3)
    linea("sessions", "revoke", exit_code=1)
    linea("sessions", "revoke", target["id"], "--user", "x@example.com", exit_code=1)


def test_revoke_every_live_session_of_a_user(linea: CliRun, db: Database) -> None:
    ann, bob = make_user(db, email="ann@example.com"), make_user(db)
    for _ in range(3):
        make_session(db, user=ann)
    expired = make_session(db, user=ann, expires_at=days_from_now(-1))
    bobs = make_session(db, user=bob)
    record = linea("sessions", "revoke", "--user", "ann@example.com", "--json").json
    assert record["revoked"] == 3
    assert db.count("sessions", "user_id = :id AND deleted_at IS NOT NULL", id=ann["id"]) == 3
    assert db.scalar("SELECT deleted_at FROM sessions WHERE id = :id", id=expired["id"]) is None
    assert db.scalar("SELECT deleted_at FROM sessions WHERE id = :id", id=bobs["id"]) is None
    assert db.scalar("SELECT metadata->>'sessions_revoked' FROM audit_logs") == "3"
    assert linea("sessions", "revoke", "--user", "ann@example.com", "--json").json["revoked"] == 0
    assert db.count("audit_logs") == 1


# --- purge ------------------------------------------------------------------------------------


def test_purge_deletes_expired_sessions_in_batches_and_leaves_live_ones(linea: CliRun, db: Database) -> None:
    user = make_user(db)
    insert_sessions(db, user, 25, expires_in_days=-1, prefix="old")
    insert_sessions(db, user, 5, expires_in_days=1, prefix="live")
    revoked_live = make_session(db, user=user, deleted_at=days_from_now(-0.1))
    record = linea("sessions", "purge", "--batch-size", "10", "--json").json
    assert record["purged"] == 25
    assert record["batches"] == 3
    assert db.count("sessions", "id LIKE 'old%'") == 0
    assert db.count("sessions", "id LIKE 'live%'") == 5
    assert db.count("sessions", "id = :id", id=revoked_live["id"]) == 1  # revoked but not expired: kept
    audit = db.one("SELECT action, resource, user_id, metadata FROM audit_logs")
    assert (audit.action, audit.resource, audit.user_id) == ("PURGE", "Session", None)
    assert audit.metadata["purged"] == 25 and audit.metadata["batches"] == 3


def test_purge_commits_one_transaction_per_batch(db: Database, database_url: URL) -> None:
    import linea_cli
    from linea_cli.services.sessions import purge_expired_sessions

    user = make_user(db)
    insert_sessions(db, user, 25, expires_in_days=-1, prefix="old")
    linea_db = linea_cli.open_database(database_url, name="tests")
    remaining_after_each_commit: list[int] = []

    @contextmanager
    def unit_of_work() -> Iterator[tuple]:
        with linea_db.unit_of_work() as session:
            yield session, None
        remaining_after_each_commit.append(db.count("sessions"))

    try:
        result = purge_expired_sessions(unit_of_work, batch_size=10)
    finally:
        linea_db.close()
    assert result.purged == 25 and result.batches == 3
    # Each batch is committed (visible to another connection) before the next one starts.
    assert remaining_after_each_commit == [15, 5, 0]


def test_an_interrupted_purge_still_records_what_it_deleted(db: Database, database_url: URL) -> None:
    import linea_cli
    from linea_cli.services.sessions import purge_expired_sessions

    user = make_user(db)
    insert_sessions(db, user, 25, expires_in_days=-1, prefix="old")
    linea_db = linea_cli.open_database(database_url, name="tests")
    unit_of_work = interrupted_at(linea_db, 3)  # Ctrl-C during the third batch: it rolls back
    try:
        with pytest.raises(KeyboardInterrupt):
            purge_expired_sessions(unit_of_work, batch_size=10)
    finally:
        linea_db.close()
    assert db.count("sessions") == 5
    audit = db.one("SELECT action, metadata FROM audit_logs")
    assert audit.action == "PURGE"
    assert audit.metadata["purged"] == 20 and audit.metadata["interrupted"] is True


def test_purge_of_many_expired_sessions_walks_the_table_and_keeps_live_ones(
    linea: CliRun, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past WALK_FROM_ROWS expired sessions, purge deletes page range by page range."""
    monkeypatch.setattr("linea_cli.services.sessions.WALK_FROM_ROWS", 100)
    user = make_user(db)
    insert_sessions(db, user, 3_000, expires_in_days=-1, prefix="old")
    insert_sessions(db, user, 500, expires_in_days=1, prefix="live")
    insert_sessions(db, user, 2_000, expires_in_days=-2, prefix="older")
    record = linea("sessions", "purge", "--batch-size", "700", "--json").json
    assert record["purged"] == 5_000 and record["batches"] >= 8  # never more than 700 rows at once
    assert db.count("sessions") == 500 and db.count("sessions", "id LIKE 'live%'") == 500
    assert db.one("SELECT metadata FROM audit_logs WHERE action = 'PURGE'").metadata["purged"] == 5_000


def test_a_walking_purge_skips_a_session_someone_holds_and_leaves_it_for_the_next_run(
    linea: CliRun, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("linea_cli.services.sessions.WALK_FROM_ROWS", 100)
    user = make_user(db)
    insert_sessions(db, user, 1_000, expires_in_days=-1, prefix="old")
    with db.engine.begin() as platform:
        # The platform revoking an expired session holds its row: the purge waits LOCK_WAIT at most, then skips it.
        platform.exec_driver_sql("SELECT 1 FROM sessions WHERE id = 'old500' FOR UPDATE")
        assert linea("sessions", "purge", "--json").json["purged"] == 999
    assert [row.id for row in db.all("SELECT id FROM sessions")] == ["old500"]
    assert linea("sessions", "purge", "--json").json["purged"] == 1
    assert db.count("sessions") == 0


def test_purge_older_than_keeps_recently_expired_sessions(linea: CliRun, db: Database) -> None:
    user = make_user(db)
    long_ago = make_session(db, user=user, expires_at=days_from_now(-10))
    recent = make_session(db, user=user, expires_at=days_from_now(-3))
    record = linea("sessions", "purge", "--older-than", "7d", "--json").json
    assert record["purged"] == 1
    assert db.count("sessions", "id = :id", id=long_ago["id"]) == 0
    assert db.count("sessions", "id = :id", id=recent["id"]) == 1
    assert linea("sessions", "purge", "--older-than", "2d12h", "--json").json["purged"] == 1
    assert "invalid duration" in linea("sessions", "purge", "--older-than", "7 days", exit_code=1).stderr
    linea("sessions", "purge", "--batch-size", "0", exit_code=2)


def test_purge_dry_run_changes_nothing(linea: CliRun, db: Database) -> None:
    user = make_user(db)
    insert_sessions(db, user, 7, expires_in_days=-1, prefix="old")
    record = linea("sessions", "purge", "--dry-run", "--json").json
    assert record["would_purge"] == 7
    assert db.count("sessions") == 7
    assert db.count("audit_logs") == 0


def test_purge_quiet_prints_nothing_and_is_idempotent(linea: CliRun, db: Database) -> None:
    user = make_user(db)
    insert_sessions(db, user, 3, expires_in_days=-1, prefix="old")
    first = linea("sessions", "purge", "--quiet")
    assert first.stdout == "" and first.stderr == ""
    assert db.count("sessions") == 0
    second = linea("sessions", "purge", "--quiet")
    assert second.stdout == "" and second.stderr == ""
    # A run with nothing to purge changed nothing, so it writes no audit row.
    assert db.count("audit_logs") == 1


@pytest.mark.parametrize("batch_size", ["500"])
def test_purge_from_two_processes_at_once(db: Database, database_url: URL, tmp_path: Path, batch_size: str) -> None:
    user = make_user(db)
    expired, live = 30_000, 200
    insert_sessions(db, user, expired, expires_in_days=-1, prefix="old")
    insert_sessions(db, user, live, expires_in_days=1, prefix="live")
    env = {**os.environ, "LINEA_DATABASE_URL": plain_url(database_url), "LINEA_DATA_DIR": str(tmp_path),
           "LINEA_LOCK_TIMEOUT": "0"}  # both wait as long as the test holds the table
    command = [sys.executable, "-m", "linea_cli", "sessions", "purge", "--batch-size", batch_size, "--json"]
    # Both cron jobs start while the table is locked, so they begin purging at the same moment.
    with db.engine.begin() as held:
        held.exec_driver_sql("LOCK TABLE sessions IN EXCLUSIVE MODE")
        processes = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        wait_for_lock_waiters(db, "linea/sessions%", processes)
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        results.append(json.loads(stdout))
    purged = [result["purged"] for result in results]
    # Every row counted once, by exactly one of them. How they share the work depends on the
    # scheduler (on a busy machine one may do it all), so the split is not asserted.
    assert sum(purged) == expired
    assert db.count("sessions", "id LIKE 'old%'") == 0
    assert db.count("sessions", "id LIKE 'live%'") == live
    assert sorted(r.count for r in db.all(
        "SELECT (metadata->>'purged')::int AS count FROM audit_logs WHERE action = 'PURGE'"
    )) == sorted(purged)
