"""The reads of `events list`, `users show` and `waitlist stats`, written once against a psycopg connection.

These commands load neither SQLAlchemy nor SQLModel: importing them cost more than the queries
(benchmarks/README.md, "A Tab press and read commands beside their floor"). Each query here has
one implementation, used by the command (on `linea_cli.db.direct`'s connection) and by the
library's functions that take a session (`services.events.list_events`, `services.users.show_user`,
`services.waitlist.waitlist_stats`), which hand it their session's own connection
(`driver_connection`), in their transaction.

Rows come back as they do through the ORM: timestamps naive UTC, enums as linea's enums. A query
the server refuses carries its SQL as `statement` (as SQLAlchemy's errors do), so that a refused
privilege names the table (cli/__init__.py, db/refusals.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from linea_cli import fields
from linea_cli.db.like import like_pattern
from linea_cli.enums import EventStatus, UserRole, WaitlistStatus
from linea_cli.errors import Conflict, InvalidInput, NotFound, shown
from linea_cli.fields import EVENTS, USERS, FieldNotFound
from linea_cli.services.actors import Actor, require_manager_of, require_self_or_admin
from linea_cli.services.pagination import Page, decode_cursor, encode_cursor
from linea_cli.timeutil import utc_now

T = TypeVar("T")


def driver_connection(session: Any) -> Any:
    """The psycopg connection under a SQLModel session, in the session's transaction (begun here)."""
    return session.connection().connection.driver_connection


def rows(connection: Any, statement: str, params: Any = None) -> list[dict[str, Any]]:
    """`statement`'s rows as dicts, on `connection` (psycopg), in its current transaction."""
    import psycopg
    from psycopg.rows import dict_row

    try:
        with connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall()
    except psycopg.Error as exc:
        if getattr(exc, "statement", None) is None:
            exc.statement = statement  # type: ignore[attr-defined]
        raise


def _enum(kind: type, value: Any) -> Any:
    """A platform enum's value as linea's enum (as the ORM reads it); a value linea does not know stays text."""
    try:
        return kind(value) if value is not None else None
    except ValueError:
        return value


# --- events ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventFilter:
    status: EventStatus | None = None
    owner: str | None = None
    venue_id: str | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    upcoming: bool = False
    past: bool = False
    search: str | None = None
    include_deleted: bool = False


# The list's columns (linea_cli.fields.EVENTS), the id first: the joined ones from their tables.
_JOINED = {"owner_email": "u.email", "venue_name": "v.name"}
_EVENT_COLUMNS = ", ".join(
    ["e.id", *(f"{_JOINED[f.key]} AS {f.key}" if f.key in _JOINED else f"e.{f.key}" for f in fields.listed(EVENTS) if f.key != "id")]
)


def events_page(connection: Any, *, filters: EventFilter, limit: int = 50, after: str | None = None) -> Page[dict]:
    """One page of events sorted by (start_date, id), keyset-paginated."""
    if filters.upcoming and filters.past:
        raise InvalidInput("upcoming and past exclude each other: ask for one")
    conditions, params = _event_conditions(connection, filters)
    if after is not None:  # an empty cursor is refused, not read as none
        params["after_start"], params["after_id"] = decode_cursor(after, "events", [datetime, str])
        conditions.append("(e.start_date, e.id) > (%(after_start)s, %(after_id)s)")
    params["limit"] = limit + 1
    found = rows(
        connection,
        f"SELECT {_EVENT_COLUMNS} FROM events AS e JOIN users AS u ON u.id = e.owner_id"
        " LEFT JOIN venues AS v ON v.id = e.venue_id"
        + (" WHERE " + " AND ".join(conditions) if conditions else "")
        + " ORDER BY e.start_date, e.id LIMIT %(limit)s",
        params,
    )
    for row in found:
        row["status"] = _enum(EventStatus, row["status"])
    items = found[:limit]
    next_cursor = encode_cursor("events", [items[-1]["start_date"], items[-1]["id"]]) if len(found) > limit else None
    return Page(items=items, next_cursor=next_cursor)


