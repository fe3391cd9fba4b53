"""Backups and restores as commands and scripts reach them: which pg_dump, where the archive goes,
and a restore's steps in their order (checked, then restored, linea's guarantees put back, recorded).

linea_cli.db.backup runs pg_dump and pg_restore and reads archives; the steps and their order live here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from linea_cli.db import backup as backups
from linea_cli.db import migrate
from linea_cli.db.archive import Contents
from linea_cli.db.backup import Archive, ArchiveSummary, Tool, opened_archive
from linea_cli.db.engine import Database
from linea_cli.db.migrate import LockPolicy, Repaired
from linea_cli.errors import PermissionDenied
from linea_cli.output_file import output_file, writes_to_stdout

__all__ = ["Archive", "Backup", "RestorePlan", "Restored", "back_up", "opened_archive", "plan_restore", "record_restore", "restore"]


@dataclass(frozen=True)
class Backup:
    """What `back_up` wrote: where to (`target`, "stdout" for -), with which tool, and how much."""

    target: str
    summary: ArchiveSummary


def back_up(
    database: Database,
    output: str | None,
    *,
    directory: Path,
    label: str | None = None,
    pg_dump: str | None = None,
    lock_timeout: str,
    on_start: Callable[[Tool, str], None] = lambda tool, target: None,
    on_bytes: Callable[[int], None] = lambda written: None,
) -> Backup:
    """Back `database` up into `output` (written atomically; "-" is stdout), or without one into a
    new DATABASE-TIME[-LABEL].dump in `directory`, with the pg_dump closest to the server's
    version (or `pg_dump`, a configured binary). `on_start(tool, target)` hears of it once the
    target is open, `on_bytes` of the bytes written so far."""
    tool = backups.find_tool("pg_dump", server_major=backups.server_major(database), configured=pg_dump)
    target = output if output is not None else str(backups.new_backup_path(directory, database, label))
    shown_target = "stdout" if writes_to_stdout(target) else target
    with output_file(target, private=True) as out:
        on_start(tool, shown_target)
        summary = backups.backup(database, out, tool=tool, lock_timeout=lock_timeout, on_bytes=on_bytes)
    return Backup(target=shown_target, summary=summary)


@dataclass(frozen=True)
class RestorePlan:
    """An open archive, read and sorted before anything runs, and what the database holds now."""

    archive: Archive
    tool: Tool
    contents: Contents
    existing: dict[str, int]  # the database's tables and their rows, which the restore replaces

    @property
    def foreign(self) -> tuple[str, ...]:
        """What linea did not make, one line per kind; restored only when asked."""
        return self.contents.foreign_lines()


def plan_restore(database: Database, archive: Archive, *, pg_restore: str | None = None) -> RestorePlan:
    """Read `archive` with the pg_restore that can (a damaged archive is refused here, before anyone
    is asked anything) and sort its table of contents; nothing runs and nothing changes."""
    tools = backups.find_tools("pg_restore", server_major=backups.server_major(database), configured=pg_restore)
    tool = backups.readable_by(archive, tools, database)
    contents = backups.inspect(archive, tool=tool, database=database)
    return RestorePlan(archive=archive, tool=tool, contents=contents, existing=backups.database_tables(database))


@dataclass(frozen=True)
class Restored:
    """What `restore` brought back, what it then repaired, and whether the audit log has its row."""

    summary: ArchiveSummary
    repaired: Repaired
    recorded: bool


def restore(
    database: Database,
    plan: RestorePlan,
    *,
    include_foreign: bool = False,
    actor_reference: str | None = None,
    locks: LockPolicy | None = None,
) -> Restored:
    """Restore the planned archive in one transaction (all of it or nothing), replacing the tables
    the database holds; with `include_foreign`, what linea did not make too. Then linea's
    guarantees are put back (its indexes, the audit log's append-only guard, which is never taken
    from an archive, no PUBLIC privilege), and the restored audit log gets one RESTORE row."""
    summary = backups.restore(
        database, plan.archive, tool=plan.tool, contents=plan.contents, replace=bool(plan.existing),
        include_foreign=include_foreign,
    )
    repaired = migrate.repair(database, locks=locks)
    with database.unit_of_work() as session:
        recorded = record_restore(
            session, actor_reference=actor_reference, archive=plan.archive.name, tables=summary.tables,
            foreign=list(plan.foreign) if include_foreign else None,
        )
    return Restored(summary=summary, repaired=repaired, recorded=recorded)


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
