"""`linea db ...` as an admin and a CI pipeline use it."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from tests.harness import CliRun, Database, libpq_conninfo, plain_url, wait_until


def test_status_json_reports_head_and_row_counts(linea: CliRun) -> None:
    result = linea("db", "status", "--json")
    status = result.json
    assert status["at_head"] is True
    assert status["current_revision"] == status["head_revision"]
    assert status["pending_migrations"] == []
    assert status["mode"] == "external"
    assert status["row_counts"] == {
        "users": 0, "venues": 0, "events": 0, "waitlist_entries": 0, "sessions": 0, "audit_logs": 0
    }


def test_seed_is_deterministic_and_audited(linea: CliRun, db: Database) -> None:
    linea("db", "seed", "--users", "30", "--events", "12", "--waitlist", "200", "--seed", "7", "--anchor", "2026-06-01")
    first = db.all("SELECT id, email, role::text FROM users ORDER BY id")
    first_events = db.all("SELECT id, slug, status::text, owner_id, start_date FROM events ORDER BY id")
    assert len(first) == 30 and len(first_events) == 12
    assert db.count("waitlist_entries") == 200
    assert db.count("audit_logs", "action = 'SEED'") == 1

    linea("db", "reset", "--force", "--yes")
    linea("db", "seed", "--users", "30", "--events", "12", "--waitlist", "200", "--seed", "7", "--anchor", "2026-06-01")
    assert db.all("SELECT id, email, role::text FROM users ORDER BY id") == first
    assert db.all("SELECT id, slug, status::text, owner_id, start_date FROM events ORDER BY id") == first_events


def test_seed_is_realistic(linea: CliRun, db: Database) -> None:
    linea("db", "seed", "--users", "200", "--events", "60", "--waitlist", "3000")
    # Every event is owned by an OWNER or ADMIN.
    assert db.scalar(
        "SELECT count(*) FROM events e JOIN users u ON u.id = e.owner_id WHERE u.role = 'VISITOR'"
    ) == 0
    assert db.scalar("SELECT count(DISTINCT status) FROM events") >= 3
    assert db.scalar("SELECT count(DISTINCT status) FROM waitlist_entries") == 3
    assert db.count("users", "deleted_at IS NOT NULL") > 0
    assert db.count("waitlist_entries", "user_id IS NOT NULL") > 0
    # Seeded session tokens are SHA-256 digests, never usable tokens.
    assert db.count("sessions", "token !~ '^[0-9a-f]{64}$'") == 0


def test_seeded_rows_were_never_made_in_the_future(linea: CliRun, db: Database) -> None:
    # Events start up to 250 days ahead; they were created, edited and deleted before today all the same.
    linea("db", "seed", "--events", "200", "--waitlist", "300")
    for table in ("users", "venues", "events", "waitlist_entries", "sessions"):
        assert db.count(table) > 0
        assert db.count(table, "greatest(created_at, updated_at) > now() AT TIME ZONE 'UTC'") == 0, table
        assert db.count(table, "deleted_at > now() AT TIME ZONE 'UTC'") == 0, table
        assert db.count(table, "updated_at < created_at") == 0, table
    assert db.count("events", "start_date > now() AT TIME ZONE 'UTC' + interval '60 days'") > 0
    assert db.count("events", "created_at > start_date - interval '60 days'") == 0
    # Around another day, as around today: nothing made after that day.
    linea("db", "reset", "--force", "--yes")
    linea("db", "seed", "--events", "200", "--waitlist", "300", "--anchor", "2026-06-01")
    for table in ("users", "venues", "events", "waitlist_entries", "sessions"):
        assert db.count(table, "greatest(created_at, updated_at, deleted_at) > '2026-06-01'") == 0, table
    assert db.count("events", "start_date > '2026-08-01'") > 0


def test_seed_never_confirms_more_entries_than_an_event_holds(linea: CliRun, db: Database) -> None:
    over_capacity = """
        SELECT count(*) FROM events e
        WHERE e.capacity < (SELECT count(*) FROM waitlist_entries w
                            WHERE w.event_id = e.id AND w.status = 'CONFIRMED' AND w.deleted_at IS NULL)
    """
    linea("db", "seed", "--events", "5", "--waitlist", "20000", "--seed", "3", "--anchor", "2026-06-01")
    assert db.scalar(over_capacity) == 0
    # Full events are filled to the last place, and confirmations remain where there is room.
    assert db.scalar("""
        SELECT count(*) FROM events e WHERE e.capacity = (SELECT count(*) FROM waitlist_entries w
            WHERE w.event_id = e.id AND w.status = 'CONFIRMED' AND w.deleted_at IS NULL)
    """) == db.count("events", "capacity IS NOT NULL AND deleted_at IS NULL")
    assert db.count("waitlist_entries", "status = 'CONFIRMED'") > 0
    first = db.all("SELECT id, status::text FROM waitlist_entries ORDER BY id")
    # --append keeps the rule.
    linea("db", "seed", "--append", "--users", "1", "--events", "1", "--waitlist", "20000", "--seed", "3",
          "--anchor", "2026-06-01")
    assert db.scalar(over_capacity) == 0
    # Still deterministic: the same plan gives the same statuses.
    linea("db", "reset", "--force", "--yes")
    linea("db", "seed", "--events", "5", "--waitlist", "20000", "--seed", "3", "--anchor", "2026-06-01")
    assert db.all("SELECT id, status::text FROM waitlist_entries ORDER BY id") == first


def test_seed_append_holds_no_lock_on_the_events_the_platform_updates(
    linea: CliRun, db: Database, direct_database_url: URL
) -> None:
    """Beside live traffic (issue 18): the platform updates an event's row at every sign-up, and an
    appending seed's long transaction must hold no lock on it (each of those updates would carry
    the lock forward in a new multixact). Held mid-transaction by a lock the test holds on
    `sessions` (its last step), the seed has locked none of the events that were there before it,
    and its waitlist entries went into the events it seeded itself."""
    linea("db", "seed", "--users", "5", "--events", "3", "--waitlist", "0", "--sessions", "0", "--seed", "3")
    existing = [row.id for row in db.all("SELECT id FROM events")]
    holder = psycopg.connect(libpq_conninfo(direct_database_url))
    holder.execute("LOCK TABLE sessions IN SHARE MODE")
    seeding = subprocess.Popen(
        [sys.executable, "-m", "linea_cli", "db", "seed", "--append", "--users", "5", "--events", "2",
         "--waitlist", "300", "--sessions", "5", "--seed", "3"],
        env={**os.environ, **linea.env, "LINEA_LOCK_TIMEOUT": "0"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        holder_pid = holder.info.backend_pid
        wait_until(
            lambda: db.scalar("SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))",
                              holder=holder_pid),
            what="the seed waited for sessions, its waitlist entries inserted", processes=[seeding],
        )
        with psycopg.connect(libpq_conninfo(direct_database_url)) as platform:
            for event in existing:  # conflicts with any lock the seed might hold on the row
                platform.execute("SELECT 1 FROM events WHERE id = %s FOR UPDATE NOWAIT", (event,))
            platform.rollback()
    finally:
        holder.close()
        _, stderr = seeding.communicate(timeout=600)
    assert seeding.returncode == 0, stderr
    assert db.count("waitlist_entries") > 0
    assert db.count("waitlist_entries", "event_id = ANY(:existing)", existing=existing) == 0


def test_seed_refuses_a_populated_database_unless_append(linea: CliRun, db: Database) -> None:
    linea("db", "seed", "--users", "5", "--events", "2", "--waitlist", "10", "--sessions", "3")
    result = linea("db", "seed", exit_code=4)
    assert "already has data" in result.stderr
    assert db.count("users") == 5

    linea("db", "seed", "--if-empty")
    assert db.count("users") == 5
    refused = linea("db", "seed", "--append", "--if-empty", "--users", "1", exit_code=1)
    assert refused.stderr == "error: --append and --if-empty exclude each other\n"
    assert db.count("users") == 5

    linea("db", "seed", "--append", "--users", "5", "--events", "2", "--waitlist", "10", "--sessions", "3")
    assert db.count("users") == 10
    assert db.count("events") == 4


def test_seed_rejects_impossible_plans(linea: CliRun, db: Database) -> None:
    result = linea("db", "seed", "--users", "0", "--events", "3", exit_code=1)
    assert "owners" in result.stderr
    assert db.count("events") == 0


def test_doctor_passes_on_a_healthy_database(linea: CliRun) -> None:
    result = linea("db", "doctor", "--json")
    checks = {check["check"]: check["status"] for check in result.json}
    assert checks["server version"] == "OK"
    assert checks["schema revision"] == "OK"
    assert checks["indexes present"] == "OK"


def test_doctor_fails_when_an_index_is_missing(linea: CliRun, db: Database) -> None:
    db.execute("DROP INDEX sessions_expires_at_idx")  # Prisma's name; the data model calls it idx_sessions_expires_at
    result = linea("db", "doctor", "--json", exit_code=5)
    checks = {check["check"]: check for check in result.json}
    assert checks["indexes present"]["status"] == "FAIL"
    assert "idx_sessions_expires_at" in checks["indexes present"]["detail"]


def test_doctor_counts_expired_sessions(linea: CliRun, db: Database) -> None:
    from tests.factories import days_from_now, make_session, make_user

    user = make_user(db)
    make_session(db, user=user, expires_at=days_from_now(-1))
    make_session(db, user=user, expires_at=days_from_now(-2))
    make_session(db, user=user, expires_at=days_from_now(1))
    checks = {c["check"]: c for c in linea("db", "doctor", "--json").json}
    assert checks["expired sessions"]["detail"].startswith("2 expired")


def test_reset_of_an_external_database_needs_force(linea: CliRun, db: Database) -> None:
    linea("db", "seed", "--users", "3", "--events", "1", "--waitlist", "2", "--sessions", "1")
    result = linea("db", "reset", exit_code=6)
    assert "--force" in result.stderr
    result = linea("db", "reset", "--force", exit_code=1)  # no terminal, no --yes
    assert db.count("users") == 3
    database_name = db.url.database
    result = linea("db", "reset", "--force", input="wrong-name\n", exit_code=1)
    assert db.count("users") == 3
    del result, database_name


def test_a_downgrade_that_drops_tables_holding_rows_needs_confirmation(linea: CliRun, db: Database) -> None:
    linea("db", "seed", "--users", "3", "--events", "1", "--waitlist", "2", "--sessions", "1")
    # Undoing linea's indexes drops no table: no confirmation.
    linea("db", "downgrade", "d7ddba488c9c")
    assert db.scalar("SELECT to_regclass('public.idx_users_role')") is None
    linea("db", "upgrade")
    result = linea("db", "downgrade", "base", exit_code=6)
    assert "drops users" in result.stderr and "--force" in result.stderr
    linea("db", "downgrade", "--", "-5", exit_code=6)
    linea("db", "downgrade", "base", "--force", exit_code=1)  # no terminal, no --yes
    linea("db", "downgrade", "base", "--force", input="wrong-name\n", exit_code=1)
    assert db.count("users") == 3
    linea("db", "downgrade", "base", "--force", "--yes")
    assert db.scalar("SELECT to_regclass('public.users')") is None
    assert db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'linea'") == 0


def test_reset_rebuilds_an_empty_schema_at_head(linea: CliRun, db: Database) -> None:
    linea("db", "seed", "--users", "3", "--events", "1", "--waitlist", "2", "--sessions", "1")
    linea("db", "reset", "--force", "--yes")
    assert db.count("users") == 0
    assert linea("db", "status", "--json").json["at_head"] is True


def test_upgrade_sql_prints_reviewable_sql_without_running_it(linea: CliRun, empty_database_url: URL) -> None:
    result = linea("--database-url", plain_url(empty_database_url), "db", "upgrade", "--sql")
    assert 'CREATE TABLE "users"' in result.stdout
    assert 'CREATE TYPE "UserRole"' in result.stdout
    status = linea("--database-url", plain_url(empty_database_url), "db", "status", "--json").json
    assert status["current_revision"] is None
    assert status["row_counts"]["users"] is None


def test_commands_refuse_an_unmigrated_external_database(linea: CliRun, empty_database_url: URL) -> None:
    result = linea("--database-url", plain_url(empty_database_url), "events", "list", exit_code=5)
    assert "linea db upgrade" in result.stderr
    assert "Traceback" not in result.stderr


def test_history_marks_the_current_revision(linea: CliRun) -> None:
    rows = linea("db", "history", "--json").json
    assert rows and rows[0]["is_head"] is True and rows[0]["is_current"] is True


def test_downgrade_to_base_and_back(linea: CliRun, db: Database) -> None:
    linea("db", "downgrade", "base")
    assert db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'") == 0
    linea("db", "upgrade")
    assert linea("db", "status", "--json").json["at_head"] is True


def test_unknown_revision_is_invalid_input(linea: CliRun) -> None:
    result = linea("db", "upgrade", "nope123", exit_code=1)
    assert "unknown revision" in result.stderr


def test_seed_append_after_a_purge_does_not_reuse_numbers(linea: CliRun, db: Database) -> None:
    linea("db", "seed", "--users", "5", "--events", "2", "--waitlist", "10", "--sessions", "6")
    db.execute("DELETE FROM sessions WHERE id IN (SELECT id FROM sessions ORDER BY id LIMIT 3)")
    linea("db", "seed", "--append", "--users", "5", "--events", "2", "--waitlist", "10", "--sessions", "6")
    assert db.count("sessions") == 9
    assert db.count("users") == 10


def test_a_large_seed_into_an_empty_waitlist_keeps_the_platforms_indexes_and_foreign_keys(
    adopted: CliRun, platform_db: Database
) -> None:
    """The bulk path drops waitlist_entries' secondary indexes and foreign keys and rebuilds them: exactly those."""

    def definitions() -> list[tuple[str, str]]:
        return [tuple(row) for row in platform_db.all(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = 'waitlist_entries'::regclass "
            "UNION ALL SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'waitlist_entries'::regclass ORDER BY 1"
        )]

    platform_db.execute("DELETE FROM waitlist_entries")
    before = definitions()
    assert "waitlist_entries_event_id_idx" in dict(before) and "waitlist_entries_event_id_fkey" in dict(before)
    result = adopted("db", "seed", "--append", "--users", "20", "--events", "5", "--waitlist", "12000", "--sessions", "0", "--json")
    assert definitions() == before
    assert platform_db.scalar("SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = 'waitlist_entries'::regclass")
    seeded = {row["table"]: row["rows"] for row in result.json}
    assert platform_db.count("waitlist_entries") == seeded["waitlist_entries"] > 9_000
    # The foreign keys hold again: an entry for no event is refused.
    with pytest.raises(sa.exc.IntegrityError):
        platform_db.execute(
            "INSERT INTO waitlist_entries (id, email, event_id, updated_at) VALUES ('x', 'a@b.c', 'no-such-event', now())"
        )
