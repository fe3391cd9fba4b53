"""`linea db indexes` on the platform's database: what each index costs and whether it earns it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.harness import CliRun, Database, libpq_conninfo, plain_url, run_linea_in_terminal, wait_until
from tests.platform import build_platform_database

# PostgreSQL 15 as Debian packages it (CI's compat server), whose contrib has pg_stat_statements.
PG15_BIN = Path("/usr/lib/postgresql/15/bin")
PG15_STATEMENTS = Path("/usr/lib/postgresql/15/lib/pg_stat_statements.so")


def _scanned(platform_db: Database, index: str) -> int:
    return int(platform_db.scalar("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = :name", name=index))


def _use_index(platform_db: Database, query: str, index: str) -> None:
    """Run `query` once with the planner made to prefer indexes, and wait until the server's
    statistics count the scan of `index` (a backend reports them when its session ends)."""
    before = _scanned(platform_db, index)
    with psycopg.connect(libpq_conninfo(platform_db.url)) as connection:
        connection.execute("SET enable_seqscan = off")
        connection.execute(query).fetchall()
    wait_until(lambda: _scanned(platform_db, index) > before, what=f"the scan of {index} to be counted")


def test_a_planted_duplicate_and_an_unused_index_are_reported_as_such(platform: CliRun, platform_db: Database) -> None:
    # Scanned before its twin below exists (the planner would then pick either).
    _use_index(platform_db, "SELECT id FROM events WHERE start_date > '2000-01-01'", "events_start_date_idx")
    platform_db.execute('CREATE INDEX "planted_audit_resource" ON audit_logs (resource)')  # audit_logs_resource_resource_id_idx begins so
    platform_db.execute('CREATE INDEX "planted_events_title" ON events (title)')  # used by nothing
    platform_db.execute('CREATE INDEX "zz_events_start_date" ON events (start_date)')  # events_start_date_idx twice
    platform_db.execute('CREATE INDEX "planted_users_lower_email" ON users (lower(email))')
    platform_db.execute('CREATE INDEX "planted_users_lower_email_again" ON users (lower(email))')
    # The same column under another predicate, or another expression: not a duplicate.
    platform_db.execute("""CREATE INDEX "planted_events_published" ON events (status) WHERE status = 'PUBLISHED'""")
    platform_db.execute('CREATE INDEX "planted_users_upper_email" ON users (upper(email))')

    report = platform("db", "indexes", "--json").json
    found = {row["index"]: row for row in report["indexes"]}
    verdicts = {name: (row["verdicts"], row["covered_by"]) for name, row in found.items() if row["verdicts"]}
    assert verdicts == {
        "planted_audit_resource": (["UNUSED", "DUPLICATE"], "audit_logs_resource_resource_id_idx"),
        "planted_events_title": (["UNUSED"], None),
        "zz_events_start_date": (["UNUSED", "DUPLICATE"], "events_start_date_idx"),
        "planted_users_lower_email_again": (["UNUSED", "DUPLICATE"], "planted_users_lower_email"),
        "planted_users_lower_email": (["UNUSED"], None),
        "planted_events_published": (["UNUSED"], None),
        "planted_users_upper_email": (["UNUSED"], None),
        # The platform's own: indexes a unique one of the same columns already is (PgHero passes
        # over the first two, whose names sort before their unique twins').
        "events_slug_idx": (["UNUSED", "DUPLICATE"], "events_slug_key"),
        "sessions_token_idx": (["UNUSED", "DUPLICATE"], "sessions_token_key"),
        "waitlist_entries_email_idx": (["UNUSED", "DUPLICATE"], "waitlist_entries_email_event_id_key"),
        # Never scanned on this new database either.
        "events_status_idx": (["UNUSED"], None),
        "waitlist_entries_event_id_idx": (["UNUSED"], None),
        "sessions_expires_at_idx": (["UNUSED"], None),
        "audit_logs_resource_resource_id_idx": (["UNUSED"], None),
        "audit_logs_user_id_idx": (["UNUSED"], None),
        "audit_logs_created_at_idx": (["UNUSED"], None),
    }
    used = found["events_start_date_idx"]
    assert used["scans"] >= 1 and used["verdicts"] == [] and used["valid"] is True
    assert found["users_email_key"]["unique"] is True and found["users_email_key"]["verdicts"] == []
    assert found["planted_events_title"]["definition"] == "CREATE INDEX planted_events_title ON public.events USING btree (title)"
    assert found["planted_events_title"]["size_bytes"] == 8192 * int(
        platform_db.scalar("SELECT relpages FROM pg_class WHERE relname = 'planted_events_title'")
    ) > 0
    assert set(report) == {"statistics_reset", "statistics_age_seconds", "sequential_scan_tables", "notes", "indexes"}
    assert report["notes"] == []


def test_an_invalid_index_is_reported_and_never_called_unused(platform: CliRun, platform_db: Database) -> None:
    platform_db.execute("CREATE INDEX planted_half_built ON events (title)")
    # What a failed CREATE INDEX CONCURRENTLY leaves behind.
    platform_db.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'planted_half_built'::regclass")
    row = next(row for row in platform("db", "indexes", "--json").json["indexes"] if row["index"] == "planted_half_built")
    assert (row["verdicts"], row["valid"], row["covered_by"]) == (["INVALID"], False, None)


def test_a_table_read_mostly_by_sequential_scans_is_named(platform: CliRun, platform_db: Database) -> None:
    platform_db.execute(
        "INSERT INTO audit_logs (id, action, resource, resource_id, created_at) "
        "SELECT 'seq' || n, 'READ', 'event', 'e' || n, now() FROM generate_series(1, 12000) AS n"
    )
    platform_db.execute("ANALYZE audit_logs")
    before = int(platform_db.scalar("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'audit_logs'"))
    with psycopg.connect(libpq_conninfo(platform_db.url)) as connection:
        connection.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
        for _ in range(3):
            connection.execute("SELECT count(*) FROM audit_logs WHERE resource = 'event'").fetchall()
    wait_until(
        lambda: int(platform_db.scalar("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'audit_logs'")) >= before + 3,
        what="the sequential scans to be counted",
    )
    rows = platform_db.count("audit_logs")  # the platform's own, and these 12,000
    tables = platform("db", "indexes", "--json").json["sequential_scan_tables"]
    assert [(table["table"], table["live_rows"], table["index_scans"], table["index_scan_share"]) for table in tables] == [
        ("audit_logs", rows, 0, 0.0)
    ]
    result = platform("db", "indexes", "--format", "csv")
    assert f"audit_logs: read mostly by sequential scans ({rows} rows, 0.0% of" in result.stderr
    assert result.stdout.splitlines()[0] == (
        "table,index,size,scans,bloat,verdict,covered_by,size_bytes,bloat_bytes,verdicts,unique,primary,valid,definition"
    )


@pytest.mark.parametrize("columns", [80, 120])
def test_at_a_terminal_the_table_fits_and_says_how_old_the_statistics_are(
    platform: CliRun, platform_db: Database, columns: int
) -> None:
    code, shown, stderr = run_linea_in_terminal(("db", "indexes"), env=platform.env, columns=columns)
    assert code == 0, stderr
    lines = shown.splitlines()
    assert all(len(line) <= columns for line in lines), shown
    headers = {80: ["index", "size", "scans", "bloat", "verdict"],
               120: ["index", "size", "scans", "bloat", "verdict", "covered", "by"]}[columns]
    assert lines[1].split() == headers, shown
    row = next(line.split() for line in lines if line.startswith("events_slug_idx "))
    expected = ["0", "UNUSED,", "DUPLICATE"] + ([] if columns == 80 else ["events_slug_key"])
    assert row[-len(expected):] == expected, shown
    assert "events_slug_idx: DUPLICATE, events_slug_key begins with the same columns" in stderr
    assert "scans counted since the statistics" in stderr


def test_behind_a_ddl_lock_it_still_reports_with_the_catalogs_sizes(platform: CliRun, platform_db: Database) -> None:
    """A deploy drops an index in its migration's transaction: it holds ACCESS EXCLUSIVE on the index
    and its table, and reading the index's size or the table's definitions would wait on it; db
    indexes does not, and says what it could not read."""
    with psycopg.connect(libpq_conninfo(platform_db.url)) as deploy:
        deploy.execute("DROP INDEX events_status_idx")
        result = platform("db", "indexes", "--json")
        deploy_pid = deploy.info.backend_pid
        deploy.rollback()
    report = result.json
    waited = f"blocked: waited 200ms for a lock: pid {deploy_pid} holds ACCESS EXCLUSIVE on events, events_status_idx"
    assert report["notes"] == [
        f"events: no index definitions, {waited}",
        f"sizes are the catalog's estimates (as of the last VACUUM or ANALYZE): {waited}",
    ]
    found = {row["index"]: row for row in report["indexes"]}
    assert found["events_status_idx"]["verdicts"] == ["UNUSED"] and found["events_status_idx"]["definition"] is None
    assert found["events_slug_idx"]["verdicts"] == ["UNUSED", "DUPLICATE"]
    assert found["users_email_key"]["definition"] == "CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email)"
    assert found["users_email_key"]["size_bytes"] == 8192 * int(
        platform_db.scalar("SELECT relpages FROM pg_class WHERE relname = 'users_email_key'")
    )


def test_an_index_emptied_by_deletes_is_estimated_bloated_until_it_is_rebuilt(platform: CliRun, platform_db: Database) -> None:
    platform_db.execute(
        "INSERT INTO audit_logs (id, action, resource, resource_id, created_at) "
        "SELECT 'bloat' || n, 'READ', 'event', 'event-' || n, now() FROM generate_series(1, 100000) AS n"
    )
    platform_db.execute("DELETE FROM audit_logs WHERE id LIKE 'bloat%' AND right(id, 2) <> '00'")  # 99% of them
    with psycopg.connect(libpq_conninfo(platform_db.url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE audit_logs")  # the pages stay the index's, mostly empty

    def index(name: str) -> dict:
        return next(row for row in platform("db", "indexes", "--json").json["indexes"] if row["index"] == name)

    bloated = index("audit_logs_resource_resource_id_idx")
    assert bloated["verdicts"] == ["UNUSED", "BLOATED"], bloated
    assert bloated["size_bytes"] > bloated["bloat_bytes"] > 0.9 * bloated["size_bytes"], bloated
    with psycopg.connect(libpq_conninfo(platform_db.url), autocommit=True) as connection:
        connection.execute("REINDEX INDEX audit_logs_resource_resource_id_idx")
    rebuilt = index("audit_logs_resource_resource_id_idx")
    assert rebuilt["verdicts"] == ["UNUSED"], rebuilt
    # The estimate of a freshly built index: no more than its metapage and a page or two of slack.
    assert rebuilt["bloat_bytes"] <= 3 * 8192, rebuilt


@pytest.fixture
def statements_server() -> Iterator[URL]:
    """A throwaway PostgreSQL 15 with pg_stat_statements preloaded, holding the platform's database
    (the embedded server's binaries have no contrib modules)."""
    if not (PG15_BIN / "postgres").exists() or not PG15_STATEMENTS.exists():
        pytest.skip("PostgreSQL 15 with pg_stat_statements is not installed")
    directory = Path(tempfile.mkdtemp(prefix="linea-pg15-"))
    as_user = {"user": "postgres"} if os.geteuid() == 0 else {}  # initdb refuses to run as root
    if as_user:
        shutil.chown(directory, "postgres", "postgres")
    data = directory / "data"
    subprocess.run([PG15_BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-locale", "-E", "UTF8"],
                   check=True, capture_output=True, **as_user)
    subprocess.run(
        [PG15_BIN / "pg_ctl", "-D", data, "-l", directory / "log", "-w", "start", "-o",
         f"-c listen_addresses='' -c unix_socket_directories='{directory}' -c shared_preload_libraries=pg_stat_statements "
         "-c fsync=off"],
        check=True, capture_output=True, **as_user,
    )
    try:
        url = URL.create("postgresql+psycopg", username="postgres", database="platform", query={"host": str(directory)})
        with psycopg.connect(libpq_conninfo(url.set(database="postgres")), autocommit=True) as server:
            server.execute("CREATE DATABASE platform")
        build_platform_database(url)
        with psycopg.connect(libpq_conninfo(url), autocommit=True) as database:
            database.execute("CREATE EXTENSION pg_stat_statements")
        yield url
    finally:
        subprocess.run([PG15_BIN / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True, **as_user)
        shutil.rmtree(directory, ignore_errors=True)


def test_a_table_read_by_sequential_scans_names_the_statement_behind_them(linea: CliRun, statements_server: URL) -> None:
    conninfo = libpq_conninfo(statements_server)
    with psycopg.connect(conninfo, autocommit=True) as platform:
        platform.execute(
            "INSERT INTO audit_logs (id, action, resource, resource_id, created_at) "
            "SELECT 'seq' || n, 'READ', 'event', 'e' || n, now() FROM generate_series(1, 12000) AS n"
        )
        platform.execute("ANALYZE audit_logs")
        platform.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
        for _ in range(5):
            platform.execute("SELECT count(*) FROM audit_logs WHERE resource_id = %s", ("e7",)).fetchall()
        platform.execute("SELECT count(*) FROM users").fetchall()  # another table's

    def sequential_scans() -> int:
        with psycopg.connect(conninfo, autocommit=True) as reader:
            return reader.execute("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = %s", ("audit_logs",)).fetchone()[0]

    wait_until(lambda: sequential_scans() >= 5, what="the sequential scans to be counted")
    url = plain_url(statements_server)
    env = {"LINEA_DATABASE_URL": url, "LINEA_MIGRATION_DATABASE_URL": url}
    tables = linea("db", "indexes", "--json", env=env).json["sequential_scan_tables"]
    assert [(table["table"], table["query"], table["query_calls"]) for table in tables] == [
        ("audit_logs", "SELECT count(*) FROM audit_logs WHERE resource_id = $1", 5)
    ]
    told = linea("db", "indexes", "--format", "csv", env=env).stderr
    assert "  its costliest statement (5 calls): SELECT count(*) FROM audit_logs WHERE resource_id = $1\n" in told


def test_since_a_snapshot_scans_count_from_it_and_unused_means_not_scanned_since(
    platform: CliRun, platform_db: Database
) -> None:
    platform("db", "upgrade")  # adopted: snapshots live in linea's schema
    assert platform("db", "indexes", "--since", "1h", exit_code=3).stderr.startswith("error: no statistics snapshot yet")
    # Scanned before the snapshot only: in use over its life, unused in the window.
    _use_index(platform_db, "SELECT id FROM events WHERE start_date > '2000-01-01'", "events_start_date_idx")
    platform("db", "snapshot")
    with psycopg.connect(libpq_conninfo(platform_db.url), autocommit=True) as connection:
        connection.execute("SET enable_seqscan = off")
        for _ in range(3):
            connection.execute("SELECT id FROM events WHERE status = 'PUBLISHED'").fetchall()
        connection.execute("SELECT pg_stat_force_next_flush()")  # counted once its answer comes

    lifetime = {row["index"]: row for row in platform("db", "indexes", "--json").json["indexes"]}
    window = {row["index"]: row for row in platform("db", "indexes", "--since", "1h", "--json").json["indexes"]}
    assert lifetime["events_start_date_idx"]["scans"] >= 1 and "UNUSED" not in lifetime["events_start_date_idx"]["verdicts"]
    start_date, status = window["events_start_date_idx"], window["events_status_idx"]
    assert (start_date["scans"], start_date["verdicts"], start_date["partial"]) == (0, ["UNUSED"], False)
    assert (status["scans"], status["verdicts"], status["partial"]) == (3, [], False)
    assert status["counted_from"] == start_date["counted_from"] is not None
    assert "counted_from" not in lifetime["events_status_idx"]
