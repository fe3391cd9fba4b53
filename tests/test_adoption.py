"""`linea db upgrade` on the platform's own database: adopt what Prisma Migrate made, add only linea's
indexes and triggers, never block the platform's writers, and undo only what linea added."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL

from tests.harness import CliRun, Database, admin_execute, libpq_conninfo, plain_url, wait_for_lock_waiters
from tests.platform import MIGRATION_NAMES
from tests.test_schema import DATA_MODEL_INDEXES, LINEA_INDEXES, catalog

REFERENCE = Path(__file__).parent / "reference"


def _rows(db: Database) -> dict[str, list]:
    return {
        table: db.all(f'SELECT * FROM "{table}" ORDER BY id')
        for table in ("users", "venues", "events", "waitlist_entries", "sessions", "audit_logs", "_prisma_migrations")
    }


def _contained(before: dict, after: dict) -> None:
    """Everything the platform had is still there, unchanged; nothing new in public but linea's indexes and triggers."""
    for key in ("tables", "columns", "enums", "constraints", "unique_indexes", "types", "functions"):
        assert after[key] == before[key], key
    before_plain = set(before["plain_indexes"])
    added = set(after["plain_indexes"]) - before_plain
    assert before_plain <= set(after["plain_indexes"])
    # linea's indexes, less those the platform already had by definition (whatever their names).
    had = {(table, definition) for table, _, definition in before_plain} | {
        (table, definition.split(" USING ", 1)[1]) for table, _, definition in before["unique_indexes"]
    }
    assert {name for _, name, _ in added} == {name for name, spec in LINEA_INDEXES.items() if spec not in had}
    assert set(after["statement_triggers"]) - set(before["statement_triggers"]) == {
        ("audit_logs", "audit_logs_append_only"), ("audit_logs", "audit_logs_no_truncate")
    }


def test_upgrade_adopts_the_platform_database_and_a_second_run_changes_nothing(
    platform: CliRun, platform_url: URL, platform_db: Database
) -> None:
    before, rows_before = catalog(platform_url), _rows(platform_db)
    result = platform("db", "upgrade")
    assert "is at b3e9d4c2a610" in result.stderr
    after = catalog(platform_url)
    _contained(before, after)
    assert _rows(platform_db) == rows_before
    assert platform_db.scalar("SELECT name FROM linea.objects WHERE kind = 'baseline'") == "adopted"
    # Every data-model index exists by its definition, and linea added none that was already there.
    indexes = platform_db.all(
        "SELECT tablename, regexp_replace(indexdef, '^.* USING ', '') AS definition FROM pg_indexes WHERE schemaname = 'public'"
    )
    definitions = [(row.tablename, row.definition) for row in indexes]
    for name, spec in DATA_MODEL_INDEXES.items():
        assert spec in definitions, name
    added = {name for _, name, _ in set(after["plain_indexes"]) - set(before["plain_indexes"])}
    assert "idx_events_slug" not in added and "idx_users_email" not in added and "idx_users_role" in added

    platform("db", "upgrade")
    assert catalog(platform_url) == after
    assert _rows(platform_db) == rows_before


def test_upgrade_sql_prints_the_plan_and_changes_nothing(platform: CliRun, platform_url: URL) -> None:
    before = catalog(platform_url)
    plan = platform("db", "upgrade", "--sql").stdout
    assert "CREATE SCHEMA IF NOT EXISTS linea" in plan
    assert "SET LOCAL lock_timeout = '2000ms'" in plan
    marked = plan.split("-- runs outside a transaction (CONCURRENTLY):")[1]
    assert marked.lstrip().startswith("SET lock_timeout = '2000ms';")
    assert "CREATE INDEX CONCURRENTLY" in marked and "BEGIN" not in marked.split("CREATE INDEX CONCURRENTLY")[0]
    assert 'CREATE INDEX CONCURRENTLY "idx_users_role" ON public."users" USING btree (role)' in plan
    assert 'CREATE INDEX CONCURRENTLY "idx_users_lower_email" ON public."users" USING btree (lower(email))' in plan
    assert "CREATE TABLE" not in plan.replace("CREATE TABLE IF NOT EXISTS linea.objects", "").replace(
        "CREATE TABLE linea.alembic_version", ""
    ).replace("CREATE TABLE linea.imports", "").replace(  # linea's import journal
        "CREATE TABLE linea.stat_", ""
    )  # linea's statistics snapshots
    assert "idx_events_slug" not in plan  # Prisma's events_slug_idx already does that job
    assert catalog(platform_url) == before


