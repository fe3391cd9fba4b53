"""Streaming replicas: `linea_cli.temporary_replica` (or CI's standby).

Every wait polls a server condition (replay past a position, a pause taking effect); nothing here
depends on how long anything takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

import linea_cli
from tests.conftest import EMBEDDED_SERVERS
from tests.harness import libpq_conninfo, wait_for_replay


@pytest.fixture
def primary(direct_database_url: URL) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq_conninfo(direct_database_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def replica(replica_database_url: URL) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq_conninfo(replica_database_url), autocommit=True) as conn:
        yield conn


# --- the replica itself ---------------------------------------------------------------------------


def test_a_row_written_on_the_primary_is_read_on_the_replica(
    primary: psycopg.Connection, replica: psycopg.Connection, replica_database_url: URL, direct_database_url: URL
) -> None:
    primary.execute("CREATE TABLE replicated (note text)")
    primary.execute("INSERT INTO replicated VALUES ('written on the primary')")
    wait_for_replay(replica_database_url, primary=direct_database_url)

    assert replica.execute("SELECT note FROM replicated").fetchall() == [("written on the primary",)]


def test_the_replica_is_in_recovery_and_refuses_writes(replica: psycopg.Connection) -> None:
    assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        replica.execute("CREATE TABLE refused (note text)")


def test_the_primary_shows_the_replica_streaming(primary: psycopg.Connection, replica: psycopg.Connection) -> None:
    states = [row[0] for row in primary.execute("SELECT state FROM pg_stat_replication").fetchall()]
    assert "streaming" in states


def test_a_temporary_replica_is_stopped_and_removed_on_leaving() -> None:
    """Its own replica (not the session's), so that stopping it leaves the other tests theirs."""
    if not EMBEDDED_SERVERS:
        pytest.skip("the suite does not own this PostgreSQL server")
    with linea_cli.temporary_replica(EMBEDDED_SERVERS[0]) as replica:
        directory: Path = replica.data_directory
        with psycopg.connect(replica.url) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    assert not directory.parent.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(replica.url, connect_timeout=5)
