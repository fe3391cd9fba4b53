"""Data minimization: the waitlist addresses of people without an account, kept only while useful.

Someone who joined a waitlist without an account gave an address for nothing but a place on that
list. Once the event is long over the address serves no purpose, so `waitlist retention` replaces
it, leaving the entry (its status, dates and counts) for the event's history.

Which entries: those of events that ended before the cutoff (`end_date`, or `start_date` when the
event has no end; soft-deleted events and entries included: their addresses are no less personal)
and that belong to nobody with an account:

- the entry has no `user_id` (linked entries are the account's data; `users anonymize` erases them);
- its address, in any case, is not a live user's (`deleted_at IS NULL`): someone who has an account
  now keeps the entries made with its address;
- it is not anonymized yet (an address at ANONYMIZED_DOMAIN), which makes a second run a no-op.

Each such entry gets `deleted-<entry id>@anonymized.invalid`: unique per entry, so the
(email, event_id) key holds, and derived from nothing personal. Status stays (an ended event's
confirmed count is history, not personal data), `updated_at` is set.

Like the session purge, the work goes in short batches, one transaction each, rows claimed with
`FOR UPDATE SKIP LOCKED`: an entry the platform (or a second run) holds is skipped, not waited for,
and left for the next run. A batch stays within one event, and each event gets one audit row
(ANONYMIZE, resource Event) with its count, committed with its last batch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from linea_cli.errors import InvalidInput, PermissionDenied, parameter, shown
from linea_cli.services import audit_log, batched_jobs
from linea_cli.services.actors import Actor, UnitOfWork, require_admin
from linea_cli.services.audit_log import AuditAction
from linea_cli.services.sessions import parse_duration
from linea_cli.services.users import anonymized_sql, placeholder_address_sql
from linea_cli.timeutil import parse_datetime, utc_now

DEFAULT_BATCH_SIZE = 5_000

_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def parse_cutoff(text: str, *, field: str = parameter("ended_before")) -> datetime:
    """A duration back from now (`180d`, `26w`, like --older-than) or an ISO 8601 date/datetime,
    not in the future: events that have not ended keep their waitlists, whatever a typo says."""
    if _DATE.match(text):
        cutoff = parse_datetime(text, field=field)
    else:
        try:
            cutoff = utc_now() - parse_duration(text, field=field)
        except InvalidInput as exc:
            if "invalid duration" not in exc.message:
                raise
            raise InvalidInput(
                f"invalid {field} {shown(text)}: use a duration such as 180d or 26w, or a date such as 2026-01-31"
            ) from None
    if cutoff > utc_now():
        raise InvalidInput(
            f"{field} {shown(text)} is in the future: only events that have ended lose their account-less addresses",
            hint="give a past date, or a duration back from now such as 180d",
        )
    return cutoff


# The rule, once: which entries of event `e` (joined as `e`, entries as `w`) retention erases.
_ERASABLE = f"""
    coalesce(e.end_date, e.start_date) < :cutoff
    AND w.user_id IS NULL
    AND NOT {anonymized_sql("w.email")}
    -- services/emails.same_address, column against column; on idx_users_lower_email
    AND NOT EXISTS (
        SELECT 1 FROM users u WHERE lower(u.email) = lower(w.email) AND u.deleted_at IS NULL
    )
"""

_EVENTS_SQL = sa.text(
    f"""
    SELECT e.id, e.slug, coalesce(e.end_date, e.start_date) AS ended, count(*) AS entries
    FROM waitlist_entries w JOIN events e ON e.id = w.event_id
    WHERE {_ERASABLE}
    GROUP BY e.id
    ORDER BY ended, e.id
    """
)

# Claimed by this statement (rows someone else holds are skipped), then rewritten. The event's
# dates and the address are checked again here: they may have changed since the list was read.
_BATCH_SQL = sa.text(
    f"""
    WITH picked AS (
        SELECT w.id FROM waitlist_entries w JOIN events e ON e.id = w.event_id
        WHERE w.event_id = :event_id AND {_ERASABLE}
        ORDER BY w.id
        LIMIT :batch_size
        FOR UPDATE OF w SKIP LOCKED
    )
    UPDATE waitlist_entries w
    SET email = {placeholder_address_sql("w.id")}, updated_at = :now
    FROM picked
    WHERE w.id = picked.id
    """
)


@dataclass(frozen=True)
class EndedEvent:
    id: str
    slug: str
    ended: datetime
    entries: int


@dataclass(frozen=True)
class RetentionResult:
    cutoff: datetime
    events: list[EndedEvent]  # a dry run: what it would erase; a run: the events it changed
    anonymized: int
    batches: int
    dry_run: bool = False


def require_acting_admin(actor: Actor | None, action: str) -> None:
    """An ADMIN by name: erasing people's data is done by someone the audit log can name."""
    if actor is None:
        raise PermissionDenied(
            f"to {action}, linea needs an acting ADMIN",
            hint=f"pass {parameter('actor')} ADMIN_EMAIL (or set LINEA_ACTOR): the audit log names who erased the addresses",
        )
    require_admin(actor, action)


