"""The output options, declared once (`@output_options`): `--fields` checked before a change
commits, and every format written by output.py (test_help checks every command takes them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linea_cli.cli.options import Output, output_options
from tests.factories import make_event, make_session, make_user, make_waitlist_entry
from tests.harness import CliRun, Database


def test_a_command_declaring_an_output_option_itself_is_refused() -> None:
    def listed(fields: str | None = None, *, out: Output) -> None:
        """Declares --fields twice."""

    with pytest.raises(TypeError, match="declares fields itself"):
        output_options()(listed)
    with pytest.raises(TypeError, match="needs a parameter `out: Output`"):
        output_options()(lambda: None)


def test_an_unknown_field_stops_each_change_before_its_commit(linea: CliRun, db: Database) -> None:
    event = make_event(db, capacity=10)
    make_waitlist_entry(db, event=event, email="ann@example.com")
    user = make_user(db)
    login = make_session(db, user=user)
    for args in (
        ("waitlist", "add", event["slug"], "bob@example.com", "--fields", "email,nope"),
        ("waitlist", "confirm", event["slug"], "ann@example.com", "--fields", "email,nope"),
        ("waitlist", "cancel", event["slug"], "ann@example.com", "--fields", "email,nope"),
        ("waitlist", "remove", event["slug"], "ann@example.com", "--fields", "email,nope"),
        ("waitlist", "promote", event["slug"], "--fields", "email,nope"),
        ("sessions", "revoke", login["id"], "--fields", "id,nope"),
        ("sessions", "revoke", "--user", user["email"], "--fields", "revoked,nope"),
    ):
        result = linea(*args, exit_code=2)
        assert result.stderr.startswith("error: unknown field for --fields: 'nope'\nhint: valid fields: "), (args, result.stderr)
    assert db.all("SELECT email, status::text, deleted_at FROM waitlist_entries") == [("ann@example.com", "PENDING", None)]
    assert db.scalar("SELECT deleted_at FROM sessions") is None
    assert db.count("audit_logs") == 0


def test_promote_writes_one_document_in_json_and_the_entries_elsewhere(linea: CliRun, db: Database) -> None:
    event = make_event(db, slug="promo", capacity=2)
    make_waitlist_entry(db, event=event, email="a@example.com")
    make_waitlist_entry(db, event=event, email="b@example.com")
    make_waitlist_entry(db, event=event, email="c@example.com")
    document = linea("waitlist", "promote", "promo", "--count", "1", "--json", "--fields", "email,status")
    assert json.loads(document.stdout) == {
        "event": "promo", "promoted": 1, "capacity": 2, "places_left": 1, "pending_left": 2,
        "entries": [{"email": "a@example.com", "status": "CONFIRMED"}],
    }
    assert document.stdout.startswith('{\n  "event": "promo",\n') and document.stderr == ""
    lines = linea("waitlist", "promote", "promo", "--count", "1", "--format", "ndjson", "--fields", "status,email")
    assert lines.stdout == '{"status": "CONFIRMED", "email": "b@example.com"}\n'
    assert lines.stderr == "promoted 1 on promo; places left: 0; still pending: 1\n"
    table = linea("waitlist", "promote", "promo", "--format", "csv", "--fields", "email")
    assert table.stdout.splitlines() == ["email"]


def test_the_errors_file_is_csv_with_the_addresses_neutralized(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    source = tmp_path / "in.csv"
    source.write_text("email\nok@example.com\n=cmd|x\n-bad\n", encoding="utf-8")
    errors = tmp_path / "errors.csv"
    linea("waitlist", "import", event["slug"], str(source), "--skip-invalid", "--errors-file", str(errors))
    assert errors.read_bytes() == (
        b"line,email,reason\r\n"
        b"3,'=cmd|x,invalid email '=cmd|x': An email address must have an @-sign.\r\n"
        b"4,'-bad,invalid email '-bad': An email address must have an @-sign.\r\n"
    )


def test_an_unknown_field_stops_a_large_import_before_it_reads_the_file(
    linea: CliRun, db: Database, tmp_path: Path
) -> None:
    # It was checked when the last batch committed: 12,000 entries written, then undone (IMPORT_UNDONE).
    event = make_event(db)
    source = tmp_path / "large.csv"
    source.write_text("email\n" + "".join(f"guest{n}@example.com\n" for n in range(12_000)), encoding="utf-8")
    result = linea("waitlist", "import", event["slug"], str(source), "--fields", "inserted,nope", exit_code=2)
    assert result.stderr.startswith("error: unknown field for --fields: 'nope'\n"), result.stderr
    assert "undid" not in result.stderr
    assert db.count("waitlist_entries") == 0 and db.count("audit_logs") == 0
    dry = linea("waitlist", "import", event["slug"], str(source), "--dry-run", "--fields", "nope", exit_code=2)
    assert dry.stderr.startswith("error: unknown field for --fields: 'nope'\n"), dry.stderr
