"""Login sessions: listing, revocation, and the cron job that purges expired ones.

Tokens: the platform hands a token to the browser and linea's database holds only its SHA-256
hex digest (`sessions.token`), so a dump or a leaked backup holds no usable token. linea never
prints even the digest: a session is shown by its id and an 8-character fingerprint (the start of
the digest), enough to match a row against the platform's logs.

Purge is the one place rows are hard-deleted. It deletes in batches, one transaction each, so no
batch holds row locks for long while the platform keeps logging people in; `FOR UPDATE SKIP
LOCKED` lets two cron hosts run it at once, each deleting rows the other has not claimed.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from linea_cli.db.engine import on_commit
from linea_cli.db.models import Session as LoginSession
from linea_cli.db.models import User
from linea_cli.errors import Conflict, InvalidInput, NotFound, shown
from linea_cli.services import audit_log
from linea_cli.services.actors import Actor, require_admin, require_self_or_admin
from linea_cli.services.audit_log import AuditAction
from linea_cli.services.pagination import Page, paginate
from linea_cli.services.users import find_user, revoke_live_sessions
from linea_cli.timeutil import utc_now

FINGERPRINT_LENGTH = 8


def token_fingerprint(token_column: Any) -> Any:
    """SQL for a session's fingerprint: the start of the SHA-256 of the stored value.

    Hashing once more means no part of the stored value is ever shown, even for a row some other
    writer stored unhashed; the fingerprint is the same in `sessions list` and `users export`.
    """
    digest = sa.func.encode(sa.func.sha256(sa.func.convert_to(token_column, "UTF8")), "hex")
    return sa.func.left(digest, FINGERPRINT_LENGTH)
DEFAULT_BATCH_SIZE = 10_000

_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str, *, field: str = "--older-than") -> timedelta:
    """'0', '90s', '30m', '12h', '7d', '2w' or combinations such as '1d12h'."""
    raw = text.strip().lower().replace(" ", "")
    if raw == "0":
        return timedelta()
    if not raw or _DURATION_PART.sub("", raw):
        raise InvalidInput(f"invalid duration {shown(text)} for {field}: use e.g. 30m, 12h, 7d, 2w or 1d12h")
    total = timedelta()
    try:
        for amount, unit in _DURATION_PART.findall(raw):
            total += timedelta(**{_UNITS[unit]: int(amount)})
        # A cutoff before year 1 is no date at all (nor is a session that old).
        utc_now() - total
    except (OverflowError, ValueError):
        raise InvalidInput(f"{field} {shown(text)} reaches back before year 1") from None
    return total


@dataclass(frozen=True)
class SessionFilter:
    user: str | None = None
    expired: bool = False
    live: bool = False
    include_revoked: bool = False


def list_sessions(
    session: Session, *, filters: SessionFilter, actor: Actor | None, limit: int = 50, after: str | None = None
) -> Page[dict]:
    """Sessions newest first. ADMINs (and the system) see everyone's; other users only their own."""
    if filters.expired and filters.live:
        raise InvalidInput("--expired and --live exclude each other")
    user_id = None
    if filters.user is not None:
        user_id = find_user(session, filters.user, include_deleted=True).id
    if user_id is not None:
        require_self_or_admin(actor, user_id, "list their own sessions")
    if actor is not None and not actor.is_admin:
        user_id = actor.user_id  # without --user, everyone but an ADMIN sees their own
    sessions, users = LoginSession.__table__, User.__table__
    now = utc_now()
    state = sa.case(
        (sessions.c.deleted_at.is_not(None), "REVOKED"),
        (sessions.c.expires_at <= now, "EXPIRED"),
        else_="LIVE",
    )
    query = sa.select(
        sessions.c.id,
        users.c.email.label("user_email"),
        token_fingerprint(sessions.c.token).label("fingerprint"),
        state.label("state"),
        sessions.c.expires_at,
        sessions.c.created_at,
        sessions.c.deleted_at,
    ).join(users, users.c.id == sessions.c.user_id)
    if user_id is not None:
        query = query.where(sessions.c.user_id == user_id)
    if not filters.include_revoked:
        query = query.where(sessions.c.deleted_at.is_(None))
    if filters.expired:
        query = query.where(sessions.c.expires_at <= now)
    if filters.live:
        query = query.where(sessions.c.expires_at > now, sessions.c.deleted_at.is_(None))
    return paginate(
        session, query, kind="sessions", sort_columns=[sessions.c.created_at, sessions.c.id], limit=limit, after=after, descending=True
    )


def revoke_session(session: Session, *, session_id: str, actor: Actor | None) -> dict[str, Any]:
    """Revoke one session (soft delete). Users may revoke their own; ADMINs anyone's."""
    login = session.get(LoginSession, session_id.strip())
    if login is None:
        raise NotFound(f"no session {shown(session_id)}")
    require_self_or_admin(actor, login.user_id, "revoke their own sessions")
    if login.deleted_at is not None:
        raise Conflict(f"session {login.id} is already revoked")
    now = utc_now()
    login.deleted_at = login.updated_at = now
    session.add(login)
    session.flush()
    audit_log.record(
        session,
        action=AuditAction.REVOKE,
        resource="Session",
        resource_id=login.id,
        actor=actor,
        changes=audit_log.changed_fields({"deleted_at": None}, {"deleted_at": now}),
        details={"user_id": login.user_id},
    )
    return {"id": login.id, "user_id": login.user_id, "revoked": 1}


