"""`linea db queries`, `db snapshot` and `db snapshots`: the statements that cost most, on the
platform's database (Prisma-made, adopted), from a server that loads pg_stat_statements.

That server is the suite's own when it preloads the library (CI's PostgreSQL 15, behind
PgBouncer); otherwise a throwaway PostgreSQL 15 from Debian's binaries with the library
preloaded, started here; without those binaries the tests that need the library skip (the
embedded server's wheel ships no contrib modules). The tests that need no library run on the
suite's server, whatever it is.
"""

from __future__ import annotations

import csv
import io
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.factories import make_user
from tests.harness import CliRun, Database, admin_execute, libpq_conninfo, make_cli_run, run_linea_in_terminal
from tests.platform import build_platform_database

PG15 = Path("/usr/lib/postgresql/15")
SLOW = "SELECT pg_sleep(0.02), count(*) FROM events"
SLOW_NORMALIZED = "SELECT pg_sleep($1), count(*) FROM events"
WORKLOAD = "SELECT count(*) FROM venues WHERE city <> %s"
WORKLOAD_NORMALIZED = "SELECT count(*) FROM venues WHERE city <> $1"


def _loads_statements(url: URL) -> bool:
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('pg_stat_statements.max', true) IS NOT NULL").fetchone()
    return bool(row and row[0])


@contextmanager
def _own_server(settings: str = "") -> Iterator[URL]:
    """A throwaway PostgreSQL 15 (Debian's binaries) preloading pg_stat_statements, on a Unix
    socket only; the test skips without those binaries."""
    if not (PG15 / "bin" / "postgres").exists() or not (PG15 / "lib" / "pg_stat_statements.so").exists():
        pytest.skip("no server with pg_stat_statements: the suite's lacks it and PostgreSQL 15's binaries are missing")
    as_root = os.geteuid() == 0
    if as_root:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a `postgres` user to run PostgreSQL 15 as")
    directory = Path(tempfile.mkdtemp(prefix="linea-pgss-"))
    if as_root:
        shutil.chown(directory, "postgres")

    def run(*command: str | Path) -> None:
        words = [str(word) for word in command]
        if as_root:
            words = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{word}'" for word in words)]
        subprocess.run(words, check=True, capture_output=True)

    run(PG15 / "bin" / "initdb", "-D", directory / "data", "-U", "postgres", "--auth=trust", "--encoding=UTF8",
        "--locale=C.UTF-8")
    options = (f"-c listen_addresses= -c unix_socket_directories={directory} -c fsync=off "
               f"-c shared_preload_libraries=pg_stat_statements {settings}")
    run(PG15 / "bin" / "pg_ctl", "-D", directory / "data", "-l", directory / "log", "-w", "-o", options, "start")
    try:
        yield URL.create("postgresql+psycopg", username="postgres", database="postgres", query={"host": str(directory)})
    finally:
        run(PG15 / "bin" / "pg_ctl", "-D", directory / "data", "-m", "immediate", "-w", "stop")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def statements_server(server_url: URL, direct_server_url: URL) -> Iterator[tuple[URL, URL]]:
    """(pooled, direct) URLs of a server that preloads pg_stat_statements, as a superuser: the
    suite's own when it does (CI's PostgreSQL 15), else one of this module's."""
    if _loads_statements(direct_server_url):
        yield server_url, direct_server_url
        return
    with _own_server() as url:
        yield url, url


# A server-wide lock: every test here holds it shared, the one that resets the whole server's
# pg_stat_statements holds it alone (the other xdist worker's tests wait, rather than lose counts).
STATISTICS_LOCK = 21_0004


@contextmanager
def _statistics_lock(direct: URL, *, alone: bool) -> Iterator[None]:
    with psycopg.connect(libpq_conninfo(direct), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)" if alone else "SELECT pg_advisory_lock_shared(%s)", (STATISTICS_LOCK,))
        yield


