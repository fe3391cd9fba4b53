"""Events: listing, details, create and update, the status machine, soft delete, complete-past.

Status moves: DRAFT -> PUBLISHED -> COMPLETED, and DRAFT/PUBLISHED -> CANCELLED. CANCELLED and
COMPLETED are final: `publish` does not re-open a cancelled event (create a new one instead), so
that people told "cancelled" are never surprised by the event coming back.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from linea_cli import fields
from linea_cli.db.models import (
    INTEGER_MAX,
    Event,
    EventStatus,
    User,
    UserRole,
    Venue,
    WaitlistEntry,
    WaitlistStatus,
)
from linea_cli.errors import Conflict, InvalidInput, NotFound, parameter, shown
from linea_cli.fields import EVENTS, InvalidField
from linea_cli.ids import new_id
from linea_cli.services import audit_log, soft_delete
from linea_cli.services.actors import (
    Actor,
    require_admin,
    require_manager_of,
    require_role,
    require_self_or_admin,
)
from linea_cli.services.audit_log import AuditAction
from linea_cli.services.pagination import Page
from linea_cli.services.reads import (  # the reads read commands make without the ORM; here for the library
    EventFilter,
    driver_connection,
    events_page,
    over_capacity,  # noqa: F401 - cli/events.py's, with the rest of events
    places_left,
)
from linea_cli.services.users import find_user
from linea_cli.timeutil import utc_now

RESOURCE = "Event"
SLUG_MAX_LENGTH = 80
_SLUG_SHAPE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}
_NOCOOKIE_HOSTS = {"youtube-nocookie.com", "www.youtube-nocookie.com"}
_SHARE_HOSTS = {"youtu.be", "www.youtu.be"}
# The columns a person edits (linea_cli.fields.EVENTS); snapshots of them feed the audit log's before/after.
EDITABLE = fields.keys(fields.editable(EVENTS))
# The fields `update_event(clear=...)` may empty.
CLEARABLE = frozenset(fields.keys(fields.clearable(EVENTS)))
# Values given for a change, by field (`owner`: an email or id); None means "not given" (use `clear` to empty a field).
EventFields = fields.values_class("EventFields", EVENTS)


# ---------------------------------------------------------------------------------------- reading


def list_events(session: Session, *, filters: EventFilter, limit: int = 50, after: str | None = None) -> Page[dict]:
    """One page of events sorted by (start_date, id), keyset-paginated (`reads.events_page`, in this session)."""
    return events_page(driver_connection(session), filters=filters, limit=limit, after=after)


def find_event(session: Session, reference: str, *, include_deleted: bool = False) -> Event:
    """The event with this slug or id; NotFound otherwise."""
    from sqlmodel import or_, select

    query = select(Event).where(or_(Event.slug == reference.strip(), Event.id == reference.strip()))
    event = session.exec(query).first()
    if event is None or (event.deleted_at is not None and not include_deleted):
        raise NotFound(f"no event {shown(reference)}" + (" (it is deleted)" if event is not None else ""))
    return event


def show_event(session: Session, reference: str, *, include_deleted: bool = False) -> dict[str, Any]:
    """The event with its owner, venue, waitlist counts per status, capacity and places left."""
    return event_record(session, find_event(session, reference, include_deleted=include_deleted))


def event_record(session: Session, event: Event) -> dict[str, Any]:
    owner = session.get(User, event.owner_id)
    venue = session.get(Venue, event.venue_id) if event.venue_id else None
    entries = WaitlistEntry.__table__
    counts = dict(
        session.execute(
            sa.select(entries.c.status, sa.func.count())
            .where(entries.c.event_id == event.id, entries.c.deleted_at.is_(None))
            .group_by(entries.c.status)
        ).all()
    )
    confirmed = counts.get(WaitlistStatus.CONFIRMED, 0)
    return fields.record(EVENTS, event, {
        "places_left": places_left(event.capacity, confirmed),
        "waitlist_pending": counts.get(WaitlistStatus.PENDING, 0),
        "waitlist_confirmed": confirmed,
        "waitlist_cancelled": counts.get(WaitlistStatus.CANCELLED, 0),
        "owner_email": owner.email if owner else None,
        "owner_name": owner.name if owner else None,
        "venue_name": venue.name if venue else None,
    })


def confirmed_count(session: Session, event: Event) -> int:
    """CONFIRMED entries that are not removed: what the capacity limits."""
    entries = WaitlistEntry.__table__
    return session.execute(
        sa.select(sa.func.count()).where(
            entries.c.event_id == event.id,
            entries.c.status == WaitlistStatus.CONFIRMED,
            entries.c.deleted_at.is_(None),
        )
    ).scalar_one()


# ----------------------------------------------------------------------------------- validation


def youtube_problem(url: str) -> str | None:
    """Why `url` is not a YouTube watch, share or embed link, or None when it is one."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        return "it must start with https://"
    host = (parts.hostname or "").lower()
    path = parts.path
    video = ""
    if host in _SHARE_HOSTS:
        video = path.strip("/")
    elif host in _YOUTUBE_HOSTS and path.rstrip("/") == "/watch":
        video = parse_qs(parts.query).get("v", [""])[0]
    elif host in _YOUTUBE_HOSTS | _NOCOOKIE_HOSTS and path.startswith("/embed/"):
        video = path[len("/embed/"):].strip("/")
    else:
        return "use a youtube.com/watch?v=..., youtu.be/... or youtube.com/embed/... link"
    if not _YOUTUBE_ID.match(video):
        return "it does not name a video (11 characters of letters, digits, - or _)"
    return None


