"""Personal data by kind: the user row, login sessions, waitlist entries, owned events, audit rows.

Each kind knows which of its rows are the person's, how to export its part and how to erase it,
as pretix's data shredders do. `services/gdpr.py` identifies the person once (`identify`,
`identify_for_erasure`) and loops over `KINDS` for `users export` and `users anonymize`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session

from linea_cli.db.models import AuditLog, Event, User, WaitlistEntry
from linea_cli.db.models import Session as LoginSession
from linea_cli.ids import new_id
from linea_cli.services.sessions import token_fingerprint
from linea_cli.services.users import (
    ANONYMIZED_DOMAIN,
    is_anonymized,
    placeholder_address,
    placeholder_address_sql,
    user_record,
)

# What an erased name, IP address or user agent becomes inside audit metadata.
REDACTED = "[anonymized]"


@dataclass(frozen=True)
class Person:
    """Whom a request is about, and what identifies them. Addresses are lower case."""

    user: User | None
    email: str  # the address the person is known by now
    emails: frozenset[str]  # every address of theirs, past ones too (erasure reads the history)
    own_emails: frozenset[str]  # those no other user holds now: only these are searched for
    names: frozenset[str] = frozenset()
    own_names: frozenset[str] = frozenset()  # those no other user has now: only these are searched for
    ips: frozenset[str] = frozenset()
    agents: frozenset[str] = frozenset()
    tokens: frozenset[str] = frozenset()  # their sessions' stored tokens, read before erasing
    session_ids: frozenset[str] = frozenset()
    placeholder: str = ""
    # Their rows that audit rows may be about (user, sessions, waitlist entries), read before erasing.
    related_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def user_id(self) -> str | None:
        return self.user.id if self.user is not None else None


def identify(user: User | None, email: str) -> Person:
    """The person as an export sees them: the address they are known by now, and their user."""
    return Person(user=user, email=email, emails=frozenset({email.lower()}), own_emails=frozenset({email.lower()}))


def identify_for_erasure(session: Session, user: User | None, email: str) -> Person:
    """Everything that identifies the person, read before anything is erased.

    Past addresses and names come from the user's recorded changes; IP addresses and user agents
    from the audit rows they made; a past address that another user holds now is that user's.
    """
    logs, sessions = AuditLog.__table__, LoginSession.__table__
    user_id = user.id if user is not None else None
    emails: set[str] = set() if user is not None and is_anonymized(user) else {email}
    names: set[str] = {user.name} if user is not None and user.name else set()
    ips: set[str] = set()
    agents: set[str] = set()
    tokens: dict[str, str] = {}
    if user_id:
        for metadata in session.execute(
            sa.select(logs.c["metadata"]).where(logs.c.resource == "User", logs.c.resource_id == user_id)
        ).scalars():
            _collect_history(metadata, emails, names)
        for ip, agent in session.execute(
            sa.select(logs.c.ip_address, logs.c.user_agent).where(logs.c.user_id == user_id).distinct()
        ):
            ips.update([ip] if ip else [])
            agents.update([agent] if agent else [])
        tokens.update({row.id: row.token for row in session.execute(sa.select(sessions.c.id, sessions.c.token).where(sessions.c.user_id == user_id))})
    lowered = frozenset(e.lower() for e in emails if not e.lower().endswith("@" + ANONYMIZED_DOMAIN))
    return Person(
        user=user,
        email=email,
        emails=lowered,
        own_emails=lowered - _held_by_others(session, lowered, user_id),
        names=frozenset(names - {REDACTED}),
        own_names=frozenset(names - {REDACTED} - _names_of_others(session, names, user_id)),
        ips=frozenset(ips),
        agents=frozenset(agents),
        tokens=frozenset(tokens.values()),
        session_ids=frozenset(tokens),
        placeholder=placeholder_address(user_id or new_id()),
    )


class PersonalData:
    """One kind of personal data. `key` names its part of the export document."""

    key: str

    def row_ids(self, session: Session, person: Person) -> list[str]:
        """The person's rows of this kind that audit rows may be about."""
        return []

    def export(self, session: Session, person: Person) -> Any:
        raise NotImplementedError

    def erase(self, session: Session, person: Person, *, now: datetime) -> int:
        """Remove the person from this kind of data; returns how many rows changed."""
        raise NotImplementedError


