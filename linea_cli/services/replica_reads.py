"""Which server a read command reads from: a streaming replica within the lag bound, else the primary.

One choice per command (`choose`), made before its first read, from one look at every configured
replica (`examine`, also what `db status` and `db doctor` show):

- a replica that cannot be reached, is not in recovery (promoted, or not a replica at all), has
  its replay paused, or has replayed nothing since it started, is skipped;
- one further behind than LINEA_REPLICA_MAX_LAG (seconds, WAL bytes, or both) is skipped;
- one that has not replayed past the fence (the primary's WAL position after linea's last write to
  this database: services/fences.py, or this command's own write) is waited for, polled, up to
  `FENCE_WAIT_SECONDS`, then skipped: a read right after a write never answers from before it.

The first replica left, in the order configured, serves the command; the skipped ones are named,
each with why, so the caller can say so in one line. The lag is measured against the primary's
current position read just before (`primary_lsn`): seconds behind alone would not see a replica
that stopped receiving WAL (its last replay time stays old only while the primary is busy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from linea_cli.config import MaxLag
from linea_cli.errors import first_line
from linea_cli.services.replicas import ReplicaLag, measure_replica

if TYPE_CHECKING:
    from linea_cli.services.monitoring import Check

# How long a read waits for a replica to replay past the fence before it reads from the primary:
# about what replication takes on a healthy network (Rails waits a fixed 2 s after every write).
FENCE_WAIT_SECONDS = 2.0
FENCE_POLL_SECONDS = 0.05
# A replica that does not answer is skipped after this long, not after libpq's default (forever).
REPLICA_CONNECT_TIMEOUT_SECONDS = 5


def lsn_number(lsn: str) -> int:
    """A WAL position as PostgreSQL writes it ("16/B374D848") as one number, to compare two."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass(frozen=True)
class ReplicaCheck:
    """One replica as `examine` found it. `why_not` is None when linea would read from it now."""

    position: int  # 1-based, in LINEA_READ_DATABASE_URL's order
    url: str  # as configured: it may hold a password, never shown
    where: str  # host:port (or socket directory:port), for messages
    reachable: bool
    lag: ReplicaLag | None
    why_not: str | None

    @property
    def label(self) -> str:
        return f"replica {self.position} ({self.where})"

    @property
    def usable(self) -> bool:
        return self.why_not is None

    def record(self) -> dict[str, Any]:
        """What `db status` and `db doctor` show of it (`where`, never the URL: it may hold a password)."""
        lag = self.lag
        return {
            "position": self.position,
            "where": self.where,
            "reachable": self.reachable,
            "in_recovery": None if lag is None else lag.in_recovery,
            "replay_paused": None if lag is None else lag.replay_paused,
            "bytes_behind": None if lag is None else lag.bytes_behind,
            "seconds_behind": None if lag is None or lag.seconds_behind is None else round(lag.seconds_behind, 3),
            "replay_lsn": None if lag is None else lag.replay_lsn,
            "would_use": self.usable,
            "why_not": self.why_not,
        }


def replica_where(raw: str) -> str:
    """host:port of a replica URL, as a person would name it (never the password)."""
    from linea_cli.db.urls import parse_database_url

    try:
        url = parse_database_url(raw)
    except Exception:  # noqa: BLE001 - an unreadable URL is named by its position alone
        return "an unreadable URL"
    host = url.host or str(url.query.get("host") or "localhost")
    port = url.port or url.query.get("port") or 5432
    return f"{host}:{port}"


def lag_problem(lag: ReplicaLag, limit: MaxLag) -> str | None:
    """Why a replica measured as `lag` may not serve reads (None: it may), lag bound included."""
    if not lag.in_recovery:
        return "not in recovery (promoted, or not a replica)"
    if lag.replay_paused:
        return "replay paused"
    if lag.seconds_behind is None or lag.bytes_behind is None:
        return "has replayed nothing since it started"
    over = (limit.seconds is not None and lag.seconds_behind > limit.seconds) or (
        limit.bytes is not None and lag.bytes_behind > limit.bytes
    )
    if over:
        return f"{describe_lag(lag)} behind, more than LINEA_REPLICA_MAX_LAG ({limit})"
    return None


def describe_lag(lag: ReplicaLag) -> str:
    seconds = "?" if lag.seconds_behind is None else f"{lag.seconds_behind:.1f} s"
    size = "?" if lag.bytes_behind is None else f"{lag.bytes_behind} bytes"
    return f"{seconds} and {size}"


def replica_health(checks: list[ReplicaCheck]) -> list[Check]:
    """`db doctor`'s check per replica: OK when reads may go there now, else WARN saying why (the
    reads go to another replica or the primary: worth a look, not a failure of the database)."""
    from linea_cli.services.monitoring import OK, WARN, Check

    found = []
    for check in checks:
        # Named by position alone (a stable name for scripts); where it is begins the detail.
        name = f"replica {check.position}"
        if check.usable:
            behind = "" if check.lag is None else f", {describe_lag(check.lag)} behind"
            found.append(Check(name, OK, f"{check.where}: replaying{behind}: reads may go here"))
        else:
            found.append(Check(name, WARN, f"{check.where}: {check.why_not}: reads go elsewhere"))
    return found


