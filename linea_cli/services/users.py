"""Users (more of their lifecycle arrives with the users issue)."""

from __future__ import annotations

from sqlmodel import Session, select

from linea_cli.db.models import User
from linea_cli.errors import NotFound


def find_user(session: Session, reference: str, *, include_deleted: bool = False) -> User:
    """The user with this email (any case) or id; NotFound otherwise."""
    text = reference.strip()
    query = select(User).where((User.email == text.lower()) | (User.id == text))
    user = session.exec(query).first()
    if user is None or (user.deleted_at is not None and not include_deleted):
        raise NotFound(f"no user {reference!r}" + (" (the user is deleted)" if user is not None else ""))
    return user