def test_downgrade_to_base_removes_only_what_linea_added(
    platform: CliRun, platform_url: URL, platform_db: Database
) -> None:
    before, rows_before = catalog(platform_url), _rows(platform_db)
    platform("db", "upgrade")
    platform("db", "downgrade", "base")
    assert catalog(platform_url) == before
    assert _rows(platform_db) == rows_before
    assert platform_db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'linea'") == 0
    # And linea can adopt it again.
    platform("db", "upgrade")


def test_a_schema_that_differs_is_refused_naming_every_difference(
    platform: CliRun, platform_url: URL, platform_db: Database, tmp_path: Path
) -> None:
    platform_db.execute("ALTER TABLE events DROP COLUMN youtube_url")
    platform_db.execute("ALTER TABLE events ALTER COLUMN capacity TYPE BIGINT")
    platform_db.execute("ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey")
    platform_db.execute("ALTER TABLE sessions ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE")
    before = catalog(platform_url)
    kept = tmp_path / "kept"
    result = platform("db", "upgrade", exit_code=5, env={"LINEA_BACKUP_DIR": str(kept)})
    assert "events.youtube_url: missing" in result.stderr
    assert "events.capacity: type bigint, expected integer" in result.stderr
    assert "sessions.user_id: foreign key to users ON DELETE CASCADE" in result.stderr
    assert "Traceback" not in result.stderr
    assert catalog(platform_url) == before
    assert platform_db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'linea'") == 0
    # Refused before anything would change: no backup taken, however often it is retried.
    again = platform("db", "upgrade", exit_code=5, env={"LINEA_BACKUP_DIR": str(kept)})
    assert "backing up" not in result.stderr + again.stderr and not kept.exists()
    # Every command says the same and changes nothing.
    result = platform("events", "list", exit_code=5)
    assert "not adopted" in result.stderr


def test_what_linea_can_live_with_is_a_note(platform: CliRun, platform_db: Database) -> None:
    platform_db.execute("ALTER TABLE users ADD COLUMN avatar_url TEXT")
    platform_db.execute("CREATE TABLE categories (id TEXT PRIMARY KEY, name TEXT NOT NULL)")
    platform_db.execute("CREATE INDEX users_name_idx ON users (name)")
    result = platform("db", "upgrade")
    assert "note: users.avatar_url: extra column, left alone" in result.stderr
    assert "note: tables linea does not use: categories" in result.stderr
    platform("users", "list")


def test_status_and_doctor_say_who_owns_the_schema(platform: CliRun) -> None:
    status = platform("db", "status", "--json").json
    assert status["schema_owner"] == "prisma (not adopted yet)"
    platform("db", "upgrade")
    status = platform("db", "status", "--json").json
    assert status["schema_owner"] == "prisma (adopted by linea)"
    assert status["prisma_migrations"] == len(MIGRATION_NAMES)
    assert status["last_prisma_migration"] == MIGRATION_NAMES[-1]
    assert status["at_head"] is True
    checks = {c["check"]: c for c in platform("db", "doctor", "--json").json}
    assert checks["schema owner"]["status"] == "OK" and MIGRATION_NAMES[-1] in checks["schema owner"]["detail"]
    assert checks["data model"]["status"] == "OK"
    assert checks["indexes present"]["status"] == "OK"


def test_reset_never_drops_the_platforms_tables(platform: CliRun, platform_db: Database) -> None:
    platform("db", "upgrade")
    result = platform("db", "reset", "--force", "--yes", exit_code=6)
    assert "belong to the platform" in result.stderr
    assert platform_db.count("users") == 4


