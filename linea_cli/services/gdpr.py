"""Data-protection requests: what linea holds about a person (export), and erasure (anonymize).

A person is a user row, or just an email address on waitlists (people join waitlists without an
account). Both functions accept either.

Export document (`format` "linea.personal-data-export", `version` 1; keys are stable, new keys
may be added, none removed or renamed without a new version):

    {"format", "version", "generated_at",
     "subject": {"email", "user_id"},
     "user": {id, email, name, role, created_at, updated_at, deleted_at} | null,
     "sessions": [{id, fingerprint, expires_at, created_at, updated_at, deleted_at}],
     "waitlist_entries": [{id, email, event_id, event_slug, event_title, user_id, status,
                           created_at, updated_at, deleted_at}],
     "owned_events": [{id, title, slug, description, status, start_date, end_date, capacity,
                       youtube_url, map_lat, map_lng, map_zoom, venue_id, created_at, updated_at,
                       deleted_at}],
     "audit_logs": [{id, action, resource, resource_id, user_id, ip_address, user_agent,
                     metadata, created_at}]}

Sessions carry no token (not even its digest), only the short fingerprint `sessions list` shows.
Audit rows are those made by the person, about them (their user, sessions or waitlist entries),
or mentioning one of their email addresses in `metadata`.

Erasure keeps every row and removes the person from it: see `anonymize_person`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session

from linea_cli.db.models import AuditLog, Event, User, UserRole, WaitlistEntry
from linea_cli.db.models import Session as LoginSession
from linea_cli.errors import NotFound
from linea_cli.ids import new_id
from linea_cli.services import audit_log
from linea_cli.services.actors import Actor, require_admin, require_self_or_admin
from linea_cli.services.audit_log import AuditAction
from linea_cli.services.emails import normalize_email
from linea_cli.services.sessions import token_fingerprint
from linea_cli.services.users import (
    ANONYMIZED_DOMAIN,
    find_user,
    is_anonymized,
    refuse_last_admin,
    user_record,
)
from linea_cli.timeutil import utc_now

EXPORT_FORMAT = "linea.personal-data-export"
EXPORT_VERSION = 1
REDACTED = "[anonymized]"


@dataclass(frozen=True)
class Subject:
    user: User | None
    email: str


def find_subject(session: Session, reference: str) -> Subject:
    """The user with this email or id; else, for an address, the person known only by it."""
    text = reference.strip()
    if "@" not in text:
        user = find_user(session, text, include_deleted=True)
        return Subject(user, user.email)
    email = normalize_email(text)
    try:
        user = find_user(session, email, include_deleted=True)
    except NotFound:
        return Subject(None, email)
    return Subject(user, user.email)


# --- right of access / portability -------------------------------------------------------------


def export_person(session: Session, *, reference: str, actor: Actor | None) -> dict[str, Any]:
    """Everything linea holds about a person, as one JSON-ready document; the export is audited."""
    subject = find_subject(session, reference)
    user = subject.user
    require_self_or_admin(actor, user.id if user else None, "export their own data")
    user_id = user.id if user else None

    sessions = LoginSession.__table__
    session_rows = []
    if user_id:
        session_rows = [
            dict(row)
            for row in session.execute(
                sa.select(
                    sessions.c.id,
                    token_fingerprint(sessions.c.token).label("fingerprint"),
                    sessions.c.expires_at, sessions.c.created_at, sessions.c.updated_at, sessions.c.deleted_at,
                )
                .where(sessions.c.user_id == user_id)
                .order_by(sessions.c.created_at, sessions.c.id)
            ).mappings()
        ]

    entries, events = WaitlistEntry.__table__, Event.__table__
    entry_rows = [
        dict(row)
        for row in session.execute(
            sa.select(
                entries.c.id, entries.c.email, entries.c.event_id, events.c.slug.label("event_slug"),
                events.c.title.label("event_title"), entries.c.user_id, entries.c.status,
                entries.c.created_at, entries.c.updated_at, entries.c.deleted_at,
            )
            .join(events, events.c.id == entries.c.event_id)
            .where(_entries_of(entries, user_id, [subject.email]))
            .order_by(entries.c.created_at, entries.c.id)
        ).mappings()
    ]

    event_rows = []
    if user_id:
        event_rows = [
            dict(row)
            for row in session.execute(
                sa.select(
                    *(events.c[name] for name in (
                        "id", "title", "slug", "description", "status", "start_date", "end_date", "capacity",
                        "youtube_url", "map_lat", "map_lng", "map_zoom", "venue_id", "created_at", "updated_at",
                        "deleted_at",
                    ))
                )
                .where(events.c.owner_id == user_id)
                .order_by(events.c.created_at, events.c.id)
            ).mappings()
        ]

    logs = AuditLog.__table__
    related_ids = [i for i in [user_id, *(r["id"] for r in session_rows), *(r["id"] for r in entry_rows)] if i]
    address = [_email_pattern(subject.email)]
    audit_rows = [
        dict(row)
        for row in session.execute(
            sa.select(
                logs.c.id, logs.c.action, logs.c.resource, logs.c.resource_id, logs.c.user_id,
                logs.c.ip_address, logs.c.user_agent, logs.c["metadata"], logs.c.created_at,
            )
            .where(_audit_rows_of(logs, user_id, related_ids, [subject.email]))
            .order_by(logs.c.created_at, logs.c.id)
        ).mappings()
        # The SQL finds the address as a substring; keep the rows that hold the whole address.
        if _related(row, user_id, related_ids) or _mentions(row, address)
    ]

    if user is None and not entry_rows and not audit_rows:
        raise NotFound(f"linea holds nothing about {subject.email!r}")

    counts = {
        "sessions": len(session_rows),
        "waitlist_entries": len(entry_rows),
        "owned_events": len(event_rows),
        "audit_logs": len(audit_rows),
    }
    audit_log.record(
        session,
        action=AuditAction.EXPORT,
        # Someone without an account is named by nothing but the address, which has no place in
        # the log; the entry ids say whose data it was.
        resource="User" if user else "Person",
        resource_id=user_id or "waitlist-only",
        actor=actor,
        details={"counts": counts, **({} if user else {"waitlist_entry_ids": [r["id"] for r in entry_rows]})},
    )
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": utc_now(),
        "subject": {"email": subject.email, "user_id": user_id},
        "user": user_record(user) if user else None,
        "sessions": session_rows,
        "waitlist_entries": entry_rows,
        "owned_events": event_rows,
        "audit_logs": audit_rows,
    }


# --- right to erasure --------------------------------------------------------------------------


@dataclass(frozen=True)
class AnonymizeResult:
    user_id: str | None
    email: str
    sessions_deleted: int
    waitlist_entries_anonymized: int
    audit_rows_scrubbed: int
    changed: bool


def anonymize_person(session: Session, *, reference: str, actor: Actor | None) -> AnonymizeResult:
    """Remove a person's personal data from every table, keeping every row, in one transaction.

    - the user: email becomes `deleted-<id>@anonymized.invalid` (unique, derived from nothing
      personal), name cleared, soft-deleted; owned events stay and keep pointing at it;
    - their sessions: deleted (the platform stores raw JWTs, which carry the person's id and
      address; sessions are not part of the audit trail);
    - waitlist entries with their user id or their address (current or past, in any case): the
      placeholder email, CANCELLED;
    - audit rows: on rows they made, ip_address and user_agent are cleared; in the metadata of
      rows made by them, about them, or mentioning their address, every occurrence of their
      addresses (past ones too), name, IP addresses and user agents is replaced. Rows are never
      removed; one ANONYMIZE row without personal data records the erasure.

    A past address counts only where it still belongs to this person: one that another user holds
    now is theirs, so entries and audit rows that merely mention it are left alone, as are entries
    linked to another user's id; it is still scrubbed from this person's own rows.

    Running it again changes nothing and writes nothing (an address linea holds nothing about, for
    instance one already anonymized, is not an error: the goal state holds). The last ADMIN cannot
    be anonymized.
    """
    require_admin(actor, "anonymize people")
    subject = find_subject(session, reference)
    user = subject.user
    if user is not None:
        # Lock the user row: a concurrent `users update --email` must not slip in between.
        session.refresh(user, with_for_update=True)
        subject = Subject(user, user.email)
    user_id = user.id if user else None
    now = utc_now()
    if user is not None and user.role == UserRole.ADMIN and user.deleted_at is None:
        refuse_last_admin(session, user, "anonymize")
    placeholder = f"deleted-{user_id or new_id()}@{ANONYMIZED_DOMAIN}"

    logs, entries, sessions = AuditLog.__table__, WaitlistEntry.__table__, LoginSession.__table__
    emails: set[str] = set() if user is not None and is_anonymized(user) else {subject.email}
    names: set[str] = {user.name} if user is not None and user.name else set()
    if user is not None:
        # Addresses and names the user had before (their User rows' recorded changes).
        for metadata in session.execute(
            sa.select(logs.c["metadata"]).where(logs.c.resource == "User", logs.c.resource_id == user_id)
        ).scalars():
            _collect_history(metadata, emails, names)
    emails = {email.lower() for email in emails if not email.lower().endswith("@" + ANONYMIZED_DOMAIN)}
    held_by_others = _held_by_others(session, emails, user_id)
    own_emails = emails - held_by_others

    # Everything below rewrites audit rows; the append-only trigger lets this transaction do so.
    session.execute(sa.text("SELECT set_config('linea.audit_scrub', 'on', true)"))

    ips: set[str] = set()
    agents: set[str] = set()
    if user_id:
        for ip, agent in session.execute(
            sa.select(logs.c.ip_address, logs.c.user_agent).where(logs.c.user_id == user_id).distinct()
        ):
            ips.update([ip] if ip else [])
            agents.update([agent] if agent else [])

    entry_ids = list(session.execute(sa.select(entries.c.id).where(_entries_of(entries, user_id, own_emails))).scalars())
    session_ids = list(
        session.execute(sa.select(sessions.c.id).where(sessions.c.user_id == user_id)).scalars() if user_id else []
    )
    related_ids = [i for i in [user_id, *session_ids, *entry_ids] if i]

    # The person's own rows lose every address they ever had; rows found only because they mention
    # an address lose only the addresses that are still this person's.
    own_patterns = _patterns(emails=emails, placeholder=placeholder, names=names, ips=ips, agents=agents)
    mention_patterns = _patterns(emails=own_emails, placeholder=placeholder, names=names, ips=ips, agents=agents)
    scrubbed_ids: set[str] = set()
    updates = []
    candidates = session.execute(
        sa.select(logs.c.id, logs.c.user_id, logs.c.resource_id, logs.c["metadata"]).where(
            _audit_rows_of(logs, user_id, related_ids, own_emails)
        )
    ).mappings()
    addresses = [_email_pattern(email) for email in own_emails]
    related = set(related_ids)
    for row in candidates:
        is_related = _related(row, user_id, related)
        if not (is_related or _mentions(row, addresses)):
            continue  # the address only as part of another one (ann@x.com in joann@x.com)
        metadata = _scrub(row["metadata"], own_patterns if is_related else mention_patterns)
        erased = emails if is_related else own_emails
        resource_id = placeholder if row["resource_id"].lower() in erased else row["resource_id"]
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
        scrubbed_ids.update(update["row_id"] for update in updates)
    if user_id:
        scrubbed_ids.update(
            session.execute(
                sa.update(logs)
                .where(logs.c.user_id == user_id, sa.or_(logs.c.ip_address.is_not(None), logs.c.user_agent.is_not(None)))
                .values(ip_address=None, user_agent=None)
                .returning(logs.c.id)
            ).scalars()
        )

    sessions_deleted = 0
    if user_id:
        sessions_deleted = session.execute(sa.delete(sessions).where(sessions.c.user_id == user_id)).rowcount

    entries_changed = _anonymize_entries(session, entry_ids=entry_ids, placeholder=placeholder, now=now)

    user_changed = False
    if user is not None and (user.email != placeholder or user.name is not None or user.deleted_at is None):
        user.email, user.name = placeholder, None
        user.deleted_at = user.deleted_at or now
        user.updated_at = now
        session.add(user)
        session.flush()
        user_changed = True

    changed = bool(user_changed or sessions_deleted or entries_changed or scrubbed_ids)
    if changed:
        audit_log.record(
            session,
            action=AuditAction.ANONYMIZE,
            resource="User" if user_id else "Person",
            resource_id=user_id or placeholder,
            actor=actor,
            details={
                "sessions_deleted": sessions_deleted,
                "waitlist_entries_anonymized": entries_changed,
                "audit_rows_scrubbed": len(scrubbed_ids),
            },
        )
    return AnonymizeResult(
        user_id=user_id,
        email=placeholder if (user is not None or changed) else subject.email,
        sessions_deleted=sessions_deleted,
        waitlist_entries_anonymized=entries_changed,
        audit_rows_scrubbed=len(scrubbed_ids),
        changed=changed,
    )


def _anonymize_entries(session: Session, *, entry_ids: list[str], placeholder: str, now: Any) -> int:
    if not entry_ids:
        return 0
    # (email, event_id) is unique: when one event has two of the person's entries (an old and a
    # new address), the second gets a placeholder of its own.
    return session.execute(
        sa.text(
            """
            WITH targets AS (
                SELECT id, row_number() OVER (PARTITION BY event_id ORDER BY (email = :placeholder) DESC, id) AS n
                FROM waitlist_entries WHERE id = ANY(:ids)
            )
            UPDATE waitlist_entries w
            SET email = CASE WHEN t.n = 1 THEN :placeholder
                             ELSE 'deleted-' || w.id || '@' || :domain END,
                status = 'CANCELLED',
                updated_at = :now
            FROM targets t
            WHERE w.id = t.id
              AND (w.status <> 'CANCELLED'
                   OR w.email <> CASE WHEN t.n = 1 THEN :placeholder ELSE 'deleted-' || w.id || '@' || :domain END)
            """
        ),
        {"ids": entry_ids, "placeholder": placeholder, "domain": ANONYMIZED_DOMAIN, "now": now},
    ).rowcount


def _entries_of(entries: sa.Table, user_id: str | None, emails: Iterable[str]) -> Any:
    """Entries linked to the user, or carrying one of the addresses (any case) and no other user's id."""
    addresses = sorted({email.lower() for email in emails})
    if not addresses:
        return entries.c.user_id == user_id if user_id else sa.false()
    unlinked_or_theirs = entries.c.user_id.is_(None) | (entries.c.user_id == user_id) if user_id else entries.c.user_id.is_(None)
    by_email = sa.and_(sa.func.lower(entries.c.email).in_(addresses), unlinked_or_theirs)
    return sa.or_(entries.c.user_id == user_id, by_email) if user_id else by_email


