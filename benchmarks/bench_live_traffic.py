"""linea's heavy jobs beside the platform's live traffic (issue 18), side by side with the same
jobs on a quiet database.

A private PostgreSQL 15 (Debian's binaries, as production runs; `--server embedded` for the
embedded PostgreSQL 18), one database migrated and seeded by linea, then each job run twice as a
real `linea` process: once on the quiet database, once beside `platform_load.PlatformLoad` (three
writers, each about 45 transactions a second: a waitlist sign-up that also updates its event's
`updated_at`, sessions and audit rows for one person, counts) aimed at the same event and person
the job works on. For each job: both wall times, their ratio, and what the platform saw while the
job ran beside it (transactions, p99 and worst latency, failures).

Jobs (`--jobs`, comma-separated keys; all by default): `import` (`waitlist import` of N rows,
default 100,000, into one event), `promote` (`waitlist promote --count 500` of that event),
`purge` (`sessions purge` of 1,000,000 expired sessions), `anonymize` (`users anonymize` of the
person), `export` (`waitlist export -o FILE` of the event, topped up to `--entries` live entries,
default 500,000), `retention` (`waitlist retention --ended-before 180d` of `--past-entries`
account-less entries, default 100,000, in 20 events that ended 400 days ago), `verify`
(`users verify-erased` of the person, anonymized first when `anonymize` did not run), `seed`
(`db seed --append` of 10,000 users, 100 events, `--seed-entries` waitlist entries, default
150,000, and 20,000 sessions), `backup` (`db backup -o FILE`). Each job runs quiet, then at once beside a
load started for it (so both runs see the same database), with the data it works on made anew
before each run. While a job runs beside the load, the platform's transactions older than
200 ms are sampled from pg_stat_activity (wait event, and who blocks them) and summed up on
stderr: a lock or multixact wait shows there, CPU starvation shows as `cpu`.

`anonymize` and `verify` find the person's 5,000 audit rows in an audit log grown to
`--audit-rows` rows (default 1,000,000, as a platform's larger database holds). Beside the load,
the platform goes on writing sessions and audit rows for the person after the erasure committed:
the proof that `anonymize` runs then finds them, and its exit 7 is expected there.

Usage: .venv/bin/python benchmarks/bench_live_traffic.py [--jobs KEYS] [--rows N] [--entries N]
       [--past-entries N] [--seed-entries N] [--audit-rows N] [--server pg15|embedded] [--port P] [--timeout S] [--readme]
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchlib import POSTGRES_15, ROOT, postgres15_server, progress, throwaway_database, write_readme_section
from platform_load import LoadReport, PlatformLoad, Window

SECTION = "## Heavy jobs beside live traffic"
TARGET_RATIO = 2.0


@dataclass
class Outcome:
    seconds: float
    finished: bool
    detail: str = ""
    busy: float = 0.0  # the machine's cores in use during the job, on average (all processes)
    client_cpu: float = 0.0  # CPU seconds of the linea process itself (user + system)
    server_cpu: float = 0.0  # CPU seconds of linea's server backends and their parallel workers (sampled)


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


class ServerCpu:
    """CPU seconds of the job's server processes: every 20 ms, linea's backends (application_name
    `linea/...`, and pg_dump's) and their parallel workers, each process's last seen user + system
    time from /proc (the server runs on this machine). What a process spent after the last sample
    is missed, so this is a lower bound; the same for the quiet run and the loaded one."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, url: str) -> None:
        import threading

        self.url, self.seen = url, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ServerCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def seconds(self) -> float:
        return sum(self.seen.values()) / self.TICK

    def _watch(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as watcher:
            while True:
                pids = [pid for (pid,) in watcher.execute(
                    "SELECT a.pid FROM pg_stat_activity a LEFT JOIN pg_stat_activity l ON l.pid = a.leader_pid "
                    "WHERE coalesce(l.application_name, a.application_name) LIKE 'linea/%' "
                    "OR coalesce(l.application_name, a.application_name) = 'pg_dump'"
                )]
                for pid in pids:
                    try:
                        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    self.seen[pid] = max(self.seen.get(pid, 0), int(fields[11]) + int(fields[12]))
                if self._stop.wait(0.02):
                    return


class CpuWindow:
    """How many of the machine's cores were busy, on average, between enter and exit."""

    def __enter__(self) -> CpuWindow:
        self._start = _cpu_ticks()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = (end - start for end, start in zip(_cpu_ticks(), self._start, strict=True))
        self.cores = (busy / total * (os.cpu_count() or 1)) if total else 0.0


def run_job(url: str, args: list[str], timeout: float, exit_codes: tuple[int, ...] = (0,)) -> Outcome:
    env = {**os.environ, "LINEA_DATABASE_URL": url, "NO_COLOR": "1"}
    env.pop("LINEA_ACTOR", None)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = CpuWindow().__enter__()
    server = ServerCpu(url).__enter__()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "linea_cli", *args], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # linea rolls back and exits 143
        out, err = process.communicate()
        return Outcome(time.perf_counter() - started, False, f"stopped after {timeout:.0f} s")
    elapsed = time.perf_counter() - started
    cpu.__exit__()
    server.__exit__()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    if process.returncode not in exit_codes:
        raise SystemExit(f"linea {' '.join(args)} failed ({process.returncode}): {err}")
    return Outcome(elapsed, True, f"exit {process.returncode}" if process.returncode else "", cpu.cores, client, server.seconds)


def arrange(db, slug: str) -> tuple[str, str]:  # noqa: ANN001
    """An empty event and a person with a history (sessions, audit rows, waitlist entries)."""
    event, person = f"cev{slug}", f"cpe{slug}"
    db.execute(
        "INSERT INTO events (id, title, slug, status, start_date, owner_id, updated_at) "
        "VALUES (%s, %s, %s, 'PUBLISHED', now() + interval '30 days', 'cbenchowner', now())",
        (event, f"Live {slug}", f"live-{slug}"),
    )
    db.execute("INSERT INTO users (id, email, name, role, updated_at) VALUES (%s, %s, %s, 'VISITOR', now())",
               (person, f"person.{slug}@bench.example", f"Person {slug}"))
    db.execute(
        "INSERT INTO sessions (id, user_id, token, expires_at, created_at, updated_at) "
        "SELECT 'cps' || %s || g, %s, md5(%s || g), now() + interval '30 days', now(), now() FROM generate_series(1, 200) g",
        (slug, person, slug),
    )
    db.execute(
        "INSERT INTO audit_logs (id, action, resource, resource_id, user_id, ip_address, user_agent, metadata, created_at) "
        "SELECT 'cpa' || %s || g, 'LOGIN', 'User', %s, %s, '10.0.0.' || (g %% 3), 'Browser/' || (g %% 3), "
        "jsonb_build_object('email', %s::text), now() - g * interval '1 minute' FROM generate_series(1, 5000) g",
        (slug, person, person, f"person.{slug}@bench.example"),
    )
    db.execute(
        "INSERT INTO waitlist_entries (id, email, event_id, user_id, status, created_at, updated_at) "
        "SELECT 'cpw' || %s || e.id, %s, e.id, %s, 'PENDING', now(), now() FROM events e WHERE e.id NOT LIKE 'cev%%' LIMIT 100",
        (slug, f"person.{slug}@bench.example", person),
    )
    return event, person


def grow_audit_log(db, rows: int) -> None:  # noqa: ANN001
    """Other people's audit rows, each with JSON metadata holding an address, a change and a note."""
    db.execute(
        "INSERT INTO audit_logs (id, action, resource, resource_id, user_id, ip_address, user_agent, metadata, created_at) "
        "SELECT 'cbg' || g, 'UPDATE', 'Event', 'cev' || (g %% 1000), NULL, '10.1.' || (g %% 250) || '.' || (g %% 200), "
        "'Mozilla/5.0 (X11; Linux x86_64) Firefox/' || (g %% 50), "
        "jsonb_build_object('changes', jsonb_build_object('title', jsonb_build_object('before', 'Old title ' || g, "
        "'after', 'New title ' || g)), 'email', 'someone.' || g || '@mail' || (g %% 500) || '.example.com', "
        "'note', repeat('x', 100)), now() - g * interval '1 second' FROM generate_series(1, %s) g",
        (rows,),
    )


def expire_sessions(db, count: int) -> None:  # noqa: ANN001
    db.execute(
        "INSERT INTO sessions (id, user_id, token, expires_at, created_at, updated_at) "
        "SELECT 'cxp' || md5(random()::text || g), u.id, md5(random()::text), now() - interval '2 days', now(), now() "
        "FROM generate_series(1, %s) g JOIN LATERAL (SELECT id FROM users WHERE id LIKE 'c%%' ORDER BY id "
        "OFFSET (g %% 500) LIMIT 1) u ON true",
        (count,),
    )
    # What autovacuum does between two cron runs: the quiet run's million dead rows would
    # otherwise slow the next purge several times over, load or not.
    db.execute("VACUUM ANALYZE sessions")


def fill_event(db, event: str, count: int) -> None:  # noqa: ANN001
    """Top the event's waitlist up to `count` live entries (account-less, PENDING, signed up over a week)."""
    have = db.execute("SELECT count(*) FROM waitlist_entries WHERE event_id = %s AND deleted_at IS NULL", (event,)).fetchone()[0]
    db.execute(
        "INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at) "
        "SELECT 'cfw' || h, 'fill.' || h || '@fill.example', %s, 'PENDING', now() - g * interval '5 seconds', now() "
        "FROM generate_series(1, %s) g CROSS JOIN LATERAL (SELECT md5(random()::text || g) AS h) x",
        (event, max(0, count - have)),
    )
    db.execute("VACUUM ANALYZE waitlist_entries")


def past_events(db, tag: str, entries: int, events: int = 20) -> None:  # noqa: ANN001
    """`events` events that ended 400 days ago with `entries` account-less entries in all: work for
    `waitlist retention --ended-before 180d` (made anew before each run, which erases them)."""
    db.execute(
        "INSERT INTO events (id, title, slug, status, start_date, end_date, owner_id, updated_at) "
        "SELECT 'cre' || %s || lpad(g::text, 4, '0'), 'Past ' || %s || ' ' || g, 'past-' || %s || '-' || g, 'COMPLETED', "
        "now() - interval '400 days', now() - interval '400 days' + interval '3 hours', 'cbenchowner', now() "
        "FROM generate_series(1, %s) g",
        (tag, tag, tag, events),
    )
    db.execute(
        "INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at) "
        "SELECT 'crw' || h, 'old.' || h || '@past.example', 'cre' || %s || lpad((1 + g %% %s)::text, 4, '0'), "
        "(ARRAY['PENDING','CONFIRMED','CANCELLED']::\"WaitlistStatus\"[])[1 + g %% 3], "
        "now() - interval '420 days', now() - interval '410 days' "
        "FROM generate_series(1, %s) g CROSS JOIN LATERAL (SELECT md5(random()::text || g) AS h) x",
        (tag, events, entries),
    )
    db.execute("VACUUM ANALYZE waitlist_entries")


def same_history(db, person: str) -> None:  # noqa: ANN001
    """The person's history as `arrange` made it: without the sessions the platform's load wrote
    for them during the jobs before (only the loaded runs' person gets those), whose tokens are
    more for the erasure and its proof to search for: the quiet and loaded runs erase the same."""
    db.execute("DELETE FROM sessions WHERE user_id = %s AND id LIKE 'cpls%%'", (person,))


def erase_first(url: str, db, person: str, address: str, timeout: float) -> None:  # noqa: ANN001
    """`users anonymize` of the person, unless the `anonymize` job already did it."""
    if db.execute("SELECT email FROM users WHERE id = %s", (person,)).fetchone()[0] == address:
        run_job(url, ["users", "anonymize", address, "--yes", "--json"], timeout, exit_codes=(0, 7))


class Waits:
    """What the platform's slow transactions waited on while a job ran: every 20 ms, each platform
    backend (no application_name; linea names its own) whose transaction is older than 200 ms,
    counted by wait event and by what blocks it (`pg_blocking_pids`, named by application)."""

    def __init__(self, url: str) -> None:
        import threading

        self.url, self.seen = url, collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Waits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as watcher:
            while not self._stop.wait(0.02):
                for wait, blockers in watcher.execute(
                    "SELECT coalesce(a.wait_event_type || ':' || a.wait_event, 'cpu'), "
                    "(SELECT string_agg(DISTINCT coalesce(nullif(b.application_name, ''), 'platform'), ',') "
                    " FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(a.pid))) "
                    "FROM pg_stat_activity a WHERE a.backend_type = 'client backend' AND a.application_name = '' "
                    "AND a.pid <> pg_backend_pid() AND a.state = 'active' AND now() - a.xact_start > interval '200 ms'"
                ):
                    self.seen[f"{wait}" + (f" behind {blockers}" if blockers else "")] += 1

    def summary(self) -> str:
        return ", ".join(f"{what} x{count}" for what, count in self.seen.most_common(4)) or "none"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


JOB_KEYS = ("import", "promote", "purge", "anonymize", "retention", "verify", "seed", "backup", "export")


@dataclass
class Job:
    key: str
    name: str
    args: list[str]
    before: Callable[[], None] | None = None
    exit_codes: tuple[int, ...] = (0,)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the import")
    parser.add_argument("--entries", type=int, default=500_000, help="live entries of the exported event")
    parser.add_argument("--seed-entries", type=int, default=150_000, help="waitlist entries of the appending seed")
    parser.add_argument("--past-entries", type=int, default=100_000, help="entries of ended events for the retention")
    # PostgreSQL 15 as production runs, where Debian's binaries are installed; else the embedded server.
    parser.add_argument("--server", choices=("pg15", "embedded"), default="pg15" if (POSTGRES_15 / "postgres").exists() else "embedded")
    parser.add_argument("--port", type=int, default=0, help="the private PostgreSQL 15's port (default: a free one)")
    parser.add_argument("--audit-rows", type=int, default=1_000_000, help="other people's audit rows")
    parser.add_argument("--timeout", type=float, default=300.0, help="stop a job after this many seconds")
    parser.add_argument("--jobs", default=",".join(JOB_KEYS), help=f"which jobs, comma-separated: {','.join(JOB_KEYS)}")
    parser.add_argument("--readme", action="store_true")
    options = parser.parse_args()
    chosen = options.jobs.split(",")
    if unknown := sorted(set(chosen) - set(JOB_KEYS)):
        parser.error(f"unknown jobs: {', '.join(unknown)} (choose from {', '.join(JOB_KEYS)})")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the private server on the way out

    import psycopg

    workdir = Path(tempfile.mkdtemp(prefix="linea-bench-live-"))
    source = workdir / "waitlist.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        handle.write("email,status\r\n")
        for n in range(options.rows if "import" in chosen else 0):
            handle.write(f"guest.{n:07d}@mail{n % 500}.example.com,PENDING\r\n")

    results: list[tuple[str, Outcome, Outcome, LoadReport, float]] = []
    loads: list[LoadReport] = []
    load_averages: list[float] = [os.getloadavg()[0]]
    with ExitStack() as stack:
        if options.server == "pg15":
            server = stack.enter_context(postgres15_server(options.port or free_port()))
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute("CREATE DATABASE live")
                version = admin.execute("SHOW server_version").fetchone()[0]
            url = server.rsplit("/", 1)[0] + "/live"
        else:
            url = stack.enter_context(throwaway_database())
            with psycopg.connect(url) as admin:
                version = admin.execute("SHOW server_version").fetchone()[0]
        progress(f"PostgreSQL {version}: migrating and seeding")
        run_job(url, ["db", "upgrade"], options.timeout)
        run_job(url, ["db", "seed", "--users", "2000", "--venues", "20", "--events", "200",
                      "--waitlist", "50000", "--sessions", "5000"], options.timeout)
        db = psycopg.connect(url, autocommit=True)
        db.execute("INSERT INTO users (id, email, name, role, updated_at) "
                   "VALUES ('cbenchowner', 'owner@bench.example', 'Owner', 'OWNER', now()), "
                   "('cbenchadmin', 'admin@bench.example', 'Admin', 'ADMIN', now())")
        quiet_event, quiet_person = arrange(db, "quiet")
        load_event, load_person = arrange(db, "load")
        if {"anonymize", "verify"} & set(chosen):
            grow_audit_log(db, options.audit_rows)
        db.execute("VACUUM ANALYZE")

        def jobs(event: str, person: str) -> list[Job]:
            slug = event.removeprefix("cev")
            address = f"person.{slug}@bench.example"
            return [job for job in [
                Job("import", f"`waitlist import` of {options.rows:,} rows into the event", ["waitlist", "import", f"live-{slug}", str(source), "--json"]),
                Job("promote", "`waitlist promote --count 500` of that event", ["waitlist", "promote", f"live-{slug}", "--count", "500", "--json"],
                    lambda: fill_event(db, event, 1_000)),
                Job("purge", "`sessions purge` (1,000,000 expired)", ["sessions", "purge", "--json"], lambda: expire_sessions(db, 1_000_000)),
                Job("anonymize", f"`users anonymize` of the person (5,000 audit rows of theirs among {options.audit_rows:,})", ["users", "anonymize", address, "--yes", "--json"],
                    lambda: same_history(db, person), exit_codes=(0, 7)),
                Job("retention", f"`waitlist retention --ended-before 180d` ({options.past_entries:,} entries, 20 ended events)",
                    ["--as", "admin@bench.example", "waitlist", "retention", "--ended-before", "180d", "--json"],
                    lambda: past_events(db, slug, options.past_entries)),
                Job("verify", "`users verify-erased` of the person, erased", ["users", "verify-erased", address],
                    lambda: erase_first(url, db, person, address, options.timeout), exit_codes=(0, 7, 8)),
                Job("seed", f"`db seed --append` (10,000 users, 100 events, {options.seed_entries:,} entries, 20,000 sessions)",
                    ["db", "seed", "--append", "--users", "10000", "--venues", "10", "--events", "100",
                     "--waitlist", str(options.seed_entries), "--sessions", "20000", "--json"]),
                Job("backup", "`db backup -o FILE`", ["db", "backup", "-o", str(workdir / f"backup-{slug}.dump"), "--json"]),
                # Last: its waitlist makes the platform's own counts of the event heavy for every job after it.
                Job("export", f"`waitlist export -o FILE` of the event ({options.entries:,} entries)",
                    ["waitlist", "export", f"live-{slug}", "-o", str(workdir / f"export-{slug}.csv")],
                    lambda: fill_event(db, event, options.entries)),
            ] if job.key in chosen]

        # Each job quiet, then beside a load started for it: both runs see the same database (the
        # jobs before it grew it alike), the quiet one on its own event and person.
        for quiet_job, load_job in zip(jobs(quiet_event, quiet_person), jobs(load_event, load_person), strict=True):
            if quiet_job.before:
                quiet_job.before()
            db.execute("CHECKPOINT")
            alone = run_job(url, quiet_job.args, options.timeout, quiet_job.exit_codes)
            progress(f"quiet: {quiet_job.name}: {alone.seconds:.1f} s {alone.detail}; "
                     f"cores busy {alone.busy:.1f}, linea's CPU {alone.client_cpu:.1f} s + server {alone.server_cpu:.1f} s")
            if load_job.before:
                load_job.before()
            db.execute("CHECKPOINT")
            with PlatformLoad(url, event_id=load_event, user_id=load_person, max_seconds=options.timeout + 600) as load:
                with CpuWindow() as load_alone:
                    time.sleep(2)
                with Waits(url) as waits, Window(load) as window:
                    outcome = run_job(url, load_job.args, options.timeout, load_job.exit_codes)
            loads.append(load.report())
            load_averages.append(os.getloadavg()[0])
            progress(f"beside the load: {load_job.name}: {outcome.seconds:.1f} s {outcome.detail}; "
                     f"platform {window.report.row()}; slow platform transactions waited on: {waits.summary()}; "
                     f"load average {load_averages[-1]:.1f}; cores busy {load_alone.cores:.1f} with the load alone, "
                     f"{outcome.busy:.1f} with the job; linea's CPU {outcome.client_cpu:.1f} s + server {outcome.server_cpu:.1f} s")
            results.append((load_job.name, alone, outcome, window.report, load_alone.cores))
        db.close()

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for name, alone, beside, report, load_cores in results:
        ratio = beside.seconds / alone.seconds
        shown = f"{beside.seconds:.1f} s" if beside.finished else f"**not finished** ({beside.detail})"
        if beside.finished and beside.detail.startswith("exit "):
            shown += f" ({beside.detail})"
        ratio_text = f"{ratio:.1f}x" if beside.finished else f"> {ratio:.0f}x"
        rows.append(
            f"| {name} | {alone.seconds:.1f} s | {shown} | {ratio_text} | {report.transactions:,} | "
            f"{report.p99 * 1000:.0f} ms | {report.worst * 1000:.0f} ms | {report.failures} | "
            f"{alone.busy:.1f} / {load_cores:.1f} / {beside.busy:.1f} | "
            f"{alone.client_cpu + alone.server_cpu:.1f} s / {beside.client_cpu + beside.server_cpu:.1f} s |"
        )
    table = "\n".join([
        "| job (same event, same person as the platform's writers) | quiet | beside the platform | ratio | platform transactions during the job | platform p99 | platform max | platform failures | cores busy: job quiet / load alone / both | linea's CPU (client + server): quiet / beside |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    total = (f"{sum(r.transactions for r in loads):,} tx, {sum(r.failures for r in loads)} failed, "
             f"max {max((r.worst for r in loads), default=0) * 1000:.0f} ms")
    notes = (
        f"Measured {stamp} on PostgreSQL {version} ({'a private Debian PostgreSQL 15, fsync off' if options.server == 'pg15' else 'embedded'}), "
        f"{os.cpu_count()} cores shared with other work (1-minute load average {min(load_averages):.1f} to "
        f"{max(load_averages):.1f} over the run). The platform load over all the loaded runs: {total}."
    )
    print(notes)
    print()
    print(table)
    if options.readme:
        write_readme_section(f"{SECTION}\n\n{README_TEXT}\n\n{notes}\n\n{table}\n")
    return 0


README_TEXT = """\
`benchmarks/bench_live_traffic.py` (about 10 minutes for all its jobs): each heavy job as a real
`linea` process on a quiet database, then at once beside the platform's live traffic (`benchmarks/platform_load.py`: three
writers, each about 45 transactions a second; most are a waitlist sign-up that inserts an entry
and sets the event's `updated_at` in one transaction, one in five inserts a session and an audit
row for one person, one in ten counts the event's entries), aimed at the job's own event and
person. Target: each job within 2x its quiet time, no platform transaction waiting 1 s, none
failing."""


if __name__ == "__main__":
    sys.exit(main())
