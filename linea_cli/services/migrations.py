"""Migrations as commands and scripts reach them: up (backed up first where rows could be lost),
down (confirmed first where tables holding rows would go), and the revisions there are.

linea_cli.db.migrate runs Alembic; the rules of when to back up and when to ask live here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from linea_cli.db import migrate
from linea_cli.db.engine import Database
from linea_cli.db.migrate import LockPolicy, RevisionInfo
from linea_cli.errors import InvalidInput, cut, shown

__all__ = [
    "LockPolicy", "RevisionInfo", "downgrade", "history", "needs_backup_before_upgrade", "prisma_schema", "upgrade",
]


def _ignore(message: str) -> None:
    """Where nobody listens: a retry or a note goes unsaid."""


def upgrade(
    database: Database,
    revision: str = "head",
    *,
    sql: bool = False,
    locks: LockPolicy | None = None,
    back_up: Callable[[], object] | None = None,
    on_retry: Callable[[str], None] = _ignore,
    on_note: Callable[[str], None] = _ignore,
) -> str | None:
    """Migrate up to `revision`; returns the revision the database is at now (None with `sql`,
    which only writes the SQL to stdout).

    On a server other than the embedded one, a database holding rows that has something to
    migrate (`needs_backup_before_upgrade`) is first backed up with `back_up` (None: it is not):
    the data model's "backup before production migrations", done rather than remembered. When the
    backup fails, nothing is migrated.
    """
    with _alembic_refusals("upgrade", revision):
        if not sql and back_up is not None and needs_backup_before_upgrade(database):
            # A platform database linea would refuse to adopt is refused before the backup: a
            # retried refusal took a fresh archive each time, for a change that never came. (Its
            # notes are said once, by the upgrade itself.)
            migrate.check_adoptable(migrate.read_database_catalog(database), database, on_note=_ignore)
            back_up()
        migrate.upgrade(database, revision, sql=sql, locks=locks, on_retry=on_retry, on_note=on_note)
    return None if sql else migrate.current_revision(database)


def downgrade(
    database: Database,
    revision: str,
    *,
    sql: bool = False,
    locks: LockPolicy | None = None,
    confirm_dropping: Callable[[list[str]], None],
    on_retry: Callable[[str], None] = _ignore,
) -> str | None:
    """Migrate down to `revision`; returns the revision the database is at now (None at base, and
    with `sql`, which only writes the SQL to stdout).

    On a database linea adopted only linea's indexes, triggers and bookkeeping go. Where linea made
    the tables, a downgrade that drops tables holding rows on a server other than the embedded one
    first calls `confirm_dropping` with their names, which raises to stop it.
    """
    with _alembic_refusals("downgrade", revision):
        if not sql and not database.is_embedded:
            doomed = migrate.tables_dropped_with_rows(database, revision)
            if doomed:
                confirm_dropping(doomed)
        migrate.downgrade(database, revision, sql=sql, locks=locks, on_retry=on_retry)
    return None if sql else migrate.current_revision(database)


def history(database: Database) -> list[RevisionInfo]:
    """Every migration, newest first, the database's current one marked."""
    return migrate.history(migrate.current_revision(database))


def prisma_schema(platform_schema: str | None = None) -> str:
    """`platform_schema` (the platform's own schema.prisma) with an `@@index` line for each index
    linea adds, so that Prisma's schema diff neither drops nor renames them; without it, the data
    model's schema as linea knows it."""
    from linea_cli.db.prisma_schema import prisma_schema as with_linea_indexes

    return with_linea_indexes(platform_schema)


def needs_backup_before_upgrade(database: Database) -> bool:
    """Off the embedded server, rows to lose and something to migrate (behind head, or not adopted
    yet). An up-to-date or empty database needs no backup, nor does the embedded server's."""
    if database.is_embedded:
        return False
    catalog = migrate.read_database_catalog(database)
    return catalog.revision != migrate.head_revision() and any(catalog.tables.values())


@contextmanager
def _alembic_refusals(direction: str, revision: str) -> Iterator[None]:
    """Alembic's refusals of a target (`-3` with two migrations applied, downgrade to head...) are
    about the revision asked for: invalid input, not an internal error."""
    from alembic.util import CommandError

    try:
        yield
    except CommandError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused by Alembic"
        raise InvalidInput(f"cannot {direction} to {shown(revision)}: {cut(reason, limit=300)}") from exc