def revoke_user_sessions(session: Session, *, user: str, actor: Actor | None) -> dict[str, Any]:
    """Revoke every live session of a user; one audit row with the count."""
    target = find_user(session, user, include_deleted=True)
    require_self_or_admin(actor, target.id, "revoke their own sessions")
    revoked = revoke_live_sessions(session, user_id=target.id, now=utc_now())
    if revoked:
        audit_log.record(
            session,
            action=AuditAction.REVOKE,
            resource="User",
            resource_id=target.id,
            actor=actor,
            details={"sessions_revoked": revoked},
        )
    return {"user_id": target.id, "revoked": revoked}


@dataclass(frozen=True)
class PurgeResult:
    purged: int
    batches: int
    cutoff: datetime
    dry_run: bool = False


UnitOfWork = Callable[[], AbstractContextManager[tuple[Session, "Actor | None"]]]

# The oldest expired rows through idx_sessions_expires_at, locked by this statement (rows another
# purge has locked are skipped, not waited for), then deleted by their physical address: a locked
# row cannot move, and a TID lookup spares the join a scan of the whole table.
_PURGE_BATCH_SQL = sa.text(
    """
    DELETE FROM sessions
    WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM sessions
        WHERE expires_at < :cutoff
        ORDER BY expires_at
        LIMIT :batch_size
        FOR UPDATE SKIP LOCKED
    ))
    """
)


def purge_expired_sessions_batch(session: Session, *, cutoff: datetime, batch_size: int) -> int:
    """Hard-delete up to `batch_size` sessions expired before `cutoff` that nobody else has locked."""
    return session.execute(_PURGE_BATCH_SQL, {"cutoff": cutoff, "batch_size": batch_size}).rowcount


def count_expired_sessions(session: Session, *, cutoff: datetime) -> int:
    return session.execute(
        sa.select(sa.func.count()).where(LoginSession.expires_at < cutoff)
    ).scalar_one()


def purge_expired_sessions(
    unit_of_work: UnitOfWork,
    *,
    older_than: timedelta = timedelta(),
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    on_batch: Callable[[int], None] = lambda purged: None,
) -> PurgeResult:
    """Delete sessions that expired more than `older_than` ago, one transaction per batch.

    Takes the unit of work rather than a session because it needs several transactions. The audit
    row (one per run, with the total) commits with the last batch; a run that purged nothing
    writes none, so a cron job every minute does not flood the log. If the run is interrupted after
    some batches committed, it still tries to record what it deleted before the error surfaces.
    """
    if batch_size < 1:
        raise InvalidInput("--batch-size must be at least 1")
    cutoff = utc_now() - older_than
    if dry_run:
        with unit_of_work() as (session, actor):
            require_admin(actor, "purge sessions")
            return PurgeResult(count_expired_sessions(session, cutoff=cutoff), 0, cutoff, dry_run=True)
    tally = _PurgeTally()
    try:
        while True:
            with unit_of_work() as (session, actor):
                require_admin(actor, "purge sessions")
                deleted = purge_expired_sessions_batch(session, cutoff=cutoff, batch_size=batch_size)
                last = deleted < batch_size
                total, batches = tally.purged + deleted, tally.batches + (1 if deleted else 0)
                if last and total:
                    _record_purge(session, actor=actor, purged=total, batches=batches, cutoff=cutoff)
                # Counted as part of the commit (no signal lands in between), so that an
                # interruption from here on records exactly what committed.
                on_commit(session, functools.partial(tally.committed, deleted, recorded=last))
            if last:  # its audit row committed with it
                return PurgeResult(tally.purged, tally.batches, cutoff)
            on_batch(tally.purged)
    except BaseException:
        if tally.purged and not tally.recorded:
            # The committed batches must not go unaudited; the original error is what the user sees.
            with contextlib.suppress(Exception), unit_of_work() as (session, actor):
                _record_purge(
                    session, actor=actor, purged=tally.purged, batches=tally.batches, cutoff=cutoff, interrupted=True
                )
        raise


@dataclass
class _PurgeTally:
    """What purge's committed batches deleted, and whether the PURGE row committed with them."""

    purged: int = 0
    batches: int = 0
    recorded: bool = False

    def committed(self, deleted: int, *, recorded: bool) -> None:
        self.purged += deleted
        self.batches += 1 if deleted else 0
        self.recorded = recorded and self.purged > 0


def _record_purge(
    session: Session, *, actor: Actor | None, purged: int, batches: int, cutoff: datetime, interrupted: bool = False
) -> None:
    details: dict[str, Any] = {"purged": purged, "batches": batches, "expired_before": cutoff}
    if interrupted:
        details["interrupted"] = True
    audit_log.record(session, action=AuditAction.PURGE, resource="Session", resource_id="expired", actor=actor, details=details)