class UserRow(PersonalData):
    """The user: the address becomes a placeholder derived from nothing personal, the name goes,
    the user is soft-deleted (rows that point at it keep pointing at it)."""

    key = "user"

    def row_ids(self, session: Session, person: Person) -> list[str]:
        return [person.user_id] if person.user_id else []

    def export(self, session: Session, person: Person) -> dict[str, Any] | None:
        return user_record(person.user) if person.user is not None else None

    def erase(self, session: Session, person: Person, *, now: datetime) -> int:
        user = person.user
        if user is None or (user.email == person.placeholder and user.name is None and user.deleted_at is not None):
            return 0
        user.email, user.name = person.placeholder, None
        user.deleted_at = user.deleted_at or now
        user.updated_at = now
        session.add(user)
        session.flush()
        return 1


class LoginSessions(PersonalData):
    """Login sessions: exported without their token; erased by deleting them (the platform stores
    raw JWTs, which carry the person's id and address, and sessions are not part of the audit trail)."""

    key = "sessions"

    def row_ids(self, session: Session, person: Person) -> list[str]:
        sessions = LoginSession.__table__
        if not person.user_id:
            return []
        return list(session.execute(sa.select(sessions.c.id).where(sessions.c.user_id == person.user_id)).scalars())

    def export(self, session: Session, person: Person) -> list[dict[str, Any]]:
        sessions = LoginSession.__table__
        if not person.user_id:
            return []
        query = (
            sa.select(
                sessions.c.id,
                token_fingerprint(sessions.c.token).label("fingerprint"),
                sessions.c.expires_at, sessions.c.created_at, sessions.c.updated_at, sessions.c.deleted_at,
            )
            .where(sessions.c.user_id == person.user_id)
            .order_by(sessions.c.created_at, sessions.c.id)
        )
        return [dict(row) for row in session.execute(query).mappings()]

    def erase(self, session: Session, person: Person, *, now: datetime) -> int:
        sessions = LoginSession.__table__
        if not person.user_id:
            return 0
        return session.execute(sa.delete(sessions).where(sessions.c.user_id == person.user_id)).rowcount


class WaitlistEntries(PersonalData):
    """Entries with the user's id, or one of their addresses (any case) and no other user's id:
    they get the placeholder address and are CANCELLED; the rows stay."""

    key = "waitlist_entries"

    def row_ids(self, session: Session, person: Person) -> list[str]:
        entries = WaitlistEntry.__table__
        return list(session.execute(sa.select(entries.c.id).where(_entries_of(entries, person))).scalars())

    def export(self, session: Session, person: Person) -> list[dict[str, Any]]:
        entries, events = WaitlistEntry.__table__, Event.__table__
        query = (
            sa.select(
                entries.c.id, entries.c.email, entries.c.event_id, events.c.slug.label("event_slug"),
                events.c.title.label("event_title"), entries.c.user_id, entries.c.status,
                entries.c.created_at, entries.c.updated_at, entries.c.deleted_at,
            )
            .join(events, events.c.id == entries.c.event_id)
            .where(_entries_of(entries, person))
            .order_by(entries.c.created_at, entries.c.id)
        )
        return [dict(row) for row in session.execute(query).mappings()]

    def erase(self, session: Session, person: Person, *, now: datetime) -> int:
        entry_ids = self.row_ids(session, person)
        if not entry_ids:
            return 0
        # (email, event_id) is unique: when one event has two of the person's entries (an old and a
        # new address), the second gets a placeholder of its own.
        return session.execute(
            sa.text(
                f"""
                WITH targets AS (
                    SELECT id, row_number() OVER (PARTITION BY event_id ORDER BY (email = :placeholder) DESC, id) AS n
                    FROM waitlist_entries WHERE id = ANY(:ids)
                )
                UPDATE waitlist_entries w
                SET email = CASE WHEN t.n = 1 THEN :placeholder
                                 ELSE {placeholder_address_sql("w.id")} END,
                    status = 'CANCELLED',
                    updated_at = :now
                FROM targets t
                WHERE w.id = t.id
                  AND (w.status <> 'CANCELLED'
                       OR w.email <> CASE WHEN t.n = 1 THEN :placeholder ELSE {placeholder_address_sql("w.id")} END)
                """
            ),
            {"ids": entry_ids, "placeholder": person.placeholder, "now": now},
        ).rowcount


EVENT_FIELDS = (
    "id", "title", "slug", "description", "status", "start_date", "end_date", "capacity", "youtube_url",
    "map_lat", "map_lng", "map_zoom", "venue_id", "created_at", "updated_at", "deleted_at",
)


class OwnedEvents(PersonalData):
    """Events the user owns: exported; erasure keeps them as they are. They are public listings,
    not data about the owner, and keep pointing at the anonymized user."""

    key = "owned_events"

    def export(self, session: Session, person: Person) -> list[dict[str, Any]]:
        events = Event.__table__
        if not person.user_id:
            return []
        query = (
            sa.select(*(events.c[name] for name in EVENT_FIELDS))
            .where(events.c.owner_id == person.user_id)
            .order_by(events.c.created_at, events.c.id)
        )
        return [dict(row) for row in session.execute(query).mappings()]

    def erase(self, session: Session, person: Person, *, now: datetime) -> int:
        return 0


