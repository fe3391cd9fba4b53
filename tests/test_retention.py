"""`linea waitlist retention`: the addresses of people without an account go once the event is long over."""

from __future__ import annotations

import json

from tests.factories import days_from_now, make_event, make_user, make_waitlist_entry
from tests.harness import CliRun, Database, Run, interrupted_at
from tests.platform import ADAM, PAST_EVENT_ID, VERA

ADMIN = "root@example.com"


def retention(linea: CliRun, *args: str, exit_code: int = 0) -> Run:
    return linea("--as", ADMIN, "waitlist", "retention", *args, exit_code=exit_code)


def email_of(db: Database, entry: dict) -> str:
    return db.scalar("SELECT email FROM waitlist_entries WHERE id = :id", id=entry["id"])


def anonymized(db: Database, entry: dict) -> bool:
    return email_of(db, entry) == f"deleted-{entry['id']}@anonymized.invalid"


def test_only_account_less_entries_of_long_ended_events_are_anonymized(linea: CliRun, db: Database) -> None:
    make_user(db, email=ADMIN, role="ADMIN")
    member = make_user(db, email="member@example.com")
    gone = make_user(db, email="gone@example.com", deleted_at=days_from_now(-10))
    old = make_event(db, start_date=days_from_now(-400), end_date=days_from_now(-399))
    # No end date: it ended when it started.
    old_no_end = make_event(db, start_date=days_from_now(-300), end_date=None)
    deleted_old = make_event(db, start_date=days_from_now(-250), deleted_at=days_from_now(-200))
    # Started long ago, ended recently: not yet.
    long_running = make_event(db, start_date=days_from_now(-400), end_date=days_from_now(-20))
    upcoming = make_event(db, start_date=days_from_now(10))

    guest = make_waitlist_entry(db, event=old, email="Guest@Example.net", status="CONFIRMED")
    cancelled_guest = make_waitlist_entry(db, event=old, status="CANCELLED", deleted_at=days_from_now(-390))
    linked = make_waitlist_entry(db, event=old, email="linked@example.com", user_id=member["id"])
    # No link, but the address is a live user's (in another case): their account's data.
    by_address = make_waitlist_entry(db, event=old, email="MEMBER@example.com")
    # The address of a deleted user: nobody has that account any more.
    deleted_users = make_waitlist_entry(db, event=old, email=gone["email"])
    no_end = make_waitlist_entry(db, event=old_no_end)
    of_deleted_event = make_waitlist_entry(db, event=deleted_old)
    recent = make_waitlist_entry(db, event=long_running)
    future = make_waitlist_entry(db, event=upcoming)

    result = retention(linea, "--ended-before", "180d")
    assert result.stdout == ""
    assert "anonymized 5 waitlist entries of 3 events that ended before " in result.stderr

    for entry in (guest, cancelled_guest, deleted_users, no_end, of_deleted_event):
        assert anonymized(db, entry), entry
    for entry in (linked, by_address, recent, future):
        assert email_of(db, entry) == entry["email"], entry
    # Status and counts stay: the event's history is not personal data.
    statuses = dict(db.all("SELECT id, status::text FROM waitlist_entries"))
    assert statuses[guest["id"]] == "CONFIRMED" and statuses[cancelled_guest["id"]] == "CANCELLED"
    assert db.count("waitlist_entries") == 9
    assert db.scalar("SELECT updated_at FROM waitlist_entries WHERE id = :id", id=guest["id"]) > guest["updated_at"]


def test_an_absolute_date_and_bad_cutoffs(linea: CliRun, db: Database) -> None:
    make_user(db, email=ADMIN, role="ADMIN")
    event = make_event(db, start_date=days_from_now(-40), end_date=days_from_now(-40))
    entry = make_waitlist_entry(db, event=event)
    cutoff = days_from_now(-50).date().isoformat()
    assert retention(linea, "--ended-before", cutoff, "--json").json["anonymized"] == 0
    record = retention(linea, "--ended-before", days_from_now(-30).isoformat() + "Z", "--json").json
    assert record["anonymized"] == 1 and record["events"] == 1 and record["batches"] == 1
    assert anonymized(db, entry)
    for bad in ("180 days", "yesterday", "2026-13-01", "99999999w"):
        assert "error: " in retention(linea, "--ended-before", bad, exit_code=1).stderr
    retention(linea, exit_code=2)  # --ended-before is required
    retention(linea, "--ended-before", "1d", "--batch-size", "0", exit_code=2)


def test_a_cutoff_in_the_future_is_refused_and_upcoming_waitlists_keep_their_addresses(linea: CliRun, db: Database) -> None:
    make_user(db, email=ADMIN, role="ADMIN")
    upcoming = make_waitlist_entry(db, event=make_event(db, start_date=days_from_now(30)))
    ended = make_waitlist_entry(db, event=make_event(db, start_date=days_from_now(-400)))
    for future in ((days_from_now(365)).date().isoformat(), "9999-12-31"):
        refused = retention(linea, "--ended-before", future, exit_code=1)
        assert "is in the future" in refused.stderr and len(refused.stderr.splitlines()) == 2  # error and hint
        retention(linea, "--ended-before", future, "--dry-run", exit_code=1)
    assert email_of(db, upcoming) == upcoming["email"] and email_of(db, ended) == ended["email"]
    assert db.count("audit_logs") == 0


