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

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from linea_cli.db.models import Session as LoginSession
from linea_cli.db.models import User
from linea_cli.errors import InvalidInput, NotFound, parameter, shown
from linea_cli.services import audit_log, batched_jobs, soft_delete
from linea_cli.services.actors import Actor, UnitOfWork, require_admin, require_self_or_admin
from linea_cli.services.audit_log import AuditAction
from linea_cli.services.pagination import Page, paginate
from linea_cli.services.users import find_user, revoke_live_sessions
from linea_cli.timeutil import parse_span, utc_now

FINGERPRINT_LENGTH = 8


def token_fingerprint(token_column: Any) -> Any:
    """SQL for a session's fingerprint: the start of the SHA-256 of the stored value.

    Hashing once more means no part of the stored value is ever shown, even for a row some other
    writer stored unhashed; the fingerprint is the same in `sessions list` and `users export`.
    """
    digest = sa.func.encode(sa.func.sha256(sa.func.convert_to(token_column, "UTF8")), "hex")
    return sa.func.left(digest, FINGERPRINT_LENGTH)


def readable_fingerprint(session: Session) -> Any:
    """The fingerprint, or NULL for a role that may not read `sessions.token` (`linea db roles`'
    reader): listing sessions must not need the one column the reading role is denied."""
    readable = session.execute(sa.text("SELECT has_column_privilege('public.sessions', 'token', 'SELECT')")).scalar()
    return token_fingerprint(LoginSession.__table__.c.token) if readable else sa.null()


DEFAULT_BATCH_SIZE = 50_000

