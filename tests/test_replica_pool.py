"""Reads through a PgBouncer read pool (issue 22): LINEA_READ_DATABASE_URL names PgBouncer in
transaction pooling mode in front of the replica, and lists and shows read there.

On the embedded suite the pool is a PgBouncer of the session's own with one server connection
(tests/conftest.py `replica_pool_server_url`): every command, and every transaction of a command,
gets the same server connection, so a prepared statement one of them left there would meet the
next ("prepared statement ... already exists" or "does not exist"). On CI it is the pool in front
of the standby (.ci/compat-servers.sh). Where a read ran is told by the servers' own statistics
(pg_stat_user_tables is per server), polled: a backend reports its counts when idle, at most once
a second, and a pooled server connection stays open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlalchemy.engine import URL

from linea_cli.cli.context import ALL_PAGE_SIZE
from tests.factories import make_event, make_user
from tests.harness import (
    CliRun,
    Database,
    libpq_conninfo,
    plain_url,
    table_reads,
    wait_for_replay,
    wait_until,
)


class Server:
    """One server's statistics for the test database (the replica's or the primary's), read directly."""

    def __init__(self, url: URL) -> None:
        self.connection = psycopg.connect(libpq_conninfo(url), autocommit=True)

    def reads(self, table: str) -> int:
        return table_reads(self.connection, table)


@pytest.fixture
def replica(replica_database_url: URL) -> Iterator[Server]:
    server = Server(replica_database_url)
    yield server
    server.connection.close()


@pytest.fixture
def primary(direct_database_url: URL) -> Iterator[Server]:
    server = Server(direct_database_url)
    yield server
    server.connection.close()


@pytest.fixture
def pooled(linea: CliRun, replica_pool_database_url: URL) -> CliRun:
    """`linea` with its reads pointed at the read pool."""
    return CliRun(
        env={**linea.env, "LINEA_READ_DATABASE_URL": plain_url(replica_pool_database_url)}, secrets=linea.secrets
    )


def _events(db: Database, count: int) -> None:
    """`count` published events, one statement (more than a page of `--all` takes several transactions)."""
    owner = make_user(db, role="OWNER")
    db.execute(
        """INSERT INTO events (id, title, slug, status, start_date, owner_id, created_at, updated_at)
           SELECT gen_random_uuid()::text, 'Pooled ' || n, 'pooled-' || n, 'PUBLISHED',
                  now() + interval '30 days', :owner, now(), now()
           FROM generate_series(1, :count) AS n""",
        owner=owner["id"], count=count,
    )


def _read_on_the_replica_only(replica: Server, primary: Server, table: str, action: Callable[[], None]) -> None:
    """Run `action()`; then the replica counts new reads of `table`, the primary none."""
    before_replica, before_primary = replica.reads(table), primary.reads(table)
    action()
    wait_until(lambda: replica.reads(table) > before_replica, what=f"the replica counted the reads of {table}")
    assert primary.reads(table) == before_primary


def test_events_list_all_reads_every_page_through_the_read_pool(
    pooled: CliRun, db: Database, replica: Server, primary: Server, replica_database_url: URL, direct_database_url: URL
) -> None:
    count = 2 * ALL_PAGE_SIZE + 5  # three pages, three transactions on the pool's server connection
    _events(db, count)
    wait_for_replay(replica_database_url, primary=direct_database_url)
    listed: list[str] = []

    def list_twice() -> None:
        for _ in range(2):  # the second command meets whatever the first left on the server connection
            result = pooled("--replica", "required", "events", "list", "--all", "-f", "ndjson", "--fields", "slug")
            assert result.stderr == ""
            listed[:] = result.stdout.splitlines()

    _read_on_the_replica_only(replica, primary, "events", list_twice)
    assert len(listed) == count
    assert sorted(listed)[0] == '{"slug": "pooled-1"}'


def test_events_show_reads_through_the_read_pool(
    pooled: CliRun, db: Database, replica: Server, primary: Server, replica_database_url: URL, direct_database_url: URL
) -> None:
    event = make_event(db, slug="pooled-show", title="Shown from the pool")
    wait_for_replay(replica_database_url, primary=direct_database_url)
    shown: list[dict] = []

    def show_repeatedly() -> None:
        for _ in range(6):  # more than psycopg's default prepare threshold (5), command after command
            result = pooled("events", "show", "pooled-show", "--json", "--replica", "required")
            assert result.stderr == ""
            shown.append(result.json)

    _read_on_the_replica_only(replica, primary, "events", show_repeatedly)
    assert {(entry["id"], entry["title"]) for entry in shown} == {(event["id"], "Shown from the pool")}


def test_a_write_then_a_read_through_the_pool_waits_for_the_replica_to_replay_it(pooled: CliRun, replica: Server) -> None:
    """The fence through the pool: `events create` writes on the primary, and the `events show`
    after it reads its row on the replica (--replica required), never from before the write. (The
    primary's counts are not compared: its own reads for the create may be reported late.)"""
    pooled("users", "create", "owner@example.com", "--name", "Owner", "--role", "OWNER")
    pooled("events", "create", "--title", "Fenced", "--slug", "fenced", "--owner", "owner@example.com", "--start", "2031-01-01T10:00")

    before = replica.reads("events")
    assert pooled("--replica", "required", "events", "show", "fenced", "--json").json["title"] == "Fenced"
    wait_until(lambda: replica.reads("events") > before, what="the replica counted the read of events")
