"""Users: the lifecycle an ADMIN manages (create, update, roles, soft delete, restore).

Two guards keep the platform administrable: the last ADMIN can be neither demoted nor deleted
(the admin rows are locked while counting, so two admins demoting each other at the same moment
cannot both succeed), and a user who still owns events cannot become a VISITOR without --force.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from linea_cli import fields
from linea_cli.db.like import like_pattern
from linea_cli.db.models import Event, User, UserRole
from linea_cli.db.models import Session as LoginSession
from linea_cli.errors import Conflict, InvalidInput, parameter, shown
from linea_cli.fields import USERS
from linea_cli.ids import new_id
from linea_cli.services import audit_log, soft_delete
from linea_cli.services.actors import Actor, require_admin
from linea_cli.services.audit_log import AuditAction
from linea_cli.services.emails import normalize_email, same_address
from linea_cli.services.pagination import Page, paginate
from linea_cli.services.reads import pick_user, user_reference
from linea_cli.timeutil import utc_now

# A user's record: every field of linea_cli.fields.USERS.
RECORD_FIELDS = fields.keys(fields.stored(USERS))
# Anonymized users keep a placeholder address on this reserved domain (RFC 2606).
ANONYMIZED_DOMAIN = "anonymized.invalid"


def placeholder_address(row_id: str) -> str:
    """What an erased address becomes: unique per row, derived from nothing personal."""
    return f"deleted-{row_id}@{ANONYMIZED_DOMAIN}"


def placeholder_address_sql(id_column: str) -> str:
    """`placeholder_address` computed in SQL from the row's id column (for set-based erasure)."""
    return f"('deleted-' || {id_column} || '@{ANONYMIZED_DOMAIN}')"


def find_user(session: Session, reference: str, *, include_deleted: bool = False) -> User:
    """The user with this email (any case) or id; NotFound otherwise.

    The platform's table may hold two addresses that differ only in case (its unique key is
    case-sensitive); such a reference is ambiguous and names no one.
    """
    text = user_reference(reference)
    candidates = session.exec(select(User).where(same_address(User.email, text) | (User.id == text)).limit(10)).all()
    return pick_user(
        candidates, reference, include_deleted=include_deleted, id_and_deleted=lambda user: (user.id, user.deleted_at)
    )


def user_record(user: User) -> dict[str, Any]:
    return fields.record(USERS, user)


def is_anonymized(user: User) -> bool:
    return user.email.endswith("@" + ANONYMIZED_DOMAIN)


def anonymized_sql(email_column: str) -> str:
    """`is_anonymized` in SQL, for an address column: it holds a placeholder (any case)."""
    return f"right(lower({email_column}), {len(ANONYMIZED_DOMAIN) + 1}) = '@{ANONYMIZED_DOMAIN}'"


@dataclass(frozen=True)
class UserFilter:
    role: UserRole | None = None
    search: str | None = None
    include_deleted: bool = False


def list_users(
    session: Session, *, filters: UserFilter, actor: Actor | None, limit: int = 50, after: str | None = None
) -> Page[dict]:
    require_admin(actor, "list users")
    users = User.__table__
    query = sa.select(*(users.c[name] for name in RECORD_FIELDS))
    if not filters.include_deleted:
        query = query.where(users.c.deleted_at.is_(None))
    if filters.role is not None:
        query = query.where(users.c.role == filters.role)
    if filters.search:
        pattern = like_pattern(filters.search.strip())
        query = query.where(sa.or_(users.c.email.ilike(pattern, escape="\\"), users.c.name.ilike(pattern, escape="\\")))
    return paginate(session, query, kind="users", sort_columns=[users.c.email, users.c.id], limit=limit, after=after)


def show_user(session: Session, *, reference: str, actor: Actor | None) -> dict[str, Any]:
    """The user with what points at them: owned events, waitlist entries, live sessions, last activity
    (`reads.user_summary`, in this session)."""
    from linea_cli.services.reads import driver_connection, user_summary

    return user_summary(driver_connection(session), reference=reference, actor=actor)


def create_user(
    session: Session, *, email: str, name: str | None = None, role: UserRole = UserRole.VISITOR, actor: Actor | None
) -> User:
    require_admin(actor, "create users")
    address = normalize_email(email)
    _check_email_free(session, address)
    now = utc_now()
    user = User(id=new_id(), email=address, name=_clean_name(name), role=role, created_at=now, updated_at=now)
    try:
        # A savepoint: another process may insert the same address between the check and here.
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a user with email {shown(address)} already exists") from exc
    audit_log.record(
        session,
        action=AuditAction.CREATE,
        resource="User",
        resource_id=user.id,
        actor=actor,
        changes=audit_log.changed_fields({}, {"email": user.email, "name": user.name, "role": user.role}),
    )
    return user