def _validate(values: dict[str, Any]) -> None:
    """The rules every event obeys, checked on the values it will have after the change."""
    if not (values.get("title") or "").strip():
        raise InvalidInput("the title must not be empty")
    start, end = values.get("start_date"), values.get("end_date")
    if start is not None and end is not None and end < start:
        raise InvalidInput(f"the end ({end.isoformat(sep=' ')} UTC) is before the start ({start.isoformat(sep=' ')} UTC)")
    capacity = values.get("capacity")
    if capacity is not None and not 0 <= capacity <= INTEGER_MAX:
        raise InvalidField("capacity", after=f" must be between 0 and {INTEGER_MAX}, not {capacity}")
    lat, lng, zoom = values.get("map_lat"), values.get("map_lng"), values.get("map_zoom")
    if lat is not None and not -90 <= lat <= 90:
        raise InvalidField("map_lat", after=f": latitude {lat} is outside [-90, 90]")
    if lng is not None and not -180 <= lng <= 180:
        raise InvalidField("map_lng", after=f": longitude {lng} is outside [-180, 180]")
    if zoom is not None and not 0 <= zoom <= 22:
        raise InvalidField("map_zoom", after=f": zoom {zoom} is outside [0, 22]")
    url = values.get("youtube_url")
    if url is not None:
        problem = youtube_problem(url)
        if problem:
            raise InvalidInput(f"invalid YouTube URL {shown(url)}: {problem}")


def _find_user(session: Session, reference: str) -> User | None:
    try:
        return find_user(session, reference, include_deleted=True)
    except NotFound:
        return None


def _eligible_owner(session: Session, reference: str) -> User:
    user = _find_user(session, reference)
    if user is None or user.deleted_at is not None:
        raise InvalidInput(f"owner {shown(reference)} does not exist" + (" (deleted)" if user is not None else ""))
    if UserRole(user.role) is UserRole.VISITOR:
        raise InvalidInput(f"owner {user.email} is a VISITOR: events are owned by OWNERs or ADMINs")
    return user


def _usable_venue(session: Session, venue_id: str) -> Venue:
    # FOR SHARE: a concurrent `venues delete` (FOR UPDATE) waits, so no event joins a deleted venue.
    venue = session.execute(
        sa.select(Venue).where(Venue.id == venue_id.strip()).with_for_update(read=True)
    ).scalar_one_or_none()
    if venue is None:
        raise InvalidInput(f"venue {shown(venue_id)} does not exist")
    if venue.deleted_at is not None:
        raise InvalidInput(f"venue {shown(venue_id)} ({venue.name}) is deleted", hint=f"linea venues restore {venue.id}")
    return venue


def _check_slug_shape(slug: str) -> str:
    slug = slug.strip()
    if not _SLUG_SHAPE.match(slug) or len(slug) > SLUG_MAX_LENGTH + 10:
        raise InvalidInput(
            f"invalid slug {shown(slug)}: use lowercase letters, digits and single hyphens, e.g. summer-fest-2026"
        )
    return slug


def _check_publishable(start_date: datetime, *, force: bool, slug: str) -> None:
    if not force and start_date <= utc_now():
        raise Conflict(
            f"event {shown(slug)} starts in the past ({start_date.isoformat(sep=' ', timespec='minutes')} UTC); "
            "only future events are published",
            hint=f"pass {parameter('force', value=True)} to publish it anyway",
        )