def test_dry_run_lists_per_event_and_changes_nothing(linea: CliRun, db: Database) -> None:
    make_user(db, email=ADMIN, role="ADMIN")
    first = make_event(db, slug="first-meetup", start_date=days_from_now(-500), end_date=days_from_now(-499))
    second = make_event(db, slug="second-meetup", start_date=days_from_now(-300))
    entries = [make_waitlist_entry(db, event=first) for _ in range(3)] + [make_waitlist_entry(db, event=second)]

    rows = retention(linea, "--ended-before", "180d", "--dry-run", "--json").json
    assert [(row["slug"], row["entries"], row["event_id"]) for row in rows] == [
        ("first-meetup", 3, first["id"]), ("second-meetup", 1, second["id"]),
    ]
    assert rows[0]["ended_at"].startswith(first["end_date"].date().isoformat())
    table = retention(linea, "--ended-before", "180d", "--dry-run")
    assert "first-meetup" in table.stdout and "second-meetup" in table.stdout
    assert "would anonymize 4 waitlist entries of 2 events" in table.stderr
    assert all(email_of(db, entry) == entry["email"] for entry in entries)
    assert db.count("audit_logs") == 0
    nothing = retention(linea, "--ended-before", "1000d", "--dry-run")
    assert "no ended events with account-less sign-ups found" in nothing.stderr
    assert "would anonymize 0 waitlist entries of 0 events" in nothing.stderr


def test_audited_per_event_with_counts_in_batches_and_idempotent(linea: CliRun, db: Database) -> None:
    admin = make_user(db, email=ADMIN, role="ADMIN")
    big = make_event(db, start_date=days_from_now(-400))
    small = make_event(db, start_date=days_from_now(-365))
    for _ in range(7):
        make_waitlist_entry(db, event=big)
    make_waitlist_entry(db, event=small)

    record = retention(linea, "--ended-before", "180d", "--batch-size", "3", "--json").json
    assert record == {**record, "anonymized": 8, "events": 2, "batches": 4}
    rows = {row.resource_id: row for row in db.all(
        "SELECT action, resource, resource_id, user_id, metadata FROM audit_logs ORDER BY created_at"
    )}
    assert set(rows) == {big["id"], small["id"]}
    assert {(row.action, row.resource, row.user_id) for row in rows.values()} == {("ANONYMIZE", "Event", admin["id"])}
    assert rows[big["id"]].metadata["waitlist_entries_anonymized"] == 7
    assert rows[big["id"]].metadata["batches"] == 3
    assert rows[small["id"]].metadata["waitlist_entries_anonymized"] == 1
    # No address in the log: only counts.
    assert "@example.net" not in json.dumps([row.metadata for row in rows.values()])

    # Again: nothing left, nothing written, exit 0; --quiet prints nothing at all.
    again = retention(linea, "--ended-before", "180d")
    assert "anonymized 0 waitlist entries of 0 events" in again.stderr
    quiet = retention(linea, "--ended-before", "180d", "--quiet")
    assert quiet.stdout == "" and quiet.stderr == ""
    assert db.count("audit_logs") == 2


def test_an_entry_held_by_another_transaction_is_skipped_and_left_for_the_next_run(linea: CliRun, db: Database) -> None:
    make_user(db, email=ADMIN, role="ADMIN")
    event = make_event(db, start_date=days_from_now(-400))
    entries = [make_waitlist_entry(db, event=event) for _ in range(5)]
    held = entries[2]
    # What a second run (or the platform promoting someone) does to the row: it holds its lock.
    with db.engine.begin() as other:
        other.exec_driver_sql("SELECT 1 FROM waitlist_entries WHERE id = %(id)s FOR UPDATE", {"id": held["id"]})
        record = retention(linea, "--ended-before", "180d", "--batch-size", "2", "--json").json
        assert record["anonymized"] == 4  # not waited for: skipped
    assert not anonymized(db, held)
    assert all(anonymized(db, entry) for entry in entries if entry is not held)
    assert retention(linea, "--ended-before", "180d", "--json").json["anonymized"] == 1
    assert anonymized(db, held)
    counts = sorted(r.n for r in db.all("SELECT (metadata->>'waitlist_entries_anonymized')::int AS n FROM audit_logs"))
    assert counts == [1, 4]  # every entry counted once


