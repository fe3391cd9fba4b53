"""The one soft-delete and restore path: `deleted_at` set or emptied, and its audit row.

Events, venues, users, login sessions and waitlist entries are never deleted by linea (only the
session purge hard-deletes); they get a `deleted_at`, which every list and lookup filters on.
The resource's own rules (who may, what else changes: sessions revoked, events detached) stay
with the resource's service; what is the same for all of them is here, so the audit entry is
spelled one way: `{"deleted_at": {"before": ..., "after": ...}}`, commit and roll back with the
change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session

from linea_cli.errors import Conflict
from linea_cli.services import audit_log
from linea_cli.services.actors import Actor
from linea_cli.services.audit_log import AuditAction
from linea_cli.timeutil import utc_now


class SoftDeletable(Protocol):
    id: str
    deleted_at: datetime | None
    updated_at: datetime


def soft_delete(
    session: Session,
    row: SoftDeletable,
    *,
    resource: str,
    actor: Actor | None,
    name: str,
    hint: str | None = None,
    state: str = "deleted",
    action: AuditAction = AuditAction.DELETE,
    details: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> datetime:
    """Set the row's `deleted_at` (to `now`, by default the current time) and record it.

    A row already deleted is a conflict, "`name` is already `state`" (with `hint`). Returns the
    `deleted_at` written.
    """
    require_live(row, name=name, hint=hint, state=state)
    now = now or utc_now()
    row.deleted_at = row.updated_at = now
    _write(
        session, row, action=action, resource=resource, actor=actor, before={"deleted_at": None}, after={"deleted_at": now},
        details=details,
    )
    return now


def require_live(row: SoftDeletable, *, name: str, hint: str | None = None, state: str = "deleted") -> None:
    """Refuse a row already deleted: for a delete that changes other rows first (a venue's events)."""
    if row.deleted_at is not None:
        raise Conflict(f"{name} is already {state}", hint=hint)


def restore(
    session: Session,
    row: SoftDeletable,
    *,
    resource: str,
    actor: Actor | None,
    name: str,
    refuse: Callable[[], None] | None = None,
    also: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> datetime:
    """Empty the row's `deleted_at` and record it; returns the `deleted_at` it had.

    A row that is not deleted is a conflict, "`name` is not deleted"; `refuse`, when given, is
    the resource's further rule, checked once the row is known to be deleted (it raises to stop).
    `also`: other columns set in the same change (a waitlist entry comes back in a new status),
    whose changes join the audit row's.
    """
    if row.deleted_at is None:
        raise Conflict(f"{name} is not deleted")
    if refuse is not None:
        refuse()
    also = dict(also or {})
    before = {column: getattr(row, column) for column in also} | {"deleted_at": row.deleted_at}
    for column, value in also.items():
        setattr(row, column, value)
    row.deleted_at, row.updated_at = None, utc_now()
    _write(
        session, row, action=AuditAction.RESTORE, resource=resource, actor=actor, before=before,
        after=also | {"deleted_at": None}, details=details,
    )
    return before["deleted_at"]


def _write(
    session: Session,
    row: SoftDeletable,
    *,
    action: AuditAction,
    resource: str,
    actor: Actor | None,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    details: Mapping[str, Any] | None,
) -> None:
    session.add(row)
    session.flush()
    audit_log.record(
        session, action=action, resource=resource, resource_id=row.id, actor=actor,
        changes=audit_log.changed_fields(before, after), details=details,
    )
