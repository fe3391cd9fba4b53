"""`linea events ...` as admins, owners, visitors and cron use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from linea_cli.timeutil import utc_now
from tests.factories import days_from_now, make_event, make_user, make_venue, make_waitlist_entry
from tests.harness import ROOT, CliRun, Database, plain_url


def as_json(result: Any) -> Any:
    return result.json


def admin(db: Database) -> dict[str, Any]:
    return make_user(db, role="ADMIN")


def counts(db: Database) -> tuple[int, int]:
    return db.count("events"), db.count("audit_logs")


def audit_rows(db: Database, resource_id: str) -> list[Any]:
    return db.all(
        "SELECT action, user_id, metadata FROM audit_logs WHERE resource = 'Event' AND resource_id = :id "
        "ORDER BY created_at, id",
        id=resource_id,
    )


# ------------------------------------------------------------------------------------------ create


def test_create_stores_the_event_and_audits_it(linea: CliRun, db: Database) -> None:
    boss = admin(db)
    owner = make_user(db, role="OWNER", email="olga@example.com")
    venue = make_venue(db)
    result = linea(
        "--as", boss["email"], "events", "create", "--title", "Summer Fest", "--start", "2031-07-01T18:00",
        "--end", "2031-07-01T23:30+00:00", "--owner", "OLGA@example.com", "--venue", venue["id"], "--capacity", "120",
        "--description", "Music by the river", "--youtube-url", "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "--lat", "38.7", "--lng", "-9.1", "--zoom", "14", "--json",
    )
    shown = as_json(result)
    assert shown["slug"] == "summer-fest"
    assert shown["status"] == "DRAFT"
    assert shown["start_date"] == "2031-07-01T18:00:00.000+00:00"
    assert shown["owner_email"] == "olga@example.com"
    assert shown["venue_name"] == venue["name"]
    assert shown["places_left"] == 120
    row = db.one("SELECT * FROM events")
    assert row.id == shown["id"]
    assert (row.title, row.slug, row.status, row.capacity) == ("Summer Fest", "summer-fest", "DRAFT", 120)
    assert row.start_date == datetime(2031, 7, 1, 18, 0)
    assert row.end_date == datetime(2031, 7, 1, 23, 30)
    assert (row.owner_id, row.venue_id) == (owner["id"], venue["id"])
    assert (row.map_lat, row.map_lng, row.map_zoom) == (38.7, -9.1, 14)
    assert row.deleted_at is None
    (log,) = audit_rows(db, row.id)
    assert log.action == "CREATE" and log.user_id == boss["id"]
    assert log.metadata["actor"] == "user"
    assert log.metadata["changes"]["title"] == {"before": None, "after": "Summer Fest"}
    assert log.metadata["changes"]["status"]["after"] == "DRAFT"


def test_create_as_the_system_needs_an_owner_and_says_system_in_the_audit(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    linea("events", "create", "--title", "Cron Fest", "--start", "2031-01-01", exit_code=1)
    assert counts(db) == (0, 0)
    shown = as_json(linea("events", "create", "--title", "Cron Fest", "--start", "2031-01-01", "--owner", owner["email"], "--json"))
    (log,) = audit_rows(db, shown["id"])
    assert log.user_id is None and log.metadata["actor"] == "system"


def test_naive_dates_use_the_configured_time_zone(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    paris = {"LINEA_TIMEZONE": "Europe/Paris"}
    linea("--as", owner["email"], "events", "create", "--title", "A", "--start", "2031-07-01T18:00", env=paris)
    linea("--as", owner["email"], "events", "create", "--title", "B", "--start", "2031-07-01T18:00-04:00", env=paris)
    linea("--as", owner["email"], "events", "create", "--title", "C", "--start", "2031-01-15", env=paris)
    stored = dict(db.all("SELECT slug, start_date FROM events"))
    assert stored == {
        "a": datetime(2031, 7, 1, 16, 0),  # CEST is UTC+2
        "b": datetime(2031, 7, 1, 22, 0),
        "c": datetime(2031, 1, 14, 23, 0),  # CET is UTC+1
    }


def test_slugs_get_a_numeric_suffix_and_explicit_taken_slugs_conflict(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    me = ("--as", owner["email"], "events", "create", "--start", "2031-07-01")
    slugs = [as_json(linea(*me, "--title", "Summer Fest!", "--json"))["slug"] for _ in range(3)]
    assert slugs == ["summer-fest", "summer-fest-2", "summer-fest-3"]
    # A deleted event keeps its slug: it may be restored.
    db.execute("UPDATE events SET deleted_at = now() WHERE slug = 'summer-fest-2'")
    assert as_json(linea(*me, "--title", "summer fest", "--json"))["slug"] == "summer-fest-4"
    assert as_json(linea(*me, "--title", "Été à Paris", "--json"))["slug"] == "ete-a-paris"

    before = counts(db)
    result = linea(*me, "--title", "Other", "--slug", "summer-fest", exit_code=4)
    assert "summer-fest" in result.stderr and "taken" in result.stderr
    result = linea(*me, "--title", "Other", "--slug", "Not A Slug", exit_code=1)
    assert counts(db) == before
    assert as_json(linea(*me, "--title", "Other", "--slug", "my-own-slug", "--json"))["slug"] == "my-own-slug"


def test_two_processes_creating_the_same_title_at_once_both_succeed(
    database_url: URL, db: Database, tmp_path: Path
) -> None:
    owner = make_user(db, role="OWNER")
    env = {
        **os.environ, "LINEA_DATABASE_URL": plain_url(database_url), "LINEA_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT), "LINEA_ACTOR": owner["email"],
    }
    args = [sys.executable, "-m", "linea_cli", "events", "create", "--title", "Race Night", "--start", "2031-05-05",
            "--json"]
    processes = [
        subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (_stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    slugs = sorted(json.loads(stdout)["slug"] for stdout, _ in outputs)
    assert slugs == ["race-night", "race-night-2", "race-night-3", "race-night-4"]
    assert sorted(r.slug for r in db.all("SELECT slug FROM events")) == slugs
    assert db.count("audit_logs", "action = 'CREATE' AND resource = 'Event'") == 4


YOUTUBE_OK = [
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://youtube.com/watch?v=dQw4w9WgXcQ&t=42",
    "https://m.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://youtu.be/dQw4w9WgXcQ",
    "https://youtu.be/dQw4w9WgXcQ?si=abc",
    "https://www.youtube.com/embed/dQw4w9WgXcQ",
    "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
]


@pytest.mark.parametrize("url", YOUTUBE_OK)
def test_youtube_watch_share_and_embed_links_are_accepted(linea: CliRun, db: Database, url: str) -> None:
    owner = make_user(db, role="OWNER")
    linea("--as", owner["email"], "events", "create", "--title", "Clip", "--start", "2031-01-01", "--youtube-url", url)
    assert db.scalar("SELECT youtube_url FROM events") == url


INVALID_CREATES = {
    "end before start": (["--start", "2031-07-02", "--end", "2031-07-01T23:00"], "before the start"),
    "negative capacity": (["--capacity", "-1"], "capacity"),
    "latitude": (["--lat", "90.5"], "latitude"),
    "longitude": (["--lng", "-180.01"], "longitude"),
    "zoom high": (["--zoom", "23"], "zoom"),
    "zoom low": (["--zoom", "-1"], "zoom"),
    "youtube other site": (["--youtube-url", "https://vimeo.com/12345"], "YouTube"),
    "youtube no video": (["--youtube-url", "https://www.youtube.com/watch?v=short"], "YouTube"),
    "youtube channel": (["--youtube-url", "https://www.youtube.com/@linea"], "YouTube"),
    "youtube not a url": (["--youtube-url", "dQw4w9WgXcQ"], "YouTube"),
    "owner missing": (["--owner", "ghost@example.com"], "does not exist"),
    "owner visitor": (["--owner", "VISITOR"], "VISITOR"),
    "venue missing": (["--venue", "cnosuchvenue"], "does not exist"),
    "venue deleted": (["--venue", "DELETED_VENUE"], "deleted"),
    "bad date": (["--start", "next tuesday"], "ISO 8601"),
    "empty title": (["--title", "  "], "title"),
}


@pytest.mark.parametrize("case", INVALID_CREATES, ids=list(INVALID_CREATES))
def test_invalid_creates_exit_1_and_write_nothing(linea: CliRun, db: Database, case: str) -> None:
    boss = admin(db)
    visitor = make_user(db, role="VISITOR")
    gone = make_venue(db, deleted_at=days_from_now(-1))
    extra, message = INVALID_CREATES[case]
    extra = [{"VISITOR": visitor["email"], "DELETED_VENUE": gone["id"]}.get(word, word) for word in extra]
    base = {"--title": "Valid", "--start": "2031-07-01", "--owner": boss["email"]}
    for option, value in zip(extra[::2], extra[1::2], strict=True):
        base[option] = value
    args = [word for pair in base.items() for word in pair]
    result = linea("--as", boss["email"], "events", "create", *args, exit_code=1)
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert counts(db) == (0, 0)


# -------------------------------------------------------------------------------------- permissions


def test_permissions_for_create(linea: CliRun, db: Database) -> None:
    visitor = make_user(db, role="VISITOR")
    owner = make_user(db, role="OWNER")
    other = make_user(db, role="OWNER")
    linea("--as", visitor["email"], "events", "create", "--title", "X", "--start", "2031-01-01", exit_code=6)
    result = linea("--as", owner["email"], "events", "create", "--title", "X", "--start", "2031-01-01",
                   "--owner", other["email"], exit_code=6)
    assert "may only create events they own" in result.stderr
    assert counts(db) == (0, 0)
    shown = as_json(linea("--as", owner["email"], "events", "create", "--title", "X", "--start", "2031-01-01", "--json"))
    assert shown["owner_id"] == owner["id"]


@pytest.mark.parametrize(
    "command",
    [
        ["update", "EVENT", "--title", "Hijacked"],
        ["publish", "EVENT"],
        ["cancel", "EVENT"],
        ["complete", "EVENT"],
        ["delete", "EVENT"],
        ["restore", "EVENT"],
    ],
    ids=lambda command: command[0],
)
def test_owners_and_visitors_may_not_change_others_events(linea: CliRun, db: Database, command: list[str]) -> None:
    owner = make_user(db, role="OWNER")
    intruder = make_user(db, role="OWNER")
    visitor = make_user(db, role="VISITOR")
    status = "DRAFT" if command[0] in ("publish", "cancel") else "PUBLISHED"
    event = make_event(db, owner=owner, status=status,
                       deleted_at=days_from_now(-1) if command[0] == "restore" else None)
    args = [event["slug"] if word == "EVENT" else word for word in command]
    before = db.one("SELECT title, status::text, deleted_at, updated_at FROM events")
    for who in (intruder, visitor):
        result = linea("--as", who["email"], "events", *args, exit_code=6)
        assert who["email"] in result.stderr
    assert db.one("SELECT title, status::text, deleted_at, updated_at FROM events") == before
    assert db.count("audit_logs") == 0
    # The owner may; so may an admin (checked elsewhere).
    linea("--as", owner["email"], "events", *args)
    assert db.count("audit_logs") == 1


def test_owners_may_not_hand_their_events_to_someone_else(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    other = make_user(db, role="OWNER")
    boss = admin(db)
    event = make_event(db, owner=owner)
    linea("--as", owner["email"], "events", "update", event["slug"], "--owner", other["email"], exit_code=6)
    assert db.scalar("SELECT owner_id FROM events") == owner["id"]
    linea("--as", boss["email"], "events", "update", event["slug"], "--owner", other["email"])
    assert db.scalar("SELECT owner_id FROM events") == other["id"]


def test_visitors_may_read(linea: CliRun, db: Database) -> None:
    visitor = make_user(db, role="VISITOR")
    event = make_event(db)
    assert as_json(linea("--as", visitor["email"], "events", "show", event["slug"], "--json"))["id"] == event["id"]
    assert len(as_json(linea("--as", visitor["email"], "events", "list", "--json"))["items"]) == 1


# ------------------------------------------------------------------------------------------- update


def test_update_changes_fields_audits_before_and_after_and_keeps_the_slug(linea: CliRun, db: Database) -> None:
    boss = admin(db)
    venue = make_venue(db)
    event = make_event(db, title="Old Title", slug="old-title", capacity=50, youtube_url="https://youtu.be/dQw4w9WgXcQ",
                       updated_at=days_from_now(-3))
    shown = as_json(linea(
        "--as", boss["email"], "events", "update", "old-title", "--title", "New Title", "--capacity", "80",
        "--venue", venue["id"], "--clear", "youtube-url", "--json",
    ))
    assert (shown["title"], shown["slug"], shown["capacity"], shown["youtube_url"]) == ("New Title", "old-title", 80, None)
    row = db.one("SELECT * FROM events")
    assert (row.title, row.slug, row.capacity, row.venue_id, row.youtube_url) == (
        "New Title", "old-title", 80, venue["id"], None)
    assert row.updated_at > event["updated_at"]
    (log,) = audit_rows(db, event["id"])
    assert log.action == "UPDATE" and log.user_id == boss["id"]
    assert log.metadata["changes"] == {
        "title": {"before": "Old Title", "after": "New Title"},
        "capacity": {"before": 50, "after": 80},
        "venue_id": {"before": None, "after": venue["id"]},
        "youtube_url": {"before": "https://youtu.be/dQw4w9WgXcQ", "after": None},
    }

    shown = as_json(linea("--as", boss["email"], "events", "update", "old-title", "--slug", "new-title", "--json"))
    assert shown["slug"] == "new-title"
    assert db.scalar("SELECT slug FROM events") == "new-title"
    # A change to nothing writes nothing.
    linea("--as", boss["email"], "events", "update", "new-title", "--capacity", "80")
    assert db.count("audit_logs") == 2


def test_invalid_updates_exit_with_their_codes_and_write_nothing(linea: CliRun, db: Database) -> None:
    start = days_from_now(10).replace(microsecond=0)
    event = make_event(db, slug="fest", start_date=start)
    make_event(db, slug="taken")
    snapshot = db.all("SELECT * FROM events ORDER BY id")
    linea("events", "update", "fest", "--end", (start - timedelta(hours=1)).isoformat(), exit_code=1)
    linea("events", "update", "fest", "--capacity", "-5", exit_code=1)
    linea("events", "update", "fest", "--zoom", "30", exit_code=1)
    linea("events", "update", "fest", "--clear", "title", exit_code=1)
    linea("events", "update", "fest", "--capacity", "5", "--clear", "capacity", exit_code=1)
    linea("events", "update", "fest", "--slug", "taken", exit_code=4)
    linea("events", "update", "nope", "--capacity", "5", exit_code=3)
    assert db.all("SELECT * FROM events ORDER BY id") == snapshot
    assert db.count("audit_logs") == 0
    del event


def test_a_capacity_below_the_confirmed_entries_is_a_conflict_unless_forced(linea: CliRun, db: Database) -> None:
    event = make_event(db, slug="fest", capacity=10)
    for _ in range(8):
        make_waitlist_entry(db, event=event, status="CONFIRMED")
    make_waitlist_entry(db, event=event, status="CONFIRMED", deleted_at=utc_now())  # removed: holds no place
    make_waitlist_entry(db, event=event, status="PENDING")
    refused = linea("events", "update", "fest", "--capacity", "3", exit_code=4)
    assert refused.stderr.splitlines()[0] == "error: cannot set the capacity of fest to 3: 8 entries are confirmed"
    assert "--force" in refused.stderr
    assert db.scalar("SELECT capacity FROM events") == 10 and db.count("audit_logs") == 0
    # Exactly the confirmed count is no overbooking.
    linea("events", "update", "fest", "--capacity", "8")
    assert db.scalar("SELECT capacity FROM events") == 8

    forced = linea("events", "update", "fest", "--capacity", "3", "--force", "--json")
    assert "over capacity by 5 (8 confirmed, capacity 3)" in forced.stderr
    assert as_json(forced)["places_left"] == -5
    assert db.scalar("SELECT capacity FROM events") == 3
    assert db.count("waitlist_entries", "status = 'CONFIRMED' AND deleted_at IS NULL") == 8  # nobody un-confirmed
    (log,) = [row for row in audit_rows(db, event["id"]) if row.metadata["changes"]["capacity"]["after"] == 3]
    assert log.metadata["changes"]["capacity"]["before"] == 8
    # Overbooked: nobody else is confirmed, and every view says so.
    linea("waitlist", "promote", "fest", exit_code=0)
    assert db.count("waitlist_entries", "status = 'CONFIRMED' AND deleted_at IS NULL") == 8
    shown = linea("events", "show", "fest", "--json")
    assert as_json(shown)["places_left"] == -5 and "over capacity by 5" in shown.stderr
    # Other changes to an overbooked event need no --force.
    linea("events", "update", "fest", "--title", "Renamed")
    linea("events", "update", "fest", "--clear", "capacity")
    assert as_json(linea("events", "show", "fest", "--json"))["places_left"] is None


# ------------------------------------------------------------------------------------ status machine


def test_status_machine(linea: CliRun, db: Database) -> None:
    event = make_event(db, status="DRAFT", slug="fest")

    def status() -> str:
        return db.scalar("SELECT status::text FROM events WHERE slug = 'fest'")

    linea("events", "complete", "fest", exit_code=4)
    assert status() == "DRAFT"
    assert as_json(linea("events", "publish", "fest", "--json"))["status"] == "PUBLISHED"
    assert status() == "PUBLISHED"
    result = linea("events", "publish", "fest", exit_code=4)
    assert "PUBLISHED" in result.stderr
    assert as_json(linea("events", "complete", "fest", "--json"))["status"] == "COMPLETED"
    for verb in ("publish", "cancel", "complete"):
        result = linea("events", verb, "fest", exit_code=4)
        assert "final" in result.stderr
    assert status() == "COMPLETED"
    actions = [(row.action, row.metadata["changes"]["status"]) for row in audit_rows(db, event["id"])]
    assert actions == [
        ("PUBLISH", {"before": "DRAFT", "after": "PUBLISHED"}),
        ("COMPLETE", {"before": "PUBLISHED", "after": "COMPLETED"}),
    ]


@pytest.mark.parametrize("start_status", ["DRAFT", "PUBLISHED"])
def test_cancel_is_final_and_publish_does_not_reopen(linea: CliRun, db: Database, start_status: str) -> None:
    make_event(db, status=start_status, slug="fest")
    assert as_json(linea("events", "cancel", "fest", "--json"))["status"] == "CANCELLED"
    result = linea("events", "publish", "fest", "--force", exit_code=4)
    assert "CANCELLED" in result.stderr and "final" in result.stderr
    linea("events", "cancel", "fest", exit_code=4)
    assert db.scalar("SELECT status::text FROM events") == "CANCELLED"
    assert db.count("audit_logs") == 1


def test_publishing_a_past_event_needs_force(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    make_event(db, status="DRAFT", slug="old", start_date=days_from_now(-2))
    result = linea("events", "publish", "old", exit_code=4)
    assert "--force" in result.stderr
    assert db.scalar("SELECT status::text FROM events") == "DRAFT" and db.count("audit_logs") == 0
    linea("events", "publish", "old", "--force")
    assert db.scalar("SELECT status::text FROM events") == "PUBLISHED"
    # The same rule for create --publish.
    me = ("--as", owner["email"], "events", "create", "--title", "Past", "--start", "2020-01-01", "--publish")
    linea(*me, exit_code=4)
    assert db.count("events") == 1
    assert as_json(linea(*me, "--force", "--json"))["status"] == "PUBLISHED"
    assert as_json(linea("--as", owner["email"], "events", "create", "--title", "Soon", "--start", "2031-01-01",
                         "--publish", "--json"))["status"] == "PUBLISHED"


# ------------------------------------------------------------------------------------ delete/restore


def test_delete_hides_the_event_and_restore_brings_it_back(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    event = make_event(db, owner=owner, slug="fest")
    make_event(db, slug="other")
    me = ("--as", owner["email"], "events")
    linea(*me, "delete", "fest")
    assert db.scalar("SELECT deleted_at FROM events WHERE slug = 'fest'") is not None
    assert db.count("events") == 2  # soft delete only
    assert [e["slug"] for e in as_json(linea("events", "list", "--json"))["items"]] == ["other"]
    listed = as_json(linea("events", "list", "--include-deleted", "--json"))["items"]
    assert sorted(e["slug"] for e in listed) == ["fest", "other"]
    linea("events", "show", "fest", exit_code=3)
    assert as_json(linea("events", "show", "fest", "--include-deleted", "--json"))["deleted_at"] is not None
    linea(*me, "delete", "fest", exit_code=4)
    linea(*me, "publish", "fest", exit_code=3)

    shown = as_json(linea(*me, "restore", "fest", "--json"))
    assert shown["deleted_at"] is None
    assert db.scalar("SELECT deleted_at FROM events WHERE slug = 'fest'") is None
    linea(*me, "restore", "fest", exit_code=4)
    assert [row.action for row in audit_rows(db, event["id"])] == ["DELETE", "RESTORE"]


# -------------------------------------------------------------------------------------- complete-past


def test_complete_past_marks_ended_published_events_once(linea: CliRun, db: Database) -> None:
    ended = make_event(db, slug="ended", start_date=days_from_now(-3), end_date=days_from_now(-2.9))
    no_end = make_event(db, slug="no-end", start_date=days_from_now(-1))
    make_event(db, slug="running", start_date=days_from_now(-0.1), end_date=days_from_now(0.1))
    make_event(db, slug="future", start_date=days_from_now(5))
    make_event(db, slug="draft", status="DRAFT", start_date=days_from_now(-5))
    make_event(db, slug="cancelled", status="CANCELLED", start_date=days_from_now(-5))
    make_event(db, slug="deleted", start_date=days_from_now(-5), deleted_at=days_from_now(-1))

    dry = linea("events", "complete-past", "--dry-run", "--json")
    assert sorted(e["slug"] for e in as_json(dry)) == ["ended", "no-end"]
    assert "would complete 2" in dry.stderr
    assert db.count("events", "status = 'COMPLETED'") == 0 and db.count("audit_logs") == 0

    done = linea("events", "complete-past", "--json")
    assert "completed 2 event(s)" in done.stderr
    assert [e["slug"] for e in as_json(done)] == ["ended", "no-end"]
    assert sorted(r.slug for r in db.all("SELECT slug FROM events WHERE status = 'COMPLETED'")) == ["ended", "no-end"]
    log = db.one("SELECT action, user_id, metadata FROM audit_logs")
    assert log.action == "COMPLETE" and log.user_id is None
    assert log.metadata["actor"] == "system"
    assert log.metadata["count"] == 2
    assert sorted(log.metadata["event_ids"]) == sorted([ended["id"], no_end["id"]])

    again = linea("events", "complete-past", "--json")
    assert as_json(again) == [] and "completed 0 event(s)" in again.stderr
    assert db.count("audit_logs") == 1
    assert db.count("events", "status = 'PUBLISHED'") == 3  # running, future, deleted


def test_complete_past_is_for_admins_and_the_system(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    make_event(db, owner=owner, start_date=days_from_now(-3))
    linea("--as", owner["email"], "events", "complete-past", exit_code=6)
    assert db.count("events", "status = 'COMPLETED'") == 0 and db.count("audit_logs") == 0
    linea("--as", admin(db)["email"], "events", "complete-past")
    assert db.count("events", "status = 'COMPLETED'") == 1


# ------------------------------------------------------------------------------------------ show


def test_show_counts_the_waitlist_and_places_left(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER", email="owner@example.com")
    venue = make_venue(db, name="Riverside Hall")
    event = make_event(db, owner=owner, slug="fest", capacity=3, venue_id=venue["id"])
    for status in ("PENDING", "PENDING", "CONFIRMED", "CONFIRMED", "CANCELLED"):
        make_waitlist_entry(db, event=event, status=status)
    make_waitlist_entry(db, event=event, status="CONFIRMED", deleted_at=days_from_now(-1))
    for reference in ("fest", event["id"]):
        shown = as_json(linea("events", "show", reference, "--json"))
        assert (shown["waitlist_pending"], shown["waitlist_confirmed"], shown["waitlist_cancelled"]) == (2, 2, 1)
        assert shown["capacity"] == 3 and shown["places_left"] == 1
        assert shown["owner_email"] == "owner@example.com" and shown["venue_name"] == "Riverside Hall"
    piped = linea("events", "show", "fest").stdout  # a field and its value per line
    assert "places_left\t1\n" in piped and "venue_name\tRiverside Hall\n" in piped
    linea("events", "show", "nope", exit_code=3)


# ------------------------------------------------------------------------------------------ list


def slugs_of(result: Any) -> list[str]:
    return [item["slug"] for item in as_json(result)["items"]]


def test_list_filters(linea: CliRun, db: Database) -> None:
    ann = make_user(db, role="OWNER", email="ann@example.com")
    bob = make_user(db, role="OWNER", email="bob@example.com")
    venue = make_venue(db)
    make_event(db, owner=ann, slug="ann-past", title="Jazz Night", start_date=datetime(2020, 5, 1, 20), status="COMPLETED")
    make_event(db, owner=ann, slug="ann-soon", title="Rock", description="Big JAZZ finale", start_date=days_from_now(3),
               venue_id=venue["id"])
    make_event(db, owner=bob, slug="bob-draft", title="100% fun_day", status="DRAFT", start_date=days_from_now(40))
    make_event(db, owner=bob, slug="bob-gone", start_date=days_from_now(5), deleted_at=days_from_now(-1))
    make_event(db, owner=bob, slug="bob-june", title="June", start_date=datetime(2030, 6, 30, 22, 0))

    def listed(*args: str) -> list[str]:
        return slugs_of(linea("events", "list", *args, "--json"))

    assert listed() == ["ann-past", "ann-soon", "bob-draft", "bob-june"]
    assert listed("--include-deleted") == ["ann-past", "ann-soon", "bob-gone", "bob-draft", "bob-june"]
    assert listed("--status", "draft") == ["bob-draft"]
    assert listed("--owner", "ANN@example.com") == ["ann-past", "ann-soon"]
    assert listed("--venue", venue["id"]) == ["ann-soon"]
    assert listed("--upcoming") == ["ann-soon", "bob-draft", "bob-june"]
    assert listed("--past") == ["ann-past"]
    assert listed("--search", "jazz") == ["ann-past", "ann-soon"]  # title or description, any case
    assert listed("--search", "BOB-D") == ["bob-draft"]  # slug
    assert listed("--search", "100%") == ["bob-draft"]
    assert listed("--search", "_") == ["bob-draft"]  # wildcards are literal
    assert listed("--from", "2030-06-30", "--to", "2030-06-30") == ["bob-june"]  # --to DATE includes that day
    assert listed("--from", "2030-07-01") == []
    assert listed("--to", "2030-06-30T21:59") == ["ann-past", "ann-soon", "bob-draft"]
    assert listed("--status", "PUBLISHED", "--owner", "ann@example.com", "--upcoming") == ["ann-soon"]
    linea("events", "list", "--upcoming", "--past", exit_code=1)
    linea("events", "list", "--owner", "nobody@example.com", exit_code=3)
    linea("events", "list", "--venue", "cnosuchvenue", exit_code=3)
    linea("events", "list", "--from", "yesterday", exit_code=1)
    linea("events", "list", "--status", "BOGUS", exit_code=2)


def test_pagination_loses_and_repeats_nothing_while_rows_are_inserted(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    base = days_from_now(10).replace(microsecond=0)
    # Pairs of events share a start date: the id breaks the tie.
    original = {make_event(db, owner=owner, slug=f"e{n:02d}", start_date=base + timedelta(hours=n // 2))["slug"]
                for n in range(23)}
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        args = ["events", "list", "--limit", "5", "--json"] + (["--after", cursor] if cursor else [])
        page = as_json(linea(*args))
        seen.extend(item["slug"] for item in page["items"])
        cursor = page["next_cursor"]
        pages += 1
        # Between pages, others insert events before and after the cursor.
        make_event(db, owner=owner, slug=f"early-{pages}", start_date=base - timedelta(days=1))
        make_event(db, owner=owner, slug=f"late-{pages}", start_date=base + timedelta(days=5, hours=pages))
        if cursor is None:
            break
        assert len(page["items"]) == 5
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert original <= set(seen), f"rows were lost: {original - set(seen)}"
    assert not any(slug.startswith("early-") for slug in seen)
    assert pages >= 5


def test_table_output_prints_the_next_cursor_on_stderr(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    for n in range(3):
        make_event(db, owner=owner, slug=f"t{n}", title=f"Table {n}", start_date=days_from_now(n + 1))
    first = linea("events", "list", "--limit", "2")
    assert "Table 0" in first.stdout and "Table 2" not in first.stdout
    cursor = first.stderr.split("more: --after ", 1)[1].split()[0]
    second = linea("events", "list", "--limit", "2", "--after", cursor)
    assert "Table 2" in second.stdout and "more:" not in second.stderr
    assert as_json(linea("events", "list", "--limit", "2", "--after", cursor, "--json"))["next_cursor"] is None
    linea("events", "list", "--after", "not-a-cursor", exit_code=1)
