"""`db doctor`'s health checks, and that it never hangs behind another session's locks."""

from __future__ import annotations

import json

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.harness import CliRun, Database, plain_url, run_linea_process

# What cannot run while a deploy holds every platform table: what reads their rows, their sizes, or
# definitions through pg_get_expr / pg_get_indexdef (which lock the table); the rest reports.
BLOCKED_BY_PLATFORM_LOCKS = [
    "schema owner", "data model", "columns linea can fill", "indexes present", "indexes valid", "unused indexes",
    "expired sessions", "table sizes",
]
# ... and with linea's own tables locked too: what reads its version table and its journal.
BLOCKED_BY_LINEA_LOCKS = ["schema revision", "public privileges", "unfinished imports"]


@pytest.mark.parametrize("schemas", [("public",), ("public", "linea")], ids=["platform", "platform-and-linea"])
def test_doctor_ends_naming_the_holder_while_every_table_is_locked(
    adopted: CliRun, platform_url: URL, platform_db: Database, schemas: tuple[str, ...]
) -> None:
    tables = [
        f'{row.schemaname}."{row.tablename}"'
        for row in platform_db.all("SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(:s)", s=list(schemas))
    ]
    assert {'public."users"', 'public."waitlist_entries"', 'public."_prisma_migrations"'} <= set(tables)
    with psycopg.connect(plain_url(platform_url)) as holder, psycopg.connect(plain_url(platform_url)) as bystander:
        bystander.execute("CREATE TEMPORARY TABLE scratch (n int)")  # ACCESS EXCLUSIVE too, on its own table only
        holder.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")  # a deploy's migration
        pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
        # A process of its own: were it to wait on the lock for good, the guard would end it, failing the test.
        done = run_linea_process(("db", "doctor", "--json"), env=adopted.env, timeout=600)
    assert done.returncode == 5, done.stderr
    checks = json.loads(done.stdout)
    blocked = [check["check"] for check in checks if check["status"] == "UNKNOWN"]
    expected = BLOCKED_BY_PLATFORM_LOCKS + (BLOCKED_BY_LINEA_LOCKS if "linea" in schemas else [])
    assert sorted(blocked) == sorted(expected)
    assert {check["detail"] for check in checks if check["status"] == "UNKNOWN"} == {
        f"blocked: waited 200ms for a lock: pid {pid} holds ACCESS EXCLUSIVE on _prisma_migrations, audit_logs, events "
        f"and {len(tables) - 3} more"
    }
    named = {check["check"]: check for check in checks}
    assert named["connectivity"]["status"] == "OK"
    for reported in ("transaction ID age", "multixact ID age", "connections", "constraints valid", "replication lag"):
        assert named[reported]["status"] == "OK"
    assert done.stderr == f"error: {len(expected)} could not run: {', '.join(blocked)}\n"


def test_doctor_warns_of_a_constraint_never_validated(adopted: CliRun, platform_db: Database) -> None:
    """A platform migration added a CHECK as NOT VALID (not to scan the table) and never validated it."""
    checks = {check["check"]: check for check in adopted("db", "doctor", "--json").json}
    assert checks["constraints valid"] == {
        "check": "constraints valid", "status": "OK", "detail": "every constraint of the platform's tables was validated",
    }
    platform_db.execute("ALTER TABLE events ADD CONSTRAINT events_capacity_positive CHECK (capacity > 0) NOT VALID")
    checks = {check["check"]: check for check in adopted("db", "doctor", "--json").json}
    assert checks["constraints valid"] == {
        "check": "constraints valid", "status": "WARN",
        "detail": "not validated (rows from before it may break it): events_capacity_positive on events; "
        "ALTER TABLE ... VALIDATE CONSTRAINT checks them",
    }
    platform_db.execute("ALTER TABLE events VALIDATE CONSTRAINT events_capacity_positive")
    assert {check["check"]: check for check in adopted("db", "doctor", "--json").json}["constraints valid"]["status"] == "OK"


def test_doctor_tells_a_running_import_from_an_abandoned_one_by_the_locks_it_sees(
    linea: CliRun, db: Database, direct_database_url: URL
) -> None:
    """Read from pg_locks, not by trying the lock (which a `--resume` would then find taken): keys of
    both signs, as pg_locks splits them. (That doctor takes no lock is not observable without timing.)"""
    from linea_cli.services.import_journal import LOCK_KEY
    from tests.factories import make_event

    event = make_event(db)
    # Journal ids whose advisory keys are negative and positive (a bigint key shows in pg_locks as two halves).
    keys = {name: db.scalar(f"SELECT {LOCK_KEY.format(':id')}", id=name) for name in (f"import-{n}" for n in range(40))}
    running = [next(name for name, key in keys.items() if key < 0), next(name for name, key in keys.items() if key > 0)]
    abandoned = next(name for name in keys if name not in running)
    for name in (*running, abandoned):
        db.execute(
            "INSERT INTO linea.imports (id, event_id, event_slug, source, file_sha256, on_duplicate, skip_invalid, rows, "
            "invalid, valid, to_write, id_prefix, id_suffix, now) VALUES (:id, :event, :slug, :source, '', 'SKIP', false, "
            "10, 0, 10, 10, '', '', now())",
            id=name, event=event["id"], slug=event["slug"], source=f"{name}.csv",
        )
    with psycopg.connect(plain_url(direct_database_url)) as importer:  # the running linea's own connection
        for name in running:
            importer.execute(f"SELECT pg_advisory_lock({LOCK_KEY.format('%s')})", (name,))
        checks = {check["check"]: check for check in linea("db", "doctor", "--json", exit_code=5).json}
        unfinished = checks["unfinished imports"]
        assert unfinished["status"] == "FAIL"
        assert unfinished["detail"].startswith(f"into '{event['slug']}' from '{abandoned}.csv' started ")
        assert all(f"{name}.csv" not in unfinished["detail"] for name in running)
        db.execute("DELETE FROM linea.imports WHERE id = :id", id=abandoned)
        checks = {check["check"]: check for check in linea("db", "doctor", "--json").json}
        assert checks["unfinished imports"] == {"check": "unfinished imports", "status": "OK", "detail": "none (2 running)"}
        held = importer.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert held.fetchone()[0] == 2


