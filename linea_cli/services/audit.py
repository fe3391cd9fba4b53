"""Reading the audit log: `audit list`, `audit show`, `audit export`.

Only ADMINs (and the system) read it: it holds everyone's changes. Rows the platform wrote carry
its own actions (`user.login`, ...) and any JSON, so actions are read as plain text, never as
`AuditAction`. Writing is `services/audit_log.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import Select
from sqlmodel import Session

from linea_cli.db.models import AuditLog, User
from linea_cli.errors import NotFound, shown
from linea_cli.services.actors import Actor, require_admin
from linea_cli.services.pagination import Page, paginate
from linea_cli.services.users import find_user

EXPORT_COLUMNS = (
    "id", "created_at", "action", "resource", "resource_id", "user_id", "actor_email",
    "ip_address", "user_agent", "metadata",
)


@dataclass(frozen=True)
class AuditFilter:
    resource: str | None = None
    resource_id: str | None = None
    user: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _audit_query(session: Session, filters: AuditFilter) -> Select:
    logs, users = AuditLog.__table__, User.__table__
    query = sa.select(
        logs.c.id, logs.c.created_at, logs.c.action, logs.c.resource, logs.c.resource_id, logs.c.user_id,
        users.c.email.label("actor_email"), logs.c.ip_address, logs.c.user_agent, logs.c["metadata"],
    ).outerjoin(users, users.c.id == logs.c.user_id)
    if filters.resource:
        # Exact, as recorded (User, Event, ...), so that idx_audit_logs_resource serves it.
        query = query.where(logs.c.resource == filters.resource.strip())
    if filters.resource_id:
        query = query.where(logs.c.resource_id == filters.resource_id.strip())
    if filters.user:
        query = query.where(logs.c.user_id == find_user(session, filters.user, include_deleted=True).id)
    if filters.action:
        query = query.where(logs.c.action == filters.action.strip().upper())
    if filters.since is not None:
        query = query.where(logs.c.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(logs.c.created_at < filters.until)
    return query


def list_audit(
    session: Session, *, filters: AuditFilter, actor: Actor | None, limit: int = 50, after: str | None = None
) -> Page[dict]:
    """Audit rows newest first, a page at a time."""
    require_admin(actor, "read the audit log")
    logs = AuditLog.__table__
    return paginate(
        session,
        _audit_query(session, filters),
        kind="audit",
        sort_columns=[logs.c.created_at, logs.c.id],
        limit=limit,
        after=after,
        descending=True,
    )


def show_audit(session: Session, *, audit_id: str, actor: Actor | None) -> dict[str, Any]:
    require_admin(actor, "read the audit log")
    logs = AuditLog.__table__
    row = session.execute(_audit_query(session, AuditFilter()).where(logs.c.id == audit_id.strip())).mappings().first()
    if row is None:
        raise NotFound(f"no audit row {shown(audit_id)}")
    return dict(row)


def stream_audit(
    session: Session, *, filters: AuditFilter, actor: Actor | None, after: tuple[datetime, str] | None = None,
    batch_size: int = 2000,
) -> Iterator[tuple[tuple[datetime, str], dict[str, Any]]]:
    """Every matching row after `after` (its created_at and id; None: from the first), oldest
    first, as (key, row), through a server-side cursor (memory stays flat)."""
    require_admin(actor, "export the audit log")
    logs = AuditLog.__table__
    query = _audit_query(session, filters).order_by(logs.c.created_at, logs.c.id)
    if after is not None:
        query = query.where(sa.tuple_(logs.c.created_at, logs.c.id) > sa.tuple_(*after))
    result = session.execute(query.execution_options(yield_per=batch_size))
    return (((row["created_at"], row["id"]), dict(row)) for row in result.mappings())
