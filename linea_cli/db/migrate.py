"""Alembic, driven from linea: where the scripts are, the revisions, running them, and the check
every command makes that the database is at the newest one (`check_schema`).

Alembic is imported only where it is used: the check on a database at head needs none of it.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from linea_cli.db import guard
from linea_cli.db.catalog import (
    BASELINE_CREATED,
    LINEA_SCHEMA,
    PLATFORM_TABLES,
    VERSION_TABLE,
    Catalog,
    current_linea_revision,
    read_catalog,
)
from linea_cli.db.ddl import OUTSIDE_TRANSACTION_MARK, Statement, plan_index
from linea_cli.db.engine import Database, check_server_version
from linea_cli.db.indexes import LINEA_INDEXES
from linea_cli.db.revision import HEAD_REVISION
from linea_cli.errors import DatabaseUnavailable, InvalidInput, shown

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory


def migrations_path() -> Path:
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise DatabaseUnavailable("linea's migration scripts are missing from this installation")


def alembic_config(stdout: TextIO | None = None) -> Config:
    from alembic.config import Config

    config = Config(stdout=stdout or sys.stdout)
    config.set_main_option("script_location", str(migrations_path()))
    config.set_main_option("path_separator", "os")
    return config


def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    heads = script_directory().get_heads()
    if len(heads) != 1:
        raise DatabaseUnavailable(f"linea's migrations have {len(heads)} heads; expected one")
    return heads[0]


def known_revisions() -> set[str | None]:
    """Every revision id the scripts know, and None (an empty database, before the first)."""
    return {script.revision for script in script_directory().walk_revisions()} | {None}


def current_revision(database: Database) -> str | None:
    with database.connect() as connection:
        return current_linea_revision(connection)


def read_database_catalog(database: Database) -> Catalog:
    with database.connect() as connection:
        return read_catalog(connection)


def at_head(connection: Connection, target: str) -> bool:
    """Whether the database is at linea's newest revision, on a server new enough (else an error).

    Two reads, in whatever transaction `connection` is in: a command's first transaction makes
    them on its own connection, so that a command on a current database costs one connection.
    """
    check_server_version(connection, target)
    return current_linea_revision(connection) == HEAD_REVISION


def check_schema(database: Database, *, migrate: bool = False, stdout: TextIO | None = None) -> str | None:
    """Refuse a database linea cannot use now: older than PostgreSQL 15, or not at the newest revision.

    With `migrate`, a database behind (empty, or the platform's own to adopt) is migrated to head
    instead, and that revision is returned; otherwise None. One connection when all is well.
    """
    with database.connect() as connection:
        if at_head(connection, database.target):
            return None
        current = current_linea_revision(connection)
        platform_tables = current is None and connection.execute(
            text("SELECT to_regclass('public.users') IS NOT NULL")
        ).scalar()
    # Behind, ahead or empty: only now are the scripts worth reading.
    head = head_revision()
    if migrate and current in known_revisions():
        upgrade(database, "head", stdout=stdout)
        return head
    hint = "run `linea db upgrade`"
    if platform_tables:
        problem = "holds the platform's tables, which linea has not adopted yet"
        hint = "review with `linea db upgrade --sql`, then run `linea db upgrade` (it adds indexes and triggers only)"
    elif current is None:
        problem = "has no linea schema"
    elif current not in known_revisions():
        problem = f"is at revision {current}, which this linea does not know (is linea older than the database?)"
    else:
        problem = f"is at revision {current}, behind {head}"
    raise DatabaseUnavailable(f"{database.target} {problem}", hint=hint)


@dataclass(frozen=True)
class RevisionInfo:
    revision: str
    down_revision: str | None
    description: str
    is_head: bool
    is_current: bool


def history(current: str | None) -> list[RevisionInfo]:
    scripts = script_directory()
    return [
        RevisionInfo(
            revision=script.revision,
            down_revision=script.down_revision if isinstance(script.down_revision, str) else None,
            description=(script.doc or "").splitlines()[0] if script.doc else "",
            is_head=script.is_head,
            is_current=script.revision == current,
        )
        for script in scripts.walk_revisions()
    ]


def pending_revisions(current: str | None) -> list[str]:
    scripts = script_directory()
    head = head_revision()
    if current == head:
        return []
    revisions = scripts.iterate_revisions(head, current or "base")
    return [script.revision for script in reversed(list(revisions))]


def _validate_revision(revision: str) -> None:
    """head, heads, base, +N / -N within the migrations there are, or a known revision id (or prefix).

    Anything else is invalid input here, before Alembic would fail on it with an internal error.
    """
    if revision in ("head", "base", "heads"):
        return
    relative = re.fullmatch(r"[+-](\d{1,9})", revision)
    if relative:
        steps, count = int(relative.group(1)), len(known_revisions()) - 1
        if not 1 <= steps <= count:
            raise InvalidInput(f"relative revision {revision}: linea has {count} migration(s); use 1 to {count} steps")
        return
    try:
        found = script_directory().get_revision(revision)
    except Exception as exc:  # alembic raises several kinds for an unknown or ambiguous id
        raise InvalidInput(f"unknown revision {shown(revision)}: see `linea db history`") from exc
    if found is None:
        raise InvalidInput(f"unknown revision {shown(revision)}: see `linea db history`")


@dataclass(frozen=True)
class LockPolicy:
    """How long a migration waits for each lock, and how often it tries again (doubling the wait)."""

    first_timeout_ms: int = 2000
    attempts: int = 3

    @classmethod
    def from_settings(cls, lock_timeout: str, attempts: int) -> LockPolicy:
        return cls(first_timeout_ms=_milliseconds(lock_timeout), attempts=attempts)


def _milliseconds(duration: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(ms|s|min)?\s*", duration)
    if not match:
        raise InvalidInput(f"invalid duration {duration!r}: use e.g. 500ms, 2s or 1min")
    value, unit = int(match.group(1)), match.group(2) or "ms"
    return value * {"ms": 1, "s": 1000, "min": 60000}[unit]


def upgrade(
    database: Database,
    revision: str = "head",
    *,
    sql: bool = False,
    stdout: TextIO | None = None,
    locks: LockPolicy | None = None,
    on_retry: Callable[[str], None] = lambda message: None,
    on_note: Callable[[str], None] = lambda message: None,
) -> None:
    """Migrate up; on a database the platform made, adopt it first if it matches the data model."""
    _run(database, "upgrade", revision, sql=sql, stdout=stdout, locks=locks or LockPolicy(), on_retry=on_retry, on_note=on_note)


def downgrade(
    database: Database,
    revision: str,
    *,
    sql: bool = False,
    stdout: TextIO | None = None,
    locks: LockPolicy | None = None,
    on_retry: Callable[[str], None] = lambda message: None,
) -> None:
    """Migrate down, removing only what linea added (on an adopted database, never a platform table)."""
    _run(database, "downgrade", revision, sql=sql, stdout=stdout, locks=locks or LockPolicy(), on_retry=on_retry)


def check_adoptable(catalog: Catalog, database: Database, on_note: Callable[[str], None]) -> None:
    """Refuse, naming every difference, a platform database linea cannot work with; note the rest."""
    if catalog.baseline is not None or catalog.version_in_public or not catalog.has_platform_tables:
        return
    from linea_cli.db.platform import compare_with_data_model

    with database.connect() as connection:
        comparison = compare_with_data_model(connection)
    if comparison.problems:
        raise DatabaseUnavailable(
            f"{database.target} holds the platform's tables, but not as the data model has them: "
            + "; ".join(comparison.problems),
            hint="nothing was changed; fix the schema with the platform's migrations, then run `linea db upgrade`",
        )
    for note in comparison.notes:
        on_note(note)


def tables_dropped_with_rows(database: Database, revision: str) -> list[str]:
    """The platform tables holding rows that a downgrade to `revision` would drop (linea-made only)."""
    catalog = read_database_catalog(database)
    if catalog.baseline != BASELINE_CREATED or not _undoes_baseline(catalog.revision, revision):
        return []
    return [table for table in PLATFORM_TABLES if catalog.holds_rows(table)]


def _undoes_baseline(current: str | None, target: str) -> bool:
    if current is None:
        return False
    if target == "base":
        return True
    if target.startswith("-") and target[1:].isdigit():
        # -N undoes the baseline when it steps back over every revision applied.
        return int(target[1:]) >= len(list(script_directory().iterate_revisions(current, "base")))
    return False


def _run(
    database: Database,
    direction: str,
    revision: str,
    *,
    sql: bool,
    stdout: TextIO | None,
    locks: LockPolicy,
    on_retry: Callable[[str], None],
    on_note: Callable[[str], None] = lambda message: None,
) -> None:
    _validate_revision(revision)
    out = stdout or sys.stdout
    timeout_ms = locks.first_timeout_ms
    for attempt in range(1, locks.attempts + 1):
        try:
            _attempt(database, direction, revision, sql=sql, out=out, timeout_ms=timeout_ms, on_note=on_note)
            return
        except OperationalError as exc:
            if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                raise
            if attempt == locks.attempts:
                raise DatabaseUnavailable(
                    f"migration gave up after {attempt} attempts: another session holds a lock it needs "
                    f"(last wait {timeout_ms} ms)",
                    hint="find it in pg_stat_activity (or retry when traffic is lower); "
                    "each completed step is kept and the next `linea db upgrade` carries on",
                ) from exc
            on_retry(f"a table is locked by another session; retrying with lock_timeout {timeout_ms * 2} ms")
            timeout_ms *= 2


def _attempt(
    database: Database,
    direction: str,
    revision: str,
    *,
    sql: bool,
    out: TextIO,
    timeout_ms: int,
    on_note: Callable[[str], None],
) -> None:
    catalog = read_database_catalog(database)
    if direction == "upgrade":
        check_adoptable(catalog, database, on_note)
    from alembic import command

    config = alembic_config(out)
    config.attributes.update(catalog=catalog, lock_timeout_ms=timeout_ms)
    run = command.upgrade if direction == "upgrade" else command.downgrade
    prelude = _layout_statements(catalog)
    current = catalog.revision
    if sql:
        out.write(f"-- linea db {direction} {revision} on {database.target}, now at {current or 'no revision'}\n\n")
        _print_planned(out, prelude, timeout_ms)
        if ":" not in revision and current is not None:
            revision = f"{current}:{revision}"
        # Offline SQL needs only the dialect; the URL never carries the password into alembic.
        config.attributes["url"] = database.url.set(password=None)
        run(config, revision, sql=True)
        if direction == "downgrade" and _to_base(revision):
            _print_planned(out, _FORGET_LINEA, timeout_ms)
        if direction == "upgrade":
            _print_planned(out, _index_repairs(catalog), timeout_ms)
            with database.connect() as connection:
                state = guard.read_state(connection, guarded=includes_revision(current, guard.REVISION))
            _print_planned(out, [Statement(sql) for sql in guard.repairs(state)], timeout_ms)
        return
    _execute_planned(database, prelude, timeout_ms)
    left_invalid = _invalid_linea_indexes(catalog)
    # A connection outside any transaction: each revision runs in a transaction of its own, and
    # CONCURRENTLY index builds run between them (linea_cli.db.ddl).
    with database.engine.connect() as connection:
        config.attributes["connection"] = connection
        run(config, revision)
    if direction == "downgrade" and _to_base(revision):
        _execute_planned(database, _FORGET_LINEA, timeout_ms)
    if direction == "upgrade":
        # A revision run again after an interrupted one drops and builds again what that one left
        # invalid: said, as the repair below says what it rebuilds at head.
        rebuilt = sorted(left_invalid - _invalid_linea_indexes(read_database_catalog(database)))
        if rebuilt:
            on_note(f"repaired: index {', '.join(rebuilt)} rebuilt (an interrupted build had left it invalid)")
        repaired = _repair(database, timeout_ms)
        if repaired.words:
            on_note(f"repaired: {'; '.join(repaired.words)}")


def _invalid_linea_indexes(catalog: Catalog) -> set[str]:
    """linea's indexes that an interrupted CONCURRENTLY build left invalid."""
    return {
        spec.name for spec in LINEA_INDEXES
        if catalog.owns_index(spec.name) and spec.name in catalog.indexes and not catalog.indexes[spec.name].valid
    }


@dataclass(frozen=True)
class Repaired:
    """What a repair put back, in words: the append-only guard's functions and triggers (`guard`,
    as they were; `guard_was_absent` when it was simply missing, not changed), and the rest
    (`other`: indexes rebuilt, PUBLIC's privileges revoked)."""

    guard: list[str]
    guard_was_absent: bool
    other: list[str]

    @property
    def words(self) -> list[str]:
        return self.guard + self.other


def repair(database: Database, *, locks: LockPolicy | None = None) -> Repaired:
    """Give the database back what linea promises, whatever an archive or a session changed: linea's
    indexes (rebuilt when missing or invalid), the audit log's append-only guard (recreated when
    missing, disabled or different) and no PUBLIC privilege on the platform's tables. Nothing runs
    when nothing differs; returns what was repaired."""
    return _repair(database, (locks or LockPolicy()).first_timeout_ms)


def _repair(database: Database, timeout_ms: int) -> Repaired:
    catalog = read_database_catalog(database)
    indexes = _index_repairs(catalog)
    _execute_planned(database, indexes, timeout_ms)
    with database.connect() as connection:
        state = guard.read_state(connection, guarded=includes_revision(catalog.revision, guard.REVISION))
    statements = guard.repairs(state)
    if statements:
        _execute_planned(database, [Statement(sql) for sql in statements], timeout_ms)
    rebuilt = sorted({spec.name for spec in LINEA_INDEXES if any(f'"{spec.name}"' in s.sql for s in indexes)})
    recreated, revoked = guard.described(state)
    return Repaired(
        guard=recreated, guard_was_absent=guard.only_missing(state),
        other=([f"index {', '.join(rebuilt)} rebuilt"] if rebuilt else []) + revoked,
    )


def includes_revision(current: str | None, revision: str) -> bool:
    """Whether the database at `current` has had `revision` applied (is at it or after it)."""
    if current is None or current not in known_revisions():
        return False
    return any(script.revision == revision for script in script_directory().iterate_revisions(current, "base"))


def _index_repairs(catalog: Catalog) -> list[Statement]:
    """Rebuild what an interrupted CONCURRENTLY build left invalid (or someone dropped) since its revision ran."""
    repairs: list[Statement] = []
    for spec in LINEA_INDEXES:
        existing = catalog.indexes.get(spec.name)
        if catalog.owns_index(spec.name) and (existing is None or not existing.valid):
            repairs.extend(plan_index(catalog, spec))
    return repairs


def _to_base(revision: str) -> bool:
    return revision.rsplit(":", 1)[-1] == "base"


# linea's bookkeeping lives in its own schema; a database made before that keeps its version
# table in public until its next upgrade moves it.
def _layout_statements(catalog: Catalog) -> list[Statement]:
    statements = []
    if not catalog.has_linea_schema:
        statements.append(Statement(f"CREATE SCHEMA IF NOT EXISTS {LINEA_SCHEMA}"))
    if catalog.version_in_public and not catalog.version_in_linea:
        statements.append(Statement(f"ALTER TABLE public.{VERSION_TABLE} SET SCHEMA {LINEA_SCHEMA}"))
    return statements


_FORGET_LINEA = [
    Statement(f"DROP TABLE IF EXISTS {LINEA_SCHEMA}.{VERSION_TABLE}"),
    Statement(f"DROP SCHEMA IF EXISTS {LINEA_SCHEMA}"),
]


def _runs(statements: list[Statement]) -> Iterator[tuple[bool, list[str]]]:
    """Consecutive statements that run the same way: (outside a transaction?, their SQL)."""
    for outside, run in itertools.groupby(statements, key=lambda statement: statement.outside_transaction):
        yield outside, [statement.sql for statement in run]


def _print_planned(out: TextIO, statements: list[Statement], timeout_ms: int) -> None:
    """What `_execute_planned` would run, as `db upgrade --sql` shows it."""
    for outside, sqls in _runs(statements):
        body = "".join(f"{sql};\n\n" for sql in sqls)
        if outside:
            out.write(f"{OUTSIDE_TRANSACTION_MARK}\nSET lock_timeout = '{timeout_ms}ms';\n\n{body}")
        else:
            out.write(f"BEGIN;\n\nSET LOCAL lock_timeout = '{timeout_ms}ms';\n\n{body}COMMIT;\n\n")


def _execute_planned(database: Database, statements: list[Statement], timeout_ms: int) -> None:
    for outside, sqls in _runs(statements):
        if outside:
            with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text(f"SET lock_timeout = '{timeout_ms}ms'"))
                for sql in sqls:
                    connection.execute(text(sql))
            continue
        with database.engine.begin() as connection:
            connection.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": f"{timeout_ms}ms"})
            for sql in sqls:
                connection.execute(text(sql))
