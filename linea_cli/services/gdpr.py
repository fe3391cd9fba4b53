"""Data-protection requests: what linea holds about a person (export), and erasure (anonymize).

A person is a user row, or just an email address on waitlists (people join waitlists without an
account). Both functions accept either.

Export document (`format` "linea.personal-data-export", `version` 1; keys are stable, new keys
may be added, none removed or renamed without a new version):

    {"format", "version", "generated_at",
     "subject": {"email", "user_id"},
     "user": {id, email, name, role, created_at, updated_at, deleted_at, ...} | null,
     "sessions": [{id, fingerprint, expires_at, created_at, updated_at, deleted_at, ...}],
     "waitlist_entries": [{id, email, event_id, event_slug, event_title, user_id, status,
                           created_at, updated_at, deleted_at, ...}],
     "owned_events": [{id, title, slug, description, status, start_date, end_date, capacity,
                       youtube_url, map_lat, map_lng, map_zoom, venue_id, created_at, updated_at,
                       deleted_at, ...}],
     "audit_logs": [{id, action, resource, resource_id, user_id, ip_address, user_agent,
                     metadata, created_at, ...}],
     "platform_rows": {table: [{every column}]}}

`...` are the columns the platform added that linea does not model: every row is exported whole.
Sessions carry no token (not even its digest), only the short fingerprint `sessions list` shows.
Audit rows are those made by the person, about them (their user, sessions or waitlist entries),
or mentioning one of their email addresses (current or past) in `metadata`. `platform_rows` holds
the rows of tables linea does not model that point at the user or hold one of their addresses.

Erasure keeps every row and removes the person from it: see `anonymize_person`. Both loop over
the kinds of personal data in `services/personal_data.py`, each of which exports and erases its part.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlmodel import Session

from linea_cli.db.models import AuditLog, User, UserRole
from linea_cli.db.platform_columns import platform_tables
from linea_cli.errors import Conflict, DatabaseUnavailable, NotFound
from linea_cli.services import audit_log
from linea_cli.services.actors import Actor, require_admin, require_self_or_admin
from linea_cli.services.audit_log import AuditAction
from linea_cli.services.emails import normalize_email
from linea_cli.services.personal_data import KINDS, Person, erased_remains, identify
from linea_cli.services.traces import Connect, Identifiers, Trace, TraceReport, find_traces
from linea_cli.services.users import find_user, is_anonymized, refuse_last_admin
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


def _past_owner(session: Session, email: str) -> User | None:
    """The one user whose recorded changes show `email` as an address they had, if exactly one."""
    logs = AuditLog.__table__
    change = logs.c["metadata"]["changes"]["email"]
    owners = session.execute(
        sa.select(logs.c.resource_id)
        .where(
            logs.c.resource == "User",
            sa.or_(sa.func.lower(change["before"].astext) == email, sa.func.lower(change["after"].astext) == email),
        )
        .distinct()
        .limit(2)
    ).scalars().all()
    if len(owners) != 1:
        return None
    try:
        return find_user(session, owners[0], include_deleted=True)
    except NotFound:
        return None


def with_related_rows(session: Session, person: Person) -> Person:
    """The person with the ids of their rows that audit rows may be about, read before any erasing."""
    return replace(person, related_ids=frozenset(i for kind in KINDS for i in kind.row_ids(session, person)))


# --- right of access / portability -------------------------------------------------------------


def export_person(session: Session, *, reference: str, actor: Actor | None) -> dict[str, Any]:
    """Everything linea holds about a person, as one JSON-ready document; changes nothing (a
    replica may serve it): `record_person_export` audits it, on the primary."""
    subject = find_subject(session, reference)
    require_self_or_admin(actor, subject.user.id if subject.user else None, "export their own data")
    person = with_related_rows(session, identify(session, subject.user, subject.email))
    parts = {kind.key: kind.export(session, person) for kind in KINDS}
    if person.user is None and not parts["waitlist_entries"] and not parts["audit_logs"] and not parts["platform_rows"]:
        raise NotFound(f"linea holds nothing about {subject.email!r}")
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": utc_now(),
        "subject": {"email": subject.email, "user_id": person.user_id},
        **parts,
    }


def record_person_export(session: Session, *, document: dict[str, Any], actor: Actor | None) -> None:
    """The EXPORT audit row of `document` (`export_person`'s): what kinds of rows it held, how many."""
    counts = {key: len(document[key]) for key in (kind.key for kind in KINDS) if key not in ("user", "platform_rows")}
    counts.update({f"platform_rows.{table}": len(rows) for table, rows in document["platform_rows"].items()})
    user_id = document["subject"]["user_id"]
    entry_ids = [entry["id"] for entry in document["waitlist_entries"]]
    audit_log.record(
        session,
        action=AuditAction.EXPORT,
        # Someone without an account is named by nothing but the address, which has no place in
        # the log; the entry ids say whose data it was.
        resource="User" if user_id else "Person",
        resource_id=user_id or "waitlist-only",
        actor=actor,
        details={"counts": counts, **({} if user_id else {"waitlist_entry_ids": entry_ids})},
    )


# --- right to erasure --------------------------------------------------------------------------


@dataclass(frozen=True)
class AnonymizeResult:
    user_id: str | None
    email: str
    sessions_deleted: int
    waitlist_entries_anonymized: int
    audit_rows_scrubbed: int
    platform_rows_erased: int
    changed: bool


def anonymize_person(
    session: Session, *, reference: str, actor: Actor | None
) -> tuple[AnonymizeResult, ProofOfErasure]:
    """Remove a person's personal data from every table, keeping every row but their sessions, in
    one transaction; returns what was done, and everything that identified the person before.

    What each kind of data does is in `services/personal_data.py`. The caller commits, then proves
    the erasure with the returned `ProofOfErasure.search(connect)`: it searches every table, the
    platform's that linea does not model included, for everything returned here, in short
    transactions of its own; a trace there is left for the caller to report, and the erasure of
    everything else stays committed.

    Beside the platform's live traffic, in two passes. Changing the user's unique `email` takes
    the user row FOR UPDATE, which every foreign-key check of a row pointing at the user (a new
    session, an audit row) waits for, until the commit. So the first pass, which reads whole
    tables (the audit log's JSON, the platform's tables), erases everything but the user row
    holding no lock on it. Then the row is locked (`_lock_user_row`, stepping aside while the
    platform holds it) and the second pass, on indexes only, erases what the platform added for
    the person meanwhile: every row pointing at the user committed before the lock was granted
    (its foreign-key check held the row until then), and any later one waits for the commit. The
    person is identified again under the lock; an address or a name the first pass did not know
    (a `users update` that slipped in) makes the second pass a whole one.

    Running it again changes nothing and writes nothing (an address linea holds nothing about, for
    instance one already anonymized, is not an error: the goal state holds). The last ADMIN cannot
    be anonymized.
    """
    require_admin(actor, "anonymize people")
    subject = find_subject(session, reference)
    user = subject.user
    # Rows created from here on are looked at again in the second pass; the margin covers a
    # platform transaction that began a little before and commits during the first pass. The
    # server's clock, in UTC as the platform's timestamps are.
    since = session.execute(sa.select(sa.func.timezone("UTC", sa.func.now()) - SECOND_PASS_MARGIN)).scalar_one()
    person = with_related_rows(session, identify(session, user, subject.email))
    now = utc_now()
    erased = {kind.key: kind.erase(session, person, now=now) for kind in KINDS if kind.key != "user"}
    erased["user"] = 0
    if user is not None:
        _lock_user_row(session, user.id)
        session.refresh(user)
        if user.role == UserRole.ADMIN and user.deleted_at is None:
            refuse_last_admin(session, user, "anonymize")
        again = person.merged(with_related_rows(session, identify(session, user, user.email, known=person)))
        whole = not (again.emails <= person.emails and again.names <= person.names)
        person = again
        for kind in KINDS:
            erased[kind.key] += kind.erase(session, person, now=now, since=None if whole else since)
    changed = any(erased.values())
    result = AnonymizeResult(
        user_id=person.user_id,
        email=person.placeholder if (user is not None or changed) else subject.email,
        sessions_deleted=erased["sessions"],
        waitlist_entries_anonymized=erased["waitlist_entries"],
        audit_rows_scrubbed=erased["audit_logs"],
        platform_rows_erased=erased["platform_rows"],
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
                "platform_rows_erased": result.platform_rows_erased,
            },
        )
    return result, _proof(session, person)


