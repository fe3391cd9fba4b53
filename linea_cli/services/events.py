"""Events: listing (more of the lifecycle arrives with the events issue)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from linea_cli.db.models import Event, EventStatus, User
from linea_cli.services.pagination import Page, paginate
from linea_cli.timeutil import utc_now

LIST_COLUMNS = ("slug", "title", "status", "start_date", "end_date", "capacity", "owner_email")


@dataclass(frozen=True)
class EventFilter:
    status: EventStatus | None = None
    upcoming: bool = False
    include_deleted: bool = False


def list_events(session: Session, *, filters: EventFilter, limit: int = 50, after: str | None = None) -> Page[dict]:
    events, owners = Event.__table__, User.__table__
    query = sa.select(
        events.c.id, events.c.slug, events.c.title, events.c.status, events.c.start_date, events.c.end_date,
        events.c.capacity, events.c.venue_id, events.c.deleted_at, owners.c.email.label("owner_email"),
    ).join(owners, owners.c.id == events.c.owner_id)
    if not filters.include_deleted:
        query = query.where(events.c.deleted_at.is_(None))
    if filters.status is not None:
        query = query.where(events.c.status == filters.status)
    if filters.upcoming:
        query = query.where(events.c.start_date >= utc_now())
    return paginate(session, query, sort_columns=[events.c.start_date, events.c.id], limit=limit, after=after)


def find_event(session: Session, reference: str, *, include_deleted: bool = False) -> Event:
    """The event with this slug or id; NotFound otherwise."""
    from sqlmodel import or_, select

    from linea_cli.errors import NotFound

    query = select(Event).where(or_(Event.slug == reference.strip(), Event.id == reference.strip()))
    event = session.exec(query).first()
    if event is None or (event.deleted_at is not None and not include_deleted):
        raise NotFound(f"no event {reference!r}" + (" (it is deleted)" if event is not None else ""))
    return event
