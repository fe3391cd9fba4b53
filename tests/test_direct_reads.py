"""Read commands without the ORM: `events list`, `users show` and `waitlist stats` load neither
SQLAlchemy nor SQLModel (linea_cli.db.direct, linea_cli.services.reads), and reach the database the
engine would reach, with the same arguments; what the direct path does not read the same way goes
through the engine, as before."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.engine import URL

from tests.factories import make_event, make_user, make_waitlist_entry
from tests.harness import CliRun, Database, plain_url, run_linea_process

ORM = {"sqlalchemy", "sqlmodel", "alembic"}


def _modules_imported(stderr: str) -> set[str]:
    """The modules `python -X importtime` (PYTHONPROFILEIMPORTTIME) reports, top-level names."""
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in stderr.splitlines() if line.startswith("import time:") and "|" in line
    }


def _summer_fest(db: Database) -> None:
    day = datetime(2031, 1, 2, 3, 4, 5)
    olga = make_user(db, id="u-olga", email="olga@example.com", name="Olga", role="OWNER", created_at=day, updated_at=day)
    event = make_event(
        db, owner=olga, id="e-summer", slug="summer-fest", title="Summer Fest", start_date=datetime(2031, 7, 1, 18),
        capacity=10, created_at=day, updated_at=day,
    )
    make_waitlist_entry(db, event=event, email="ann@example.net", status="CONFIRMED", created_at=datetime(2031, 1, 5, 10))
    make_waitlist_entry(db, event=event, email="Olga@Example.com", created_at=datetime(2031, 1, 6, 11))


# (arguments, what stdout holds: text, or the JSON document as read back)
READS: tuple[tuple[list[str], Any], ...] = (
    (
        ["events", "list", "--format", "csv", "--fields", "slug,title,status,start_date,capacity,owner_email,id"],
        "slug,title,status,start_date,capacity,owner_email,id\n"
        "summer-fest,Summer Fest,PUBLISHED,2031-07-01T18:00:00.000+00:00,10,olga@example.com,e-summer\n",
    ),
    (
        ["--as", "olga@example.com", "users", "show", "OLGA@example.com", "--json"],
        {"id": "u-olga", "email": "olga@example.com", "name": "Olga", "role": "OWNER",
         "created_at": "2031-01-02T03:04:05.000+00:00", "updated_at": "2031-01-02T03:04:05.000+00:00",
         "deleted_at": None, "owned_events": 1, "waitlist_entries": 1, "live_sessions": 0, "last_activity": None},
    ),
    (
        ["waitlist", "stats", "summer-fest", "--json"],
        {"event": "summer-fest", "pending": 1, "confirmed": 1, "cancelled": 0, "removed": 0, "total": 2,
         "capacity": 10, "places_left": 9, "first_signup": "2031-01-05T10:00:00.000+00:00",
         "last_signup": "2031-01-06T11:00:00.000+00:00", "signups_period": "day",
         "signups": [{"date": "2031-01-05", "count": 1}, {"date": "2031-01-06", "count": 1}]},
    ),
)


def _read(stdout: str, expected: Any) -> Any:
    return stdout if isinstance(expected, str) else json.loads(stdout)


def test_read_commands_load_neither_sqlalchemy_nor_sqlmodel(linea: CliRun, db: Database) -> None:
    _summer_fest(db)
    for args, expected in READS:
        result = run_linea_process(args, env={**linea.env, "PYTHONPROFILEIMPORTTIME": "1"})
        assert (result.returncode, _read(result.stdout, expected)) == (0, expected), result.stderr[-2000:]
        imported = _modules_imported(result.stderr)
        assert "psycopg" in imported
        assert imported & ORM == set(), f"linea {' '.join(args)} imported {imported & ORM}"


def test_a_url_the_direct_path_does_not_read_goes_through_the_engine_with_the_same_output(
    linea: CliRun, db: Database, database_url: URL
) -> None:
    # The port in the query: SQLAlchemy's own rule (its multihost syntax), left to it.
    _summer_fest(db)
    port = database_url.port or 5432
    url = plain_url(database_url.set(port=None)) + ("&" if "?" in plain_url(database_url) else "?") + f"port={port}"
    for args, expected in READS:
        result = run_linea_process(["--database-url", url, *args], env={**linea.env, "PYTHONPROFILEIMPORTTIME": "1"})
        assert (result.returncode, _read(result.stdout, expected)) == (0, expected), result.stderr[-2000:]
        assert "sqlalchemy" in _modules_imported(result.stderr)


# URLs as people write them: the direct path must hand psycopg what SQLAlchemy's dialect hands it.
READ_ALIKE = (
    "postgresql://u:p%40ss@db.example.com:6432/linea?sslmode=require&application_name=x",
    "postgres://u@/linea?host=/var/run/postgresql",
    "postgresql+psycopg://u:p@[::1]:5432/db",
    "postgresql://?service=staging",
    "postgresql://",
    "postgresql://u:@h/d",
    "postgresql://h:0/d",
    "  postgresql://u:p+q%2Fr@h/d%2Fx  ",
    "postgresql://h/d?options=-c%20search_path%3Dx&connect_timeout=3&sslpassword=s3cret",
    "postgresql://user name:pass word@h/d",
)
# ... and those it leaves to the engine (several hosts, a port in the query, a repeated parameter,
# what linea refuses).
LEFT_TO_THE_ENGINE = (
    "postgresql://h/d?host=a,b",
    "postgresql://h/d?host=a:5432",
    "postgresql://h/d?port=5433",
    "postgresql://h/d?host=a&host=b",
    "postgresql://h:abc/d",
    "host=x dbname=y",
    "mysql://h/d",
    "not a url",
)


@pytest.mark.parametrize("raw", READ_ALIKE)
def test_a_url_means_to_the_direct_path_what_it_means_to_the_engine(raw: str) -> None:
    import sqlalchemy

    from linea_cli.db.direct import url_arguments
    from linea_cli.db.urls import parse_database_url, text_secrets, url_secrets

    url = parse_database_url(raw)
    _, engine_arguments = sqlalchemy.create_engine(url).dialect.create_connect_args(url)
    engine_arguments.pop("context", None)
    assert url_arguments(raw) == engine_arguments
    assert text_secrets(raw) == url_secrets(url)


@pytest.mark.parametrize("raw", LEFT_TO_THE_ENGINE)
def test_a_url_the_direct_path_cannot_read_alike_is_left_to_the_engine(raw: str) -> None:
    from linea_cli.db.direct import url_arguments

    assert url_arguments(raw) is None



def test_the_version_tables_read_without_sqlalchemy_are_the_catalog_s() -> None:
    from linea_cli.db.catalog import LINEA_SCHEMA, PLATFORM_SCHEMA, VERSION_TABLE
    from linea_cli.db.revision import VERSION_TABLES

    assert VERSION_TABLES == (f"{LINEA_SCHEMA}.{VERSION_TABLE}", f"{PLATFORM_SCHEMA}.{VERSION_TABLE}")
