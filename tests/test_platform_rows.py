"""Every command group on rows the platform wrote: mixed-case addresses, raw JWTs, its own audit rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import CliRun, Database
from tests.platform import ADAM, EVENT_ID, EVENT_SLUG, MAL, OLGA, PAST_EVENT_ID, VENUE_ID, VERA, jwt_for


def _jwt_parts(user: dict) -> list[str]:
    """The parts of the user's token that are theirs: the payload (the header is everyone's)."""
    payload = jwt_for(user).split(".")[1]
    return [payload, payload[10:30]]


def test_every_command_group_reads_the_platforms_rows(adopted: CliRun) -> None:
    outputs = [
        adopted("events", "list", "--json").stdout,
        adopted("events", "show", EVENT_SLUG, "--json").stdout,
        adopted("venues", "show", VENUE_ID, "--json").stdout,
        adopted("waitlist", "list", EVENT_SLUG, "--json").stdout,
        adopted("users", "list", "--json").stdout,
        adopted("users", "show", "vera.visitor@example.com", "--json").stdout,
        adopted("sessions", "list", "--json").stdout,
        adopted("audit", "list", "--json").stdout,
        adopted("audit", "show", "clv0audt00000003abcdefghi", "--json").stdout,
        adopted("audit", "export").stdout,
        adopted("users", "export", "vera.visitor@example.com").stdout,
    ]
    assert "Platform Launch Party" in outputs[0]
    assert json.loads(outputs[5])["email"] == VERA["email"]
    assert {item["action"] for item in json.loads(outputs[7])["items"]} >= {"user.login", "EVENT_UPDATED", "SIGNUP"}
    assert json.loads(outputs[8])["metadata"] == ["raw", "array", VERA["email"].upper()]
    # The platform's raw JWTs are never printed, not even in part.
    for output in outputs:
        for user in (VERA, OLGA, ADAM):
            for part in _jwt_parts(user):
                assert part not in output


def test_addresses_compare_without_regard_to_case(adopted: CliRun, platform_db: Database) -> None:
    assert adopted("users", "show", "VERA.VISITOR@EXAMPLE.COM", "--json").json["id"] == VERA["id"]
    listed = adopted("events", "list", "--owner", "olga.owner@example.com", "--json").json["items"]
    assert {item["slug"] for item in listed} == {EVENT_SLUG, "last-years-meetup"}
    # A case variant of an entry already on the list is a duplicate.
    result = adopted("waitlist", "add", EVENT_SLUG, "VERA.visitor@example.COM", exit_code=4)
    assert "already on the waitlist" in result.stderr
    assert platform_db.count("waitlist_entries", "event_id = :e", e=EVENT_ID) == 2
    adopted("waitlist", "confirm", EVENT_SLUG, "vera.visitor@example.com")
    assert platform_db.scalar("SELECT status::text FROM waitlist_entries WHERE id = 'clv0wait00000001abcdefghi'") == "CONFIRMED"
    # Creating a user whose address differs only in case is a conflict.
    adopted("users", "create", "vera.visitor@EXAMPLE.com", exit_code=4)


def test_the_acting_user_is_one_exact_address_or_id(adopted: CliRun, platform_db: Database) -> None:
    adopted("--as", "adam@EXAMPLE.com", "users", "list")
    adopted("--as", ADAM["id"], "users", "list")
    for pattern in ("%", "_dam@example.com", "adam@%", "ADAM@example.co_"):
        result = adopted("--as", pattern, "users", "list", exit_code=6)
        assert "does not exist" in result.stderr
    adopted("--as", "_dam@example.com", "users", "create", "new@example.com", exit_code=6)
    assert platform_db.count("users", "email = 'new@example.com'") == 0
    for empty in ("", "  "):
        result = adopted("--as", empty, "users", "list", exit_code=1)
        assert "empty" in result.stderr
        adopted("users", "list", exit_code=1, env={"LINEA_ACTOR": empty})
    adopted("--database-url", "", "users", "list", exit_code=1)


def test_db_commands_that_change_something_need_an_admin(adopted: CliRun, platform_db: Database) -> None:
    for args in (("db", "upgrade"), ("db", "downgrade", "base"), ("db", "reset", "--force", "--yes"),
                 ("db", "seed", "--append", "--users", "1", "--events", "0", "--waitlist", "0", "--sessions", "0")):
        result = adopted("--as", VERA["email"], *args, exit_code=6)
        assert "ADMIN only" in result.stderr
    assert platform_db.count("users") == 4
    adopted("--as", VERA["email"], "db", "status")
    adopted("--as", ADAM["email"], "db", "upgrade")


def test_import_dedupes_against_the_platforms_addresses_in_any_case(
    adopted: CliRun, platform_db: Database, tmp_path: Path
) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text("email\nvera.visitor@example.com\nguest.person@mail.example\nNew.Person@Example.org\n")
    adopted("waitlist", "import", EVENT_SLUG, str(csv))
    emails = {r.email for r in platform_db.all("SELECT email FROM waitlist_entries WHERE event_id = :e", e=EVENT_ID)}
    assert emails == {VERA["email"], "Guest.Person@Mail.Example", "new.person@example.org"}


def _data_dump(db: Database) -> str:
    """Every row of every table in every schema, as text: what a data-only dump would hold.

    Done in SQL rather than with pg_dump, whose version must match the server's on each CI server.
    """
    tables = db.all(
        "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    assert len(tables) >= 8  # the platform's six, _prisma_migrations, linea's bookkeeping
    return "\n".join(db.scalar(f"SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM {r.name} t") for r in tables)


def test_export_and_anonymize_by_any_case_leave_no_trace_in_a_dump(adopted: CliRun, platform_db: Database) -> None:
    exported = adopted("users", "export", "VERA.Visitor@example.com").json
    assert exported["user"]["id"] == VERA["id"]
    assert {e["id"] for e in exported["waitlist_entries"]} == {"clv0wait00000001abcdefghi", "clv0wait00000003abcdefghi"}
    assert {row["id"] for row in exported["audit_logs"]} >= {"clv0audt00000001abcdefghi", "clv0audt00000003abcdefghi"}
    audit_rows = platform_db.count("audit_logs")

    adopted("users", "anonymize", "vera.VISITOR@EXAMPLE.com", "--yes")
    dump = _data_dump(platform_db).lower()
    for trace in ("vera.visitor", "vera visitor", "203.0.113.7", "mozilla/5.0 (x11; linux x86_64)", *(p.lower() for p in _jwt_parts(VERA))):
        assert trace not in dump, trace
    assert platform_db.count("sessions", "user_id = :u", u=VERA["id"]) == 0
    # The audit trail is kept: every row, plus the one that records the erasure.
    assert platform_db.count("audit_logs") == audit_rows + 1  # the ANONYMIZE row
    # Other people are untouched.
    assert platform_db.scalar("SELECT email FROM users WHERE id = :u", u=OLGA["id"]) == OLGA["email"]
    assert platform_db.count("sessions", "user_id = :u", u=OLGA["id"]) == 1


def test_erasure_never_touches_someone_who_now_holds_a_past_address(linea: CliRun, db: Database) -> None:
    """A changed a@ to a2@; then B registered a@ and joined a waitlist. Erasing A leaves B alone."""
    from tests.factories import make_event

    linea("users", "create", "a@example.com", "--name", "Ann First")
    linea("users", "update", "a@example.com", "--email", "a2@example.com")
    linea("users", "create", "a@example.com", "--name", "Bea Second")
    event = make_event(db, capacity=10)
    linea("waitlist", "add", event["slug"], "a@example.com")
    b_id = db.scalar("SELECT id FROM users WHERE email = 'a@example.com'")
    b_audit = db.all("SELECT id, resource_id, metadata::text FROM audit_logs WHERE resource_id IN "
                     "(:b, (SELECT id FROM waitlist_entries WHERE email = 'a@example.com')) ORDER BY id", b=b_id)
    assert b_audit

    linea("users", "anonymize", "a2@example.com", "--yes")
    entry = db.one("SELECT email, status::text, user_id FROM waitlist_entries WHERE event_id = :e", e=event["id"])
    assert (entry.email, entry.status, entry.user_id) == ("a@example.com", "PENDING", b_id)
    assert db.all("SELECT id, resource_id, metadata::text FROM audit_logs WHERE id = ANY(:ids) ORDER BY id",
                  ids=[r.id for r in b_audit]) == b_audit
    # A's own history no longer holds either of A's addresses.
    a_history = db.all("SELECT metadata::text AS m FROM audit_logs WHERE resource = 'User' AND resource_id <> :b", b=b_id)
    assert a_history and not any("a2@example.com" in r.m or "Ann First" in r.m for r in a_history)


@pytest.mark.parametrize("table_id", [("events", PAST_EVENT_ID), ("users", MAL["id"])])
def test_show_views_of_platform_rows_work(adopted: CliRun, table_id: tuple[str, str]) -> None:
    table, row_id = table_id
    adopted(table, "show", row_id, "--json")
