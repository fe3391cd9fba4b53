"""Venues: list, show (with upcoming events), create, update, soft delete and restore.

Venues have no owner, so changing them is for ADMINs (and the system); everyone may read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session

from linea_cli import fields
from linea_cli.db.like import like_pattern
from linea_cli.db.models import Event, EventStatus, Venue
from linea_cli.errors import Conflict, InvalidInput, NotFound, parameter, shown
from linea_cli.fields import VENUES, InvalidField
from linea_cli.ids import new_id
from linea_cli.services import audit_log, soft_delete
from linea_cli.services.actors import Actor, require_admin
from linea_cli.services.audit_log import AuditAction
from linea_cli.services.pagination import Page, paginate
from linea_cli.timeutil import utc_now

RESOURCE = "Venue"
# The columns a person edits (linea_cli.fields.VENUES), those a venue must have, those `clear` may empty.
EDITABLE = fields.keys(fields.editable(VENUES))
REQUIRED = fields.keys(field for field in VENUES if field.required)
CLEARABLE = frozenset(fields.keys(fields.clearable(VENUES)))
# Values given for a change, by field; None means "not given".
VenueFields = fields.values_class("VenueFields", VENUES)
UPCOMING_SHOWN = 50


@dataclass(frozen=True)
class VenueFilter:
    city: str | None = None
    country: str | None = None
    search: str | None = None
    include_deleted: bool = False


def list_venues(session: Session, *, filters: VenueFilter, limit: int = 50, after: str | None = None) -> Page[dict]:
    """One page of venues sorted by (name, id), keyset-paginated."""
    venues = Venue.__table__
    query = sa.select(*(venues.c[name] for name in fields.keys(fields.listed(VENUES))))
    if not filters.include_deleted:
        query = query.where(venues.c.deleted_at.is_(None))
    if filters.city and filters.city.strip():
        query = query.where(sa.func.lower(venues.c.city) == filters.city.strip().lower())
    if filters.country and filters.country.strip():
        query = query.where(sa.func.lower(venues.c.country) == filters.country.strip().lower())
    if filters.search and filters.search.strip():
        pattern = like_pattern(filters.search.strip())
        query = query.where(
            sa.or_(*(venues.c[name].ilike(pattern, escape="\\") for name in ("name", "address", "city")))
        )
    return paginate(session, query, kind="venues", sort_columns=[venues.c.name, venues.c.id], limit=limit, after=after)


def find_venue(session: Session, venue_id: str, *, include_deleted: bool = False, lock: bool = False) -> Venue:
    """The venue with this id; NotFound otherwise (also when deleted, unless `include_deleted`)."""
    query = sa.select(Venue).where(Venue.id == venue_id.strip())
    if lock:
        query = query.with_for_update()
    venue = session.execute(query).scalar_one_or_none()
    if venue is None or (venue.deleted_at is not None and not include_deleted):
        raise NotFound(f"no venue {shown(venue_id)}" + (" (it is deleted)" if venue is not None else ""))
    return venue


def show_venue(session: Session, venue_id: str, *, include_deleted: bool = False) -> dict[str, Any]:
    """The venue and its upcoming (not deleted) events, soonest first."""
    return venue_record(session, find_venue(session, venue_id, include_deleted=include_deleted), with_events=True)


def venue_record(session: Session, venue: Venue, *, with_events: bool = False) -> dict[str, Any]:
    record = fields.record(VENUES, venue)
    if with_events:
        events = Event.__table__
        upcoming = _upcoming(venue.id)
        record["upcoming_event_count"] = session.execute(
            sa.select(sa.func.count()).select_from(events).where(upcoming)
        ).scalar_one()
        rows = session.execute(
            sa.select(events.c.slug, events.c.title, events.c.status, events.c.start_date)
            .where(upcoming)
            .order_by(events.c.start_date, events.c.id)
            .limit(UPCOMING_SHOWN)
        ).mappings()
        record["upcoming_events"] = [
            {**row, "status": EventStatus(row["status"]).name} for row in rows
        ]
    return record


def _upcoming(venue_id: str) -> sa.ColumnElement[bool]:
    events = Event.__table__
    return sa.and_(events.c.venue_id == venue_id, events.c.deleted_at.is_(None), events.c.start_date >= utc_now())


def website_problem(url: str) -> str | None:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname or "." not in parts.hostname or any(ch.isspace() for ch in url.strip()):
        return "it needs a host name such as example.com"
    return None


def _validate(values: dict[str, Any]) -> None:
    for name in REQUIRED:
        if not (values.get(name) or "").strip():
            raise InvalidInput(f"the {name} must not be empty")
    lat, lng, website = values.get("latitude"), values.get("longitude"), values.get("website")
    if lat is not None and not -90 <= lat <= 90:
        raise InvalidField("latitude", after=f": latitude {lat} is outside [-90, 90]")
    if lng is not None and not -180 <= lng <= 180:
        raise InvalidField("longitude", after=f": longitude {lng} is outside [-180, 180]")
    if website is not None:
        problem = website_problem(website)
        if problem:
            raise InvalidInput(f"invalid website {shown(website)}: {problem}")


def _cleaned(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value.strip() if isinstance(value, str) else value for name, value in values.items()}


def create_venue(session: Session, *, fields_: VenueFields, actor: Actor | None) -> dict[str, Any]:
    """Create a venue."""
    require_admin(actor, "create venues")
    values = _cleaned({name: getattr(fields_, name) for name in EDITABLE})
    _validate(values)
    now = utc_now()
    venue = Venue(id=new_id(), **values, created_at=now, updated_at=now, deleted_at=None)
    session.add(venue)
    session.flush()
    audit_log.record(
        session, action=AuditAction.CREATE, resource=RESOURCE, resource_id=venue.id, actor=actor,
        changes=audit_log.changed_fields({}, values),
    )
    return venue_record(session, venue)


def update_venue(
    session: Session, venue_id: str, *, fields_: VenueFields, clear: tuple[str, ...] = (), actor: Actor | None
) -> dict[str, Any]:
    """Change the given fields and empty the `clear`ed ones."""
    require_admin(actor, "update venues")
    venue = find_venue(session, venue_id, lock=True)
    given = _cleaned(fields.given(VENUES, fields_))
    to_clear = set(clear)
    if to_clear - CLEARABLE:
        raise InvalidInput(f"cannot clear {', '.join(sorted(to_clear - CLEARABLE))}: choose from {', '.join(sorted(CLEARABLE))}")
    if to_clear & set(given):
        raise InvalidField(min(to_clear & set(given)), after=" is both given and cleared")
    before = {name: getattr(venue, name) for name in EDITABLE}
    after = {**before, **given, **dict.fromkeys(to_clear)}
    _validate(after)
    changes = audit_log.changed_fields(before, after)
    if not changes:
        return venue_record(session, venue)
    for name in changes:
        setattr(venue, name, after[name])
    venue.updated_at = utc_now()
    session.flush()
    audit_log.record(session, action=AuditAction.UPDATE, resource=RESOURCE, resource_id=venue.id, actor=actor, changes=changes)
    return venue_record(session, venue)


def delete_venue(session: Session, venue_id: str, *, actor: Actor | None, force: bool = False) -> dict[str, Any]:
    """Soft-delete a venue; with upcoming events it is refused unless `force`, which detaches them.

    The venue row is locked first: an event being created at this venue (which takes FOR SHARE on
    it) either commits before and is counted, or waits and then finds the venue deleted.
    """
    require_admin(actor, "delete venues")
    venue = find_venue(session, venue_id, include_deleted=True, lock=True)
    name, hint = f"venue {venue.id}", f"linea venues restore {venue.id}"
    soft_delete.require_live(venue, name=name, hint=hint)  # before any event is detached
    events = Event.__table__
    upcoming = _upcoming(venue.id)
    detached: list[str] = []
    if not force:
        count = session.execute(sa.select(sa.func.count()).select_from(events).where(upcoming)).scalar_one()
        if count:
            raise Conflict(
                f"venue {venue.id} ({venue.name}) has {count} upcoming event(s)",
                hint=f"pass {parameter('force', value=True)} to detach them from the venue and delete it",
            )
    else:
        now = utc_now()
        detached = list(
            session.execute(
                sa.update(events).where(upcoming).values(venue_id=None, updated_at=now).returning(events.c.id)
            ).scalars()
        )
        # One audit row per detached event, so each event's history says where its venue went.
        for event_id in sorted(detached):
            audit_log.record(
                session, action=AuditAction.UPDATE, resource="Event", resource_id=event_id, actor=actor,
                changes={"venue_id": {"before": venue.id, "after": None}},
                details={"reason": "its venue was deleted (forced: upcoming events detached)"},
            )
    soft_delete.soft_delete(
        session, venue, resource=RESOURCE, actor=actor, name=name, hint=hint,
        details={"detached_events": len(detached)} if force else None,
    )
    return {**venue_record(session, venue), "detached_events": len(detached)}


def restore_venue(session: Session, venue_id: str, *, actor: Actor | None) -> dict[str, Any]:
    """Undo a soft delete (events detached by a forced delete stay detached)."""
    require_admin(actor, "restore venues")
    venue = find_venue(session, venue_id, include_deleted=True, lock=True)
    soft_delete.restore(session, venue, resource=RESOURCE, actor=actor, name=f"venue {venue.id}")
    return venue_record(session, venue)
