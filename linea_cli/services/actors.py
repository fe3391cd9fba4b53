"""Who is acting: the user named by --as / LINEA_ACTOR, or the system (cron) when nobody is."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from linea_cli.db.models import User, UserRole
from linea_cli.errors import PermissionDenied


@dataclass(frozen=True)
class Actor:
    """An acting user. `None` in place of an Actor means linea acts as the system."""

    user_id: str
    email: str
    role: UserRole

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN


def resolve_actor(session: Session, email: str | None) -> Actor | None:
    if not email:
        return None
    normalized = email.strip()
    user = session.exec(
        select(User).where(User.email.ilike(normalized), User.deleted_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if user is None:
        raise PermissionDenied(f"acting user {normalized!r} does not exist or is deleted (--as / LINEA_ACTOR)")
    return Actor(user_id=user.id, email=user.email, role=UserRole(user.role))


def require_admin(actor: Actor | None, action: str) -> None:
    """The system and ADMINs pass; anyone else is refused."""
    if actor is not None and not actor.is_admin:
        raise PermissionDenied(f"{actor.email} ({actor.role.name}) may not {action}: ADMIN only")


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
