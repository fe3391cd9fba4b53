"""`linea venues ...` as admins use it (owners and visitors only read)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import days_from_now, make_event, make_user, make_venue
from tests.harness import CliRun, Database


def as_json(result: Any) -> Any:
    return result.json


def admin(db: Database) -> dict[str, Any]:
    return make_user(db, role="ADMIN")


def venue_audit(db: Database, venue_id: str) -> list[Any]:
    return db.all(
        "SELECT action, user_id, metadata FROM audit_logs WHERE resource = 'Venue' AND resource_id = :id "
        "ORDER BY created_at, id",
        id=venue_id,
    )


CREATE = ("venues", "create", "--name", "Riverside Hall", "--address", "1 Quay Street", "--city", "Lisbon",
          "--country", "PT")


def test_create_stores_the_venue_and_audits_it(linea: CliRun, db: Database) -> None:
    boss = admin(db)
    shown = as_json(linea("--as", boss["email"], *CREATE, "--lat", "38.7071", "--lng", "-9.1355",
                          "--website", "https://riverside.example.com/", "--json"))
    assert (shown["name"], shown["city"], shown["country"]) == ("Riverside Hall", "Lisbon", "PT")
    assert shown["website"] == "https://riverside.example.com/"
    row = db.one("SELECT * FROM venues")
    assert row.id == shown["id"]
    assert (row.name, row.address, row.latitude, row.longitude) == ("Riverside Hall", "1 Quay Street", 38.7071, -9.1355)
    assert row.deleted_at is None and row.updated_at is not None
    (log,) = venue_audit(db, row.id)
    assert log.action == "CREATE" and log.user_id == boss["id"]
    assert log.metadata["changes"]["name"] == {"before": None, "after": "Riverside Hall"}


INVALID = {
    "latitude": (["--lat", "-90.1"], "latitude"),
    "longitude": (["--lng", "181"], "longitude"),
    "website scheme": (["--website", "ftp://files.example.com"], "http"),
    "website no host": (["--website", "https://"], "host"),
    "website bare": (["--website", "riverside.example.com"], "http"),
    "empty name": (["--name", " "], "name"),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_invalid_venues_exit_1_and_write_nothing(linea: CliRun, db: Database, case: str) -> None:
    extra, message = INVALID[case]
    args = list(CREATE)
    if extra[0] in args:
        args[args.index(extra[0]) + 1] = extra[1]
    else:
        args += extra
    result = linea(*args, exit_code=1)
    assert message in result.stderr
    assert db.count("venues") == 0 and db.count("audit_logs") == 0


def test_only_admins_and_the_system_change_venues(linea: CliRun, db: Database) -> None:
    venue = make_venue(db)
    gone = make_venue(db, deleted_at=days_from_now(-1))
    snapshot = db.all("SELECT * FROM venues ORDER BY id")
    for role in ("OWNER", "VISITOR"):
        who = make_user(db, role=role)["email"]
        linea("--as", who, *CREATE, exit_code=6)
        linea("--as", who, "venues", "update", venue["id"], "--name", "Mine", exit_code=6)
        linea("--as", who, "venues", "delete", venue["id"], exit_code=6)
        linea("--as", who, "venues", "restore", gone["id"], exit_code=6)
        # Reading is for everyone.
        assert as_json(linea("--as", who, "venues", "show", venue["id"], "--json"))["id"] == venue["id"]
        assert len(as_json(linea("--as", who, "venues", "list", "--json"))["items"]) == 1
    assert db.all("SELECT * FROM venues ORDER BY id") == snapshot
    assert db.count("audit_logs") == 0
    linea("--as", admin(db)["email"], "venues", "update", venue["id"], "--name", "Admin's")
    assert db.scalar("SELECT name FROM venues WHERE id = :id", id=venue["id"]) == "Admin's"


def test_update_changes_and_clears_fields_with_an_audited_diff(linea: CliRun, db: Database) -> None:
    venue = make_venue(db, name="Old", website="https://old.example.com", updated_at=days_from_now(-2))
    shown = as_json(linea("venues", "update", venue["id"], "--name", "New", "--city", "Porto", "--clear", "website",
                          "--clear", "lat", "--json"))
    assert (shown["name"], shown["city"], shown["website"], shown["latitude"]) == ("New", "Porto", None, None)
    row = db.one("SELECT * FROM venues")
    assert (row.name, row.city, row.website, row.latitude, row.longitude) == ("New", "Porto", None, None, -9.14)
    assert row.updated_at > venue["updated_at"]
    (log,) = venue_audit(db, venue["id"])
    assert log.action == "UPDATE" and log.metadata["actor"] == "system"
    assert log.metadata["changes"] == {
        "name": {"before": "Old", "after": "New"},
        "city": {"before": "Lisbon", "after": "Porto"},
        "latitude": {"before": 38.72, "after": None},
        "website": {"before": "https://old.example.com", "after": None},
    }
    snapshot = db.all("SELECT * FROM venues")
    linea("venues", "update", venue["id"], "--lng", "200", exit_code=1)
    linea("venues", "update", venue["id"], "--website", "javascript:alert(1)", exit_code=1)
    linea("venues", "update", venue["id"], "--clear", "name", exit_code=1)
    linea("venues", "update", "cnosuchvenue", "--name", "X", exit_code=3)
    linea("venues", "update", venue["id"], "--name", "New")  # no change, nothing written
    assert db.all("SELECT * FROM venues") == snapshot
    assert db.count("audit_logs") == 1


def test_show_lists_upcoming_events_only(linea: CliRun, db: Database) -> None:
    venue = make_venue(db)
    make_event(db, slug="later", venue_id=venue["id"], start_date=days_from_now(20))
    make_event(db, slug="soon", venue_id=venue["id"], start_date=days_from_now(2), status="DRAFT")
    make_event(db, slug="over", venue_id=venue["id"], start_date=days_from_now(-2), status="COMPLETED")
    make_event(db, slug="gone", venue_id=venue["id"], start_date=days_from_now(3), deleted_at=days_from_now(-1))
    make_event(db, slug="elsewhere", start_date=days_from_now(3))
    shown = as_json(linea("venues", "show", venue["id"], "--json"))
    assert shown["name"] == venue["name"]
    assert shown["upcoming_event_count"] == 2
    assert [e["slug"] for e in shown["upcoming_events"]] == ["soon", "later"]
    assert shown["upcoming_events"][0]["status"] == "DRAFT"
    assert "soon" in linea("venues", "show", venue["id"]).stdout
    linea("venues", "show", "cnosuchvenue", exit_code=3)


def test_delete_is_refused_with_upcoming_events_unless_forced(linea: CliRun, db: Database) -> None:
    boss = admin(db)
    venue = make_venue(db)
    soon = make_event(db, slug="soon", venue_id=venue["id"], start_date=days_from_now(2))
    later = make_event(db, slug="later", venue_id=venue["id"], start_date=days_from_now(9), status="DRAFT")
    make_event(db, slug="over", venue_id=venue["id"], start_date=days_from_now(-2), status="COMPLETED")
    make_event(db, slug="gone", venue_id=venue["id"], start_date=days_from_now(3), deleted_at=days_from_now(-1))
    me = ("--as", boss["email"], "venues")

    result = linea(*me, "delete", venue["id"], exit_code=4)
    assert "2 upcoming event(s)" in result.stderr and "--force" in result.stderr
    assert db.scalar("SELECT deleted_at FROM venues") is None
    assert db.count("events", "venue_id IS NOT NULL") == 4 and db.count("audit_logs") == 0

    result = linea(*me, "delete", venue["id"], "--force", "--json")
    assert "detached 2 upcoming event(s)" in result.stderr
    shown = as_json(result)
    assert shown["detached_events"] == 2 and shown["deleted_at"] is not None
    assert db.scalar("SELECT deleted_at FROM venues") is not None
    attached = sorted(r.slug for r in db.all("SELECT slug FROM events WHERE venue_id IS NOT NULL"))
    assert attached == ["gone", "over"]  # the past and the deleted keep their history
    (log,) = venue_audit(db, venue["id"])
    assert log.action == "DELETE" and log.user_id == boss["id"] and log.metadata["detached_events"] == 2
    detach_logs = db.all("SELECT resource_id, metadata FROM audit_logs WHERE resource = 'Event' ORDER BY resource_id")
    assert sorted(r.resource_id for r in detach_logs) == sorted([soon["id"], later["id"]])
    assert all(r.metadata["changes"] == {"venue_id": {"before": venue["id"], "after": None}} for r in detach_logs)

    linea(*me, "delete", venue["id"], exit_code=4)
    assert [v["id"] for v in as_json(linea("venues", "list", "--json"))["items"]] == []
    assert [v["id"] for v in as_json(linea("venues", "list", "--include-deleted", "--json"))["items"]] == [venue["id"]]
    linea("venues", "show", venue["id"], exit_code=3)
    # Events cannot be placed at a deleted venue.
    linea("events", "update", "soon", "--venue", venue["id"], exit_code=1)

    shown = as_json(linea(*me, "restore", venue["id"], "--json"))
    assert shown["deleted_at"] is None and db.scalar("SELECT deleted_at FROM venues") is None
    linea(*me, "restore", venue["id"], exit_code=4)
    assert [row.action for row in venue_audit(db, venue["id"])] == ["DELETE", "RESTORE"]


def test_delete_without_upcoming_events_needs_no_force(linea: CliRun, db: Database) -> None:
    venue = make_venue(db)
    make_event(db, venue_id=venue["id"], start_date=days_from_now(-30), status="COMPLETED")
    result = linea("venues", "delete", venue["id"])
    assert "detached" not in result.stderr
    assert db.scalar("SELECT deleted_at FROM venues") is not None
    assert db.count("events", "venue_id IS NOT NULL") == 1


def test_list_filters(linea: CliRun, db: Database) -> None:
    make_venue(db, name="Alpha Hall", city="Lisbon", country="PT", address="1 Rua Augusta")
    make_venue(db, name="Beta Loft", city="Porto", country="PT", address="9 Rua das Flores")
    make_venue(db, name="Gamma Garden", city="Berlin", country="DE", address="5 Unter den Linden")
    make_venue(db, name="Delta 100% Club", city="lisbon", country="pt", address="2 Rua Nova",
               deleted_at=days_from_now(-1))

    def listed(*args: str) -> list[str]:
        return [v["name"] for v in as_json(linea("venues", "list", *args, "--json"))["items"]]

    assert listed() == ["Alpha Hall", "Beta Loft", "Gamma Garden"]
    assert listed("--include-deleted") == ["Alpha Hall", "Beta Loft", "Delta 100% Club", "Gamma Garden"]
    assert listed("--city", "LISBON", "--include-deleted") == ["Alpha Hall", "Delta 100% Club"]
    assert listed("--country", "pt") == ["Alpha Hall", "Beta Loft"]
    assert listed("--search", "rua") == ["Alpha Hall", "Beta Loft"]  # address, any case
    assert listed("--search", "garden") == ["Gamma Garden"]  # name
    assert listed("--search", "%", "--include-deleted") == ["Delta 100% Club"]  # literal wildcard


def test_pagination_loses_and_repeats_nothing_while_rows_are_inserted(linea: CliRun, db: Database) -> None:
    original = {make_venue(db, name=f"Venue {n:02d}")["id"] for n in range(12)}
    make_venue(db, name="Venue 05")  # a duplicate name: the id breaks the tie
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = as_json(linea("venues", "list", "--limit", "4", "--json", *(["--after", cursor] if cursor else [])))
        seen.extend(v["id"] for v in page["items"])
        pages += 1
        make_venue(db, name=f"Venue 00-new-{pages}")  # sorts before every cursor after page 1
        make_venue(db, name=f"Venue 99-new-{pages}")  # sorts after
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert original <= set(seen)
    assert pages >= 4
    table = linea("venues", "list", "--limit", "2")
    assert "more: --after" in table.stderr


def test_an_event_created_while_its_venue_is_being_deleted_sees_the_delete(
    db: Database, database_url: Any, tmp_path: Any
) -> None:
    import os
    import subprocess
    import sys

    import psycopg

    from tests.harness import ROOT, plain_url, wait_for_lock_waiters

    owner = make_user(db, role="OWNER")
    venue = make_venue(db)
    with psycopg.connect(plain_url(database_url)) as deleting:
        # A `venues delete` in flight: the venue row is locked and deleted, not yet committed.
        deleting.execute("SELECT id FROM venues WHERE id = %s FOR UPDATE", (venue["id"],))
        deleting.execute("UPDATE venues SET deleted_at = now() AT TIME ZONE 'UTC' WHERE id = %s", (venue["id"],))
        env = {**os.environ, "LINEA_DATABASE_URL": plain_url(database_url), "LINEA_DATA_DIR": str(tmp_path / "data"),
               "PYTHONPATH": str(ROOT), "LINEA_ACTOR": owner["email"], "LINEA_LOCK_TIMEOUT": "0"}
        create = subprocess.Popen(
            [sys.executable, "-m", "linea_cli", "events", "create", "--title", "Late", "--start", "2031-01-01",
             "--venue", venue["id"]],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        wait_for_lock_waiters(db, "linea/%", [create])
        deleting.commit()
    _, stderr = create.communicate(timeout=60)
    assert create.returncode == 1, stderr
    assert "deleted" in stderr
    assert db.count("events") == 0