def test_an_acting_admin_is_required(linea: CliRun, db: Database) -> None:
    make_user(db, email=ADMIN, role="ADMIN")
    make_user(db, email="owner@example.com", role="OWNER")
    entry = make_waitlist_entry(db, event=make_event(db, start_date=days_from_now(-400)))
    denied = linea("waitlist", "retention", "--ended-before", "180d", exit_code=6)
    assert "--as" in denied.stderr
    linea("--as", "owner@example.com", "waitlist", "retention", "--ended-before", "180d", exit_code=6)
    linea("--as", "owner@example.com", "waitlist", "retention", "--ended-before", "180d", "--dry-run", exit_code=6)
    assert email_of(db, entry) == entry["email"]


def test_on_the_platforms_database(adopted: CliRun, platform_db: Database) -> None:
    platform_db.execute(
        "INSERT INTO waitlist_entries (id, email, event_id, status, updated_at) "
        "VALUES ('clv0wait00000009abcdefghi', 'Someone.Else@Mail.Example', :event, 'CONFIRMED', now())",
        event=PAST_EVENT_ID,
    )
    result = adopted("--as", ADAM["email"], "waitlist", "retention", "--ended-before", "180d", "--json")
    assert result.json["anonymized"] == 1
    emails = dict(platform_db.all("SELECT id, email FROM waitlist_entries"))
    assert emails["clv0wait00000009abcdefghi"] == "deleted-clv0wait00000009abcdefghi@anonymized.invalid"
    # Vera has an account: her address (typed in another case) stays on the past event.
    assert emails["clv0wait00000003abcdefghi"].lower() == VERA["email"].lower()
    # The upcoming event's guest is untouched.
    assert emails["clv0wait00000002abcdefghi"] == "Guest.Person@Mail.Example"
    row = platform_db.one("SELECT resource_id, user_id, metadata FROM audit_logs WHERE action = 'ANONYMIZE'")
    assert (row.resource_id, row.user_id) == (PAST_EVENT_ID, ADAM["id"])
    assert row.metadata["waitlist_entries_anonymized"] == 1


def test_an_interrupted_run_still_records_what_it_anonymized(db: Database, database_url) -> None:  # noqa: ANN001
    """Ctrl-C during a batch: the event done before keeps its audit row, the event in hand gets one
    marked interrupted with what committed, and nothing of the interrupted batch is kept."""

    import pytest

    import linea_cli
    from linea_cli.services.actors import resolve_actor
    from linea_cli.services.retention import apply_retention

    admin = make_user(db, email=ADMIN, role="ADMIN")
    older = make_event(db, start_date=days_from_now(-400))
    newer = make_event(db, start_date=days_from_now(-300))
    for _ in range(2):
        make_waitlist_entry(db, event=older)
    for _ in range(5):
        make_waitlist_entry(db, event=newer)
    linea_db = linea_cli.open_database(database_url, name="tests")
    # 1: the list of events; 2, 3: the older event's batches (2 rows, then none); 4, 5: the newer
    # one's: Ctrl-C during the newer event's second batch, which rolls back.
    unit_of_work = interrupted_at(linea_db, 5, actor=lambda session: resolve_actor(session, ADMIN))
    try:
        with pytest.raises(KeyboardInterrupt):
            apply_retention(unit_of_work, cutoff=days_from_now(-180), batch_size=2)
    finally:
        linea_db.close()
    assert db.count("waitlist_entries", "email LIKE 'deleted-%'") == 4
    rows = {row.resource_id: row for row in db.all("SELECT action, user_id, resource_id, metadata FROM audit_logs")}
    assert set(rows) == {older["id"], newer["id"]}
    assert {(row.action, row.user_id) for row in rows.values()} == {("ANONYMIZE", admin["id"])}
    assert rows[older["id"]].metadata["waitlist_entries_anonymized"] == 2
    assert "interrupted" not in rows[older["id"]].metadata
    assert rows[newer["id"]].metadata["waitlist_entries_anonymized"] == 2
    assert rows[newer["id"]].metadata["batches"] == 1
    assert rows[newer["id"]].metadata["interrupted"] is True


def test_the_library_names_its_own_parameter_and_the_command_its_option(linea: CliRun, db: Database) -> None:
    import pytest

    from linea_cli.errors import InvalidInput
    from linea_cli.services.retention import apply_retention
    from linea_cli.services.sessions import purge_expired_sessions

    def no_transaction():  # noqa: ANN202 - refused before any transaction opens
        raise AssertionError("a transaction was opened")

    for job in (
        lambda: apply_retention(no_transaction, cutoff=days_from_now(-180), batch_size=0),
        lambda: purge_expired_sessions(no_transaction, batch_size=0),
    ):
        with pytest.raises(InvalidInput) as refused:
            job()
        assert refused.value.message == "batch_size must be at least 1"
    make_user(db, email=ADMIN, role="ADMIN")
    assert "--batch-size" in retention(linea, "--ended-before", "180d", "--batch-size", "0", exit_code=2).stderr
    assert "--batch-size" in linea("sessions", "purge", "--batch-size", "0", exit_code=2).stderr
    assert db.count("audit_logs") == 0