@contextmanager
def _platform_with_statements(
    statements_server: tuple[URL, URL], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, alone: bool = False
) -> Iterator[tuple[CliRun, URL, URL]]:
    pooled, direct = statements_server
    name = f"linea_pgss_{uuid.uuid4().hex[:12]}"
    admin_execute(direct, f'CREATE DATABASE "{name}"')
    try:
        build_platform_database(direct.set(database=name))
        admin_execute(direct.set(database=name), "CREATE EXTENSION pg_stat_statements")
        linea = make_cli_run(pooled.set(database=name), tmp_path, monkeypatch, migration_url=direct.set(database=name))
        linea("db", "upgrade")
        with _statistics_lock(direct, alone=alone):
            yield linea, pooled.set(database=name), direct.set(database=name)
    finally:
        admin_execute(direct, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def stats_platform(
    statements_server: tuple[URL, URL], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CliRun, URL, URL]]:
    """The platform's database adopted by `linea db upgrade`, with the extension created:
    (linea, the URL commands use, the direct URL)."""
    with _platform_with_statements(statements_server, tmp_path, monkeypatch) as platform:
        yield platform


@pytest.fixture
def stats_platform_alone(
    statements_server: tuple[URL, URL], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CliRun, URL, URL]]:
    """`stats_platform`, while no other test here runs on the server."""
    with _platform_with_statements(statements_server, tmp_path, monkeypatch, alone=True) as platform:
        yield platform


def _run(url: URL, statement: str, times: int, *params: str) -> None:
    """What the platform does: the same statement `times` times (no prepared statements: PgBouncer).
    The server connection's table and index counters are flushed before this returns (without a
    pooler in between, the one that ran them)."""
    with psycopg.connect(libpq_conninfo(url), autocommit=True, prepare_threshold=None) as conn:
        for _ in range(times):
            conn.execute(statement, params or None)
        conn.execute("SELECT pg_stat_force_next_flush()")  # done when its answer comes


def _statement(rows: list[dict], query: str) -> dict:
    found = [row for row in rows if row["query"] == query]
    assert len(found) == 1, f"{query!r} not once in {[row['query'] for row in rows]}"
    return found[0]


def _evictions(direct: URL) -> int:
    with psycopg.connect(libpq_conninfo(direct), autocommit=True) as conn:
        return int(conn.execute("SELECT dealloc FROM pg_stat_statements_info").fetchone()[0])


def test_a_slow_query_run_50_times_tops_db_queries(stats_platform: tuple[CliRun, URL, URL]) -> None:
    linea, url, direct = stats_platform
    evicted = _evictions(direct)
    _run(url, SLOW, 50)
    rows = linea("db", "queries", "--json").json
    if _evictions(direct) != evicted:
        # On a server the whole suite shares (CI's), every test database adds its own entries: an
        # eviction meanwhile may drop this statement's entry, which then restarts with its text
        # as run. CI's server keeps 100,000 (.ci/compat-servers.sh) so that this does not happen.
        pytest.skip("pg_stat_statements evicted entries during the test: its counts cannot be exact")
    top = rows[0]
    assert top["query"] == SLOW_NORMALIZED
    assert top["calls"] == 50
    assert top["rows"] == 50
    assert top["total_ms"] >= 50 * 20  # pg_sleep(0.02) sleeps at least that long
    assert 0 < top["share"] <= 100
    assert set(top) == {"query", "calls", "total_ms", "mean_ms", "rows", "share", "cache_hit", "role", "queryid"}
    by_calls = linea("db", "queries", "--sort", "calls", "--limit", "3", "--json").json
    assert len(by_calls) == 3
    assert by_calls[0]["calls"] >= by_calls[1]["calls"] >= by_calls[2]["calls"]


def test_a_table_escapes_and_shortens_the_text_json_keeps_it_whole(stats_platform: tuple[CliRun, URL, URL]) -> None:
    linea, url, _ = stats_platform
    columns = ", ".join(f"{n} AS c{n}" for n in range(40))
    _run(url, f'SELECT pg_sleep(0.05) AS "\x1b[31mred",\n  {columns}', 3)
    placeholders = ", ".join(f"${n + 2} AS c{n}" for n in range(40))
    whole = f'SELECT pg_sleep($1) AS "\x1b[31mred",\n  {placeholders}'
    assert _statement(linea("db", "queries", "--json").json, whole)["calls"] == 3
    code, screen, _ = run_linea_in_terminal(["db", "queries", "--limit", "1"], env=linea.env, columns=80)
    assert code == 0
    line = next(line for line in screen.splitlines() if "pg_sleep" in line)
    assert line.startswith('SELECT pg_sleep($1) AS "\\x1b[31')  # escaped, on one line, shortened
    assert "…" in line and "$41 AS c39" not in screen
    assert "\x1b[31mred" not in screen
    assert max(len(line) for line in screen.splitlines()) <= 80


