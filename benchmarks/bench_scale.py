"""Scale path: the same commands on 10x, 100x and 1000x the demo database.

Time should grow with the rows a command touches, not with the size of the tables: a page of
events or audit rows costs the same at every scale (keyset pagination on an index), an export
grows with the waitlist it writes, a purge with the sessions it deletes.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import psycopg
from benchlib import markdown_table, run_linea, throwaway_database

from linea_cli.services.pagination import encode_cursor

DEMO = {"users": 50, "venues": 10, "events": 40, "waitlist": 500, "sessions": 50, "audit": 200}
SCALES = (10, 100, 1000)


def seed(url: str, factor: int) -> dict[str, int]:
    sizes = {name: count * factor for name, count in DEMO.items()}
    run_linea(url, "db", "seed", *(f"--{name}={sizes[name]}" for name in ("users", "venues", "events", "waitlist", "sessions")))
    with psycopg.connect(url) as conn:
        # The audit log grows with every change; give it a year of history at this scale.
        conn.execute(
            "INSERT INTO audit_logs (id, action, resource, resource_id, user_agent, metadata, created_at) "
            "SELECT 'cbench' || lpad(n::text, 19, '0'), 'UPDATE', 'Event', 'e' || n, 'linea-cli/bench', "
            "jsonb_build_object('changes', jsonb_build_object('title', jsonb_build_object('before', 'a', 'after', 'b'))), "
            "(now() AT TIME ZONE 'UTC') - make_interval(mins => (%(total)s - n) * (525600 / %(total)s)) "
            "FROM generate_series(1, %(total)s) AS n",
            {"total": sizes["audit"]},
        )
        # One popular event holds a tenth of all sign-ups, so the export has something to grow with.
        conn.execute(
            "INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at) "
            "SELECT 'chot' || lpad(n::text, 20, '0'), 'fan' || n || '@example.net', "
            "(SELECT id FROM events WHERE deleted_at IS NULL ORDER BY id LIMIT 1), 'PENDING', "
            "now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC' FROM generate_series(1, %(hot)s) AS n",
            {"hot": sizes["waitlist"] // 10},
        )
        conn.execute("ANALYZE")
    return sizes


def deep_events_cursor(url: str) -> tuple[str, int]:
    """The cursor of the page 90% of the way through the events list, and its position."""
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT count(*) FROM events WHERE deleted_at IS NULL").fetchone()[0]
        position = int(total * 0.9)
        start, event_id = conn.execute(
            "SELECT start_date, id FROM events WHERE deleted_at IS NULL ORDER BY start_date, id OFFSET %s LIMIT 1",
            (position,),
        ).fetchone()
    return encode_cursor("events", [start, event_id]), position


def biggest_event(url: str) -> tuple[str, int]:
    with psycopg.connect(url) as conn:
        slug, count = conn.execute(
            "SELECT e.slug, count(*) FROM waitlist_entries w JOIN events e ON e.id = w.event_id "
            "WHERE w.deleted_at IS NULL AND e.deleted_at IS NULL GROUP BY e.slug ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
    return slug, count


def since_for(url: str, rows: int) -> str:
    with psycopg.connect(url) as conn:
        moment = conn.execute(
            "SELECT created_at FROM audit_logs ORDER BY created_at DESC OFFSET %s LIMIT 1", (rows,)
        ).fetchone()[0]
    return moment.isoformat() + "+00:00"


def measure(factor: int) -> list[list[object]]:
    rows: list[list[object]] = []
    with throwaway_database() as url, tempfile.TemporaryDirectory() as scratch:
        sizes = seed(url, factor)

        def timed(label: str, touched: int, *args: str) -> None:
            best = min(run_linea(url, *args).seconds for _ in range(3))
            rows.append([f"{factor}x", label, touched, f"{best * 1000:.0f} ms"])

        timed("`linea --version` (start-up only)", 0, "--version")
        timed(f"`events list` page 1 of {sizes['events']:,} events", 50, "events", "list", "--limit", "50", "--json")
        cursor, position = deep_events_cursor(url)
        timed(f"`events list` page at row {position:,}", 50, "events", "list", "--limit", "50", "--after", cursor, "--json")
        since = since_for(url, 50)
        timed(f"`audit list --since` (50 newest of {sizes['audit']:,})", 50, "audit", "list", "--since", since, "--json")
        slug, entries = biggest_event(url)
        target = str(Path(scratch) / "export.csv")
        timed("`waitlist export` of the biggest event", entries, "waitlist", "export", slug, "-o", target)
        with psycopg.connect(url) as conn:
            expired = conn.execute(
                "SELECT count(*) FROM sessions WHERE expires_at < (now() AT TIME ZONE 'UTC')"
            ).fetchone()[0]
        started = time.perf_counter()
        result = run_linea(url, "sessions", "purge", "--json")
        rows.append([f"{factor}x", f"`sessions purge` ({sizes['sessions']:,} sessions)", expired,
                     f"{(time.perf_counter() - started) * 1000:.0f} ms"])
        json.loads(result.stdout or "{}")
    return rows


def main() -> None:
    table: list[list[object]] = []
    for factor in SCALES:
        table.extend(measure(factor))
    print("## Scale path\n")
    print(markdown_table(["scale", "command", "rows touched", "wall time (best of 3; purge once)"], table))


if __name__ == "__main__":
    main()