def _event_conditions(connection: Any, filters: EventFilter) -> tuple[list[str], dict[str, Any]]:
    """The WHERE clauses `filters` ask for and their values; an --owner or --venue that names nothing is NotFound."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if not filters.include_deleted:
        conditions.append("e.deleted_at IS NULL")
    if filters.status is not None:
        conditions.append("e.status = %(status)s")
        params["status"] = filters.status.value
    if filters.owner:
        owner = _user_or_none(connection, filters.owner)
        if owner is None:
            raise FieldNotFound("owner_id", before=f"no user {shown(filters.owner)} (", after=")")
        conditions.append("e.owner_id = %(owner_id)s")
        params["owner_id"] = owner["id"]
    if filters.venue_id:
        if not rows(connection, "SELECT 1 FROM venues WHERE id = %s", (filters.venue_id.strip(),)):
            raise FieldNotFound("venue_id", before=f"no venue {shown(filters.venue_id)} (", after=")")
        conditions.append("e.venue_id = %(venue_id)s")
        params["venue_id"] = filters.venue_id.strip()
    if filters.starts_from is not None:
        conditions.append("e.start_date >= %(starts_from)s")
        params["starts_from"] = filters.starts_from
    if filters.starts_before is not None:
        conditions.append("e.start_date < %(starts_before)s")
        params["starts_before"] = filters.starts_before
    now = utc_now()
    if filters.upcoming:
        conditions.append("e.start_date >= %(now)s")
        params["now"] = now
    if filters.past:
        conditions.append("coalesce(e.end_date, e.start_date) < %(now)s")
        params["now"] = now
    if filters.search and filters.search.strip():
        params["pattern"] = like_pattern(filters.search.strip())
        conditions.append(
            "(" + " OR ".join(f"e.{column} ILIKE %(pattern)s ESCAPE '\\'" for column in ("title", "slug", "description")) + ")"
        )
    return conditions, params


def event_row(connection: Any, reference: str, *, include_deleted: bool = False) -> dict[str, Any]:
    """The event with this slug or id (id, slug, owner_id, capacity); NotFound otherwise."""
    text = reference.strip()
    found = rows(
        connection, "SELECT id, slug, owner_id, capacity, deleted_at FROM events WHERE slug = %s OR id = %s", (text, text)
    )
    event = found[0] if found else None
    if event is None or (event["deleted_at"] is not None and not include_deleted):
        raise NotFound(f"no event {shown(reference)}" + (" (it is deleted)" if event is not None else ""))
    return event


def places_left(capacity: int | None, confirmed: int) -> int | None:
    """Places still free; negative when the event is overbooked (`update --capacity --force`), never hidden as 0."""
    return None if capacity is None else capacity - confirmed


def over_capacity(slug: str, capacity: int | None, places: int | None) -> str | None:
    """Said for people when an event holds more confirmed entries than places (`update --force`); None otherwise."""
    if capacity is None or places is None or places >= 0:
        return None
    return f"event {slug} is over capacity by {-places} ({capacity - places} confirmed, capacity {capacity})"


# --- users ----------------------------------------------------------------------------------------

_USER_COLUMNS = ", ".join(field.key for field in fields.stored(USERS))


def user_row(connection: Any, reference: str, *, include_deleted: bool = False) -> dict[str, Any]:
    """The user with this email (any case) or id; NotFound otherwise.

    The platform's table may hold two addresses that differ only in case (its unique key is
    case-sensitive); such a reference is ambiguous and names no one.
    """
    text = user_reference(reference)
    candidates = rows(
        connection, f"SELECT {_USER_COLUMNS} FROM users WHERE lower(email) = %s OR id = %s LIMIT 10", (text.lower(), text)
    )
    for candidate in candidates:
        candidate["role"] = _enum(UserRole, candidate["role"])
    return pick_user(
        candidates, reference, include_deleted=include_deleted, id_and_deleted=lambda user: (user["id"], user["deleted_at"])
    )


def user_reference(reference: str) -> str:
    """A reference to a user (an email address or an id) as it is looked up; empty is refused."""
    text = reference.strip()
    if not text:
        raise InvalidInput("a user is named by an email address or an id; got an empty value")
    return text


def pick_user(
    candidates: Sequence[T], reference: str, *, include_deleted: bool, id_and_deleted: Callable[[T], tuple[str, Any]]
) -> T:
    """The one user `reference` names among the rows whose address (any case) or id matched it,
    for this module's reads and the ORM's lookups alike (`id_and_deleted` reads a candidate's id
    and deleted_at): an id wins; two live addresses differing only in case name no one."""
    text = user_reference(reference)
    by_id = [user for user in candidates if id_and_deleted(user)[0] == text]
    pool = by_id or [user for user in candidates if include_deleted or id_and_deleted(user)[1] is None]
    if len(pool) > 1:
        ids = ", ".join(id_and_deleted(user)[0] for user in pool)
        raise Conflict(f"{text!r} names {len(pool)} users whose addresses differ only in case: {ids}", hint="name the user by id")
    if not pool:
        deleted = " (the user is deleted)" if candidates else ""
        raise NotFound(f"no user {shown(reference)}{deleted}")
    return pool[0]


def _user_or_none(connection: Any, reference: str) -> dict[str, Any] | None:
    try:
        return user_row(connection, reference, include_deleted=True)
    except NotFound:
        return None


def user_summary(connection: Any, *, reference: str, actor: Actor | None) -> dict[str, Any]:
    """The user with what points at them: owned events, waitlist entries, live sessions, last activity."""
    user = user_row(connection, reference, include_deleted=True)
    require_self_or_admin(actor, user["id"], "show themselves")
    counted = rows(
        connection,
        "SELECT"
        " (SELECT count(*) FROM events WHERE owner_id = %(id)s AND deleted_at IS NULL) AS owned_events,"
        " (SELECT count(*) FROM waitlist_entries WHERE (user_id = %(id)s OR lower(email) = %(email)s)"
        "   AND deleted_at IS NULL) AS waitlist_entries,"
        " (SELECT count(*) FROM sessions WHERE user_id = %(id)s AND deleted_at IS NULL AND expires_at > %(now)s)"
        "   AS live_sessions,"
        " (SELECT max(created_at) FROM audit_logs WHERE user_id = %(id)s OR (resource = 'User' AND resource_id = %(id)s))"
        "   AS last_activity",
        {"id": user["id"], "email": user["email"].strip().lower(), "now": utc_now()},
    )[0]
    return {**fields.record(USERS, _Row(user)), **counted}


class _Row:
    """A dict read by attribute, as `fields.record` reads a model instance."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


