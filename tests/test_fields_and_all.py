"""--fields picks and orders columns in every format; --all streams every page of a list."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest

import linea_cli.cli.context
from tests.factories import days_from_now, make_audit_row, make_event, make_user, make_waitlist_entry
from tests.harness import CliRun, Database

FORMATS = ("table", "json", "ndjson", "csv")


def parsed(stdout: str, fmt: str) -> tuple[list[str], list[dict]]:
    """(the columns, the rows) of a list as printed in `fmt`."""
    if fmt == "json":
        items = json.loads(stdout)["items"]
        return (list(items[0]) if items else []), items
    if fmt == "ndjson":
        items = [json.loads(line) for line in stdout.splitlines() if line]
        return (list(items[0]) if items else []), items
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(stdout, newline=""))
        rows = list(reader)
        return list(reader.fieldnames or []), rows
    # A table piped (as here) is tab-separated with one header line.
    header, *rows = table_lines(stdout)
    return header, [dict(zip(header, row, strict=True)) for row in rows]


def table_lines(stdout: str) -> list[list[str]]:
    """A piped table's lines, split at tabs."""
    return [line.split("\t") for line in stdout.splitlines()]


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """--all reads 2 rows per query, so a handful of rows spans several pages. Yields the
    transactions begun so far (one per page) as a growing list, to show the pages were there."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    monkeypatch.setattr(linea_cli.cli.context, "ALL_PAGE_SIZE", 2)
    begun: list[int] = []

    def count(*_: object) -> None:
        begun.append(1)

    sa.event.listen(Session, "after_begin", count)
    yield begun
    sa.event.remove(Session, "after_begin", count)


def transactions(begun: list[int], linea: CliRun, *args: str) -> int:
    """How many transactions `linea ARGS` began."""
    before = len(begun)
    linea(*args)
    return len(begun) - before


@pytest.mark.parametrize("fmt", FORMATS)
def test_fields_pick_and_order_the_columns_of_a_list(linea: CliRun, db: Database, fmt: str) -> None:
    owner = make_user(db, role="OWNER")
    make_event(db, owner=owner, slug="alpha", status="DRAFT")
    make_event(db, owner=owner, slug="beta")
    columns, rows = parsed(linea("events", "list", "--format", fmt, "--fields", "status,SLUG").stdout, fmt)
    assert columns == ["status", "slug"]
    assert sorted((row["slug"], row["status"]) for row in rows) == [("alpha", "DRAFT"), ("beta", "PUBLISHED")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_all_streams_every_page_of_each_list(linea: CliRun, db: Database, small_pages: list[int], fmt: str) -> None:
    admin = make_user(db, role="ADMIN", email="admin@example.com")
    event = make_event(db, owner=admin, slug="big-day")
    for n in range(5):
        make_waitlist_entry(db, event=event, email=f"guest{n}@example.net")
        make_user(db, email=f"user{n}@example.com")
        make_audit_row(db, resource="Event", action="UPDATE")
    lists = {
        ("events", "list"): ("slug", 1),
        ("users", "list"): ("email", 6),
        ("waitlist", "list", "big-day"): ("email", 5),
        ("audit", "list"): ("id", 5),
    }
    for command, (field, expected) in lists.items():
        args = ("--as", "admin@example.com", *command, "--fields", field, "--format", fmt)
        one_page = transactions(small_pages, linea, *args, "--limit", "100")
        every_page = transactions(small_pages, linea, *args, "--all")
        # Each page after the first is a transaction of its own: 2 rows a page, so at least this many.
        assert every_page - one_page >= (expected + 1) // 2 - 1, (command, one_page, every_page)
        result = linea(*args, "--all")
        columns, rows = parsed(result.stdout, fmt)
        assert columns == [field], command
        assert len(rows) == expected, command
        assert len({row[field] for row in rows}) == expected, command  # no row twice
        assert "more:" not in result.stderr
        if fmt == "json":
            assert result.json["next_cursor"] is None


def test_all_starts_after_a_cursor(linea: CliRun, db: Database, small_pages: list[int]) -> None:
    owner = make_user(db, role="OWNER")
    for n in range(5):
        make_event(db, owner=owner, slug=f"e{n}", start_date=days_from_now(n + 1))
    first = linea("events", "list", "--limit", "1", "--json").json
    rest = linea("events", "list", "--all", "--after", first["next_cursor"], "-f", "ndjson", "--fields", "slug").stdout
    assert [json.loads(line)["slug"] for line in rest.splitlines()] == ["e1", "e2", "e3", "e4"]


def test_an_unknown_field_is_a_usage_error_listing_the_valid_ones(linea: CliRun, db: Database) -> None:
    make_user(db, email="ann@example.com")
    result = linea("users", "list", "--fields", "email,nope", exit_code=2)
    assert result.stdout == ""
    error, hint = result.stderr.splitlines()
    assert error == "error: unknown field for --fields: 'nope'"
    assert hint == "hint: valid fields: email, name, role, created_at, deleted_at, id"
    shown = linea("users", "show", "ann@example.com", "--fields", "emial", exit_code=2)
    assert "valid fields: id, email" in shown.stderr


def test_an_unknown_field_stops_a_change_before_it_commits(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER", email="owner@example.com")
    linea("--as", "owner@example.com", "events", "create", "--title", "Party", "--start", "2030-01-01",
          "--fields", "slug,colour", exit_code=2)
    assert db.count("events") == 0
    event = make_event(db, owner=owner, slug="party", status="DRAFT")
    linea("--as", "owner@example.com", "events", "publish", "party", "--fields", "colour", exit_code=2)
    assert db.scalar("SELECT status::text FROM events WHERE id = :id", id=event["id"]) == "DRAFT"


@pytest.mark.parametrize("fmt", FORMATS)
def test_fields_of_a_single_record(linea: CliRun, db: Database, fmt: str) -> None:
    make_user(db, email="ann@example.com", role="OWNER")
    out = linea("users", "show", "ann@example.com", "--format", fmt, "--fields", "role,email").stdout
    if fmt in ("json", "ndjson"):
        assert json.loads(out) == {"role": "OWNER", "email": "ann@example.com"}
    elif fmt == "csv":
        assert out.splitlines() == ["role,email", "OWNER,ann@example.com"]
    else:
        assert table_lines(out) == [["role", "OWNER"], ["email", "ann@example.com"]]


def test_exports_take_the_same_format_json_and_fields(linea: CliRun, db: Database) -> None:
    event = make_event(db, slug="gala")
    make_waitlist_entry(db, event=event, email="=cmd@example.net", status="CONFIRMED")
    make_waitlist_entry(db, event=event, email="b@example.net")
    assert linea("waitlist", "export", "gala", "--json", "--fields", "status,email").json == [
        {"status": "CONFIRMED", "email": "=cmd@example.net"}, {"status": "PENDING", "email": "b@example.net"},
    ]
    # CSV with --fields goes through the renderer: still neutralized.
    assert linea("waitlist", "export", "gala", "--fields", "email").stdout.splitlines() == [
        "email", "'=cmd@example.net", "b@example.net",
    ]
    make_audit_row(db, action="DELETE", resource="Venue")
    audit = linea("audit", "export", "--format", "csv", "--fields", "action,resource").stdout
    assert audit.splitlines()[0] == "action,resource" and "DELETE,Venue" in audit.splitlines()
    linea("audit", "export", "--fields", "nope", exit_code=2)
    assert db.count("audit_logs", "action = 'EXPORT'") == 2  # the refused export wrote no audit row


def test_fields_show_a_column_a_table_hides_by_default(linea: CliRun, db: Database) -> None:
    make_user(db, email="ann@example.com", role="OWNER")
    out = linea("users", "list", "--fields", "deleted_at,email").stdout
    assert table_lines(out) == [["deleted_at", "email"], ["", "ann@example.com"]]
