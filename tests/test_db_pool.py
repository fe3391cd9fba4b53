"""`linea db pool`: the server's connections against its limit, and PgBouncer's pools when its admin
console is configured (a PgBouncer of the test's own, with a pool of one server connection)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.harness import (
    Bouncer,
    CliRun,
    free_port,
    libpq_conninfo,
    pgbouncer_installed,
    plain_url,
    run_linea_in_terminal,
    running_pgbouncer,
    wait_until,
)


@pytest.fixture
def pgbouncer(direct_server_url: URL) -> Iterator[Bouncer]:
    """A PgBouncer of this test's own in front of the test server: transaction pooling, one server
    connection per pool, any client user let in (the server login is the test server's role)."""
    if not pgbouncer_installed():
        pytest.skip("PgBouncer is not installed")
    with running_pgbouncer(direct_server_url) as bouncer:
        yield bouncer


def test_with_a_pool_of_one_and_two_clients_db_pool_shows_one_waiting(
    linea: CliRun, database_name: str, pgbouncer: Bouncer
) -> None:
    pooled = pgbouncer.url(database_name, "linea_pool")
    with psycopg.connect(pooled) as holder, psycopg.connect(pooled, autocommit=True) as waiter:
        holder.execute("SELECT 1")  # a transaction now holds the pool's one server connection
        waited = threading.Thread(target=lambda: waiter.execute("SELECT 2"))
        waited.start()
        try:
            wait_until(
                lambda: any(pool["database"] == database_name and pool["cl_waiting"] == 1 for pool in pgbouncer.pools()),
                what="the second client to wait",
            )
            env = {"LINEA_PGBOUNCER_ADMIN_URL": pgbouncer.admin_url}
            report = linea("db", "pool", "--json", env=env).json
            code, shown, stderr = run_linea_in_terminal(("db", "pool"), env={**linea.env, **env}, columns=80)
        finally:
            holder.rollback()
            waited.join()
    pools = report["pgbouncer"]["pools"]
    # Waiting clients first: the test database's pool heads the list, before the console's own.
    assert [(pool["database"], pool["cl_active"], pool["cl_waiting"], pool["sv_active"], pool["pool_mode"]) for pool in pools][0] == (
        database_name, 1, 1, 1, "transaction"
    )
    assert pools[0]["oldest_wait_seconds"] >= 0
    assert sorted(pools[0]) == sorted(
        ["database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "sv_login", "pool_mode", "oldest_wait_seconds"]
    )
    assert [(row["name"], row["pool_size"], row["current_connections"]) for row in report["pgbouncer"]["databases"]] == [
        (database_name, 1, 1), ("pgbouncer", 2, 0)
    ]
    stats = {row["database"]: row for row in report["pgbouncer"]["stats"]}
    assert isinstance(stats[database_name]["total_xact_count"], int) and stats[database_name]["total_xact_count"] >= 1
    assert report["pgbouncer"]["version"].startswith("PgBouncer ")
    assert code == 0, stderr
    lines = shown.splitlines()
    assert all(len(line) <= 80 for line in lines), shown
    at = lines.index("PgBouncer pools")
    assert lines[at + 1].split()[:6] == ["database", "user", "waiting", "oldest", "wait", "(s)"], shown
    assert lines[at + 2].split()[0] == database_name and lines[at + 2].split()[2] == "1", shown


def test_db_pool_groups_the_servers_connections_by_application_and_state(
    linea: CliRun, database_name: str, direct_database_url: URL
) -> None:
    with psycopg.connect(libpq_conninfo(direct_database_url), application_name="box-office") as session:
        session.execute("SELECT 1")  # and left idle in its transaction
        report = linea("db", "pool", "--json").json
    groups = [(group["database"], group["application"], group["state"], group["connections"]) for group in report["connections"]]
    assert (database_name, "box-office", "idle in transaction", 1) in groups
    assert any(application == "linea/db pool" and state == "active" for _, application, state, _ in groups), groups
    limit = int(psycopg.connect(libpq_conninfo(direct_database_url), autocommit=True).execute("SHOW max_connections").fetchone()[0])
    assert report["max_connections"] == limit
    reserved = report["superuser_reserved_connections"] + (report["reserved_connections"] or 0)
    assert report["in_use"] == sum(group["connections"] for group in report["connections"]) >= 2
    assert report["available"] == limit - reserved - report["in_use"]
    assert report["pgbouncer"] is None and report["notes"] == []
    long_name = "a-worker-whose-application-name-fills-all-63-characters-allowed"
    with psycopg.connect(libpq_conninfo(direct_database_url), application_name=long_name):
        code, shown, stderr = run_linea_in_terminal(("db", "pool"), env=linea.env, columns=80)
    assert code == 0, stderr
    assert all(len(line) <= 80 for line in shown.splitlines()), shown
    assert any(line.split()[1:3] == ["a-worker-whose-appl…", "idle"] for line in shown.splitlines()), shown
    piped = linea("db", "pool", "--format", "csv").stdout.splitlines()
    assert piped[0] == "database,application,state,connections,longest_in_state_seconds,oldest_transaction_seconds"


def test_an_unreachable_pgbouncer_console_is_exit_5_after_the_servers_part(linea: CliRun) -> None:
    env = {"LINEA_PGBOUNCER_ADMIN_URL": f"postgresql://admin:s3cret@127.0.0.1:{free_port()}/pgbouncer"}
    result = linea("db", "pool", "--json", env=env, exit_code=5)
    assert result.json["pgbouncer"] is None and result.json["in_use"] >= 1
    assert result.stderr.startswith("error: PgBouncer's admin console at postgresql://admin:***@127.0.0.1:")
    assert "s3cret" not in result.stderr


def test_a_database_that_is_not_pgbouncers_console_is_said_so(
    linea: CliRun, direct_database_url: URL, database_name: str, pgbouncer: Bouncer
) -> None:
    """PostgreSQL itself, or one of PgBouncer's pooled databases (which passes SHOW VERSION on to
    PostgreSQL), rather than its `pgbouncer` database: said in those words, after the server's part."""
    for url in (plain_url(direct_database_url), pgbouncer.url(database_name, "linea_pool")):
        result = linea("db", "pool", "--json", env={"LINEA_PGBOUNCER_ADMIN_URL": url}, exit_code=5)
        assert result.json["pgbouncer"] is None and result.json["in_use"] >= 1
        [line] = result.stderr.splitlines()
        assert line.startswith("error: LINEA_PGBOUNCER_ADMIN_URL (postgresql://"), line
        assert ") is not PgBouncer's admin console: it answered SHOW VERSION as PostgreSQL does (" in line
        assert line.endswith("database pgbouncer: postgresql://USER[:PASSWORD]@HOST:PORT/pgbouncer"), line
        if direct_database_url.password:
            assert str(direct_database_url.password) not in result.stderr


def test_a_keyword_value_string_or_no_url_is_exit_1_naming_the_setting(linea: CliRun) -> None:
    for value, reason in (
        ("host=x password=zz", "a libpq keyword/value string (host=... dbname=...)"),
        ("::not a url", "not a URL"),
    ):
        result = linea("db", "pool", env={"LINEA_PGBOUNCER_ADMIN_URL": value}, exit_code=1)
        assert result.stderr == (
            f"error: invalid LINEA_PGBOUNCER_ADMIN_URL: {reason}\n"
            "hint: PgBouncer's admin console is postgresql://USER[:PASSWORD]@HOST:PORT/pgbouncer\n"
        )


def test_an_empty_or_unreadable_pgbouncer_setting_is_exit_1_naming_it(linea: CliRun) -> None:
    empty = linea("db", "pool", env={"LINEA_PGBOUNCER_ADMIN_URL": ""}, exit_code=1)
    assert empty.stderr.startswith("error: invalid LINEA_PGBOUNCER_ADMIN_URL ''"), empty.stderr
    linea("db", "pool", env={"LINEA_PGBOUNCER_ADMIN_URL": "mysql://x@y/pgbouncer"}, exit_code=1)


def test_other_roles_sessions_are_counted_as_hidden_for_a_role_without_pg_read_all_stats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a server of its own (nobody else's sessions): a role that may not read others' sessions
    sees no backend_type for them, and they still count, as `(hidden)`, with the warning."""
    from tests.harness import admin_execute, make_cli_run
    from tests.test_queries import _own_server

    with _own_server() as url:
        admin_execute(url, "CREATE ROLE lowrd LOGIN")
        alone = make_cli_run(url, tmp_path, monkeypatch)
        # Only linea's own connection: one, said as one.
        assert "\n1 client connection of " in "\n" + alone("db", "pool").stdout
        lowrd = make_cli_run(url.set(username="lowrd"), tmp_path, monkeypatch)
        with psycopg.connect(libpq_conninfo(url), application_name="test-superuser") as other:
            other.execute("SELECT 1")
            result = lowrd("db", "pool", "--json")
            table = lowrd("db", "pool")
    report = result.json
    groups = [(group["application"], group["state"], group["connections"]) for group in report["connections"]]
    assert ("test-superuser", "(hidden)", 1) in groups and report["in_use"] == 2, groups
    assert report["notes"] == ["other roles' sessions show no state to this role: grant it pg_read_all_stats to see them"]
    assert "\n2 client connections of " in "\n" + table.stdout
    assert "warning: other roles' sessions show no state to this role" in table.stderr
