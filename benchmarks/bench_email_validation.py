"""Validation of a waitlist import's rows: plain ASCII addresses against internationalized ones.

Writes two files of N addresses that differ only by their accents (`zoe.12@bucher.de` /
`zoë.12@bücher.de`, twelve first names, ten domains of which three internationalized), then
times `stream_import_rows` over each (reading, decoding, CSV, validation, COPY text; no database):
what `waitlist import` spends per row before PostgreSQL sees it.

Usage: .venv/bin/python benchmarks/bench_email_validation.py [--rows N]
"""

from __future__ import annotations

import argparse
import random
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
    rows = parser.parse_args().rows
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
            print(f"{label:18} {rows:,} rows  {seconds:6.2f} s  {seconds / rows * 1e6:5.1f} µs/row")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
