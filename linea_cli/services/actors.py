"""Who is acting: the user named by --as / LINEA_ACTOR, or the system (cron) when nobody is."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from linea_cli.config import actor_reference
from linea_cli.enums import UserRole
from linea_cli.errors import DatabaseUnavailable, PermissionDenied, parameter

if TYPE_CHECKING:
    from sqlmodel import Session


@dataclass(frozen=True)
class Actor:
    """An acting user. `None` in place of an Actor means linea acts as the system."""

    user_id: str
    email: str
    role: UserRole

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN


# What a job of many transactions (a purge's batches) takes instead of one session: each call
# opens a unit of work and gives its session with the acting user, resolved inside it.
UnitOfWork = Callable[[], AbstractContextManager[tuple["Session", Actor | None]]]


def resolve_actor(session: Session, reference: str | None) -> Actor | None:
    """`actor_on` in a session's transaction (on its own connection)."""
    if actor_reference(reference) is None:
        return None
    from linea_cli.services.reads import driver_connection

    return actor_on(driver_connection(session), reference)


def actor_on(connection: Any, reference: str | None) -> Actor | None:
    """The one live user named by exactly this address (any case) or id; None (unset) is the system.

    An empty value is an error, never the system: a script's unset variable must get less power,
    not more. Addresses are compared whole, never as a pattern (`%` would match anyone).
    `connection` is a psycopg connection (read commands load no SQLAlchemy: services/reads.py).
    """
    text = actor_reference(reference)
    if text is None:
        return None
    import psycopg

    from linea_cli.services.reads import rows

    try:
        users = rows(
            connection,
            "SELECT id, email, role FROM users WHERE (lower(email) = %s OR id = %s) AND deleted_at IS NULL LIMIT 2",
            (text.strip().lower(), text),
        )
    except psycopg.errors.LockNotAvailable:
        # Another session holds (or queues for) an ACCESS EXCLUSIVE lock on users: a LOCK TABLE,
        # a deploy's ALTER TABLE. Nobody can be checked until it ends; the system needs no check.
        raise DatabaseUnavailable(
            f"cannot check the acting user {text!r} ({parameter('actor')} / LINEA_ACTOR): another session holds "
            "or waits for a lock on the users table (gave up waiting for it)",
            hint=f"`linea db activity` shows that session; without {parameter('actor')} / LINEA_ACTOR (as the system), "
            "`linea db terminate PID` can end it",
        ) from None
    if len(users) != 1:
        problem = "does not exist or is deleted" if not users else "is ambiguous (addresses that differ only in case)"
        raise PermissionDenied(f"acting user {text!r} {problem} ({parameter('actor')} / LINEA_ACTOR)")
    user = users[0]
    return Actor(user_id=user["id"], email=user["email"], role=UserRole(user["role"]))


def require_admin(actor: Actor | None, action: str) -> None:
    """The system and ADMINs pass; anyone else is refused."""
    if actor is not None and not actor.is_admin:
        raise PermissionDenied(f"{actor.email} ({actor.role.name}) may not {action}: ADMIN only")


def require_self_or_admin(actor: Actor | None, user_id: str | None, action: str) -> None:
    """The system and ADMINs pass; anyone else only about themselves (`user_id` is theirs).

    `action` says what they may do, e.g. "revoke their own sessions".
    """
    if actor is not None and not actor.is_admin and actor.user_id != user_id:
        raise PermissionDenied(f"{actor.email} ({actor.role.name}) may only {action}: ADMIN only")


def require_manager_of(actor: Actor | None, *, owner_id: str, action: str) -> None:
    """The system, ADMINs, and the OWNER who owns the thing pass; everyone else is refused."""
    if actor is None or actor.is_admin:
        return
    if actor.role is UserRole.OWNER and actor.user_id == owner_id:
        return
    if actor.role is UserRole.OWNER:
        raise PermissionDenied(f"{actor.email} may not {action}: it belongs to another owner")
    raise PermissionDenied(f"{actor.email} ({actor.role.name}) may not {action}")


def require_role(actor: Actor | None, roles: set[UserRole], action: str) -> None:
    """The system passes; a user passes only with one of `roles`."""
    if actor is not None and actor.role not in roles:
        allowed = " or ".join(sorted(role.name for role in roles))
        raise PermissionDenied(f"{actor.email} ({actor.role.name}) may not {action}: {allowed} only")
