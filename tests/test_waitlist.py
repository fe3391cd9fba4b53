"""`linea waitlist` management: add, confirm, cancel, remove, list, stats, promote, permissions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.factories import make_event, make_user, make_waitlist_entry
from tests.harness import ROOT, CliRun, Database, plain_url, run_linea_on_terminal, wait_for_lock_waiters


def entry(db: Database, event: dict, email: str):  # noqa: ANN201
    return db.one(
        "SELECT email, status::text AS status, user_id, deleted_at, created_at, updated_at FROM waitlist_entries "
        "WHERE event_id = :event_id AND email = :email",
        event_id=event["id"], email=email,
    )


def audit_rows(db: Database, action: str) -> list:
    return db.all("SELECT resource, resource_id, user_id, metadata FROM audit_logs WHERE action = :a ORDER BY created_at", a=action)


def test_add_normalizes_links_the_user_and_audits(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    user = make_user(db, email="ann@example.com", name="Ann Lee")
    result = linea("waitlist", "add", event["slug"], "  Ann@EXAMPLE.com ", "--json")
    record = result.json
    assert record["email"] == "ann@example.com"
    assert record["status"] == "PENDING"
    assert record["name"] == "Ann Lee"
    stored = entry(db, event, "ann@example.com")
    assert stored.user_id == user["id"] and stored.status == "PENDING"
    [row] = audit_rows(db, "CREATE")
    assert row.resource == "WaitlistEntry"
    assert row.metadata["changes"]["email"]["after"] == "ann@example.com"


def test_mixed_case_duplicate_is_a_conflict(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    linea("waitlist", "add", event["slug"], "Ann@X.com")
    result = linea("waitlist", "add", event["slug"], "ann@x.com", exit_code=4)
    assert "already on the waitlist" in result.stderr
    assert db.count("waitlist_entries") == 1


def test_add_rejects_an_invalid_address(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    result = linea("waitlist", "add", event["slug"], "not-an-address", exit_code=1)
    assert "invalid email" in result.stderr
    linea("waitlist", "add", event["slug"], "ann@localhost", exit_code=1)
    assert db.count("waitlist_entries") == 0
    assert db.count("audit_logs") == 0


def test_unknown_event_is_not_found(linea: CliRun) -> None:
    linea("waitlist", "add", "no-such-event", "ann@example.com", exit_code=3)


def test_confirm_cancel_remove_and_add_back(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="bo@example.com")
    linea("waitlist", "confirm", event["slug"], "BO@example.com")
    assert entry(db, event, "bo@example.com").status == "CONFIRMED"
    linea("waitlist", "confirm", event["slug"], "bo@example.com", exit_code=4)
    linea("waitlist", "cancel", event["slug"], "bo@example.com")
    assert entry(db, event, "bo@example.com").status == "CANCELLED"
    linea("waitlist", "remove", event["slug"], "bo@example.com")
    removed = entry(db, event, "bo@example.com")
    assert removed.deleted_at is not None  # soft delete: the row stays
    linea("waitlist", "confirm", event["slug"], "bo@example.com", exit_code=3)
    linea("waitlist", "remove", event["slug"], "bo@example.com", exit_code=3)
    linea("waitlist", "add", event["slug"], "bo@example.com")
    back = entry(db, event, "bo@example.com")
    assert back.deleted_at is None and back.status == "PENDING"
    actions = [r.action for r in db.all("SELECT action FROM audit_logs WHERE resource = 'WaitlistEntry' ORDER BY created_at, id")]
    assert sorted(actions) == sorted(["UPDATE", "UPDATE", "DELETE", "RESTORE"])
    assert back.updated_at >= removed.updated_at


def test_confirm_respects_capacity(linea: CliRun, db: Database) -> None:
    event = make_event(db, capacity=1)
    make_waitlist_entry(db, event=event, email="a@example.com", status="CONFIRMED")
    make_waitlist_entry(db, event=event, email="b@example.com")
    result = linea("waitlist", "confirm", event["slug"], "b@example.com", exit_code=4)
    assert "full" in result.stderr
    linea("waitlist", "add", event["slug"], "c@example.com", "--status", "confirmed", exit_code=4)
    assert db.count("waitlist_entries", "status = 'CONFIRMED'") == 1


def test_list_filters_search_and_pages(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    other = make_event(db)
    base = db.scalar("SELECT now() AT TIME ZONE 'UTC'")
    for i in range(5):
        make_waitlist_entry(db, event=event, email=f"p{i}@example.com", created_at=base + timedelta(minutes=i))
    make_waitlist_entry(db, event=event, email="c100%@example.com", status="CONFIRMED", created_at=base + timedelta(minutes=9))
    make_waitlist_entry(db, event=event, email="gone@example.com", deleted_at=base)
    make_waitlist_entry(db, event=other, email="elsewhere@example.com")

    page = linea("waitlist", "list", event["slug"], "--limit", "4", "--json").json
    assert [item["email"] for item in page["items"]] == [f"p{i}@example.com" for i in range(4)]
    rest = linea("waitlist", "list", event["slug"], "--after", page["next_cursor"], "--json").json
    assert [item["email"] for item in rest["items"]] == ["p4@example.com", "c100%@example.com"]
    assert rest["next_cursor"] is None

    confirmed = linea("waitlist", "list", event["slug"], "--status", "CONFIRMED", "--json").json
    assert [item["email"] for item in confirmed["items"]] == ["c100%@example.com"]
    # % is matched literally, not as a wildcard
    found = linea("waitlist", "list", event["slug"], "--search", "0%", "--json").json
    assert [item["email"] for item in found["items"]] == ["c100%@example.com"]
    everything = linea("waitlist", "list", event["slug"], "--include-deleted", "--json").json
    assert "gone@example.com" in [item["email"] for item in everything["items"]]
    table = linea("waitlist", "list", event["slug"]).stdout
    assert "p0@example.com" in table and "gone@example.com" not in table


def test_search_ignores_case_as_every_search_does(linea: CliRun, db: Database) -> None:
    # The platform stores addresses as people typed them; --search matches any case (ILIKE), like
    # `users/events/venues list --search`, and its wildcards stay literal.
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="Vera.Lang@Example.com")
    make_waitlist_entry(db, event=event, email="other@example.com")

    def searched(text: str) -> list[str]:
        return [item["email"] for item in linea("waitlist", "list", event["slug"], "--search", text, "--json").json["items"]]

    assert searched("vera.lang") == ["Vera.Lang@Example.com"]
    assert searched("LANG@EXAMPLE") == ["Vera.Lang@Example.com"]
    assert searched("v_ra") == [] and searched("%") == []


def test_stats(linea: CliRun, db: Database) -> None:
    event = make_event(db, capacity=10)
    base = db.scalar("SELECT now() AT TIME ZONE 'UTC'")
    make_waitlist_entry(db, event=event, status="CONFIRMED", created_at=base - timedelta(days=2))
    make_waitlist_entry(db, event=event, status="CONFIRMED")
    make_waitlist_entry(db, event=event, status="PENDING", created_at=base + timedelta(hours=1))
    make_waitlist_entry(db, event=event, status="CANCELLED")
    make_waitlist_entry(db, event=event, status="CONFIRMED", deleted_at=base)
    stats = linea("waitlist", "stats", event["slug"], "--json").json
    assert stats["pending"] == 1 and stats["confirmed"] == 2 and stats["cancelled"] == 1 and stats["removed"] == 1
    assert stats["capacity"] == 10 and stats["places_left"] == 8
    assert stats["first_signup"].startswith((base - timedelta(days=2)).date().isoformat())
    assert stats["last_signup"] > stats["first_signup"]
    unlimited = make_event(db)
    assert linea("waitlist", "stats", unlimited["slug"], "--json").json["places_left"] is None


def test_stats_count_sign_ups_per_day_or_week(linea: CliRun, db: Database) -> None:
    event = make_event(db, capacity=50)
    day = datetime(2026, 3, 2, 9, 30)  # a Monday
    for offset, count in ((0, 2), (1, 1), (4, 3)):
        for _ in range(count):
            make_waitlist_entry(db, event=event, created_at=day + timedelta(days=offset, hours=count))
    make_waitlist_entry(db, event=event, created_at=day + timedelta(days=2), deleted_at=day + timedelta(days=3))
    stats = linea("waitlist", "stats", event["slug"], "--json").json
    assert stats["signups_period"] == "day"
    # Every day from the first sign-up to the last, quiet days included; removed entries are not sign-ups.
    assert stats["signups"] == [
        {"date": "2026-03-02", "count": 2}, {"date": "2026-03-03", "count": 1}, {"date": "2026-03-04", "count": 0},
        {"date": "2026-03-05", "count": 0}, {"date": "2026-03-06", "count": 3},
    ]
    # Over more than two months: weeks, starting on Mondays.
    make_waitlist_entry(db, event=event, created_at=day + timedelta(days=100))
    stats = linea("waitlist", "stats", event["slug"], "--json").json
    assert stats["signups_period"] == "week"
    assert stats["signups"][0] == {"date": "2026-03-02", "count": 6} and stats["signups"][-1] == {"date": "2026-06-08", "count": 1}
    assert len(stats["signups"]) == 15 and sum(point["count"] for point in stats["signups"]) == stats["total"]
    empty = linea("waitlist", "stats", make_event(db)["slug"], "--json").json
    assert (empty["signups_period"], empty["signups"]) == (None, [])


@pytest.mark.parametrize("columns", [80, 120, 40])
def test_stats_draw_a_chart_on_a_terminal_only(db: Database, database_url: URL, tmp_path: Path, columns: int) -> None:
    event = make_event(db, capacity=50)
    day = datetime(2026, 3, 2, 9, 30)
    for offset in range(40):
        for _ in range(offset % 7):
            make_waitlist_entry(db, event=event, created_at=day + timedelta(days=offset), status="PENDING")
    for _ in range(8):
        make_waitlist_entry(db, event=event, created_at=day, status="CONFIRMED")
    env = {**os.environ, "LINEA_DATABASE_URL": plain_url(database_url), "LINEA_DATA_DIR": str(tmp_path), "NO_COLOR": "1"}
    env.pop("LINEA_ACTOR", None)
    command = ["waitlist", "stats", event["slug"]]
    run = run_linea_on_terminal(command, env=env, columns=columns)
    assert run.returncode == 0, run.other
    lines = re.sub(r"\x1b\[[0-9;]*m", "", run.terminal.decode()).replace("\r\n", "\n").splitlines()  # bold headers
    # 40 days: a column a day where they fit (the first day has 8 confirmed), two days a column where not.
    assert ("sign-ups per day (most: 8)" if columns >= 80 else "sign-ups per 2 days (most: 11)") in lines
    assert any("█" in line for line in lines)
    assert max(len(line) for line in lines) <= columns
    assert any(line.startswith("confirmed █") and line.endswith(" 8/50") for line in lines)

    piped = subprocess.run([sys.executable, "-m", "linea_cli", *command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and "sign-ups per" not in piped.stdout and "█" not in piped.stdout


def test_chart_fits_any_width_and_merges_periods_when_it_must() -> None:
    from linea_cli.charts import capacity_bar, column_chart

    points = [(date(2026, 1, 1) + timedelta(days=n), n % 5) for n in range(60)]
    wide = column_chart(points, period="day", width=200)
    assert wide[0] == "sign-ups per day (most: 4)" and all(len(line) <= 200 for line in wide)
    narrow = column_chart(points, period="day", width=20)
    assert narrow[0].startswith("sign-ups per 4 days") and all(len(line) <= 20 for line in narrow)
    assert column_chart([], period="day", width=80) == []
    assert capacity_bar("confirmed", 8, 50, width=80).endswith(" 8/50")
    assert capacity_bar("confirmed", 60, 50, width=80).endswith("60/50 (over by 10)") and "░" not in capacity_bar("confirmed", 60, 50, width=80)
    assert capacity_bar("confirmed", 3, None, width=80) == "confirmed 3 (no capacity set)"
    assert capacity_bar("confirmed", 8, 50, width=12) == "confirmed 8/"[:12]


def test_stats_show_an_overbooking(linea: CliRun, db: Database) -> None:
    event = make_event(db, capacity=5)
    for _ in range(5):
        make_waitlist_entry(db, event=event, status="CONFIRMED")
    linea("events", "update", event["slug"], "--capacity", "2", "--force")
    result = linea("waitlist", "stats", event["slug"], "--json")
    stats = result.json
    assert (stats["confirmed"], stats["capacity"], stats["places_left"]) == (5, 2, -3)
    assert "over capacity by 3" in result.stderr
    table = linea("waitlist", "stats", event["slug"])
    assert "-3" in table.stdout and "over capacity by 3" in table.stderr
    make_waitlist_entry(db, event=event, email="late@example.com")
    linea("waitlist", "confirm", event["slug"], "late@example.com", exit_code=4)
    promoted = linea("waitlist", "promote", event["slug"], "--json").json
    assert (promoted["promoted"], promoted["places_left"]) == (0, -3)


def test_promote_first_come_first_served_within_capacity(linea: CliRun, db: Database) -> None:
    event = make_event(db, capacity=3)
    base = db.scalar("SELECT now() AT TIME ZONE 'UTC'")
    make_waitlist_entry(db, event=event, email="first@example.com", status="CONFIRMED", created_at=base)
    for i, name in enumerate(["b", "c", "d", "e"]):
        make_waitlist_entry(db, event=event, email=f"{name}@example.com", created_at=base + timedelta(minutes=10 - i))
    result = linea("waitlist", "promote", event["slug"], "--json").json
    # the earliest sign-ups win: e (7 min), d (8 min)
    assert [row["email"] for row in result["entries"]] == ["e@example.com", "d@example.com"]
    assert result["places_left"] == 0 and result["pending_left"] == 2
    assert db.count("waitlist_entries", "status = 'CONFIRMED'") == 3
    [row] = audit_rows(db, "PROMOTE")
    assert row.resource == "Event" and row.resource_id == event["id"] and row.metadata["promoted"] == 2
    again = linea("waitlist", "promote", event["slug"], "--json").json
    assert again["promoted"] == 0
    assert len(audit_rows(db, "PROMOTE")) == 1


def test_promote_count_and_unlimited_capacity(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    for _ in range(5):
        make_waitlist_entry(db, event=event)
    make_waitlist_entry(db, event=event, deleted_at=db.scalar("SELECT now()"))
    linea("waitlist", "promote", event["slug"], "--count", "2")
    assert db.count("waitlist_entries", "status = 'CONFIRMED'") == 2
    linea("waitlist", "promote", event["slug"])
    assert db.count("waitlist_entries", "status = 'CONFIRMED'") == 5
    assert db.count("waitlist_entries", "status = 'PENDING' AND deleted_at IS NOT NULL") == 1


def test_promote_refuses_a_cancelled_event(linea: CliRun, db: Database) -> None:
    event = make_event(db, status="CANCELLED")
    make_waitlist_entry(db, event=event)
    linea("waitlist", "promote", event["slug"], exit_code=4)
    assert db.count("waitlist_entries", "status = 'CONFIRMED'") == 0


def _promote_processes(database_url: URL, tmp_path: Path, slug: str, *, copies: int, count: int) -> list[subprocess.Popen]:
    env = {**os.environ, "LINEA_DATABASE_URL": plain_url(database_url), "LINEA_DATA_DIR": str(tmp_path),
           "NO_COLOR": "1", "LINEA_LOCK_TIMEOUT": "0"}  # wait as long as the test holds the lock
    env.pop("LINEA_ACTOR", None)
    return [
        subprocess.Popen(
            [sys.executable, "-m", "linea_cli", "waitlist", "promote", slug, "--count", str(count), "--json"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(copies)
    ]


def _wait_for_lock_waiters(db: Database, expected: int, processes: list[subprocess.Popen]) -> None:
    """Until `expected` promote processes are blocked on a lock (they reached the critical section);
    a promote that finishes meanwhile does not take the event lock."""
    wait_for_lock_waiters(db, "linea/waitlist%", processes, count=expected)


def _lock_event(database_url: URL, event_id: str) -> psycopg.Connection:
    conn = psycopg.connect(plain_url(database_url))
    conn.execute("SELECT id FROM events WHERE id = %s FOR NO KEY UPDATE", (event_id,))
    return conn


def test_concurrent_promote_never_exceeds_capacity(db: Database, database_url: URL, tmp_path: Path) -> None:
    capacity = 7
    event = make_event(db, capacity=capacity)
    make_waitlist_entry(db, event=event, status="CONFIRMED")
    for _ in range(40):
        make_waitlist_entry(db, event=event)
    # Hold the event until all six processes are at the door, then let them in at once.
    gate = _lock_event(database_url, event["id"])
    processes = _promote_processes(database_url, tmp_path, event["slug"], copies=6, count=3)
    try:
        _wait_for_lock_waiters(db, 6, processes)
    finally:
        gate.rollback()
        gate.close()
    outputs = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    promoted = sorted(json.loads(stdout)["promoted"] for stdout, _ in outputs)
    assert sum(promoted) == capacity - 1
    assert promoted == [0, 0, 0, 0, 3, 3]
    assert db.count("waitlist_entries", "status = 'CONFIRMED'") == capacity
    assert sum(row.metadata["promoted"] for row in audit_rows(db, "PROMOTE")) == capacity - 1


def test_promote_waits_for_confirmations_in_flight(db: Database, database_url: URL, tmp_path: Path) -> None:
    """A transaction confirming under the event lock finishes first; promote then sees the event full."""
    event = make_event(db, capacity=3)
    for _ in range(5):
        make_waitlist_entry(db, event=event)
    other = _lock_event(database_url, event["id"])
    try:
        [process] = _promote_processes(database_url, tmp_path, event["slug"], copies=1, count=5)
        _wait_for_lock_waiters(db, 1, [process])
        now = other.execute("SELECT now() AT TIME ZONE 'UTC'").fetchone()[0]
        for n in range(3):
            other.execute(
                "INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at) "
                "VALUES (%s, %s, %s, 'CONFIRMED', %s, %s)",
                (f"cinflight{n}", f"inflight{n}@example.com", event["id"], now, now),
            )
        other.commit()
    finally:
        other.close()
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert json.loads(stdout)["promoted"] == 0
    assert db.count("waitlist_entries", "status = 'CONFIRMED'") == 3


def test_permissions(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER", email="owner@example.com")
    rival = make_user(db, role="OWNER", email="rival@example.com")
    make_user(db, role="ADMIN", email="admin@example.com")
    make_user(db, role="VISITOR", email="visitor@example.com")
    event = make_event(db, owner=owner)
    make_waitlist_entry(db, event=event, email="x@example.com")

    linea("--as", "owner@example.com", "waitlist", "add", event["slug"], "mine@example.com")
    linea("--as", "admin@example.com", "waitlist", "confirm", event["slug"], "mine@example.com")
    for command in (["list", event["slug"]], ["stats", event["slug"]], ["promote", event["slug"]],
                    ["add", event["slug"], "new@example.com"], ["remove", event["slug"], "x@example.com"],
                    ["cancel", event["slug"], "x@example.com"], ["export", event["slug"]]):
        result = linea("--as", "rival@example.com", "waitlist", *command, exit_code=6)
        assert "another owner" in result.stderr
        linea("--as", "visitor@example.com", "waitlist", *command, exit_code=6)
    rows = db.one("SELECT user_id FROM audit_logs WHERE action = 'CREATE'")
    assert rows.user_id == db.scalar("SELECT id FROM users WHERE email = 'owner@example.com'")
    assert db.count("waitlist_entries") == 2
    assert rival["id"] != owner["id"]


def test_an_entry_the_platform_stored_as_typed_is_managed_even_when_todays_validator_refuses_it(
    linea: CliRun, db: Database
) -> None:
    # The platform's sign-up kept what people typed; Tab completion offers it as stored.
    event = make_event(db, slug="typed-fest")
    make_waitlist_entry(db, event=event, email="Vera..Visitor@Example.com")
    cancelled = linea("waitlist", "cancel", "typed-fest", "vera..visitor@example.com", "--json").json
    assert cancelled["status"] == "CANCELLED"
    linea("waitlist", "remove", "typed-fest", "Vera..Visitor@Example.com")
    assert db.scalar("SELECT deleted_at IS NOT NULL FROM waitlist_entries WHERE email = 'Vera..Visitor@Example.com'")
    # An address that is on no list is still checked as typed: one line, exit 1.
    refused = linea("waitlist", "remove", "typed-fest", "nobody..here@example.com", exit_code=1)
    assert refused.stderr.startswith("error: invalid email 'nobody..here@example.com'")


def test_a_search_that_matches_nothing_says_no_entries_not_no_waitlist(linea: CliRun, db: Database) -> None:
    event = make_event(db, slug="quiet-fest")
    make_waitlist_entry(db, event=event, email="ann@example.com")
    result = linea("waitlist", "list", "quiet-fest", "--search", "nomatch")
    assert result.stderr == "no waitlist entries found\n" and len(result.stdout.splitlines()) == 1  # the header
