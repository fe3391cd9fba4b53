"""Read commands on streaming replicas (issue 22): where reads go, the lag guard, the fence.

Every test runs linea against the test database with LINEA_READ_DATABASE_URL naming a real
streaming replica of the test server, and tells where a command read from each server's own
statistics (pg_stat_user_tables), polled: a backend reports its counts when idle, at most once a
second. A replica is made to fall behind by pausing its replay or by cutting its WAL receiver, and
each wait polls a server condition: nothing here depends on how long anything takes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql
import pytest
from sqlalchemy.engine import URL

import linea_cli
import linea_cli.services.reads
from tests.factories import make_event, make_user
from tests.harness import (
    CliRun,
    Database,
    libpq_conninfo,
    pause_replay,
    plain_url,
    read_on_the_replica_only,
    table_reads,
    wait_for_replay,
    wait_until,
)

ADMIN_EMAIL = "ada.admin@example.org"


@pytest.fixture
def on_replica(linea: CliRun, replica_database_url: URL) -> CliRun:
    """`linea` with the replica configured as its read database."""
    return CliRun(env={**linea.env, "LINEA_READ_DATABASE_URL": plain_url(replica_database_url)}, secrets=linea.secrets)


@pytest.fixture
def owner(db: Database) -> dict[str, Any]:
    make_user(db, email=ADMIN_EMAIL, role="ADMIN")
    return make_user(db, role="OWNER")


@pytest.fixture
def cut_off(replica: psycopg.Connection) -> Iterator[None]:
    """The replica with its WAL receiver stopped (primary_conninfo emptied): it receives nothing
    more, so whatever the primary writes from now on is missing there, and nothing is left to
    replay (its seconds behind count as 0: only bytes behind or the fence can tell)."""
    conninfo = replica.execute("SHOW primary_conninfo").fetchone()[0]
    replica.execute("ALTER SYSTEM SET primary_conninfo = ''")
    replica.execute("SELECT pg_reload_conf()")
    try:
        wait_until(
            lambda: replica.execute("SELECT count(*) FROM pg_stat_wal_receiver").fetchone() == (0,),
            what="the replica's WAL receiver stopped",
        )
        yield
    finally:
        replica.execute(psycopg.sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(psycopg.sql.Literal(conninfo)))
        replica.execute("SELECT pg_reload_conf()")
        wait_until(
            lambda: replica.execute("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'").fetchone() == (1,),
            what="the replica streaming again",
        )


# --- where reads go --------------------------------------------------------------------------------


def test_a_list_and_a_show_read_on_the_replica_not_the_primary(
    on_replica: CliRun, db: Database, owner: dict, primary: psycopg.Connection, replica: psycopg.Connection,
    replica_database_url: URL, direct_database_url: URL,
) -> None:
    make_event(db, owner=owner, slug="read-on-the-replica", title="Read on the replica")
    wait_for_replay(replica_database_url, primary=direct_database_url)

    listed = read_on_the_replica_only(primary, replica, "events", lambda: on_replica("events", "list", "--all", "--format", "csv"))
    assert "read-on-the-replica" in listed.stdout
    assert listed.stderr == ""
    shown = read_on_the_replica_only(primary, replica, "events", lambda: on_replica("events", "show", "read-on-the-replica", "--json"))
    assert '"Read on the replica"' in shown.stdout


def test_writes_go_to_the_primary_and_reads_after_them_see_them(
    on_replica: CliRun, db: Database, owner: dict, replica: psycopg.Connection,
) -> None:
    """A replica refuses writes (a read-only transaction): a command that wrote there would fail."""
    on_replica(
        "--as", ADMIN_EMAIL, "events", "create", "--title", "Written on the primary", "--start", "2031-05-01T10:00",
        "--owner", owner["email"],
    )
    assert db.one("SELECT title FROM events WHERE slug = 'written-on-the-primary'") == ("Written on the primary",)
    # The next read waits for the replica to replay that write (the fence), then reads there.
    shown = on_replica("events", "show", "written-on-the-primary", "--replica", "required", "--json")
    assert '"Written on the primary"' in shown.stdout


def test_primary_reads_on_the_primary_and_never_asks_the_replica(
    on_replica: CliRun, db: Database, owner: dict, primary: psycopg.Connection, replica: psycopg.Connection,
    replica_database_url: URL, direct_database_url: URL,
) -> None:
    make_event(db, owner=owner, slug="on-the-primary")
    wait_for_replay(replica_database_url, primary=direct_database_url)
    pause_replay(replica)  # were the replica asked, the command would say it skipped it

    before = table_reads(primary, "events")
    listed = on_replica("--primary", "events", "list", "--format", "csv")
    assert "on-the-primary" in listed.stdout
    assert listed.stderr == ""
    wait_until(lambda: table_reads(primary, "events") > before, what="the primary counted the scan")
    after_option = on_replica("events", "list", "--format", "csv", "--primary")
    assert after_option.stderr == ""


# --- a replica that may not serve -------------------------------------------------------------------


def test_a_paused_replica_is_skipped_and_named_and_the_read_is_on_the_primary(
    on_replica: CliRun, db: Database, owner: dict, primary: psycopg.Connection, replica: psycopg.Connection,
    replica_database_url: URL,
) -> None:
    pause_replay(replica)
    make_event(db, owner=owner, slug="after-the-pause")  # on the primary only

    before = table_reads(primary, "events")
    listed = on_replica("events", "list", "--format", "csv")
    assert "after-the-pause" in listed.stdout
    where = replica_database_url.host or str(replica_database_url.query["host"])
    [line] = listed.stderr.splitlines()
    assert line.startswith("warning: replica 1 (") and where in line
    assert "replay paused" in line and line.endswith("reading from the primary")
    wait_until(lambda: table_reads(primary, "events") > before, what="the primary counted the scan")

    required = on_replica("events", "list", "--replica", "required", exit_code=5)
    assert required.stdout == ""
    assert required.stderr.splitlines()[0].startswith("error: no replica may serve this read (--replica required): replica 1")
    assert "replay paused" in required.stderr
    assert "Traceback" not in required.stderr


def test_a_replica_further_behind_than_the_max_lag_is_skipped_with_its_lag(
    on_replica: CliRun, db: Database, owner: dict, cut_off: None,
) -> None:
    make_event(db, owner=owner, slug="missing-on-the-replica")  # written outside linea: no fence

    listed = on_replica("events", "list", "--format", "csv", env={"LINEA_REPLICA_MAX_LAG": "5s,1B"})
    assert "missing-on-the-replica" in listed.stdout
    [line] = listed.stderr.splitlines()
    assert "bytes behind, more than LINEA_REPLICA_MAX_LAG (5s and 1 bytes); reading from the primary" in line

    # Within a bound of time alone, the same replica serves: nothing is left for it to replay.
    stale = on_replica("events", "list", "--format", "csv", "--replica", "required", env={"LINEA_REPLICA_MAX_LAG": "1h"})
    assert "missing-on-the-replica" not in stale.stdout


def test_a_read_after_linea_wrote_never_answers_from_a_replica_that_has_not_replayed_the_write(
    on_replica: CliRun, db: Database, owner: dict, cut_off: None,
) -> None:
    """The fence: the primary's WAL position after the write, kept in the user's state directory."""
    on_replica(
        "--as", ADMIN_EMAIL, "events", "create", "--title", "Fenced", "--start", "2031-05-01T10:00", "--owner", owner["email"],
    )
    fences = Path(on_replica.env["XDG_STATE_HOME"]) / "linea" / "fences.json"
    assert fences.exists()
    assert oct(fences.stat().st_mode & 0o777) == "0o600"

    shown = on_replica("events", "show", "fenced", "--json", env={"LINEA_REPLICA_MAX_LAG": "1h"})
    assert '"Fenced"' in shown.stdout
    [line] = shown.stderr.splitlines()
    assert "has not replayed linea's last write to this database" in line and line.endswith("reading from the primary")

    required = on_replica("events", "show", "fenced", "--replica", "required", env={"LINEA_REPLICA_MAX_LAG": "1h"}, exit_code=5)
    assert "has not replayed linea's last write" in required.stderr
    assert required.stdout == ""


def test_an_unreachable_replica_is_skipped_and_named_without_its_password(
    linea: CliRun, db: Database, owner: dict, primary: psycopg.Connection, replica: psycopg.Connection,
    replica_database_url: URL, direct_database_url: URL,
) -> None:
    make_event(db, owner=owner, slug="second-replica-serves")
    wait_for_replay(replica_database_url, primary=direct_database_url)
    nowhere = "postgresql://reader:s3cret-replica-pw@127.0.0.1:9/linea"
    both = CliRun(
        env={**linea.env, "LINEA_READ_DATABASE_URL": f"{nowhere},{plain_url(replica_database_url)}"},
        secrets=(*linea.secrets, "s3cret-replica-pw"),
    )

    listed = read_on_the_replica_only(primary, replica, "events", lambda: both("events", "list", "--format", "csv"))
    assert "second-replica-serves" in listed.stdout
    [line] = listed.stderr.splitlines()
    assert line.startswith("warning: replica 1 (127.0.0.1:9) skipped: unreachable: ")
    assert "reading from replica 2 (" in line


def test_a_primary_named_as_a_replica_is_skipped_as_not_in_recovery(linea: CliRun, db: Database, owner: dict) -> None:
    make_event(db, owner=owner, slug="not-a-replica")
    promoted = CliRun(env={**linea.env, "LINEA_READ_DATABASE_URL": linea.env["LINEA_DATABASE_URL"]}, secrets=linea.secrets)

    listed = promoted("events", "list", "--format", "csv")
    assert "not-a-replica" in listed.stdout
    assert "skipped: not in recovery (promoted, or not a replica); reading from the primary" in listed.stderr
    promoted("events", "list", "--replica", "required", exit_code=5)


def test_replica_options_and_settings_refused_in_one_line(linea: CliRun, replica_database_url: URL) -> None:
    alone = linea("events", "list", "--replica", "required", exit_code=1)
    assert alone.stderr.startswith("error: --replica required, but LINEA_READ_DATABASE_URL names no replica")
    both = linea("--primary", "--replica", "required", "events", "list", exit_code=2,
                 env={"LINEA_READ_DATABASE_URL": plain_url(replica_database_url)})
    assert "contradict" in both.stderr
    for bad in ("5 parsecs", "", "-1s"):
        refused = linea("events", "list", env={"LINEA_REPLICA_MAX_LAG": bad}, exit_code=1)
        assert refused.stderr.startswith("error: ") and "LINEA_REPLICA_MAX_LAG" in refused.stderr
        assert "Traceback" not in refused.stderr
    linea("events", "list", env={"LINEA_READ_DATABASE_URL": ""}, exit_code=1)


# --- a replica that goes away mid-list --------------------------------------------------------------


@pytest.fixture
def own_replica(owned_server: linea_cli.TemporaryServer, database_url: URL) -> Iterator[linea_cli.TemporaryServer]:
    """A replica of this test's own (not the session's): the test stops it."""
    with linea_cli.temporary_replica(owned_server) as replica:
        yield replica


@pytest.fixture
def replica_stops_after_the_first_page(monkeypatch: pytest.MonkeyPatch, own_replica: linea_cli.TemporaryServer) -> None:
    """`--all` reads 2 rows a page; the replica stops (immediate shutdown) once the first page is
    read: the second page's connection finds nothing there."""
    monkeypatch.setattr(linea_cli.cli.context, "ALL_PAGE_SIZE", 2)
    real = linea_cli.services.reads.events_page
    pages: list[int] = []

    def page_then_stop(connection: Any, **kwargs: Any) -> Any:
        page = real(connection, **kwargs)
        pages.append(1)
        if len(pages) == 1:
            own_replica.stop()
        return page

    monkeypatch.setattr(linea_cli.services.reads, "events_page", page_then_stop)


