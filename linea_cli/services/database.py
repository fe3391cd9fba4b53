"""The database as every command and script reaches it: opened and checked (`open_database`, the
library's front door and the commands' one way in), its facts for `db status` and `db doctor`,
and the reset that rebuilds it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection

from linea_cli.config import Settings, load_settings
from linea_cli.db import guard
from linea_cli.db import migrate as _migrate
from linea_cli.db.catalog import (
    BASELINE_ADOPTED,
    PLATFORM_TABLES,
    Catalog,
    read_catalog,
    read_prisma_migrations,
)
from linea_cli.db.engine import MINIMUM_SERVER_VERSION, Database, server_version_num
from linea_cli.db.indexes import DATA_MODEL_INDEXES, LINEA_INDEXES
from linea_cli.errors import InvalidInput, PermissionDenied, parameter, shown
from linea_cli.services.monitoring import FAIL, OK, UNKNOWN, WARN, Check  # doctor's, re-exported

if TYPE_CHECKING:
    from sqlmodel import Session

    from linea_cli.services.actors import Actor



def open_database(
    url: str | URL | None = None,
    *,
    migrate: bool = False,
    name: str = "script",
    settings: Settings | None = None,
    for_migrations: bool = False,
    check_schema: bool = True,
    on_start: Callable[[URL], None] = lambda url: None,
) -> Database:
    """linea's database, checked the way every command checks it.

    `url` is a `postgresql://` URL; without one, what `settings` name (by default the database the
    command line would use: `LINEA_DATABASE_URL`, a profile (`linea_cli.profiles`), else the server libpq's
    environment names (PGSERVICE, PGHOST, ...; `linea_cli.db.libpq_environment`), else the
    embedded server, started on demand; `on_start` hears when it starts). The server must be PostgreSQL 15 or newer
    and the schema at linea's newest revision (`ensure_schema`; not checked with
    `check_schema=False`, for a command that migrates or inspects whatever is there). `name` shows
    in pg_stat_activity as `linea/NAME`; `for_migrations` prefers LINEA_MIGRATION_DATABASE_URL.
    """
    if settings is None:
        raw = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        if raw is not None and not raw.strip():
            raise InvalidInput("the database URL is empty", hint="give a postgresql:// URL, or none for the configured database")
        # A URL given means that database for everything, migrations included, as --database-url.
        settings = load_settings(database_url=raw, migration_database_url=raw)
    for setting, value in (
        ("LINEA_DATABASE_URL", settings.database_url), ("LINEA_MIGRATION_DATABASE_URL", settings.migration_database_url)
    ):
        # Most likely a script's unset variable: the embedded server instead would be the wrong database.
        if value is not None and not value.strip():
            raise InvalidInput(f"{setting} is empty", hint="give a postgresql:// URL, or unset it to use the embedded server")
    database = Database.open(settings, command=name, for_migrations=for_migrations, on_start=on_start)
    if check_schema:
        try:
            ensure_schema(database, migrate=migrate)
        except BaseException:
            database.close()
            raise
    return database


def ensure_schema(database: Database, *, migrate: bool = False) -> str | None:
    """Refuse a database linea cannot use now (older than PostgreSQL 15, or not at the newest
    revision); returns the revision it was migrated to, if it was.

    The embedded server's database is migrated on the spot; any other only with `migrate=True`
    (what `linea db upgrade` does): linea never migrates a server of someone else's implicitly.
    """
    return _migrate.check_schema(database, migrate=migrate or database.is_embedded, stdout=sys.stderr)


def schema_is_current(session: Session, database: Database) -> bool:
    """`ensure_schema`'s check in a unit of work of the command's own (no error: False when behind)."""
    return _migrate.at_head(session.connection(), database.target)


def require_admin(database: Database, actor_reference: str | None, action: str) -> None:
    """Commands that change the schema: the system (no acting user) or an ADMIN, checked before anything runs."""
    from linea_cli.services.actors import require_admin as require_admin_actor

    require_admin_actor(acting_user(database, actor_reference), action)


def acting_user(database: Database, actor_reference: str | None) -> Actor | None:
    """The live user `actor_reference` names (None: the system), read in a unit of work of its own;
    on a database without a users table yet nobody can be checked: refused, not taken for the system."""
    from linea_cli.services.actors import resolve_actor

    if actor_reference is None:
        return None
    with database.unit_of_work() as session:
        if not session.execute(text("SELECT to_regclass('public.users') IS NOT NULL")).scalar():
            raise PermissionDenied(
                f"acting user {actor_reference!r} cannot be checked: {database.target} has no users table yet",
                hint=f"run it without {parameter('actor')} / LINEA_ACTOR, as the system",
            )
        return resolve_actor(session, actor_reference)


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
    for table in PLATFORM_TABLES:
        counts[table] = (
            connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one() if table in existing else None
        )
    return counts


def status(database: Database) -> dict[str, Any]:
    from linea_cli.db.platform_columns import unfillable_columns  # the data model: not for opening a database

    with database.connect() as connection:
        version = connection.execute(text("SHOW server_version")).scalar_one()
        # The server's own side of the connection: behind PgBouncer, the pooler's connection to
        # it (not what libpq connected to, `host`/`port`); none on a Unix socket.
        server_address = connection.execute(
            text("SELECT host(inet_server_addr()) || ':' || inet_server_port()")
        ).scalar_one()
        counts = row_counts(connection)
        catalog = read_catalog(connection)
        unfillable = unfillable_columns(connection)
    current = catalog.revision
    head = _migrate.head_revision()
    pending = _migrate.pending_revisions(current) if current in _migrate.known_revisions() else []
    connected = database.identify()  # known by now: the reads above asked the server
    return {
        "url": database.display_url,
        # Where libpq really connected, whatever the URL left to a service or the PG* variables.
        "database": connected.database,
        "host": connected.host,
        "port": connected.port,
        "server_address": server_address,
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


def doctor(database: Database) -> list[Check]:
    """Everything a cron job or an admin should know before trusting the database.

    Read as monitoring reads (`services.monitoring`): read-only, never waiting long on a lock, each
    check on its own, so that one another session's lock blocks is UNKNOWN, saying who holds the
    lock, and the others still report.
    """
    from linea_cli.services.monitoring import (
        Blocked,
        checked,
        health_checks,
        monitoring_connection,
        next_transaction,
        probe,
    )

    checks: list[Check] = []
    with monitoring_connection(database) as connection:  # its first statement asks which database this is
        checks.append(Check("connectivity", OK, f"connected to {database.target}"))
        version = server_version_num(connection)
        checks.append(
            Check(
                "server version",
                OK if version >= MINIMUM_SERVER_VERSION else FAIL,
                f"PostgreSQL {version // 10000}.{version % 10000}" + ("" if version >= MINIMUM_SERVER_VERSION else "; 15+ required"),
            )
        )
        # Catalogs and linea's own tables only: a lock on the platform's tables cannot stop it.
        catalog = probe(connection, lambda c: read_catalog(c, locking=False))
        next_transaction(connection)
        if isinstance(catalog, Blocked):
            checks.extend(
                Check(name, UNKNOWN, catalog.reason)
                for name in ("schema revision", "schema owner", "public privileges")
            )
        else:
            current = catalog.revision
            head = _migrate.head_revision()
            checks.append(
                Check(
                    "schema revision",
                    OK if current == head else FAIL,
                    f"at head {head}" if current == head else f"at {current or 'no revision'}, head is {head}: run `linea db upgrade`",
                )
            )
            checks.extend(checked(connection, ("schema owner",), lambda c: _owner_check(c, catalog)))
        # These read definitions through pg_get_expr / pg_get_indexdef, which lock each table.
        checks.extend(checked(connection, ("data model",), _data_model_check))
        checks.extend(checked(connection, ("columns linea can fill",), _unfillable_check))
        checks.extend(checked(
            connection, ("indexes present", "indexes valid", "unused indexes"), lambda c: _index_checks(c, read_catalog(c))
        ))
        if not isinstance(catalog, Blocked):
            guarded = _migrate.includes_revision(catalog.revision, guard.REVISION) and catalog.has_platform_tables
            checks.extend(checked(
                connection, ("audit log append-only", "public privileges") if guarded else ("public privileges",),
                lambda c: _guard_checks(c, catalog),
            ))
        checks.extend(checked(connection, ("unfinished imports",), _import_check))
        checks.extend(checked(connection, ("expired sessions",), _expired_sessions_check))
        checks.extend(health_checks(connection))
        checks.extend(checked(connection, ("table sizes",), _sizes_check))
    return checks


def _owner_check(connection: Connection, catalog: Catalog) -> Check:
    from dataclasses import replace

    owner = schema_owner(replace(catalog, prisma_migrations=read_prisma_migrations(connection)))
    prisma = (
        f"; Prisma migrations applied: {owner['prisma_migrations']}, the last {owner['last_prisma_migration']}"
        if owner["prisma_migrations"] is not None else ""
    )
    return Check("schema owner", OK, f"made by {owner['schema_owner']}{prisma}; linea's revision {catalog.revision or 'none'}")


def _data_model_check(connection: Connection) -> Check | None:
    """The platform's tables, columns, enums and keys against the data model (none yet: no check)."""
    from linea_cli.db.platform import compare_with_data_model

    if not _existing_tables(connection) & set(PLATFORM_TABLES):
        return None
    comparison = compare_with_data_model(connection)
    # Unfillable columns have a check of their own, below.
    problems = [problem for problem in comparison.problems if problem not in comparison.unfillable]
    return Check(
        "data model",
        FAIL if problems else OK,
        "; ".join(problems) if problems
        else "tables, columns, enums and keys match" + (f" ({'; '.join(comparison.notes)})" if comparison.notes else ""),
    )