def test_an_interrupted_concurrent_build_is_reported_and_rebuilt(
    platform: CliRun, platform_url: URL, platform_db: Database
) -> None:
    # A transaction of the platform's that stays open on users: a concurrent build must wait for it.
    blocker = psycopg.connect(libpq_conninfo(platform_url))
    blocker.execute("LOCK TABLE users IN ROW EXCLUSIVE MODE")
    try:
        result = platform(
            "db", "upgrade", exit_code=5,
            env={"LINEA_MIGRATION_LOCK_TIMEOUT": "200ms", "LINEA_MIGRATION_ATTEMPTS": "1"},
        )
        assert "gave up" in result.stderr
    finally:
        blocker.rollback()
        blocker.close()
    assert platform_db.scalar(
        "SELECT NOT x.indisvalid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE i.relname = 'idx_users_role'"
    )
    checks = {c["check"]: c for c in platform("db", "doctor", "--json", exit_code=5).json}
    assert checks["indexes valid"]["status"] == "FAIL" and "idx_users_role" in checks["indexes valid"]["detail"]

    retried = platform("db", "upgrade")
    # It says what it did, not only where the database is now.
    assert "note: repaired: index idx_users_role rebuilt (an interrupted build had left it invalid)\n" in retried.stderr
    assert platform_db.scalar(
        "SELECT x.indisvalid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE i.relname = 'idx_users_role'"
    )
    assert platform_db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_users_role'") == 1
    platform("db", "doctor")


def test_an_invalid_index_at_head_is_rebuilt_by_the_next_upgrade(platform: CliRun, platform_db: Database) -> None:
    platform("db", "upgrade")
    # As an interrupted REINDEX CONCURRENTLY would leave it.
    platform_db.execute(
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'public.idx_sessions_user_id'::regclass"
    )
    assert "idx_sessions_user_id" in platform("db", "upgrade", "--sql").stdout
    at_head = platform("db", "upgrade")
    assert at_head.stderr.startswith("note: repaired: index idx_sessions_user_id rebuilt\n")
    assert "rebuilt" not in platform("db", "upgrade").stderr
    assert platform_db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.idx_sessions_user_id'::regclass")