def _own_replica_run(linea: CliRun, replica: linea_cli.TemporaryServer, database_url: URL) -> CliRun:
    url = URL.create("postgresql", username="postgres", database=database_url.database, query={"host": _host(replica.url)})
    return CliRun(env={**linea.env, "LINEA_READ_DATABASE_URL": plain_url(url)}, secrets=linea.secrets)


def _host(url: str) -> str:
    from linea_cli.db.urls import parse_database_url

    return str(parse_database_url(url).query["host"])


def test_a_replica_gone_mid_list_leaves_the_rest_to_the_primary(
    linea: CliRun, db: Database, owner: dict, own_replica: linea_cli.TemporaryServer, database_url: URL,
    replica_stops_after_the_first_page: None, tmp_path: Path, direct_database_url: URL,
) -> None:
    slugs = {make_event(db, owner=owner, slug=f"listed-{number}")["slug"] for number in range(7)}
    wait_for_replay(URL.create("postgresql", username="postgres", database=database_url.database,
                               query={"host": _host(own_replica.url)}), primary=direct_database_url)
    run = _own_replica_run(linea, own_replica, database_url)

    listed = run("events", "list", "--all", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert sorted(row["slug"] for row in rows) == sorted(slugs)  # every row once: none lost, none twice
    [line] = listed.stderr.splitlines()
    assert line.startswith("warning: replica 1 (") and "went away" in line
    assert line.endswith("reading from the primary from here on")


def test_a_replica_gone_mid_list_with_replica_required_exits_5_in_one_line(
    linea: CliRun, db: Database, owner: dict, own_replica: linea_cli.TemporaryServer, database_url: URL,
    replica_stops_after_the_first_page: None, tmp_path: Path, direct_database_url: URL,
) -> None:
    for number in range(7):
        make_event(db, owner=owner, slug=f"listed-{number}")
    wait_for_replay(URL.create("postgresql", username="postgres", database=database_url.database,
                               query={"host": _host(own_replica.url)}), primary=direct_database_url)
    run = _own_replica_run(linea, own_replica, database_url)

    failed = run("events", "list", "--all", "--format", "csv", "--replica", "required", exit_code=5)
    lines = failed.stderr.splitlines()
    assert lines[0].startswith("error: replica 1 (") and "went away" in lines[0] and "--replica required" in lines[0]
    assert [line for line in lines[1:] if not line.startswith("hint: ")] == []


def test_a_fences_file_linea_cannot_trust_sends_reads_to_the_primary(
    on_replica: CliRun, db: Database, owner: dict, tmp_path: Path, replica_database_url: URL, direct_database_url: URL,
) -> None:
    """Not knowing linea's last write is never a reason to read stale data: the primary answers."""
    make_event(db, owner=owner, slug="fence-unknown")
    wait_for_replay(replica_database_url, primary=direct_database_url)
    state = Path(on_replica.env["XDG_STATE_HOME"]) / "linea"
    state.mkdir(parents=True)
    elsewhere = tmp_path / "someone-elses.json"
    elsewhere.write_text("{}")

    for planted in ("not json at all", '{"x/y": {"lsn": "; rm -rf /"}}', None):
        fences = state / "fences.json"
        fences.unlink(missing_ok=True)
        if planted is None:
            fences.symlink_to(elsewhere)  # a link: not followed, not trusted
        else:
            fences.write_text(planted)
        listed = on_replica("events", "list", "--format", "csv")
        assert "fence-unknown" in listed.stdout
        [line] = listed.stderr.splitlines()
        assert line.startswith("warning: linea's last write to this database is unknown (") and line.endswith(
            "reading from the primary"
        )
        refused = on_replica("events", "list", "--replica", "required", exit_code=5)
        assert refused.stderr.startswith("error: linea's last write to this database is unknown")

    # A write replaces it with a file of linea's own, and reads go to the replica again.
    on_replica("--as", ADMIN_EMAIL, "events", "create", "--title", "Fence known", "--start", "2031-05-01T10:00", "--owner", owner["email"])
    assert not fences.is_symlink() and elsewhere.read_text() == "{}"
    assert on_replica("events", "show", "fence-known", "--replica", "required").stderr == ""


def test_a_replica_of_another_database_or_server_is_skipped_and_never_read(
    linea: CliRun, db: Database, owner: dict, replica_server_url: URL, replica_database_url: URL,
    direct_database_url: URL, owned_server: linea_cli.TemporaryServer,
) -> None:
    """A URL of the wrong replica (another database on it, another environment's server) would
    answer from other data: it is named and skipped, as if it lagged."""
    make_event(db, owner=owner, slug="only-on-this-database")
    wait_for_replay(replica_database_url, primary=direct_database_url)
    other_database = CliRun(
        env={**linea.env, "LINEA_READ_DATABASE_URL": plain_url(replica_server_url.set(database="postgres"))}, secrets=linea.secrets,
    )
    listed = other_database("events", "list", "--format", "csv")
    assert "only-on-this-database" in listed.stdout
    assert "skipped: its URL names the database 'postgres', not " in listed.stderr

    with linea_cli.temporary_server() as elsewhere, linea_cli.temporary_replica(elsewhere) as elsewhere_replica:
        url = plain_url(URL.create("postgresql", username="postgres", database="postgres", query={"host": _host(elsewhere_replica.url)}))
        # Its own database of the same name would pass the name check: only the server tells.
        with psycopg.connect(elsewhere.url, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(direct_database_url.database)))
        wait_until(lambda: _has_database(elsewhere_replica.url, direct_database_url.database), what="the other replica replayed it")
        other_server = CliRun(
            env={**linea.env, "LINEA_READ_DATABASE_URL": url.replace("/postgres?", f"/{direct_database_url.database}?")},
            secrets=linea.secrets,
        )
        refused = other_server("events", "list", "--replica", "required", exit_code=5)
        assert "a replica of another server (system identifier " in refused.stderr


