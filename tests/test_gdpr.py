"""Data-protection requests: `users export` (access, portability) and `users anonymize` (erasure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.factories import (
    days_from_now,
    make_audit_row,
    make_event,
    make_session,
    make_user,
    make_venue,
    make_waitlist_entry,
)
from tests.harness import CliRun, Database

EMAIL, OLD_EMAIL, NAME = "erin.person@example.com", "erin.old@example.com", "Erin Quixote"
IP, AGENT = "203.0.113.77", "Mozilla/5.0 (ErinBook; rv:1.0)"
OTHER_IP, OTHER_AGENT = "198.51.100.9", "Mozilla/5.0 (OtherBox)"


# --- export -----------------------------------------------------------------------------------


def test_export_holds_everything_about_a_user(linea: CliRun, db: Database) -> None:
    person = make_user(db, email=EMAIL, name=NAME, role="OWNER")
    venue = make_venue(db)
    owned = make_event(db, owner=person, venue_id=venue["id"])
    other_event = make_event(db)
    by_id = make_waitlist_entry(db, event=other_event, email="erin.alias@example.com", user_id=person["id"])
    by_email = make_waitlist_entry(db, event=owned, email=EMAIL)
    make_waitlist_entry(db, event=owned, email="someone.else@example.com")
    login = make_session(db, user=person)
    made = make_audit_row(db, user_id=person["id"], ip_address=IP, user_agent=AGENT)
    about = make_audit_row(db, resource="User", resource_id=person["id"], metadata={"changes": {"name": {"before": None, "after": NAME}}})
    about_session = make_audit_row(db, action="REVOKE", resource="Session", resource_id=login["id"])
    mentioning = make_audit_row(db, resource="Event", resource_id=owned["id"], metadata={"notified": [EMAIL]})
    unrelated = make_audit_row(db, metadata={"notified": ["someone.else@example.com"]})

    result = linea("users", "export", "Erin.Person@example.com")
    assert login["token"] not in result.stdout
    document = result.json
    assert document["format"] == "linea.personal-data-export" and document["version"] == 1
    assert document["subject"] == {"email": EMAIL, "user_id": person["id"]}
    assert document["user"]["email"] == EMAIL and document["user"]["name"] == NAME
    assert [s["id"] for s in document["sessions"]] == [login["id"]]
    assert set(document["sessions"][0]) == {"id", "fingerprint", "expires_at", "created_at", "updated_at", "deleted_at"}
    assert {e["id"] for e in document["waitlist_entries"]} == {by_id["id"], by_email["id"]}
    assert [e["id"] for e in document["owned_events"]] == [owned["id"]]
    assert document["owned_events"][0]["venue_id"] == venue["id"]
    audit_ids = {a["id"] for a in document["audit_logs"]}
    assert audit_ids == {made["id"], about["id"], about_session["id"], mentioning["id"]}
    assert unrelated["id"] not in audit_ids
    mine = next(a for a in document["audit_logs"] if a["id"] == made["id"])
    assert (mine["ip_address"], mine["user_agent"]) == (IP, AGENT)

    # The export is audited, with counts and nothing personal.
    row = db.one("SELECT resource, resource_id, metadata FROM audit_logs WHERE action = 'EXPORT'")
    assert (row.resource, row.resource_id) == ("User", person["id"])
    assert row.metadata["counts"] == {"sessions": 1, "waitlist_entries": 2, "owned_events": 1, "audit_logs": 4}
    assert EMAIL not in json.dumps(row.metadata)


def test_export_of_a_person_known_only_by_email(linea: CliRun, db: Database) -> None:
    first, second = make_event(db), make_event(db)
    a = make_waitlist_entry(db, event=first, email="walk.in@example.net")
    b = make_waitlist_entry(db, event=second, email="walk.in@example.net", status="CANCELLED")
    make_waitlist_entry(db, event=first, email="other@example.net")
    document = linea("users", "export", "Walk.In@Example.net").json
    assert document["subject"] == {"email": "walk.in@example.net", "user_id": None}
    assert document["user"] is None
    assert document["sessions"] == [] and document["owned_events"] == []
    assert {e["id"] for e in document["waitlist_entries"]} == {a["id"], b["id"]}
    assert {e["event_slug"] for e in document["waitlist_entries"]} == {first["slug"], second["slug"]}
    row = db.one("SELECT resource, resource_id, metadata FROM audit_logs WHERE action = 'EXPORT'")
    assert row.resource == "Person" and "walk.in" not in json.dumps(row.metadata) + row.resource_id
    assert sorted(row.metadata["waitlist_entry_ids"]) == sorted([a["id"], b["id"]])


def test_export_of_nobody_is_not_found(linea: CliRun, db: Database) -> None:
    assert "holds nothing" in linea("users", "export", "nobody@example.com", exit_code=3).stderr
    linea("users", "export", "no-such-id", exit_code=3)
    assert db.count("audit_logs") == 0


def test_export_to_a_file_and_who_may_export(linea: CliRun, db: Database, tmp_path: Path) -> None:
    make_user(db, email="root@example.com", role="ADMIN")
    make_user(db, email=EMAIL, name=NAME)
    make_user(db, email="other@example.com")
    target = tmp_path / "erin.json"
    result = linea("--as", EMAIL, "users", "export", EMAIL, "-o", str(target))
    assert result.stdout == "" and json.loads(target.read_text())["user"]["name"] == NAME
    linea("--as", EMAIL, "users", "export", "other@example.com", exit_code=6)
    linea("--as", "root@example.com", "users", "export", "other@example.com")
    assert db.count("audit_logs", "action = 'EXPORT'") == 2


# --- erasure ----------------------------------------------------------------------------------


def _text_columns(db: Database) -> list[tuple[str, str]]:
    return [
        (r.table_name, r.column_name)
        for r in db.all(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'USER-DEFINED')"
        )
    ]


def _find_everywhere(db: Database, needle: str) -> list[str]:
    """Every (table.column) in which `needle` occurs, case-insensitively, in any row."""
    found = []
    for table, column in _text_columns(db):
        hits = db.scalar(
            f'SELECT count(*) FROM "{table}" WHERE strpos(lower("{column}"::text), lower(:needle)) > 0', needle=needle
        )
        if hits:
            found.append(f"{table}.{column} ({hits})")
    return found


def _snapshot(db: Database, exclude: dict[str, set[str]]) -> dict[str, list[Any]]:
    tables = ("users", "venues", "events", "waitlist_entries", "sessions", "audit_logs")
    return {
        table: [
            tuple(row) for row in db.all(f'SELECT * FROM "{table}" ORDER BY id') if row.id not in exclude.get(table, set())
        ]
        for table in tables
    }


@pytest.fixture
def person_everywhere(linea: CliRun, db: Database) -> dict[str, Any]:
    """Erin, with rows in every table and personal data nested in audit metadata; and Olive, who must not change."""
    root = make_user(db, email="root@example.com", name="Root Admin", role="ADMIN")
    olive = make_user(db, email="olive.other@example.com", name="Olive Other", role="OWNER")
    # Created and renamed through linea: the audit log records the old address and the name.
    linea("--as", "root@example.com", "users", "create", OLD_EMAIL, "--name", NAME, "--role", "OWNER")
    linea("--as", "root@example.com", "users", "update", OLD_EMAIL, "--email", EMAIL)
    erin = dict(db.one("SELECT * FROM users WHERE email = :e", e=EMAIL)._mapping)
    venue = make_venue(db)
    owned = make_event(db, owner=erin, venue_id=venue["id"], title="Quiet Garden Meetup")
    olives_event = make_event(db, owner=olive)
    entries = [
        make_waitlist_entry(db, event=olives_event, email=EMAIL, user_id=erin["id"]),
        make_waitlist_entry(db, event=owned, email=EMAIL),  # by email only, no user id
        make_waitlist_entry(db, event=olives_event, email=OLD_EMAIL),  # same event, the old address
    ]
    olives_entry = make_waitlist_entry(db, event=owned, email="olive.other@example.com", user_id=olive["id"])
    sessions = [make_session(db, user=erin), make_session(db, user=erin, expires_at=days_from_now(-2))]
    olives_session = make_session(db, user=olive)
    audit = [
        make_audit_row(db, action="LOGIN", resource="User", resource_id=erin["id"], user_id=erin["id"],
                       ip_address=IP, user_agent=AGENT,
                       metadata={"request": {"form": {"email": EMAIL.upper(), "profile": {"name": NAME}}},
                                 "note": f"Welcome {NAME} <{EMAIL}>!", "tags": [OLD_EMAIL, "x"], "from": IP}),
        make_audit_row(db, action="UPDATE", resource="Event", resource_id=owned["id"], user_id=erin["id"],
                       ip_address=IP, user_agent=AGENT, metadata={"changes": {"title": {"before": "A", "after": "B"}}}),
        make_audit_row(db, action="INVITE", resource="Event", resource_id=olives_event["id"], user_id=olive["id"],
                       ip_address=OTHER_IP, user_agent=OTHER_AGENT,
                       metadata={"invited": [{"email": EMAIL, "name": NAME}], "by": "Olive Other"}),
    ]
    olives_row = make_audit_row(db, action="LOGIN", resource="User", resource_id=olive["id"], user_id=olive["id"],
                                ip_address=OTHER_IP, user_agent=OTHER_AGENT,
                                metadata={"request": {"email": "olive.other@example.com", "name": "Olive Other"}})
    linea("--as", "root@example.com", "users", "export", EMAIL)  # an EXPORT row about Erin
    return {"root": root, "olive": olive, "erin": erin, "venue": venue, "owned": owned, "entries": entries,
            "sessions": sessions, "audit": audit, "olives_entry": olives_entry, "olives_session": olives_session,
            "olives_row": olives_row}


def test_anonymize_leaves_no_trace_of_the_person_in_any_table(
    linea: CliRun, db: Database, person_everywhere: dict[str, Any]
) -> None:
    p = person_everywhere
    erin_id = p["erin"]["id"]
    needles = [EMAIL, OLD_EMAIL, NAME, "Quixote", IP, AGENT]
    for needle in needles:
        assert _find_everywhere(db, needle), f"the fixture should hold {needle!r} somewhere"
    changing = {
        "users": {erin_id},
        "waitlist_entries": {e["id"] for e in p["entries"]},
        "sessions": {s["id"] for s in p["sessions"]},
        "audit_logs": {r.id for r in db.all(
            "SELECT id FROM audit_logs WHERE user_id = :id OR resource_id = :id", id=erin_id
        )} | {p["audit"][2]["id"]},
    }
    before = _snapshot(db, changing)

    result = linea("--as", "root@example.com", "users", "anonymize", EMAIL, "--yes", "--json")
    record = result.json
    placeholder = f"deleted-{erin_id}@anonymized.invalid"
    assert record["user_id"] == erin_id and record["email"] == placeholder
    assert record["sessions_deleted"] == 2 and record["waitlist_entries_anonymized"] == 3

    for needle in needles:
        assert _find_everywhere(db, needle) == [], f"{needle!r} is still in the database"
    # Everyone else's rows are exactly as they were; nothing was removed.
    after = _snapshot(db, {**changing, "audit_logs": changing["audit_logs"] | {
        db.scalar("SELECT id FROM audit_logs WHERE action = 'ANONYMIZE'")
    }})
    assert after == before
    assert db.count("audit_logs", "id = ANY(:ids)", ids=list(changing["audit_logs"])) == len(changing["audit_logs"])

    user = db.one("SELECT email, name, role::text AS role, deleted_at FROM users WHERE id = :id", id=erin_id)
    assert (user.email, user.name, user.role) == (placeholder, None, "OWNER") and user.deleted_at is not None
    assert db.scalar("SELECT owner_id FROM events WHERE id = :id", id=p["owned"]["id"]) == erin_id
    assert db.count("events", "deleted_at IS NULL") == 2
    assert db.count("sessions", "user_id = :id AND deleted_at IS NULL", id=erin_id) == 0
    assert db.count("sessions", "user_id = :id AND expires_at > now() AT TIME ZONE 'UTC'", id=erin_id) == 0
    entries = db.all("SELECT email, status::text AS status FROM waitlist_entries WHERE id = ANY(:ids)",
                     ids=[e["id"] for e in p["entries"]])
    assert {e.status for e in entries} == {"CANCELLED"}
    assert all(e.email.endswith("@anonymized.invalid") for e in entries)
    assert db.count("audit_logs", "user_id = :id AND (ip_address IS NOT NULL OR user_agent IS NOT NULL)", id=erin_id) == 0
    scrubbed = db.scalar("SELECT metadata FROM audit_logs WHERE id = :id", id=p["audit"][0]["id"])
    assert scrubbed["request"]["form"]["email"] == placeholder
    assert scrubbed["note"] == f"Welcome [anonymized] <{placeholder}>!"
    assert db.scalar("SELECT metadata FROM audit_logs WHERE id = :id", id=p["audit"][2]["id"])["by"] == "Olive Other"

    anonymize = db.one("SELECT resource, resource_id, user_id, metadata FROM audit_logs WHERE action = 'ANONYMIZE'")
    assert (anonymize.resource, anonymize.resource_id, anonymize.user_id) == ("User", erin_id, p["root"]["id"])
    assert anonymize.metadata["waitlist_entries_anonymized"] == 3


def test_anonymize_twice_is_harmless(linea: CliRun, db: Database, person_everywhere: dict[str, Any]) -> None:
    erin_id = person_everywhere["erin"]["id"]
    linea("users", "anonymize", EMAIL, "--yes")
    state = _snapshot(db, {})
    again = linea("users", "anonymize", EMAIL, "--yes", "--json")
    assert "nothing to anonymize" in again.stderr and again.json["changed"] is False
    by_id = linea("users", "anonymize", erin_id, "--yes", "--json")
    assert by_id.json["changed"] is False
    assert _snapshot(db, {}) == state
    assert db.count("audit_logs", "action = 'ANONYMIZE'") == 1


def test_anonymize_asks_for_confirmation(linea: CliRun, db: Database) -> None:
    make_user(db, email="root@example.com", role="ADMIN")
    make_user(db, email=EMAIL, name=NAME)
    result = linea("users", "anonymize", EMAIL, exit_code=1)
    assert "--yes" in result.stderr
    assert db.scalar("SELECT name FROM users WHERE email = :e", e=EMAIL) == NAME
    assert db.count("audit_logs") == 0


def test_anonymizing_the_last_admin_is_refused(linea: CliRun, db: Database) -> None:
    make_user(db, email="root@example.com", name="Root", role="ADMIN")
    result = linea("users", "anonymize", "root@example.com", "--yes", exit_code=4)
    assert "last ADMIN" in result.stderr
    assert db.scalar("SELECT name FROM users WHERE email = 'root@example.com'") == "Root"
    make_user(db, email="second@example.com", role="ADMIN")
    linea("users", "anonymize", "root@example.com", "--yes")
    assert db.count("users", "email = 'root@example.com'") == 0


def test_anonymize_a_person_known_only_by_email(linea: CliRun, db: Database) -> None:
    event, other = make_event(db), make_event(db)
    entries = [make_waitlist_entry(db, event=event, email="walk.in@example.net"),
               make_waitlist_entry(db, event=other, email="walk.in@example.net")]
    keep = make_waitlist_entry(db, event=event, email="stay@example.net")
    mention = make_audit_row(db, resource="Waitlist", resource_id=event["id"],
                             metadata={"imported": ["walk.in@example.net", "stay@example.net"]})
    record = linea("users", "anonymize", "walk.in@example.net", "--yes", "--json").json
    assert record["user_id"] is None and record["waitlist_entries_anonymized"] == 2
    assert _find_everywhere(db, "walk.in@example.net") == []
    assert db.count("waitlist_entries", "id = ANY(:ids) AND status = 'CANCELLED'", ids=[e["id"] for e in entries]) == 2
    assert db.scalar("SELECT email FROM waitlist_entries WHERE id = :id", id=keep["id"]) == "stay@example.net"
    imported = db.scalar("SELECT metadata->'imported' FROM audit_logs WHERE id = :id", id=mention["id"])
    assert imported[1] == "stay@example.net" and imported[0].endswith("@anonymized.invalid")
    assert db.scalar("SELECT resource FROM audit_logs WHERE action = 'ANONYMIZE'") == "Person"


def test_export_and_anonymize_match_whole_addresses_only(linea: CliRun, db: Database) -> None:
    """ann@x.com is not found inside joann@x.com or ann@x.com.au."""
    make_user(db, email="ann@example.com", name="Ann")
    row = make_audit_row(db, metadata={"emails": ["joann@example.com", "ann@example.com.au", "ann@example.com"],
                                       "note": "Annette met Ann"})
    joann = make_audit_row(db, metadata={"emails": ["joann@example.com"], "note": "Joann met Ann"})
    exported = linea("users", "export", "ann@example.com").json
    assert [r["id"] for r in exported["audit_logs"]] == [row["id"]]
    linea("users", "anonymize", "ann@example.com", "--yes")
    # Someone else's row that only looks like it mentions Ann is not touched, not even her name in it.
    assert db.scalar("SELECT metadata FROM audit_logs WHERE id = :id", id=joann["id"]) == {
        "emails": ["joann@example.com"], "note": "Joann met Ann"
    }
    metadata = db.scalar("SELECT metadata FROM audit_logs WHERE id = :id", id=row["id"])
    assert metadata["emails"][:2] == ["joann@example.com", "ann@example.com.au"]
    assert metadata["emails"][2].startswith("deleted-")
    assert metadata["note"] == "Annette met [anonymized]"


# --- proof of erasure: users verify-erased, and the search anonymize runs ---------------------


def _traces(stdout: str) -> set[tuple[str, ...]]:
    """(table, column, row_id, found) from piped output, header left out."""
    return {tuple(line.split("\t")) for line in stdout.splitlines()[1:]}


def test_verify_erased_finds_an_address_left_in_a_json_column_in_any_case(
    linea: CliRun, db: Database, person_everywhere: dict[str, Any]
) -> None:
    linea("users", "anonymize", EMAIL, "--yes")
    ok = linea("users", "verify-erased", EMAIL)
    assert ok.stdout.startswith("OK: no trace in ") and len(ok.stdout.splitlines()) == 1
    by_id = linea("users", "verify-erased", person_everywhere["erin"]["id"], exit_code=8)
    assert by_id.stdout == ""
    assert [line.strip() for line in by_id.stderr.splitlines()[1:]] == [
        f"not searched for: the addresses and names user {person_everywhere['erin']['id']} had: erased with them, "
        "so linea cannot search for them; name the address the request named (linea users verify-erased ADDRESS)",
        "hint: run it both ways: with the address the request named, and with the user id anonymize printed",
    ]
    assert by_id.stderr.startswith("error: the erasure could not be verified: part of what identifies the person could not be searched for")

    # Something the platform writes later, with the address as the person typed it.
    late = make_audit_row(db, action="newsletter.bounce", metadata={"to": {"addr": ["Erin.PERSON@Example.com"]}})
    lookalike = make_audit_row(db, metadata={"to": "joerin.person@example.com", "cc": "erin.person@example.com.au"})
    result = linea("users", "verify-erased", EMAIL.upper(), exit_code=7)
    assert _traces(result.stdout) == {("audit_logs", "metadata", late["id"], "address")}
    assert lookalike["id"] not in result.stdout
    assert "1 trace(s) of the person remain in 1 table(s)" in result.stderr
    records = linea("users", "verify-erased", EMAIL, "--json", exit_code=7).json
    assert records == [{"table": "audit_logs", "column": "metadata", "row_id": late["id"], "found": "address"}]
    assert db.count("audit_logs", "action = 'ANONYMIZE'") == 1  # verifying changes nothing


def test_verify_erased_before_the_erasure_names_every_row(linea: CliRun, db: Database) -> None:
    erin = make_user(db, email=EMAIL, name=NAME)
    login = make_session(db, user=erin)
    entry = make_waitlist_entry(db, event=make_event(db), email=EMAIL.upper())
    traces = _traces(linea("users", "verify-erased", EMAIL, exit_code=7).stdout)
    assert traces == {
        ("users", "email", erin["id"], "address"), ("users", "name", erin["id"], "name"),
        ("sessions", "token", login["id"], "token"), ("waitlist_entries", "email", entry["id"], "address"),
    }


def test_only_admins_verify_erasures(linea: CliRun, db: Database) -> None:
    make_user(db, email="root@example.com", role="ADMIN")
    make_user(db, email=EMAIL, role="OWNER")
    assert "ADMIN only" in linea("--as", EMAIL, "users", "verify-erased", EMAIL, exit_code=6).stderr
    linea("--as", "root@example.com", "users", "verify-erased", "nobody@example.com")


PLATFORM_EXTRAS = """
CREATE TABLE crm_contacts (
    id TEXT PRIMARY KEY, user_ref VARCHAR(40), contact JSONB, tags TEXT[], client_ip TEXT, agent TEXT);
