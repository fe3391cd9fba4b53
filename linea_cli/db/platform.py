"""Does a database linea did not make hold the data model linea works with?

Compared before adopting anything: tables, columns (type, nullability, default), enum types and
their labels, primary keys, unique keys and foreign keys with their actions. A difference linea
cannot work with is a problem (adoption is refused, nothing changed); one it can live with (an
extra table, column or index of the platform's) is a note.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import linea_cli.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from linea_cli.db.catalog import PLATFORM_TABLES

_FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


@dataclass
class Comparison:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Those of the problems that are NOT NULL columns without a default linea does not know
    # (`db doctor` names them in a check of their own, for every table linea writes to).
    unfillable: list[str] = field(default_factory=list)


def _expected_type(column: sa.Column) -> str:
    kind = column.type
    if isinstance(kind, sa.Enum):
        return f'"{kind.name}"'
    if isinstance(kind, sa.TIMESTAMP):
        return f"timestamp({kind.precision}) without time zone"
    if isinstance(kind, JSONB):
        return "jsonb"
    if isinstance(kind, sa.Double):
        return "double precision"
    if isinstance(kind, sa.Integer):
        return "integer"
    return "text"


def _expected_default(column: sa.Column) -> str | None:
    if column.server_default is None:
        return None
    default = str(column.server_default.arg.text)  # type: ignore[union-attr]
    if isinstance(column.type, sa.Enum):
        return f'{default}::"{column.type.name}"'
    return default


def compare_with_data_model(connection: Connection) -> Comparison:
    result = Comparison()
    tables = SQLModel.metadata.tables
    present = {
        name
        for (name,) in connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    }
    for name in PLATFORM_TABLES:
        if name not in present:
            result.problems.append(f"{name}: missing")
            continue
        _compare_columns(connection, tables[name], result)
        _compare_keys(connection, tables[name], result)
    _compare_enums(connection, result)
    extra = sorted(present - set(PLATFORM_TABLES) - {"alembic_version", "_prisma_migrations"})
    if extra:
        result.notes.append(f"tables linea does not use: {', '.join(extra)}")
    return result


def _compare_columns(connection: Connection, table: sa.Table, result: Comparison) -> None:
    found = {
        row.attname: row
        for row in connection.execute(
            text(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, "
                "pg_get_expr(d.adbin, d.adrelid) AS default FROM pg_attribute a "
                "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                "WHERE a.attrelid = to_regclass(:table) AND a.attnum > 0 AND NOT a.attisdropped"
            ),
            {"table": f'public."{table.name}"'},
        )
    }
    for column in table.columns:
        where = f"{table.name}.{column.name}"
        row = found.get(column.name)
        if row is None:
            result.problems.append(f"{where}: missing")
            continue
        expected_type = _expected_type(column)
        if row.type != expected_type:
            result.problems.append(f"{where}: type {row.type}, expected {expected_type}")
        if row.attnotnull != (not column.nullable):
            result.problems.append(f"{where}: {'NOT NULL' if row.attnotnull else 'nullable'}, expected "
                                   f"{'NOT NULL' if not column.nullable else 'nullable'}")
        expected_default = _expected_default(column)
        if row.default != expected_default:
            result.problems.append(f"{where}: default {row.default or 'none'}, expected {expected_default or 'none'}")
    for name in sorted(set(found) - {column.name for column in table.columns}):
        row = found[name]
        if row.attnotnull and row.default is None:
            result.problems.append(f"{table.name}.{name}: extra NOT NULL column without a default (linea's inserts would fail)")
            result.unfillable.append(result.problems[-1])
        else:
            result.notes.append(f"{table.name}.{name}: extra column, left alone")


def _compare_keys(connection: Connection, table: sa.Table, result: Comparison) -> None:
    constraints = connection.execute(
        text(
            "SELECT c.contype, c.confdeltype, c.confupdtype, r.relname AS referenced, "
            "ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i) "
            "      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)::text[] AS columns "
            "FROM pg_constraint c LEFT JOIN pg_class r ON r.oid = c.confrelid "
            "WHERE c.conrelid = to_regclass(:table) AND c.contype IN ('p', 'f', 'u')"
        ),
        {"table": f'public."{table.name}"'},
    ).all()
    unique_indexes = connection.execute(
        text(
            "SELECT ARRAY(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(n, i) "
            "      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.i)::text[] "
            "FROM pg_index x WHERE x.indrelid = to_regclass(:table) AND x.indisunique AND x.indisvalid "
            "AND x.indpred IS NULL AND x.indexprs IS NULL"
        ),
        {"table": f'public."{table.name}"'},
    ).scalars().all()
    primary = [row.columns for row in constraints if row.contype == "p"]
    expected_primary = [column.name for column in table.primary_key.columns]
    if primary != [expected_primary]:
        result.problems.append(f"{table.name}: primary key {primary[0] if primary else 'missing'}, expected {expected_primary}")
    for index in table.indexes:
        if index.unique:
            columns = [column.name for column in index.columns]
            if columns not in [list(found) for found in unique_indexes]:
                result.problems.append(f"{table.name}: unique key on ({', '.join(columns)}) missing")
    for foreign_key in table.foreign_keys:
        column = foreign_key.parent.name
        wanted = (foreign_key.column.table.name, foreign_key.ondelete, foreign_key.onupdate)
        matches = [
            (row.referenced, _FK_ACTIONS[row.confdeltype], _FK_ACTIONS[row.confupdtype])
            for row in constraints
            if row.contype == "f" and row.columns == [column]
        ]
        if not matches:
            result.problems.append(f"{table.name}.{column}: foreign key to {wanted[0]} missing")
        elif wanted not in matches:
            referenced, on_delete, on_update = matches[0]
            result.problems.append(
                f"{table.name}.{column}: foreign key to {referenced} ON DELETE {on_delete} ON UPDATE {on_update}, "
                f"expected {wanted[0]} ON DELETE {wanted[1]} ON UPDATE {wanted[2]}"
            )


def _compare_enums(connection: Connection, result: Comparison) -> None:
    from linea_cli.enums import EventStatus, UserRole, WaitlistStatus

    python_enums: tuple[type[enum.Enum], ...] = (UserRole, EventStatus, WaitlistStatus)
    for python_enum in python_enums:
        name = python_enum.__name__
        labels = connection.execute(
            text(
                "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
                "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public' AND t.typname = :name "
                "ORDER BY e.enumsortorder"
            ),
            {"name": name},
        ).scalars().all()
        expected = [member.name for member in python_enum]
        if not labels:
            result.problems.append(f'enum "{name}": missing')
            continue
        for label in expected:
            if label not in labels:
                result.problems.append(f'enum "{name}": label {label} missing')
        for label in labels:
            if label not in expected:
                result.problems.append(f'enum "{name}": extra label {label} (linea cannot read rows that use it)')
