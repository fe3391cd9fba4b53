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


def run_linea(
    url: str, *args: str, stdin: str | None = None, exit_codes: tuple[int, ...] = (0,), env: dict[str, str] | None = None
) -> Timing:
    """Run `linea ARGS` as its own process (`env` on top of the environment); wall time and the
    child's peak RSS. Another exit code than `exit_codes` stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "linea_cli", *args],
        env={**os.environ, "LINEA_DATABASE_URL": url, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode not in exit_codes:
        raise SystemExit(f"linea {' '.join(args)} failed ({completed.returncode}): {completed.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far; report it when this child raised it.
    return Timing(elapsed, max(peak, before) / 1024, completed.stdout, completed.stderr)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def engine_for(url: str):  # noqa: ANN201 - sqlalchemy is imported lazily
    """An engine for arranging rows directly (no pool: each benchmark step opens and closes)."""
    import sqlalchemy as sa

    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)


def write_readme_section(section: str) -> None:
    """Put `section` (starting with its `## ` title) in benchmarks/README.md, replacing the old one."""
    import re

    title = section.splitlines()[0]
    readme = ROOT / "benchmarks" / "README.md"
    text = readme.read_text()
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip() + "\n\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
    readme.write_text(text)


POSTGRES_15 = Path("/usr/lib/postgresql/15/bin")


@contextmanager
def postgres15_server(port: int = 54399, *, settings: str = "") -> Iterator[str]:
    """A private PostgreSQL 15 (Debian's binaries) in a temporary directory, on loopback only,
    stopped and removed afterwards: the production server version, for benchmarks where the
    version matters (the embedded server is PostgreSQL 18). Run as the `postgres` user when root.
    `settings` are more `-c name=value` options for the server."""
    import shutil
    import tempfile

    if not (POSTGRES_15 / "postgres").exists():
        raise SystemExit(f"PostgreSQL 15 is not installed ({POSTGRES_15}); apt-get install postgresql-15")
    directory = Path(tempfile.mkdtemp(prefix="linea-pg15-"))
    as_root = os.geteuid() == 0

    def run(*command: str) -> None:
        text = " ".join(f"'{part}'" for part in command)
        full = ["su", "postgres", "-s", "/bin/bash", "-c", text] if as_root else list(command)
        subprocess.run(full, check=True, capture_output=True)

    if as_root:
        shutil.chown(directory, "postgres")
    data = directory / "pg"
    run(str(POSTGRES_15 / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={directory} -c fsync=off {settings}"
    run(str(POSTGRES_15 / "pg_ctl"), "-D", str(data), "-l", str(directory / "log"), "-w", "start", "-o", options)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(POSTGRES_15 / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(directory, ignore_errors=True)