class AuditRows(PersonalData):
    """Audit rows made by the person, about one of their rows, or mentioning one of their addresses.

    Erasure keeps every row: rows they made lose ip_address and user_agent; in the metadata of those
    rows every occurrence of their addresses (past ones too), names, IP addresses and user agents is
    replaced. Rows found only because they mention an address lose only the addresses that are
    still this person's. This is the one rewrite the append-only triggers allow.
    """

    key = "audit_logs"

    def export(self, session: Session, person: Person) -> list[dict[str, Any]]:
        logs = AuditLog.__table__
        query = sa.select(
            logs.c.id, logs.c.action, logs.c.resource, logs.c.resource_id, logs.c.user_id,
            logs.c.ip_address, logs.c.user_agent, logs.c["metadata"], logs.c.created_at,
        ).order_by(logs.c.created_at, logs.c.id)
        return [dict(row) for row, _ in self._rows(session, person, query)]

    def erase(self, session: Session, person: Person, *, now: datetime) -> int:
        logs = AuditLog.__table__
        # Everything below rewrites audit rows; the append-only trigger lets this transaction do so.
        session.execute(sa.text("SELECT set_config('linea.audit_scrub', 'on', true)"))
        identifiers = {"placeholder": person.placeholder, "names": person.names, "ips": person.ips, "agents": person.agents}
        own_patterns = _patterns(emails=person.emails, **identifiers)
        mention_patterns = _patterns(emails=person.own_emails, **identifiers)
        query = sa.select(logs.c.id, logs.c.user_id, logs.c.resource_id, logs.c["metadata"])
        updates = []
        for row, is_related in self._rows(session, person, query):
            metadata = _scrub(row["metadata"], own_patterns if is_related else mention_patterns)
            erased = person.emails if is_related else person.own_emails
            resource_id = person.placeholder if row["resource_id"].lower() in erased else row["resource_id"]
            if metadata != row["metadata"] or resource_id != row["resource_id"]:
                updates.append({"row_id": row["id"], "new_metadata": metadata, "new_resource_id": resource_id})
        if updates:
            session.execute(
                sa.update(logs)
                .where(logs.c.id == sa.bindparam("row_id"))
                .values({
                    logs.c["metadata"]: sa.bindparam("new_metadata", type_=JSONB),
                    logs.c.resource_id: sa.bindparam("new_resource_id"),
                }),
                updates,
            )
        scrubbed = {update["row_id"] for update in updates}
        if person.user_id:
            scrubbed.update(
                session.execute(
                    sa.update(logs)
                    .where(
                        logs.c.user_id == person.user_id,
                        sa.or_(logs.c.ip_address.is_not(None), logs.c.user_agent.is_not(None)),
                    )
                    .values(ip_address=None, user_agent=None)
                    .returning(logs.c.id)
                ).scalars()
            )
        return len(scrubbed)

    def _rows(self, session: Session, person: Person, query: sa.Select) -> Iterable[tuple[Any, bool]]:
        """The person's rows with whether each is related (made by them or about their rows) or
        only mentions one of their addresses. The SQL finds an address as a substring; rows that
        hold it only inside another address (ann@x.com in joann@x.com) are left out."""
        logs = AuditLog.__table__
        addresses = [email_pattern(email) for email in person.own_emails]
        for row in session.execute(query.where(_audit_rows_of(logs, person))).mappings():
            is_related = _related(row, person)
            if is_related or _mentions(row, addresses):
                yield row, is_related


# In export order: the document's keys follow it.
KINDS: tuple[PersonalData, ...] = (UserRow(), LoginSessions(), WaitlistEntries(), OwnedEvents(), AuditRows())


def _entries_of(entries: sa.Table, person: Person) -> Any:
    """Entries linked to the user, or carrying one of the addresses (any case) and no other user's id."""
    user_id = person.user_id
    addresses = sorted(person.own_emails)
    if not addresses:
        return entries.c.user_id == user_id if user_id else sa.false()
    unlinked_or_theirs = entries.c.user_id.is_(None) | (entries.c.user_id == user_id) if user_id else entries.c.user_id.is_(None)
    by_email = sa.and_(sa.func.lower(entries.c.email).in_(addresses), unlinked_or_theirs)
    return sa.or_(entries.c.user_id == user_id, by_email) if user_id else by_email