def examine(
    urls: list[str],
    *,
    primary_lsn: str,
    limit: MaxLag,
    connect: Callable[[str], Any],
    fence_lsn: str | None = None,
    stop_at_first_usable: bool = False,
    primary_system: str | None = None,
    primary_database: str | None = None,
) -> list[ReplicaCheck]:
    """Each replica in `urls` measured against `primary_lsn` (and the fence, waited for).

    `connect(url)` opens a psycopg connection (autocommit) or raises; it is closed here.
    With `stop_at_first_usable`, the replicas after the first usable one are not looked at.
    `primary_system`: the primary's system identifier, when known: a replica of another cluster
    (a URL of another environment's replica) is skipped, never read as if it were this database's;
    so is a replica URL naming another database than `primary_database`.
    """
    checks: list[ReplicaCheck] = []
    for position, url in enumerate(urls, start=1):
        check = _examine_one(
            position, url, primary_lsn=primary_lsn, limit=limit, connect=connect, fence_lsn=fence_lsn,
            primary_system=primary_system, primary_database=primary_database,
        )
        checks.append(check)
        if stop_at_first_usable and check.usable:
            break
    return checks


def _examine_one(
    position: int, url: str, *, primary_lsn: str, limit: MaxLag, connect: Callable[[str], Any], fence_lsn: str | None,
    primary_system: str | None, primary_database: str | None,
) -> ReplicaCheck:
    import psycopg

    where = replica_where(url)
    try:
        connection = connect(url)
    except psycopg.Error as exc:
        return ReplicaCheck(position, url, where, reachable=False, lag=None, why_not=f"unreachable: {driver_words(exc)}")
    try:
        lag = measure_replica(connection, primary_lsn=primary_lsn)
        problem = _not_this_database(lag, primary_system, primary_database) or lag_problem(lag, limit)
        if problem is None and fence_lsn is not None:
            lag, problem = _wait_for_fence(connection, lag, primary_lsn=primary_lsn, fence_lsn=fence_lsn)
        return ReplicaCheck(position, url, where, reachable=True, lag=lag, why_not=problem)
    except psycopg.Error as exc:
        return ReplicaCheck(position, url, where, reachable=False, lag=None, why_not=f"unreachable: {driver_words(exc)}")
    finally:
        connection.close()


def _not_this_database(lag: ReplicaLag, primary_system: str | None, primary_database: str | None) -> str | None:
    from linea_cli.errors import shown

    if primary_system is not None and lag.system_identifier is not None and lag.system_identifier != primary_system:
        return f"a replica of another server (system identifier {lag.system_identifier}, the primary's {primary_system})"
    if primary_database is not None and lag.database is not None and lag.database != primary_database:
        return f"its URL names the database {shown(lag.database)}, not {shown(primary_database)}"
    return None


def _wait_for_fence(connection: Any, lag: ReplicaLag, *, primary_lsn: str, fence_lsn: str) -> tuple[ReplicaLag, str | None]:
    """Poll the replica until it has replayed past `fence_lsn`, at most FENCE_WAIT_SECONDS."""
    fence = lsn_number(fence_lsn)
    deadline = time.monotonic() + FENCE_WAIT_SECONDS
    while lag.replay_lsn is not None and lsn_number(lag.replay_lsn) < fence:
        if time.monotonic() >= deadline or lag.replay_paused:
            short = fence - lsn_number(lag.replay_lsn)
            return lag, f"has not replayed linea's last write to this database ({short} bytes short after {FENCE_WAIT_SECONDS:g} s)"
        time.sleep(FENCE_POLL_SECONDS)
        lag = measure_replica(connection, primary_lsn=primary_lsn)
    return lag, None


def driver_words(exc: BaseException) -> str:
    """A driver error's first line, URLs in it masked, cut short: for a message naming a replica."""
    from linea_cli.db.urls import mask_url_text
    from linea_cli.errors import cut

    return cut(mask_url_text(first_line(exc)), limit=200)


def connect_to_replica(url: str, *, command: str) -> Any:
    """A psycopg connection (autocommit) to a replica URL, made as linea makes its own: no prepared
    statements (a PgBouncer read pool), application_name linea/COMMAND, a connect timeout."""
    import psycopg

    from linea_cli.db.direct import url_arguments

    arguments = url_arguments(url)
    conninfo = "" if arguments is not None else url.replace("postgresql+psycopg://", "postgresql://", 1)
    return psycopg.connect(
        conninfo, **(arguments or {}), autocommit=True, prepare_threshold=None,
        application_name=f"linea/{command}"[:63], connect_timeout=REPLICA_CONNECT_TIMEOUT_SECONDS,
    )