def _has_database(url: str, name: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone() == (1,)


def test_a_profiles_read_url_names_its_replicas_and_replaces_the_environments(
    linea: CliRun, db: Database, owner: dict, primary: psycopg.Connection, replica: psycopg.Connection,
    replica_database_url: URL, direct_database_url: URL,
) -> None:
    make_event(db, owner=owner, slug="through-the-profile")
    wait_for_replay(replica_database_url, primary=direct_database_url)
    linea("profile", "add", "prod", "--url", linea.env["LINEA_DATABASE_URL"], "--read-url", plain_url(replica_database_url))
    profiled = CliRun(
        env={**{k: v for k, v in linea.env.items() if k != "LINEA_DATABASE_URL"}, "LINEA_PROFILE": "prod",
             "LINEA_READ_DATABASE_URL": "postgresql://someone:else@127.0.0.1:9/another"},
        secrets=linea.secrets,
    )
    listed = read_on_the_replica_only(
        primary, replica, "events", lambda: profiled("events", "list", "--format", "csv", "--replica", "required")
    )
    assert "through-the-profile" in listed.stdout and listed.stderr == ""


def test_the_platforms_database_reads_on_the_replica(
    adopted: CliRun, platform_url: URL, replica_server_url: URL, tmp_path: Path
) -> None:
    """The database the platform made (Prisma's DDL and rows), adopted: its lists, shows and
    waitlist export read on the replica, and its raw session tokens stay unprinted there too."""
    from tests.platform import EVENT_SLUG, VERA, jwt_for

    replica_url = replica_server_url.set(database=platform_url.database)
    wait_for_replay(replica_url, primary=platform_url)
    on_replica = CliRun(env={**adopted.env, "LINEA_READ_DATABASE_URL": plain_url(replica_url)}, secrets=adopted.secrets)
    with psycopg.connect(libpq_conninfo(platform_url), autocommit=True) as primary, psycopg.connect(
        libpq_conninfo(replica_url), autocommit=True
    ) as replica:
        shown = read_on_the_replica_only(
            primary, replica, "events", lambda: on_replica("events", "show", EVENT_SLUG, "--replica", "required", "--json")
        )
        assert shown.json["slug"] == EVENT_SLUG
        sessions = read_on_the_replica_only(
            primary, replica, "sessions", lambda: on_replica("sessions", "list", "--all", "--replica", "required", "--json")
        )
        assert jwt_for(VERA) not in sessions.stdout
        out = tmp_path / "waitlist.csv"
        read_on_the_replica_only(
            primary, replica, "waitlist_entries",
            lambda: on_replica("waitlist", "export", EVENT_SLUG, "-o", str(out), "--replica", "required"),
        )
        assert out.read_text().startswith("email,status,created_at,updated_at,name")
