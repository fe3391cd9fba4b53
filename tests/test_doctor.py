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
    with psycopg.connect(plain_url(platform_url)) as holder:  # a deploy's migration, mid-transaction
        holder.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
        pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
        # A process of its own: were it to wait on the lock for good, the guard would end it, failing the test.
        done = run_linea_process(("db", "doctor", "--json"), env=adopted.env, timeout=600)
    assert done.returncode == 5, done.stderr
    checks = json.loads(done.stdout)
    blocked = [check["check"] for check in checks if check["status"] == "UNKNOWN"]
    expected = BLOCKED_BY_PLATFORM_LOCKS + (BLOCKED_BY_LINEA_LOCKS if "linea" in schemas else [])
    assert sorted(blocked) == sorted(expected)
    for check in checks:
        if check["status"] == "UNKNOWN":
            assert check["detail"].startswith(f"blocked: waited 200ms for a lock: pid {pid} holds ACCESS EXCLUSIVE on ")
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
