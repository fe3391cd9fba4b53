"""Tables for people fit the terminal; piped tables are plain TSV for cut and awk."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.cells import cell_len

from tests.factories import (
    days_from_now,
    make_audit_row,
    make_event,
    make_session,
    make_user,
    make_venue,
    make_waitlist_entry,
)
from tests.harness import ROOT, CliRun, Database, run_linea_in_terminal, run_linea_on_terminal

LONG_TITLE = "The International Conference on Distributed Systems, Databases and Everything In Between"
LONG_SLUG = "international-conference-on-distributed-systems-2026"
OWNER_EMAIL = "alexandra.konstantinopoulou-whitfield@events.example.com"
GUEST_EMAIL = "maximilian.bartholomew.featherstonehaugh@guests.example.org"
SHORT_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")
FULL_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


@pytest.fixture
def long_rows(db: Database) -> dict:
    """A page of everything with the longest values people type: titles, slugs, emails, names."""
    owner = make_user(db, role="ADMIN", email=OWNER_EMAIL, name="Alexandra Konstantinopoulou-Whitfield of Somewhere")
    venue = make_venue(db, name="The Grand Municipal Hall of Congresses and Exhibitions", address="1234 Avenida da Liberdade, Bloco C",
                       website="https://www.grand-municipal-hall-of-congresses.example.com/visit")
    event = make_event(db, owner=owner, venue_id=venue["id"], title=LONG_TITLE, slug=LONG_SLUG, capacity=2500,
                       description="A long description. " * 20, end_date=days_from_now(31))
    past = make_event(db, owner=owner, title="Past " + LONG_TITLE, slug="past-" + LONG_SLUG,
                      start_date=days_from_now(-3), end_date=days_from_now(-2))
    make_waitlist_entry(db, event=past, email="no.account.at.all@long-forgotten-guests.example.org")
    make_event(db, owner=owner, title="Deleted", slug="deleted-" + LONG_SLUG, deleted_at=days_from_now(-1))
    guest = make_user(db, email=GUEST_EMAIL, name="Maximilian Bartholomew Featherstonehaugh the Third")
    make_waitlist_entry(db, event=event, email=GUEST_EMAIL, user_id=guest["id"])
    make_waitlist_entry(db, event=event, email="short@example.net", status="CONFIRMED")
    make_session(db, user=guest, expires_at=days_from_now(2))
    audit = make_audit_row(db, user_id=owner["id"], resource_id=event["id"],
                           metadata={"before": {"title": "x"}, "after": {"title": LONG_TITLE, "owner_id": owner["id"]}})
    return {"owner": owner, "venue": venue, "event": event, "audit": audit}


@dataclass(frozen=True)
class ListView:
    """A list command as a terminal shows it.

    `name` is the key naming its rows (always shown); `copied` are the keys of the JSON items whose
    values people copy back into commands (ids, slugs, emails): a table shows them whole or not at
    all, never a piece; `headers` are the column titles a terminal 80 and 120 columns wide shows.
    """

    name: str
    copied: tuple[str, ...]
    headers: dict[int, tuple[str, ...]]


EVENT_COLUMNS = ("slug", "title", "status")
DOCTOR_COLUMNS = ("check", "status", "detail")
HISTORY_COLUMNS = ("revision", "down revision", "description", "is head", "is current")

LIST_VIEWS = {
    ("events", "list"): ListView("slug", ("slug", "owner_email", "id"), {
        80: EVENT_COLUMNS, 120: (*EVENT_COLUMNS, "start date (UTC)", "capacity")}),
    ("events", "list", "--include-deleted"): ListView("slug", ("slug", "owner_email", "id"), {
        80: EVENT_COLUMNS, 120: (*EVENT_COLUMNS, "start date (UTC)")}),
    ("events", "complete-past", "--dry-run"): ListView("slug", ("slug", "id"), {
        80: ("slug", "title"), 120: ("slug", "title", "start date (UTC)", "end date (UTC)")}),
    ("--as", OWNER_EMAIL, "waitlist", "retention", "--ended-before", "1d", "--dry-run"): ListView(
        "slug", ("slug", "event_id"), {
            80: ("slug", "ended at (UTC)"), 120: ("slug", "ended at (UTC)", "entries", "event id")}),
    ("users", "list"): ListView("email", ("email", "id"), {
        80: ("email", "role"), 120: ("email", "name", "role", "created at (UTC)")}),
    ("venues", "list"): ListView("id", ("id",), {
        80: ("id", "name", "city", "country", "address"),
        120: ("id", "name", "city", "country", "address", "website")}),
    ("waitlist", "list", LONG_SLUG): ListView("email", ("email",), {
        80: ("email", "status"), 120: ("email", "status", "name", "created at (UTC)")}),
    ("sessions", "list"): ListView("id", ("id", "user_email"), {
        80: ("id", "state", "expires at (UTC)", "created at (UTC)"),
        120: ("id", "user email", "state", "expires at (UTC)")}),
    ("audit", "list"): ListView("id", ("id", "resource_id", "actor_email"), {
        80: ("id", "created at (UTC)", "action", "resource"),
        120: ("id", "created at (UTC)", "action", "resource", "resource id")}),
    ("db", "history"): ListView("revision", (), {80: HISTORY_COLUMNS, 120: HISTORY_COLUMNS}),
    ("db", "doctor"): ListView("check", (), {80: DOCTOR_COLUMNS, 120: DOCTOR_COLUMNS}),
}

def show_views(rows: dict) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Each record view, with the keys of its JSON whose values are ids, slugs or emails: all
    shown, whole, at any width (a record wraps its long values instead of leaving them out)."""
    return {
        ("events", "show", LONG_SLUG): ("id", "slug", "owner_id", "owner_email", "venue_id"),
        ("users", "show", OWNER_EMAIL): ("id", "email"),
        ("venues", "show", rows["venue"]["id"]): ("id",),
        ("audit", "show", rows["audit"]["id"]): ("id", "resource_id", "user_id", "actor_email"),
        ("waitlist", "stats", LONG_SLUG): ("event",),
    }


