"""linea's heavy jobs beside the platform's live traffic (issue 18), side by side with the same
jobs on a quiet database.

A private PostgreSQL 15 (Debian's binaries, as production runs; `--server embedded` for the
embedded PostgreSQL 18), one database migrated and seeded by linea, then each job run twice as a
real `linea` process: once on the quiet database, once beside `platform_load.PlatformLoad` (three
writers, each about 45 transactions a second: a waitlist sign-up that also updates its event's
`updated_at`, sessions and audit rows for one person, counts) aimed at the same event and person
the job works on. For each job: both wall times, their ratio, and what the platform saw while the
job ran beside it (transactions, p99 and worst latency, failures).

Jobs: `waitlist import` of N rows (default 100,000) into one event, `waitlist promote --count
500` of that event, `sessions purge` of 100,000 expired sessions, `users anonymize` of the person
(5,000 audit rows of theirs in an audit log grown to `--audit-rows` rows, default 1,000,000, as
a platform's larger database holds). Beside the load, the platform goes on writing sessions and
audit rows for the person after the erasure committed: the proof that `anonymize` runs then finds
them, and its exit 7 is expected there (counted, not an error).

Usage: .venv/bin/python benchmarks/bench_live_traffic.py [--rows N] [--audit-rows N]
       [--server pg15|embedded] [--port P] [--jobs import,promote,purge,anonymize] [--timeout S] [--readme]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
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


def run_job(url: str, args: list[str], timeout: float, exit_codes: tuple[int, ...] = (0,)) -> Outcome:
    env = {**os.environ, "LINEA_DATABASE_URL": url, "NO_COLOR": "1"}
    env.pop("LINEA_ACTOR", None)
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
    if process.returncode not in exit_codes:
        raise SystemExit(f"linea {' '.join(args)} failed ({process.returncode}): {err}")
    detail = f"exit {process.returncode}" if process.returncode else (out.strip().splitlines()[-1][:80] if out.strip() else "")
    return Outcome(elapsed, True, detail)


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    # PostgreSQL 15 as production runs, where Debian's binaries are installed; else the embedded server.
    parser.add_argument("--server", choices=("pg15", "embedded"), default="pg15" if (POSTGRES_15 / "postgres").exists() else "embedded")
    parser.add_argument("--port", type=int, default=54399, help="the private PostgreSQL 15's port")
    parser.add_argument("--audit-rows", type=int, default=1_000_000, help="other people's audit rows")
    parser.add_argument("--timeout", type=float, default=300.0, help="stop a job after this many seconds")
    parser.add_argument("--jobs", default="import,promote,purge,anonymize", help="which jobs, comma-separated")
    parser.add_argument("--readme", action="store_true")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the private server on the way out

    import psycopg

    workdir = Path(tempfile.mkdtemp(prefix="linea-bench-live-"))
    source = workdir / "waitlist.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        handle.write("email,status\r\n")
        for n in range(options.rows):
            handle.write(f"guest.{n:07d}@mail{n % 500}.example.com,PENDING\r\n")

    results: list[tuple[str, Outcome, Outcome, LoadReport | None]] = []
    with ExitStack() as stack:
        if options.server == "pg15":
            server = stack.enter_context(postgres15_server(options.port))
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
                   "VALUES ('cbenchowner', 'owner@bench.example', 'Owner', 'OWNER', now())")
        quiet_event, quiet_person = arrange(db, "quiet")
        load_event, load_person = arrange(db, "load")
        if "anonymize" in options.jobs.split(","):
            grow_audit_log(db, options.audit_rows)
        db.execute("VACUUM ANALYZE")

        def jobs(event: str, person: str) -> list[tuple[str, list[str], object]]:
            slug = event.removeprefix("cev")
            chosen = options.jobs.split(",")
            return [job for key, job in zip(("import", "promote", "purge", "anonymize"), [
                (f"`waitlist import` of {options.rows:,} rows into the event", ["waitlist", "import", f"live-{slug}", str(source), "--json"], None),
                ("`waitlist promote --count 500` of that event", ["waitlist", "promote", f"live-{slug}", "--count", "500", "--json"], None),
                ("`sessions purge` (100,000 expired)", ["sessions", "purge", "--json"], lambda: expire_sessions(db, 100_000)),
                (f"`users anonymize` of the person (5,000 audit rows of theirs among {options.audit_rows:,})", ["users", "anonymize", f"person.{slug}@bench.example", "--yes", "--json"], None),
            ], strict=True) if key in chosen]

        quiet: dict[str, Outcome] = {}
        for name, args, before in jobs(quiet_event, quiet_person):
            if before:
                before()
            db.execute("CHECKPOINT")
            quiet[name] = run_job(url, args, options.timeout)
            progress(f"quiet: {name}: {quiet[name].seconds:.1f} s")
        with PlatformLoad(url, event_id=load_event, user_id=load_person, max_seconds=3 * options.timeout + 600) as load:
            time.sleep(2)
            for name, args, before in jobs(load_event, load_person):
                if before:
                    before()
                db.execute("CHECKPOINT")
                with Window(load) as window:
                    # The platform writes for the person after the erasure: the proof finds that (exit 7).
                    outcome = run_job(url, args, options.timeout, (0, 7) if args[:2] == ["users", "anonymize"] else (0,))
                progress(f"beside the load: {name}: {outcome.seconds:.1f} s; platform {window.report.row()}")
                results.append((name, quiet[name], outcome, window.report))
        total = load.report()
        load_average = os.getloadavg()
        db.close()

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for name, alone, beside, report in results:
        ratio = beside.seconds / alone.seconds
        shown = f"{beside.seconds:.1f} s" if beside.finished else f"**not finished** ({beside.detail})"
        shown += f" ({beside.detail})" if beside.finished and beside.detail.startswith("exit") else ""
        ratio_text = f"{ratio:.1f}x" if beside.finished else f"> {ratio:.0f}x"
        rows.append(
            f"| {name} | {alone.seconds:.1f} s | {shown} | {ratio_text} | {report.transactions:,} | "
            f"{report.p99 * 1000:.0f} ms | {report.worst * 1000:.0f} ms | {report.failures} |"
        )
    table = "\n".join([
        "| job (same event, same person as the platform's writers) | quiet | beside the platform | ratio | platform transactions during the job | platform p99 | platform max | platform failures |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    notes = (
        f"Measured {stamp} on PostgreSQL {version} ({'a private Debian PostgreSQL 15, fsync off' if options.server == 'pg15' else 'embedded'}), "
        f"{os.cpu_count()} cores shared with other work (load average {load_average[0]:.1f} / {load_average[1]:.1f} at the end). "
        f"The platform load over the whole run: {total.row()}."
    )
    print(notes)
    print()
    print(table)
    if options.readme:
        write_readme_section(f"{SECTION}\n\n{README_TEXT}\n\n{notes}\n\n{table}\n")
    return 0


README_TEXT = """\
`benchmarks/bench_live_traffic.py` (about 3 minutes): each heavy job as a real `linea` process on
a quiet database, then beside the platform's live traffic (`benchmarks/platform_load.py`: three
writers, each about 45 transactions a second; most are a waitlist sign-up that inserts an entry
and sets the event's `updated_at` in one transaction, one in five inserts a session and an audit
row for one person, one in ten counts the event's entries), aimed at the job's own event and
person. Target: each job within 2x its quiet time, no platform transaction waiting 1 s, none
failing."""


if __name__ == "__main__":
    sys.exit(main())
