"""`linea sessions purge` on 1,000,000 sessions: total time, and how long each batch holds its locks.

A throwaway embedded server gets 1,000 users (`linea db seed --users 1000 --sessions 0`) and
1,000,000 sessions inserted in one set-based statement, tokens stored as SHA-256 digests like every
token linea holds (`db seed --sessions 1000000` does the same but takes over a minute on its own),
a third of them expired (up to 20 days ago), the others expiring within 40 days:

1. `linea sessions purge --json` as a real process, default batch size (10,000): wall time, and
   that exactly the expired sessions went and every live one stayed;
2. the same again, with nothing left to purge (what every later cron run costs);
3. 300,000 more expired sessions, purged in-process to time each batch's transaction (row locks
   are held from a batch's SELECT ... FOR UPDATE to its commit);
4. 300,000 more, purged by two `linea sessions purge` processes started together (two cron hosts).

Writes the results into benchmarks/README.md under `## Session purge`. About 1.5 minutes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from benchlib import (
    ROOT,
    engine_for,
    markdown_table,
    progress,
    run_linea,
    throwaway_database,
    write_readme_section,
)

SESSIONS = 1_000_000
MORE = 300_000
USERS = 1_000
SECTION = "## Session purge"


def insert_sessions(url: str, count: int, *, first: int, expired_every: int) -> float:
    """`count` sessions; every `expired_every`-th one expired 1 hour to 20 days ago, the others
    expiring 1 hour to 40 days from now (the gap keeps the counts exact while the clock runs)."""
    import sqlalchemy as sa

    engine = engine_for(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(sa.text("""
            INSERT INTO sessions (id, user_id, token, expires_at, created_at, updated_at)
            SELECT 'cbench' || lpad(to_hex(n), 19, '0'),
                   u.ids[1 + n % array_length(u.ids, 1)],
                   encode(sha256(convert_to('bench:token:' || n, 'UTF8')), 'hex'),
                   CASE WHEN n % :every = 0
                        THEN (now() AT TIME ZONE 'UTC') - interval '1 hour'
                             - make_interval(secs => (hashtext('expiry:' || n) & 2147483647) % (20 * 86400))
                        ELSE (now() AT TIME ZONE 'UTC') + interval '1 hour'
                             + make_interval(secs => (hashtext('expiry:' || n) & 2147483647) % (40 * 86400))
                   END,
                   (now() AT TIME ZONE 'UTC') - interval '30 days', (now() AT TIME ZONE 'UTC') - interval '30 days'
            FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS n,
                 (SELECT array_agg(id) AS ids FROM users) AS u
        """), {"first": first, "last": first + count - 1, "every": expired_every})
        connection.execute(sa.text("ANALYZE sessions"))
    engine.dispose()
    seconds = time.perf_counter() - started
    progress(f"inserted {count:,} sessions in {seconds:.1f} s")
    return seconds


def counts(url: str) -> tuple[int, int]:
    import sqlalchemy as sa

    engine = engine_for(url)
    with engine.connect() as connection:
        expired, live = connection.execute(sa.text(
            "SELECT count(*) FILTER (WHERE expires_at < now() AT TIME ZONE 'UTC'), "
            "count(*) FILTER (WHERE expires_at >= now() AT TIME ZONE 'UTC') FROM sessions"
        )).one()
    engine.dispose()
    return expired, live


def in_process_batches(url: str) -> tuple[int, list[float]]:
    """Purge with linea's service, timing each batch's transaction (its lock-holding time)."""
    import linea_cli
    from linea_cli.services.sessions import purge_expired_sessions

    database = linea_cli.open_database(url, name="bench")
    durations: list[float] = []

    @contextmanager
    def unit_of_work() -> Iterator[tuple]:
        started = time.perf_counter()
        with database.unit_of_work() as session:
            yield session, None
        durations.append(time.perf_counter() - started)

    result = purge_expired_sessions(unit_of_work)
    database.close()
    return result.purged, durations


def two_hosts(url: str) -> tuple[float, list[int]]:
    command = [sys.executable, "-m", "linea_cli", "sessions", "purge", "--json"]
    env = {**os.environ, "LINEA_DATABASE_URL": url}
    started = time.perf_counter()
    processes = [subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    purged = []
    for process in processes:
        stdout, stderr = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"a concurrent purge failed: {stderr}")
        purged.append(json.loads(stdout)["purged"])
    return time.perf_counter() - started, purged


def main() -> None:
    rows = []
    with throwaway_database() as url:
        run_linea(url, "db", "seed", "--users", str(USERS), "--venues", "0", "--events", "0", "--waitlist", "0",
                  "--sessions", "0")
        insert_seconds = insert_sessions(url, SESSIONS, first=1, expired_every=3)
        expired, live = counts(url)
        purge = run_linea(url, "sessions", "purge", "--json")
        result = json.loads(purge.stdout)
        progress(f"purged {result['purged']:,} in {purge.seconds:.1f} s")
        assert result["purged"] == expired, (result, expired)
        assert counts(url) == (0, live), "live sessions must be untouched"
        rows.append([f"`linea sessions purge`: {SESSIONS:,} sessions, {expired:,} expired",
                     f"{result['purged']:,} in {result['batches']} batches", f"{purge.seconds:.1f} s",
                     f"{result['purged'] / purge.seconds:,.0f} rows/s", f"{purge.peak_rss_mb:.0f} MB"])
        again = run_linea(url, "sessions", "purge", "--json")
        rows.append(["the same again, nothing left (a routine cron run)", f"{json.loads(again.stdout)['purged']}",
                     f"{again.seconds:.1f} s", "", ""])

        insert_sessions(url, MORE, first=SESSIONS + 1, expired_every=1)
        expired, live = counts(url)
        started = time.perf_counter()
        purged, durations = in_process_batches(url)
        total = time.perf_counter() - started
        progress(f"purged {purged:,} in-process in {total:.1f} s")
        assert purged == expired and counts(url) == (0, live)
        batch_ms = [d * 1000 for d in durations]
        rows.append([f"in-process, {expired:,} more expired", f"{purged:,} in {len(durations)} transactions",
                     f"{total:.1f} s", f"{purged / total:,.0f} rows/s", ""])
        rows.append(["each batch's transaction (row locks held), median / max", "10,000 rows",
                     f"{statistics.median(batch_ms):.0f} ms / {max(batch_ms):.0f} ms", "", ""])

        insert_sessions(url, MORE, first=SESSIONS + MORE + 1, expired_every=1)
        expired, live = counts(url)
        seconds, purged_each = two_hosts(url)
        progress(f"two processes purged {purged_each} in {seconds:.1f} s")
        assert sum(purged_each) == expired and counts(url) == (0, live)
        rows.append([f"two processes at once, {expired:,} more expired", " + ".join(f"{n:,}" for n in purged_each),
                     f"{seconds:.1f} s", f"{expired / seconds:,.0f} rows/s", ""])

    header = ["run", "purged", "wall time", "throughput", "peak RSS of linea"]
    table = markdown_table(header, rows)
    print(f"{SECTION}\n\n{table}")
    write_readme(table, insert_seconds)


def write_readme(table: str, insert_seconds: float) -> None:
    today = datetime.now(UTC).date().isoformat()
    section = f"""{SECTION}