CREATE SCHEMA marketing;
CREATE TABLE marketing."notes\x1b[2J" (body TEXT);
"""


def test_anonymize_names_what_it_cannot_erase_in_the_platforms_own_tables(
    adopted: CliRun, platform_db: Database
) -> None:
    from tests.platform import OLGA, VERA, jwt_for

    platform_db.execute(PLATFORM_EXTRAS)
    hostile_id = "row\x1b]0;PWNED\x07"
    vera_login = ("203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64)")  # from Vera's platform audit row
    platform_db.execute(
        "INSERT INTO crm_contacts VALUES "
        "('c1', :vera, '{\"primary\": \"vera.VISITOR@example.COM\"}', NULL, :ip, :agent), "
        "(:hostile, NULL, NULL, ARRAY['x', 'Vera Visitor'], NULL, NULL), "
        # Olga behind the same office address and browser: not Vera's.
        "('c3', :olga, NULL, NULL, :ip, :agent), "
        # A copy of each one's login token: the JWTs share their header, not their payload.
        "('c4', NULL, jsonb_build_object('jwt', CAST(:vera_jwt AS text)), NULL, NULL, NULL), "
        "('c5', NULL, jsonb_build_object('jwt', CAST(:olga_jwt AS text)), NULL, NULL, NULL)",
        vera=VERA["id"], olga=OLGA["id"], hostile=hostile_id, ip=vera_login[0], agent=vera_login[1],
        vera_jwt=jwt_for(VERA), olga_jwt=jwt_for(OLGA),
    )
    platform_db.execute("""INSERT INTO marketing."notes\x1b[2J" VALUES ('Call Vera.Visitor@Example.com')""")

    result = adopted("users", "anonymize", VERA["email"], "--yes", exit_code=7)
    details = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    assert sorted(details) == sorted([
        "crm_contacts.user_ref row c1: id",
        "crm_contacts.contact row c1: address",
        "crm_contacts.client_ip row c1: ip address",
        "crm_contacts.agent row c1: user agent",
        "crm_contacts.tags row row\\x1b]0;PWNED\\x07: name",
        "crm_contacts.contact row c4: token",
        "marketing.notes\\x1b[2J.body row ctid (0,1): address",
    ])
    assert "\x1b" not in result.stderr + result.stdout
    # The erasure itself is committed.
    assert platform_db.scalar("SELECT email FROM users WHERE id = :id", id=VERA["id"]).startswith("deleted-")
    assert platform_db.count("sessions", "user_id = :id", id=VERA["id"]) == 0

    # Later, from cron: the address and the id are what is left to look for.
    by_address = adopted("users", "verify-erased", VERA["email"], exit_code=7)
    assert _traces(by_address.stdout) == {
        ("crm_contacts", "contact", "c1", "address"),
        ("marketing.notes\\x1b[2J", "body", "ctid (0,1)", "address"),
    }
    assert "\x1b" not in by_address.stdout
    assert _traces(adopted("users", "verify-erased", VERA["id"], exit_code=7).stdout) == {
        ("crm_contacts", "user_ref", "c1", "id"),
    }
    platform_db.execute("DELETE FROM crm_contacts WHERE id IN ('c1', 'c4')")
    platform_db.execute("""TRUNCATE marketing."notes\x1b[2J\"""")
    assert adopted("users", "verify-erased", VERA["email"]).stdout.startswith("OK: no trace in 9 tables")
    assert "not searched for: the addresses and names user" in adopted("users", "verify-erased", VERA["id"], exit_code=8).stderr


