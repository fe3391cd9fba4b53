"""Validation of a waitlist import's rows: plain ASCII addresses against internationalized ones.

Writes two files of N addresses that differ only by their accents (`zoe.12@bucher.de` /
`zoë.12@bücher.de`, twelve first names, ten domains of which three internationalized), then
times `stream_import_rows` over each (reading, decoding, CSV, validation, COPY text; no database):
what `waitlist import` spends per row before PostgreSQL sees it.

With --import, also the whole `linea waitlist import` of each file (a real process, into its
own event of a temporary embedded server), and with --linea-root DIR the linea package from DIR
(an older checkout, for a before/after).

Usage: .venv/bin/python benchmarks/bench_email_validation.py [--rows N] [--import [--linea-root DIR]]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
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
            with path.open("rb") as source:
                started = time.perf_counter()
                stats = stream_import_rows(source, write=lambda text: None)
                seconds = time.perf_counter() - started
            assert stats.valid == rows, stats
            print(f"{label:18} {rows:,} rows  {seconds:6.2f} s  {seconds / rows * 1e6:5.1f} µs/row  (validation)")
        if options.whole_import:
            time_imports(files, rows=rows, linea_root=options.linea_root, workdir=Path(directory))
    return 0


def time_imports(files: dict[str, Path], *, rows: int, linea_root: Path, workdir: Path) -> None:
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
            for n, (label, path) in enumerate(files.items()):
                db.execute("CHECKPOINT")
                started = time.perf_counter()
                subprocess.run([*linea, "waitlist", "import", f"event-{n}", str(path), "--json"], env=env, cwd=linea_root,
                               check=True, capture_output=True)
                seconds = time.perf_counter() - started
                count = db.execute("SELECT count(*) FROM waitlist_entries WHERE event_id = %s", (f"cbenchevent{n}",)).fetchone()
                assert count is not None and count[0] == rows, count
                print(f"{label:18} {rows:,} rows  {seconds:6.2f} s  (linea waitlist import, {linea_root})")


if __name__ == "__main__":
    raise SystemExit(main())