def test_csv_gives_negative_queryids_as_the_numbers_they_are(stats_platform: tuple[CliRun, URL, URL]) -> None:
    # queryid is a signed 64-bit hash, given as text (JSON readers lose digits beyond 2**53): the
    # CSV formula rule must not prefix a `'` to the half that is negative.
    linea, url, _ = stats_platform
    for n in range(40):
        _run(url, f"SELECT 1 AS c{n}", 1)
    listed = linea("db", "queries", "--limit", "100000", "--json").json
    negative = {row["queryid"] for row in listed if (row["queryid"] or "").startswith("-")}
    assert negative  # 40 distinct statements: their hashes are not all positive
    rows = list(csv.DictReader(io.StringIO(linea("db", "queries", "--limit", "100000", "-f", "csv").stdout, newline="")))
    assert negative <= {row["queryid"] for row in rows}
    assert all(re.fullmatch(r"-?[0-9]+", row["queryid"]) for row in rows if row["queryid"])


def test_two_snapshots_around_a_workload_give_its_exact_call_count(stats_platform: tuple[CliRun, URL, URL]) -> None:
    linea, url, _ = stats_platform
    _run(url, WORKLOAD, 4, "x")  # known before the snapshot: its difference is what counts
    first = linea("db", "snapshot", "--json").json
    assert first["statements"] > 0 and first["tables"] > 0 and first["indexes"] > 0 and first["removed"] == 0
    _run(url, WORKLOAD, 37, "Paris")
    linea("db", "snapshot")
    rows = linea("db", "queries", "--since", first["taken_at"], "--json").json
    workload = _statement(rows, WORKLOAD_NORMALIZED)
    assert workload["calls"] == 37
    assert workload["partial"] is False
    assert workload["counted_from"] == first["taken_at"]
    history = linea("db", "snapshots", "--json").json
    assert [row["taken_at"] for row in history][0] == first["taken_at"]
    assert history[0]["total_ms"] is None and history[1]["calls"] >= 37 and history[1]["reset"] is False


def test_a_reset_between_snapshots_is_reported_not_shown_as_negative(
    stats_platform: tuple[CliRun, URL, URL],
) -> None:
    linea, url, direct = stats_platform
    _run(url, WORKLOAD, 9, "x")
    first = linea("db", "snapshot", "--json").json
    # This database's statements only: other tests may share the server.
    admin_execute(direct, "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)")
    _run(url, WORKLOAD, 3, "y")
    result = linea("db", "queries", "--since", first["taken_at"], "--json")
    workload = _statement(result.json, WORKLOAD_NORMALIZED)
    assert workload["calls"] == 3
    assert workload["partial"] is True
    assert all(row["calls"] > 0 and row["total_ms"] >= 0 and row["rows"] >= 0 for row in result.json)
    assert "statements marked partial restarted their counters after the snapshot" in result.stderr
    linea("db", "snapshot")
    history = linea("db", "snapshots", "--json").json
    assert all(row["total_ms"] is None or row["total_ms"] >= 0 for row in history)
    assert all(row["calls"] is None or row["calls"] >= 0 for row in history)


def test_from_postgresql_17_a_statement_reset_alone_is_told_even_when_it_ran_more_since(
    stats_platform: tuple[CliRun, URL, URL],
) -> None:
    linea, url, direct = stats_platform
    if Database(direct).scalar("SELECT current_setting('server_version_num')::int") < 170000:
        pytest.skip("pg_stat_statements has no stats_since before PostgreSQL 17")
    _run(url, WORKLOAD, 2, "x")
    first = linea("db", "snapshot", "--json").json
    admin_execute(direct, "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)")
    _run(url, WORKLOAD, 7, "y")
    workload = _statement(linea("db", "queries", "--since", first["taken_at"], "--json").json, WORKLOAD_NORMALIZED)
    assert (workload["calls"], workload["partial"]) == (7, True)


