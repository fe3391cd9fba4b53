"""Input that is simply wrong: exit 1 and one line naming the option, never exit 70 or SQL.

Dates that leave the calendar once in UTC, numbers beyond the column they feed, nan and inf,
durations before year 1, another list's cursor, a bad setting, a revision that does not exist;
and the backstop for whatever still reaches PostgreSQL: a data error (SQLSTATE class 22) is
invalid input too.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.factories import make_event, make_user, make_venue
from tests.harness import CliRun, Database


def refused(result: Any, *words: str) -> str:
    """The one line of a refusal: it starts with error:, names `words`, and holds no SQL or traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("error: "), line
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    for leak in ("SELECT", "INSERT", "UPDATE ", "[SQL", "Traceback", "psycopg", "sqlalchemy"):
        assert leak not in line, line
    return line


# ------------------------------------------------------------------------------- dates and times

OUTSIDE_UTC = "0001-01-01T00:00+14:00"  # still year 0 once converted to UTC


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["events", "create", "--title", "T", "--start", OUTSIDE_UTC, "--owner", "OWNER"], "--start"),
        (["events", "update", "EVENT", "--start", OUTSIDE_UTC], "--start"),
        (["events", "update", "EVENT", "--end", OUTSIDE_UTC], "--end"),
        (["events", "list", "--from", OUTSIDE_UTC], "--from"),
        (["events", "list", "--to", OUTSIDE_UTC], "--to"),
        (["audit", "list", "--since", OUTSIDE_UTC], "--since"),
        (["audit", "list", "--until", OUTSIDE_UTC], "--until"),
        (["audit", "export", "--since", OUTSIDE_UTC], "--since"),
        (["audit", "export", "--until", OUTSIDE_UTC], "--until"),
        (["db", "seed", "--anchor", OUTSIDE_UTC], "--anchor"),
    ],
    ids=lambda value: value if isinstance(value, str) else " ".join(value[:2]),
)
def test_a_date_that_leaves_the_calendar_in_utc_is_invalid(
    linea: CliRun, db: Database, args: list[str], option: str
) -> None:
    owner = make_user(db, role="OWNER")
    event = make_event(db, owner=owner)
    args = [owner["email"] if arg == "OWNER" else event["slug"] if arg == "EVENT" else arg for arg in args]
    before = db.count("audit_logs"), db.count("events")
    refused(linea(*args, exit_code=1), option, OUTSIDE_UTC, "calendar")
    assert (db.count("audit_logs"), db.count("events")) == before


