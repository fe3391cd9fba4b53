"""The audit log: append-only in the database itself, and `linea audit list|show|export`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.factories import days_from_now, make_audit_row, make_user
from tests.harness import CliRun, Database

# --- append-only triggers -------------------------------------------------------------------


def _fails(db: Database, statement: str, *setup: str) -> str:
    with pytest.raises(sa.exc.DBAPIError) as caught, db.engine.begin() as connection:
        for line in setup:
            connection.exec_driver_sql(line)
        connection.exec_driver_sql(statement)
    return str(caught.value.orig)


def test_update_delete_and_truncate_on_audit_logs_fail(db: Database) -> None:
    row = make_audit_row(db, ip_address="203.0.113.7", metadata={"k": "v"})
    assert "audit_logs is append-only: UPDATE is not allowed" in _fails(db, "UPDATE audit_logs SET ip_address = NULL")
    assert "DELETE is not allowed" in _fails(db, f"DELETE FROM audit_logs WHERE id = '{row['id']}'")
    assert "TRUNCATE is not allowed" in _fails(db, "TRUNCATE audit_logs")
    assert "TRUNCATE is not allowed" in _fails(db, "TRUNCATE audit_logs CASCADE")
    assert db.one("SELECT ip_address, metadata FROM audit_logs").ip_address == "203.0.113.7"
    make_audit_row(db)  # appending stays free
    assert db.count("audit_logs") == 2


def test_the_scrub_setting_allows_only_scrubbing_and_only_in_its_transaction(db: Database) -> None:
    row = make_audit_row(db, ip_address="203.0.113.7", user_agent="Mozilla/5.0 (Scrub)")
    scrub = "SELECT set_config('linea.audit_scrub', 'on', true)"
    with db.engine.begin() as connection:
        connection.exec_driver_sql(scrub)
        connection.exec_driver_sql("UPDATE audit_logs SET ip_address = NULL, user_agent = NULL")
    assert db.one("SELECT ip_address, user_agent FROM audit_logs").ip_address is None
    # Even while scrubbing, rows are never removed and never become other rows.
    assert "append-only" in _fails(db, "DELETE FROM audit_logs", scrub)
    assert "append-only" in _fails(db, "TRUNCATE audit_logs", scrub)
    assert "scrub" in _fails(db, "UPDATE audit_logs SET action = 'CREATE'", scrub)
    assert "scrub" in _fails(db, "UPDATE audit_logs SET created_at = created_at - interval '1 day'", scrub)
    # The setting ended with its transaction.
    assert "append-only" in _fails(db, "UPDATE audit_logs SET ip_address = 'x'")
    assert db.count("audit_logs", "id = :id", id=row["id"]) == 1


def test_hard_deleting_a_user_with_audit_rows_is_refused(db: Database) -> None:
    user = make_user(db)
    make_audit_row(db, user_id=user["id"])
    # ON DELETE SET NULL would rewrite the audit row; the trigger refuses that too.
    assert "append-only" in _fails(db, f"DELETE FROM users WHERE id = '{user['id']}'")
    assert db.count("users") == 1


def test_triggers_survive_a_downgrade_upgrade_round_trip(linea: CliRun, db: Database) -> None:
    make_audit_row(db)
    linea("db", "downgrade", "1a0c2f5e8b01")
    assert db.count("audit_logs") == 1
    assert db.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_logs'::regclass AND NOT tgisinternal") == 0
    db.execute("UPDATE audit_logs SET ip_address = 'allowed without the triggers'")
    linea("db", "upgrade")
    names = {r.tgname for r in db.all("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_logs'::regclass AND NOT tgisinternal")}
    assert names == {"audit_logs_append_only", "audit_logs_no_truncate"}
    assert "append-only" in _fails(db, "UPDATE audit_logs SET ip_address = NULL")
    assert "append-only" in _fails(db, "DELETE FROM audit_logs")
    assert "append-only" in _fails(db, "TRUNCATE audit_logs")


def test_the_migration_sql_is_reviewable(linea: CliRun) -> None:
    result = linea("db", "downgrade", "1a0c2f5e8b01", "--sql")
    assert 'DROP TRIGGER "audit_logs_append_only"' in result.stdout


# --- list / show / export -------------------------------------------------------------------


@pytest.fixture
def history(db: Database) -> dict[str, dict]:
    root = make_user(db, email="root@example.com", role="ADMIN")
    rows = {
        "old": make_audit_row(db, action="CREATE", resource="Event", resource_id="e1", created_at=days_from_now(-10)),
        "mid": make_audit_row(db, action="UPDATE", resource="Event", resource_id="e1", user_id=root["id"],
                              created_at=days_from_now(-5), metadata={"changes": {"title": {"before": "A", "after": "B"}}}),
        "user": make_audit_row(db, action="UPDATE", resource="User", resource_id="u1", user_id=root["id"],
                               created_at=days_from_now(-2), ip_address="198.51.100.4", user_agent="Mozilla/5.0"),
        "new": make_audit_row(db, action="DELETE", resource="Event", resource_id="e2", created_at=days_from_now(-1)),
    }
    return rows


def _ids(linea: CliRun, *args: str) -> list[str]:
    return [row["id"] for row in linea("audit", "list", "--json", *args).json["items"]]


def test_list_is_newest_first_and_filters(linea: CliRun, history: dict[str, dict]) -> None:
    h = {name: row["id"] for name, row in history.items()}
    assert _ids(linea) == [h["new"], h["user"], h["mid"], h["old"]]
    assert _ids(linea, "--resource", "Event") == [h["new"], h["mid"], h["old"]]
    assert _ids(linea, "--resource", "Event", "--resource-id", "e1") == [h["mid"], h["old"]]
    assert _ids(linea, "--user", "root@example.com") == [h["user"], h["mid"]]
    assert _ids(linea, "--action", "update") == [h["user"], h["mid"]]
    since = days_from_now(-6).isoformat() + "+00:00"
    until = days_from_now(-1.5).isoformat() + "+00:00"
    assert _ids(linea, "--since", since, "--until", until) == [h["user"], h["mid"]]
    linea("audit", "list", "--since", "yesterday", exit_code=1)
    linea("audit", "list", "--user", "nobody@example.com", exit_code=3)
    rows = linea("audit", "list", "--user", "root@example.com", "--json").json["items"]
    assert rows[0]["actor_email"] == "root@example.com"


def test_list_paginates_by_cursor(linea: CliRun, history: dict[str, dict]) -> None:
    page = linea("audit", "list", "--limit", "3", "--json").json
    rest = linea("audit", "list", "--limit", "3", "--after", page["next_cursor"], "--json").json
    assert [r["id"] for r in rest["items"]] == [history["old"]["id"]]
    assert rest["next_cursor"] is None
    table = linea("audit", "list", "--limit", "1")
    assert "more: --after" in table.stderr


def test_show_pretty_prints_the_metadata(linea: CliRun, history: dict[str, dict]) -> None:
    row = history["mid"]
    table = linea("audit", "show", row["id"]).stdout
    assert '"changes": {' in table and '"before": "A"' in table
    record = linea("audit", "show", row["id"], "--json").json
    assert record["metadata"] == {"changes": {"title": {"before": "A", "after": "B"}}}
    assert record["actor_email"] == "root@example.com"
    linea("audit", "show", "nope", exit_code=3)


def test_only_admins_read_the_audit_log(linea: CliRun, db: Database, history: dict[str, dict]) -> None:
    make_user(db, email="olga@example.com", role="OWNER")
    for args in (("audit", "list"), ("audit", "show", history["old"]["id"]), ("audit", "export")):
        linea("--as", "olga@example.com", *args, exit_code=6)
    linea("--as", "root@example.com", "audit", "list")


def test_export_ndjson_and_csv_to_stdout(linea: CliRun, history: dict[str, dict]) -> None:
    lines = linea("audit", "export", "--resource", "Event").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == [history["old"]["id"], history["mid"]["id"], history["new"]["id"]]  # oldest first
    assert rows[1]["metadata"]["changes"]["title"]["after"] == "B"
    text = linea("audit", "export", "--format", "csv", "--action", "UPDATE").stdout
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in parsed] == [history["mid"]["id"], history["user"]["id"]]
    assert parsed[1]["ip_address"] == "198.51.100.4"
    assert json.loads(parsed[0]["metadata"])["changes"]["title"]["before"] == "A"


def test_export_streams_many_rows_to_a_file_atomically(linea: CliRun, db: Database, tmp_path: Path) -> None:
    db.execute(
        "INSERT INTO audit_logs (id, action, resource, resource_id, metadata, created_at) "
        "SELECT 'bulk' || lpad(n::text, 6, '0'), 'IMPORT', 'Waitlist', 'e' || n, jsonb_build_object('n', n), "
        "(now() AT TIME ZONE 'UTC') - make_interval(secs => 100000 - n) FROM generate_series(1, 12000) AS n"
    )
    target = tmp_path / "out" / "audit.ndjson"
    target.parent.mkdir()
    result = linea("audit", "export", "-o", str(target))
    assert "wrote 12000 audit row(s)" in result.stderr
    assert result.stdout == ""
    lines = target.read_text().splitlines()
    assert len(lines) == 12000
    assert json.loads(lines[0])["id"] == "bulk000001" and json.loads(lines[-1])["metadata"] == {"n": 12000}
    assert [p.name for p in target.parent.iterdir()] == ["audit.ndjson"]  # no temporary file left

    # A failing export leaves an existing file untouched.
    target.write_text("previous\n")
    linea("audit", "export", "-o", str(target), "--user", "nobody@example.com", exit_code=3)
    assert target.read_text() == "previous\n"
    assert [p.name for p in target.parent.iterdir()] == ["audit.ndjson"]
    assert "cannot write" in linea("audit", "export", "-o", str(tmp_path / "missing" / "a.csv"), exit_code=1).stderr


def test_an_export_failing_midway_leaves_no_file(
    linea: CliRun, history: dict[str, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import linea_cli.output

    real_dumps, written = linea_cli.output.dumps, []

    def dumps_then_fail(value: object, **kwargs: object) -> str:
        if len(written) == 2:
            raise RuntimeError("disk full")
        written.append(value)
        return real_dumps(value, **kwargs)

    monkeypatch.setattr(linea_cli.output, "dumps", dumps_then_fail)
    target = tmp_path / "audit.ndjson"
    linea("audit", "export", "-o", str(target), exit_code=70)
    assert len(written) == 2
    assert [p.name for p in tmp_path.iterdir() if "audit" in p.name] == []  # nor a temporary one
    assert not target.exists()