# -------------------------------------------------------------------------------------- changes


def create_event(
    session: Session, *, fields_: EventFields, actor: Actor | None, publish: bool = False, force: bool = False
) -> dict[str, Any]:
    """Create an event (DRAFT, or PUBLISHED with `publish`); the slug comes from the title unless given."""
    require_role(actor, {UserRole.OWNER, UserRole.ADMIN}, "create events")
    if fields_.title is None or fields_.start_date is None:
        raise InvalidInput("an event needs a title and a start date")
    if fields_.owner:
        owner = _eligible_owner(session, fields_.owner)
        require_self_or_admin(actor, owner.id, f"create events they own, not for {owner.email}")
    elif actor is not None:
        owner = _eligible_owner(session, actor.user_id)
    else:
        raise InvalidField("owner_id", after=f" is required when linea acts as the system (no {parameter('actor')} / LINEA_ACTOR)")
    # Every editable column (a new one too) from what was given; owner, venue and slug are resolved below.
    values: dict[str, Any] = {
        field.key: getattr(fields_, field.name_given) for field in fields.editable(EVENTS)
        if field.key not in ("owner_id", "venue_id", "slug")
    }
    values["title"] = values["title"].strip()
    values["owner_id"] = owner.id
    values["venue_id"] = _usable_venue(session, fields_.venue_id).id if fields_.venue_id else None
    _validate(values)
    if publish:
        _check_publishable(values["start_date"], force=force, slug=fields_.slug or values["title"])
    now = utc_now()
    values.update(
        id=new_id(), status=EventStatus.PUBLISHED if publish else EventStatus.DRAFT,
        created_at=now, updated_at=now, deleted_at=None,
    )
    if fields_.slug is not None:
        event = _insert_with_slug(session, values, _check_slug_shape(fields_.slug))
    else:
        event = _insert_with_free_slug(session, values, slug_base(values["title"]))
    audit_log.record(
        session, action=AuditAction.CREATE, resource=RESOURCE, resource_id=event.id, actor=actor,
        changes=audit_log.changed_fields({}, {**_snapshot(event), "status": event.status}),
    )
    return event_record(session, event)


def slug_base(title: str) -> str:
    from slugify import slugify  # loaded when an event is made: lists need none of it

    return slugify(title, max_length=SLUG_MAX_LENGTH, word_boundary=True) or "event"


def _insert_with_slug(session: Session, values: dict[str, Any], slug: str) -> Event:
    if session.execute(sa.select(Event.id).where(Event.slug == slug)).first() is not None:
        raise Conflict(f"the slug {shown(slug)} is taken", hint=f"choose another {parameter('slug')}, or leave it out to derive one")
    try:
        with session.begin_nested():
            event = Event(**values, slug=slug)
            session.add(event)
            session.flush()
    except IntegrityError as exc:
        if _is_slug_violation(exc):
            raise Conflict(f"the slug {shown(slug)} is taken", hint=f"choose another {parameter('slug')}") from None
        raise
    return event


def _insert_with_free_slug(session: Session, values: dict[str, Any], base: str) -> Event:
    """Insert with `base`, or `base-2`, `base-3`... whichever is free, even when creates race.

    A transaction-level advisory lock on the base serializes creates of the same title (the
    second one reads the first's row once it commits); the savepoint retry covers a collision
    with another base's suffix (the title "Fest 2" against a second "Fest").
    """
    session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": "linea:event-slug:" + base})
    for _attempt in range(10):
        slug = _free_slug(session, base)
        try:
            with session.begin_nested():
                event = Event(**values, slug=slug)
                session.add(event)
                session.flush()
            return event
        except IntegrityError as exc:
            if not _is_slug_violation(exc):
                raise
    raise Conflict(f"could not find a free slug for {shown(base)}", hint=f"retry, or pass {parameter('slug')}")


def _free_slug(session: Session, base: str, *, batch: int = 50) -> str:
    """The first of `base`, `base-2`, `base-3`... that no event (deleted or not) uses.

    Candidates are probed in batches through the unique index (`slug = ANY(...)`), rather than
    with `LIKE 'base-%'`, which no index of the default collation serves.
    """
    events = Event.__table__
    first = 1
    while True:
        candidates = [base if n == 1 else f"{base}-{n}" for n in range(first, first + batch)]
        taken = set(session.execute(sa.select(events.c.slug).where(events.c.slug.in_(candidates))).scalars())
        for candidate in candidates:
            if candidate not in taken:
                return candidate
        first += batch


