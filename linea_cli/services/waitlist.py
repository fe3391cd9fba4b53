"""Waitlists: entries one at a time, capacity-safe promotion, stats, CSV import and export.

Emails are stored in linea's canonical form (the whole address lower-cased, see
linea_cli.services.emails), so the unique key (email, event_id) stops `Ann@X.com` and
`ann@x.com` from both entering. Capacity counts CONFIRMED entries that are not removed; every
path that confirms (`confirm`, `add --status CONFIRMED`, `promote`) first locks the event row
(FOR NO KEY UPDATE: it serializes confirmations of one event without blocking sign-ups, whose
foreign key check only takes KEY SHARE), so concurrent runs never exceed the capacity.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from linea_cli.csvio import hashed_input
from linea_cli.db.like import like_pattern
from linea_cli.db.models import INTEGER_MAX, Event, EventStatus, User, WaitlistEntry, WaitlistStatus
from linea_cli.db.platform_columns import refuse_unfillable
from linea_cli.errors import Conflict, InvalidInput, NotFound, parameter, shown
from linea_cli.ids import new_id
from linea_cli.services import audit_log, import_journal, soft_delete
from linea_cli.services.actors import Actor, require_manager_of
from linea_cli.services.audit_log import AuditAction
from linea_cli.services.emails import normalize_email, same_address
from linea_cli.services.events import confirmed_count, find_event, places_left
from linea_cli.services.pagination import Page, paginate
from linea_cli.services.reads import driver_connection, waitlist_summary
from linea_cli.services.waitlist_csv import (
    ON_DUPLICATE,
    STAGE_TABLE,
    ExportKey,
    ExportProgress,
    InvalidRow,
    StreamStats,
    copy_export_csv,
    dry_run_counts,
    export_records,
    merge_staged,
    stage_import,
)
from linea_cli.timeutil import utc_now

RESOURCE = "WaitlistEntry"
CLOSED_EVENT_STATUSES = (EventStatus.CANCELLED, EventStatus.COMPLETED)
ERROR_SAMPLE = 20


# --- lookups and permissions -----------------------------------------------------------------

def _managed_event(session: Session, reference: str, *, actor: Actor | None, action: str, lock: bool = False) -> Event:
    """The event, after checking the actor may manage its waitlist; locked when `lock`."""
    event = find_event(session, reference)
    require_manager_of(actor, owner_id=event.owner_id, action=f"{action} the waitlist of {event.slug}")
    if lock:
        # Re-read under the lock: capacity and status may have changed while we waited.
        event = session.exec(
            select(Event)
            .where(Event.id == event.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        ).one()
    return event


def entry_count(session: Session, event_ref: str) -> int:
    """How many entries (not deleted) the event's waitlist holds: an import into it changes them."""
    event = find_event(session, event_ref)
    query = select(sa.func.count()).select_from(WaitlistEntry).where(
        WaitlistEntry.event_id == event.id, WaitlistEntry.deleted_at.is_(None)  # type: ignore[union-attr]
    )
    return int(session.exec(query).one())


def listable_event(session: Session, reference: str, *, actor: Actor | None) -> Event:
    """The event whose waitlist the actor may list (`waitlist list`, and what Tab completes from)."""
    return _managed_event(session, reference, actor=actor, action="list")


def _find_entry(session: Session, event: Event, email: str, *, include_deleted: bool = False) -> WaitlistEntry:
    # An address the platform stored as someone typed it may not pass today's validator (and Tab
    # completion offers it): the entry is found as stored first, and only else is the input checked.
    entry = _entry_for(session, event, email.strip()) if email.strip() else None
    canonical = entry.email if entry is not None else normalize_email(email)
    entry = entry or _entry_for(session, event, canonical)
    if entry is None or (entry.deleted_at is not None and not include_deleted):
        removed = " (it was removed)" if entry is not None else ""
        raise NotFound(f"{canonical} is not on the waitlist of {event.slug}{removed}")
    return entry


