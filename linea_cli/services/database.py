"""Facts about the database for `db status` and `db doctor`, and the reset that rebuilds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from linea_cli.db import migrate
from linea_cli.db.engine import MINIMUM_SERVER_VERSION, Database, server_version_num
from linea_cli.db.models import TABLES_IN_DEPENDENCY_ORDER

OK, WARN, FAIL = "ok", "warn", "fail"


def expected_index_names() -> dict[str, str]:
    """{index name: table} for every index the models declare (unique and performance)."""
    names: dict[str, str] = {}
    for table in SQLModel.metadata.sorted_tables:
        for index in table.indexes:
            names[str(index.name)] = table.name
    return names


def _existing_tables(connection: Connection) -> set[str]:
    rows = connection.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    ).scalars()
    return set(rows)


def row_counts(connection: Connection) -> dict[str, int | None]:
    existing = _existing_tables(connection)
    counts: dict[str, int | None] = {}
    for table in TABLES_IN_DEPENDENCY_ORDER:
        counts[table] = (
            connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one() if table in existing else None
        )
    return counts


def status(database: Database) -> dict[str, Any]:
    with database.engine.connect() as connection:
        version = connection.execute(text("SHOW server_version")).scalar_one()
        counts = row_counts(connection)
    current = migrate.current_revision(database)
    head = migrate.head_revision()
    pending = migrate.pending_revisions(current) if current in migrate.known_revisions() else []
    return {
        "url": database.display_url,
        "mode": "embedded" if database.is_embedded else "external",
        "server_version": version,
        "current_revision": current,
        "head_revision": head,
        "at_head": current == head,
        "pending_migrations": pending,
        "row_counts": counts,
    }


@dataclass(frozen=True)
class Check:
    check: str
    status: str
    detail: str


def doctor(database: Database) -> list[Check]:
    """Everything a cron job or an admin should know before trusting the database."""
    checks: list[Check] = []
    with database.engine.connect() as connection:
        checks.append(Check("connectivity", OK, f"connected to {database.target}"))
        version = server_version_num(connection)
        checks.append(
            Check(
                "server version",
                OK if version >= MINIMUM_SERVER_VERSION else FAIL,
                f"PostgreSQL {version // 10000}.{version % 10000}" + ("" if version >= MINIMUM_SERVER_VERSION else "; 15+ required"),
            )
        )
        current = migrate.current_revision(database)
        head = migrate.head_revision()
        checks.append(
            Check(
                "schema revision",
                OK if current == head else FAIL,
                f"at head {head}" if current == head else f"at {current or 'no revision'}, head is {head}: run `linea db upgrade`",
            )
        )
        checks.extend(_index_checks(connection))
        existing = _existing_tables(connection)
        if "sessions" in existing:
            expired = connection.execute(
                text("SELECT count(*) FROM sessions WHERE expires_at < (now() AT TIME ZONE 'UTC')")
            ).scalar_one()
            checks.append(
                Check(
                    "expired sessions",
                    OK if expired == 0 else WARN,
                    f"{expired} expired" + (": run `linea sessions purge`" if expired else ""),
                )
            )
        sizes = connection.execute(
            text(
                "SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(:tables) "
                "ORDER BY pg_total_relation_size(c.oid) DESC"
            ),
            {"tables": list(TABLES_IN_DEPENDENCY_ORDER)},
        ).all()
        if sizes:
            checks.append(Check("table sizes", OK, ", ".join(f"{name} {size}" for name, size in sizes)))
    return checks


def _index_checks(connection: Connection) -> list[Check]:
    expected = expected_index_names()
    rows = connection.execute(
        text(
            "SELECT i.relname AS name, x.indisvalid AS valid, coalesce(s.idx_scan, 0) AS scans "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_namespace n ON n.oid = i.relnamespace "
            "LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = x.indexrelid "
            "WHERE n.nspname = current_schema()"
        )
    ).mappings().all()
    found = {row["name"]: row for row in rows}
    missing = sorted(set(expected) - set(found))
    invalid = sorted(name for name in expected if name in found and not found[name]["valid"])
    unused = sorted(
        name for name in expected if name in found and found[name]["scans"] == 0 and not name.endswith("_pkey")
    )
    checks = [
        Check(
            "indexes present",
            FAIL if missing else OK,
            f"missing: {', '.join(missing)}" if missing else f"all {len(expected)} expected indexes exist",
        ),
        Check(
            "indexes valid",
            FAIL if invalid else OK,
            f"invalid (rebuild with REINDEX): {', '.join(invalid)}" if invalid else "no invalid index",
        ),
    ]
    checks.append(
        Check(
            "unused indexes",
            WARN if unused else OK,
            (f"{len(unused)} never scanned since statistics were reset: {', '.join(unused)}" if unused else "every index has been used"),
        )
    )
    return checks


def reset_schema(database: Database, *, locks: migrate.LockPolicy | None = None) -> None:
    """Drop everything in the public schema and build it again at head."""
    with database.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(database, "head", locks=locks)
