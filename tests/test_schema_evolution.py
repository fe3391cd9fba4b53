"""Data protection and inserts on a schema the platform keeps changing.

The platform's Prisma adds columns and tables after linea adopted its database. These tests apply
two later Prisma migrations the way `prisma migrate deploy` does (tests/platform.py,
tests/reference/prisma_migrations/) and run linea as a user would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness import CliRun, Database
from tests.platform import (
    ADAM,
    CATEGORIES_MIGRATION,
    EVENT_SLUG,
    WAITLIST_SOURCE_MIGRATION,
    apply_prisma_migration,
)


@pytest.fixture
def evolved(adopted: CliRun, platform_url: Any) -> CliRun:
    """The platform's database, adopted by linea, then migrated by the platform: users.phone,
    users.locale, categories, events.category_id and tags, notification_preferences."""
    apply_prisma_migration(platform_url, CATEGORIES_MIGRATION)
    return adopted


def _traces(stdout: str) -> set[tuple[str, ...]]:
    """(table, column, row_id, found) from piped output, header left out."""
    return {tuple(line.split("\t")) for line in stdout.splitlines()[1:]}


# --- the migrations are applied as Prisma applies them ---------------------------------------


def test_later_migrations_are_recorded_as_prisma_records_them(evolved: CliRun, platform_db: Database, platform_url: Any) -> None:
    apply_prisma_migration(platform_url, WAITLIST_SOURCE_MIGRATION)
    rows = platform_db.all(
        "SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations "
        "ORDER BY started_at DESC, migration_name DESC LIMIT 2"
    )
    assert {row.migration_name for row in rows} == {CATEGORIES_MIGRATION, WAITLIST_SOURCE_MIGRATION}
    assert all(row.finished_at is not None and row.applied_steps_count == 1 and len(row.checksum) == 64 for row in rows)
    assert platform_db.scalar("SELECT count(*) FROM waitlist_entries WHERE source = 'web'") == 3
    status = evolved("db", "status", "--json").json
    assert status["last_prisma_migration"] == WAITLIST_SOURCE_MIGRATION


# --- a NOT NULL column linea cannot fill ------------------------------------------------------


def test_a_not_null_column_linea_cannot_fill_is_named_and_nothing_is_written(
    evolved: CliRun, platform_db: Database, platform_url: Any, tmp_path: Path
) -> None:
    # Before the platform's third migration, all is well.
    assert evolved("db", "status", "--json").json["unfillable_columns"] == []
    checks = {c["check"]: c for c in evolved("db", "doctor", "--json").json}
    assert checks["columns linea can fill"]["status"] == "OK"
    evolved("waitlist", "add", EVENT_SLUG, "before@example.com")

    apply_prisma_migration(platform_url, WAITLIST_SOURCE_MIGRATION)
    entries = platform_db.count("waitlist_entries")
    audit_rows = platform_db.count("audit_logs")

    status = evolved("db", "status", "--json")
    assert status.json["unfillable_columns"] == ["waitlist_entries.source"]
    assert "waitlist_entries.source" in status.stderr
    doctor = evolved("db", "doctor", "--json", exit_code=5)
    checks = {c["check"]: c for c in doctor.json}
    assert checks["columns linea can fill"]["status"] == "FAIL"
    assert "waitlist_entries.source" in checks["columns linea can fill"]["detail"]
    assert checks["data model"]["status"] == "OK"  # named once, in its own check
    assert "columns linea can fill" in doctor.stderr

    added = evolved("waitlist", "add", EVENT_SLUG, "new.person@example.com", exit_code=5)
    csv = tmp_path / "people.csv"
    csv.write_text("email\nann@example.com\nbob@example.com\n")
    imported = evolved("waitlist", "import", EVENT_SLUG, str(csv), exit_code=5)
    for result in (added, imported):
        lines = result.stderr.strip().splitlines()
        assert lines[0].startswith("error: waitlist_entries.source: NOT NULL without a default"), result.stderr
        assert "nothing was written" in lines[0] and len(lines) <= 2
        assert "Traceback" not in result.stderr and "INSERT" not in result.stderr
    assert platform_db.count("waitlist_entries") == entries
    assert platform_db.count("audit_logs") == audit_rows

    # Once the platform gives it a default, linea writes again.
    platform_db.execute("ALTER TABLE waitlist_entries ALTER COLUMN source SET DEFAULT 'web'")
    evolved("waitlist", "import", EVENT_SLUG, str(csv))
    evolved("waitlist", "add", EVENT_SLUG, "new.person@example.com")
    assert platform_db.count("waitlist_entries") == entries + 3
    assert {c["check"]: c for c in evolved("db", "doctor", "--json").json}["columns linea can fill"]["status"] == "OK"


def test_every_insert_into_a_table_with_an_unfillable_column_is_exit_5(evolved: CliRun, platform_db: Database) -> None:
    platform_db.execute("ALTER TABLE users ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'main'")
    platform_db.execute("ALTER TABLE users ALTER COLUMN tenant_id DROP DEFAULT")
    users = platform_db.count("users")
    result = evolved("--as", ADAM["email"], "users", "create", "someone@example.com", exit_code=5)
    assert result.stderr.startswith("error: users.tenant_id: NOT NULL without a default")
    assert platform_db.count("users") == users
    assert platform_db.count("audit_logs", "action = 'CREATE'") == 0