def header_titles(line: str) -> tuple[str, ...]:
    """A table's header line as its column titles (columns stand two spaces or more apart)."""
    return tuple(re.split(r" {2,}", line.strip()))


def assert_fits(
    shown: str, columns: int, args: tuple[str, ...], *, whole: set[str], absent: Iterable[str] = ()
) -> None:
    """No line wider than the terminal; each of `whole` on one line, whole; no piece of `absent`."""
    lines = shown.splitlines()
    assert lines, args
    too_wide = [line for line in lines if cell_len(line) > columns]
    assert not too_wide, f"`linea {' '.join(args)}` at {columns} columns:\n" + "\n".join(too_wide)
    for value in whole:
        assert value, args  # an empty value would be found anywhere
        assert any(value in line for line in lines), f"{value} not shown whole in `linea {' '.join(args)}` at {columns}:\n{shown}"
    for value in set(absent) - whole:
        assert value[:10] not in shown, f"a piece of {value} in `linea {' '.join(args)}` at {columns}:\n{shown}"


def values_of(record: dict, keys: tuple[str, ...]) -> set[str]:
    """The values under `keys` (null ones left out: a record need not have a venue)."""
    return {record[key] for key in keys if record[key] is not None}


@pytest.mark.parametrize("columns", [80, 120])
def test_list_views_fit_the_terminal_and_keep_ids_whole(linea: CliRun, long_rows: dict, columns: int) -> None:
    for args, view in LIST_VIEWS.items():
        data = linea(*args, "--json").json
        items = data["items"] if isinstance(data, dict) else data
        assert items, args
        code, shown, stderr = run_linea_in_terminal(args, env=linea.env, columns=columns)
        assert code == 0, stderr
        _caption, header, *_ = shown.splitlines()
        assert header_titles(header) == view.headers[columns], (args, shown)
        shown_keys = {title.removesuffix(" (UTC)").replace(" ", "_") for title in view.headers[columns]}
        whole = {value for item in items for value in values_of(item, tuple(k for k in view.copied if k in shown_keys))}
        absent = {value for item in items for value in values_of(item, tuple(k for k in view.copied if k not in shown_keys))}
        assert_fits(shown, columns, args, whole=whole, absent=absent)
        for item in items:  # the column naming the rows is always there, whole
            name = item[view.name]
            assert any((name if view.name != "created_at" else name[:10]) in line for line in shown.splitlines()), (args, name)
        assert not FULL_TIMESTAMP.search(shown), args  # to the minute for people
    _, shown, _ = run_linea_in_terminal(("audit", "list"), env=linea.env, columns=columns)
    assert SHORT_TIMESTAMP.search(shown) and "created at (UTC)" in shown
    _, shown, _ = run_linea_in_terminal(("events", "list"), env=linea.env, columns=columns)
    assert "deleted at" not in shown  # always empty without --include-deleted
    assert "…" in shown  # the long title is shortened, not the slug


