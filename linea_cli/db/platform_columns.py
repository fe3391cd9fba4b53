"""What the platform added after linea adopted its database, read from the catalog, never listed.

The platform's Prisma keeps adding columns and tables. Two things follow for linea:
- a column linea does not model on a table linea writes to, NOT NULL and without a default, is one
  linea cannot fill: every insert into that table fails. `unfillable_columns` names them (for
  `db status` and `db doctor`), `refuse_unfillable` stops a command up front, and
  `unfillable_column_error` turns the server's not-null violation on such a column into one line,
  exit 5, wherever an insert hits it;
- a column linea does not model may hold personal data, and a table linea does not model may hold
  rows about a person (a foreign key to `users.id`, or a column holding their address).
  `unknown_columns`, `tables_referencing_users` and `address_columns` find them for export and
  erasure (`services/personal_data.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import linea_cli.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from linea_cli.errors import DatabaseUnavailable

# PostgreSQL's own schemas, and linea's bookkeeping (no data is ever written there).
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "linea")

# How the platform (or an operator) shows that a column holds no personal data, so that erasure
# leaves it and the proof of erasure does not name it:
#   COMMENT ON COLUMN waitlist_entries.source IS 'linea: not personal (the sign-up channel)';
NOT_PERSONAL_MARK = r"\mlinea:\s*not personal\M"

# A default that gives the same value every time: a literal, possibly cast ('en'::text, true, 0,
# ARRAY[]::text[]). Anything else (now(), nextval(...), gen_random_uuid()) gives a new value each time.
_CONSTANT_DEFAULT = re.compile(
    r"""^\(*(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?|true|false|NULL|ARRAY\[\])\)*(?:::[\w" .,()\[\]]+)*$""",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    nullable: bool
    default: str | None  # the default expression as PostgreSQL prints it
    writable: bool  # not generated and not an identity column: an UPDATE may set it
    text_like: bool  # a scalar string type (text, varchar, char, citext, a domain over one)
    personal: bool = True  # until shown otherwise: a column comment saying `linea: not personal`

    @property
    def erasable(self) -> bool:
        """Erasure can empty it: NULL where nullable, else its default."""
        return self.writable and (self.nullable or self.default is not None)

    @property
    def constant_default(self) -> bool:
        return self.default is not None and bool(_CONSTANT_DEFAULT.match(self.default.strip()))


@dataclass(frozen=True)
class PlatformTable:
    """A table linea does not model, as the catalog describes it."""

    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    key: tuple[str, ...]  # primary key columns (none: rows are named by ctid)
    foreign_keys: tuple[str, ...]  # every column in a foreign key: references, not data about anyone
    user_columns: tuple[str, ...] = ()  # single-column foreign keys to users.id
    readable: bool = True  # linea's role may read it (else the proof of erasure says "not verified")

    @property
    def shown(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"

    @property
    def data_columns(self) -> tuple[ColumnInfo, ...]:
        """Columns that are neither its key nor a reference: personal data until shown otherwise."""
        kept = set(self.key) | set(self.foreign_keys)
        return tuple(column for column in self.columns if column.name not in kept and column.personal)


def modelled_columns(table: str) -> frozenset[str]:
    """The columns linea's model declares for one of its tables (none for any other table)."""
    model = SQLModel.metadata.tables.get(table)
    return frozenset(column.name for column in model.columns) if model is not None else frozenset()


def quoted(*names: str) -> str:
    """A (schema-)qualified identifier, quoted; a colon escaped for `sa.text`."""
    return ".".join('"' + name.replace('"', '""').replace(":", "\\:") + '"' for name in names)


def key_text(key: tuple[str, ...]) -> str:
    """SQL: a row's primary key as the row id linea names it by (`a,b` for a composite key)."""
    return "concat_ws(',', " + ", ".join(f"{quoted(k)}::text" for k in key) + ")"


_COLUMNS_SQL = """
SELECT n.nspname AS schema, c.relname AS table, a.attname::text AS name, NOT a.attnotnull AS nullable,
       pg_get_expr(d.adbin, d.adrelid) AS "default",
       a.attidentity = '' AND a.attgenerated = '' AS writable,
       (CASE WHEN t.typtype = 'd' THEN base.typcategory ELSE t.typcategory END) = 'S' AS text_like,
       has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') AS readable,
       coalesce(col_description(c.oid, a.attnum), '') ~* :not_personal AS not_personal
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type base ON base.oid = t.typbasetype
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> ALL(:system) AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY n.nspname, c.relname, a.attnum
"""


def _all_columns(connection: Connection, readable: set[tuple[str, str]] | None = None) -> dict[tuple[str, str], list[ColumnInfo]]:
    """Every table's columns; `readable` collects the tables linea's role may read."""
    tables: dict[tuple[str, str], list[ColumnInfo]] = {}
    params = {"system": list(SYSTEM_SCHEMAS), "not_personal": NOT_PERSONAL_MARK}
    for row in connection.execute(sa.text(_COLUMNS_SQL), params).mappings():
        tables.setdefault((row["schema"], row["table"]), []).append(
            ColumnInfo(row["name"], row["nullable"], row["default"], row["writable"], row["text_like"], not row["not_personal"])
        )
        if readable is not None and row["readable"]:
            readable.add((row["schema"], row["table"]))
    return tables


def unknown_columns(connection: Connection, table: str) -> tuple[ColumnInfo, ...]:
    """The columns of one of linea's tables (in `public`) that its model does not declare and
    that are not marked as holding no personal data."""
    known = modelled_columns(table)
    return tuple(c for c in _all_columns(connection).get(("public", table), []) if c.name not in known and c.personal)


def unfillable_columns(connection: Connection, tables: tuple[str, ...] | None = None) -> list[str]:
    """`table.column` for each column of linea's tables that an insert by linea cannot fill:
    not in linea's model, NOT NULL, no default, neither generated nor an identity."""
    wanted = tables or tuple(SQLModel.metadata.tables)
    columns = _all_columns(connection)
    return [
        f"{table}.{column.name}"
        for table in wanted
        for column in columns.get(("public", table), [])
        if column.name not in modelled_columns(table) and not column.nullable and column.default is None and column.writable
    ]


def refuse_unfillable(connection: Connection, table: str) -> None:
    """Stop before writing to `table` when the platform gave it a column linea cannot fill."""
    found = unfillable_columns(connection, (table,))
    if found:
        raise _unfillable(found)


def _unfillable(columns: list[str]) -> DatabaseUnavailable:
    first = columns[0]
    table, column = first.split(".", 1)
    return DatabaseUnavailable(
        f"{', '.join(columns)}: NOT NULL without a default, added by the platform, and linea cannot fill "
        f"{'it' if len(columns) == 1 else 'them'}; nothing was written",
        hint=f'give it a default in a platform migration (ALTER TABLE "{table}" ALTER COLUMN "{column}" SET DEFAULT ...), '
        "or use a linea that knows it; `linea db doctor` lists every such column",
    )


def unfillable_column_error(context: Any) -> DatabaseUnavailable | None:
    """The engine's `handle_error` hook: a not-null violation on a column of linea's tables that
    linea's model does not declare becomes one line and exit 5. A violation on a column linea
    knows is a bug of linea's, and stays what it is."""
    original = getattr(context, "original_exception", None)
    if getattr(original, "sqlstate", None) != "23502":
        return None
    diag = original.diag  # type: ignore[union-attr]
    table, column = diag.table_name, diag.column_name
    if diag.schema_name != "public" or table not in SQLModel.metadata.tables or column in modelled_columns(table):
        return None
    return _unfillable([f"{table}.{column}"])


def platform_tables(connection: Connection) -> list[PlatformTable]:
    """Every table linea does not model (in any schema but PostgreSQL's and linea's own), with its
    keys and its foreign keys to `users.id`. Not `_prisma_migrations`: Prisma's bookkeeping."""
    modelled = {("public", name) for name in SQLModel.metadata.tables}
    keys: dict[tuple[str, str], dict[str, Any]] = {}
    rows = connection.execute(
        sa.text(
            """
            SELECT n.nspname AS schema, c.relname AS table, k.contype,
                   ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                         JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i) AS columns,
                   k.contype = 'f' AND k.confrelid = to_regclass('public.users')
                     AND cardinality(k.confkey) = 1
                     AND (SELECT attname FROM pg_attribute WHERE attrelid = k.confrelid AND attnum = k.confkey[1]) = 'id'
                     AS to_users
            FROM pg_constraint k
            JOIN pg_class c ON c.oid = k.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE k.contype IN ('p', 'f') AND n.nspname <> ALL(:system)
            """
        ),
        {"system": list(SYSTEM_SCHEMAS)},
    ).mappings()
    for row in rows:
        entry = keys.setdefault((row["schema"], row["table"]), {"key": (), "fks": set(), "users": []})
        if row["contype"] == "p":
            entry["key"] = tuple(row["columns"])
        else:
            entry["fks"].update(row["columns"])
            if row["to_users"]:
                entry["users"].append(row["columns"][0])
    found = []
    readable: set[tuple[str, str]] = set()
    for (schema, name), columns in _all_columns(connection, readable).items():
        if (schema, name) in modelled or (schema, name) == ("public", "_prisma_migrations"):
            continue
        entry = keys.get((schema, name), {"key": (), "fks": set(), "users": []})
        found.append(
            PlatformTable(
                schema, name, tuple(columns), entry["key"], tuple(sorted(entry["fks"])), tuple(entry["users"]),
                readable=(schema, name) in readable,
            )
        )
    return found