def _held_by_others(session: Session, emails: set[str], user_id: str | None) -> set[str]:
    """Which of these addresses another user holds now (they are that user's, not this person's)."""
    if not emails:
        return set()
    users = User.__table__
    query = sa.select(sa.func.lower(users.c.email)).where(sa.func.lower(users.c.email).in_(sorted(emails)))
    if user_id:
        query = query.where(users.c.id != user_id)
    return set(session.execute(query).scalars())


def _audit_rows_of(logs: sa.Table, user_id: str | None, related_ids: list[str], emails: Iterable[str]) -> Any:
    """Rows made by the user, about one of their rows, or mentioning one of their addresses."""
    metadata_text = sa.func.lower(sa.cast(logs.c["metadata"], sa.Text))
    conditions = [logs.c.resource_id.in_(related_ids)] if related_ids else []
    if user_id:
        conditions.append(logs.c.user_id == user_id)
    for email in sorted(emails):
        conditions.append(sa.func.strpos(metadata_text, email.lower()) > 0)
        conditions.append(sa.func.lower(logs.c.resource_id) == email.lower())
    return sa.or_(*conditions) if conditions else sa.false()


def _collect_history(metadata: Any, emails: set[str], names: set[str]) -> None:
    changes = metadata.get("changes") if isinstance(metadata, dict) else None
    if not isinstance(changes, dict):
        return
    for field, bucket in (("email", emails), ("name", names)):
        change = changes.get(field)
        if isinstance(change, dict):
            bucket.update(v for v in (change.get("before"), change.get("after")) if isinstance(v, str) and v)