# How far before the erasure began the second pass looks for new audit rows (their created_at is
# the platform transaction's start).
SECOND_PASS_MARGIN = sa.text("interval '1 minute'")
# Each try for the user row's lock waits at most this long for the platform's transactions that
# hold it (shorter than deadlock_timeout), then steps aside for STEP_ASIDE_SECONDS times the try's
# number (at most STEP_ASIDE_MAX), until the transaction's own lock_timeout has passed in all.
LOCK_WAIT = "50ms"
STEP_ASIDE_SECONDS, STEP_ASIDE_MAX = 0.02, 0.2
CYCLE_TRIES = 3
# Whether another transaction waits for this one to end (for a row it wrote; not for a table's
# lock, as a deploy's ALTER TABLE would, which holds no row of the user's).
_WAITED_FOR = sa.text(
    "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND wait_event = 'transactionid' "
    "AND pg_backend_pid() = ANY(pg_blocking_pids(pid)))"
)


def _lock_user_row(session: Session, user_id: str) -> None:
    """Lock the user row FOR UPDATE without queueing in front of the platform.

    A FOR UPDATE waiter waits for the transactions holding the row FOR KEY SHARE (the platform's
    foreign-key checks), and new ones keep joining them without waiting: a plain wait can last
    as long as the platform is busy. Each try is bounded (`lock_timeout` for one wait,
    `statement_timeout` for the whole statement, which may wait again and again), in a savepoint
    that a failed try rolls back to, then linea steps aside and tries again. The transaction's
    `lock_timeout` (LINEA_LOCK_TIMEOUT) bounds the tries in all; then it gives up (exit 5, nothing
    erased). It gives up sooner when, after CYCLE_TRIES tries in a row, another transaction is
    waiting for this one: most likely the one holding the row (a platform transaction that wrote
    for the person, then a row the erasure changed, such as their address on a waitlist it
    anonymized), which can end only after linea does; waiting longer would only make it wait.
    """
    users = User.__table__
    budget, lock_timeout, statement_timeout = session.execute(sa.text(
        "SELECT extract(epoch FROM current_setting('lock_timeout')::interval), "
        "current_setting('lock_timeout'), current_setting('statement_timeout')"
    )).one()
    deadline = time.monotonic() + float(budget) if float(budget) > 0 else None
    tries = 0
    while True:
        tries += 1
        try:
            with session.begin_nested():
                session.execute(
                    sa.text("SELECT set_config('lock_timeout', :wait, true), set_config('statement_timeout', :bound, true)"),
                    {"wait": LOCK_WAIT, "bound": LOCK_WAIT},
                )
                found = session.execute(sa.select(users.c.id).where(users.c.id == user_id).with_for_update()).first()
            break
        except sa.exc.OperationalError as exc:
            if not isinstance(exc.orig, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled):
                raise
            if tries >= CYCLE_TRIES and session.execute(_WAITED_FOR).scalar_one():
                raise DatabaseUnavailable(
                    f"gave up waiting for a lock: user {user_id}'s row is held by a transaction that waits for this "
                    "erasure (it writes something the erasure changed); nothing was erased",
                    hint="run the command again",
                ) from None
            if deadline is not None and time.monotonic() >= deadline:
                raise DatabaseUnavailable(
                    f"gave up waiting for a lock: user {user_id}'s row stayed in use by others for {lock_timeout} "
                    f"({tries} tries); nothing was erased",
                    hint="retry when the database is less busy, or raise LINEA_LOCK_TIMEOUT",
                ) from None
            time.sleep(min(STEP_ASIDE_SECONDS * tries, STEP_ASIDE_MAX))
    session.execute(
        sa.text("SELECT set_config('lock_timeout', :lock, true), set_config('statement_timeout', :statement, true)"),
        {"lock": lock_timeout, "statement": statement_timeout},
    )
    if found is None:
        raise Conflict(f"user {user_id} was deleted while linea erased them; nothing was erased",
                       hint="run the command again")