def _is_slug_violation(exc: IntegrityError) -> bool:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == "events_slug_key"


def _snapshot(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in EDITABLE}


def _locked_event(session: Session, reference: str, *, include_deleted: bool = False) -> Event:
    """The event, row-locked until commit so that concurrent changes queue instead of clobbering."""
    event = find_event(session, reference, include_deleted=include_deleted)
    session.refresh(event, with_for_update=True)
    if event.deleted_at is not None and not include_deleted:
        raise NotFound(f"no event {shown(reference)} (it is deleted)")
    return event


def update_event(
    session: Session,
    reference: str,
    *,
    fields_: EventFields,
    clear: tuple[str, ...] = (),
    actor: Actor | None,
    force: bool = False,
) -> dict[str, Any]:
    """Change the given fields (and empty the `clear`ed ones); the slug changes only when given.

    A capacity below the confirmed entries is a conflict unless `force` (the event is then
    overbooked, and its places left are negative).
    """
    event = _locked_event(session, reference)
    require_manager_of(actor, owner_id=event.owner_id, action=f"update event {shown(event.slug)}")
    given = fields.given(EVENTS, fields_)
    to_clear = set(clear)
    if to_clear - CLEARABLE:
        raise InvalidInput(f"cannot clear {', '.join(sorted(to_clear - CLEARABLE))}: choose from {', '.join(sorted(CLEARABLE))}")
    conflicting = to_clear & set(given)
    if conflicting:
        raise InvalidField(min(conflicting), after=" is both given and cleared")
    before = _snapshot(event)
    after = {**before, **_new_values(session, event, given, actor=actor), **dict.fromkeys(to_clear)}
    _validate(after)
    changes = audit_log.changed_fields(before, after)
    if not changes:
        return event_record(session, event)
    if "capacity" in changes and after["capacity"] is not None and not force:
        _check_capacity_holds_confirmed(session, event, after["capacity"])
    if "slug" in changes and session.execute(
        sa.select(Event.id).where(Event.slug == after["slug"], Event.id != event.id)
    ).first():
        raise Conflict(f"the slug {shown(after['slug'])} is taken")
    for name in changes:
        setattr(event, name, after[name])
    event.updated_at = utc_now()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        if _is_slug_violation(exc):
            raise Conflict(f"the slug {shown(after['slug'])} is taken") from None
        raise
    audit_log.record(session, action=AuditAction.UPDATE, resource=RESOURCE, resource_id=event.id, actor=actor, changes=changes)
    return event_record(session, event)


def _new_values(session: Session, event: Event, given: dict[str, Any], *, actor: Actor | None) -> dict[str, Any]:
    """The given options as column values: references resolved, slug and title checked."""
    values: dict[str, Any] = {}
    for name, value in given.items():
        if name == "owner":
            owner = _eligible_owner(session, value)
            if owner.id != event.owner_id:
                # Only an ADMIN gets this far for another's event: an OWNER may hand theirs only to themselves.
                require_self_or_admin(actor, owner.id, "keep their events, not hand them to another owner")
            values["owner_id"] = owner.id
        elif name == "venue_id":
            values["venue_id"] = _usable_venue(session, value).id
        elif name == "slug":
            values["slug"] = _check_slug_shape(value)
        elif name == "title":
            values["title"] = value.strip()
        else:
            values[name] = value
    return values


def _check_capacity_holds_confirmed(session: Session, event: Event, capacity: int) -> None:
    # The event row is locked, and every confirmation locks it first: the count cannot move.
    confirmed = confirmed_count(session, event)
    if capacity < confirmed:
        raise Conflict(
            f"cannot set the capacity of {event.slug} to {capacity}: {confirmed} entries are confirmed",
            hint=f"cancel confirmed entries first, or pass {parameter('force', value=True)} to overbook the event",
        )


_MOVES: dict[EventStatus, tuple[AuditAction, frozenset[EventStatus]]] = {
    EventStatus.PUBLISHED: (AuditAction.PUBLISH, frozenset({EventStatus.DRAFT})),
    EventStatus.CANCELLED: (AuditAction.CANCEL, frozenset({EventStatus.DRAFT, EventStatus.PUBLISHED})),
    EventStatus.COMPLETED: (AuditAction.COMPLETE, frozenset({EventStatus.PUBLISHED})),
}