def _related(row: Any, user_id: str | None, related_ids: Iterable[str]) -> bool:
    """Made by the user, or about the user or one of their rows."""
    return bool(user_id and row["user_id"] == user_id) or row["resource_id"] in related_ids


def _email_pattern(email: str) -> re.Pattern[str]:
    """The whole address: ann@x.com is not in joann@x.com nor in ann@x.com.au."""
    return re.compile(r"(?<![\w.+-])" + re.escape(email) + r"(?![\w-]|\.\w)", re.IGNORECASE)


def _mentions(row: Any, addresses: list[re.Pattern[str]]) -> bool:
    text = json.dumps(row["metadata"], ensure_ascii=False) + " " + row["resource_id"]
    return any(address.search(text) for address in addresses)


def _patterns(
    *, emails: set[str], placeholder: str, names: set[str], ips: set[str], agents: set[str]
) -> list[tuple[re.Pattern[str], str]]:
    """What to replace, bounded so that ann@x.com does not match inside joann@x.com."""
    patterns: list[tuple[re.Pattern[str], str]] = []
    # Longest first: a name that contains another is replaced whole.
    for email in sorted(emails, key=len, reverse=True):
        patterns.append((_email_pattern(email), placeholder))
    for name in sorted(names, key=len, reverse=True):
        words = r"\s+".join(re.escape(word) for word in name.split())
        if words:
            # Whole words, and not part of an address (Ann is not in ann@example.com.au).
            patterns.append((re.compile(r"(?<![\w@.+-])" + words + r"(?![\w@-]|\.\w)", re.IGNORECASE), REDACTED))
    for ip in sorted(ips, key=len, reverse=True):
        patterns.append((re.compile(r"(?<![\w.:])" + re.escape(ip) + r"(?![\w:]|\.\d)"), REDACTED))
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
