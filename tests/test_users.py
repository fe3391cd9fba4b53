"""`linea users ...` as an admin manages people: lifecycle, guards, permissions, audit rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL

from tests.factories import (
    days_from_now,
    make_audit_row,
    make_event,
    make_session,
    make_user,
    make_waitlist_entry,
)
from tests.harness import CliRun, Database, plain_url, wait_for_lock_waiters


def test_create_normalizes_the_email_and_audits(linea: CliRun, db: Database) -> None:
    result = linea("users", "create", "  Ann.Lee@Example.COM ", "--name", "Ann  Lee", "--role", "owner", "--json")
    record = result.json
    assert record["email"] == "ann.lee@example.com"
    assert record["name"] == "Ann Lee"
    assert record["role"] == "OWNER"
    row = db.one("SELECT id, email, role::text AS role FROM users")
    assert (row.email, row.role) == ("ann.lee@example.com", "OWNER")
    audit = db.one("SELECT action, resource, resource_id, user_id, metadata FROM audit_logs")
    assert (audit.action, audit.resource, audit.resource_id, audit.user_id) == ("CREATE", "User", row.id, None)
    assert audit.metadata["actor"] == "system"
    assert audit.metadata["changes"]["email"] == {"before": None, "after": "ann.lee@example.com"}


def test_create_rejects_invalid_and_duplicate_emails(linea: CliRun, db: Database) -> None:
    assert "invalid email" in linea("users", "create", "not-an-email", exit_code=1).stderr
    linea("users", "create", "ann@example.com")
    result = linea("users", "create", "ANN@example.com", exit_code=4)
    assert "already exists" in result.stderr
    make_user(db, email="gone@example.com", deleted_at=days_from_now(-1))
    assert "restore" in linea("users", "create", "gone@example.com", exit_code=4).stderr
    assert db.count("users") == 2
    assert db.count("audit_logs") == 1


def test_list_filters_searches_and_paginates(linea: CliRun, db: Database) -> None:
    make_user(db, email="alice@example.com", name="Alice Admin", role="ADMIN")
    make_user(db, email="bob@example.com", name="Bob Owner", role="OWNER")
    make_user(db, email="carol@example.org", name="Carol", role="VISITOR")
    make_user(db, email="dave@example.com", name="Dave", role="VISITOR", deleted_at=days_from_now(-1))

    emails = [u["email"] for u in linea("users", "list", "--json").json["items"]]
    assert emails == ["alice@example.com", "bob@example.com", "carol@example.org"]
    page = linea("users", "list", "--include-deleted", "--limit", "2", "--json").json
    assert [u["email"] for u in page["items"]] == ["alice@example.com", "bob@example.com"]
    rest = linea("users", "list", "--include-deleted", "--after", page["next_cursor"], "--json").json
    assert [u["email"] for u in rest["items"]] == ["carol@example.org", "dave@example.com"]
    assert rest["next_cursor"] is None

    only_owner = linea("users", "list", "--role", "OWNER", "--json").json["items"]
    assert [u["email"] for u in only_owner] == ["bob@example.com"]
    found = linea("users", "list", "--search", "EXAMPLE.ORG", "--json").json["items"]
    assert [u["email"] for u in found] == ["carol@example.org"]
    by_name = linea("users", "list", "--search", "owner", "--json").json["items"]
    assert [u["email"] for u in by_name] == ["bob@example.com"]
    # LIKE wildcards in the search text are literal.
    assert linea("users", "list", "--search", "%", "--json").json["items"] == []


def test_show_counts_what_points_at_the_user(linea: CliRun, db: Database) -> None:
    owner = make_user(db, email="olga@example.com", role="OWNER")
    event = make_event(db, owner=owner)
    make_event(db, owner=owner, deleted_at=days_from_now(-1))
    make_waitlist_entry(db, event=event, email="olga@example.com")
    other = make_event(db)
    make_waitlist_entry(db, event=other, email="olga.other@example.com", user_id=owner["id"])
    make_session(db, user=owner)
    make_session(db, user=owner, expires_at=days_from_now(-1))
    make_session(db, user=owner, deleted_at=days_from_now(-0.1))
    make_audit_row(db, user_id=owner["id"], created_at=days_from_now(-2))

    record = linea("users", "show", "OLGA@example.com", "--json").json
    assert record["email"] == "olga@example.com"
    assert record["owned_events"] == 1
    assert record["waitlist_entries"] == 2
    assert record["live_sessions"] == 1
    assert record["last_activity"] is not None
    assert linea("users", "show", owner["id"], "--json").json["id"] == owner["id"]
    assert "no user" in linea("users", "show", "nobody@example.com", exit_code=3).stderr


def test_update_changes_name_and_email(linea: CliRun, db: Database) -> None:
    user = make_user(db, email="ann@example.com", name="Ann")
    make_user(db, email="taken@example.com")
    linea("users", "update", "ann@example.com", "--email", "Ann.Lee@Example.com", "--name", "Ann Lee")
    row = db.one("SELECT email, name FROM users WHERE id = :id", id=user["id"])
    assert (row.email, row.name) == ("ann.lee@example.com", "Ann Lee")
    changes = db.scalar("SELECT metadata->'changes' FROM audit_logs WHERE action = 'UPDATE'")
    assert changes == {
        "email": {"before": "ann@example.com", "after": "ann.lee@example.com"},
        "name": {"before": "Ann", "after": "Ann Lee"},
    }
    assert "already exists" in linea("users", "update", "ann.lee@example.com", "--email", "taken@example.com", exit_code=4).stderr
    linea("users", "update", "ann.lee@example.com", "--name", "")
    assert db.scalar("SELECT name FROM users WHERE id = :id", id=user["id"]) is None
    linea("users", "update", "ann.lee@example.com", exit_code=1)
    assert db.count("audit_logs") == 2


def test_set_role_and_the_last_admin_guard(linea: CliRun, db: Database) -> None:
    first = make_user(db, email="root@example.com", role="ADMIN")
    result = linea("users", "set-role", "root@example.com", "VISITOR", exit_code=4)
    assert "last ADMIN" in result.stderr
    assert db.scalar("SELECT role::text FROM users WHERE id = :id", id=first["id"]) == "ADMIN"

    linea("users", "set-role", "second@example.com", "ADMIN", exit_code=3)
    make_user(db, email="second@example.com")
    linea("users", "set-role", "second@example.com", "admin")
    linea("users", "set-role", "root@example.com", "OWNER")
    assert db.scalar("SELECT role::text FROM users WHERE id = :id", id=first["id"]) == "OWNER"
    assert "last ADMIN" in linea("users", "set-role", "second@example.com", "OWNER", exit_code=4).stderr
    assert db.count("audit_logs", "action = 'UPDATE' AND metadata->'changes' ? 'role'") == 2
    # Setting the role a user already has changes nothing and writes nothing.
    assert "already" in linea("users", "set-role", "second@example.com", "ADMIN").stderr
    assert db.count("audit_logs") == 2


def test_a_deleted_admin_does_not_count_as_another_admin(linea: CliRun, db: Database) -> None:
    make_user(db, email="root@example.com", role="ADMIN")
    make_user(db, email="old-admin@example.com", role="ADMIN", deleted_at=days_from_now(-3))
    linea("users", "set-role", "root@example.com", "VISITOR", exit_code=4)
    linea("users", "delete", "root@example.com", exit_code=4)


def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    db: Database, database_url: URL, tmp_path: Path
) -> None:
    make_user(db, email="a@example.com", role="ADMIN")
    make_user(db, email="b@example.com", role="ADMIN")
    env = {**os.environ, "LINEA_DATABASE_URL": plain_url(database_url), "LINEA_DATA_DIR": str(tmp_path),
           "LINEA_LOCK_TIMEOUT": "0"}  # both wait as long as the test holds the rows
    # Hold the admin rows so that both commands reach the guard before either can decide.
    with db.engine.begin() as held:
        held.exec_driver_sql("SELECT id FROM users WHERE role = 'ADMIN' FOR UPDATE")
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "linea_cli", "users", "set-role", email, "VISITOR"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for email in ("a@example.com", "b@example.com")
        ]
        wait_for_lock_waiters(db, "linea/users%", processes)  # both commands wait on the held rows
    outcomes = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in processes]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 4], outcomes
    assert any("last ADMIN" in err for _, err in outcomes)
    assert db.count("users", "role = 'ADMIN'") == 1


def test_demoting_an_owner_of_events_needs_force(linea: CliRun, db: Database) -> None:
    owner = make_user(db, email="olga@example.com", role="OWNER")
    make_event(db, owner=owner)
    make_event(db, owner=owner)
    make_event(db, owner=owner, deleted_at=days_from_now(-1))
    result = linea("users", "set-role", "olga@example.com", "VISITOR", exit_code=4)
    assert "owns 2 event" in result.stderr and "--force" in result.stderr
    assert db.scalar("SELECT role::text FROM users WHERE id = :id", id=owner["id"]) == "OWNER"
    linea("users", "set-role", "olga@example.com", "VISITOR", "--force")
    assert db.scalar("SELECT role::text FROM users WHERE id = :id", id=owner["id"]) == "VISITOR"
    assert db.count("events", "owner_id = :id", id=owner["id"]) == 3
    assert db.scalar("SELECT metadata->>'forced' FROM audit_logs") == "true"


def test_delete_soft_deletes_and_revokes_live_sessions(linea: CliRun, db: Database) -> None:
    user = make_user(db, email="ann@example.com")
    live = make_session(db, user=user)
    expired = make_session(db, user=user, expires_at=days_from_now(-1))
    other = make_session(db, user=make_user(db))
    result = linea("users", "delete", "ann@example.com")
    assert "revoked 1 live session" in result.stderr
    assert db.scalar("SELECT deleted_at FROM users WHERE id = :id", id=user["id"]) is not None
    assert db.scalar("SELECT deleted_at FROM sessions WHERE id = :id", id=live["id"]) is not None
    assert db.scalar("SELECT deleted_at FROM sessions WHERE id = :id", id=expired["id"]) is None
    assert db.scalar("SELECT deleted_at FROM sessions WHERE id = :id", id=other["id"]) is None
    assert db.count("sessions") == 3  # soft delete: nothing removed
    audit = db.one("SELECT action, metadata FROM audit_logs")
    assert audit.action == "DELETE" and audit.metadata["sessions_revoked"] == 1
    # Gone from lists and lookups, but still visible with --include-deleted, and restorable.
    assert "ann@example.com" not in [u["email"] for u in linea("users", "list", "--json").json["items"]]
    linea("users", "delete", "ann@example.com", exit_code=3)
    linea("users", "restore", "ann@example.com")
    assert db.scalar("SELECT deleted_at FROM users WHERE id = :id", id=user["id"]) is None
    assert db.scalar("SELECT deleted_at FROM sessions WHERE id = :id", id=live["id"]) is not None
    assert "not deleted" in linea("users", "restore", "ann@example.com", exit_code=4).stderr
    assert [r.action for r in db.all("SELECT action FROM audit_logs ORDER BY created_at, id")] == ["DELETE", "RESTORE"]


def test_deleting_the_last_admin_is_refused(linea: CliRun, db: Database) -> None:
    root = make_user(db, email="root@example.com", role="ADMIN")
    assert "last ADMIN" in linea("users", "delete", "root@example.com", exit_code=4).stderr
    assert db.scalar("SELECT deleted_at FROM users WHERE id = :id", id=root["id"]) is None
    make_user(db, email="second@example.com", role="ADMIN")
    linea("users", "delete", "root@example.com")
    assert "last ADMIN" in linea("users", "delete", "second@example.com", exit_code=4).stderr


def test_only_admins_manage_users(linea: CliRun, db: Database) -> None:
    make_user(db, email="root@example.com", role="ADMIN")
    make_user(db, email="olga@example.com", role="OWNER")
    make_user(db, email="vic@example.com", role="VISITOR")
    as_owner = ("--as", "olga@example.com")
    for args in (
        ("users", "create", "new@example.com"),
        ("users", "list"),
        ("users", "update", "vic@example.com", "--name", "V"),
        ("users", "set-role", "olga@example.com", "ADMIN"),
        ("users", "delete", "vic@example.com"),
        ("users", "restore", "vic@example.com"),
        ("users", "anonymize", "vic@example.com", "--yes"),
        ("users", "show", "vic@example.com"),
    ):
        result = linea(*as_owner, *args, exit_code=6)
        assert "ADMIN only" in result.stderr, args
    assert db.count("users") == 3
    assert db.count("audit_logs") == 0

    # Anyone may show themselves; an ADMIN acts and is recorded as the actor.
    assert linea("--as", "vic@example.com", "users", "show", "vic@example.com", "--json").json["role"] == "VISITOR"
    linea("--as", "root@example.com", "users", "create", "new@example.com")
    audit = db.one("SELECT user_id, metadata FROM audit_logs")
    assert audit.user_id == db.scalar("SELECT id FROM users WHERE email = 'root@example.com'")
    assert audit.metadata["actor"] == "user"


def test_restoring_an_anonymized_user_is_refused(linea: CliRun, db: Database) -> None:
    make_user(db, email="root@example.com", role="ADMIN")
    user = make_user(db, email="ann@example.com")
    linea("users", "anonymize", "ann@example.com", "--yes")
    assert "anonymized" in linea("users", "restore", user["id"], exit_code=4).stderr
