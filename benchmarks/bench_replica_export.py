"""`linea waitlist export` of 1,000,000 entries from a streaming replica against the same export
from the primary, while the platform inserts on the primary (issue 22).

A throwaway embedded server gets one event with 1,000,000 waitlist entries (one INSERT ... SELECT
over generate_series), then a streaming replica of it (`linea_cli.temporary_replica`). A writer
on the primary inserts sign-ups for another event at about 200 a second, each its own small
transaction, timing each one. Meanwhile `linea waitlist export EVENT -o FILE` runs as a real
process, (a) with LINEA_READ_DATABASE_URL naming the replica and (b) without it (the primary),
ROUNDS times each, alternately. Per run: the export's wall time and rows, the writer's p50 and
p99 latency during the export, and which server served the export's read, told by the servers'
own statistics (rows read from waitlist_entries in each server's pg_stat_user_tables), not
assumed: the export may still read on the primary where LINEA_READ_DATABASE_URL is set.

The writer's latency while nothing else runs is measured first, for scale. Writes the results into
benchmarks/README.md under `## Export from a replica`. About a minute and a half on 2 cores;
BENCH_REPLICA_EXPORT_ROWS (default 1000000) sets the size of the exported waitlist.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import markdown_table, progress, run_linea, write_readme_section

ENTRIES = int(os.environ.get("BENCH_REPLICA_EXPORT_ROWS", "1000000"))
WRITES_PER_SECOND = 200
IDLE_SECONDS = 5.0
ROUNDS = 2
SECTION = "## Export from a replica"
SLUG = "replica-bench"
# Rows read from waitlist_entries (sequential and through indexes), as each server counts them.
ROWS_READ = (
    "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables "
    "WHERE relname = 'waitlist_entries'"
)


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def seed(url: str) -> tuple[str, str]:
    """The event to export (ENTRIES entries) and the event the writer signs people up for."""
    import psycopg

    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("""
            INSERT INTO users (id, email, name, role, created_at, updated_at)
            VALUES ('cbenchowner', 'owner@bench.example', 'Bench Owner', 'OWNER', now(), now())""")
        for event_id, slug in (("cbenchexport", SLUG), ("cbenchlive", "live-signups")):
            conn.execute(
                """INSERT INTO events (id, title, slug, status, start_date, owner_id, created_at, updated_at)
                   VALUES (%s, %s, %s, 'PUBLISHED', now() + interval '30 days', 'cbenchowner', now(), now())""",
                (event_id, slug, slug),
            )
        conn.execute(
            """INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at)
               SELECT 'cbenchwl' || lpad(to_hex(n), 12, '0'), 'guest' || n || '@bench.example', 'cbenchexport',
                      (ARRAY['PENDING', 'CONFIRMED', 'CANCELLED'])[1 + n %% 3]::"WaitlistStatus",
                      now() - make_interval(secs => n), now()
               FROM generate_series(1, %s) AS n""",
            (ENTRIES,),
        )
        conn.execute("VACUUM ANALYZE waitlist_entries")
    return "cbenchexport", "cbenchlive"


def wait_for_replay(primary: str, replica: str) -> None:
    import psycopg

    with psycopg.connect(libpq(primary), autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with psycopg.connect(libpq(replica), autocommit=True) as conn:
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s", (lsn,)).fetchone()[0]:
            time.sleep(0.1)


class Writer:
    """Sign-ups on the primary at WRITES_PER_SECOND, each INSERT its own transaction, timed:
    (start time, seconds) per insert. Paced by a schedule, so a slow insert is not followed by a
    pause: the platform's requests do not wait for each other."""

    def __init__(self, url: str, event_id: str) -> None:
        self.url, self.event_id = url, event_id
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(libpq(self.url), autocommit=True, application_name="bench-writer") as conn:
            began = time.perf_counter()
            n = 0
            while not self.stop.is_set():
                n += 1
                due = began + n / WRITES_PER_SECOND
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                started = time.perf_counter()
                conn.execute(
                    """INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at)
                       VALUES (%s, %s, %s, 'PENDING', now(), now())""",
                    (f"cbenchlive{n:012d}", f"live{n}@bench.example", self.event_id),
                )
                self.samples.append((started, time.perf_counter() - started))

    def latencies(self, start: float, end: float) -> list[float]:
        return [seconds for began, seconds in self.samples if start <= began <= end]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def rows_read(url: str) -> int:
    import psycopg

    with psycopg.connect(libpq(url), autocommit=True) as conn:
        return int(conn.execute(ROWS_READ).fetchone()[0])


