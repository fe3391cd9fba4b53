"""How far a streaming replica is behind its primary, measured in one cheap query (issue 22's lag guard).

Two reads, one per server: the primary's current WAL position (`primary_wal_lsn`, on the primary),
then, on the replica, one statement that compares it with what the replica has replayed
(`measure_replica`). The position is a parameter rather than read inside the measurement so that
the same measurement answers "has this replica replayed past my own last write?" (the read-your-
own-writes fence: a position remembered after a command wrote) as well as "how far behind is it now?".

Both take a psycopg connection, not a SQLAlchemy one: the read commands that will choose between
a replica and the primary open theirs with psycopg alone (`db/direct.py`, `services/reads.py`),
and a SQLAlchemy caller (`db status`, `db doctor`, a session) hands over its driver connection
(`services.reads.driver_connection`). Each is one statement with bound parameters and no prepared
statement, so it runs as is through PgBouncer in transaction pooling mode. Every function used is
granted to PUBLIC: a read-only role may measure. Neither begins, commits nor changes anything: the
caller's connection and transaction are used as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linea_cli.services.reads import rows

# Seconds behind counts as 0 when everything received is replayed: an idle primary sends no
# transactions, so `now() - pg_last_xact_replay_timestamp()` grows without the replica lagging.
# pg_is_wal_replay_paused() raises outside recovery, and replay/receive positions are NULL there:
# a server that is not a replica (a promoted one, the primary itself) answers in_recovery = false,
# everything else NULL. CASE evaluates only the branch it takes (the functions are volatile), and
# GREATEST ignores NULLs (GREATEST(NULL, 0) is 0): what may be NULL is tested before it.
_MEASURE = """
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS replay_paused,
       replay::text AS replay_lsn,
       receive::text AS receive_lsn,
       CASE WHEN replay IS NOT NULL
            THEN GREATEST(pg_wal_lsn_diff(%(primary_lsn)s::pg_lsn, replay), 0)
       END::bigint AS bytes_behind,
       CASE WHEN replay >= receive THEN 0
            WHEN replay IS NOT NULL AND replayed_at IS NOT NULL
            THEN GREATEST(EXTRACT(epoch FROM now() - replayed_at), 0)
       END::float8 AS seconds_behind,
       CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')
            THEN (SELECT system_identifier FROM pg_control_system())::text END AS system_identifier,
       current_database() AS database
FROM (SELECT pg_last_wal_replay_lsn() AS replay, pg_last_wal_receive_lsn() AS receive,
             pg_last_xact_replay_timestamp() AS replayed_at) AS positions
"""


@dataclass(frozen=True)
class ReplicaLag:
    """What `measure_replica` found on a replica, against a primary's WAL position.

    - `in_recovery`: false for a server that is not (or no longer) a replica; then every other
      field is None.
    - `replay_paused`: `pg_is_wal_replay_paused()` (true as soon as a pause is requested).
    - `bytes_behind`: WAL bytes from the replica's replay position to the primary's position, 0
      when it replayed past it.
    - `seconds_behind`: `now() - pg_last_xact_replay_timestamp()`, 0 when the replay position
      has reached the receive position; None when nothing was replayed since the replica started
      while WAL is still waiting to be.
    - `replay_lsn`, `receive_lsn`: the positions themselves, as PostgreSQL writes them (`0/3000060`).
    - `system_identifier`: the cluster's (a replica shares its primary's); None where the role may
      not call pg_control_system(). `database`: the database the connection reads.
    """

    in_recovery: bool
    replay_paused: bool | None
    bytes_behind: int | None
    seconds_behind: float | None
    replay_lsn: str | None
    receive_lsn: str | None
    system_identifier: str | None = None
    database: str | None = None


def primary_wal_lsn(primary: Any) -> str:
    """The primary's current WAL position (`pg_current_wal_lsn()`), as text, read on `primary` (psycopg)."""
    return str(rows(primary, "SELECT pg_current_wal_lsn()::text AS lsn")[0]["lsn"])


def measure_replica(replica: Any, *, primary_lsn: str) -> ReplicaLag:
    """How far `replica` (a psycopg connection to it) is behind `primary_lsn`, in one statement.

    `primary_lsn` is a position read on the primary (`primary_wal_lsn`), or one remembered after
    a write. Example:

        lag = measure_replica(replica, primary_lsn=primary_wal_lsn(primary))
        usable = lag.in_recovery and not lag.replay_paused and lag.seconds_behind is not None
    """
    found = rows(replica, _MEASURE, {"primary_lsn": primary_lsn})[0]
    return ReplicaLag(**found)
