"""Least-privilege PostgreSQL roles for linea's jobs, planned from the tables that exist.

The database role, not `--as`, is what the server enforces: a cron job that only reads runs as a
member of the reading role and cannot write whatever linea's code does. Four group roles
(NOLOGIN; LOGIN roles are made members of them):

- reader: SELECT on every table in `public` except `sessions.token` (column grants), and on
  linea's bookkeeping; every read command works with it.
- operator: what linea's write commands need: SELECT, INSERT, UPDATE, DELETE on the platform's
  tables, only SELECT and INSERT on `audit_logs`, sequences, temporary tables (imports).
- eraser: the operator plus the one rewrite of audit rows `users anonymize` makes (UPDATE of
  ip_address, user_agent, metadata, resource_id), which the append-only trigger confines.
- migrator: DDL: creates in the database and its schemas, and acts as the owner of linea's objects
  and the platform's tables where that owner is not a superuser (PostgreSQL lets only an owner
  alter a table; a superuser's tables are named in a comment instead).

Grants name the tables that exist when the plan is made: a table the platform adds later gets
nothing until the plan runs again. Each run first revokes what these roles hold on the schemas'
tables, then grants: the result is the same however often it runs.

Roles of these names that exist already must be what the plan makes (attributes, memberships,
owning nothing): one that is not (a LOGIN SUPERUSER "reader", a member of pg_write_all_data) is
named in `RolePlan.mismatches` and is neither granted to nor altered; the SQL checks the same
before it grants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

from linea_cli.db.catalog import LINEA_SCHEMA, PLATFORM_SCHEMA
from linea_cli.errors import InvalidInput, parameter, shown

DEFAULT_PREFIX = "linea"
_PREFIX = re.compile(r"[a-z][a-z0-9_]*")
JOBS = ("reader", "operator", "eraser", "migrator")
# PostgreSQL keeps NAMEDATALEN - 1 bytes of a name and cuts the rest: two long prefixes would
# name the same roles. A prefix is ASCII, so characters are bytes.
MAX_NAME_BYTES = 63
MAX_PREFIX = MAX_NAME_BYTES - max(len(f"_{job}") for job in JOBS)
AUDIT_TABLE = "audit_logs"
SECRET_COLUMNS = {"sessions": ("token",)}  # never readable by the reading role
# What the erasure rewrites in audit rows (services/personal_data.py's AuditRows.erase).
AUDIT_SCRUB_COLUMNS = ("ip_address", "user_agent", "metadata", "resource_id")
READ_ONLY_TABLES = ("_prisma_migrations",)  # the platform's migration history: nobody but the migrator writes it


@dataclass(frozen=True)
class RoleNames:
    reader: str
    operator: str
    eraser: str
    migrator: str

    @classmethod
    def with_prefix(cls, prefix: str) -> RoleNames:
        """The roles named with `prefix`, checked before anything reads the database: a name the
        server would refuse (`pg_...` is reserved) or cut short is one line, exit 1."""
        if not _PREFIX.fullmatch(prefix):
            raise InvalidInput(
                f"{parameter('prefix')} {shown(prefix)} is not a role name prefix",
                hint="lower-case letters, digits and _, starting with a letter",
            )
        if prefix == "pg" or prefix.startswith("pg_"):
            raise InvalidInput(
                f"{parameter('prefix')} {shown(prefix)} would name roles pg_...: PostgreSQL reserves those names", hint=f"choose another {parameter('prefix')}"
            )
        if len(prefix) > MAX_PREFIX:
            raise InvalidInput(
                f"{parameter('prefix')} {shown(prefix)} is {len(prefix)} characters: role names longer than {MAX_NAME_BYTES} bytes "
                f"would be cut short",
                hint=f"a prefix of at most {MAX_PREFIX} characters",
            )
        return cls(*(f"{prefix}_{job}" for job in JOBS))


@dataclass(frozen=True)
class RoleMismatch:
    """A role that exists under one of linea's names but is not what `db roles` makes: someone else
    made it, or changed it. linea neither trusts nor alters it."""

    role: str
    differences: tuple[str, ...]

    def line(self) -> str:
        return f"{self.role}: {'; '.join(self.differences)}"


# What linea's roles are (CREATE ROLE ... NOLOGIN): (pg_roles column, the value linea makes, its keyword).
ATTRIBUTES: tuple[tuple[str, bool, str], ...] = (
    ("rolsuper", False, "SUPERUSER"),
    ("rolcanlogin", False, "LOGIN"),
    ("rolcreatedb", False, "CREATEDB"),
    ("rolcreaterole", False, "CREATEROLE"),
    ("rolreplication", False, "REPLICATION"),
    ("rolbypassrls", False, "BYPASSRLS"),
    ("rolinherit", True, "INHERIT"),
)


@dataclass
class RolePlan:
    names: RoleNames
    database: str
    tables: list[str] = field(default_factory=list)  # in public, as they exist now
    statements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # comments in the SQL: what the plan could not grant
    # Roles of these names that exist already and are not what linea makes: applying is refused.
    mismatches: list[RoleMismatch] = field(default_factory=list)

    def sql(self) -> str:
        header = [
            f"-- linea's least-privilege roles for database {self.database}",
            f"-- grants on the {len(self.tables)} tables in {PLATFORM_SCHEMA} that exist now: {', '.join(self.tables) or 'none'}",
            "-- a table added later gets nothing until `linea db roles` runs again",
            *(f"-- {note}" for note in self.notes),
        ]
        return "\n".join([*header, "BEGIN;", *(f"{statement};" for statement in self.statements), "COMMIT;"]) + "\n"

    def summary(self) -> list[dict[str, str]]:
        names = self.names
        return [
            {"role": names.reader, "may": "read every table, except sessions.token; no writes"},
            {"role": names.operator, "may": "read and write the platform's tables; only add to audit_logs"},
            {"role": names.eraser, "may": f"what {names.operator} may, and scrub personal data from audit rows (users anonymize)"},
            {"role": names.migrator, "may": "change the schema (db upgrade, downgrade, reset, restore)"},
        ]


def quoted(name: str) -> str:
    # Not platform_columns.quoted: these statements run as they are (exec_driver_sql), where a
    # colon is not a parameter and an escaping backslash would become part of the name.
    return '"' + name.replace('"', '""') + '"'


def plan_roles(connection: Connection, names: RoleNames) -> RolePlan:
    """The statements that leave the four roles as described above, for the database `connection` is in."""
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    plan = RolePlan(names=names, database=database)
    plan.tables = list(connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname"
        ),
        {"schema": PLATFORM_SCHEMA},
    ).scalars())
    has_linea = bool(connection.execute(text("SELECT to_regnamespace(:schema) IS NOT NULL"), {"schema": LINEA_SCHEMA}).scalar())
    schemas = [PLATFORM_SCHEMA, *([LINEA_SCHEMA] if has_linea else [])]
    if not has_linea:
        plan.notes.append(f"no {LINEA_SCHEMA} schema yet: run `linea db upgrade`, then `linea db roles` again")
    owners = _table_owners(connection, schemas)
    memberships = {  # the roles each of linea's roles is made a member of, and no other
        names.reader: [], names.operator: [], names.eraser: [names.operator],
        names.migrator: [owner for owner, superuser in owners if not superuser and owner != names.migrator],
    }
    plan.mismatches = existing_mismatches(connection, memberships, owner_allowed={names.migrator})
    for mismatch in plan.mismatches:
        plan.notes.append(f"{mismatch.line()}: this script stops at its check (drop the role, or choose another prefix)")
    for role in (names.reader, names.operator, names.eraser, names.migrator):
        plan.statements.append(_create_or_check(role, memberships[role], may_own=role == names.migrator))
        if role == names.migrator:
            continue  # it may own tables (ALTER ... OWNER TO): revoking would take an owner's rights
        for schema in schemas:  # the exact grants below, however often this runs
            plan.statements.append(f"REVOKE ALL ON ALL TABLES IN SCHEMA {quoted(schema)} FROM {quoted(role)}")
            plan.statements.append(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {quoted(schema)} FROM {quoted(role)}")
    _reader(plan, connection, schemas)
    linea_tables = set(connection.execute(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema AND c.relkind = 'r'"
    ), {"schema": LINEA_SCHEMA}).scalars())
    _operator(plan, schemas, has_journal="imports" in linea_tables,
              snapshot_tables=[name for name in SNAPSHOT_TABLES if name in linea_tables])
    _eraser(plan, connection)
    _migrator(plan, owners, schemas)
    return plan


def existing_mismatches(
    connection: Connection, memberships: dict[str, list[str]], *, owner_allowed: set[str]
) -> list[RoleMismatch]:
    """How each role of `memberships` that exists differs from what linea makes: its attributes
    (ATTRIBUTES), the roles it is a member of beyond `memberships[role]`, and (except for
    `owner_allowed`) relations it owns in this database."""
    columns = ", ".join(column for column, _, _ in ATTRIBUTES)
    rows = connection.execute(
        text(
            f"SELECT r.rolname, {columns}, "
            "ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "      WHERE m.member = r.oid ORDER BY 1) AS member_of, "
            "ARRAY(SELECT c.relname::text FROM pg_class c WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') "
            "      ORDER BY 1) AS owns "
            "FROM pg_roles r WHERE r.rolname = ANY(:names) ORDER BY array_position(:names, r.rolname::text)"
        ),
        {"names": list(memberships)},
    ).mappings()
    mismatches = []
    for row in rows:
        role = row["rolname"]
        differences = [
            keyword if row[column] else f"NO{keyword}" for column, wanted, keyword in ATTRIBUTES if row[column] != wanted
        ]
        extra = [name for name in row["member_of"] if name not in memberships[role]]
        if extra:
            differences.append(f"a member of {', '.join(extra)}")
        if row["owns"] and role not in owner_allowed:
            shown_owned = ", ".join(row["owns"][:5]) + (f" and {len(row['owns']) - 5} more" if len(row["owns"]) > 5 else "")
            differences.append(f"the owner of {shown_owned}")
        if differences:
            mismatches.append(RoleMismatch(role, tuple(differences)))
    return mismatches


def _create_or_check(role: str, member_of: list[str], *, may_own: bool) -> str:
    """Create `role` as linea makes it, or, when it exists, stop unless it is exactly that: the same
    check as `existing_mismatches`, inside the transaction that grants (and in the printed SQL)."""
    literal = _literal(role)
    differs = " OR ".join(
        [f"{'NOT ' if wanted else ''}r.{column}" for column, wanted, _ in ATTRIBUTES]
        + [
            "EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid"
            + (f" AND g.rolname NOT IN ({', '.join(_literal(name) for name in member_of)})" if member_of else "")
            + ")",
            *([] if may_own else ["EXISTS (SELECT FROM pg_class c WHERE c.relowner = r.oid)"]),
        ]
    )
    message = f"role {role} exists and is not what linea makes (attributes, memberships or ownership): drop it or choose another prefix"
    return (
        f"DO $$ DECLARE r record; BEGIN SELECT * INTO r FROM pg_roles WHERE rolname = {literal}; "
        f"IF NOT FOUND THEN CREATE ROLE {quoted(role)} NOLOGIN; "
        f"ELSIF {differs} THEN RAISE EXCEPTION USING MESSAGE = {_literal(message)}; END IF; END $$"
    )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _table_owners(connection: Connection, schemas: list[str]) -> list[tuple[str, bool]]:
    """The roles owning tables in `schemas`, and whether each is a superuser."""
    return [
        (owner, superuser) for owner, superuser in connection.execute(
            text(
                "SELECT DISTINCT r.rolname, r.rolsuper FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_roles r ON r.oid = c.relowner WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p') "
                "ORDER BY 1"
            ),
            {"schemas": schemas},
        )
    ]


def _table(name: str) -> str:
    return f"{quoted(PLATFORM_SCHEMA)}.{quoted(name)}"


def _tables(names: list[str]) -> str:
    return ", ".join(_table(name) for name in names)


def _reader(plan: RolePlan, connection: Connection, schemas: list[str]) -> None:
    add, reader = plan.statements.append, quoted(plan.names.reader)
    add(f"GRANT CONNECT ON DATABASE {quoted(plan.database)} TO {reader}")
    add(f"GRANT USAGE ON SCHEMA {', '.join(quoted(schema) for schema in schemas)} TO {reader}")
    whole = [name for name in plan.tables if name not in SECRET_COLUMNS]
    if whole:
        add(f"GRANT SELECT ON {_tables(whole)} TO {reader}")
    for name, secret in SECRET_COLUMNS.items():
        if name in plan.tables:
            columns = [column for column in _columns(connection, name) if column not in secret]
            add(f"GRANT SELECT ({', '.join(quoted(column) for column in columns)}) ON {_table(name)} TO {reader}")
    if LINEA_SCHEMA in schemas:
        add(f"GRANT SELECT ON ALL TABLES IN SCHEMA {quoted(LINEA_SCHEMA)} TO {reader}")


# `linea db snapshot` (a cron job) keeps the statistics' counters there (services/query_stats.py).
SNAPSHOT_TABLES = ("stat_snapshots", "stat_statements", "stat_tables", "stat_indexes")


def _operator(plan: RolePlan, schemas: list[str], *, has_journal: bool, snapshot_tables: list[str]) -> None:
    add, operator = plan.statements.append, quoted(plan.names.operator)
    add(f"GRANT CONNECT, TEMPORARY ON DATABASE {quoted(plan.database)} TO {operator}")
    add(f"GRANT USAGE ON SCHEMA {', '.join(quoted(schema) for schema in schemas)} TO {operator}")
    writable = [name for name in plan.tables if name not in (AUDIT_TABLE, *READ_ONLY_TABLES)]
    if writable:
        add(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {_tables(writable)} TO {operator}")
    if AUDIT_TABLE in plan.tables:
        add(f"GRANT SELECT, INSERT ON {_table(AUDIT_TABLE)} TO {operator}")
    read_only = [name for name in READ_ONLY_TABLES if name in plan.tables]
    if read_only:
        add(f"GRANT SELECT ON {_tables(read_only)} TO {operator}")
    add(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quoted(PLATFORM_SCHEMA)} TO {operator}")
    if LINEA_SCHEMA in schemas:
        add(f"GRANT SELECT ON ALL TABLES IN SCHEMA {quoted(LINEA_SCHEMA)} TO {operator}")
    if has_journal:  # a large `waitlist import` keeps its journal there (services/import_journal.py)
        add(f"GRANT INSERT, UPDATE, DELETE ON {quoted(LINEA_SCHEMA)}.imports TO {operator}")
    if snapshot_tables:
        names = ", ".join(f"{quoted(LINEA_SCHEMA)}.{name}" for name in snapshot_tables)
        add(f"GRANT INSERT, DELETE ON {names} TO {operator}")


def _eraser(plan: RolePlan, connection: Connection) -> None:
    add, eraser = plan.statements.append, quoted(plan.names.eraser)
    add(f"GRANT {quoted(plan.names.operator)} TO {eraser}")
    if AUDIT_TABLE in plan.tables:
        present = set(_columns(connection, AUDIT_TABLE))
        scrubbed = [column for column in AUDIT_SCRUB_COLUMNS if column in present]
        add(f"GRANT UPDATE ({', '.join(quoted(column) for column in scrubbed)}) ON {_table(AUDIT_TABLE)} TO {eraser}")


def _migrator(plan: RolePlan, owners: list[tuple[str, bool]], schemas: list[str]) -> None:
    add, migrator = plan.statements.append, quoted(plan.names.migrator)
    add(f"GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {quoted(plan.database)} TO {migrator}")
    add(f"GRANT USAGE, CREATE ON SCHEMA {', '.join(quoted(schema) for schema in schemas)} TO {migrator}")
    for owner, superuser in owners:
        if owner == plan.names.migrator:
            continue
        if superuser:
            plan.notes.append(
                f"tables here belong to the superuser {owner}: {plan.names.migrator} cannot alter them; run migrations "
                f"as {owner}, or make {plan.names.migrator} their owner (ALTER TABLE ... OWNER TO {plan.names.migrator})"
            )
        else:
            add(f"GRANT {quoted(owner)} TO {migrator}")


def _columns(connection: Connection, table: str) -> list[str]:
    return [
        name for (name,) in connection.execute(
            text(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:table) AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum"
            ),
            {"table": _table(table)},
        )
    ]