def _held_by_others(session: Session, emails: frozenset[str], user_id: str | None) -> frozenset[str]:
    """Which of these addresses another user holds now (they are that user's, not this person's)."""
    if not emails:
        return frozenset()
    users = User.__table__
    query = sa.select(sa.func.lower(users.c.email)).where(sa.func.lower(users.c.email).in_(sorted(emails)))
    if user_id:
        query = query.where(users.c.id != user_id)
    return frozenset(session.execute(query).scalars())


def _names_of_others(session: Session, names: set[str], user_id: str | None) -> set[str]:
    """Which of these names another user has now, compared in any case and spacing (two people
    may be called Ann Lee: a search for one would name the other's rows)."""
    if not names:
        return set()
    users = User.__table__

    def spaced(text: Any) -> Any:
        return sa.func.lower(sa.func.regexp_replace(sa.func.btrim(text), r"\s+", " ", "g"))

    by_key = {" ".join(name.split()).lower(): name for name in names}
    query = sa.select(spaced(users.c.name)).where(spaced(users.c.name).in_(sorted(by_key))).distinct()
    if user_id:
        query = query.where(users.c.id != user_id)
    return {by_key[key] for key in session.execute(query).scalars()}


def _audit_rows_of(logs: sa.Table, person: Person) -> Any:
    """Rows made by the user, about one of their rows, or mentioning one of their addresses."""
    metadata_text = sa.func.lower(sa.cast(logs.c["metadata"], sa.Text))
    related_ids = sorted(person.related_ids)
    conditions = [logs.c.resource_id.in_(related_ids)] if related_ids else []
    if person.user_id:
        conditions.append(logs.c.user_id == person.user_id)
    for email in sorted(person.own_emails):
        conditions.append(sa.func.strpos(metadata_text, email) > 0)
        conditions.append(sa.func.lower(logs.c.resource_id) == email)
    return sa.or_(*conditions) if conditions else sa.false()


def _collect_history(metadata: Any, emails: set[str], names: set[str]) -> None:
    changes = metadata.get("changes") if isinstance(metadata, dict) else None
    if not isinstance(changes, dict):
        return
    for name, bucket in (("email", emails), ("name", names)):
        change = changes.get(name)
        if isinstance(change, dict):
            bucket.update(v for v in (change.get("before"), change.get("after")) if isinstance(v, str) and v)


def _related(row: Any, person: Person) -> bool:
    """Made by the user, or about the user or one of their rows."""
    return bool(person.user_id and row["user_id"] == person.user_id) or row["resource_id"] in person.related_ids


def email_pattern(email: str) -> re.Pattern[str]:
    """The whole address: ann@x.com is not in joann@x.com nor in ann@x.com.au."""
    return re.compile(r"(?<![\w.+-])" + re.escape(email) + r"(?![\w-]|\.\w)", re.IGNORECASE)


def name_pattern(name: str) -> re.Pattern[str] | None:
    """The name's words in a row, whole, and not part of an address (Ann is not in ann@example.com.au)."""
    words = r"\s+".join(re.escape(word) for word in name.split())
    return re.compile(r"(?<![\w@.+-])" + words + r"(?![\w@-]|\.\w)", re.IGNORECASE) if words else None


def ip_pattern(ip: str) -> re.Pattern[str]:
    """The whole address: 10.0.0.1 is not in 10.0.0.12."""
    return re.compile(r"(?<![\w.:])" + re.escape(ip) + r"(?![\w:]|\.\d)")


def _mentions(row: Any, addresses: list[re.Pattern[str]]) -> bool:
    text = json.dumps(row["metadata"], ensure_ascii=False) + " " + row["resource_id"]
    return any(address.search(text) for address in addresses)


def _patterns(
    *, emails: Iterable[str], placeholder: str, names: Iterable[str], ips: Iterable[str], agents: Iterable[str]
) -> list[tuple[re.Pattern[str], str]]:
    """What to replace, bounded so that ann@x.com does not match inside joann@x.com."""
    patterns: list[tuple[re.Pattern[str], str]] = []
    # Longest first: a name that contains another is replaced whole.
    for email in sorted(emails, key=len, reverse=True):
        patterns.append((email_pattern(email), placeholder))
    for name in sorted(names, key=len, reverse=True):
        pattern = name_pattern(name)
        if pattern is not None:
            patterns.append((pattern, REDACTED))
    for ip in sorted(ips, key=len, reverse=True):
        patterns.append((ip_pattern(ip), REDACTED))
    for agent in sorted(agents, key=len, reverse=True):
        patterns.append((re.compile(re.escape(agent)), REDACTED))
    return patterns


def _scrub(value: Any, patterns: list[tuple[re.Pattern[str], str]]) -> Any:
    if isinstance(value, str):
        for pattern, replacement in patterns:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {_scrub(key, patterns): _scrub(item, patterns) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, patterns) for item in value]
    return value
