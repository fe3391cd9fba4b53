"""Personal data by kind: the user row, login sessions, waitlist entries, owned events, audit rows.

Each kind knows which of its rows are the person's, how to export its part, how to erase it, and
what its rows still hold that erasure could not remove, as pretix's data shredders do.
`services/gdpr.py` identifies the person once (`identify`) and loops over `KINDS` for
`users export`, `users anonymize` and `users verify-erased`.

The platform adds columns and tables linea does not model. Those are found from the catalog
(`db/platform_columns.py`), never from a list: a column linea does not know on the person's own
rows (their user row, their waitlist entries, rows of any table with a foreign key to their
`users.id`) is personal data until shown otherwise, exported whole and erased (NULL where
nullable, else its default); one that is NOT NULL without a default cannot be erased and is named
as remaining. A column of a table linea does not model (or one linea does not know on its own
tables) whose whole value is one of the person's addresses is exported and erased the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session

from linea_cli import fields
from linea_cli.db.models import AuditLog, Event, User, WaitlistEntry
from linea_cli.db.models import Session as LoginSession
from linea_cli.db.platform_columns import (
    ColumnInfo,
    PlatformTable,
    key_text,
    platform_tables,
    quoted,
    unknown_columns,
)
from linea_cli.fields import EVENTS, USERS
from linea_cli.ids import new_id
from linea_cli.services.sessions import token_fingerprint
from linea_cli.services.users import (
    ANONYMIZED_DOMAIN,
    RECORD_FIELDS,
    anonymized_sql,
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

    def merged(self, later: Person) -> Person:
        """The same person identified again later (`later`, the same user): what either knew."""
        return replace(
            later,
            emails=self.emails | later.emails,
            own_emails=self.own_emails | later.own_emails,
            names=self.names | later.names,
            own_names=self.own_names | later.own_names,
            ips=self.ips | later.ips,
            agents=self.agents | later.agents,
            tokens=self.tokens | later.tokens,
            session_ids=self.session_ids | later.session_ids,
            related_ids=self.related_ids | later.related_ids,
            placeholder=self.placeholder,
        )


def identify(
    session: Session, user: User | None, email: str, *, also: str | None = None, known: Person | None = None
) -> Person:
    """Everything that identifies the person, read before anything is erased: the same for an
    export, an erasure and a proof of erasure, whether the person was named by id or by address.

    Past addresses and names come from the user's recorded changes; IP addresses and user agents
    from the audit rows they made; a past address that another user holds now is that user's.
    `also` is an address the request named (a past one of the user's, say). `known` is an earlier
    identification of the same person: names it already told apart from other users' are not
    compared again (that reads the users table whole; an erasure identifies again under a lock).
    """
    logs, sessions = AuditLog.__table__, LoginSession.__table__
    user_id = user.id if user is not None else None
    emails: set[str] = set() if user is not None and is_anonymized(user) else {email}
    emails.update([also] if also else [])
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
        own_names=_own_names(session, frozenset(names - {REDACTED}), user_id, known),
        ips=frozenset(ips),
        agents=frozenset(agents),
        tokens=frozenset(tokens.values()),
        session_ids=frozenset(tokens),
        placeholder=placeholder_address(user_id or new_id()),
    )


@dataclass(frozen=True)
class Remaining:
    """A value on the person's own rows that erasure did not (or could not) remove."""

    table: str
    column: str
    row_id: str
    found: str


# What `Remaining.found` says.
NOT_ERASED = "data in a column linea does not know"
NOT_ERASABLE = "data in a column linea cannot erase (NOT NULL without a default)"


class PersonalData:
    """One kind of personal data. `key` names its part of the export document."""

    key: str

    def remaining(self, session: Session, person: Person) -> list[Remaining]:
        """What the person's rows of this kind still hold in columns linea does not know."""
        return []

    def row_ids(self, session: Session, person: Person) -> list[str]:
        """The person's rows of this kind that audit rows may be about."""
        return []

    def export(self, session: Session, person: Person) -> Any:
        raise NotImplementedError

    def erase(self, session: Session, person: Person, *, now: datetime, since: datetime | None = None) -> int:
        """Remove the person from this kind of data; returns how many rows changed.

        `since` marks the second pass of an erasure (`gdpr.anonymize_person`), run once the user
        row is locked: only what the platform may have added for the person while the first pass
        ran needs erasing, found on indexes (rows pointing at the user, rows created from `since`
        on), not by reading whole tables again.
        """
        raise NotImplementedError


class UserRow(PersonalData):
    """The user: the address becomes a placeholder derived from nothing personal, the name goes,
    the user is soft-deleted (rows that point at it keep pointing at it)."""

    key = "user"

    def row_ids(self, session: Session, person: Person) -> list[str]:
        return [person.user_id] if person.user_id else []

    def export(self, session: Session, person: Person) -> dict[str, Any] | None:
        """The whole row: linea's fields, then every column the platform added."""
        if person.user is None:
            return None
        users = User.__table__
        extra = session.execute(sa.select(_extra_columns("users", RECORD_FIELDS)).where(users.c.id == person.user_id)).scalar()
        return {**user_record(person.user), **(extra or {})}

    def erase(self, session: Session, person: Person, *, now: datetime, since: datetime | None = None) -> int:
        user = person.user
        if user is None:
            return 0
        unknown = unknown_columns(session.connection(), "users")
        cleared = _erase_columns(session, "public", "users", unknown, "id = :user_id", {"user_id": user.id})
        # Its personal fields (linea_cli.fields.USERS): the address becomes the placeholder, the others empty.
        erased = {field.key: person.placeholder if field.key == "email" else None for field in fields.personal(USERS)}
        if all(getattr(user, key) == value for key, value in erased.items()) and user.deleted_at is not None and not cleared:
            return 0
        for key, value in erased.items():
            setattr(user, key, value)
        user.deleted_at = user.deleted_at or now
        user.updated_at = now
        session.add(user)
        session.flush()
        return 1

    def remaining(self, session: Session, person: Person) -> list[Remaining]:
        if person.user_id is None:
            return []
        unknown = unknown_columns(session.connection(), "users")
        return _held(session, "public", "users", ("id",), unknown, "id = :user_id", {"user_id": person.user_id})


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
        known = ("id", "user_id", "token", "expires_at", "created_at", "updated_at", "deleted_at")
        query = (
            sa.select(
                sessions.c.id,
                token_fingerprint(sessions.c.token).label("fingerprint"),
                sessions.c.expires_at, sessions.c.created_at, sessions.c.updated_at, sessions.c.deleted_at,
                _extra_columns("sessions", known),
            )
            .where(sessions.c.user_id == person.user_id)
            .order_by(sessions.c.created_at, sessions.c.id)
        )
        return [_with_extra(row) for row in session.execute(query).mappings()]

    def erase(self, session: Session, person: Person, *, now: datetime, since: datetime | None = None) -> int:
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
                _extra_columns("waitlist_entries", tuple(entries.c.keys())),
            )
            .join(events, events.c.id == entries.c.event_id)
            .where(_entries_of(entries, person))
            .order_by(entries.c.created_at, entries.c.id)
        )
        return [_with_extra(row) for row in session.execute(query).mappings()]

    def remaining(self, session: Session, person: Person) -> list[Remaining]:
        # After an erasure an entry found only by address no longer carries it: its id, read
        # before erasing, is among the related ids.
        entry_ids = sorted(set(self.row_ids(session, person)) | person.related_ids)
        if not entry_ids:
            return []
        unknown = unknown_columns(session.connection(), "waitlist_entries")
        return _held(session, "public", "waitlist_entries", ("id",), unknown, "id = ANY(:ids)", {"ids": entry_ids})

    def erase(self, session: Session, person: Person, *, now: datetime, since: datetime | None = None) -> int:
        entry_ids = self.row_ids(session, person)
        if not entry_ids:
            return 0
        unknown = unknown_columns(session.connection(), "waitlist_entries")
        cleared = _erase_columns(session, "public", "waitlist_entries", unknown, "id = ANY(:ids)", {"ids": entry_ids})
        return max(cleared, self._erase_known(session, person, entry_ids, now=now))

    def _erase_known(self, session: Session, person: Person, entry_ids: list[str], *, now: datetime) -> int:
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


