"""`linea db queries` and `db snapshot` with 5,000 distinct statements, beside a plain read command.

A private PostgreSQL 15 (Debian's binaries, as production) preloads pg_stat_statements
(`pg_stat_statements.max = 10000`, so that none of them is evicted); a database migrated by linea
gets the extension and then 5,000 distinct statements, each run once (`SELECT 1, 1, ... FROM
<table> LIMIT 0`: 1 to 1,000 columns over five of the platform's tables: their texts are 10 to
3,000 characters, as an ORM's are). Then, each as a real process, the median of 5 runs:

1. `linea db status --json` (a read command that counts every table's rows, for comparison);
2. `linea db queries --json` (all 5,000 read, the top 20 written);
3. `linea db snapshot --json` (5,000 statements, the tables' and indexes' counters copied);
4. `linea db queries --since <the first snapshot> --json` (5,000 differences);
5. `linea db snapshots --json` (the history of all the snapshots taken).

and the size of one snapshot in linea's tables. Writes the results into benchmarks/README.md under
`## Statistics snapshots`. About a minute.
"""

from __future__ import annotations

import json
import statistics
import sys
from datetime import UTC, datetime

from benchlib import engine_for, markdown_table, postgres15_server, progress, run_linea, write_readme_section

STATEMENTS = 5_000
TABLES = ("events", "venues", "users", "sessions", "waitlist_entries")
RUNS = 5
SECTION = "## Statistics snapshots"


def main() -> int:
    import sqlalchemy as sa

    import linea_cli

    settings = "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=10000"
    with postgres15_server(54397, settings=settings) as server:
        url = server.rsplit("/", 1)[0] + "/bench"
        with engine_for(server).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("CREATE DATABASE bench"))
        linea_cli.open_database(url, migrate=True, name="bench").close()
        engine = engine_for(url)
        progress(f"running {STATEMENTS:,} distinct statements")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("CREATE EXTENSION pg_stat_statements"))
            for number in range(STATEMENTS):
                columns = ", ".join(["1"] * (number // len(TABLES) + 1))
                connection.exec_driver_sql(f"SELECT {columns} FROM {TABLES[number % len(TABLES)]} LIMIT 0")
            distinct = connection.execute(sa.text(
                "SELECT count(*) FROM pg_stat_statements WHERE dbid = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )).scalar_one()
        first = json.loads(run_linea(url, "db", "snapshot", "--json").stdout)
        commands = {
            "db status": ["db", "status", "--json"],
            "db queries": ["db", "queries", "--json"],
            "db snapshot": ["db", "snapshot", "--json"],
            "db queries --since": ["db", "queries", "--since", first["taken_at"], "--json"],
            "db snapshots": ["db", "snapshots", "--json"],
        }
        rows = []
        for name, args in commands.items():
            progress(name)
            timings = [run_linea(url, *args) for _ in range(RUNS)]
            seconds = statistics.median(timing.seconds for timing in timings)
            rows.append([f"`linea {' '.join(args[:2])}{' --since' if '--since' in args else ''}`",
                         f"{seconds:.2f} s", f"{max(timing.peak_rss_mb for timing in timings):.0f} MB"])
        with engine.connect() as connection:
            snapshots = connection.execute(sa.text("SELECT count(*) FROM linea.stat_snapshots")).scalar_one()
            size = connection.execute(sa.text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'linea' AND c.relname LIKE 'stat\\_%' AND c.relkind = 'r'"
            )).scalar_one()
            kept = connection.execute(sa.text(
                "SELECT count(*) FROM linea.stat_statements WHERE taken_at = (SELECT min(taken_at) FROM linea.stat_snapshots)"
            )).scalar_one()
    table = markdown_table(["command", f"median of {RUNS}", "peak RSS"], rows)
    section = f"""{SECTION}

`benchmarks/bench_snapshot.py`, {datetime.now(UTC):%Y-%m-%d}: PostgreSQL 15 with pg_stat_statements
preloaded, {distinct:,} distinct statements in the database ({STATEMENTS:,} run by the benchmark: one to 1,000
columns over five tables), each command a real process, median of {RUNS} runs, 2 cores shared with
other work.

{table}

One snapshot kept {kept:,} statements (their counters, not their texts); {snapshots} snapshots take
{size / snapshots / 1024:,.0f} kB each in `linea.stat_*`: a snapshot an hour kept 30 days (`--keep 30d`) is
about {size / snapshots * 24 * 30 / 1024 / 1024:,.0f} MB at this many statements. `db queries` reads
every statement's counters but only its top 20 texts; `db queries --since` reads every text (it
ranks differences), `db snapshot` none.
"""
    write_readme_section(section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
