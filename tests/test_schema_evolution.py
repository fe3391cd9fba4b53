"""Data protection and inserts on a schema the platform keeps changing.

The platform's Prisma adds columns and tables after linea adopted its database. These tests apply
two later Prisma migrations the way `prisma migrate deploy` does (tests/platform.py,
tests/reference/prisma_migrations/) and run linea as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.harness import CliRun, Database
from tests.platform import (
    ADAM,
    CATEGORIES_MIGRATION,
    EVENT_ID,
    EVENT_SLUG,
    OLGA,
    VERA,
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
    # Off the embedded server, an import into a waitlist with entries first names the database it changes.
    assert imported.stderr.startswith(f"import into the waitlist of {EVENT_SLUG} (3 entries) in database ")
    for result in (added, imported):
        lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("import into ")]
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


# --- erasure and its proof on columns and tables linea does not model --------------------------


def _plant_vera_everywhere(platform_db: Database) -> None:
    """What the platform's newer code stores about Vera, in columns and tables linea does not model."""
    platform_db.execute("UPDATE users SET phone = '+351 912 345 678', locale = 'pt' WHERE id = :id", id=VERA["id"])
    platform_db.execute("UPDATE users SET phone = '+351 900 000 000' WHERE id = :id", id=OLGA["id"])
    platform_db.execute(
        "INSERT INTO notification_preferences (id, user_id, digest_address, quiet_hours, enabled) VALUES "
        "('np-vera', :vera, 'vera.digest@mail.example', '22:00-07:00', false), "
        "('np-olga', :olga, 'olga.digest@mail.example', '23:00-06:00', false)",
        vera=VERA["id"], olga=OLGA["id"],
    )
    platform_db.execute(
        "INSERT INTO categories (id, name, created_by) VALUES "
        "('cat-jazz', 'Jazz', ' VERA.visitor@example.COM'), ('cat-talks', 'Talks', :olga)",
        olga=OLGA["email"],
    )
    platform_db.execute(
        "UPDATE events SET category_id = 'cat-jazz', tags = ARRAY['music', 'night'] WHERE id = :id", id=EVENT_ID
    )