def test_a_local_date_past_year_9999_in_utc_is_invalid(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    result = linea(
        "events", "create", "--title", "Last Party", "--start", "9999-12-31T23:00", "--owner", owner["email"],
        exit_code=1, env={"LINEA_TIMEZONE": "America/New_York"},
    )
    refused(result, "--start", "9999-12-31T23:00")
    assert db.count("events") == 0


def test_the_last_day_of_the_calendar_is_still_a_valid_upper_bound(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    listed = linea("events", "list", "--to", "9999-12-31", "--json").json
    assert [item["slug"] for item in listed["items"]] == [event["slug"]]


def test_a_seed_anchor_whose_data_would_leave_the_calendar_is_invalid(linea: CliRun, db: Database) -> None:
    refused(linea("db", "seed", "--anchor", "0001-06-01", exit_code=1), "--anchor")
    refused(linea("db", "seed", "--anchor", "9999-12-01", exit_code=1), "--anchor")
    assert db.count("users") == 0


@pytest.mark.parametrize("duration", ["99999999999d", "1000000w", "3000000d", "9" * 5000 + "s"])
def test_a_purge_duration_reaching_before_year_1_is_invalid(linea: CliRun, duration: str) -> None:
    line = refused(linea("sessions", "purge", "--older-than", duration, exit_code=1), "--older-than")
    assert len(line) < 400


@pytest.mark.parametrize("duration", ["99999999999d", "1000000000d", "3000000d", "9" * 5000 + "s"])
@pytest.mark.parametrize(
    "args",
    [["db", "queries", "--since"], ["db", "snapshots", "--since"], ["db", "indexes", "--since"],
     ["db", "snapshot", "--keep"], ["waitlist", "retention", "--ended-before"]],
    ids=" ".join,
)
def test_a_span_reaching_before_year_1_is_invalid_for_every_option(
    linea: CliRun, db: Database, args: list[str], duration: str
) -> None:
    # Refused before the database is asked: never an OverflowError (exit 70), nor the server's
    # "timestamp out of range" that does not name the option.
    before = db.count("audit_logs")
    line = refused(linea(*args, duration, exit_code=1), args[-1], "before year 1")
    assert len(line) < 400
    assert db.count("audit_logs") == before
    assert db.scalar("SELECT count(*) FROM linea.stat_snapshots") == 0


# ------------------------------------------------------------------------------------- numbers


def test_a_capacity_beyond_integer_is_invalid(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    event = make_event(db, owner=owner, capacity=10)
    refused(linea("events", "update", event["slug"], "--capacity", "2147483648", exit_code=1), "--capacity", "2147483647")
    refused(
        linea("events", "create", "--title", "Huge", "--start", "2031-01-01", "--owner", owner["email"],
              "--capacity", str(10**30), exit_code=1),
        "--capacity",
    )
    assert db.scalar("SELECT capacity FROM events") == 10
    assert db.count("events") == 1
    # The largest INTEGER is a capacity like any other.
    linea("events", "update", event["slug"], "--capacity", "2147483647")
    assert db.scalar("SELECT capacity FROM events") == 2147483647


def test_a_zoom_beyond_integer_is_invalid(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    refused(linea("events", "update", event["slug"], "--zoom", "99999999999", exit_code=1), "--zoom")


@pytest.mark.parametrize("option", ["--users", "--venues", "--events", "--waitlist", "--sessions"])
def test_an_absurd_seed_count_is_invalid(linea: CliRun, db: Database, option: str) -> None:
    refused(linea("db", "seed", option, "99999999999", exit_code=1), option)
    refused(linea("db", "seed", option, "100000001", exit_code=1), option)
    assert db.count("users") == 0 and db.count("audit_logs") == 0


def test_promote_takes_any_count(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    linea("waitlist", "add", event["slug"], "ann@example.com")
    linea("waitlist", "promote", event["slug"], "--count", str(10**30))
    assert db.count("waitlist_entries", "status = 'CONFIRMED'") == 1


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
@pytest.mark.parametrize("option", ["--lat", "--lng"])
def test_nan_and_infinity_are_not_coordinates(linea: CliRun, db: Database, option: str, value: str) -> None:
    event = make_event(db, map_lat=1.0, map_lng=2.0)
    venue = make_venue(db)
    refused(linea("events", "update", event["slug"], option, value, exit_code=1), option)
    refused(linea("venues", "update", venue["id"], option, value, exit_code=1), option)
    refused(
        linea("venues", "create", "--name", "N", "--address", "A", "--city", "C", "--country", "PT", option, value,
              exit_code=1),
        option,
    )
    assert (db.scalar("SELECT map_lat FROM events"), db.scalar("SELECT map_lng FROM events")) == (1.0, 2.0)
    assert db.count("venues") == 1


# ------------------------------------------------------------------------------------- cursors


def _cursor(linea: CliRun, *args: str) -> str:
    page = linea(*args, "--limit", "1", "--json").json
    assert page["next_cursor"], page
    return page["next_cursor"]


def test_a_cursor_of_another_list_is_refused(linea: CliRun, db: Database) -> None:
    for _ in range(2):
        make_event(db)
        make_venue(db)
    events_cursor = _cursor(linea, "events", "list")
    users_cursor = _cursor(linea, "users", "list")
    venues_cursor = _cursor(linea, "venues", "list")
    for args, cursor, owner in (
        (["venues", "list"], events_cursor, "events"),
        (["venues", "list"], users_cursor, "users"),
        (["events", "list"], users_cursor, "users"),
        (["events", "list"], venues_cursor, "venues"),
        (["users", "list"], events_cursor, "events"),
        (["sessions", "list"], events_cursor, "events"),
        (["audit", "list"], users_cursor, "users"),
    ):
        refused(linea(*args, "--after", cursor, exit_code=1), "--after", f"the {owner} list")
    # Its own list takes it.
    assert linea("venues", "list", "--after", venues_cursor, "--json").json["items"]


def _encode(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "x" * 200_000,
        _encode([{"t": "2026-01-01T00:00:00"}, "c1"]),  # the shape before cursors named their list
        _encode({"list": "events", "after": [5, "c1"]}),
        _encode({"list": "events", "after": [{"t": "not a date"}, "c1"]}),
        _encode({"list": "events", "after": [{"t": "2026-01-01T00:00:00+05:00"}, "c1"]}),
        _encode({"list": "events", "after": [{"t": "2026-01-01T00:00:00"}, "c\x001"]}),
        _encode({"list": "events", "after": [{"t": "2026-01-01T00:00:00"}]}),
        _encode({"list": "events"}),
        _encode("events"),
        "",  # a script's unset variable: refused, never read as "from the start"
    ],
    ids=["garbage", "huge", "old shape", "number", "bad date", "aware date", "nul", "short", "no key", "string", "empty"],
)
def test_a_garbled_cursor_is_refused_before_any_sql(linea: CliRun, db: Database, cursor: str) -> None:
    make_event(db)
    line = refused(linea("events", "list", "--after", cursor, exit_code=1), "--after")
    assert len(line) < 400


# ------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("value", ["banana", "-1", "5 parsecs", "99999999999s", "25d"])
def test_an_invalid_lock_timeout_is_invalid_input(linea: CliRun, value: str) -> None:
    refused(linea("events", "list", exit_code=1, env={"LINEA_LOCK_TIMEOUT": value}), "LINEA_LOCK_TIMEOUT")


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("LINEA_TIMEZONE", "Mars/Olympus", "not a time zone: use an IANA name such as Europe/Paris"),
        ("LINEA_TIMEZONE", "../../etc/passwd", "not a time zone: use an IANA name such as Europe/Paris"),
        ("LINEA_TIMEZONE", "", "it is empty: give a value, or unset it for the default"),
        ("LINEA_BACKUP_DIR", " ", "it is empty: give a value, or unset it for the default"),
        ("LINEA_PG_DUMP", "", "it is empty: give a value, or unset it for the default"),
    ],
)
def test_a_bad_or_empty_setting_is_refused_before_the_command_runs(
    linea: CliRun, db: Database, variable: str, value: str, reason: str
) -> None:
    """Found by a new user: a wrong time zone passed until a date was parsed (without naming the
    variable), and `LINEA_BACKUP_DIR=` wrote the backup into the working directory."""
    make_event(db)
    result = linea("events", "list", exit_code=1, env={variable: value})
    assert result.stdout == ""
    assert result.stderr == f"error: invalid {variable} {value!r}: {reason}\n"


@pytest.mark.parametrize("value", ["0", "5s", "500ms", "1.5s", "2min", "1h", "24d"])
def test_valid_lock_timeouts_work(linea: CliRun, value: str) -> None:
    linea("events", "list", env={"LINEA_LOCK_TIMEOUT": value, "LINEA_STATEMENT_TIMEOUT": value})


def test_an_out_of_range_setting_names_its_variable(linea: CliRun) -> None:
    refused(linea("events", "list", exit_code=1, env={"LINEA_MIGRATION_ATTEMPTS": "99"}), "LINEA_MIGRATION_ATTEMPTS")


# ----------------------------------------------------------------------------------- revisions


@pytest.mark.parametrize(
    "args",
    [
        ["upgrade", "0"],
        ["upgrade", "99999999999999999999"],
        ["downgrade", "99999999999999999999"],
        ["downgrade", "-99"],
        ["upgrade", "+99"],
        ["upgrade", "+0"],
        ["upgrade", "-1"],
        ["downgrade", "+1"],
        ["upgrade", "+1"],  # already at head: Alembic's refusal is still one line, exit 1
        ["upgrade", "head:base"],
    ],
    ids=" ".join,
)
def test_an_invalid_revision_is_one_line_and_exit_1(linea: CliRun, db: Database, args: list[str]) -> None:
    refused(linea("db", *args, exit_code=1))
    assert linea("db", "status", "--json").stdout.count('"at_head": true') == 1


def test_downgrade_takes_a_relative_revision_without_dashes(linea: CliRun, db: Database) -> None:
    history = linea("db", "history", "--json").json
    linea("db", "downgrade", "-1")
    assert db.scalar("SELECT version_num FROM linea.alembic_version") == history[1]["revision"]
    linea("db", "upgrade", "+1")
    assert db.scalar("SELECT version_num FROM linea.alembic_version") == history[0]["revision"]
    # -1 anywhere among the options, and the old spelling after --, still work.
    assert "alembic_version" in linea("db", "downgrade", "--sql", "-1").stdout
    linea("db", "downgrade", "--", "-1")
    linea("db", "upgrade")
    assert db.scalar("SELECT version_num FROM linea.alembic_version") == history[0]["revision"]


# ------------------------------------------------- data errors from PostgreSQL (the backstop)


def test_a_value_postgresql_refuses_is_invalid_input_without_sql(linea: CliRun, db: Database) -> None:
    make_event(db)
    # No shell can pass a NUL byte, but a script can; PostgreSQL text cannot hold one.
    line = refused(linea("events", "list", "--search", "fest\x00", exit_code=1))
    assert "NUL" in line


def test_numeric_out_of_range_from_a_real_query_is_invalid_input(
    linea: CliRun, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    from linea_cli.services import venues

    def list_with_a_huge_limit(session, **kwargs):  # noqa: ANN001, ANN003, ANN202
        # A real statement whose value the server refuses: SQLSTATE 22003, numeric value out of range.
        session.execute(sa.text("SELECT CAST(:n AS integer)"), {"n": 2**40})

    monkeypatch.setattr(venues, "list_venues", list_with_a_huge_limit)
    line = refused(linea("venues", "list", exit_code=1))
    assert "out of range" in line
    assert "integer" in line


def test_a_huge_argument_is_answered_with_a_short_line(linea: CliRun, db: Database) -> None:
    for args in (["events", "show", "a" * 200_000], ["users", "show", "b" * 200_000],
                 ["events", "create", "--title", "T", "--start", "c" * 200_000]):
        line = refused(linea(*args, exit_code=1 if args[1] == "create" else 3))
        assert "…" in line and "200,000 characters" in line
        assert len(line) < 400