@dataclass(frozen=True)
class ProofOfErasure:
    """What to search every table for (`identifiers`), and what the person's own rows still hold
    in columns linea does not know (`remaining`: a search for identifiers cannot see a phone
    number), read in the command's transaction; `search` runs once that transaction has ended.

    A foreign key to `users.id` in a platform's table (`links`) keeps pointing at the anonymized
    user, as linea's own tables do: the id alone there is not a trace (the rows' data is checked).
    """

    identifiers: Identifiers
    remaining: tuple[Trace, ...]
    links: frozenset[tuple[str, str]]
    unknown: tuple[str, ...] = ()

    def search(self, connect: Connect) -> TraceReport:
        report = find_traces(connect, self.identifiers)
        kept = [trace for trace in report.traces if not (trace.found == "id" and (trace.table, trace.column) in self.links)]
        return replace(report, traces=[*self.remaining, *kept], unknown=[*report.unknown, *self.unknown])


def _proof(session: Session, person: Person) -> ProofOfErasure:
    remaining = tuple(
        Trace(table=r.table, column=r.column, row_id=r.row_id, found=r.found)
        for kind in KINDS
        for r in kind.remaining(session, person)
    )
    links = frozenset(
        (table.shown, column) for table in platform_tables(session.connection()) for column in table.user_columns
    )
    return ProofOfErasure(Identifiers.of(person), remaining, links)