def parse_duration(text: str, *, field: str = parameter("older_than")) -> timedelta:
    """'0', '90s', '30m', '12h', '7d', '2w' or combinations such as '1d12h'."""
    raw = text.strip().lower().replace(" ", "")
    if raw == "0":
        return timedelta()
    span = parse_span(text, field=field)
    if span is None:
        raise InvalidInput(f"invalid duration {shown(text)} for {field}: use e.g. 30m, 12h, 7d, 2w or 1d12h")
    return span


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
        raise InvalidInput(f"{parameter('expired')} and {parameter('live')} exclude each other")
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
        readable_fingerprint(session).label("fingerprint"),
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
    soft_delete.soft_delete(
        session, login, resource="Session", actor=actor, name=f"session {login.id}", state="revoked",
        action=AuditAction.REVOKE, details={"user_id": login.user_id},
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


# Batches are sized by time: each holds its row locks for about this long, whatever the machine.
BATCH_SECONDS = 0.03
# From this many expired sessions on (or one per page of the table, if more), purge walks the
# table in physical order instead of following the index: see `_WALK_BATCH_SQL`.
WALK_FROM_ROWS = 50_000

# Few expired rows: the oldest through idx_sessions_expires_at, locked by this statement (rows
# another purge or the platform holds are skipped, not waited for), then deleted by their
# physical address: a locked row cannot move, and a TID lookup spares a scan of the table.
_INDEX_BATCH_SQL = sa.text(
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

# Many expired rows: a range of pages at a time, in physical order, like one plain DELETE reads
# the table. Following the index instead visits the rows in expiry order, scattered over the whole
# table (each batch dirtied a third of its pages, and locked each row before deleting it): 7x the
# cost of a plain DELETE, against about 1.5x this way (benchmarks/README.md). The DELETE locks its
# rows itself and rechecks `expires_at` on a row changed meanwhile (a session extended is kept);
# it waits for a row someone holds at most LOCK_WAIT (see `_purge_walk_batch`).
_WALK_BATCH_SQL = """
    DELETE FROM sessions
    WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM sessions
        WHERE ctid >= CAST(:low AS tid) AND ctid < CAST(:high AS tid) AND expires_at < :cutoff
        LIMIT :batch_size
        {locking}
    ))
"""
# The same pages, skipping rows someone holds: for a range where the short wait ran out.
_WALK_WAITING, _WALK_SKIPPING = (sa.text(_WALK_BATCH_SQL.format(locking=clause)) for clause in ("", "FOR UPDATE SKIP LOCKED"))
# Shorter than deadlock_timeout (1 s): a purge gives up waiting before a deadlock could be declared.
LOCK_WAIT = "50ms"
_LOCK_NOT_AVAILABLE = "55P03"


def purge_expired_sessions_batch(session: Session, *, cutoff: datetime, batch_size: int) -> int:
    """Hard-delete up to `batch_size` sessions expired before `cutoff` that nobody else has locked."""
    return session.execute(_INDEX_BATCH_SQL, {"cutoff": cutoff, "batch_size": batch_size}).rowcount


def _purge_walk_batch(
    session: Session, *, cutoff: datetime, first_page: int, pages: int, batch_size: int, skip_locked: bool
) -> int:
    """Hard-delete up to `batch_size` expired sessions stored on pages [first_page, first_page + pages)."""
    params = {"cutoff": cutoff, "low": f"({first_page},0)", "high": f"({first_page + pages},0)", "batch_size": batch_size}
    if skip_locked:
        return session.execute(_WALK_SKIPPING, params).rowcount
    session.execute(sa.text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": LOCK_WAIT})
    return session.execute(_WALK_WAITING, params).rowcount


def _table_pages(session: Session) -> int:
    return session.execute(
        sa.text("SELECT pg_relation_size('sessions') / current_setting('block_size')::int")
    ).scalar_one()


def _many_expired(session: Session, *, cutoff: datetime, pages: int) -> bool:
    """Whether at least WALK_FROM_ROWS (or one per page) sessions expired, counted on the index up to there."""
    enough = max(WALK_FROM_ROWS, pages)
    found = session.execute(
        sa.text("SELECT count(*) FROM (SELECT 1 FROM sessions WHERE expires_at < :cutoff LIMIT :enough) AS s"),
        {"cutoff": cutoff, "enough": enough},
    ).scalar_one()
    return found >= enough


def count_expired_sessions(session: Session, *, cutoff: datetime) -> int:
    return session.execute(
        sa.select(sa.func.count()).where(LoginSession.expires_at < cutoff)
    ).scalar_one()


@dataclass
class _PurgePlan:
    """Where a purge stands: following the index, or walking pages [page, pages) of the table."""

    rows: int  # the next batch's row limit (index) or cap (walk)
    walk: bool = False
    page: int = 0
    pages: int = 0
    span: int = 64  # pages per walking batch
    skip_locked: bool = False

    def resize(self, seconds: float, *, batch_size: int) -> None:
        """Aim the next batch at BATCH_SECONDS: at most double or halve it at a time."""
        factor = min(2.0, max(0.5, BATCH_SECONDS / max(seconds, 0.001)))
        if self.walk:
            self.span = min(16_384, max(8, int(self.span * factor)))
        else:
            self.rows = min(batch_size, max(100, int(self.rows * factor)))

    @classmethod
    def for_table(cls, session: Session, *, cutoff: datetime, batch_size: int) -> _PurgePlan:
        pages = _table_pages(session)
        walk = _many_expired(session, cutoff=cutoff, pages=pages)
        return cls(rows=batch_size if walk else min(batch_size, 1000), walk=walk, pages=pages)

    def delete_batch(self, session: Session, *, cutoff: datetime) -> tuple[int, bool, int]:
        """One batch: (rows deleted, whether it was the last, the page the next one starts at)."""
        if not self.walk:
            deleted = purge_expired_sessions_batch(session, cutoff=cutoff, batch_size=self.rows)
            return deleted, deleted < self.rows, self.page
        deleted = _purge_walk_batch(
            session, cutoff=cutoff, first_page=self.page, pages=self.span, batch_size=self.rows,
            skip_locked=self.skip_locked,
        )
        # A range is done when it gave fewer rows than the cap; the walk, at the last page.
        next_page = self.page + (self.span if deleted < self.rows else 0)
        return deleted, next_page >= self.pages, next_page

    def advance(self, next_page: int, seconds: float, *, batch_size: int) -> None:
        if next_page != self.page:
            self.page, self.skip_locked = next_page, False
        self.resize(seconds, batch_size=batch_size)


def purge_expired_sessions(
    unit_of_work: UnitOfWork,
    *,
    older_than: timedelta = timedelta(),
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    on_batch: Callable[[int], None] = lambda purged: None,
) -> PurgeResult:
    """Delete sessions that expired more than `older_than` ago, one transaction per batch.

    A batch deletes at most `batch_size` rows, fewer when that would hold its locks longer than
    about BATCH_SECONDS. Takes the unit of work rather than a session because it needs several
    transactions. The audit row (one per run, with the total) commits with the last batch; a run
    that purged nothing writes none, so a cron job every minute does not flood the log. If the run
    is interrupted after some batches committed, it still tries to record what it deleted before
    the error surfaces.
    """
    if batch_size < 1:
        raise InvalidInput("batch_size must be at least 1")  # the command's --batch-size stops 0 first (exit 2)
    cutoff = utc_now() - older_than
    if dry_run:
        with unit_of_work() as (session, actor):
            require_admin(actor, "purge sessions")
            return PurgeResult(count_expired_sessions(session, cutoff=cutoff), 0, cutoff, dry_run=True)
    tally = batched_jobs.run_batches(unit_of_work, _Purge(cutoff, batch_size), on_batch=on_batch)
    return PurgeResult(tally.rows, tally.batches, cutoff)


class _Purge(batched_jobs.BatchedJob):
    """The purge's batches: the plan is made in the first one's transaction, then followed."""

    def __init__(self, cutoff: datetime, batch_size: int) -> None:
        self.cutoff, self.batch_size = cutoff, batch_size
        self.plan: _PurgePlan | None = None
        self.next_page = 0

    def batch(self, session: Session, actor: Actor | None) -> tuple[int, bool]:
        require_admin(actor, "purge sessions")
        if self.plan is None:
            self.plan = _PurgePlan.for_table(session, cutoff=self.cutoff, batch_size=self.batch_size)
        deleted, last, self.next_page = self.plan.delete_batch(session, cutoff=self.cutoff)
        return deleted, last

    def pace(self, seconds: float) -> None:
        if self.plan is not None:  # made by the first batch
            self.plan.advance(self.next_page, seconds, batch_size=self.batch_size)

    def retry(self, error: Exception) -> bool:
        """A walking batch that waited LOCK_WAIT in vain runs the same range again, skipping what is held."""
        plan = self.plan
        if not isinstance(error, sa.exc.OperationalError) or plan is None or not plan.walk or plan.skip_locked:
            return False
        if _sqlstate(error) != _LOCK_NOT_AVAILABLE:
            return False
        plan.skip_locked = True
        return True

    def record(self, session: Session, actor: Actor | None, tally: batched_jobs.Tally, *, interrupted: bool) -> None:
        details: dict[str, Any] = {"purged": tally.rows, "batches": tally.batches, "expired_before": self.cutoff}
        if interrupted:
            details["interrupted"] = True
        audit_log.record(session, action=AuditAction.PURGE, resource="Session", resource_id="expired", actor=actor, details=details)


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)
