"""The DDL linea's migrations plan against a catalog snapshot, and how a migration script runs it.

Migration scripts call `apply(...)` with statements planned here. Planning reads and updates the
snapshot that `linea_cli.db.migrate` put in the Alembic config, so `db upgrade --sql` prints what
`db upgrade` would run on that very database: an index a database already has by definition is
not planned, one on a table holding rows is built CONCURRENTLY outside a transaction, and an
invalid leftover of an interrupted build is dropped and built again.
"""

from __future__ import annotations

from dataclasses import dataclass

from linea_cli.db.catalog import BASELINE_ADOPTED, BASELINE_CREATED, OBJECTS_TABLE, Catalog
from linea_cli.db.indexes import IndexSpec
from linea_cli.errors import DatabaseUnavailable

OUTSIDE_TRANSACTION_MARK = "-- runs outside a transaction (CONCURRENTLY):"

CREATE_OBJECTS_TABLE = f"""
    CREATE TABLE IF NOT EXISTS {OBJECTS_TABLE} (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (kind, name)
    )"""


@dataclass(frozen=True)
class Statement:
    sql: str
    outside_transaction: bool = False


def _quoted_definition(spec: IndexSpec) -> str:
    """`btree (lower(email), event_id)` -> `USING btree (lower(email), event_id)` on the table."""
    return f'public."{spec.table}" USING {spec.definition}'


def record_object(kind: str, name: str) -> Statement:
    return Statement(f"INSERT INTO {OBJECTS_TABLE} (kind, name) VALUES ('{kind}', '{name}') ON CONFLICT DO NOTHING")


def forget_object(kind: str, name: str) -> Statement:
    return Statement(f"DELETE FROM {OBJECTS_TABLE} WHERE kind = '{kind}' AND name = '{name}'")


def plan_index(catalog: Catalog, spec: IndexSpec) -> list[Statement]:
    """Statements that leave `spec` satisfied, recording the index as linea's when linea builds it."""
    named = catalog.indexes.get(spec.name)
    if named and named.valid and named.table == spec.table and named.definition == spec.definition:
        return []
    mine = catalog.owns_index(spec.name)
    if not mine and catalog.equivalent(spec):
        return []  # the platform's own index on the same columns does the job
    if named and not mine:
        raise DatabaseUnavailable(
            f"an index named {spec.name} exists on {named.table} ({named.definition}) and linea did not create it; "
            f"linea wants {spec.table} ({spec.definition}) under that name",
            hint="rename or drop that index, then run `linea db upgrade` again",
        )
    concurrently = catalog.holds_rows(spec.table)
    statements = [] if mine else [record_object("index", spec.name)]
    keyword = " CONCURRENTLY" if concurrently else ""
    if named:  # an invalid leftover of an interrupted build, or an older definition of linea's
        statements.append(Statement(f'DROP INDEX{keyword} IF EXISTS public."{spec.name}"', concurrently))
    statements.append(
        Statement(f'CREATE {"UNIQUE " if spec.unique else ""}INDEX{keyword} "{spec.name}" ON {_quoted_definition(spec)}', concurrently)
    )
    catalog.objects.add(("index", spec.name))
    catalog.planned_index(spec)
    return statements


def plan_index_drop(catalog: Catalog, spec: IndexSpec) -> list[Statement]:
    """Drop `spec` only if linea built it: an index of the platform's is never touched."""
    if not catalog.owns_index(spec.name):
        return []
    concurrently = catalog.holds_rows(spec.table)
    keyword = " CONCURRENTLY" if concurrently else ""
    catalog.indexes.pop(spec.name, None)
    catalog.objects.discard(("index", spec.name))
    return [
        Statement(f'DROP INDEX{keyword} IF EXISTS public."{spec.name}"', concurrently),
        forget_object("index", spec.name),
    ]


def baseline_marker(created: bool) -> Statement:
    return record_object("baseline", BASELINE_CREATED if created else BASELINE_ADOPTED)


# --- inside a migration script ------------------------------------------------------------


def catalog() -> Catalog:
    """The snapshot linea_cli.db.migrate handed to this run."""
    from alembic import op

    snapshot = op.get_context().config.attributes.get("catalog")  # type: ignore[union-attr]
    if snapshot is None:
        raise DatabaseUnavailable("linea's migrations must be run through `linea db upgrade/downgrade`")
    return snapshot


def begin() -> None:
    """First statement of every migration: this transaction's lock_timeout (linea retries on timeout)."""
    from alembic import op

    op.execute(f"SET LOCAL lock_timeout = '{_lock_timeout_ms()}ms'")


def apply(statements: list[Statement] | list[str]) -> None:
    """Run planned statements in order; those outside a transaction go in one autocommit block each run."""
    from alembic import op

    context = op.get_context()
    pending: list[Statement] = [s if isinstance(s, Statement) else Statement(s) for s in statements]
    index = 0
    while index < len(pending):
        statement = pending[index]
        if not statement.outside_transaction:
            op.execute(statement.sql)
            index += 1
            continue
        with context.autocommit_block():
            if context.as_sql:
                context.impl.static_output(OUTSIDE_TRANSACTION_MARK)
            op.execute(f"SET lock_timeout = '{_lock_timeout_ms()}ms'")
            while index < len(pending) and pending[index].outside_transaction:
                op.execute(pending[index].sql)
                index += 1
        begin()  # the autocommit block ended by opening a new transaction


def _lock_timeout_ms() -> int:
    from alembic import op

    return int(op.get_context().config.attributes.get("lock_timeout_ms", 2000))  # type: ignore[union-attr]