def _entry_for(session: Session, event: Event, address: str) -> WaitlistEntry | None:
    """The event's entry for this address in any case: `Vera@X.com` and `vera@x.com` are one person.

    The platform may hold both; the live one (then the oldest) is the one that counts.
    """
    return session.exec(
        select(WaitlistEntry)
        .where(WaitlistEntry.event_id == event.id, same_address(WaitlistEntry.email, address))
        .order_by(WaitlistEntry.deleted_at.is_not(None), WaitlistEntry.created_at, WaitlistEntry.id)  # type: ignore[union-attr]
    ).first()


def _user_id_for(session: Session, email: str) -> str | None:
    return session.exec(
        select(User.id).where(same_address(User.email, email), User.deleted_at.is_(None))  # type: ignore[union-attr]
    ).first()


def entry_record(session: Session, entry: WaitlistEntry, event: Event) -> dict[str, Any]:
    name = None
    if entry.user_id:
        name = session.exec(select(User.name).where(User.id == entry.user_id)).first()
    return {
        "email": entry.email,
        "status": WaitlistStatus(entry.status),
        "event": event.slug,
        "name": name,
        "user_id": entry.user_id,
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
        "deleted_at": entry.deleted_at,
    }


def _require_open(event: Event, action: str) -> None:
    if EventStatus(event.status) in CLOSED_EVENT_STATUSES:
        raise Conflict(f"cannot {action}: event {event.slug} is {EventStatus(event.status).name}")


def _require_place(session: Session, event: Event) -> None:
    """Call with the event locked: refuse a confirmation beyond the capacity."""
    if event.capacity is None:
        return
    confirmed = confirmed_count(session, event)
    if confirmed >= event.capacity:
        raise Conflict(
            f"event {event.slug} is full: {confirmed} confirmed of a capacity of {event.capacity}",
            hint="raise the event's capacity, or cancel a confirmed entry first",
        )


# --- one entry at a time ---------------------------------------------------------------------

def add_entry(
    session: Session, *, event_ref: str, email: str, status: WaitlistStatus = WaitlistStatus.PENDING, actor: Actor | None
) -> dict[str, Any]:
    """Put an address on the waitlist; a removed entry for it comes back, a present one is a conflict."""
    confirming = status is WaitlistStatus.CONFIRMED
    event = _managed_event(session, event_ref, actor=actor, action="add to", lock=confirming)
    canonical = normalize_email(email)
    if confirming:
        _require_open(event, "confirm an entry")
        _require_place(session, event)
    now = utc_now()
    existing = _entry_for(session, event, canonical)
    if existing is not None and existing.deleted_at is None:
        raise Conflict(
            f"{existing.email} is already on the waitlist of {event.slug} ({WaitlistStatus(existing.status).name})"
        )
    if existing is not None:  # removed: it comes back, in the status given
        existing.user_id = existing.user_id or _user_id_for(session, canonical)
        soft_delete.restore(
            session, existing, resource=RESOURCE, actor=actor, name=f"{existing.email} on the waitlist of {event.slug}",
            also={"status": status}, details={"event": event.slug, "email": canonical},
        )
        return entry_record(session, existing, event)
    entry = WaitlistEntry(
        id=new_id(), email=canonical, event_id=event.id, user_id=_user_id_for(session, canonical),
        status=status, created_at=now, updated_at=now,
    )
    session.add(entry)
    try:
        session.flush()
    except IntegrityError:  # someone added the same address a moment ago
        raise Conflict(f"{canonical} is already on the waitlist of {event.slug}") from None
    audit_log.record(
        session, action=AuditAction.CREATE, resource=RESOURCE, resource_id=entry.id, actor=actor,
        changes=audit_log.changed_fields({}, {"email": canonical, "event_id": event.id, "status": status}),
        details={"event": event.slug},
    )
    return entry_record(session, entry, event)


def _set_status(
    session: Session, *, event_ref: str, email: str, to: WaitlistStatus, actor: Actor | None, action: str
) -> dict[str, Any]:
    confirming = to is WaitlistStatus.CONFIRMED
    event = _managed_event(session, event_ref, actor=actor, action=action, lock=confirming)
    entry = _find_entry(session, event, email)
    if WaitlistStatus(entry.status) is to:
        raise Conflict(f"{entry.email} is already {to.name} on the waitlist of {event.slug}")
    if confirming:
        _require_open(event, "confirm an entry")
        _require_place(session, event)
    before = entry.status
    entry.status, entry.updated_at = to, utc_now()
    session.add(entry)
    session.flush()
    audit_log.record(
        session, action=AuditAction.UPDATE, resource=RESOURCE, resource_id=entry.id, actor=actor,
        changes={"status": {"before": before, "after": to}}, details={"event": event.slug, "email": entry.email},
    )
    return entry_record(session, entry, event)


