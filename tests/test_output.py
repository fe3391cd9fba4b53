"""--format table|json|ndjson|csv behave the same for every command."""

from __future__ import annotations

import csv
import io
import json

from tests.factories import make_event, make_user
from tests.harness import CliRun, Database


def test_formats_of_a_list(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER", email="owner@example.com")
    make_event(db, owner=owner, title="=HYPERLINK(1)", slug="formula")
    make_event(db, owner=owner, title="Café, \"quoted\"", slug="cafe")

    page = json.loads(linea("events", "list", "--json").stdout)
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