def ended_events(session: Session, *, cutoff: datetime) -> list[EndedEvent]:
    """Events ended before `cutoff` holding entries retention would erase, oldest first, with counts."""
    return [EndedEvent(row.id, row.slug, row.ended, row.entries) for row in session.execute(_EVENTS_SQL, {"cutoff": cutoff})]


def anonymize_entries_batch(session: Session, *, event_id: str, cutoff: datetime, batch_size: int) -> int:
    """Anonymize up to `batch_size` erasable entries of one event that nobody else has locked."""
    params = {"event_id": event_id, "cutoff": cutoff, "batch_size": batch_size, "now": utc_now()}
    return session.execute(_BATCH_SQL, params).rowcount


def apply_retention(
    unit_of_work: UnitOfWork,
    *,
    cutoff: datetime,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    on_batch: Callable[[int], None] = lambda anonymized: None,
) -> RetentionResult:
    """Anonymize the account-less waitlist entries of events ended before `cutoff`, batch by batch.

    Takes the unit of work (several transactions, like `purge_expired_sessions`). An event's audit
    row commits with its last batch; a run that changed nothing writes none. Interrupted after
    some of an event's batches committed, it still records them before the error surfaces.
    """
    if batch_size < 1:
        raise InvalidInput("batch_size must be at least 1")  # the command's --batch-size stops 0 first (exit 2)
    with unit_of_work() as (session, actor):
        require_acting_admin(actor, "apply the waitlist retention")
        events = ended_events(session, cutoff=cutoff)
    if dry_run:
        return RetentionResult(cutoff, events, sum(event.entries for event in events), 0, dry_run=True)
    anonymized, batches, changed = 0, 0, []
    for event in events:
        # One run per event: its audit row commits with its last batch (or, interrupted, after it).
        tally = batched_jobs.run_batches(
            unit_of_work, _EventRetention(event, cutoff, batch_size),
            on_batch=lambda rows, before=anonymized: on_batch(before + rows),  # the run's total so far
        )
        anonymized, batches = anonymized + tally.rows, batches + tally.batches
        if tally.rows:
            changed.append(replace(event, entries=tally.rows))
    return RetentionResult(cutoff, changed, anonymized, batches)


class _EventRetention(batched_jobs.BatchedJob):
    """One event's erasable entries, a batch at a time."""

    def __init__(self, event: EndedEvent, cutoff: datetime, batch_size: int) -> None:
        self.event, self.cutoff, self.batch_size = event, cutoff, batch_size

    def batch(self, session: Session, actor: Actor | None) -> tuple[int, bool]:
        require_acting_admin(actor, "apply the waitlist retention")
        changed = anonymize_entries_batch(session, event_id=self.event.id, cutoff=self.cutoff, batch_size=self.batch_size)
        return changed, changed < self.batch_size

    def record(self, session: Session, actor: Actor | None, tally: batched_jobs.Tally, *, interrupted: bool) -> None:
        details: dict[str, Any] = {
            "retention": True, "waitlist_entries_anonymized": tally.rows, "batches": tally.batches,
            "ended": self.event.ended, "ended_before": self.cutoff,
        }
        if interrupted:
            details["interrupted"] = True
        audit_log.record(
            session, action=AuditAction.ANONYMIZE, resource="Event", resource_id=self.event.id, actor=actor, details=details
        )