def test_a_whole_reset_between_snapshots_counts_from_the_reset(stats_platform_alone: tuple[CliRun, URL, URL]) -> None:
    linea, url, direct = stats_platform_alone
    _run(url, WORKLOAD, 9, "x")
    first = linea("db", "snapshot", "--json").json
    _run(url, WORKLOAD, 2, "x")
    admin_execute(direct, "SELECT pg_stat_statements_reset()")  # every database's: what linea never does
    reset_at = Database(direct)
    try:
        at = reset_at.scalar("SELECT stats_reset FROM pg_stat_statements_info")
    finally:
        reset_at.close()
    _run(url, WORKLOAD, 4, "y")
    result = linea("db", "queries", "--since", first["taken_at"], "--json")
    workload = _statement(result.json, WORKLOAD_NORMALIZED)
    assert (workload["calls"], workload["partial"]) == (4, False)
    assert workload["counted_from"] == at.isoformat(timespec="milliseconds")
    assert all(row["calls"] > 0 and row["total_ms"] >= 0 for row in result.json)
    assert f"pg_stat_statements was reset at {at.isoformat(timespec='seconds')}, after the snapshot of" in result.stderr
    linea("db", "snapshot")
    history = linea("db", "snapshots", "--json").json
    assert [row["reset"] for row in history] == [None, True]
    assert history[1]["calls"] >= 4 and history[1]["total_ms"] >= 0


def test_snapshots_older_than_keep_go(stats_platform: tuple[CliRun, URL, URL]) -> None:
    linea, _, direct = stats_platform
    database = Database(direct)
    try:
        database.execute("INSERT INTO linea.stat_snapshots (taken_at) VALUES (now() - interval '3 days')")
        database.execute(
            "INSERT INTO linea.stat_indexes (taken_at, indexrelid, schema_name, table_name, index_name) "
            "SELECT taken_at, 1, 'public', 'events', 'events_pkey' FROM linea.stat_snapshots"
        )
        kept = linea("db", "snapshot", "--keep", "2d", "--json").json
        assert kept["removed"] == 1 and kept["kept_for"] == "2d"
        assert database.scalar("SELECT count(*) FROM linea.stat_snapshots") == 1
        assert database.scalar("SELECT count(*) FROM linea.stat_indexes WHERE taken_at <> :t", t=kept["taken_at"]) == 0
    finally:
        database.close()