def test_events_list_of_the_demo_data_shows_the_columns_the_readme_says(linea: CliRun) -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    claim = re.search(r"at 80 columns `events list` of the demo data shows ([a-z ,]+); (\w+) joins them from (\d+) columns", readme)
    assert claim, "README no longer says what `events list` shows at 80 columns"
    named, joining, wider = claim.group(1), claim.group(2), int(claim.group(3))
    titles = tuple(re.split(r", | and ", named))
    linea("db", "seed")  # the demo data: `make demo`
    for columns, expected in ((80, titles), (wider - 1, titles), (wider, (*titles, joining))):
        code, shown, stderr = run_linea_in_terminal(("events", "list"), env=linea.env, columns=columns)
        assert code == 0, stderr
        header = shown.splitlines()[1]
        assert tuple(title.removesuffix(" (UTC)") for title in header_titles(header)) == expected, (columns, shown)


@pytest.mark.parametrize("columns", [80, 120])
def test_show_views_fit_the_terminal_and_wrap_long_values(linea: CliRun, long_rows: dict, columns: int) -> None:
    for args, keys in show_views(long_rows).items():
        record = linea(*args, "--json").json
        code, shown, stderr = run_linea_in_terminal(args, env=linea.env, columns=columns)
        assert code == 0, stderr
        assert_fits(shown, columns, args, whole=values_of(record, keys))
    _, shown, _ = run_linea_in_terminal(("events", "show", LONG_SLUG), env=linea.env, columns=columns)
    assert "Everything In Between" in shown  # wrapped, not cut
    assert FULL_TIMESTAMP.search(shown)
    assert not any(line.endswith(" ") for line in shown.splitlines())  # copied as shown, no padding


def test_a_value_too_long_beside_its_field_name_stands_whole_below_it(linea: CliRun, db: Database, long_rows: dict) -> None:
    # `waitlist entries anonymized` beside a 52-character placeholder: 80 columns do not hold
    # both, and neither the field name nor the address is broken.
    guest_id = db.scalar("SELECT id FROM users WHERE email = :email", email=GUEST_EMAIL)
    args = ("--as", OWNER_EMAIL, "users", "anonymize", GUEST_EMAIL, "--yes")
    code, shown, stderr = run_linea_in_terminal(args, env=linea.env, columns=80)
    assert code == 0, stderr
    placeholder = db.scalar("SELECT email FROM users WHERE id = :id", id=guest_id)
    assert placeholder.startswith("deleted-") and len(placeholder) > 80 - len("waitlist entries anonymized") - 2
    assert_fits(shown, 80, args, whole={placeholder, guest_id})
    assert f"email\n  {placeholder}\n" in shown and "\nwaitlist entries anonymized" in shown


def test_no_color_means_plain_and_a_terminal_otherwise_gets_bold(linea: CliRun, long_rows: dict) -> None:
    args = ("users", "show", OWNER_EMAIL)
    assert b"\x1b[" not in run_linea_on_terminal(args, env={**linea.env, "NO_COLOR": "1"}, columns=80).terminal
    assert b"\x1b[1m" in run_linea_on_terminal(args, env={**linea.env, "NO_COLOR": None}, columns=80).terminal


def test_wide_shows_every_column(linea: CliRun, long_rows: dict) -> None:
    keys = ["slug", "title", "status", "start_date", "end_date", "capacity", "owner_email", "venue_name", "id", "deleted_at"]
    assert list(linea("events", "list", "--json").json["items"][0]) == keys
    header = linea("events", "list", "--format", "wide").stdout.splitlines()[0]
    assert header.split("\t") == keys
    assert "end_date" not in linea("events", "list").stdout.splitlines()[0]
    _, shown, _ = run_linea_in_terminal(("events", "list", "-f", "wide"), env=linea.env, columns=80)
    header = shown.splitlines()[1]
    for title in ("slug", "title", "status", "start date", "end date", "capacity", "owner email", "venue name", "id", "deleted at"):
        assert title in header
    assert LONG_SLUG in shown and OWNER_EMAIL in shown and long_rows["event"]["id"] in shown
    wide = linea("users", "show", OWNER_EMAIL, "--format", "wide").stdout
    assert f"email\t{OWNER_EMAIL}\n" in wide


