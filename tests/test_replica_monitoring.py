"""`db status`, `db doctor` and the monitoring views on streaming replicas (issue 22).

Every test runs linea against the test database with LINEA_READ_DATABASE_URL naming a real
streaming replica of the test server. A replica falls behind by pausing its replay; each wait polls
a server condition: nothing here depends on how long anything takes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from rich.cells import cell_len
from sqlalchemy.engine import URL

from tests.factories import make_user
from tests.harness import (
    CliRun,
    Database,
    libpq_conninfo,
    pause_replay,
    plain_url,
    run_linea_in_terminal,
    wait_for_replay,
)

NOWHERE = "postgresql://reader:s3cret-replica-pw@127.0.0.1:9/linea"  # port 9 (discard): nothing answers


@pytest.fixture
def on_replica(linea: CliRun, replica_database_url: URL, direct_database_url: URL) -> CliRun:
    """`linea` with the replica configured as its read database, caught up with the primary."""
    wait_for_replay(replica_database_url, primary=direct_database_url)
    return CliRun(env={**linea.env, "LINEA_READ_DATABASE_URL": plain_url(replica_database_url)}, secrets=linea.secrets)


def replica_rows(stdout: str) -> list[dict[str, str]]:
    """The rows of `db status`'s Replicas table, piped (TSV after the record and a blank line)."""
    _, _, table = stdout.partition("\n\n")
    return list(csv.DictReader(io.StringIO(table), delimiter="\t"))


def where(url: URL) -> str:
    return f"{url.host or url.query['host']}:{url.port or url.query.get('port') or 5432}"


# --- db status and db doctor --------------------------------------------------------------------


def test_status_lists_the_replica_with_its_lag_and_that_reads_would_use_it(
    on_replica: CliRun, replica_database_url: URL,
) -> None:
    shown = on_replica("db", "status")
    [row] = replica_rows(shown.stdout)
    assert row["position"] == "1"
    assert row["where"] == where(replica_database_url)
    assert row["would_use"] == "yes" and row["why_not"] == ""
    assert row["replay_paused"] == "no"
    assert int(row["bytes_behind"]) >= 0 and float(row["seconds_behind"]) >= 0
    assert shown.stderr == ""

    [record] = on_replica("db", "status", "--json").json["replicas"]
    assert record["position"] == 1 and record["reachable"] is True and record["in_recovery"] is True
    assert record["replay_paused"] is False and record["would_use"] is True and record["why_not"] is None
    assert isinstance(record["bytes_behind"], int) and isinstance(record["seconds_behind"], float)
    assert "url" not in record  # it may hold a password: `where` names it


def test_a_paused_replica_is_shown_paused_not_used_and_doctor_warns_but_exits_0(
    on_replica: CliRun, db: Database, replica: psycopg.Connection, replica_database_url: URL,
) -> None:
    pause_replay(replica)
    make_user(db, email="written.after.the.pause@example.org")  # on the primary: the replica is behind it

    [row] = replica_rows(on_replica("db", "status").stdout)
    assert (row["replay_paused"], row["would_use"], row["why_not"]) == ("yes", "no", "replay paused")
    [record] = on_replica("db", "status", "--json").json["replicas"]
    assert record["replay_paused"] is True and record["would_use"] is False and record["bytes_behind"] > 0

    checks = {check["check"]: check for check in on_replica("db", "doctor", "--json").json}  # exit 0
    assert checks["replica 1"]["status"] == "WARN"
    assert checks["replica 1"]["detail"] == f"{where(replica_database_url)}: replay paused: reads go elsewhere"
    on_replica("db", "doctor")  # the table too: a WARN is not a failure


def test_doctor_says_a_replica_that_may_serve_is_ok(on_replica: CliRun) -> None:
    checks = [check for check in on_replica("db", "doctor", "--json").json if check["check"].startswith("replica ")]
    assert [(check["check"], check["status"]) for check in checks] == [("replica 1", "OK")]
    assert checks[0]["detail"].endswith(" behind: reads may go here")


def test_an_unreachable_replica_is_listed_as_such_without_its_password_or_a_traceback(
    linea: CliRun, replica_database_url: URL, direct_database_url: URL,
) -> None:
    wait_for_replay(replica_database_url, primary=direct_database_url)
    both = CliRun(
        env={**linea.env, "LINEA_READ_DATABASE_URL": f"{NOWHERE},{plain_url(replica_database_url)}"},
        secrets=(*linea.secrets, "s3cret-replica-pw"),
    )

    shown = both("db", "status")
    first, second = replica_rows(shown.stdout)
    assert (first["where"], first["reachable"], first["would_use"]) == ("127.0.0.1:9", "no", "no")
    assert first["why_not"].startswith("unreachable: ")
    assert second["would_use"] == "yes"
    assert "Traceback" not in shown.stderr

    [record, _] = both("db", "status", "--json").json["replicas"]
    assert record["reachable"] is False and record["in_recovery"] is None and record["would_use"] is False

    doctor = both("db", "doctor")
    assert "replica 1\tWARN\t127.0.0.1:9: unreachable: " in doctor.stdout
    assert "Traceback" not in doctor.stderr


def test_status_at_a_terminal_80_columns_wide_fits_it(on_replica: CliRun) -> None:
    code, screen, errors = run_linea_in_terminal(["db", "status"], env=on_replica.env, columns=80)
    assert code == 0, errors
    assert "Replicas" in screen and "yes" in screen
    assert max(cell_len(line) for line in screen.splitlines()) <= 80


