"""Streaming replicas: `linea_cli.temporary_replica` (or CI's standby) and the lag measurement.

Every wait polls a server condition (replay past a position, a pause taking effect); nothing here
depends on how long anything takes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

import linea_cli
from linea_cli.errors import DatabaseUnavailable
from linea_cli.services.replicas import ReplicaLag, measure_replica, primary_wal_lsn
from tests.harness import libpq_conninfo, wait_for_replay, wait_until

# --- the replica itself ---------------------------------------------------------------------------


def test_a_row_written_on_the_primary_is_read_on_the_replica(
    primary: psycopg.Connection, replica: psycopg.Connection, replica_database_url: URL, direct_database_url: URL
) -> None:
    primary.execute("CREATE TABLE replicated (note text)")
    primary.execute("INSERT INTO replicated VALUES ('written on the primary')")
    wait_for_replay(replica_database_url, primary=direct_database_url)

    assert replica.execute("SELECT note FROM replicated").fetchall() == [("written on the primary",)]


def test_a_read_on_the_replica_counts_in_its_statistics_not_the_primarys(
    primary: psycopg.Connection, replica: psycopg.Connection, replica_database_url: URL, direct_database_url: URL
) -> None:
    """How a test tells where a read ran: pg_stat_user_tables is each server's own. A backend
    reports its counts when idle, at most once a second: the counts are polled, not read once."""
    primary.execute("CREATE TABLE replicated (note text)")
    wait_for_replay(replica_database_url, primary=direct_database_url)
    scans = "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'replicated'"
    on_primary = primary.execute(scans).fetchone()

    with psycopg.connect(libpq_conninfo(replica_database_url), autocommit=True) as reader:
        reader.execute("SELECT count(*) FROM replicated")
    wait_until(lambda: replica.execute(scans).fetchone() == (1,), what="the replica counted the scan")
    primary.execute("SELECT pg_stat_clear_snapshot()")
    assert primary.execute(scans).fetchone() == on_primary


def test_the_replica_is_in_recovery_and_refuses_writes(replica: psycopg.Connection) -> None:
    assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        replica.execute("CREATE TABLE refused (note text)")


def test_the_primary_shows_the_replica_streaming(primary: psycopg.Connection, replica: psycopg.Connection) -> None:
    states = [row[0] for row in primary.execute("SELECT state FROM pg_stat_replication").fetchall()]
    assert "streaming" in states


def test_a_temporary_replica_is_stopped_and_removed_on_leaving(owned_server: linea_cli.TemporaryServer) -> None:
    """Its own replica (not the session's), so that stopping it leaves the other tests theirs."""
    with linea_cli.temporary_replica(owned_server) as replica:
        directory: Path = replica.data_directory
        with psycopg.connect(replica.url) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    assert not directory.parent.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(replica.url, connect_timeout=5)


def test_a_replica_of_a_server_reached_over_tcp_streams_over_its_socket() -> None:
    """With tcp=True the server's socket is named after its TCP port (.s.PGSQL.<port>)."""
    with linea_cli.temporary_server(tcp=True) as server, linea_cli.temporary_replica(server) as replica:
        with psycopg.connect(server.url, autocommit=True) as primary, psycopg.connect(replica.url) as conn:
            states = primary.execute("SELECT state FROM pg_stat_replication").fetchall()
            assert states == [("streaming",)]
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)


def test_a_replica_of_a_server_that_is_not_running_is_refused_in_one_line() -> None:
    with linea_cli.temporary_server() as server:
        pass
    with pytest.raises(DatabaseUnavailable, match="is not running"), linea_cli.temporary_replica(server):
        pass


# --- measuring it -----------------------------------------------------------------------------------


def replayed_past(replica: psycopg.Connection, primary: psycopg.Connection) -> str:
    """Wait until `replica` replayed the primary's WAL up to its current position; that position."""
    lsn = primary_wal_lsn(primary)

    def caught_up() -> bool:
        return measure_replica(replica, primary_lsn=lsn).bytes_behind == 0

    wait_until(caught_up, what=f"the replica replayed up to {lsn}")
    return lsn


