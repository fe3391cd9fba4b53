"""Which database linea is about to change: named as libpq connected to it (the server's name for
it, libpq's host and port), whether the URL named it, left it to a libpq service, or no URL was
given and libpq's environment (PGSERVICE, PGHOST, ...) chose it."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.factories import make_event, make_venue
from tests.harness import CliRun, Database, admin_execute, plain_url, run_linea_on_terminal
from tests.test_completion import bash_complete
from tests.test_embedded import embedded  # noqa: F401  (the fixture: linea on its own embedded server)


@pytest.fixture
def service(direct_database_url: URL, tmp_path: Path) -> dict[str, str]:
    """A pg_service.conf naming the test database as service `linea_staging`, and the variables
    that make libpq read it (the server itself: no pooler, as migrations and resets need)."""
    url = direct_database_url
    lines = ["[linea_staging]", f"host={url.host or url.query['host']}", f"dbname={url.database}"]
    lines += [f"{key}={value}" for key, value in (("port", url.port), ("user", url.username), ("password", url.password)) if value]
    path = tmp_path / "pg_service.conf"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return {"PGSERVICEFILE": str(path)}


def where(url: URL) -> str:
    """HOST:PORT as libpq connects to `url`: a Unix socket as its directory, 5432 when no port is given."""
    return f"{url.host or url.query['host']}:{url.port or 5432}"


def test_a_service_url_names_the_database_libpq_connected_to(
    linea: CliRun, db: Database, direct_database_url: URL, service: dict[str, str], tmp_path: Path
) -> None:
    env = {**service, "LINEA_DATABASE_URL": "postgresql://?service=linea_staging", "LINEA_MIGRATION_DATABASE_URL": None}
    name = str(direct_database_url.database)
    host, port = where(direct_database_url).rsplit(":", 1)

    status = linea("db", "status", "--json", env=env).json
    assert (status["url"], status["database"], status["host"], status["port"]) == (
        "postgresql://?service=linea_staging", name, host, port
    )
    # The server's side: none on a Unix socket; the same address and port without a pooler between.
    assert status["server_address"] == (None if host.startswith("/") else f"{host}:{port}")

    doctor = linea("db", "doctor", "--json", env=env).json
    assert doctor[0] == {"check": "connectivity", "status": "OK", "detail": f'connected to database "{name}" on {host}:{port}'}

    backups = tmp_path / "backups"
    backed_up = linea("db", "backup", env={**env, "LINEA_BACKUP_DIR": str(backups)})
    [archive] = backups.iterdir()
    assert archive.name.startswith(f"{name}-") and archive.name.endswith(".dump")
    assert f'backing up database "{name}" on {host}:{port} with ' in backed_up.stderr

    refused = linea("db", "reset", env=env, exit_code=6)
    assert f'refusing: this deletes every row in database "{name}" on {host}:{port}, which is not' in refused.stderr

    make_venue(db, name="Staging Hall")
    # The name to type back is the database's, and typing it resets that database.
    wrong = run_linea_on_terminal(["db", "reset", "--force"], env={**linea.env, **env}, terminal="stdin", typed=b"None\n")
    assert wrong.returncode == 1
    assert f"This deletes every row in database \"{name}\" on {host}:{port}. Type the database name: error: 'None' is not '{name}'; nothing was changed".encode() in wrong.other
    assert db.count("venues") == 1
    typed = run_linea_on_terminal(["db", "reset", "--force"], env={**linea.env, **env}, terminal="stdin",
                                  typed=name.encode() + b"\n")
    assert typed.returncode == 0, typed.other
    assert f'database "{name}" on {host}:{port} was reset to an empty schema at head'.encode() in typed.other
    assert db.count("venues") == 0


def test_without_a_linea_url_the_libpq_environment_chooses_the_server(
    linea: CliRun, direct_database_url: URL, service: dict[str, str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "no-embedded-server"
    env = {**service, "LINEA_DATABASE_URL": None, "LINEA_MIGRATION_DATABASE_URL": None, "LINEA_DATA_DIR": str(data_dir)}
    name = str(direct_database_url.database)

    status = linea("db", "status", "--json", env={**env, "PGSERVICE": "linea_staging"}).json
    assert (status["url"], status["database"], status["mode"]) == (
        "postgresql:// (libpq environment: PGSERVICE)", name, "external"
    )
    assert f"{status['host']}:{status['port']}" == where(direct_database_url)
    assert not data_dir.exists()  # the embedded server was neither started nor made
    # pg_dump reaches the same server: libpq reads the same environment.
    backed_up = linea("db", "backup", env={**env, "PGSERVICE": "linea_staging", "LINEA_BACKUP_DIR": str(tmp_path / "b")})
    [archive] = (tmp_path / "b").iterdir()
    assert archive.name.startswith(f"{name}-") and f'backing up database "{name}" on ' in backed_up.stderr

    # PGHOST and PGPORT naming a server that does not answer: that server's error, not the embedded one.
    failed = linea("events", "list", env={**env, "PGHOST": "127.0.0.1", "PGPORT": "1"}, exit_code=5)
    assert "the database libpq's environment names (PGHOST, PGPORT)" in failed.stderr
    assert not data_dir.exists()


def test_completion_reads_the_server_libpq_environment_names(
    linea: CliRun, db: Database, service: dict[str, str], tmp_path: Path
) -> None:
    make_event(db, slug="staging-fest")
    env = {**service, "PGSERVICE": "linea_staging", "LINEA_DATABASE_URL": None, "LINEA_DATA_DIR": str(tmp_path / "none")}
    assert bash_complete(linea, "linea events show staging-", env=env) == ["staging-fest"]


def test_an_unreachable_service_is_named_as_a_service(linea: CliRun, tmp_path: Path) -> None:
    # An unreachable URL is named from the URL alone; a service URL never as "None" on localhost.
    failed = linea("events", "list", env={"LINEA_DATABASE_URL": "postgresql://?service=nowhere_at_all", "PGSERVICEFILE": str(tmp_path / "none.conf")}, exit_code=5)
    assert 'the database of service "nowhere_at_all"' in failed.stderr and '"None"' not in failed.stderr


def test_the_embedded_server_is_named_by_its_socket_directory(embedded: CliRun) -> None:  # noqa: F811
    embedded("db", "seed", "--users", "3", "--events", "1", "--waitlist", "2", "--sessions", "1")
    socket = embedded("db", "server", "status", "--json").json["socket_directory"]
    status = embedded("db", "status", "--json").json
    assert (status["database"], status["host"], status["port"]) == ("linea", socket, "5432")
    declined = run_linea_on_terminal(["db", "reset"], env={**embedded.env, "LINEA_ACTOR": None}, terminal="stdin", typed=b"n\n")
    assert f'Reset database "linea" on {socket}:5432 (deletes every row)'.encode() in declined.other, declined.other


def test_a_refused_privilege_names_the_role_libpq_logged_in_as(
    linea: CliRun, direct_database_url: URL, service: dict[str, str]
) -> None:
    login = f"t{uuid.uuid4().hex[:12]}_bare"
    admin_execute(direct_database_url, f"CREATE ROLE \"{login}\" LOGIN PASSWORD 'bare-password'")
    try:
        # The service names the database; PGUSER and PGPASSWORD, which libpq reads with it, the role.
        env = {**service, "LINEA_DATABASE_URL": "postgresql://?service=linea_staging", "PGUSER": login,
               "PGPASSWORD": "bare-password", "LINEA_MIGRATION_DATABASE_URL": None}
        service_file = Path(service["PGSERVICEFILE"])
        service_file.write_text("".join(line + "\n" for line in service_file.read_text().splitlines()
                                        if not line.startswith(("user=", "password="))))
        refused = linea("events", "list", env=env, exit_code=6)
        assert f"role {login!r}" in refused.stderr, refused.stderr
    finally:
        with psycopg.connect(plain_url(direct_database_url), autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{login}"')
            conn.execute(f'DROP ROLE "{login}"')