def test_without_replicas_status_and_doctor_say_nothing_of_them(linea: CliRun) -> None:
    shown = linea("db", "status")
    assert "\n\n" not in shown.stdout.strip() and shown.stderr == ""
    assert "replicas" not in linea("db", "status", "--json").json
    assert not [check for check in linea("db", "doctor", "--json").json if check["check"].startswith("replica ")]


# --- the monitoring views' --server --------------------------------------------------------------


@pytest.fixture
def replica_only_session(replica_database_url: URL) -> Iterator[str]:
    """A session open on the replica alone, under a name nothing else uses."""
    name = "watched-on-the-replica-only"
    with psycopg.connect(libpq_conninfo(replica_database_url), application_name=name, autocommit=True):
        yield name


def applications(result: Any) -> set[str | None]:
    return {session["application"] for session in result.json}


def test_activity_server_1_shows_the_sessions_of_the_replica(on_replica: CliRun, replica_only_session: str) -> None:
    on_the_replica = on_replica("db", "activity", "--server", "1", "--json")
    assert replica_only_session in applications(on_the_replica)
    assert replica_only_session not in applications(on_replica("db", "activity", "--json"))
    assert replica_only_session not in applications(on_replica("db", "activity", "--server", "primary", "--json"))
    # The replica linea would read from now: the same one here.
    assert replica_only_session in applications(on_replica("db", "activity", "--server", "replica", "--json"))


def test_activity_on_a_replica_says_which_for_people(on_replica: CliRun, replica_database_url: URL) -> None:
    shown = on_replica("db", "activity", "--server", "1")
    assert shown.stderr.splitlines()[0] == f"showing replica 1 ({where(replica_database_url)})"


def test_a_lagging_replica_is_still_shown_by_its_number_but_not_as_the_replica(
    on_replica: CliRun, replica: psycopg.Connection, db: Database, replica_only_session: str,
) -> None:
    pause_replay(replica)
    make_user(db, email="written.while.paused@example.org")

    assert replica_only_session in applications(on_replica("db", "activity", "--server", "1", "--json"))
    refused = on_replica("db", "activity", "--server", "replica", exit_code=5)
    assert refused.stderr.startswith("error: no replica may serve reads now: replica 1 (")
    assert "replay paused" in refused.stderr and refused.stdout == ""


def test_pool_queries_and_indexes_take_server(on_replica: CliRun, replica_only_session: str) -> None:
    pool = on_replica("db", "pool", "--server", "1", "--json").json
    assert replica_only_session in {group["application"] for group in pool["connections"]}
    assert replica_only_session not in {group["application"] for group in on_replica("db", "pool", "--json").json["connections"]}
    on_the_replica = {row["index"] for row in on_replica("db", "indexes", "--server", "1", "--json").json["indexes"]}
    assert on_the_replica and on_the_replica == {row["index"] for row in on_replica("db", "indexes", "--json").json["indexes"]}


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["db", "activity", "--server", "2"], 1,
         "error: --server 2: LINEA_READ_DATABASE_URL names 1 replica(s), numbered from 1"),
        (["db", "indexes", "--server", "standby"], 2,
         "error: --server 'standby': give primary, replica, or a replica's number (1 for the first)"),
        (["db", "queries", "--since", "1h", "--server", "1"], 2,
         "error: --since compares with the snapshots of the primary's statistics (`linea db snapshot`): it takes no --server 1"),
        (["db", "cancel", "4242", "--server", "1", "--yes"], 2,
         "error: db cancel signals the primary's sessions only: it takes no --server 1"),
        (["db", "terminate", "4242", "--server", "replica", "--yes"], 2,
         "error: db terminate signals the primary's sessions only: it takes no --server replica"),
        (["--primary", "db", "activity", "--server", "1"], 2,
         "error: --primary and --server 1 contradict each other: give one"),
    ],
)
def test_a_server_that_cannot_be_shown_is_one_line(on_replica: CliRun, args: list[str], exit_code: int, message: str) -> None:
    refused = on_replica(*args, exit_code=exit_code)
    assert refused.stderr.splitlines()[0] == message
    assert refused.stdout == "" and "Traceback" not in refused.stderr


@pytest.mark.parametrize("server", ["replica", "1"])
def test_without_replicas_a_replica_view_is_one_line(linea: CliRun, server: str) -> None:
    refused = linea("db", "activity", "--server", server, exit_code=1)
    assert refused.stderr.splitlines()[0] == f"error: --server {server}: LINEA_READ_DATABASE_URL names no replica"
    assert refused.stdout == "" and "Traceback" not in refused.stderr


def test_an_unreachable_replica_shown_by_its_number_is_exit_5_without_its_password(linea: CliRun) -> None:
    nowhere = CliRun(env={**linea.env, "LINEA_READ_DATABASE_URL": NOWHERE}, secrets=(*linea.secrets, "s3cret-replica-pw"))
    refused = nowhere("db", "activity", "--server", "1", exit_code=5)
    assert refused.stderr.startswith("error: replica 1 (127.0.0.1:9) is unreachable: ")  # not the primary
    assert refused.stdout == "" and "Traceback" not in refused.stderr
    none = nowhere("db", "pool", "--server", "replica", exit_code=5)
    assert none.stderr.startswith("error: no replica may serve reads now: replica 1 (127.0.0.1:9) unreachable: ")
