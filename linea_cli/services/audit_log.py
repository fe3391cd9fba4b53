"""The one code path that writes the audit log. Every change to data goes through `record`.

It adds the row to the caller's session, so the audit row commits or rolls back with the change.
Reading the log (`linea audit ...`) is `services/audit.py`; this module imports nothing from the
other services, so any of them can record without an import circle.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from linea_cli.db.engine import USER_AGENT
from linea_cli.db.models import AuditLog
from linea_cli.ids import new_id
from linea_cli.serialize import jsonable
from linea_cli.services.actors import Actor
from linea_cli.timeutil import utc_now

# Field names whose values never go into the audit log, whatever resource they belong to.
SECRET_FIELDS = frozenset({"token", "password", "password_hash", "secret"})


class AuditAction(StrEnum):
    """Every action linea writes. The platform writes its own (`user.login`, ...): readers take any text."""

    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    RESTORE = "RESTORE"
    PUBLISH = "PUBLISH"
    CANCEL = "CANCEL"
    COMPLETE = "COMPLETE"
    PROMOTE = "PROMOTE"
    IMPORT = "IMPORT"
    IMPORT_UNDONE = "IMPORT_UNDONE"  # an unfinished import's entries removed (services/import_journal.py)
    EXPORT = "EXPORT"
    REVOKE = "REVOKE"
    PURGE = "PURGE"
    SEED = "SEED"
    ANONYMIZE = "ANONYMIZE"
    GRANT = "GRANT"
    TERMINATE = "TERMINATE"  # a database session ended (`db terminate`); `db cancel` writes CANCEL


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"before": old, "after": new}} for the fields whose values differ."""
    changes: dict[str, dict[str, Any]] = {}
    for field in after:
        old, new = before.get(field), after[field]
        if old != new:
            changes[field] = {"before": jsonable(old), "after": jsonable(new)}
    return changes


def record(
    session: Session,
    *,
    action: AuditAction,
    resource: str,
    resource_id: str,
    actor: Actor | None,
    changes: Mapping[str, Mapping[str, Any]] | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditLog:
    """Add one audit row: what was done, to what, by whom, what changed."""
    metadata: dict[str, Any] = {"actor": "user" if actor else "system"}
    if changes:
        metadata["changes"] = {
            field: ({"before": "***", "after": "***"} if field in SECRET_FIELDS else jsonable(dict(change)))
            for field, change in changes.items()
        }
    if details:
        metadata.update({key: jsonable(value) for key, value in details.items() if key not in SECRET_FIELDS})
    row = AuditLog(
        id=new_id(),
        action=AuditAction(action).value,
        resource=resource,
        resource_id=resource_id,
        user_id=actor.user_id if actor else None,
        user_agent=USER_AGENT,
        metadata_=metadata,
        created_at=utc_now(),
    )
    session.add(row)
    session.flush()
    return row
