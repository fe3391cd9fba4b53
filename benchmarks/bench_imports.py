"""What a person waits for: read commands and a Tab press beside their floors, and what imports cost.

Commands, as real processes with bytecode compiled (PYTHONDONTWRITEBYTECODE unset), taking turns,
best of N, wall time and the process's own CPU time:
- `linea events list --limit 5`, `linea users show EMAIL`, `linea waitlist stats SLUG`;
- a Tab press after `linea events show s` (bash's protocol: COMP_LINE, COMP_POINT, _LINEA_COMPLETE);
- the floor of any Python completion: a script that imports psycopg, connects and runs one query
  (the completion's own);
- `linea --version` and `linea --help` (no database code).

Then `python -X importtime` of each: the self time of every top-level package each loads, summed
(one run each; import times shift with the machine's load, the list of packages does not).

`--before DIR`: a directory holding an earlier `linea_cli` (`git archive REV linea_cli | tar -x -C
DIR`), run beside the current one (`python -c 'from linea_cli.cli import main; main()'` with DIR
first on PYTHONPATH) for the before/after columns.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from bench_startup import bytecode_env, cell, compile_bytecode, linea_command
from bench_startup import run as startup_run
from benchlib import markdown_table

# Every process runs here (set in main): neither the repository (`python -c` puts the working
# directory first on sys.path, ahead of --before's PYTHONPATH) nor anyone's `.env`.
WORKDIR = Path(tempfile.gettempdir())


def run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process), run in WORKDIR."""
    return startup_run(command, env, cwd=WORKDIR)

SEED = ["db", "seed", "--users", "50", "--events", "20", "--waitlist", "100", "--sessions", "10"]
FLOOR = """
import sys

import psycopg

with psycopg.connect(sys.argv[1]) as connection:
    rows = connection.execute(
        "SELECT slug, title FROM events WHERE deleted_at IS NULL AND lower(slug) LIKE 's%%' ORDER BY slug LIMIT 50"
    ).fetchall()
print("\\n".join(slug for slug, _ in rows) or "-")
"""
# Packages whose import time is reported on their own; the rest is "other".
PACKAGES = ("sqlalchemy", "sqlmodel", "pydantic", "pydantic_core", "pydantic_settings", "typer", "rich", "psycopg",
            "alembic", "email_validator", "linea_cli")


def tab_env(env: dict[str, str], line: str) -> dict[str, str]:
    return {**env, "_LINEA_COMPLETE": "complete_bash", "COMP_LINE": line, "COMP_POINT": str(len(line))}


def import_costs(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Self time of each package's modules in one run under -X importtime, in seconds."""
    completed = subprocess.run(command, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True, cwd=WORKDIR)
    costs: dict[str, float] = defaultdict(float)
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        top = name.split(".")[0]
        costs[top if top in PACKAGES else "other"] += int(self_us) / 1e6
    return costs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--before", type=Path, help="a directory holding an earlier linea_cli")
    options = parser.parse_args()

    import psycopg

    import linea_cli

    env = bytecode_env()
    compile_bytecode(env)
    if options.before:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(options.before)], env=env, check=False, capture_output=True)
    global WORKDIR
    with linea_cli.temporary_server() as server, tempfile.TemporaryDirectory(prefix="linea-bi-") as cwd:
        WORKDIR = Path(cwd)
        env = {**env, "LINEA_DATABASE_URL": server.url, "LINEA_DATA_DIR": str(Path(cwd) / "data")}
        for key in [key for key in env if key.startswith(("LINEA_", "PG")) and key not in ("LINEA_DATABASE_URL", "LINEA_DATA_DIR")]:
            del env[key]
        subprocess.run([*linea_command(), "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([*linea_command(), *SEED], env=env, check=True, capture_output=True)
        with psycopg.connect(server.url) as connection:
            email = connection.execute("SELECT email FROM users WHERE deleted_at IS NULL ORDER BY email LIMIT 1").fetchone()[0]
            slug = connection.execute(
                "SELECT e.slug FROM events e JOIN waitlist_entries w ON w.event_id = e.id WHERE e.deleted_at IS NULL"
                " GROUP BY e.slug ORDER BY count(*) DESC, e.slug LIMIT 1"
            ).fetchone()[0]
            first = connection.execute("SELECT left(slug, 1) FROM events WHERE deleted_at IS NULL ORDER BY slug LIMIT 1").fetchone()[0]

        tab_line = f"linea events show {first}"
        cases: dict[str, tuple[list[str], dict[str, str]]] = {
            "floor: import psycopg, connect, one query": ([sys.executable, "-c", FLOOR.replace("'s%%'", f"'{first}%%'"), server.url], env),
            f"Tab after `{tab_line}`": (linea_command(), tab_env(env, tab_line)),
            "`linea events list --limit 5`": ([*linea_command(), "events", "list", "--limit", "5"], env),
            "`linea users show EMAIL`": ([*linea_command(), "users", "show", email], env),
            "`linea waitlist stats SLUG`": ([*linea_command(), "waitlist", "stats", slug], env),
            "`linea --version`": ([*linea_command(), "--version"], env),
            "`linea --help`": ([*linea_command(), "--help"], env),
        }
        before_env = {**env, "PYTHONPATH": str(options.before)} if options.before else None
        before_command = [sys.executable, "-c", "from linea_cli.cli import main; main()"]
        results: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for _ in range(options.runs):
            for name, (command, case_env) in cases.items():
                results[name].append(run(command, case_env))
                if before_env is not None and not name.startswith("floor"):
                    results["before " + name].append(run([*before_command, *command[len(linea_command()):]], {**case_env, "PYTHONPATH": str(options.before)}))
        best = {name: (min(w for w, _ in times), min(c for _, c in times)) for name, times in results.items()}
        floor = best["floor: import psycopg, connect, one query"]
        header = ["command", "after", "after / floor"]
        if options.before:
            header[1:1] = ["before", "before / floor"]
        rows = []
        for name in cases:
            row: list[object] = [name]
            if options.before:
                row += ["" if name.startswith("floor") else cell(*best["before " + name]),
                        "" if name.startswith("floor") else f"{best['before ' + name][0] / floor[0]:.2f}×"]
            row += [cell(*best[name]), f"{best[name][0] / floor[0]:.2f}×"]
            rows.append(row)
        print(markdown_table(header, rows))
        load = os.getloadavg()
        print(f"\nbest of {options.runs} runs each, taking turns; {os.cpu_count()} cores, "
              f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}\n")

        columns = ["psycopg", "sqlalchemy", "sqlmodel", "pydantic", "pydantic_core", "pydantic_settings", "typer", "rich",
                   "alembic", "email_validator", "linea_cli", "other"]
        import_rows = []
        for name, (command, case_env) in cases.items():
            for label, full, run_env in (
                ("after", command, case_env),
                *((("before", [*before_command, *command[len(linea_command()):]], {**case_env, "PYTHONPATH": str(options.before)}),)
                  if options.before and not name.startswith("floor") else ()),
            ):
                costs = import_costs(full, run_env)
                import_rows.append([f"{name} ({label})", *(f"{costs[c] * 1000:.0f}" if costs.get(c) else "" for c in columns),
                                    f"{sum(costs.values()) * 1000:.0f}"])
        print(markdown_table(["imports, self ms (`-X importtime`, one run)", *columns, "total"], import_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