def test_anonymize_erases_what_the_platform_added_and_verify_checks_the_persons_rows(
    evolved: CliRun, platform_db: Database
) -> None:
    _plant_vera_everywhere(platform_db)
    # A default with a colon in it, as a time of day has.
    platform_db.execute("ALTER TABLE users ADD COLUMN digest_at TEXT NOT NULL DEFAULT '08:00'")
    platform_db.execute("UPDATE users SET digest_at = '06:30' WHERE id = :id", id=VERA["id"])

    # Before the erasure, the proof names the platform's columns on her rows, not only identifiers.
    before = _traces(evolved("users", "verify-erased", VERA["id"], exit_code=7).stdout)
    assert {
        ("users", "digest_at", VERA["id"], "data in a column linea does not know"),
        ("users", "phone", VERA["id"], "data in a column linea does not know"),
        ("users", "locale", VERA["id"], "data in a column linea does not know"),
        ("notification_preferences", "digest_address", "np-vera", "data in a column linea does not know"),
        ("notification_preferences", "quiet_hours", "np-vera", "data in a column linea does not know"),
        ("notification_preferences", "enabled", "np-vera", "data in a column linea does not know"),
        ("categories", "created_by", "cat-jazz", "address"),
    } <= before

    record = evolved("users", "anonymize", VERA["email"], "--yes", "--json").json
    assert record["platform_rows_erased"] == 2
    vera = platform_db.one("SELECT email, phone, locale, digest_at FROM users WHERE id = :id", id=VERA["id"])
    assert (vera.phone, vera.locale, vera.digest_at) == (None, "en", "08:00") and vera.email.startswith("deleted-")
    prefs = platform_db.one("SELECT * FROM notification_preferences WHERE id = 'np-vera'")
    assert (prefs.user_id, prefs.digest_address, prefs.quiet_hours, prefs.enabled) == (VERA["id"], None, None, True)
    assert platform_db.scalar("SELECT created_by FROM categories WHERE id = 'cat-jazz'") is None
    # Everyone else's rows stay as they were; no row was removed.
    olga = platform_db.one("SELECT phone FROM users WHERE id = :id", id=OLGA["id"])
    assert olga.phone == "+351 900 000 000"
    assert platform_db.one("SELECT digest_address FROM notification_preferences WHERE id = 'np-olga'").digest_address
    assert platform_db.scalar("SELECT created_by FROM categories WHERE id = 'cat-talks'") == OLGA["email"]
    assert platform_db.count("categories") == 2 and platform_db.count("notification_preferences") == 2
    assert platform_db.scalar("SELECT category_id FROM events WHERE id = :id", id=EVENT_ID) == "cat-jazz"
    anonymize_row = platform_db.one("SELECT metadata FROM audit_logs WHERE action = 'ANONYMIZE'")
    assert anonymize_row.metadata["platform_rows_erased"] == 2

    assert evolved("users", "verify-erased", VERA["email"]).stdout.startswith("OK: ")
    # By id alone the rows are checked (no trace), but the erased addresses cannot be searched for.
    by_id = evolved("users", "verify-erased", VERA["id"], exit_code=8)
    assert by_id.stdout == "" and "not searched for: the addresses and names user" in by_id.stderr
    again = evolved("users", "anonymize", VERA["id"], "--yes", "--json").json
    assert again["changed"] is False

    # The platform's next sync writes the phone back on the erased row: the proof says so.
    platform_db.execute("UPDATE users SET phone = '+351 912 345 678' WHERE id = :id", id=VERA["id"])
    result = evolved("users", "verify-erased", VERA["id"], exit_code=7)
    assert _traces(result.stdout) == {("users", "phone", VERA["id"], "data in a column linea does not know")}
    assert "+351" not in result.stdout + result.stderr


def test_a_column_linea_cannot_erase_is_named_as_remaining(evolved: CliRun, platform_db: Database, platform_url: Any) -> None:
    apply_prisma_migration(platform_url, WAITLIST_SOURCE_MIGRATION)
    platform_db.execute("UPDATE users SET phone = '+351 912 345 678' WHERE id = :id", id=VERA["id"])
    result = evolved("users", "anonymize", VERA["email"], "--yes", exit_code=7)
    details = sorted(line.strip() for line in result.stderr.splitlines() if line.startswith("  "))
    # Her entries: the one with her id, and the one under her address on the past event.
    assert details == [
        "waitlist_entries.source row clv0wait00000001abcdefghi: data in a column linea cannot erase (NOT NULL without a default)",
        "waitlist_entries.source row clv0wait00000003abcdefghi: data in a column linea cannot erase (NOT NULL without a default)",
    ]
    # The rest of the erasure is committed.
    assert platform_db.scalar("SELECT phone FROM users WHERE id = :id", id=VERA["id"]) is None
    assert platform_db.count("waitlist_entries", "id LIKE 'clv0wait0000000_abcdefghi' AND status = 'CANCELLED' "
                             "AND email LIKE 'deleted-%'") == 2
    assert platform_db.count("audit_logs", "action = 'ANONYMIZE'") == 1
    by_id = evolved("users", "verify-erased", VERA["id"], exit_code=7)
    assert {t[:2] for t in _traces(by_id.stdout)} == {("waitlist_entries", "source")}
    # Her address no longer leads to those rows; a proof by address alone must not say OK.
    by_address = evolved("users", "verify-erased", VERA["email"], exit_code=8)
    assert by_address.stdout == ""
    assert ("not searched for: whether the rows of this address's erased user still hold data: 2 value(s) on "
            "erased people's rows (waitlist_entries.source) may be theirs") in by_address.stderr

    # The platform shows that the column holds no personal data: then it is not a trace.
    platform_db.execute("COMMENT ON COLUMN waitlist_entries.source IS 'linea: not personal (the sign-up channel)'")
    assert evolved("users", "verify-erased", VERA["email"]).stdout.startswith("OK: ")
    assert "not searched for: the addresses" in evolved("users", "verify-erased", VERA["id"], exit_code=8).stderr
    assert evolved("users", "anonymize", VERA["id"], "--yes", "--json").json["changed"] is False


