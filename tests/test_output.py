"""--format table|json|ndjson|csv behave the same for every command."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from tests.factories import make_audit_row, make_event, make_user, make_venue, make_waitlist_entry
from tests.harness import CliRun, Database, run_linea_into_closed_pipe


def test_formats_of_a_list(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER", email="owner@example.com")
    make_event(db, owner=owner, title="=HYPERLINK(1)", slug="formula")
    make_event(db, owner=owner, title="Café, \"quoted\"", slug="cafe")

    page = linea("events", "list", "--json").json
    assert set(page) == {"items", "next_cursor"} and page["next_cursor"] is None
    assert {item["slug"] for item in page["items"]} == {"formula", "cafe"}
    first = page["items"][0]
    assert first["status"] == "PUBLISHED"
    assert first["start_date"].endswith("+00:00")

    lines = linea("events", "list", "--format", "ndjson").stdout.strip().splitlines()
    assert [json.loads(line)["slug"] for line in lines] == [item["slug"] for item in page["items"]]

    rows = list(csv.DictReader(io.StringIO(linea("events", "list", "--format", "csv").stdout)))
    titles = {row["title"] for row in rows}
    assert titles == {"'=HYPERLINK(1)", 'Café, "quoted"'}

    table = linea("events", "list").stdout
    assert "cafe" in table and "\x1b[" not in table


def test_pagination_cursor_goes_to_stderr_outside_json(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    for n in range(3):
        make_event(db, owner=owner, slug=f"e{n}")
    result = linea("events", "list", "--limit", "2", "--format", "ndjson")
    assert len(result.stdout.strip().splitlines()) == 2
    assert "more: --after " in result.stderr
    cursor = result.stderr.split("more: --after ")[1].split()[0]
    rest = linea("events", "list", "--limit", "2", "--after", cursor, "--format", "ndjson")
    assert len(rest.stdout.strip().splitlines()) == 1


def test_a_bad_cursor_is_invalid_input(linea: CliRun) -> None:
    result = linea("events", "list", "--after", "not-a-cursor", exit_code=1)
    assert "invalid cursor" in result.stderr


# --- hostile data: control characters and markup ---------------------------------------------

MALLORY = "Mal\x1b]0;PWNED\x07lory\x1b[2J"  # retitles the window and clears the screen, if sent as is
RED_TITLE = "Gala \x1b[31mred"
VENUE = "Hall\x1b[2J\nSecond line\u202eevil\x9b"


def hostile_rows(db: Database) -> dict:
    owner = make_user(db, role="OWNER", email="mallory@example.com", name=MALLORY)
    venue = make_venue(db, name=VENUE)
    return make_event(db, owner=owner, venue_id=venue["id"], title=RED_TITLE, slug="gala") | {"venue": venue}


def assert_no_raw_controls(text: str) -> None:
    assert not any(char in text for char in "\x1b\x07\x9b\u202e"), repr(text)


def test_control_characters_in_data_are_shown_escaped_in_tables(linea: CliRun, db: Database) -> None:
    event = hostile_rows(db)
    for args in (("users", "list"), ("users", "show", "mallory@example.com"), ("events", "list"),
                 ("events", "show", "gala"), ("venues", "list"), ("venues", "show", event["venue"]["id"])):
        result = linea(*args)
        assert_no_raw_controls(result.stdout + result.stderr)
    assert "Mal\\x1b]0;PWNED\\x07lory\\x1b[2J" in linea("users", "list").stdout
    assert "Gala \\x1b[31mred" in linea("events", "show", "gala").stdout
    shown = linea("venues", "show", event["venue"]["id"]).stdout
    assert "Hall\\x1b[2J\\nSecond line\\u202eevil\\x9b" in shown  # the title and the name field
    assert "\nSecond line" not in shown  # a newline in data does not start a line of its own


def test_json_escapes_and_csv_carries_control_characters_as_they_are(linea: CliRun, db: Database) -> None:
    hostile_rows(db)
    text = linea("users", "list", "--json").stdout
    assert_no_raw_controls(text)
    assert json.loads(text)["items"][0]["name"] == MALLORY
    venue_json = linea("events", "list", "--format", "ndjson").stdout
    assert "\\u001b[2J\\nSecond line\\u202eevil\\u009b" in venue_json  # C1 and bidi escaped too
    assert json.loads(venue_json)["venue_name"] == VENUE
    [row] = csv.DictReader(io.StringIO(linea("users", "list", "--format", "csv").stdout, newline=""))
    assert row["name"] == MALLORY
    [row] = csv.DictReader(io.StringIO(linea("events", "list", "--format", "csv").stdout, newline=""))
    assert row["title"] == RED_TITLE and row["venue_name"] == VENUE


def test_rich_markup_in_data_is_shown_as_typed(linea: CliRun, db: Database) -> None:
    name = "[bold]Bo[/bold] [/] [link=https://evil.example]click[/link] :smile:"
    make_user(db, email="bo@example.com", name=name)
    make_venue(db, name="[/]")
    assert name in linea("users", "list").stdout
    assert name in linea("users", "show", "bo@example.com").stdout
    assert "[/]" in linea("venues", "list").stdout


def test_messages_and_errors_escape_control_characters(linea: CliRun, db: Database, tmp_path: Path) -> None:
    result = linea("events", "show", "x\x1b[2J", exit_code=3)
    assert_no_raw_controls(result.stderr)
    assert "x\\x1b[2J" in result.stderr and len(result.stderr.splitlines()) == 1
    result = linea("events", "show", "a\nerror: forged", exit_code=3)
    assert len(result.stderr.splitlines()) == 1
    # A warning that quotes the file: an unknown column named with an escape sequence and a newline.
    event = make_event(db)
    path = tmp_path / "list.csv"
    path.write_text('email,"evil\x1b]0;PWNED\x07\nline"\nann@example.com,x\n', encoding="utf-8")
    result = linea("waitlist", "import", event["slug"], str(path))
    assert_no_raw_controls(result.stderr)
    assert "warning: ignored unknown column(s): evil\\x1b]0;PWNED\\x07\\nline\n" in result.stderr


# --- closed pipes ------------------------------------------------------------------------------

def test_a_closed_pipe_ends_quietly_with_141(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER", email="owner@example.com")
    event = make_event(db, owner=owner, slug="fest")
    make_waitlist_entry(db, event=event, email="ann@example.com")
    for args in (
        ["events", "list", "--format", "csv"],
        ["events", "list", "--json"],
        ["events", "list", "--format", "ndjson"],
        ["events", "list"],
        ["events", "show", "fest"],
        ["waitlist", "export", "fest"],
        ["waitlist", "export", "fest", "--format", "ndjson"],
        ["audit", "export", "--format", "csv"],
        ["users", "export", "owner@example.com"],
        ["db", "upgrade", "--sql"],
    ):
        completed = run_linea_into_closed_pipe(args, env=linea.env)
        assert (completed.returncode, completed.stderr) == (141, ""), args


def test_a_real_pipe_into_head(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    # Far more than a pipe holds (64 KiB), so linea is still writing when head has gone.
    db.execute(
        "INSERT INTO events (id, title, slug, status, start_date, owner_id, created_at, updated_at) "
        "SELECT 'ev' || n, 'A rather long event title, number ' || n, 'event-' || n, 'PUBLISHED', "
        "now() AT TIME ZONE 'UTC', :owner, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC' "
        "FROM generate_series(1, 3000) AS n",
        owner=owner["id"],
    )
    linea_script = Path(sys.executable).with_name("linea")
    completed = subprocess.run(
        ["bash", "-c", '"$0" events list --format csv --limit 10000 | head -1; exit "${PIPESTATUS[0]}"', str(linea_script)],
        env={**os.environ, **linea.env}, capture_output=True, text=True, timeout=120,
    )
    assert completed.stdout == "slug,title,status,start_date,end_date,capacity,owner_email,venue_name,id,deleted_at\n"
    assert (completed.returncode, completed.stderr) == (141, "")


# --- CSV cells and timestamps ------------------------------------------------------------------

def test_csv_neutralizes_typed_text_but_never_numbers(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER", name="@owner")
    make_event(db, owner=owner, slug="south", title="-minus", description="=1+1", capacity=12,
               map_lat=-37.7869, map_lng=-122.4194, map_zoom=3)
    venue = make_venue(db, name="+plus", latitude=-33.9, longitude=-70.6)
    [row] = csv.DictReader(io.StringIO(linea("events", "show", "south", "--format", "csv").stdout, newline=""))
    assert (row["map_lat"], row["map_lng"], row["capacity"]) == ("-37.7869", "-122.4194", "12")
    assert (row["title"], row["description"], row["owner_name"]) == ("'-minus", "'=1+1", "'@owner")
    [row] = csv.DictReader(io.StringIO(linea("venues", "show", venue["id"], "--format", "csv").stdout, newline=""))
    assert (row["name"], row["latitude"], row["longitude"]) == ("'+plus", "-33.9", "-70.6")


def test_one_timestamp_format_everywhere(linea: CliRun, db: Database) -> None:
    stamp, whole = datetime(2026, 11, 25, 11, 55, 57, 301000), datetime(2026, 11, 25, 12, 0)
    expected = ["2026-11-25T11:55:57.301+00:00", "2026-11-25T12:00:00.000+00:00"]
    event = make_event(db, slug="fest")
    for moment in (stamp, whole):
        make_waitlist_entry(db, event=event, created_at=moment, updated_at=moment)
        make_audit_row(db, created_at=moment)

    def csv_column(text: str, column: str) -> list[str]:
        return [row[column] for row in csv.DictReader(io.StringIO(text, newline=""))]

    seen = {
        "list json": [row["created_at"] for row in linea("waitlist", "list", "fest", "--json").json["items"]],
        "list ndjson": [json.loads(line)["created_at"] for line in linea("waitlist", "list", "fest", "-f", "ndjson").stdout.splitlines()],
        "list csv": csv_column(linea("waitlist", "list", "fest", "-f", "csv").stdout, "created_at"),
        "export csv (COPY)": csv_column(linea("waitlist", "export", "fest").stdout, "created_at"),
        "export csv updated_at (COPY)": csv_column(linea("waitlist", "export", "fest").stdout, "updated_at"),
        "export json": [row["created_at"] for row in linea("waitlist", "export", "fest", "-f", "json").json],
        # (the exports above wrote EXPORT rows to the audit log: only the two made here)
        "audit list": sorted(row["created_at"] for row in linea("audit", "list", "--action", "UPDATE", "--json").json["items"]),
        "audit export csv": csv_column(linea("audit", "export", "--action", "UPDATE", "--format", "csv").stdout, "created_at"),
        "audit export ndjson": [json.loads(line)["created_at"] for line in linea("audit", "export", "--action", "UPDATE").stdout.splitlines()],
    }
    assert seen == {name: expected for name in seen}
    table = linea("waitlist", "list", "fest").stdout
    assert all(text in table for text in expected)


def test_python_and_sql_timestamp_formats_agree(db: Database) -> None:
    from linea_cli.timeutil import SQL_ISO_TIMESTAMP, iso_timestamp

    written = {
        datetime(2026, 1, 2, 3, 4, 5, 6000): "2026-01-02T03:04:05.006+00:00",
        datetime(1999, 12, 31, 23, 59, 59): "1999-12-31T23:59:59.000+00:00",
        datetime(2026, 6, 1, 0, 0, 0, 999000): "2026-06-01T00:00:00.999+00:00",
    }
    for moment, text in written.items():
        assert iso_timestamp(moment) == text
        assert db.scalar(f"SELECT to_char(CAST(:m AS timestamp(3)), {SQL_ISO_TIMESTAMP})", m=moment) == text