def confirm_entry(session: Session, *, event_ref: str, email: str, actor: Actor | None) -> dict[str, Any]:
    """PENDING or CANCELLED -> CONFIRMED, within the capacity."""
    return _set_status(session, event_ref=event_ref, email=email, to=WaitlistStatus.CONFIRMED, actor=actor, action="confirm entries on")


def cancel_entry(session: Session, *, event_ref: str, email: str, actor: Actor | None) -> dict[str, Any]:
    """PENDING or CONFIRMED -> CANCELLED (the entry stays, its place is freed)."""
    return _set_status(session, event_ref=event_ref, email=email, to=WaitlistStatus.CANCELLED, actor=actor, action="cancel entries on")


def remove_entry(session: Session, *, event_ref: str, email: str, actor: Actor | None) -> dict[str, Any]:
    """Soft-delete an entry: it leaves lists, counts and exports; `add` brings it back."""
    event = _managed_event(session, event_ref, actor=actor, action="remove entries from")
    entry = _find_entry(session, event, email)
    soft_delete.soft_delete(
        session, entry, resource=RESOURCE, actor=actor, name=f"{entry.email} on the waitlist of {event.slug}",
        state="removed", details={"event": event.slug, "email": entry.email},
    )
    return entry_record(session, entry, event)


# --- lists and numbers -----------------------------------------------------------------------

@dataclass(frozen=True)
class WaitlistFilter:
    status: WaitlistStatus | None = None
    search: str | None = None
    include_deleted: bool = False


def list_entries(
    session: Session, *, event_ref: str, filters: WaitlistFilter, actor: Actor | None, limit: int = 50, after: str | None = None
) -> Page[dict]:
    """Entries in sign-up order (the order `promote` follows), a page at a time."""
    event = listable_event(session, event_ref, actor=actor)
    entries, users = WaitlistEntry.__table__, User.__table__
    query = sa.select(
        entries.c.email, entries.c.status, users.c.name, entries.c.created_at, entries.c.updated_at,
        entries.c.deleted_at, entries.c.id,
    ).outerjoin(users, users.c.id == entries.c.user_id).where(entries.c.event_id == event.id)
    if not filters.include_deleted:
        query = query.where(entries.c.deleted_at.is_(None))
    if filters.status is not None:
        query = query.where(entries.c.status == filters.status)
    if filters.search:
        query = query.where(entries.c.email.ilike(like_pattern(filters.search.strip()), escape="\\"))
    return paginate(session, query, kind="waitlist", sort_columns=[entries.c.created_at, entries.c.id], limit=limit, after=after)


def waitlist_stats(session: Session, *, event_ref: str, actor: Actor | None) -> dict[str, Any]:
    """Counts per status, capacity, places left, first and last sign-up (`reads.waitlist_summary`, in this session)."""
    return waitlist_summary(driver_connection(session), event_ref=event_ref, actor=actor)


# --- promotion -------------------------------------------------------------------------------

@dataclass
class PromoteResult:
    event: str
    promoted: list[dict[str, Any]] = field(default_factory=list)
    capacity: int | None = None
    places_left: int | None = None
    pending_left: int = 0


