"""linea's indexes beyond Prisma's, built without blocking the platform's writers

Adds the data model's `idx_` indexes that no index of the database already satisfies by
definition, and the `lower(email)` indexes behind linea's case-insensitive address lookups
(linea_cli.db.indexes). On a table holding rows an index is built with CREATE INDEX
CONCURRENTLY, outside a transaction, so the platform's inserts never wait on it; an interrupted
build leaves an invalid index, which the next `linea db upgrade` drops and builds again.

It also moves a database made by linea before this revision to today's layout: linea's
functions into the `linea` schema, the data model's names on Prisma's indexes given back to
Prisma (`idx_events_slug` becomes `events_slug_idx`), the duplicate `idx_users_email` and the
`updated_at` triggers (linea sets updated_at itself, as Prisma does) removed.

Revision ID: 5f3c8e1a7b20
Revises: d7ddba488c9c
Create Date: 2026-11-25 15:00:00
"""

from collections.abc import Sequence

from linea_cli.db import ddl
from linea_cli.db.catalog import Catalog
from linea_cli.db.indexes import DATA_MODEL_INDEXES, LINEA_INDEXES, PRISMA_INDEXES

revision: str = "5f3c8e1a7b20"
down_revision: str | None = "d7ddba488c9c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What linea's first layout had in `public` (before this revision).
OLD_UPDATED_AT_TRIGGERS = ("users", "events", "venues", "waitlist_entries", "sessions")
OLD_FUNCTIONS = {
    "linea_audit_logs_append_only": "audit_logs_append_only",
    "linea_audit_logs_no_truncate": "audit_logs_no_truncate",
}


def _move_old_layout(catalog: Catalog) -> list[str | ddl.Statement]:
    """A database made by an older linea: its tables are linea's, its extras move or go."""
    statements: list[str | ddl.Statement] = [ddl.CREATE_OBJECTS_TABLE, ddl.baseline_marker(created=True)]
    catalog.objects.add(("baseline", "created"))
    for old, new in OLD_FUNCTIONS.items():
        if old in catalog.public_functions:
            statements.append(f"ALTER FUNCTION public.{old}() SET SCHEMA linea")
            statements.append(f"ALTER FUNCTION linea.{old}() RENAME TO {new}")
    for table in OLD_UPDATED_AT_TRIGGERS:
        if (table, f"{table}_set_updated_at") in catalog.triggers:
            statements.append(f'DROP TRIGGER "{table}_set_updated_at" ON public."{table}"')
    if "linea_set_updated_at" in catalog.public_functions:
        statements.append("DROP FUNCTION public.linea_set_updated_at()")
    linea_names = {spec.name for spec in LINEA_INDEXES}
    for old in DATA_MODEL_INDEXES:
        if old.name not in catalog.indexes or old.name in linea_names:
            continue
        prisma = next((p for p in PRISMA_INDEXES if not p.unique and (p.table, p.definition) == (old.table, old.definition)), None)
        if prisma and prisma.name not in catalog.indexes:
            statements.append(f'ALTER INDEX public."{old.name}" RENAME TO "{prisma.name}"')
            catalog.indexes[prisma.name] = catalog.indexes.pop(old.name)
            catalog.indexes[prisma.name].name = prisma.name
        else:  # a unique index already serves it (idx_users_email beside users_email_key)
            statements.append(f'DROP INDEX public."{old.name}"')
            catalog.indexes.pop(old.name)
    for spec in LINEA_INDEXES:
        if spec.name in catalog.indexes:
            statements.append(ddl.record_object("index", spec.name))
            catalog.objects.add(("index", spec.name))
    return statements


def upgrade() -> None:
    ddl.begin()
    catalog = ddl.catalog()
    statements: list[str | ddl.Statement] = []
    if catalog.baseline is None:
        statements.extend(_move_old_layout(catalog))
    for spec in LINEA_INDEXES:
        statements.extend(ddl.plan_index(catalog, spec))
    # Bookkeeping first, in this revision's transaction; then every build in one autocommit block.
    ddl.apply(sorted(statements, key=lambda s: isinstance(s, ddl.Statement) and s.outside_transaction))


def downgrade() -> None:
    ddl.begin()
    catalog = ddl.catalog()
    statements: list[ddl.Statement] = []
    for spec in reversed(LINEA_INDEXES):
        statements.extend(ddl.plan_index_drop(catalog, spec))
    ddl.apply(sorted(statements, key=lambda s: not s.outside_transaction))