`benchmarks/bench_sessions_purge.py` (about 1.5 minutes): 1,000 users from `linea db seed`, then
{SESSIONS:,} sessions inserted in one statement ({insert_seconds:.0f} s; tokens stored as SHA-256 digests,
a third expired up to 20 days ago, the rest expiring within 40 days), purged with the
default batch size of 10,000 (one transaction per batch, `FOR UPDATE SKIP LOCKED`); then
{MORE:,} more expired sessions purged in-process to time each batch's transaction, and {MORE:,} more
purged by two processes at once. Every run checks that exactly the expired sessions went and
every live one stayed. Measured {today} on the development container (embedded PostgreSQL):

{table}

- A batch finds its rows through `idx_sessions_expires_at` (`ORDER BY expires_at LIMIT n`) and
  deletes them by `ctid`, so its cost does not grow with the table. A first version that joined
  the locked ids back to `sessions` (`DELETE ... USING`) made PostgreSQL hash-join against a
  sequential scan of the whole table in every batch: 0.35 s per batch at 1,000,000 rows.
- Row locks live only as long as one batch's transaction (the median / max line), so a login or a
  revocation touching an expiring session waits at most that long; nothing locks the table.
- Two processes share the work without waiting for each other (each skips the rows the other has
  claimed) and without counting a row twice: their counts add up to the expired total.
- Most of a routine run's time is Python start-up and the schema check, as for every command.
"""
    write_readme_section(section)


if __name__ == "__main__":
    main()