def promote_waitlist(session: Session, *, event_ref: str, count: int | None = None, actor: Actor | None) -> PromoteResult:
    """Confirm PENDING entries first come, first served, never beyond the capacity.

    The event row stays locked until the command commits, so a second `promote` of the same
    event waits and then sees the first one's confirmations.
    """
    if count is not None and count < 1:
        raise InvalidInput(f"{parameter('count')} must be at least 1")
    event = _managed_event(session, event_ref, actor=actor, action="promote", lock=True)
    _require_open(event, "promote")
    confirmed_before = confirmed_count(session, event)
    places = None if event.capacity is None else max(event.capacity - confirmed_before, 0)
    if count is not None:
        # No event holds more entries than an INTEGER counts: a larger --count means "all of them",
        # and LIMIT must stay a number PostgreSQL takes.
        count = min(count, INTEGER_MAX)
    limit = places if count is None else (count if places is None else min(count, places))
    entries = WaitlistEntry.__table__
    promoted: list[dict[str, Any]] = []
    if limit is None or limit > 0:
        chosen = (
            sa.select(entries.c.id)
            .where(entries.c.event_id == event.id, entries.c.status == WaitlistStatus.PENDING, entries.c.deleted_at.is_(None))
            .order_by(entries.c.created_at, entries.c.id)
        )
        if limit is not None:
            chosen = chosen.limit(limit)
        rows = session.execute(
            sa.update(entries)
            .where(entries.c.id.in_(chosen.scalar_subquery()))
            .values(status=WaitlistStatus.CONFIRMED, updated_at=utc_now())
            .returning(entries.c.email, entries.c.status, entries.c.created_at, entries.c.id)
        ).mappings().all()
        promoted = sorted((dict(row) for row in rows), key=lambda row: (row["created_at"], row["id"]))
    pending_left = session.exec(
        select(sa.func.count()).select_from(WaitlistEntry).where(
            WaitlistEntry.event_id == event.id, WaitlistEntry.status == WaitlistStatus.PENDING,
            WaitlistEntry.deleted_at.is_(None),  # type: ignore[union-attr]
        )
    ).one()
    places_after = places_left(event.capacity, confirmed_before + len(promoted))
    if promoted:
        audit_log.record(
            session, action=AuditAction.PROMOTE, resource="Event", resource_id=event.id, actor=actor,
            details={
                "event": event.slug, "promoted": len(promoted), "requested": count, "capacity": event.capacity,
                "confirmed_before": confirmed_before, "confirmed_after": confirmed_before + len(promoted),
            },
        )
    return PromoteResult(
        event=event.slug, promoted=promoted, capacity=event.capacity, places_left=places_after, pending_left=pending_left
    )


# --- CSV import ------------------------------------------------------------------------------

class ImportRejected(InvalidInput):
    """All-or-nothing import with invalid rows: nothing was written."""


@dataclass
class ImportSummary:
    event: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    invalid: int = 0
    dry_run: bool = False
    unknown_columns: tuple[str, ...] = ()
    named_rows: int = 0  # valid rows whose name was not imported (an entry has no name of its own)
    unfinished_written: int = 0  # a dry run: entries of unfinished imports the real run would undo first
    first_invalid: list[InvalidRow] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "event": self.event, "rows": self.rows, "inserted": self.inserted, "updated": self.updated,
            "skipped": self.skipped, "invalid": self.invalid, "dry_run": self.dry_run,
        }


