"""What a database holds before linea changes it: the platform's tables and indexes, linea's bookkeeping.

Migrations plan from this snapshot instead of asking the database statement by statement, so
that `db upgrade --sql` prints exactly the plan `db upgrade` runs: every step that creates or
drops something updates the snapshot as it is planned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

from linea_cli.db.indexes import IndexSpec
from linea_cli.db.revision import VERSION_TABLES

# linea's own schema: its version table, its bookkeeping and its functions, out of the platform's
# `public`, where Prisma would see tables it does not know.
LINEA_SCHEMA = "linea"
VERSION_TABLE = "alembic_version"
OBJECTS_TABLE = f"{LINEA_SCHEMA}.objects"
PLATFORM_SCHEMA = "public"
PLATFORM_TABLES = ("users", "venues", "events", "waitlist_entries", "sessions", "audit_logs")  # in dependency order

# linea.objects rows: ('baseline', 'created' | 'adopted') says who made the platform's tables;
# ('index', name) lists each index linea built, the only ones a downgrade may drop.
BASELINE_CREATED = "created"
BASELINE_ADOPTED = "adopted"


@dataclass
class IndexInfo:
    name: str
    table: str
    definition: str
    unique: bool
    valid: bool


@dataclass
class Catalog:
    tables: dict[str, bool] = field(default_factory=dict)  # platform table -> holds rows
    indexes: dict[str, IndexInfo] = field(default_factory=dict)
    public_functions: set[str] = field(default_factory=set)
    linea_functions: set[str] = field(default_factory=set)
    triggers: set[tuple[str, str]] = field(default_factory=set)
    has_linea_schema: bool = False
    version_in_linea: bool = False
    version_in_public: bool = False
    objects: set[tuple[str, str]] = field(default_factory=set)
    prisma_migrations: tuple[int, str | None] | None = None
    revision: str | None = None  # linea's, from its version table

    @property
    def has_platform_tables(self) -> bool:
        return bool(self.tables)

    @property
    def baseline(self) -> str | None:
        return next((name for kind, name in self.objects if kind == "baseline"), None)

    @property
    def adopted(self) -> bool:
        return self.baseline == BASELINE_ADOPTED

    def holds_rows(self, table: str) -> bool:
        return self.tables.get(table, False)

    def equivalent(self, spec: IndexSpec) -> IndexInfo | None:
        """A valid index that does what `spec` asks, whatever its name (a unique one counts too)."""
        return next(
            (
                index
                for index in self.indexes.values()
                if index.valid and index.table == spec.table and index.definition == spec.definition
            ),
            None,
        )

    def owns_index(self, name: str) -> bool:
        return ("index", name) in self.objects

    def planned_index(self, spec: IndexSpec) -> None:
        self.indexes[spec.name] = IndexInfo(spec.name, spec.table, spec.definition, spec.unique, True)

    def planned_table(self, table: str) -> None:
        self.tables[table] = False


def read_catalog(connection: Connection, *, locking: bool = True) -> Catalog:
    """The snapshot. With `locking=False`, nothing that locks a platform table is read (another
    session may hold one locked, `db doctor` must not wait): every table counts as empty, and the
    indexes (pg_get_indexdef locks the table) and `prisma_migrations` (`read_prisma_migrations`)
    are left out; catalogs and linea's own tables only."""

    def rows(query: str, **params: object) -> list:
        return list(connection.execute(text(query), params))

    catalog = Catalog()
    public_tables = {name for (name,) in rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    for table in PLATFORM_TABLES:
        if table in public_tables:
            catalog.tables[table] = locking and bool(
                connection.execute(text(f'SELECT EXISTS (SELECT 1 FROM public."{table}")')).scalar()
            )
    catalog.version_in_public = VERSION_TABLE in public_tables
    for name, table, definition, unique, valid in () if not locking else rows(
        "SELECT i.relname, t.relname, regexp_replace(pg_get_indexdef(x.indexrelid), '^.*? USING ', ''), "
        "x.indisunique, x.indisvalid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = 'public' AND NOT x.indisprimary"
    ):
        catalog.indexes[name] = IndexInfo(name, table, definition, unique, valid)
    for schema, name in rows(
        "SELECT n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE (n.nspname = 'public' AND p.proname LIKE 'linea%') OR n.nspname = 'linea'"
    ):
        (catalog.linea_functions if schema == LINEA_SCHEMA else catalog.public_functions).add(name)
    catalog.triggers = {
        (table, name)
        for table, name in rows(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT t.tgisinternal"
        )
    }
    catalog.has_linea_schema = bool(
        connection.execute(text("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'linea')")).scalar()
    )
    if catalog.has_linea_schema:
        linea_tables = {name for (name,) in rows("SELECT tablename FROM pg_tables WHERE schemaname = 'linea'")}
        catalog.version_in_linea = VERSION_TABLE in linea_tables
        if "objects" in linea_tables:
            catalog.objects = {(kind, name) for kind, name in rows(f"SELECT kind, name FROM {OBJECTS_TABLE}")}
    if locking and "_prisma_migrations" in public_tables:
        catalog.prisma_migrations = read_prisma_migrations(connection)
    catalog.revision = current_linea_revision(connection)
    return catalog


def read_prisma_migrations(connection: Connection) -> tuple[int, str | None] | None:
    """How many Prisma migrations were applied, and the last one's name (None: no Prisma table)."""
    if not connection.execute(text("SELECT to_regclass('public._prisma_migrations') IS NOT NULL")).scalar():
        return None
    count, last = connection.execute(
        text(
            "SELECT count(*), (SELECT migration_name FROM public._prisma_migrations "
            "WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY finished_at DESC LIMIT 1) "
            "FROM public._prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL"
        )
    ).one()
    return (int(count), last)


def current_linea_revision(connection: Connection) -> str | None:
    """linea's revision, from its version table in the linea schema (or, before the move, public)."""
    for qualified in VERSION_TABLES:
        if connection.execute(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": qualified}).scalar():
            return connection.execute(text(f"SELECT version_num FROM {qualified}")).scalar()
    return None