def _move(session: Session, reference: str, *, to: EventStatus, actor: Actor | None, force: bool = False) -> dict:
    move, allowed_from = _MOVES[to]
    verb = move.lower()
    event = _locked_event(session, reference)
    require_manager_of(actor, owner_id=event.owner_id, action=f"{verb} event {shown(event.slug)}")
    current = EventStatus(event.status)
    if current not in allowed_from:
        final = " (cancelled and completed events are final)" if current in (
            EventStatus.CANCELLED, EventStatus.COMPLETED) else ""
        raise Conflict(
            f"cannot {verb} event {shown(event.slug)}: it is {current.name}{final}; "
            f"{verb} needs {' or '.join(sorted(s.name for s in allowed_from))}"
        )
    if to is EventStatus.PUBLISHED:
        _check_publishable(event.start_date, force=force, slug=event.slug)
    event.status = to
    event.updated_at = utc_now()
    session.flush()
    audit_log.record(
        session, action=move, resource=RESOURCE, resource_id=event.id, actor=actor,
        changes={"status": {"before": current, "after": to}},
    )
    return event_record(session, event)


def publish_event(session: Session, reference: str, *, actor: Actor | None, force: bool = False) -> dict[str, Any]:
    """DRAFT -> PUBLISHED; the start must be in the future unless `force`."""
    return _move(session, reference, to=EventStatus.PUBLISHED, actor=actor, force=force)


def cancel_event(session: Session, reference: str, *, actor: Actor | None) -> dict[str, Any]:
    """DRAFT or PUBLISHED -> CANCELLED (final)."""
    return _move(session, reference, to=EventStatus.CANCELLED, actor=actor)


def complete_event(session: Session, reference: str, *, actor: Actor | None) -> dict[str, Any]:
    """PUBLISHED -> COMPLETED (final)."""
    return _move(session, reference, to=EventStatus.COMPLETED, actor=actor)


def delete_event(session: Session, reference: str, *, actor: Actor | None) -> dict[str, Any]:
    """Soft-delete: set deleted_at; the row stays for the audit trail and `restore`."""
    event = _locked_event(session, reference, include_deleted=True)
    require_manager_of(actor, owner_id=event.owner_id, action=f"delete event {shown(event.slug)}")
    soft_delete.soft_delete(
        session, event, resource=RESOURCE, actor=actor, name=f"event {shown(event.slug)}",
        hint=f"linea events restore {event.slug}",
    )
    return event_record(session, event)


def restore_event(session: Session, reference: str, *, actor: Actor | None) -> dict[str, Any]:
    """Undo a soft delete."""
    event = _locked_event(session, reference, include_deleted=True)
    require_manager_of(actor, owner_id=event.owner_id, action=f"restore event {shown(event.slug)}")
    soft_delete.restore(session, event, resource=RESOURCE, actor=actor, name=f"event {shown(event.slug)}")
    return event_record(session, event)


def complete_past_events(session: Session, *, actor: Actor | None, dry_run: bool = False) -> list[dict[str, Any]]:
    """Mark PUBLISHED events whose end (or start, without an end) is past as COMPLETED.

    One UPDATE ... RETURNING and one audit row listing the ids; nothing to do writes nothing, so
    a second run in a row changes nothing.
    """
    require_admin(actor, "complete past events")
    events = Event.__table__
    now = utc_now()
    due = sa.and_(
        events.c.status == EventStatus.PUBLISHED,
        events.c.deleted_at.is_(None),
        sa.func.coalesce(events.c.end_date, events.c.start_date) < now,
    )
    returned = (events.c.id, events.c.slug, events.c.title, events.c.start_date, events.c.end_date)
    if dry_run:
        rows = session.execute(sa.select(*returned).where(due)).mappings().all()
    else:
        rows = session.execute(
            sa.update(events).where(due).values(status=EventStatus.COMPLETED, updated_at=now).returning(*returned)
        ).mappings().all()
    done = sorted((dict(row) for row in rows), key=lambda row: (row["start_date"], row["id"]))
    if done and not dry_run:
        audit_log.record(
            session, action=AuditAction.COMPLETE, resource=RESOURCE, resource_id="complete-past", actor=actor,
            changes={"status": {"before": EventStatus.PUBLISHED, "after": EventStatus.COMPLETED}},
            details={"count": len(done), "event_ids": [row["id"] for row in done]},
        )
    return done
