"""Soft delete and restore, the same for every resource: `deleted_at` set or emptied, one audit row
whose change is spelled `{"deleted_at": {"before": ..., "after": ...}}`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from tests.factories import (
    days_from_now,
    make_event,
    make_session,
    make_user,
    make_venue,
    make_waitlist_entry,
)
from tests.harness import CliRun, Database

ISO_MILLISECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


def audit_row(db: Database, resource: str, resource_id: str, action: str) -> Any:
    return db.one(
        "SELECT metadata FROM audit_logs WHERE resource = :resource AND resource_id = :id AND action = :action",
        resource=resource, id=resource_id, action=action,
    ).metadata


def stored(db: Database, table: str, row_id: str) -> datetime | None:
    return db.scalar(f"SELECT deleted_at FROM {table} WHERE id = :id", id=row_id)


def same_moment(text: str, moment: datetime) -> bool:
    """The audit's ISO 8601 text against the stored naive UTC value, to the millisecond it keeps."""
    assert ISO_MILLISECONDS.match(text), text
    return datetime.fromisoformat(text).replace(tzinfo=None) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def arrange(db: Database, kind: str) -> tuple[list[str], str, str, str, dict[str, Any]]:
    """(the delete command, its table, audit resource and action, the details the audit row adds)."""
    if kind == "event":
        event = make_event(db, slug="fest")
        return ["events", "delete", "fest"], "events", "Event", event["id"], {}
    if kind == "venue":
        venue = make_venue(db)
        return ["venues", "delete", venue["id"]], "venues", "Venue", venue["id"], {}
    if kind == "user":
        user = make_user(db, email="ann@example.com")
        return ["users", "delete", "ann@example.com"], "users", "User", user["id"], {"sessions_revoked": 0}
    if kind == "session":
        user = make_user(db)
        login = make_session(db, user=user)
        return ["sessions", "revoke", login["id"]], "sessions", "Session", login["id"], {"user_id": user["id"]}
    event = make_event(db, slug="fest")
    entry = make_waitlist_entry(db, event=event, email="guest@example.net")
    return (["waitlist", "remove", "fest", "guest@example.net"], "waitlist_entries", "WaitlistEntry", entry["id"],
            {"event": "fest", "email": "guest@example.net"})


@pytest.mark.parametrize("kind", ["event", "venue", "user", "session", "waitlist entry"])
def test_every_soft_delete_writes_the_same_audit_entry(linea: CliRun, db: Database, kind: str) -> None:
    command, table, resource, row_id, details = arrange(db, kind)
    linea(*command)
    deleted_at = stored(db, table, row_id)
    assert deleted_at is not None
    action = "REVOKE" if kind == "session" else "DELETE"
    metadata = audit_row(db, resource, row_id, action)
    assert set(metadata) == {"actor", "changes", *details}
    assert metadata["actor"] == "system"
    assert {key: metadata[key] for key in details} == details
    assert list(metadata["changes"]) == ["deleted_at"]
    assert metadata["changes"]["deleted_at"]["before"] is None
    assert same_moment(metadata["changes"]["deleted_at"]["after"], deleted_at)
    assert db.count("audit_logs") == 1
    # A second delete is refused and writes nothing (a deleted user, a removed entry: no longer found).
    linea(*command, exit_code=3 if kind in ("user", "waitlist entry") else 4)
    assert db.count("audit_logs") == 1 and stored(db, table, row_id) == deleted_at


@pytest.mark.parametrize("kind", ["event", "venue", "user"])
def test_every_restore_writes_the_same_audit_entry(linea: CliRun, db: Database, kind: str) -> None:
    deleted_at = days_from_now(-1).replace(microsecond=123000)
    if kind == "event":
        row_id, table, resource = make_event(db, slug="fest", deleted_at=deleted_at)["id"], "events", "Event"
        command = ["events", "restore", "fest"]
    elif kind == "venue":
        row_id, table, resource = make_venue(db, deleted_at=deleted_at)["id"], "venues", "Venue"
        command = ["venues", "restore", row_id]
    else:
        row_id, table, resource = make_user(db, email="ann@example.com", deleted_at=deleted_at)["id"], "users", "User"
        command = ["users", "restore", "ann@example.com"]
    linea(*command)
    assert stored(db, table, row_id) is None
    metadata = audit_row(db, resource, row_id, "RESTORE")
    before = deleted_at.strftime("%Y-%m-%dT%H:%M:%S.123+00:00")
    assert metadata == {"actor": "system", "changes": {"deleted_at": {"before": before, "after": None}}}
    assert "is not deleted" in linea(*command, exit_code=4).stderr
    assert db.count("audit_logs") == 1


def test_an_already_deleted_venue_is_refused_before_its_upcoming_events_are_counted(linea: CliRun, db: Database) -> None:
    venue = make_venue(db, deleted_at=days_from_now(-1))
    make_event(db, slug="soon", venue_id=venue["id"], start_date=days_from_now(3))
    stderr = linea("venues", "delete", venue["id"], exit_code=4).stderr
    assert f"venue {venue['id']} is already deleted" in stderr
    assert db.scalar("SELECT venue_id FROM events WHERE slug = 'soon'") == venue["id"]
    assert db.count("audit_logs") == 0


def test_a_removed_waitlist_entry_added_again_is_restored_with_its_new_status(linea: CliRun, db: Database) -> None:
    event = make_event(db, slug="fest")
    entry = make_waitlist_entry(db, event=event, email="bo@example.com", status="CANCELLED",
                                deleted_at=days_from_now(-1).replace(microsecond=456000))
    before = stored(db, "waitlist_entries", entry["id"])
    linea("waitlist", "add", "fest", "bo@example.com")
    assert stored(db, "waitlist_entries", entry["id"]) is None
    assert db.scalar("SELECT status::text FROM waitlist_entries WHERE id = :id", id=entry["id"]) == "PENDING"
    assert audit_row(db, "WaitlistEntry", entry["id"], "RESTORE") == {
        "actor": "system",
        "changes": {
            "status": {"before": "CANCELLED", "after": "PENDING"},
            "deleted_at": {"before": before.strftime("%Y-%m-%dT%H:%M:%S.456+00:00"), "after": None},
        },
        "event": "fest",
        "email": "bo@example.com",
    }