# An owned event's exported fields: its columns (linea_cli.fields.EVENTS) but the owner, who is the person.
EVENT_FIELDS = tuple(key for key in fields.keys(fields.stored(EVENTS)) if key != "owner_id")
# Its personal fields, if any: emptied when the owner is erased.
EVENT_PERSONAL = fields.keys(fields.personal(fields.stored(EVENTS)))


class OwnedEvents(PersonalData):
    """Events the user owns: exported; erasure keeps them, emptying only the fields declared
    personal (none today). They are public listings, not data about the owner, and keep pointing
    at the anonymized user."""

    key = "owned_events"

    def export(self, session: Session, person: Person) -> list[dict[str, Any]]:
        events = Event.__table__
        if not person.user_id:
            return []
        query = (
            sa.select(*(events.c[name] for name in EVENT_FIELDS), _extra_columns("events", tuple(events.c.keys())))
            .where(events.c.owner_id == person.user_id)
            .order_by(events.c.created_at, events.c.id)
        )
        return [_with_extra(row) for row in session.execute(query).mappings()]

    def erase(self, session: Session, person: Person, *, now: datetime, since: datetime | None = None) -> int:
        events = Event.__table__
        if not person.user_id or not EVENT_PERSONAL:
            return 0
        held = sa.or_(*(events.c[key].is_not(None) for key in EVENT_PERSONAL))
        return session.execute(
            sa.update(events).where(events.c.owner_id == person.user_id, held)
            .values({**dict.fromkeys(EVENT_PERSONAL), "updated_at": now})
        ).rowcount


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
            _extra_columns("audit_logs", tuple(logs.c.keys())),
        ).order_by(logs.c.created_at, logs.c.id)
        return [_with_extra(row) for row, _ in self._rows(session, person, query)]

    def erase(self, session: Session, person: Person, *, now: datetime, since: datetime | None = None) -> int:
        """Scrub the rows; with `since`, only rows the person made that still hold an IP address or
        a user agent (the first pass emptied those of every row they made) and rows created from
        `since` on: both on an index, never the whole log's JSON again."""
        logs = AuditLog.__table__
        # Everything below rewrites audit rows; the append-only trigger lets this transaction do so.
        session.execute(sa.text("SELECT set_config('linea.audit_scrub', 'on', true)"))
        identifiers = {"placeholder": person.placeholder, "names": person.names, "ips": person.ips, "agents": person.agents}
        own_patterns = _patterns(emails=person.emails, **identifiers)
        mention_patterns = _patterns(emails=person.own_emails, **identifiers)
        query = sa.select(logs.c.id, logs.c.user_id, logs.c.resource_id, logs.c["metadata"])
        if since is not None:
            unscrubbed = sa.and_(
                logs.c.user_id == person.user_id, sa.or_(logs.c.ip_address.is_not(None), logs.c.user_agent.is_not(None))
            ) if person.user_id else sa.false()
            query = query.where(sa.or_(unscrubbed, logs.c.created_at >= since))
        updates = []
        for row, is_related in self._rows(session, person, query):
            metadata = _scrub(row["metadata"], own_patterns if is_related else mention_patterns)
            erased = person.emails if is_related else person.own_emails
            resource_id = person.placeholder if row["resource_id"].lower() in erased else row["resource_id"]
            if metadata != row["metadata"] or resource_id != row["resource_id"]:
                updates.append({"row_id": row["id"], "new_metadata": metadata, "new_resource_id": resource_id})
        if updates:
            # A row they made loses its IP address and user agent in the same UPDATE: a second
            # UPDATE of a row version this transaction wrote would check its foreign key, locking
            # the user row FOR KEY SHARE until the commit (the platform could not change the
            # user's address meanwhile, and each of its own checks would share the lock in a multixact).
            made_by_them = logs.c.user_id == person.user_id if person.user_id else sa.false()
            session.execute(
                sa.update(logs)
                .where(logs.c.id == sa.bindparam("row_id"))
                .values({
                    logs.c["metadata"]: sa.bindparam("new_metadata", type_=JSONB),
                    logs.c.resource_id: sa.bindparam("new_resource_id"),
                    logs.c.ip_address: sa.case((made_by_them, sa.null()), else_=logs.c.ip_address),
                    logs.c.user_agent: sa.case((made_by_them, sa.null()), else_=logs.c.user_agent),
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


# linea's tables in which a column linea does not know may hold an address: all but the audit
# log, which only the scrub may rewrite.
ADDRESS_CHECKED_TABLES = ("users", "venues", "events", "waitlist_entries", "sessions")


class PlatformRows(PersonalData):
    """Rows of tables linea does not model that are the person's, found from the catalog: those
    with a foreign key to their `users.id`, and those with a column whose whole value is one of
    their addresses (any case); and rows of linea's own tables with such a column among those
    linea does not know. Exported whole, as `{table: [row, ...]}`.

    Erasure keeps the rows. A row pointing at the person by a foreign key is theirs: every column
    but its primary key and its foreign keys is emptied (NULL, or its default). Elsewhere only the
    column holding the address is. Columns linea does not know on its own tables that hold the
    address are emptied too (never in `audit_logs`, which only the scrub may rewrite). A column
    that can be neither NULL nor its default is named as remaining.
    """

    key = "platform_rows"

    def export(self, session: Session, person: Person) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        addresses = sorted(person.own_emails)
        selections = [(table, *_rows_of(table, person.user_id, addresses)) for table in _readable_platform_tables(session)]
        for name in ADDRESS_CHECKED_TABLES:
            own = PlatformTable("public", name, unknown_columns(session.connection(), name), ("id",), ())
            selections.append((own, *_rows_of(own, None, addresses)))
        for table, condition, params in selections:
            if condition is None:
                continue
            order = ", ".join(quoted(k) for k in table.key) if table.key else "ctid"
            rows = session.execute(
                sa.text(f"SELECT to_jsonb(t) FROM {quoted(table.schema, table.name)} AS t WHERE {condition} ORDER BY {order}"),
                params,
            ).scalars().all()
            if rows:
                found.setdefault(table.shown, []).extend(rows)
        return found

    def erase(self, session: Session, person: Person, *, now: datetime, since: datetime | None = None) -> int:
        """With `since` (the second pass), only rows pointing at the user: a row the platform wrote
        meanwhile holding an address alone is for the proof of erasure to find."""
        changed = 0
        addresses = sorted(person.own_emails) if since is None else []
        for table in _readable_platform_tables(session):
            for column in table.user_columns if person.user_id else ():
                changed += _erase_columns(session, table.schema, table.name, table.data_columns,
                                          f"{quoted(column)} = :user_id", {"user_id": person.user_id})
            changed += _erase_addresses(session, table.schema, table.name, table.columns, addresses)
        for name in ADDRESS_CHECKED_TABLES if addresses else ():
            changed += _erase_addresses(session, "public", name, unknown_columns(session.connection(), name), addresses)
        return changed

    def remaining(self, session: Session, person: Person) -> list[Remaining]:
        if not person.user_id:
            return []
        held = []
        for table in _readable_platform_tables(session):
            for column in table.user_columns:
                held += _held(session, table.schema, table.name, table.key, table.data_columns,
                              f"{quoted(column)} = :user_id", {"user_id": person.user_id})
        return held


def erased_remains(session: Session) -> list[Remaining]:
    """What the rows of every erased person (a placeholder address on the reserved domain) still
    hold in columns linea does not know: after an erasure an address no longer leads to its rows,
    so a proof by address alone can only say whether anyone's erased rows hold something."""
    erased = anonymized_sql("email")
    held = _held(session, "public", "users", ("id",), unknown_columns(session.connection(), "users"), erased, {})
    held += _held(session, "public", "waitlist_entries", ("id",),
                  unknown_columns(session.connection(), "waitlist_entries"), erased, {})
    for table in _readable_platform_tables(session):
        for column in table.user_columns:
            held += _held(session, table.schema, table.name, table.key, table.data_columns,
                          f"{quoted(column)} IN (SELECT id FROM users WHERE {erased})", {})
    return held


# In export order: the document's keys follow it.
KINDS: tuple[PersonalData, ...] = (
    UserRow(), LoginSessions(), WaitlistEntries(), OwnedEvents(), AuditRows(), PlatformRows(),
)


# --- columns linea does not know ---------------------------------------------------------------


def _extra_columns(table: str, known: Iterable[str]) -> Any:
    """The columns of `table` that are not in `known`, as one JSON object labelled `extra`."""
    names = ", ".join("'" + name.replace("'", "''") + "'" for name in known)
    return sa.literal_column(f'to_jsonb("{table}") - ARRAY[{names}]::text[]', JSONB).label("extra")


def _with_extra(row: Any) -> dict[str, Any]:
    """A row of known columns followed by the `extra` ones."""
    record = {key: value for key, value in row.items() if key != "extra"}
    return {**record, **(row["extra"] or {})}


def _readable_platform_tables(session: Session) -> list[PlatformTable]:
    return [table for table in platform_tables(session.connection()) if table.readable]


def _rows_of(table: PlatformTable, user_id: str | None, addresses: list[str]) -> tuple[str | None, dict[str, Any]]:
    """SQL selecting the rows of `table` that point at the user or hold one of the addresses whole."""
    conditions = [f"{quoted(column)} = :user_id" for column in table.user_columns] if user_id else []
    if addresses:
        conditions += [f"lower(btrim({quoted(c.name)}::text)) = ANY(:addresses)" for c in table.columns if c.text_like]
    return (" OR ".join(conditions) or None), {"user_id": user_id, "addresses": addresses}


def _emptied(column: ColumnInfo) -> str:
    return f"{quoted(column.name)} = {'NULL' if column.nullable else 'DEFAULT'}"


def _holds(column: ColumnInfo) -> str | None:
    """SQL true when the column holds something erasure would remove; None when that cannot be
    told (a default that is new every time, such as now())."""
    name = quoted(column.name)
    if column.nullable:
        return f"{name} IS NOT NULL"
    if not column.erasable:
        return "true"
    if column.constant_default:
        return f"{name}::text IS DISTINCT FROM ({_literal(str(column.default))})::text"
    return None


def _erase_columns(
    session: Session, schema: str, table: str, columns: Iterable[ColumnInfo], where: str, params: dict[str, Any]
) -> int:
    """Empty the erasable columns of the rows `where` selects; returns how many rows changed.

    A change the table's constraints refuse (a unique key over a default, a CHECK) is rolled
    back to its savepoint and left: `remaining` names what it left.
    """
    erasable = [c for c in columns if c.erasable]
    differs = [held for held in map(_holds, erasable) if held is not None]
    if not differs:
        return 0
    statement = sa.text(
        f"UPDATE {quoted(schema, table)} SET {', '.join(map(_emptied, erasable))} WHERE ({where}) AND ({' OR '.join(differs)})"
    )
    try:
        with session.begin_nested():
            return session.execute(statement, params).rowcount
    except sa.exc.IntegrityError:
        return 0


def _erase_addresses(session: Session, schema: str, table: str, columns: Iterable[ColumnInfo], addresses: list[str]) -> int:
    """Empty each erasable text column whose whole value is one of the addresses (any case): one
    UPDATE, one pass over the table, each column emptied only in the rows where it holds one."""
    erasable = [c for c in columns if c.text_like and c.erasable]
    if not erasable or not addresses:
        return 0
    holds = {c.name: f"lower(btrim({quoted(c.name)}::text)) = ANY(:addresses)" for c in erasable}
    sets = ", ".join(
        f"{quoted(c.name)} = CASE WHEN {holds[c.name]} THEN {_empty_value(c)} ELSE {quoted(c.name)} END" for c in erasable
    )
    statement = sa.text(f"UPDATE {quoted(schema, table)} SET {sets} WHERE {' OR '.join(holds.values())}")
    try:
        with session.begin_nested():
            return session.execute(statement, {"addresses": addresses}).rowcount
    except sa.exc.IntegrityError:
        return 0


def _empty_value(column: ColumnInfo) -> str:
    """What erasure leaves in a column, as an expression: NULL, or its default."""
    return "NULL" if column.nullable else f"({_literal(str(column.default))})"


def _literal(expression: str) -> str:
    """An expression from the catalog inside `sa.text`: a colon in it is no bind parameter."""
    return expression.replace(":", "\\:")


def _held(
    session: Session, schema: str, table: str, key: tuple[str, ...], columns: Iterable[ColumnInfo],
    where: str, params: dict[str, Any],
) -> list[Remaining]:
    """What the selected rows still hold in `columns`: one `Remaining` per row and column."""
    checked = [(column, held) for column in columns if column.writable and (held := _holds(column)) is not None]
    if not checked:
        return []
    row_id = key_text(key) if key else "'ctid ' || ctid::text"
    flags = ", ".join(f"({held}) AS h{number}" for number, (_, held) in enumerate(checked))
    rows = session.execute(
        sa.text(f"SELECT {row_id} AS row_id, {flags} FROM {quoted(schema, table)} WHERE {where} ORDER BY 1"), params
    ).all()
    shown = table if schema == "public" else f"{schema}.{table}"
    return [
        Remaining(shown, column.name, row[0], NOT_ERASED if column.erasable else NOT_ERASABLE)
        for row in rows
        for number, (column, _) in enumerate(checked)
        if row[number + 1]
    ]


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


def _own_names(session: Session, names: frozenset[str], user_id: str | None, known: Person | None) -> frozenset[str]:
    """The names no other user has now; those `known` already compared keep its answer."""
    compared = names & known.names if known is not None else frozenset()
    kept = compared & known.own_names if known is not None else frozenset()
    fresh = set(names - compared)
    return frozenset(kept | (fresh - _names_of_others(session, fresh, user_id)))


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