def _expired_sessions_check(connection: Connection) -> Check | None:
    if "sessions" not in _existing_tables(connection):
        return None
    expired = connection.execute(
        text("SELECT count(*) FROM sessions WHERE expires_at < (now() AT TIME ZONE 'UTC')")
    ).scalar_one()
    return Check("expired sessions", OK if expired == 0 else WARN, f"{expired} expired" + (": run `linea sessions purge`" if expired else ""))


def _sizes_check(connection: Connection) -> Check | None:
    sizes = connection.execute(
        text(
            "SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(:tables) "
            "ORDER BY pg_total_relation_size(c.oid) DESC"
        ),
        {"tables": list(PLATFORM_TABLES)},
    ).all()
    return Check("table sizes", OK, ", ".join(f"{name} {size}" for name, size in sizes)) if sizes else None


def _import_check(connection: Connection) -> Check:
    """Unfinished `waitlist import`s (linea_cli.services.import_journal): a journal row no running
    linea holds is an import stopped halfway (kill -9, a lost connection), its entries partly written."""
    from linea_cli.services.import_journal import JOURNAL_EXISTS, LOCK_KEY

    if not connection.execute(text(JOURNAL_EXISTS)).scalar():
        return Check("unfinished imports", OK, "none")
    # Whether a running linea holds the import's advisory lock, read from pg_locks rather than by
    # trying to take it: a doctor must not, even for a moment, hold the lock a `--resume` takes.
    # A bigint key shows there as its high and low 32 bits (classid, objid), objsubid 1.
    rows = connection.execute(text(
        f"SELECT event_slug, source, started_at, written, to_write, NOT EXISTS (SELECT 1 FROM pg_locks l "
        "WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        f"AND ((l.classid::int8 << 32) | l.objid::int8) = {LOCK_KEY.format('i.id')}) AS abandoned "
        "FROM linea.imports i ORDER BY started_at, id"
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
    from linea_cli.db.platform_columns import unfillable_columns

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
    guarded = _migrate.includes_revision(catalog.revision, guard.REVISION)
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


def reset_schema(database: Database, *, locks: _migrate.LockPolicy | None = None) -> None:
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
    _migrate.upgrade(database, "head", locks=locks)