# --- waitlists ------------------------------------------------------------------------------------

# Sign-ups over time come in days for up to two months, weeks for up to two years, then months
# and years: a chart and a JSON array of at most about a hundred points either way.
SIGNUP_PERIODS = (("day", 62), ("week", 2 * 366), ("month", 10 * 366), ("year", None))


def waitlist_summary(connection: Any, *, event_ref: str, actor: Actor | None) -> dict[str, Any]:
    """Counts per status, capacity, places left, first and last sign-up, and sign-ups over time."""
    event = event_row(connection, event_ref)
    require_manager_of(actor, owner_id=event["owner_id"], action=f"see the waitlist of {event['slug']}")
    live = "deleted_at IS NULL"
    counts = ", ".join(
        f"count(*) FILTER (WHERE {live} AND status = '{status.value}') AS {status.name.lower()}" for status in WaitlistStatus
    )
    row = rows(
        connection,
        f"SELECT {counts}, count(*) FILTER (WHERE deleted_at IS NOT NULL) AS removed,"
        f" min(created_at) FILTER (WHERE {live}) AS first_signup, max(created_at) FILTER (WHERE {live}) AS last_signup"
        " FROM waitlist_entries WHERE event_id = %s",
        (event["id"],),
    )[0]
    confirmed = row["confirmed"]
    period = signup_period(row["first_signup"], row["last_signup"])
    return {
        "event": event["slug"],
        "pending": row["pending"],
        "confirmed": confirmed,
        "cancelled": row["cancelled"],
        "removed": row["removed"],
        "total": row["pending"] + confirmed + row["cancelled"],
        "capacity": event["capacity"],
        "places_left": places_left(event["capacity"], confirmed),
        "first_signup": row["first_signup"],
        "last_signup": row["last_signup"],
        "signups_period": period,
        "signups": signups_over_time(connection, event_id=event["id"], period=period) if period else [],
    }


def signup_period(first: Any, last: Any) -> str | None:
    """The period the sign-ups between `first` and `last` are counted by (None: no sign-ups)."""
    if first is None or last is None:
        return None
    span = (last - first).days
    return next(name for name, days in SIGNUP_PERIODS if days is None or span <= days)


def signups_over_time(connection: Any, *, event_id: str, period: str) -> list[dict[str, Any]]:
    """Live entries per period of `created_at` (UTC), from the first sign-up's to the last's, gaps
    included as zeros: one aggregate over the event's entries, never the entries themselves."""
    if period not in {name for name, _ in SIGNUP_PERIODS}:
        raise ValueError(period)
    return rows(
        connection,
        "WITH counted AS ("
        "  SELECT date_trunc(%(period)s, created_at) AS period, count(*) AS count FROM waitlist_entries"
        "  WHERE event_id = %(event_id)s AND deleted_at IS NULL GROUP BY 1)"
        " SELECT series.period::date AS date, coalesce(counted.count, 0) AS count"
        " FROM generate_series((SELECT min(period) FROM counted), (SELECT max(period) FROM counted),"
        "                      CAST('1 ' || %(period)s AS interval)) AS series(period)"
        " LEFT JOIN counted USING (period) ORDER BY series.period",
        {"period": period, "event_id": event_id},
    )

