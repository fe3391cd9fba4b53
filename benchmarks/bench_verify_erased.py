"""`linea users verify-erased` and `linea users anonymize` (which runs the same search) on about
1,100,000 rows.

A throwaway embedded server gets `db seed --users 10000 --venues 200 --events 2000 --waitlist
500000 --sessions 10000`, 500,000 audit rows (JSON metadata naming a user's address and name, an
IP address and a user agent, as the platform writes them) and a platform table linea does not
model (`crm_contacts`, 100,000 rows with a JSONB column). Then, as real processes:

1. `users verify-erased EMAIL` before the erasure (it finds the person: exit 7);
2. `users anonymize EMAIL --yes` (the erasure, then the search with everything it knew);
3. `users verify-erased EMAIL` and `users verify-erased USER_ID` after it (exit 0).

For scale, the time PostgreSQL takes to read every searched column of every table once
(`SELECT sum(length(col::text))`) is printed next to them.

Writes the results into benchmarks/README.md under `## Proof of erasure`. About 1.5 minutes.
"""

from __future__ import annotations

import os
import time

from benchlib import engine_for, markdown_table, progress, run_linea, throwaway_database, write_readme_section

SEED = ["--users", "10000", "--venues", "200", "--events", "2000", "--waitlist", "500000", "--sessions", "10000"]
AUDIT_ROWS = 500_000
CRM_ROWS = 100_000
SECTION = "## Proof of erasure"


def fill(url: str) -> None:
    import sqlalchemy as sa

    engine = engine_for(url)
    with engine.begin() as connection:
        connection.execute(sa.text("""
            INSERT INTO audit_logs (id, action, resource, resource_id, user_id, ip_address, user_agent, metadata, created_at)
            SELECT 'cbenchaudit' || lpad(to_hex(n), 14, '0'), 'user.login', 'User', u.id, u.id,
                   '198.51.' || (n % 250) || '.' || (n % 200), 'Mozilla/5.0 (bench ' || (n % 40) || ')',
                   jsonb_build_object('email', upper(u.email), 'profile', jsonb_build_object('name', u.name),
                                      'method', 'password', 'n', n),
                   now() - make_interval(secs => n)
            FROM generate_series(1, :rows) AS n
            JOIN (SELECT id, email, name, row_number() OVER (ORDER BY id) AS k FROM users) AS u
              ON u.k = 1 + n % (SELECT count(*) FROM users)
        """), {"rows": AUDIT_ROWS})
        connection.execute(sa.text(
            "CREATE TABLE crm_contacts (id TEXT PRIMARY KEY, owner_ref TEXT, contact JSONB, note TEXT)"
        ))
        connection.execute(sa.text("""
            INSERT INTO crm_contacts
            SELECT 'crm' || n, 'ext-' || n, jsonb_build_object('primary', 'contact' || n || '@mail.example', 'tags', jsonb_build_array('a', 'b')),
                   'met at booth ' || n
            FROM generate_series(1, :rows) AS n
        """), {"rows": CRM_ROWS})
        connection.execute(sa.text("ANALYZE"))
    engine.dispose()


def victim(url: str) -> tuple[str, str]:
    import sqlalchemy as sa

    engine = engine_for(url)
    with engine.connect() as connection:
        row = connection.execute(sa.text(
            "SELECT u.id, u.email FROM users u JOIN waitlist_entries w ON w.user_id = u.id "
            "WHERE u.role <> 'ADMIN' AND u.name LIKE '% %' GROUP BY u.id ORDER BY count(*) DESC, u.id LIMIT 1"
        )).one()
    engine.dispose()
    return row.id, row.email


def full_read_seconds(url: str) -> tuple[float, int]:
    """Read every text and JSON column of every table once: the floor for any search of them all."""
    import sqlalchemy as sa

    engine = engine_for(url)
    with engine.connect() as connection:
        tables = connection.execute(sa.text("""
            SELECT table_schema, table_name, string_agg(format('coalesce(length(%I::text), 0)', column_name), ' + ') AS total
            FROM information_schema.columns
            WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json')
            GROUP BY 1, 2
        """)).all()
        rows = 0
        started = time.perf_counter()
        for schema, table, total in tables:
            connection.execute(sa.text(f'SELECT sum({total}) FROM "{schema}"."{table}"')).scalar()
        seconds = time.perf_counter() - started
        for schema, table, _ in tables:
            rows += connection.execute(sa.text(f'SELECT count(*) FROM "{schema}"."{table}"')).scalar()
    engine.dispose()
    return seconds, rows


def main() -> None:
    with throwaway_database() as url:
        started = time.perf_counter()
        run_linea(url, "db", "seed", *SEED)
        fill(url)
        progress(f"filled in {time.perf_counter() - started:.0f} s")
        user_id, email = victim(url)
        read, rows = full_read_seconds(url)
        progress(f"{rows:,} rows; one read of every text and JSON column: {read:.2f} s")
        before = run_linea(url, "users", "verify-erased", email, exit_codes=(7,))
        erased = run_linea(url, "users", "anonymize", email, "--yes")
        after = run_linea(url, "users", "verify-erased", email)
        by_id = run_linea(url, "users", "verify-erased", user_id)
        assert after.stdout.startswith("OK: "), after.stdout
        found = len(before.stdout.splitlines()) - 1
        table = markdown_table(
            ["command", "result", "wall time", "peak RSS of linea"],
            [
                ["`users verify-erased EMAIL` before the erasure", f"exit 7, {found} traces", f"{before.seconds:.1f} s", f"{before.peak_rss_mb:.0f} MB"],
                ["`users anonymize EMAIL --yes` (erasure + search)", "exit 0", f"{erased.seconds:.1f} s", f"{erased.peak_rss_mb:.0f} MB"],
                ["`users verify-erased EMAIL` after", "exit 0, OK", f"{after.seconds:.1f} s", f"{after.peak_rss_mb:.0f} MB"],
                ["`users verify-erased USER_ID` after", "exit 0, OK", f"{by_id.seconds:.1f} s", f"{by_id.peak_rss_mb:.0f} MB"],
                ["(PostgreSQL reading every searched column once, no linea)", f"{rows:,} rows", f"{read:.1f} s", ""],
            ],
        )
    print(f"{SECTION}\n\n{table}")
    write_readme(table, rows, load=os.getloadavg()[0])


def write_readme(table: str, rows: int, *, load: float) -> None:
    section = (
        f"{SECTION}\n\n`benchmarks/bench_verify_erased.py`: `linea users verify-erased` and `users anonymize` on "
        f"{rows:,} rows (`db seed {' '.join(SEED)}`, {AUDIT_ROWS:,} audit rows with JSON metadata, and a "
        f"platform table linea does not model with {CRM_ROWS:,} rows and a JSONB column), each a real process.\n\n"
        f"{table}\n\nOne SELECT per table, an OR of `strpos` over the lowered columns, each column lowered "
        "once per row; only rows that hold an identifier come back to linea. Lowering and comparing every "
        "value costs a few times a plain read of the same columns (last row), and no index can spare the read: "
        "a trace may be anywhere. "
        "`SET LOCAL jit = off` for the search: compiling the OR of strpos calls cost PostgreSQL's JIT "
        f"more than running it (this run: {time.strftime('%Y-%m-%d', time.gmtime())}, "
        f"load average {load:.1f} on 2 shared cores, so slower than on a quiet machine).\n"
    )
    write_readme_section(section)


if __name__ == "__main__":
    main()