def test_index_scans_since_a_snapshot(stats_platform: tuple[CliRun, URL, URL]) -> None:
    """The function `db indexes --since` is to call: an index's scans since the snapshot."""
    from datetime import datetime

    import linea_cli
    from linea_cli.services.monitoring import monitoring_connection
    from linea_cli.services.query_stats import index_scans_since

    linea, url, direct = stats_platform
    first = linea("db", "snapshot", "--json").json
    with psycopg.connect(libpq_conninfo(direct), autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # the platform's tables are small here
        for _ in range(6):
            conn.execute("SELECT id FROM events WHERE slug = %s", ("no-such-event",))
        conn.execute("SELECT pg_stat_force_next_flush()")
    database = linea_cli.open_database(direct, name="tests")
    try:
        with monitoring_connection(database) as connection:
            rows, notes = index_scans_since(connection, datetime.fromisoformat(first["taken_at"]))
    finally:
        database.close()
    slug = [row for row in rows if row["index_name"] == "events_slug_idx"]  # the planner's choice
    assert [(row["table_name"], row["scans"], row["partial"]) for row in slug] == [("events", 6, False)]
    assert notes == []


# --- without pg_stat_statements: the suite's own server, whatever it is -------------------------


def test_without_the_library_db_queries_says_the_steps_and_exits_5(adopted: CliRun, server_url: URL) -> None:
    if _loads_statements(server_url):
        pytest.skip("this server loads pg_stat_statements")
    with psycopg.connect(libpq_conninfo(server_url)) as conn:
        row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'").fetchone()
    database = adopted.env["LINEA_DATABASE_URL"].rsplit("/", 1)[1].split("?")[0]
    result = adopted("db", "queries", exit_code=5)
    assert result.stdout == ""
    first = (
        "error: pg_stat_statements is not loaded by the server (shared_preload_libraries)" if row else
        "error: this PostgreSQL server has no pg_stat_statements module: install its contrib modules first "
        "(Debian and Ubuntu: postgresql-NN has them; RPM: postgresqlNN-contrib)"
    )
    assert result.stderr.splitlines() == [
        first,
        "  1. in postgresql.conf: shared_preload_libraries = 'pg_stat_statements'",
        "     (added to the libraries listed there already, if any)",
        "  2. restart PostgreSQL (a reload is not enough)",
        f"  3. in database {database}, as a superuser: CREATE EXTENSION pg_stat_statements;",
    ]


def test_created_but_not_loaded_says_the_steps_left_and_not_to_create_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The extension exists in the database (created while the server loaded the library, which it
    no longer does): the steps are loading the library and a restart, no CREATE EXTENSION."""
    with _own_server("-c shared_preload_libraries=") as server:
        name = "linea_unloaded"
        admin_execute(server, f'CREATE DATABASE "{name}"')
        build_platform_database(server.set(database=name))
        admin_execute(server.set(database=name), "CREATE EXTENSION pg_stat_statements")
        linea = make_cli_run(server.set(database=name), tmp_path, monkeypatch)
        linea("db", "upgrade")
        result = linea("db", "queries", exit_code=5)
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            "error: pg_stat_statements is not loaded by the server (shared_preload_libraries)",
            "  1. in postgresql.conf: shared_preload_libraries = 'pg_stat_statements'",
            "     (added to the libraries listed there already, if any)",
            "  2. restart PostgreSQL (a reload is not enough)",
            f"     (the extension exists in database {name} already: nothing to create)",
        ]


def test_loaded_but_not_created_says_the_one_step_left(stats_platform: tuple[CliRun, URL, URL]) -> None:
    linea, _, direct = stats_platform
    admin_execute(direct, "DROP EXTENSION pg_stat_statements")
    result = linea("db", "queries", exit_code=5)
    assert result.stderr.splitlines() == [
        f"error: pg_stat_statements is loaded but not created in database {direct.database}",
        f"  in database {direct.database}, as a superuser: CREATE EXTENSION pg_stat_statements;",
    ]


def test_a_snapshot_without_the_library_keeps_tables_and_indexes(adopted: CliRun, server_url: URL) -> None:
    if _loads_statements(server_url):
        pytest.skip("this server loads pg_stat_statements")
    result = adopted("db", "snapshot", "--json")
    assert result.json["statements"] is None and result.json["tables"] > 0 and result.json["indexes"] > 0
    assert "kept the tables' and indexes' counters only" in result.stderr


def test_db_queries_since_without_a_snapshot_is_exit_3(stats_platform: tuple[CliRun, URL, URL]) -> None:
    linea, _, _ = stats_platform
    result = linea("db", "queries", "--since", "1h", exit_code=3)
    assert result.stderr.splitlines()[0] == "error: no statistics snapshot yet: nothing to compare with"


def test_bad_since_and_keep_are_exit_1(adopted: CliRun) -> None:
    assert "invalid --since 'yesterday'" in adopted("db", "queries", "--since", "yesterday", exit_code=1).stderr
    assert "invalid --keep 'forever'" in adopted("db", "snapshot", "--keep", "forever", exit_code=1).stderr


def test_snapshots_draw_the_statement_time_at_a_terminal_only(stats_platform: tuple[CliRun, URL, URL]) -> None:
    linea, url, _ = stats_platform
    for times in (5, 20):
        linea("db", "snapshot")
        _run(url, SLOW, times)
    linea("db", "snapshot")
    code, screen, _ = run_linea_in_terminal(["db", "snapshots"], env=linea.env, columns=60)
    assert code == 0
    lines = screen.splitlines()
    chart = lines.index(next(line for line in lines if line.startswith("statement time between snapshots (most: ")))
    assert len(lines[chart + 1 : chart + 6]) == 5  # four rows of columns and the dates under them
    assert max(len(line) for line in lines) <= 60
    assert "statement time between snapshots" not in linea("db", "snapshots").stdout
    history = linea("db", "snapshots", "--json").json
    assert [row["total_ms"] is None for row in history] == [True, False, False]
    assert history[2]["total_ms"] > history[1]["total_ms"] >= 5 * 20


def test_a_role_without_pg_read_all_stats_is_told_what_it_cannot_see(
    stats_platform: tuple[CliRun, URL, URL], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url, direct = stats_platform
    _run(url, SLOW, 2)  # the superuser's statement
    role = f"linea_watcher_{uuid.uuid4().hex[:8]}"
    admin_execute(direct, f"CREATE ROLE {role} LOGIN PASSWORD 'Pw-4-stats'")
    try:
        admin_execute(direct, f'GRANT CONNECT ON DATABASE "{direct.database}" TO {role}')
        watcher = make_cli_run(direct.set(username=role, password="Pw-4-stats"), tmp_path, monkeypatch)
        result = watcher("db", "queries", "--json")
        assert (
            f"role {role} sees only its own statements' text; other roles' show as <insufficient privilege>: "
            f"GRANT pg_read_all_stats TO {role}; shows them all"
        ) in result.stderr
        assert SLOW_NORMALIZED not in [row["query"] for row in result.json]
        assert "<insufficient privilege>" in [row["query"] for row in result.json]
        admin_execute(direct, f"GRANT pg_read_all_stats TO {role}")
        result = watcher("db", "queries", "--limit", "1000", "--json")
        assert result.stderr == ""
        texts = [row["query"] for row in result.json]
        assert SLOW_NORMALIZED in texts
        # A utility statement keeps its constants: linea masks the password it carries.
        assert f"CREATE ROLE {role} LOGIN PASSWORD '***'" in texts
    finally:
        admin_execute(direct, f'DROP OWNED BY {role}; DROP ROLE {role}')


def test_db_queries_since_draws_its_window_and_says_when_no_snapshot_is_that_old(
    stats_platform: tuple[CliRun, URL, URL],
) -> None:
    linea, url, _ = stats_platform
    first = linea("db", "snapshot", "--json").json
    for times in (3, 6):
        _run(url, WORKLOAD, times, "x")
        linea("db", "snapshot")
    code, screen, _ = run_linea_in_terminal(["db", "queries", "--since", first["taken_at"]], env=linea.env, columns=80)
    assert code == 0
    assert "statement time between snapshots (most: " in screen
    assert "statement time between snapshots" not in linea("db", "queries", "--since", first["taken_at"]).stdout
    result = linea("db", "queries", "--since", "2000-01-01", "--json")
    assert result.stderr.splitlines() == [
        "warning: no snapshot from before 2000-01-01T00:00:00+00:00: counting from the oldest, "
        f"taken at {first['taken_at'][:19]}+00:00"
    ]
    assert _statement(result.json, WORKLOAD_NORMALIZED)["calls"] == 9


def test_evicted_statements_are_said_never_negative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a server of its own keeping at most 100 statements (pg_stat_statements.max), so that
    more distinct ones than that evict some between two snapshots."""
    with _own_server("-c pg_stat_statements.max=100") as url, \
            _platform_with_statements((url, url), tmp_path, monkeypatch) as (linea, database_url, _):
        _run(database_url, WORKLOAD, 5, "x")
        first = linea("db", "snapshot", "--json").json
        with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
            for number in range(1, 301):  # 300 distinct statements
                conn.execute(f"SELECT {', '.join(['1'] * number)} FROM venues LIMIT 0")
        _run(database_url, WORKLOAD, 2, "y")
        result = linea("db", "queries", "--since", first["taken_at"], "--limit", "1000", "--json")
        notes = result.stderr.splitlines()
        assert notes and notes[0].startswith("warning: pg_stat_statements evicted statements ")
        assert notes[0].endswith(
            " time(s) since the snapshot (more distinct statements than pg_stat_statements.max): "
            "a statement evicted then run again counts from its return (partial)"
        )
        workload = _statement(result.json, WORKLOAD_NORMALIZED)
        assert workload["calls"] == 2  # the 2 since the snapshot, whether it was evicted or not
        assert all(row["calls"] > 0 and row["total_ms"] >= 0 and row["rows"] >= 0 for row in result.json)


def test_a_snapshot_is_for_the_system_or_an_admin(linea: CliRun, db: Database) -> None:
    owner, admin = make_user(db, role="OWNER"), make_user(db, role="ADMIN")
    result = linea("--as", owner["email"], "db", "snapshot", exit_code=6)
    assert result.stderr.splitlines()[0] == f"error: {owner['email']} (OWNER) may not take a statistics snapshot: ADMIN only"
    assert db.scalar("SELECT count(*) FROM linea.stat_snapshots") == 0
    linea("--as", admin["email"], "db", "snapshot")
    linea("db", "snapshot")  # cron: the system
    assert db.scalar("SELECT count(*) FROM linea.stat_snapshots") == 2


def test_snapshots_give_the_platform_tables_size_over_time_and_no_statement_time_they_did_not_keep(
    adopted: CliRun, platform_db: Database
) -> None:
    """The tables' sizes are kept and charted; where the statements were not kept (no
    pg_stat_statements in this database) their time is unknown (null), never 0."""
    sizes, kept_statements = [], []
    # Autovacuum would add a free-space map between a size read here and the snapshot's own read.
    for (table,) in platform_db.all("SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'public'"):
        platform_db.execute(f'ALTER TABLE public."{table}" SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)')
    for batch in range(2):
        platform_db.execute(
            "INSERT INTO audit_logs (id, action, resource, resource_id) "
            "SELECT 'grow' || :batch || '-' || n, 'CREATE', 'Event', n::text FROM generate_series(1, 3000) AS n",
            batch=batch,
        )
        sizes.append(int(platform_db.scalar(
            "SELECT sum(pg_total_relation_size(relid)) FROM pg_stat_user_tables WHERE schemaname = 'public'"
        )))
        kept_statements.append(adopted("db", "snapshot", "--json").json["statements"] is not None)
    history = adopted("db", "snapshots", "--json").json
    assert [row["tables_bytes"] for row in history] == sizes and sizes[1] > sizes[0]
    if not any(kept_statements):
        assert [(row["total_ms"], row["calls"], row["statements"]) for row in history] == [(None, None, None)] * 2
    code, screen, _ = run_linea_in_terminal(["db", "snapshots"], env=adopted.env, columns=70)
    assert code == 0 and max(len(line) for line in screen.splitlines()) <= 70
    assert any(line.startswith("size of the platform's tables (most: ") for line in screen.splitlines())
    assert "size of the platform's tables" not in adopted("db", "snapshots").stdout  # piped: no chart


def test_db_queries_masks_a_password_in_every_form_of_literal(stats_platform: tuple[CliRun, URL, URL]) -> None:
    """A utility statement keeps its text as run in pg_stat_statements: the password after
    PASSWORD is masked whatever the literal's form, in JSON, CSV and the table alike."""
    linea, url, direct = stats_platform
    tag = uuid.uuid4().hex[:8]
    forms = [  # (what ran, what db queries shows)
        (f"CREATE ROLE r{tag}a LOGIN PASSWORD $$dollarSecret2$$", f"CREATE ROLE r{tag}a LOGIN PASSWORD '***'"),
        (f"ALTER ROLE r{tag}a PASSWORD $q$tagSecret5$q$", f"ALTER ROLE r{tag}a PASSWORD '***'"),
        (f"ALTER ROLE r{tag}a PASSWORD'nospaceSecret3'", f"ALTER ROLE r{tag}a PASSWORD'***'"),
        (f"ALTER ROLE r{tag}a PASSWORD /*c*/ 'commentSecret6'", f"ALTER ROLE r{tag}a PASSWORD /*c*/ '***'"),
        (f"CREATE ROLE r{tag}b LOGIN PASSWORD U&'unicodeSecret7'", f"CREATE ROLE r{tag}b LOGIN PASSWORD '***'"),
        (f"ALTER ROLE r{tag}b PASSWORD 'plainSecret1'", f"ALTER ROLE r{tag}b PASSWORD '***'"),
        (f"ALTER ROLE r{tag}b PASSWORD E'escapeSecret4'", f"ALTER ROLE r{tag}b PASSWORD '***'"),
    ]
    try:
        for statement, _ in forms:
            _run(direct, statement, 1)
        result = linea("db", "queries", "--limit", "1000", "--json")
        texts = [row["query"] for row in result.json]
        for _, masked in forms:
            assert masked in texts
        assert "Secret" not in result.stdout
        csv = linea("db", "queries", "--limit", "1000", "-f", "csv").stdout
        assert f"ALTER ROLE r{tag}a PASSWORD $q$" not in csv and "Secret" not in csv
        assert "Secret" not in linea("db", "queries", "--limit", "1000").stdout
    finally:
        admin_execute(direct, f"DROP ROLE IF EXISTS r{tag}a; DROP ROLE IF EXISTS r{tag}b")