def import_waitlist(
    unit_of_work: import_journal.UnitOfWork,
    *,
    connect: import_journal.Connect,
    event_ref: str,
    source: BinaryIO,
    source_name: str = "-",
    delimiter: str | None = None,
    encoding: str = "auto",
    on_delimiter: Callable[[str], None] | None = None,
    on_duplicate: str = "skip",
    skip_invalid: bool = False,
    dry_run: bool = False,
    resume: bool = False,
    timezone: str = "UTC",
    errors_file: str | None = None,
    on_invalid: Callable[[InvalidRow], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    on_undone: Callable[[import_journal.Undone], None] | None = None,
    before_commit: Callable[[ImportSummary], None] | None = None,
) -> ImportSummary:
    """Load a CSV into the waitlist, all or nothing: COPY to a temporary table, then set-based SQL
    (linea_cli.services.waitlist_csv: the format, the duplicates rules).

    With invalid rows and without `skip_invalid`, nothing is written. Fewer than
    JOURNAL_FROM_ROWS rows to write are written in the transaction that read them; more are
    written in short transactions under a journal (linea_cli.services.import_journal: why, and
    how an interrupted import is undone or resumed). `resume` finishes the event's unfinished
    import of the same file; any other import first undoes the event's unfinished imports that no
    running linea holds (`on_undone` hears of each). `before_commit` sees the summary before the
    import's last commit (an error there undoes it).
    """
    if on_duplicate not in ON_DUPLICATE:
        raise InvalidInput(f"{parameter('on_duplicate')} must be skip or update, not {shown(on_duplicate)}")
    source, hashed = hashed_input(source)
    with contextlib.ExitStack() as holding:
        with unit_of_work() as (session, actor):
            event = _managed_event(session, event_ref, actor=actor, action="import into")
            # Before reading a byte of the file: a column the platform added that linea cannot fill would
            # fail the insert only after the whole file was read.
            refuse_unfillable(session.connection(), "waitlist_entries")
            resumed, unfinished_written = _unfinished_imports(
                session, holding, connect, event, actor=actor, resume=resume, dry_run=dry_run, on_undone=on_undone
            )
            if resumed is not None:
                on_duplicate, skip_invalid = resumed.on_duplicate, resumed.skip_invalid
            stats = stage_import(
                session, source, delimiter=delimiter, encoding=encoding, on_delimiter=on_delimiter, timezone=timezone,
                keep_writing_after_invalid=skip_invalid,
                on_invalid=on_invalid, on_progress=on_progress, sample_size=ERROR_SAMPLE,
            )
            summary = ImportSummary(
                event=event.slug, rows=stats.rows, invalid=stats.invalid, dry_run=dry_run,
                unknown_columns=stats.unknown_columns, named_rows=stats.named_rows, first_invalid=stats.first_invalid,
            )
            if stats.invalid and not skip_invalid:
                raise ImportRejected(
                    f"{stats.invalid} of {summary.rows} rows are invalid; nothing was imported:",
                    details=_rejected_rows(stats), hint=_rejection_hint(errors_file),
                )
            if stats.valid and on_phase is not None:
                on_phase("writing")  # the file is read; the set-based statements take the rest of the time
            if dry_run:
                summary.unfinished_written = unfinished_written
                summary.inserted, summary.updated = dry_run_counts(session, event_id=event.id, on_duplicate=on_duplicate)
                summary.skipped = stats.valid - summary.inserted - summary.updated
                return summary
            if resumed is None and stats.valid < import_journal.JOURNAL_FROM_ROWS:
                _merge_at_once(session, summary, event=event, staged=stats.valid, actor=actor, source_name=source_name,
                               on_duplicate=on_duplicate, skip_invalid=skip_invalid)
                if before_commit is not None:
                    before_commit(summary)
                return summary
            spool = holding.enter_context(tempfile.TemporaryFile())  # unnamed, private, gone with linea
            to_write = import_journal.spool_rows(session, STAGE_TABLE, spool)
            if resumed is not None:
                journal = _same_file(resumed, file_sha256=hashed.hexdigest(), to_write=to_write, source_name=source_name)
            else:
                journal = import_journal.open_journal(
                    session, event_id=event.id, event_slug=event.slug, source=source_name,
                    file_sha256=hashed.hexdigest(), on_duplicate=on_duplicate, skip_invalid=skip_invalid,
                    rows=stats.rows, invalid=stats.invalid, valid=stats.valid, to_write=to_write,
                    ignored_columns=list(stats.unknown_columns), now=utc_now(),
                    started_by=actor.user_id if actor is not None else None,
                )
                # Held before the journal row commits: no other linea ever sees it unheld while this one runs.
                holding.enter_context(import_journal.held(connect, journal.id))
        return _write_journal(unit_of_work, journal, summary, spool=spool, holding=holding, before_commit=before_commit)


def _merge_at_once(
    session: Session, summary: ImportSummary, *, event: Event, staged: int, actor: Actor | None, source_name: str,
    on_duplicate: str, skip_invalid: bool,
) -> None:
    """A small import: the merge in the transaction that read the file."""
    if staged == 0:
        return
    summary.inserted, summary.updated = merge_staged(
        session, event_id=event.id, staged=staged, on_duplicate=on_duplicate, now=utc_now()
    )
    summary.skipped = staged - summary.inserted - summary.updated
    _record_import(session, summary, event_id=event.id, actor=actor, source_name=source_name,
                   on_duplicate=on_duplicate, skip_invalid=skip_invalid)


def _record_import(
    session: Session, summary: ImportSummary, *, event_id: str, actor: Actor | None, source_name: str,
    on_duplicate: str, skip_invalid: bool,
) -> None:
    if summary.inserted or summary.updated:
        audit_log.record(
            session, action=AuditAction.IMPORT, resource="Event", resource_id=event_id, actor=actor,
            details={
                **summary.counts(), "file": source_name, "on_duplicate": on_duplicate, "skip_invalid": skip_invalid,
                "ignored_columns": list(summary.unknown_columns),
            },
        )


def _write_journal(
    unit_of_work: import_journal.UnitOfWork, journal: import_journal.Journal, summary: ImportSummary, *,
    spool: Any, holding: contextlib.ExitStack, before_commit: Callable[[ImportSummary], None] | None,
) -> ImportSummary:
    """The spooled rows into the waitlist, a short transaction per batch, then the last one; on any
    error or interrupt, the import is undone (its lock released first, so that the undo may take it)."""
    try:
        next_rows = import_journal.spooled_batches(spool, skip=journal.written)
        size = import_journal.FIRST_BATCH_ROWS
        while rows := next_rows(size):
            started = time.perf_counter()
            with unit_of_work() as (session, _):
                import_journal.write_batch(session, journal, rows)
            size = import_journal.next_batch_rows(size, time.perf_counter() - started)
        with unit_of_work() as (session, actor):
            import_journal.finish(session, journal)
            summary.inserted, summary.updated = journal.inserted, journal.updated
            summary.skipped = journal.valid - journal.inserted - journal.updated
            _record_import(session, summary, event_id=journal.event_id, actor=actor, source_name=journal.source,
                           on_duplicate=journal.on_duplicate, skip_invalid=journal.skip_invalid)
            if before_commit is not None:
                before_commit(summary)
    except BaseException:
        holding.close()
        with contextlib.suppress(Exception), unit_of_work() as (session, actor):
            undone = import_journal.undo(session, journal.id)
            if undone is not None:
                _record_undo(session, undone, actor)
        raise
    holding.close()
    return summary


def _unfinished_imports(
    session: Session, holding: contextlib.ExitStack, connect: import_journal.Connect, event: Event, *,
    actor: Actor | None, resume: bool, dry_run: bool, on_undone: Callable[[import_journal.Undone], None] | None,
) -> tuple[import_journal.Journal | None, int]:
    """Before the file is read: the event's import claimed for this linea, and its unfinished
    imports taken over (`--resume`) or undone. Returns (the import resumed, or None; for a dry
    run, which claims and changes nothing, the entries unfinished imports wrote)."""
    if dry_run:
        return None, sum(journal.written for journal in import_journal.unfinished(session, event_id=event.id))
    import_journal.claim_event(session, event.id, event.slug)
    if resume:
        return _take_over(session, holding, connect, event), 0
    for undone in _undo_unfinished(session, event, actor):
        if on_undone is not None:
            on_undone(undone)
    return None, 0


def _same_file(journal: import_journal.Journal, *, file_sha256: str, to_write: int, source_name: str) -> import_journal.Journal:
    """The unfinished import `--resume` goes on with, once the file is known to be its file."""
    if file_sha256 != journal.file_sha256 or to_write != journal.to_write:
        raise InvalidInput(
            f"{source_name} is not the file of the unfinished import into {journal.event_slug} "
            f"(that was {shown(journal.source)}, started {journal.started_at:%Y-%m-%d %H:%M:%S} UTC)",
            hint=f"give {parameter('resume')} the same file; without {parameter('resume')} the unfinished import is undone first",
        )
    return journal


def _take_over(session: Session, holding: contextlib.ExitStack, connect: import_journal.Connect, event: Event) -> import_journal.Journal:
    """The event's unfinished import, its lock now held by this linea (`--resume`)."""
    journals = import_journal.unfinished(session, event_id=event.id)
    for journal in journals:
        with contextlib.ExitStack() as attempt:
            if attempt.enter_context(import_journal.held(connect, journal.id, wait=False)):
                holding.push(attempt.pop_all())
                return journal
    if journals:
        raise Conflict(f"the import into {event.slug} is still running (started {journals[0].started_at:%Y-%m-%d %H:%M:%S} UTC)")
    raise NotFound(f"there is no unfinished import into {event.slug} to resume")


def _undo_unfinished(session: Session, event: Event, actor: Actor | None) -> list[import_journal.Undone]:
    """Undo the event's unfinished imports that no running linea holds, in the caller's transaction."""
    undone = []
    for journal in import_journal.unfinished(session, event_id=event.id):
        result = import_journal.undo(session, journal.id, wait=False)
        if result is None:  # its linea still holds it (or its backend is still ending after a kill)
            raise Conflict(
                f"an import into {event.slug} is running (from {shown(journal.source)}, started "
                f"{journal.started_at:%Y-%m-%d %H:%M:%S} UTC, {journal.written} of {journal.to_write} rows written)",
                hint="wait for it; if its linea was killed, try again in a moment (`linea db doctor` shows it)",
            )
        _record_undo(session, result, actor)
        undone.append(result)
    return undone


def _record_undo(session: Session, undone: import_journal.Undone, actor: Actor | None) -> None:
    journal = undone.journal
    audit_log.record(
        session, action=AuditAction.IMPORT_UNDONE, resource="Event", resource_id=journal.event_id, actor=actor,
        details={
            "event": journal.event_slug, "file": journal.source, "removed": undone.removed, "kept": undone.kept,
            "written": journal.written,
            "rows": journal.rows, "started_by": journal.started_by,
            "started_at": f"{journal.started_at:%Y-%m-%dT%H:%M:%S}Z" if journal.started_at else None,
        },
    )


def _rejected_rows(stats: StreamStats) -> tuple[str, ...]:
    lines = [f"line {row.line}: {row.reason}" for row in stats.first_invalid]
    if stats.invalid > len(stats.first_invalid):
        lines.append(f"... and {stats.invalid - len(stats.first_invalid)} more")
    return tuple(lines)


def _rejection_hint(errors_file: str | None) -> str:
    hint = f"fix those rows, or pass {parameter('skip_invalid', value=True)} to import the valid ones"
    return hint + (f"; every invalid row is listed in {errors_file}" if errors_file else f"; {parameter('errors_file')} FILE lists them all")


# --- export ----------------------------------------------------------------------------------

def exportable_event_id(session: Session, *, event_ref: str, actor: Actor | None) -> str:
    """The event's id once the actor may export its waitlist (read only: a replica may answer),
    for `export_waitlist_csv` / `stream_waitlist`; `record_waitlist_export` checks again on the
    primary before the export is kept."""
    return _managed_event(session, event_ref, actor=actor, action="export").id


def record_waitlist_export(
    session: Session, *, event_ref: str, actor: Actor | None, fmt: str, status: WaitlistStatus | None = None,
) -> str:
    """Check the actor may export the event's waitlist and record the EXPORT audit row; the event's id.
    Written on the primary once the rows are read (they may have been read on a replica), in the
    unit of work that keeps the export: a failed export leaves no EXPORT row, and no export is kept
    without one."""
    event = _managed_event(session, event_ref, actor=actor, action="export")
    audit_log.record(
        session, action=AuditAction.EXPORT, resource="Event", resource_id=event.id, actor=actor,
        details={"event": event.slug, "format": fmt, "status": status.name if status else None},
    )
    return event.id


def export_waitlist_csv(
    session: Session, *, event_id: str, out: BinaryIO, status: WaitlistStatus | None = None, raw: bool = False,
    progress: ExportProgress | None = None,
) -> int:
    """Stream the waitlist as CSV into `out` with COPY (constant memory); returns the row count.
    `progress`: where an earlier attempt got to, kept up to date (waitlist_csv.copy_export_csv)."""
    return copy_export_csv(session, event_id=event_id, out=out, status=status, raw=raw, progress=progress)


def stream_waitlist(
    session: Session, *, event_id: str, status: WaitlistStatus | None = None, after: ExportKey | None = None,
    batch_size: int = 5000,
) -> Iterator[tuple[ExportKey, dict[str, Any]]]:
    """Every live entry after `after` as (key, record) (for json/ndjson), through a server-side cursor."""
    return export_records(session, event_id=event_id, status=status, batch_size=batch_size, after=after)