def parse_tsv(text: str) -> list[dict[str, str]]:
    lines = text.split("\n")
    assert lines[-1] == ""
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:-1]]
    assert all(len(row) == len(header) for row in rows), text
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_piped_tables_are_tab_separated_with_one_header(linea: CliRun, db: Database, long_rows: dict) -> None:
    owner = long_rows["owner"]
    make_event(db, owner=owner, title="Tab\there\nnew line \\ backslash", slug="hostile", start_date=days_from_now(60))
    result = linea("events", "list")
    assert "Events" not in result.stdout and "─" not in result.stdout
    rows = parse_tsv(result.stdout)
    assert list(rows[0]) == ["slug", "title", "status", "start_date", "capacity", "owner_email", "venue_name", "id"]
    by_slug = {row["slug"]: row for row in rows}
    assert by_slug[LONG_SLUG]["title"] == LONG_TITLE  # whole: nothing is shortened for scripts
    assert by_slug["hostile"]["title"] == "Tab\\there\\nnew line \\\\ backslash"
    assert FULL_TIMESTAMP.fullmatch(by_slug[LONG_SLUG]["start_date"])
    # The same rows as CSV, in the same order.
    assert [row["slug"] for row in csv.DictReader(io.StringIO(linea("events", "list", "-f", "csv").stdout))] == list(by_slug)

    users = parse_tsv(linea("users", "list").stdout)
    assert "deleted_at" not in users[0] and {row["email"] for row in users} >= {OWNER_EMAIL, GUEST_EMAIL}
    assert "deleted_at" in parse_tsv(linea("users", "list", "--include-deleted").stdout)[0]

    shown = linea("events", "show", "hostile").stdout
    assert "id\t" + by_slug["hostile"]["id"] + "\n" in shown
    assert "title\tTab\\there\\nnew line \\\\ backslash\n" in shown
    assert all(line.count("\t") == 1 for line in shown.splitlines())


def test_an_empty_piped_list_is_its_header(linea: CliRun) -> None:
    result = linea("venues", "list")
    assert result.stdout == "id\tname\tcity\tcountry\taddress\twebsite\n"
    assert "no venues found" in result.stderr


def test_timestamps_are_whole_in_every_data_format(linea: CliRun, long_rows: dict) -> None:
    start = linea("events", "list", "--json").stdout
    assert FULL_TIMESTAMP.search(json.loads(start)["items"][0]["start_date"])
    assert FULL_TIMESTAMP.search(linea("events", "list", "-f", "ndjson").stdout)
    assert FULL_TIMESTAMP.search(linea("events", "list", "-f", "csv").stdout)


def test_a_narrow_terminal_leaves_out_the_least_important_columns(linea: CliRun, long_rows: dict) -> None:
    _, shown, _ = run_linea_in_terminal(("events", "list"), env=linea.env, columns=80)
    header = shown.splitlines()[1]
    assert header.startswith("slug") and "title" in header and "status" in header
    assert "venue name" not in header  # the least important goes first