def test_doctor_warns_of_dead_rows_and_of_a_table_autovacuum_leaves_alone(
    linea: CliRun, db: Database, direct_database_url: URL
) -> None:
    from tests.factories import make_event

    event = make_event(db)
    with psycopg.connect(plain_url(direct_database_url), autocommit=True) as conn:
        conn.execute("ALTER TABLE waitlist_entries SET (autovacuum_enabled = false)")  # nothing cleans up meanwhile
        conn.execute(
            "INSERT INTO waitlist_entries (id, email, event_id, updated_at) "
            "SELECT 'w' || n, 'guest' || n || '@example.net', %s, now() FROM generate_series(1, 10000) n",
            (event["id"],),
        )
        conn.execute("DELETE FROM waitlist_entries WHERE right(id, 1) IN ('1', '2', '3')")  # 3,000 rows
        conn.execute("SELECT pg_stat_force_next_flush()")  # its counters are shared once this returns
    checks = {check["check"]: check for check in linea("db", "doctor", "--json").json}
    assert checks["dead rows"] == {
        "check": "dead rows", "status": "WARN",
        "detail": "waitlist_entries 30% of 10,000 rows dead: VACUUM them, and see why autovacuum does not",
    }
    assert checks["vacuum"] == {
        "check": "vacuum", "status": "WARN",
        "detail": "autovacuum is off for waitlist_entries; past autovacuum's trigger and not vacuumed for 24 h: "
        "waitlist_entries (3,000 dead rows, never); run VACUUM",
    }
    assert checks["analyze"] == {
        "check": "analyze", "status": "WARN",
        "detail": "autovacuum is off for waitlist_entries; past autovacuum's trigger and not analyzed for 24 h: "
        "waitlist_entries (13,000 changed rows, never); run ANALYZE",
    }
    with psycopg.connect(plain_url(direct_database_url), autocommit=True) as conn:
        conn.execute("ALTER TABLE waitlist_entries RESET (autovacuum_enabled)")
        conn.execute("VACUUM ANALYZE waitlist_entries")  # counted at once, not at the next flush
    checks = {check["check"]: check for check in linea("db", "doctor", "--json").json}
    assert [checks[name]["status"] for name in ("dead rows", "vacuum", "analyze")] == ["OK", "OK", "OK"]
    assert checks["dead rows"]["detail"] == "under 20% in every table of 10,000 rows or more"


def test_doctor_names_a_lock_queued_behind_a_long_transaction_and_what_it_waits_for(
    linea: CliRun, db: Database, direct_database_url: URL
) -> None:
    """A deploy's ALTER queued behind a long transaction blocks every reader after it (pghero#444):
    the blocked checks name both sessions."""
    import threading

    from tests.harness import wait_until

    with psycopg.connect(plain_url(direct_database_url)) as reader, psycopg.connect(plain_url(direct_database_url)) as deploy:
        reader.execute("SELECT count(*) FROM users")  # its transaction stays open, holding ACCESS SHARE
        long_pid = reader.execute("SELECT pg_backend_pid()").fetchone()[0]
        deploy_pid = deploy.execute("SELECT pg_backend_pid()").fetchone()[0]
        queued = threading.Thread(target=deploy.execute, args=("LOCK TABLE users IN ACCESS EXCLUSIVE MODE",))
        queued.start()
        wait_until(
            lambda: db.scalar("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid", pid=deploy_pid) == "Lock",
            what="the deploy's lock queued",
        )
        checks = linea("db", "doctor", "--json", exit_code=5).json
        reader.commit()
        queued.join()
        deploy.commit()
    blocked = {check["check"]: check["detail"] for check in checks if check["status"] == "UNKNOWN"}
    assert sorted(blocked) == sorted(
        ["data model", "columns linea can fill", "indexes present", "indexes valid", "unused indexes", "table sizes"]
    )
    assert set(blocked.values()) == {
        f"blocked: waited 200ms for a lock: pid {deploy_pid} waits for ACCESS EXCLUSIVE on users, behind pid {long_pid}"
    }