def served_by(primary: str, replica: str, before: dict[str, int]) -> tuple[str, dict[str, int]]:
    """Which server read the export's rows: the one whose count of rows read from waitlist_entries
    grew by about ENTRIES. Polled: a backend reports its counts as it ends, not synchronously."""
    deadline = time.monotonic() + 15
    while True:
        grown = {"replica": rows_read(replica) - before["replica"], "primary": rows_read(primary) - before["primary"]}
        readers = [name for name, rows in grown.items() if rows >= ENTRIES]
        if readers or time.monotonic() > deadline:
            return (" and ".join(readers) or "unknown (statistics not reported)"), grown
        time.sleep(0.2)


@dataclass
class Run:
    configured: str
    served: str
    seconds: float
    rows: int
    latencies: list[float]


def export_once(primary: str, replica: str, writer: Writer, *, to_replica: bool, state: Path) -> Run:
    env = {"XDG_STATE_HOME": str(state), "LINEA_DATA_DIR": str(state / "data")}
    if to_replica:
        env["LINEA_READ_DATABASE_URL"] = libpq(replica)
    before = {"replica": rows_read(replica), "primary": rows_read(primary)}
    target = state / "export.csv"
    started = time.perf_counter()
    timing = run_linea(primary, "waitlist", "export", SLUG, "-o", str(target), env=env)
    ended = time.perf_counter()
    served, grown = served_by(primary, replica, before)
    said = timing.stderr.strip().splitlines()
    rows = int(said[-1].split()[1]) if said and said[-1].startswith("exported ") else -1
    target.unlink(missing_ok=True)
    configured = "LINEA_READ_DATABASE_URL = the replica" if to_replica else "no replica configured"
    progress(f"  {configured}: {timing.seconds:.1f} s, {rows:,} rows, served by {served} (rows read: {grown}); {said}")
    return Run(configured, served, timing.seconds, rows, writer.latencies(started, ended))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    import linea_cli

    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="linea-bench-replica-") as scratch, linea_cli.temporary_server() as server:
        linea_cli.open_database(server.url, migrate=True, name="bench").close()
        started = time.perf_counter()
        _export_event, live_event = seed(server.url)
        progress(f"{ENTRIES:,} waitlist entries in {time.perf_counter() - started:.0f} s")
        with linea_cli.temporary_replica(server) as replica:
            wait_for_replay(server.url, replica.url)
            with Writer(server.url, live_event) as writer:
                time.sleep(IDLE_SECONDS)  # the writer alone, for scale
                idle = writer.latencies(0, time.perf_counter())
                for _ in range(ROUNDS):
                    for to_replica in (True, False):
                        runs.append(export_once(server.url, replica.url, writer, to_replica=to_replica, state=Path(scratch)))
    rows = [["writer alone (no export)", "", "", "", f"{len(idle)}", ms(percentile(idle, 0.5)), ms(percentile(idle, 0.99))]]
    rows += [
        [run.configured, run.served, f"{run.seconds:.1f} s", f"{run.rows:,}", f"{len(run.latencies)}",
         ms(percentile(run.latencies, 0.5)), ms(percentile(run.latencies, 0.99))]
        for run in runs
    ]
    table = markdown_table(
        ["export", "read served by", "export wall time", "rows exported", "writer inserts during", "writer p50", "writer p99"], rows
    )
    print(f"{SECTION}\n\n{table}")
    write_readme(table, runs)


def write_readme(table: str, runs: list[Run]) -> None:
    replica_runs = [run for run in runs if run.configured.startswith("LINEA_READ")]
    if all(run.served == "replica" for run in replica_runs):
        where = "With LINEA_READ_DATABASE_URL set, the export read on the replica (its statistics counted the rows)."
    else:
        where = (
            "**With LINEA_READ_DATABASE_URL set, the export still read on the primary** "
            f"({', '.join(run.served for run in replica_runs)}): `waitlist export` did not read on replicas yet in "
            "this build, so both rows measure the same thing and the comparison is still to be made."
        )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    section = (
        f"{SECTION}\n\n`benchmarks/bench_replica_export.py` (about a minute and a half): one event with "
        f"{ENTRIES:,} waitlist entries on a throwaway embedded server and a streaming replica of it "
        f"(`linea_cli.temporary_replica`, on the same machine); a writer on the primary inserting about "
        f"{WRITES_PER_SECOND} sign-ups a second for another event, each its own transaction, timed; meanwhile "
        f"`linea waitlist export {SLUG} -o FILE` as a real process, with LINEA_READ_DATABASE_URL naming the "
        f"replica and without it, {ROUNDS} rounds alternately. Which server served each export is read from "
        "the servers' statistics (rows read from `waitlist_entries` in each one's `pg_stat_user_tables`), "
        "not assumed.\n\n"
        f"{table}\n\n"
        f"{where} Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on the development container "
        f"({os.cpu_count()} cores, embedded PostgreSQL; load average {load} at the end, other sessions' "
        "builds and test suites sharing the cores). The replica runs on the same two cores as the primary, "
        "so its reads still compete with the writer for CPU: on separate machines the primary would not see "
        "them at all.\n"
    )
    write_readme_section(section)


if __name__ == "__main__":
    main()
