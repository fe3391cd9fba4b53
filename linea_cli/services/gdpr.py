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

Erasure keeps every row and removes the person from it: see `anonymize_person`. Both loop over
the kinds of personal data in `services/personal_data.py`, each of which exports and erases its part.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlmodel import Session

from linea_cli.db.models import User, UserRole
from linea_cli.errors import NotFound
from linea_cli.services import audit_log
from linea_cli.services.actors import Actor, require_admin, require_self_or_admin
from linea_cli.services.audit_log import AuditAction
from linea_cli.services.emails import normalize_email
from linea_cli.services.personal_data import KINDS, Person, identify, identify_for_erasure
from linea_cli.services.traces import Identifiers
from linea_cli.services.users import find_user, refuse_last_admin
from linea_cli.timeutil import utc_now

EXPORT_FORMAT = "linea.personal-data-export"
EXPORT_VERSION = 1


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


def with_related_rows(session: Session, person: Person) -> Person:
    """The person with the ids of their rows that audit rows may be about, read before any erasing."""
    return replace(person, related_ids=frozenset(i for kind in KINDS for i in kind.row_ids(session, person)))


# --- right of access / portability -------------------------------------------------------------


def export_person(session: Session, *, reference: str, actor: Actor | None) -> dict[str, Any]:
    """Everything linea holds about a person, as one JSON-ready document; the export is audited."""
    subject = find_subject(session, reference)
    require_self_or_admin(actor, subject.user.id if subject.user else None, "export their own data")
    person = with_related_rows(session, identify(subject.user, subject.email))
    parts = {kind.key: kind.export(session, person) for kind in KINDS}
    if person.user is None and not parts["waitlist_entries"] and not parts["audit_logs"]:
        raise NotFound(f"linea holds nothing about {subject.email!r}")
    counts = {key: len(part) for key, part in parts.items() if key != "user"}
    entry_ids = [entry["id"] for entry in parts["waitlist_entries"]]
    audit_log.record(
        session,
        action=AuditAction.EXPORT,
        # Someone without an account is named by nothing but the address, which has no place in
        # the log; the entry ids say whose data it was.
        resource="User" if person.user else "Person",
        resource_id=person.user_id or "waitlist-only",
        actor=actor,
        details={"counts": counts, **({} if person.user else {"waitlist_entry_ids": entry_ids})},
    )
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": utc_now(),
        "subject": {"email": subject.email, "user_id": person.user_id},
        **parts,
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


def anonymize_person(session: Session, *, reference: str, actor: Actor | None) -> tuple[AnonymizeResult, Identifiers]:
    """Remove a person's personal data from every table, keeping every row but their sessions, in
    one transaction; returns what was done, and everything that identified the person before.

    What each kind of data does is in `services/personal_data.py`. The caller commits, then proves
    the erasure with `traces.find_traces(connect, identifiers)`: it searches every table, the
    platform's that linea does not model included, for everything returned here, in short
    transactions of its own; a trace there is left for the caller to report, and the erasure of
    everything else stays committed.

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
        if user.role == UserRole.ADMIN and user.deleted_at is None:
            refuse_last_admin(session, user, "anonymize")
    person = with_related_rows(session, identify_for_erasure(session, user, subject.email))
    now = utc_now()
    erased = {kind.key: kind.erase(session, person, now=now) for kind in KINDS}
    changed = any(erased.values())
    result = AnonymizeResult(
        user_id=person.user_id,
        email=person.placeholder if (user is not None or changed) else subject.email,
        sessions_deleted=erased["sessions"],
        waitlist_entries_anonymized=erased["waitlist_entries"],
        audit_rows_scrubbed=erased["audit_logs"],
        changed=changed,
    )
    if changed:
        audit_log.record(
            session,
            action=AuditAction.ANONYMIZE,
            resource="User" if person.user_id else "Person",
            resource_id=person.user_id or person.placeholder,
            actor=actor,
            details={
                "sessions_deleted": result.sessions_deleted,
                "waitlist_entries_anonymized": result.waitlist_entries_anonymized,
                "audit_rows_scrubbed": result.audit_rows_scrubbed,
            },
        )
    return result, Identifiers.of(person)


# --- proof of erasure --------------------------------------------------------------------------


def verify_erased(session: Session, *, reference: str, actor: Actor | None) -> Identifiers:
    """What identifies the person now, for `traces.find_traces` to search every table for, once
    this transaction ended: changes nothing.

    After an erasure that is the address given (any case), or the user id given (in the tables
    linea does not model); before one, everything `anonymize` would erase. Names, IP addresses,
    user agents and tokens are known only before erasing: `anonymize_person` returns them for the
    same search right after the erasure.
    """
    require_admin(actor, "verify erasures")
    subject = find_subject(session, reference)
    person = identify_for_erasure(session, subject.user, subject.email)
    return Identifiers.of(person)