# --- export --------------------------------------------------------------------------------


def test_export_holds_every_column_of_every_row_of_the_person(
    evolved: CliRun, platform_db: Database, platform_url: Any
) -> None:
    apply_prisma_migration(platform_url, WAITLIST_SOURCE_MIGRATION)
    _plant_vera_everywhere(platform_db)
    document = evolved("users", "export", VERA["email"]).json
    assert document["user"]["phone"] == "+351 912 345 678" and document["user"]["locale"] == "pt"
    assert set(document["user"]) >= {"id", "email", "name", "role", "created_at", "updated_at", "deleted_at"}
    assert {e["id"]: e["source"] for e in document["waitlist_entries"]} == {
        "clv0wait00000001abcdefghi": "web", "clv0wait00000003abcdefghi": "web",
    }
    assert all("token" not in s and "fingerprint" in s for s in document["sessions"])
    assert document["platform_rows"]["notification_preferences"] == [
        {"id": "np-vera", "user_id": VERA["id"], "digest_address": "vera.digest@mail.example",
         "quiet_hours": "22:00-07:00", "enabled": False, "created_at": document["platform_rows"]["notification_preferences"][0]["created_at"]},
    ]
    assert [row["id"] for row in document["platform_rows"]["categories"]] == ["cat-jazz"]
    assert "_prisma_migrations" not in document["platform_rows"]

    # An owner's events are exported whole, the platform's columns included.
    olga = evolved("users", "export", OLGA["id"]).json
    launch = next(e for e in olga["owned_events"] if e["id"] == EVENT_ID)
    assert (launch["category_id"], launch["tags"]) == ("cat-jazz", ["music", "night"])
    assert [row["id"] for row in olga["platform_rows"]["categories"]] == ["cat-talks"]
    counts = platform_db.all("SELECT metadata FROM audit_logs WHERE action = 'EXPORT' ORDER BY created_at")
    assert counts[0].metadata["counts"]["platform_rows.notification_preferences"] == 1
    assert "vera" not in json.dumps(counts[0].metadata).lower()


def test_export_finds_entries_under_a_past_address(evolved: CliRun, platform_db: Database) -> None:
    evolved("waitlist", "add", EVENT_SLUG, "old.address@example.org")
    evolved("users", "create", "old.address@example.org", "--name", "Paula Past")
    evolved("users", "update", "old.address@example.org", "--email", "new.address@example.org")
    entry_id = platform_db.scalar("SELECT id FROM waitlist_entries WHERE email = 'old.address@example.org'")
    document = evolved("users", "export", "new.address@example.org").json
    assert [e["id"] for e in document["waitlist_entries"]] == [entry_id]
    # What the export lists is what the erasure erases.
    evolved("users", "anonymize", "new.address@example.org", "--yes")
    assert platform_db.scalar("SELECT email FROM waitlist_entries WHERE id = :id", id=entry_id).startswith("deleted-")