def test_hostile_values_stay_escaped_at_a_terminal(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER", email="mallory@example.com", name="Mal\x1b]0;PWNED\x07lory\x1b[2J")
    make_event(db, owner=owner, slug="gala", title="Gala\nerror: forged\t[bold]line[/]\u202e")
    for args in (("users", "list"), ("users", "show", "mallory@example.com"), ("events", "list"), ("events", "show", "gala")):
        code, shown, stderr = run_linea_in_terminal(args, env=linea.env, columns=80)
        assert code == 0, stderr
        assert not any(char in shown for char in "\x1b\x07\u202e\t"), (args, shown)
        assert all(cell_len(line) <= 80 for line in shown.splitlines()), (args, shown)
        assert not any(line.startswith("error: forged") for line in shown.splitlines()), (args, shown)
    _, shown, _ = run_linea_in_terminal(("events", "show", "gala"), env=linea.env, columns=80)
    assert "Gala\\nerror: forged\\t[bold]line[/]\\u202e" in shown


def test_every_list_shows_at_80_columns_what_its_show_takes(linea: CliRun, long_rows: dict) -> None:
    for noun in ("events", "venues", "users", "audit"):
        code, shown, stderr = run_linea_in_terminal((noun, "list"), env=linea.env, columns=80)
        assert code == 0, stderr
        for row in shown.splitlines()[2:]:  # below the caption and the header
            linea(noun, "show", row.split()[0])


def test_db_status_and_doctor_read_well_at_80_columns(linea: CliRun, long_rows: dict) -> None:
    status = linea("db", "status", "--json").json
    code, shown, stderr = run_linea_in_terminal(("db", "status"), env=linea.env, columns=80)
    assert code == 0, stderr
    # The URL whole on a line of its own, below its name (as long as a terminal line holds it).
    assert_fits(shown, 80, ("db", "status"), whole={status["url"]} if len(status["url"]) <= 80 else set())
    lines = shown.splitlines()
    for key in status:  # every field name whole, at the start of its line
        assert any(re.match(key.replace("_", " ") + "( |$)", line) for line in lines), (key, shown)
    # Counts as aligned lines, not JSON; an empty list as nothing.
    counts = status["row_counts"]
    assert re.search(rf"^row counts +users +{counts['users']}$", shown, re.M), shown
    assert re.search(rf"^ +waitlist_entries +{counts['waitlist_entries']}$", shown, re.M), shown
    assert not any(char in shown for char in "{}[]\""), shown
    code, shown, stderr = run_linea_in_terminal(("db", "doctor"), env=linea.env, columns=80)
    assert code == 0, stderr
    assert_fits(shown, 80, ("db", "doctor"), whole={check["check"] for check in linea("db", "doctor", "--json").json})


PROFILES = """current = "trial"

[profiles.trial]
url = "postgresql://postgres:secretpw@127.0.0.1:55432/linea"
migration_url = "postgresql://postgres:secretpw@127.0.0.1:55432/linea"

[profiles.bouncer]
url = "postgresql://linea_operator:pw@127.0.0.1:6432/linea"
migration_url = "postgresql://postgres:secretpw@127.0.0.1:55432/linea"
confirm = true

[profiles.svc]
service = "staging"
"""
PROFILE_HEADERS = {
    80: ("name", "current", "url", "service"),
    100: ("name", "current", "in use", "url", "service", "confirm"),
    160: ("name", "current", "in use", "url", "service", "migration url", "read url", "confirm"),
}


@pytest.mark.parametrize("columns", PROFILE_HEADERS)
def test_profile_list_keeps_urls_whole(linea: CliRun, columns: int) -> None:
    # At 80 columns the URLs and masked passwords were broken across lines
    # (`postgresql://postgres:*` / `**@127.0.0.1:55432/line` / `a`), the header read `migration u…`.
    config = Path(linea.env["XDG_CONFIG_HOME"]) / "linea" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(PROFILES)
    config.chmod(0o600)
    items = linea("profile", "list", "--json").json
    urls = {item[key] for item in items for key in ("url", "migration_url") if item[key]}
    assert all("***@" in url for url in urls)
    args = ("profile", "list")
    code, shown, stderr = run_linea_in_terminal(args, env=linea.env, columns=columns)
    assert code == 0, stderr
    _caption, header, *rows = shown.splitlines()
    assert header_titles(header) == PROFILE_HEADERS[columns], shown
    assert len(rows) == len(items)  # a line per profile
    shown_keys = {title.replace(" ", "_") for title in PROFILE_HEADERS[columns]}
    whole = {item[key] for item in items for key in ("url", "migration_url", "service") if key in shown_keys and item[key]}
    absent = {item["migration_url"] for item in items if "migration_url" not in shown_keys and item["migration_url"]}
    assert_fits(shown, columns, args, whole=whole, absent=absent)


def test_profile_list_leaves_out_a_url_too_long_for_the_terminal_rather_than_break_it(linea: CliRun) -> None:
    long_url = "postgresql://linea_operator:pw@pgbouncer.internal.example.com:6432/linea?sslmode=verify-full"
    config = Path(linea.env["XDG_CONFIG_HOME"]) / "linea" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[profiles.far]\nurl = "{long_url}"\n')
    config.chmod(0o600)
    masked = linea("profile", "list", "--json").json[0]["url"]
    code, shown, stderr = run_linea_in_terminal(("profile", "list"), env=linea.env, columns=80)
    assert code == 0, stderr
    assert_fits(shown, 80, ("profile", "list"), whole={"far"}, absent={masked, masked[-12:]})
    code, shown, stderr = run_linea_in_terminal(("profile", "list"), env=linea.env, columns=120)
    assert_fits(shown, 120, ("profile", "list"), whole={masked})
