"""Start-up cost of a read command: `linea events list --limit 5` against a floor script.

The floor imports what linea is made of (typer, rich, sqlmodel, pydantic-settings, psycopg) and
runs one query of the same shape, so the ratio is what linea adds. linea holds Python's cyclic
garbage collector during start-up (linea_cli.cli.main); so that the ratio does not hide what linea
adds behind that, the floor also runs a second time with the collector off. All run as real
processes with bytecode compiled (PYTHONDONTWRITEBYTECODE unset), as an installed tool runs, taking
turns, best of N; wall time and the process's own CPU time (user + system, steadier on a loaded
machine).

Two servers, each with a few seeded rows:
- embedded: linea's own server under a temporary LINEA_DATA_DIR, already running (no URL given);
- external: a second throwaway server reached over TCP (`--database-url postgresql://...@127.0.0.1`).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, markdown_table

FLOOR = """
import sys

import psycopg, pydantic_settings, rich.console, sqlmodel, typer  # noqa: F401  what linea is made of
import sqlalchemy as sa

engine = sa.create_engine(sys.argv[1], poolclass=sa.pool.NullPool)
with engine.connect() as connection:
    rows = connection.execute(sa.text(
        "SELECT e.id, e.slug, e.title, e.status, e.start_date, e.end_date, e.capacity, u.email, v.name "
        "FROM events e JOIN users u ON u.id = e.owner_id LEFT JOIN venues v ON v.id = e.venue_id "
        "WHERE e.deleted_at IS NULL ORDER BY e.start_date, e.id LIMIT 6"
    )).all()
for row in rows[:5]:
    print("\\t".join(str(value) for value in row))
"""
SEED = ["db", "seed", "--users", "50", "--events", "20", "--waitlist", "100", "--sessions", "10"]


def linea_command() -> list[str]:
    script = Path(sys.executable).with_name("linea")  # the installed console script, as a user runs it
    return [str(script)] if script.exists() else [sys.executable, "-m", "linea_cli"]


def bytecode_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["NO_COLOR"] = "1"
    return env


def compile_bytecode(env: dict[str, str]) -> None:
    paths = [str(ROOT / "linea_cli"), sysconfig.get_paths()["purelib"]]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *paths], env=env, check=False, capture_output=True)


def run(command: list[str], env: dict[str, str], *, cwd: Path = ROOT) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process run in `cwd`)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0 or not completed.stdout.strip():
        raise SystemExit(f"{' '.join(command)} failed ({completed.returncode}): {completed.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare(url: str, linea: list[str], env: dict[str, str], runs: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU), best of `runs`, for each command, taking turns so that a busy moment hits all alike."""
    commands = {
        "floor": [sys.executable, "-c", FLOOR, url],
        "floor_nogc": [sys.executable, "-c", "import gc; gc.disable()\n" + FLOOR, url],
        "linea": linea,
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            results[name].append(run(command, env))
    return {name: (min(w for w, _ in times), min(c for _, c in times)) for name, times in results.items()}


def cell(wall: float, cpu: float) -> str:
    return f"{wall:.3f} s ({cpu:.3f} s CPU)"


def ratio(linea: tuple[float, float], floor: tuple[float, float]) -> str:
    return f"{linea[0] / floor[0]:.2f}× ({linea[1] / floor[1]:.2f}× CPU)"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args()

    import linea_cli

    env = bytecode_env()
    compile_bytecode(env)
    linea = [*linea_command(), "events", "list", "--limit", "5"]
    rows = []

    data_dir = Path(tempfile.mkdtemp(prefix="linea-bs-"))  # short: the server's socket lives in it
    embedded_env = {**env, "LINEA_DATA_DIR": str(data_dir)}
    embedded_env.pop("LINEA_DATABASE_URL", None)
    try:
        subprocess.run([*linea_command(), *SEED], env=embedded_env, check=True, capture_output=True)
        from linea_cli.db.embedded import announced_url

        socket_url = announced_url(data_dir).render_as_string(hide_password=False)
        rows.append(("embedded (Unix socket, running)", compare(socket_url, linea, embedded_env, options.runs)))
    finally:
        subprocess.run([*linea_command(), "db", "server", "stop"], env=embedded_env, capture_output=True)
        shutil.rmtree(data_dir, ignore_errors=True)

    with linea_cli.temporary_server(tcp=True) as server:
        external_env = {**env, "LINEA_DATABASE_URL": server.url}
        subprocess.run([*linea_command(), "db", "upgrade"], env=external_env, check=True, capture_output=True)
        subprocess.run([*linea_command(), *SEED], env=external_env, check=True, capture_output=True)
        floor_url = server.url.replace("postgresql://", "postgresql+psycopg://")
        rows.append(("external (TCP, 127.0.0.1)", compare(floor_url, linea, external_env, options.runs)))

    print(markdown_table(
        ["server", "floor script", "floor, collector off", "`linea events list --limit 5`", "linea / floor",
         "linea / floor, collector off"],
        [[name, cell(*r["floor"]), cell(*r["floor_nogc"]), cell(*r["linea"]), ratio(r["linea"], r["floor"]),
          ratio(r["linea"], r["floor_nogc"])] for name, r in rows],
    ))
    load = os.getloadavg()
    print(f"\nbest of {options.runs} runs each, taking turns; {os.cpu_count()} cores, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
