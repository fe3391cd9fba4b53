"""Validation of a waitlist import's rows: plain ASCII addresses against internationalized ones.

Writes two files of N addresses that differ only by their accents (`zoe.12@bucher.de` /
`zoë.12@bücher.de`, twelve first names, ten domains of which three internationalized), then
times `stream_import_rows` over each (reading, decoding, CSV, validation, COPY text; no database):
what `waitlist import` spends per row before PostgreSQL sees it.

Validation is timed in CPU time (best of three) beside wall time: on a shared machine the wall
time of a second-long loop says more about the neighbours than about the loop.

With --import, also the whole `linea waitlist import` of each file (a real process, on a
temporary embedded server), --rounds times (default 3), the two files taking turns (ASCII first
in even rounds, internationalized first in odd ones) and `waitlist_entries` emptied before each
import, so that neither file always meets the bigger table; for each: the wall time, linea's own
CPU time, and the CPU time of linea's server backends (read from /proc while they run, so a
few tens of ms may be missing); the medians over the rounds. With --linea-root DIR the imports
run the linea package from DIR (an older checkout, for a before/after; validation alone always
runs this checkout's).

Usage: .venv/bin/python benchmarks/bench_email_validation.py [--rows N] [--import [--rounds N] [--linea-root DIR]]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST = ("zoë", "josé", "françois", "jürgen", "łukasz", "søren", "ana", "maría", "chloé", "björn", "ñuño", "ève")
PLAIN_FIRST = ("zoe", "jose", "francois", "jurgen", "lukasz", "soren", "ana", "maria", "chloe", "bjorn", "nuno", "eve")
DOMAINS = ("gmail.com", "web.de", "müller.de", "orange.fr", "bücher.de", "correo.es", "posteo.de", "free.fr", "zürich.ch", "example.org")
PLAIN_DOMAINS = ("gmail.com", "web.de", "muller.de", "orange.fr", "bucher.de", "correo.es", "posteo.de", "free.fr", "zurich.ch", "example.org")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--import", dest="whole_import", action="store_true", help="also time linea waitlist import of each file")
    parser.add_argument("--rounds", type=int, default=3, help="imports of each file (with --import)")
    parser.add_argument("--linea-root", type=Path, default=ROOT, help="run the linea package found in this directory")
    options = parser.parse_args()
    rows = options.rows
    from linea_cli.services.waitlist_csv import stream_import_rows

    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as directory:
        files = {"ASCII": Path(directory) / "ascii.csv", "internationalized": Path(directory) / "intl.csv"}
        with files["ASCII"].open("w", encoding="utf-8") as plain, files["internationalized"].open("w", encoding="utf-8") as intl:
            plain.write("email\n")
            intl.write("email\n")
            for n in range(rows):
                name, domain = rng.randrange(len(FIRST)), rng.randrange(len(DOMAINS))
                plain.write(f"{PLAIN_FIRST[name]}.{n}@{PLAIN_DOMAINS[domain]}\n")
                intl.write(f"{FIRST[name]}.{n}@{DOMAINS[domain]}\n")
        for label, path in files.items():
            best_wall = best_cpu = float("inf")
            for _ in range(3):
                with path.open("rb") as source:
                    started, cpu = time.perf_counter(), time.process_time()
                    stats = stream_import_rows(source, write=lambda text: None)
                    best_cpu = min(best_cpu, time.process_time() - cpu)
                    best_wall = min(best_wall, time.perf_counter() - started)
                assert stats.valid == rows, stats
            print(f"{label:18} {rows:,} rows  {best_cpu:6.2f} s CPU  {best_cpu / rows * 1e6:5.2f} µs/row  "
                  f"({best_wall:.2f} s wall)  (validation)")
        if options.whole_import:
            time_imports(files, rows=rows, rounds=options.rounds, linea_root=options.linea_root, workdir=Path(directory))
    return 0


def time_imports(files: dict[str, Path], *, rows: int, rounds: int, linea_root: Path, workdir: Path) -> None:
    import statistics

    import psycopg

    import linea_cli

    with linea_cli.temporary_server() as server:
        env = {**os.environ, "LINEA_DATABASE_URL": server.url, "LINEA_DATA_DIR": str(workdir / "data"), "NO_COLOR": "1"}
        env.pop("LINEA_ACTOR", None)
        linea = [sys.executable, "-m", "linea_cli"]
        subprocess.run([*linea, "db", "upgrade"], env=env, cwd=linea_root, check=True, capture_output=True)
        with psycopg.connect(server.url, autocommit=True) as db:
            db.execute("INSERT INTO users (id, email, name, role, updated_at) VALUES ('cbenchowner', 'owner@bench.example', 'Owner', 'OWNER', now())")
            for n, label in enumerate(files):
                db.execute(
                    "INSERT INTO events (id, title, slug, status, start_date, owner_id, updated_at) "
                    "VALUES (%s, %s, %s, 'PUBLISHED', now() + interval '30 days', 'cbenchowner', now())",
                    (f"cbenchevent{n}", label, f"event-{n}"),
                )
            measured: dict[str, list[tuple[float, float, float]]] = {label: [] for label in files}
            for round_ in range(rounds):
                order = list(files.items()) if round_ % 2 == 0 else list(reversed(files.items()))
                for label, path in order:
                    n = list(files).index(label)
                    db.execute("TRUNCATE waitlist_entries")
                    db.execute("CHECKPOINT")
                    with BackendCpu(server.url) as backends:
                        children = resource.getrusage(resource.RUSAGE_CHILDREN)
                        started = time.perf_counter()
                        subprocess.run([*linea, "waitlist", "import", f"event-{n}", str(path), "--json"], env=env, cwd=linea_root,
                                       check=True, capture_output=True)
                        seconds = time.perf_counter() - started
                        after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    linea_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
                    count = db.execute("SELECT count(*) FROM waitlist_entries WHERE event_id = %s", (f"cbenchevent{n}",)).fetchone()
                    assert count is not None and count[0] == rows, count
                    measured[label].append((seconds, linea_cpu, backends.seconds))
                    print(f"  round {round_ + 1} {label:18} {seconds:6.2f} s wall  linea {linea_cpu:5.2f} s CPU  "
                          f"server {backends.seconds:5.2f} s CPU")
        for label, runs in measured.items():
            wall, linea_cpu, server_cpu = (statistics.median(run[i] for run in runs) for i in range(3))
            print(f"{label:18} {rows:,} rows  {wall:6.2f} s wall  linea {linea_cpu:5.2f} s CPU  server {server_cpu:5.2f} s CPU  "
                  f"(linea waitlist import, median of {rounds}, {linea_root})")


class BackendCpu:
    """The CPU time of the server backends `linea` opens while this is entered: a thread reads
    pg_stat_activity and /proc/PID/stat every 20 ms and keeps each backend's last figure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.last: dict[int, float] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    @property
    def seconds(self) -> float:
        return sum(self.last.values())

    def __enter__(self) -> BackendCpu:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()

    def _watch(self) -> None:
        import psycopg

        ticks = os.sysconf("SC_CLK_TCK")
        with psycopg.connect(self.url, autocommit=True) as watcher:
            while not self.done.wait(0.02):
                pids = watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'linea%' AND pid <> pg_backend_pid()"
                ).fetchall()
                for (pid,) in pids:
                    try:
                        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:  # ended meanwhile
                        continue
                    self.last[pid] = (int(fields[11]) + int(fields[12])) / ticks


if __name__ == "__main__":
    raise SystemExit(main())