def update_user(
    session: Session, *, reference: str, name: str | None = None, email: str | None = None, actor: Actor | None
) -> tuple[User, dict[str, dict[str, Any]]]:
    """Change the name (an empty name clears it) and/or the email; returns the user and the changes."""
    require_admin(actor, "update users")
    if name is None and email is None:
        raise InvalidInput("nothing to update: give a name and/or an email")
    user = find_user(session, reference)
    _refuse_if_anonymized(user, "updated")
    before = {"email": user.email, "name": user.name}
    after = dict(before)
    if name is not None:
        after["name"] = _clean_name(name)
    if email is not None:
        after["email"] = normalize_email(email)
        if after["email"] != user.email:
            _check_email_free(session, after["email"])
    changes = audit_log.changed_fields(before, after)
    if not changes:
        return user, {}
    user.email, user.name, user.updated_at = after["email"], after["name"], utc_now()
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a user with email {shown(after['email'])} already exists") from exc
    audit_log.record(session, action=AuditAction.UPDATE, resource="User", resource_id=user.id, actor=actor, changes=changes)
    return user, changes


def set_role(
    session: Session, *, reference: str, role: UserRole, force: bool = False, actor: Actor | None
) -> tuple[User, bool]:
    """Give the user `role`; returns the user and whether anything changed."""
    require_admin(actor, "change roles")
    user = find_user(session, reference)
    old = UserRole(user.role)
    if old is role:
        return user, False
    if old is UserRole.ADMIN:
        refuse_last_admin(session, user, "demote")
    owned = _owned_event_count(session, user.id) if role is UserRole.VISITOR else 0
    if owned and not force:
        raise Conflict(
            f"{user.email} owns {owned} event(s) that are not deleted; a VISITOR cannot own events",
            hint=f"pass {parameter('force', value=True)} to demote anyway (the events keep their owner), or move the events first",
        )
    user.role, user.updated_at = role, utc_now()
    session.add(user)
    session.flush()
    audit_log.record(
        session,
        action=AuditAction.UPDATE,
        resource="User",
        resource_id=user.id,
        actor=actor,
        changes=audit_log.changed_fields({"role": old}, {"role": role}),
        details={"forced": True, "owned_events": owned} if owned else None,
    )
    return user, True


def delete_user(session: Session, *, reference: str, actor: Actor | None) -> tuple[User, int]:
    """Soft-delete the user and revoke their live sessions; returns the user and sessions revoked."""
    require_admin(actor, "delete users")
    user = find_user(session, reference)
    if user.role == UserRole.ADMIN:
        refuse_last_admin(session, user, "delete")
    now = utc_now()
    revoked = revoke_live_sessions(session, user_id=user.id, now=now)
    soft_delete.soft_delete(
        session, user, resource="User", actor=actor, name=user.email, details={"sessions_revoked": revoked}, now=now
    )
    return user, revoked


def restore_user(session: Session, *, reference: str, actor: Actor | None) -> User:
    require_admin(actor, "restore users")
    user = find_user(session, reference, include_deleted=True)
    soft_delete.restore(
        session, user, resource="User", actor=actor, name=user.email, refuse=lambda: _refuse_if_anonymized(user, "restored")
    )
    return user


def revoke_live_sessions(session: Session, *, user_id: str, now: Any) -> int:
    """Soft-delete the user's sessions that are neither revoked nor expired (no audit row: callers write it)."""
    sessions = LoginSession.__table__
    result = session.execute(
        sa.update(sessions)
        .where(sessions.c.user_id == user_id, sessions.c.deleted_at.is_(None), sessions.c.expires_at > now)
        .values(deleted_at=now, updated_at=now)
    )
    return result.rowcount


def refuse_last_admin(session: Session, user: User, verb: str) -> None:
    users = User.__table__
    # Lock every live ADMIN row: two transactions demoting the last two admins queue here, and the
    # second one re-reads the rows after the first commits, so it sees one admin fewer.
    admins = session.execute(
        sa.select(users.c.id)
        .where(users.c.role == UserRole.ADMIN, users.c.deleted_at.is_(None))
        .with_for_update()
    ).scalars().all()
    if user.deleted_at is None and set(admins) <= {user.id}:
        raise Conflict(f"refusing to {verb} {user.email}: the last ADMIN", hint="make another user ADMIN first")


def _owned_event_count(session: Session, user_id: str) -> int:
    return session.execute(
        sa.select(sa.func.count()).where(Event.owner_id == user_id, Event.deleted_at.is_(None))
    ).scalar_one()


def _check_email_free(session: Session, address: str) -> None:
    taken = session.exec(select(User).where(same_address(User.email, address))).first()
    if taken is not None:
        state = " (a deleted user: restore it with `linea users restore`)" if taken.deleted_at else ""
        raise Conflict(f"a user with email {shown(address)} already exists{state}")


def _refuse_if_anonymized(user: User, participle: str) -> None:
    if is_anonymized(user):
        raise Conflict(f"user {user.id} was anonymized and cannot be {participle}")


def _clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    cleaned = " ".join(name.split())
    return cleaned or None
