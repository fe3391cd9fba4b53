"""Facts about the database for `db status` and `db doctor`, and the reset that rebuilds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from linea_cli.db import guard, migrate
from linea_cli.db.catalog import BASELINE_ADOPTED, Catalog, read_catalog
from linea_cli.db.engine import MINIMUM_SERVER_VERSION, Database, server_version_num
from linea_cli.db.indexes import DATA_MODEL_INDEXES, LINEA_INDEXES
from linea_cli.db.models import TABLES_IN_DEPENDENCY_ORDER
from linea_cli.db.platform_columns import unfillable_columns
from linea_cli.errors import PermissionDenied, shown

if TYPE_CHECKING:
    from sqlmodel import Session

OK, WARN, FAIL = "OK", "WARN", "FAIL"  # upper case, like every enum value linea prints


def schema_owner(catalog: Catalog) -> dict[str, Any]:
    """Who made the platform's tables, and what linea keeps in the database."""
    prisma = catalog.prisma_migrations
    if catalog.baseline == BASELINE_ADOPTED:
        owner = "prisma (adopted by linea)"
    elif catalog.baseline is not None or catalog.version_in_public:
        owner = "linea"
    elif catalog.has_platform_tables:
        owner = "prisma (not adopted yet)" if prisma else "unknown (not adopted yet)"
    else:
        owner = "none"
    return {
        "schema_owner": owner,
        "prisma_migrations": prisma[0] if prisma else None,
        "last_prisma_migration": prisma[1] if prisma else None,
    }


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
    with database.connect() as connection:
        version = connection.execute(text("SHOW server_version")).scalar_one()
        counts = row_counts(connection)
        catalog = read_catalog(connection)
        unfillable = unfillable_columns(connection)
    current = catalog.revision
    head = migrate.head_revision()
    pending = migrate.pending_revisions(current) if current in migrate.known_revisions() else []
    return {
        "url": database.display_url,
        "mode": "embedded" if database.is_embedded else "external",
        "server_version": version,
        **schema_owner(catalog),
        "current_revision": current,
        "head_revision": head,
        "at_head": current == head,
        "pending_migrations": pending,
        "row_counts": counts,
        # NOT NULL columns without a default that the platform added: inserts into them fail.
        "unfillable_columns": unfillable,
    }


@dataclass(frozen=True)
class Check:
    check: str
    status: str
    detail: str


def doctor(database: Database) -> list[Check]:
    """Everything a cron job or an admin should know before trusting the database."""
    checks: list[Check] = []
    with database.connect() as connection:
        checks.append(Check("connectivity", OK, f"connected to {database.target}"))
        version = server_version_num(connection)
        checks.append(
            Check(
                "server version",
                OK if version >= MINIMUM_SERVER_VERSION else FAIL,
                f"PostgreSQL {version // 10000}.{version % 10000}" + ("" if version >= MINIMUM_SERVER_VERSION else "; 15+ required"),
            )
        )
        catalog = read_catalog(connection)
        current = catalog.revision
        head = migrate.head_revision()
        checks.append(
            Check(
                "schema revision",
                OK if current == head else FAIL,
                f"at head {head}" if current == head else f"at {current or 'no revision'}, head is {head}: run `linea db upgrade`",
            )
        )
        owner = schema_owner(catalog)
        prisma = (
            f"; Prisma migrations applied: {owner['prisma_migrations']}, the last {owner['last_prisma_migration']}"
            if owner["prisma_migrations"] is not None else ""
        )
        checks.append(Check("schema owner", OK, f"made by {owner['schema_owner']}{prisma}; linea's revision {current or 'none'}"))
        if catalog.has_platform_tables:
            from linea_cli.db.platform import compare_with_data_model

            comparison = compare_with_data_model(connection)
            # Unfillable columns have a check of their own, below.
            problems = [problem for problem in comparison.problems if problem not in comparison.unfillable]
            checks.append(
                Check(
                    "data model",
                    FAIL if problems else OK,
                    "; ".join(problems) if problems
                    else "tables, columns, enums and keys match" + (f" ({'; '.join(comparison.notes)})" if comparison.notes else ""),
                )
            )
        checks.append(_unfillable_check(connection))
        checks.extend(_index_checks(connection, catalog))
        checks.extend(_guard_checks(connection, catalog))
        checks.append(_import_check(connection))
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


def _import_check(connection: Connection) -> Check:
    """Unfinished `waitlist import`s (linea_cli.services.import_journal): a journal row no running
    linea holds is an import stopped halfway (kill -9, a lost connection), its entries partly written."""
    from linea_cli.services.import_journal import JOURNAL_EXISTS, LOCK_KEY

    if not connection.execute(text(JOURNAL_EXISTS)).scalar():
        return Check("unfinished imports", OK, "none")
    rows = connection.execute(text(
        f"SELECT event_slug, source, started_at, written, to_write, pg_try_advisory_xact_lock({LOCK_KEY.format('id')}) "
        "AS abandoned FROM linea.imports ORDER BY started_at, id"
    )).all()
    abandoned = [row for row in rows if row.abandoned]
    running = len(rows) - len(abandoned)
    if not abandoned:
        return Check("unfinished imports", OK, "none" + (f" ({running} running)" if running else ""))
    detail = "; ".join(
        f"into {shown(row.event_slug)} from {shown(row.source)} started {row.started_at:%Y-%m-%d %H:%M:%S} UTC "
        f"({row.written} of its {row.to_write} rows written)"
        for row in abandoned
    )
    return Check(
        "unfinished imports", FAIL,
        f"{detail}: `linea waitlist import EVENT FILE --resume` with the same file finishes it; "
        "any other `linea waitlist import` into that event undoes it",
    )


