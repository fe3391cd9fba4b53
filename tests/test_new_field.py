"""A new nullable `events` column is one field declaration (tests/scratch_column.py): it shows in
`events create/update` options, `show`, `list --fields`, every format, and, being personal, in
the GDPR export and erasure."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from tests.factories import make_user
from tests.harness import ROOT, CliRun, Database


@pytest.fixture
def scratch(linea: CliRun, db: Database) -> CliRun:
    """`linea ...` with the scratch field declared, against a database that has its column."""
    db.execute("ALTER TABLE events ADD COLUMN scratch_note text")

    def run(*args: str, exit_code: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "tests.scratch_column", *args], cwd=ROOT, env={**os.environ, **linea.env},
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == exit_code, f"linea {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    return run  # type: ignore[return-value]


def test_a_new_field_is_an_option_a_record_key_a_list_field_and_every_format(scratch: CliRun, db: Database) -> None:
    owner = make_user(db, email="olga@example.com", role="OWNER")
    assert "--scratch-note TEXT" in scratch("events", "create", "--help").stdout
    update_help = " ".join(scratch("events", "update", "--help").stdout.split()).replace("- ", "-")
    assert "--scratch-note TEXT A note." in update_help
    assert "Empty a field: end, description, capacity, youtube-url, lat, lng, zoom, venue, scratch-note (repeatable)." in update_help

    created = json.loads(scratch(
        "events", "create", "--title", "Note Fest", "--start", "2031-05-01", "--owner", owner["email"],
        "--scratch-note", "bring a torch", "--json",
    ).stdout)
    assert created["scratch_note"] == "bring a torch"
    assert db.scalar("SELECT scratch_note FROM events WHERE slug = 'note-fest'") == "bring a torch"

    scratch("events", "update", "note-fest", "--scratch-note", "bring two")
    assert db.scalar("SELECT scratch_note FROM events WHERE slug = 'note-fest'") == "bring two"
    audit = db.scalar("SELECT metadata FROM audit_logs WHERE action = 'UPDATE' AND resource = 'Event'")
    assert audit["changes"]["scratch_note"] == {"before": "bring a torch", "after": "bring two"}

    assert json.loads(scratch("events", "show", "note-fest", "--json").stdout)["scratch_note"] == "bring two"
    assert scratch("events", "show", "note-fest", "--fields", "slug,scratch-note").stdout == "slug\tnote-fest\nscratch_note\tbring two\n"
    listed = json.loads(scratch("events", "list", "--json").stdout)
    assert listed["items"][0]["scratch_note"] == "bring two"
    assert scratch("events", "list", "--fields", "slug,scratch_note").stdout == "slug\tscratch_note\nnote-fest\tbring two\n"
    assert scratch("events", "list", "-f", "ndjson", "--fields", "scratch_note").stdout == '{"scratch_note": "bring two"}\n'
    rows = list(csv.reader(io.StringIO(scratch("events", "list", "-f", "csv").stdout)))
    assert rows[0][-1] == "scratch_note"
    assert rows[1][-1] == "bring two"
    # A wide column: a table for people shows it with --format wide only.
    assert "scratch_note" not in scratch("events", "list").stdout
    assert scratch("events", "list", "-f", "wide").stdout.splitlines()[0].endswith("\tscratch_note")

    scratch("events", "update", "note-fest", "--clear", "scratch-note")
    assert db.scalar("SELECT scratch_note FROM events WHERE slug = 'note-fest'") is None


def test_a_new_personal_field_is_exported_and_erased(scratch: CliRun, db: Database) -> None:
    owner = make_user(db, email="pia@example.com", role="OWNER")
    scratch("events", "create", "--title", "Pia Night", "--start", "2031-06-01", "--owner", owner["email"],
            "--scratch-note", "call Pia on 555-0100")

    exported = json.loads(scratch("users", "export", "pia@example.com").stdout)
    assert exported["owned_events"][0]["scratch_note"] == "call Pia on 555-0100"

    scratch("users", "anonymize", "pia@example.com", "--yes")
    assert db.scalar("SELECT scratch_note FROM events WHERE slug = 'pia-night'") is None
    assert db.scalar("SELECT title FROM events WHERE slug = 'pia-night'") == "Pia Night"