def test_the_platforms_inserts_go_through_while_linea_builds_an_index(
    platform_url: URL, platform_db: Database, tmp_path: Path
) -> None:
    """While `db upgrade` waits in a concurrent index build, the platform's writers never wait on it.

    A transaction of the platform's stays open on users, so the build on users must wait for it.
    Meanwhile new inserts into every table the upgrade touches must need no lock linea holds: each
    runs with a lock_timeout and would fail with LockNotAvailable if it had to wait at all.
    """
    blocker = psycopg.connect(libpq_conninfo(platform_url))
    blocker.execute("LOCK TABLE users IN ROW EXCLUSIVE MODE")
    url = plain_url(platform_url)
    upgrade = subprocess.Popen(
        [sys.executable, "-m", "linea_cli", "db", "upgrade"],
        env={**os.environ, "LINEA_DATABASE_URL": url, "LINEA_MIGRATION_DATABASE_URL": url,
             "LINEA_DATA_DIR": str(tmp_path), "LINEA_MIGRATION_LOCK_TIMEOUT": "10min"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_lock_waiters(platform_db, "linea/db upgrade", [upgrade])
        assert platform_db.scalar(
            "SELECT query FROM pg_stat_activity WHERE application_name = 'linea/db upgrade' AND wait_event_type = 'Lock'"
        ).startswith("CREATE INDEX CONCURRENTLY")
        with psycopg.connect(libpq_conninfo(platform_url), autocommit=True) as writer:
            writer.execute("SET lock_timeout = '2s'")
            writer.execute(
                "INSERT INTO users (id, email, updated_at) VALUES ('clv0late00000001abcdefghi', 'Late@Example.com', now())"
            )
            writer.execute(
                "INSERT INTO waitlist_entries (id, email, event_id, updated_at) "
                "VALUES ('clv0late00000002abcdefghi', 'Late@Example.com', 'clv0evnt00000001abcdefghi', now())"
            )
            writer.execute(
                "INSERT INTO audit_logs (id, action, resource, resource_id) VALUES ('clv0late00000003abcdefghi', 'x', 'y', 'z')"
            )
            writer.execute(
                "INSERT INTO sessions (id, user_id, token, expires_at, updated_at) "
                "VALUES ('clv0late00000004abcdefghi', 'clv0late00000001abcdefghi', 'late.jwt.token', now(), now())"
            )
    finally:
        blocker.rollback()
        blocker.close()
        _, stderr = upgrade.communicate(timeout=300)
    assert upgrade.returncode == 0, stderr
    assert platform_db.count("users", "id = 'clv0late00000001abcdefghi'") == 1
    assert platform_db.scalar("SELECT bool_and(indisvalid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                              "WHERE i.relname LIKE 'idx_%'")


def test_a_database_made_by_an_older_linea_moves_to_the_new_layout(
    linea: CliRun, empty_database_url: URL, database_url: URL
) -> None:
    """Version table and functions out of public, Prisma's names back on Prisma's indexes."""
    admin_execute(empty_database_url, REFERENCE.joinpath("linea_old_layout.sql").read_text())
    old = Database(empty_database_url)
    old.execute(
        "INSERT INTO users (id, email, role, created_at, updated_at) VALUES ('u1', 'old@example.com', 'ADMIN', now(), now())"
    )
    url = ["--database-url", plain_url(empty_database_url)]
    result = linea(*url, "events", "list", exit_code=5)
    assert "behind" in result.stderr
    linea(*url, "db", "upgrade")
    moved, fresh = catalog(empty_database_url), catalog(database_url)
    for key in ("tables", "columns", "constraints", "unique_indexes", "plain_indexes", "statement_triggers",
                "functions", "linea_functions", "linea_tables"):
        assert moved[key] == fresh[key], key
    assert old.scalar("SELECT name FROM linea.objects WHERE kind = 'baseline'") == "created"
    assert old.count("users") == 1
    old.close()
    linea(*url, "users", "list")


def test_prisma_schema_declares_linea_indexes_and_is_the_platforms_otherwise(linea: CliRun) -> None:
    printed = linea("db", "prisma-schema").stdout
    for name, (table, definition) in LINEA_INDEXES.items():
        if "lower(" in definition:  # an expression: Prisma has no @@index for it
            assert f"// linea: {name} ON {table} USING {definition} (not expressible here)" in printed, name
        else:
            assert f'map: "{name}") // linea' in printed, name
    assert '@@index([ownerId], map: "idx_events_owner_id") // linea' in printed
    platform_schema = REFERENCE.parent.parent / "linea_cli" / "db" / "platform_schema.prisma"
    # A datasource Prisma 6 accepts, as its own templates write it: the reference file has no url.
    assert '\ndatasource db {\n  provider = "postgresql"\n  url      = env("DATABASE_URL")\n}\n' in printed
    assert "DATABASE_URL" not in platform_schema.read_text()
    kept = [line for line in printed.splitlines() if "linea" not in line and "DATABASE_URL" not in line]
    assert kept == [line for line in platform_schema.read_text().splitlines() if "linea" not in line]
    shared = Path(__file__).resolve().parents[2] / "shared" / "docs" / "prisma-reference" / "schema.prisma"
    if shared.exists():
        assert platform_schema.read_text() == shared.read_text()


def test_prisma_schema_from_the_platforms_file_keeps_its_fields_and_is_idempotent(linea: CliRun, tmp_path: Path) -> None:
    theirs = tmp_path / "schema.prisma"
    platform_schema = REFERENCE.parent.parent / "linea_cli" / "db" / "platform_schema.prisma"
    theirs.write_text(platform_schema.read_text().replace(
        '  name      String?   @map("name")\n', '  name      String?   @map("name")\n  phone     String?   @map("phone")\n', 1
    ))
    printed = linea("db", "prisma-schema", "--from", str(theirs)).stdout
    assert "DATABASE_URL" not in printed  # their datasource, as they wrote it
    assert 'phone     String?   @map("phone")' in printed and '@@index([role], map: "idx_users_role") // linea' in printed
    again = tmp_path / "again.prisma"
    again.write_text(printed)
    assert linea("db", "prisma-schema", "--from", str(again)).stdout == printed
    result = linea("db", "prisma-schema", "--from", str(tmp_path / "missing.prisma"), exit_code=1)
    assert "cannot read --from" in result.stderr