def test_after_anonymize_on_the_platforms_database_verify_exits_0(adopted: CliRun, platform_db: Database) -> None:
    from tests.platform import MAL, VERA

    for person in (VERA, MAL):
        adopted("users", "anonymize", person["email"].upper(), "--yes")
        assert adopted("users", "verify-erased", person["email"]).stdout.startswith("OK: ")
        adopted("users", "verify-erased", person["id"], exit_code=8)  # by id alone: addresses unknown


def test_verify_erased_searches_names_in_any_case_but_not_a_name_another_user_has(linea: CliRun, db: Database) -> None:
    zoe = make_user(db, email="zoe@example.com", name="Zoë Ångström")
    make_user(db, email="ann.lee@example.com", name="Ann Lee")
    shouted = make_audit_row(db, metadata={"signup": {"full_name": "ZOË ÅNGSTRÖM"}})
    traces = _traces(linea("users", "verify-erased", "zoe@example.com", exit_code=7).stdout)
    assert ("audit_logs", "metadata", shouted["id"], "name") in traces
    assert ("users", "name", zoe["id"], "name") in traces

    # Two people called Ann Lee: the other one's rows are not traces of this one.
    make_user(db, email="other.ann@example.com", name="ann  LEE")
    make_audit_row(db, metadata={"note": "Ann Lee called"})
    assert _traces(linea("users", "verify-erased", "ann.lee@example.com", exit_code=7).stdout) == {
        ("users", "email", db.scalar("SELECT id FROM users WHERE email = 'ann.lee@example.com'"), "address"),
    }


def test_a_table_linea_may_not_read_is_not_verified(
    linea: CliRun, db: Database, database_url: Any, owned_server: object
) -> None:
    """A search that cannot read a table proves nothing about it: it says so, and exits 8 (not 0)."""
    from tests.harness import plain_url

    role = f"verifier_{database_url.database}"
    db.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        db.execute(f'GRANT USAGE ON SCHEMA linea TO "{role}"')
        db.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA linea, public TO "{role}"')
        db.execute("CREATE TABLE private_notes (id TEXT PRIMARY KEY, body TEXT)")
        as_verifier = {"LINEA_DATABASE_URL": plain_url(database_url.set(username=role, password=None))}
        result = linea("users", "verify-erased", EMAIL, env=as_verifier, exit_code=8)
        assert result.stdout == ""
        assert "  not verified: private_notes: no SELECT privilege on it; not searched" in result.stderr.splitlines()
    finally:
        db.execute(f'DROP OWNED BY "{role}"')
        db.execute(f'DROP ROLE "{role}"')