def _unfillable_check(connection: Connection) -> Check:
    """A NOT NULL column without a default that linea does not know fails every insert linea makes
    into its table (`waitlist add`, `waitlist import`, `users create`...): a failure, not a warning."""
    found = unfillable_columns(connection)
    return Check(
        "columns linea can fill",
        FAIL if found else OK,
        f"NOT NULL without a default, unknown to linea (inserts into these tables fail with exit 5): {', '.join(found)}; "
        "give each a default in a platform migration" if found
        else "every NOT NULL column of linea's tables is one linea fills or has a default",
    )


def _index_checks(connection: Connection, catalog: Catalog) -> list[Check]:
    """The data model's indexes and linea's, each counted by its definition, not its name."""
    wanted = [*DATA_MODEL_INDEXES, *(spec for spec in LINEA_INDEXES if spec not in DATA_MODEL_INDEXES)]
    missing = [spec.name for spec in wanted if catalog.equivalent(spec) is None]
    invalid = sorted(index.name for index in catalog.indexes.values() if not index.valid)
    scans = dict(
        connection.execute(
            text("SELECT indexrelname, idx_scan FROM pg_stat_user_indexes WHERE schemaname = 'public'")
        ).all()
    )
    unused = sorted(
        index.name for index in catalog.indexes.values()
        if index.valid and not index.unique and scans.get(index.name, 0) == 0 and catalog.owns_index(index.name)
    )
    return [
        Check(
            "indexes present",
            FAIL if missing else OK,
            f"missing (run `linea db upgrade`): {', '.join(missing)}" if missing
            else f"all {len(wanted)} data-model and linea indexes exist, each once by definition",
        ),
        Check(
            "indexes valid",
            FAIL if invalid else OK,
            f"invalid, left by an interrupted build (`linea db upgrade` rebuilds linea's): {', '.join(invalid)}"
            if invalid else "no invalid index",
        ),
        Check(
            "unused indexes",
            WARN if unused else OK,
            f"{len(unused)} of linea's never scanned since statistics were reset: {', '.join(unused)}" if unused
            else "every index of linea's has been used",
        ),
    ]


def _guard_checks(connection: Connection, catalog: Catalog) -> list[Check]:
    """The audit log's append-only triggers (once linea's revision has them), and PUBLIC's
    privileges on the platform's tables and linea's: what a restored archive or a stray GRANT breaks."""
    guarded = migrate.includes_revision(catalog.revision, guard.REVISION)
    state = guard.read_state(connection, guarded=guarded)
    checks = []
    if guarded and catalog.has_platform_tables:
        problems = state.guard_problems
        checks.append(
            Check(
                "audit log append-only",
                FAIL if problems else OK,
                f"{'; '.join(problems)}: run `linea db upgrade` (it recreates them)" if problems
                else "triggers refuse UPDATE, DELETE and TRUNCATE on audit_logs",
            )
        )
    public = [f"{table} ({', '.join(privileges)})" for table, privileges in state.public.items()]
    checks.append(
        Check(
            "public privileges",
            FAIL if public else OK,
            f"every role (PUBLIC) may use {'; '.join(public)}: run `linea db upgrade` (it revokes them)" if public
            else "PUBLIC holds no privilege on the platform's tables or linea's",
        )
    )
    return checks


def reset_schema(database: Database, *, locks: migrate.LockPolicy | None = None) -> None:
    """Drop everything in the public schema and linea's, and build it again at head.

    Never on a database whose tables the platform made: linea does not drop what it did not create.
    """
    with database.engine.begin() as connection:
        catalog = read_catalog(connection)
        if catalog.adopted or (catalog.has_platform_tables and catalog.baseline is None and not catalog.version_in_public):
            raise PermissionDenied(
                f"refusing to reset {database.target}: its tables belong to the platform (Prisma Migrate), not to linea",
                hint="linea never drops the platform's tables; use the platform's own tooling (prisma migrate reset)",
            )
        connection.execute(text("DROP SCHEMA IF EXISTS linea CASCADE"))
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(database, "head", locks=locks)


def record_restore(
    session: Session, *, actor_reference: str | None, archive: str, tables: dict[str, int], foreign: list[str] | None = None
) -> bool:
    """One audit row in the restored database saying it was restored, from which archive, by whom.

    The restore replaced the audit log with the archive's, which ends before everything the
    restore discarded: this row is the log's only trace of that. The acting user is linked when
    the restored data has them; otherwise the row names the reference they were given by.
    `foreign` names the objects linea did not make that the restore brought back as asked
    (--include-foreign-objects), by kind. False when the restored database has no audit log to write to.
    """
    from linea_cli.services.actors import resolve_actor
    from linea_cli.services.audit_log import AuditAction, record

    if not session.execute(text("SELECT to_regclass('public.audit_logs') IS NOT NULL")).scalar():
        return False
    details: dict[str, Any] = {"archive": archive, "rows": sum(tables.values()), "tables": len(tables)}
    if foreign:
        details["foreign_objects"] = foreign
    try:
        actor = resolve_actor(session, actor_reference)
    except PermissionDenied:
        actor = None
        details["actor_reference"] = actor_reference
    name = session.execute(text("SELECT current_database()")).scalar_one()
    record(session, action=AuditAction.RESTORE, resource="Database", resource_id=name, actor=actor, details=details)
    return True