def test_a_replica_that_caught_up_is_0_bytes_behind_and_not_paused(
    primary: psycopg.Connection, replica: psycopg.Connection
) -> None:
    lsn = replayed_past(replica, primary)
    lag = measure_replica(replica, primary_lsn=lsn)

    assert lag.in_recovery is True
    assert lag.replay_paused is False
    assert lag.bytes_behind == 0


def test_seconds_behind_is_0_once_everything_received_is_replayed(
    primary: psycopg.Connection, replica: psycopg.Connection
) -> None:
    """Even on an idle primary, whose last transaction (and so the last replay timestamp) is old."""
    lsn = replayed_past(replica, primary)
    found: list[ReplicaLag] = []

    def all_received_replayed() -> bool:
        found[:] = [measure_replica(replica, primary_lsn=lsn)]
        return found[0].replay_lsn == found[0].receive_lsn

    wait_until(all_received_replayed, what="the replica replayed all it received")
    assert found[0].seconds_behind == 0


def test_a_paused_replica_is_behind_and_says_paused_then_catches_up_once_resumed(
    primary: psycopg.Connection, replica: psycopg.Connection
) -> None:
    primary.execute("CREATE TABLE replicated (note text)")
    replayed_past(replica, primary)
    replica.execute("SELECT pg_wal_replay_pause()")
    try:
        # A pause is requested at once and takes effect between two records: wait for it.
        wait_until(
            lambda: replica.execute("SELECT pg_get_wal_replay_pause_state()").fetchone() == ("paused",),
            what="the replica's replay paused",
        )
        primary.execute("INSERT INTO replicated VALUES ('written while paused')")
        lsn = primary_wal_lsn(primary)

        paused = measure_replica(replica, primary_lsn=lsn)
        assert paused.in_recovery is True
        assert paused.replay_paused is True
        assert paused.bytes_behind is not None and paused.bytes_behind > 0
        assert replica.execute("SELECT count(*) FROM replicated").fetchone() == (0,)
    finally:
        replica.execute("SELECT pg_wal_replay_resume()")

    wait_until(lambda: measure_replica(replica, primary_lsn=lsn).bytes_behind == 0, what="the replica caught up")
    resumed = measure_replica(replica, primary_lsn=lsn)
    assert resumed.replay_paused is False
    assert replica.execute("SELECT note FROM replicated").fetchall() == [("written while paused",)]


def test_a_server_that_is_not_a_replica_says_so(primary: psycopg.Connection) -> None:
    """The primary itself (or a promoted replica): not in recovery, nothing else to measure."""
    lag = measure_replica(primary, primary_lsn=primary_wal_lsn(primary))

    assert dataclasses.replace(lag, system_identifier=None, database=None) == ReplicaLag(
        in_recovery=False, replay_paused=None, bytes_behind=None, seconds_behind=None, replay_lsn=None,
        receive_lsn=None,
    )
    assert lag.database == primary.info.dbname


def test_a_replica_shares_its_primarys_system_identifier(primary: psycopg.Connection, replica: psycopg.Connection) -> None:
    """How linea tells a replica of this database from one of another server (issue 22)."""
    on_primary = measure_replica(primary, primary_lsn=primary_wal_lsn(primary))
    on_replica = measure_replica(replica, primary_lsn=primary_wal_lsn(primary))
    assert on_replica.system_identifier is not None and on_replica.system_identifier == on_primary.system_identifier
    assert on_replica.database == on_primary.database == primary.info.dbname


def test_the_measurement_runs_in_the_callers_transaction(replica_database_url: URL, primary: psycopg.Connection) -> None:
    """One statement on the caller's connection, in its transaction, as a read command would run it."""
    with psycopg.connect(libpq_conninfo(replica_database_url)) as conn:  # not autocommit: a transaction
        conn.execute("SELECT 1")
        lag = measure_replica(conn, primary_lsn=primary_wal_lsn(primary))
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert lag.in_recovery is True


def test_the_measurement_runs_through_the_pooler(database_url: URL) -> None:
    """Through PgBouncer in transaction pooling mode when the suite runs behind one (make test-compat):
    bound parameters, no prepared statement (linea's connections prepare none)."""
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True, prepare_threshold=None) as conn:
        for _ in range(3):
            lag = measure_replica(conn, primary_lsn=primary_wal_lsn(conn))
            assert lag.in_recovery is False
