"""What every benchmark needs: a throwaway embedded server, and `linea` run as a real process."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass
class Timing:
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A URL to a fresh, migrated database on a temporary embedded server, removed afterwards."""
    import linea_cli

    with linea_cli.temporary_server() as server:
        linea_cli.open_database(server.url, migrate=True, name="bench").close()
        yield server.url


def run_linea(url: str, *args: str, stdin: str | None = None) -> Timing:
    """Run `linea ARGS` as its own process; wall time and the child's peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "linea_cli", *args],
        env={**os.environ, "LINEA_DATABASE_URL": url},
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"linea {' '.join(args)} failed ({completed.returncode}): {completed.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far; report it when this child raised it.
    return Timing(elapsed, max(peak, before) / 1024, completed.stdout, completed.stderr)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