# --- proof of erasure --------------------------------------------------------------------------


def verify_erased(session: Session, *, reference: str, actor: Actor | None) -> ProofOfErasure:
    """What identifies the person now, and what their own rows still hold, for
    `ProofOfErasure.search` once this transaction ended: changes nothing.

    The person is identified as `anonymize` identifies them, whether named by id, by their address
    or by a past address of theirs: every address, name and token they had (current and past,
    from the audit log), and the address given. After an erasure linea no longer knows them (it
    erased them, history included): the address given (any case) and the user id given (in the
    tables linea does not model) are what is searched for, and the user's own rows are checked;
    named by id alone, the erased addresses are reported as not searched for (`unknown`).
    """
    require_admin(actor, "verify erasures")
    subject = find_subject(session, reference)
    also = normalize_email(reference) if "@" in reference else None
    user = subject.user or (_past_owner(session, also) if also else None)
    person = with_related_rows(session, identify(session, user, user.email if user else subject.email, also=also))
    proof = _proof(session, person)
    if user is None and also is not None:
        # An address that leads to no user any more: if it was an erased user's, their rows are
        # not found by it. Anyone's erased rows still holding data may be theirs: not proven.
        left = erased_remains(session)
        if left:
            places = ", ".join(sorted({f"{r.table}.{r.column}" for r in left}))
            proof = replace(proof, unknown=(
                f"whether the rows of this address's erased user still hold data: {len(left)} value(s) on "
                f"erased people's rows ({places}) may be theirs; name the user id anonymize printed "
                "(linea users verify-erased ID)",
            ))
    elif also is None and user is not None and is_anonymized(user):
        # Named by id after the erasure: what their addresses and names were is erased too, so no
        # table can be searched for them. Saying OK would claim a search that never happened.
        proof = replace(proof, unknown=(
            f"the addresses and names user {user.id} had: erased with them, so linea cannot search for them; "
            "name the address the request named (linea users verify-erased ADDRESS)",
        ))
    return proof