def test_verify_erased_by_id_current_or_past_address_searches_the_same(evolved: CliRun, platform_db: Database) -> None:
    evolved("users", "create", "first.address@example.org", "--name", "Rita Renamed")
    evolved("users", "update", "first.address@example.org", "--email", "second.address@example.org")
    user_id = platform_db.scalar("SELECT id FROM users WHERE email = 'second.address@example.org'")
    platform_db.execute(
        "INSERT INTO categories (id, name, created_by) VALUES ('cat-old', 'Old', 'first.address@example.org')"
    )
    platform_db.execute("CREATE TABLE crm_notes (id TEXT PRIMARY KEY, body TEXT)")
    platform_db.execute("INSERT INTO crm_notes VALUES ('n1', 'Rita Renamed called about second.address@example.org')")
    by_id = _traces(evolved("users", "verify-erased", user_id, exit_code=7).stdout)
    assert ("categories", "created_by", "cat-old", "address") in by_id
    assert ("crm_notes", "body", "n1", "name, address") in by_id or ("crm_notes", "body", "n1", "address, name") in by_id
    for reference in ("second.address@example.org", "First.Address@example.org"):
        assert _traces(evolved("users", "verify-erased", reference, exit_code=7).stdout) == by_id, reference


def test_an_address_in_a_column_linea_does_not_know_on_its_own_tables(evolved: CliRun, platform_db: Database) -> None:
    platform_db.execute("ALTER TABLE events ADD COLUMN contact_email TEXT")
    platform_db.execute("UPDATE events SET contact_email = :email WHERE id = :id", email=VERA["email"].upper(), id=EVENT_ID)
    document = evolved("users", "export", VERA["email"]).json
    assert [row["id"] for row in document["platform_rows"]["events"]] == [EVENT_ID]
    evolved("users", "anonymize", VERA["email"], "--yes")
    event = platform_db.one("SELECT contact_email, title FROM events WHERE id = :id", id=EVENT_ID)
    assert (event.contact_email, event.title) == (None, "Platform Launch Party")


def test_an_address_is_emptied_only_in_the_columns_that_hold_it(evolved: CliRun, platform_db: Database) -> None:
    platform_db.execute(
        "CREATE TABLE referrals (id TEXT PRIMARY KEY, referrer TEXT NOT NULL DEFAULT 'unknown', referred TEXT, "
        "note TEXT, kind TEXT NOT NULL)"
    )
    platform_db.execute(
        "INSERT INTO referrals VALUES ('r1', :vera, :olga, 'met at 10:30', 'a'), ('r2', :olga, :vera, 'n', 'b')",
        vera=VERA["email"].lower(), olga=OLGA["email"],
    )
    document = evolved("users", "export", VERA["email"]).json
    assert [row["id"] for row in document["platform_rows"]["referrals"]] == ["r1", "r2"]
    evolved("users", "anonymize", VERA["email"], "--yes")
    rows = {row.id: tuple(row)[1:] for row in platform_db.all("SELECT * FROM referrals ORDER BY id")}
    assert rows == {"r1": ("unknown", OLGA["email"], "met at 10:30", "a"), "r2": (OLGA["email"], None, "n", "b")}


def test_rows_pointing_at_the_user_are_found_in_any_schema(evolved: CliRun, platform_db: Database) -> None:
    platform_db.execute(
        "CREATE SCHEMA crm; CREATE TABLE crm.user_notes (user_id TEXT NOT NULL REFERENCES users(id), n INT, "
        "note TEXT, PRIMARY KEY (user_id, n))"
    )
    platform_db.execute("INSERT INTO crm.user_notes VALUES (:vera, 1, 'prefers aisle seats'), (:olga, 1, 'vip')",
                        vera=VERA["id"], olga=OLGA["id"])
    document = evolved("users", "export", VERA["id"]).json
    assert document["platform_rows"]["crm.user_notes"] == [{"user_id": VERA["id"], "n": 1, "note": "prefers aisle seats"}]
    before = _traces(evolved("users", "verify-erased", VERA["email"], exit_code=7).stdout)
    assert ("crm.user_notes", "note", f"{VERA['id']},1", "data in a column linea does not know") in before
    evolved("users", "anonymize", VERA["id"], "--yes")
    assert platform_db.all("SELECT user_id, note FROM crm.user_notes ORDER BY user_id") == [
        (VERA["id"], None), (OLGA["id"], "vip"),
    ]
    evolved("users", "verify-erased", VERA["email"])
