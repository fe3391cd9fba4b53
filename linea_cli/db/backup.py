"""Backups: pg_dump custom-format archives of the database, and pg_restore to bring one back.

Which binary runs: the one a setting names (LINEA_PG_DUMP / LINEA_PG_RESTORE), else, of those
found whose major version is at least the server's, the closest to it. Not older: pg_dump refuses
a newer server. Not newer than needed: a newer pg_dump writes an archive format older pg_restores
cannot read, and pg_restore 17+ sets `transaction_timeout`, which a PostgreSQL 15 or 16 server
rejects, so a PostgreSQL 15 database dumped by pg_dump 18 could be restored into no PostgreSQL 15
at all. The embedded server's wheel ships versions 16 and 18; the system's come from PATH and
/usr/lib/postgresql/*/bin.

The archive streams through linea (pg_dump writes to a pipe), so that `-o` follows linea's rules
for output files and the bytes can be counted; the row counts linea reports are read in the very
snapshot pg_dump dumps (exported by linea's own transaction), so they are the archive's.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection

from linea_cli.db.archive import (
    DATA_KINDS,
    Contents,
    Entry,
    check_data,
    classify,
    parse_list,
    split_script,
)
from linea_cli.db.catalog import LINEA_SCHEMA
from linea_cli.db.engine import Database, server_version_num
from linea_cli.db.urls import mask_passwords, mask_url_text
from linea_cli.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    LineaError,
    PermissionDenied,
    WriteFailed,
    cut,
    shown,
)

# The first bytes of a custom-format archive (pg_backup_archiver.c).
ARCHIVE_MAGIC = b"PGDMP"
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_CHUNK = 1 << 16
INSTALL_HINT = (
    "install a PostgreSQL client of version {major} or newer (on Debian/Ubuntu: `postgresql-client-{major}` "
    "from apt.postgresql.org), or name one with LINEA_PG_DUMP / LINEA_PG_RESTORE"
)


@dataclass(frozen=True)
class Tool:
    """A pg_dump or pg_restore binary and the PostgreSQL version it is."""

    name: str
    path: str
    major: int
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.path})"


@dataclass
class ArchiveSummary:
    """What a backup wrote, or a restore brought back: bytes, and rows per table."""

    tool: Tool
    size: int
    tables: dict[str, int] = field(default_factory=dict)
    routines: list[str] = field(default_factory=list)  # functions a restore made, callable by their owner only


def tool_version(path: str, name: str) -> Tool | None:
    """`path --version` read as a Tool, or None when it does not run or is not PostgreSQL's."""
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(result.stdout)
    if result.returncode != 0 or not match:
        return None
    version = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
    return Tool(name=name, path=path, major=int(match.group(1)), version=version)


def candidate_paths(name: str) -> list[str]:
    """Every `name` binary linea knows of: the wheel's, Debian's per-version ones, then PATH's (on
    Debian a wrapper that picks a version itself: of two of the same version the first is taken)."""
    from linea_cli.db import embedded

    found = [str(directory / name) for directory in embedded.bundled_binary_directories()]
    found += sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    on_path = shutil.which(name)
    if on_path:
        found.append(on_path)
    unique: dict[str, str] = {}
    for path in found:
        if os.access(path, os.X_OK):
            unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def find_tools(name: str, *, server_major: int, configured: str | None) -> list[Tool]:
    """The binaries that may run against a server of `server_major`, best first (see the module's
    docstring); never empty: one line saying what to install instead."""
    setting = f"LINEA_{name.upper()}"
    if configured:
        tool = tool_version(configured, name)
        if tool is None:
            raise InvalidInput(f"{setting} {shown(configured)} is not a {name} that runs")
        if tool.major < server_major:
            raise DatabaseUnavailable(
                f"{setting} names {tool}, older than the server (PostgreSQL {server_major})",
                hint=INSTALL_HINT.format(major=server_major),
            )
        return [tool]
    tools = [tool for path in candidate_paths(name) if (tool := tool_version(path, name)) is not None]
    usable = sorted(
        (tool for tool in tools if tool.major >= server_major),
        key=lambda tool: (tool.major, [-int(part) for part in tool.version.split(".")[1:]]),
    )
    if not usable:
        have = ", ".join(sorted({tool.version for tool in tools})) or "none"
        raise DatabaseUnavailable(
            f"no {name} of version {server_major} or newer for this PostgreSQL {server_major} server (found: {have})",
            hint=INSTALL_HINT.format(major=server_major),
        )
    return usable


def find_tool(name: str, *, server_major: int, configured: str | None) -> Tool:
    return find_tools(name, server_major=server_major, configured=configured)[0]


def server_major(database: Database) -> int:
    with database.connect() as connection:
        return server_version_num(connection) // 10000


def libpq_connection(url: URL, *, application_name: str) -> tuple[str, dict[str, str]]:
    """A conninfo string for `--dbname` and the environment for it: the password goes in
    PGPASSWORD, never on a command line that `ps` shows."""
    from psycopg.conninfo import make_conninfo

    parameters: dict[str, str] = {}
    for key, value in url.query.items():
        parameters[key] = value if isinstance(value, str) else ",".join(value)
    if url.host:
        parameters["host"] = url.host
    if url.port:
        parameters["port"] = str(url.port)
    if url.username:
        parameters["user"] = url.username
    if url.database:
        parameters["dbname"] = url.database
    password = parameters.pop("password", None) or (url.password if isinstance(url.password, str) else None)
    parameters.setdefault("connect_timeout", "10")
    parameters["application_name"] = application_name[:63]
    environment = dict(os.environ)
    if password:
        environment["PGPASSWORD"] = password
    return make_conninfo(**parameters), environment


def table_row_counts(connection: Connection) -> dict[str, int]:
    """Rows in every table of every user schema ("table" in public, "schema.table" elsewhere)."""
    tables = connection.execute(
        text(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND c.relpersistence <> 't' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
            "ORDER BY n.nspname <> 'public', n.nspname, c.relname"
        )
    ).all()
    counts: dict[str, int] = {}
    for schema, table in tables:
        quoted = connection.dialect.identifier_preparer.quote
        count = connection.execute(text(f"SELECT count(*) FROM {quoted(schema)}.{quoted(table)}")).scalar_one()
        counts[table if schema == "public" else f"{schema}.{table}"] = int(count)
    return counts


def backup(
    database: Database,
    out: BinaryIO,
    *,
    tool: Tool,
    lock_timeout: str,
    on_bytes: Callable[[int], None] = lambda written: None,
) -> ArchiveSummary:
    """Stream a custom-format archive of `database` into `out`; the counts are the archive's rows.

    An error or a signal stops pg_dump; what `out` does with a partial archive is its own rule
    (`output_file` discards it).
    """
    conninfo, environment = libpq_connection(database.url, application_name="linea/db backup")
    with database.connect() as connection:
        connection.execution_options(isolation_level="REPEATABLE READ")
        # pg_dump dumps the snapshot this transaction exported, and the counts below read it too.
        snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        arguments = [tool.path, "--format=custom", f"--snapshot={snapshot}", f"--dbname={conninfo}"]
        if _milliseconds_set(lock_timeout):
            arguments.append(f"--lock-wait-timeout={lock_timeout}")
        written = 0
        with _running(arguments, environment, stdout=subprocess.PIPE) as (process, errors):
            assert process.stdout is not None
            source = process.stdout.fileno()
            while chunk := os.read(source, _CHUNK):
                out.write(chunk)
                written += len(chunk)
                on_bytes(written)
            if process.wait() != 0:
                raise _failure(tool, errors, database, default=DatabaseUnavailable)
        out.flush()
        tables = table_row_counts(connection)
    return ArchiveSummary(tool=tool, size=written, tables=tables)


def new_backup_path(directory: Path, database: Database, label: str | None) -> Path:
    """DATABASE-TIME[-LABEL].dump in `directory` (made, private, when missing), never an existing file."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteFailed(
            f"cannot create the backup directory {directory}: {exc.strerror or exc}", hint="set LINEA_BACKUP_DIR"
        ) from None
    # The server's name for the database: a service URL or libpq's environment names none itself.
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", database.identify().database).strip("._")[:60] or "database"
    stem = f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}" + (f"-{label}" if label else "")
    candidate, number = directory / f"{stem}.dump", 1
    while candidate.exists():  # two backups in one second: keep both
        number += 1
        candidate = directory / f"{stem}-{number}.dump"
    return candidate


@dataclass(frozen=True)
class Archive:
    """An archive opened once, for every pass pg_restore makes over it: `name` as the user gave it
    (for messages), `source` the file pg_restore reads (`/proc/self/fd/N` of the one open file, or
    of linea's private copy), `descriptor` that open file (pg_restore inherits it)."""

    name: str
    source: str
    size: int
    descriptor: int

    @property
    def shown(self) -> str:
        return shown(self.name)


@contextmanager
def opened_archive(path: str, *, copy_into: Path | None = None) -> Iterator[Archive]:
    """The archive at `path`, opened once, so that what is checked is what is restored.

    pg_restore reads an archive by its name four or five times (its list, its SQL, its data, the
    restore); whoever controls the file or its directory could put another archive under that
    name between two of them (a rename during the confirmation prompt), and the restore would run
    what was never checked. So each pass reads the one file opened here, through
    `/proc/self/fd/N` (on Linux, a new open of the same inode, with its own offset, whatever is
    renamed meanwhile). A file someone else may write to (owned by another user but root, or
    writable by group or others) could still change in place: its bytes are first copied into an
    unnamed private file (in `copy_into` when it is a directory, else TMPDIR; gone when closed,
    on any error, Ctrl-C or kill), and every pass reads the copy. One line, exit 1, when it is
    not a custom-format pg_dump archive.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)  # a FIFO does not block
    except IsADirectoryError:
        raise InvalidInput(f"{shown(path)} is a directory, not a pg_dump archive") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {shown(path)}: {exc.strerror or exc}") from None
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):
            raise InvalidInput(f"{shown(path)} is a directory, not a pg_dump archive")
        if not stat.S_ISREG(status.st_mode):
            raise InvalidInput(f"{shown(path)} is not a regular file, so not a pg_dump archive")
        if not _REOPEN.is_dir():
            raise InvalidInput(f"cannot restore {shown(path)} here: linea gives pg_restore the archive it checked "
                               f"through {_REOPEN}, which this system lacks")
        if not _writable_by_others(status):
            yield _checked(Archive(name=path, source=_reopened(descriptor), size=status.st_size, descriptor=descriptor))
            return
        with _private_copy(descriptor, path, copy_into) as copy:
            size = os.fstat(copy.fileno()).st_size
            yield _checked(Archive(name=path, source=_reopened(copy.fileno()), size=size, descriptor=copy.fileno()))
    finally:
        os.close(descriptor)


# Where Linux shows a process's open files: opening /proc/self/fd/N opens that file anew.
_REOPEN = Path("/proc/self/fd")


def _reopened(descriptor: int) -> str:
    return str(_REOPEN / str(descriptor))


def _writable_by_others(status: os.stat_result) -> bool:
    """Whether anyone but this user (and root) may change the file's bytes: its owner if another
    user, or group and others by its mode (a POSIX ACL granting write shows in the group bits)."""
    return status.st_uid not in (os.geteuid(), 0) or bool(status.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


@contextmanager
def _private_copy(descriptor: int, path: str, directory: Path | None) -> Iterator[BinaryIO]:
    """The open file's bytes copied into an unnamed file only this user can open."""
    place = str(directory) if directory is not None and directory.is_dir() else None
    try:
        copy = tempfile.TemporaryFile(dir=place)
    except OSError as exc:
        raise WriteFailed(f"cannot make a private copy of {shown(path)} to restore from: {exc.strerror or exc}") from None
    with copy:
        try:
            offset = 0
            while chunk := os.pread(descriptor, _CHUNK, offset):
                copy.write(chunk)
                offset += len(chunk)
            copy.flush()
        except OSError as exc:
            raise WriteFailed(f"cannot make a private copy of {shown(path)} to restore from: {exc.strerror or exc}") from None
        yield copy


def _checked(archive: Archive) -> Archive:
    """The archive, once its first bytes say it is a custom-format pg_dump archive."""
    if os.pread(archive.descriptor, len(ARCHIVE_MAGIC), 0) != ARCHIVE_MAGIC:
        raise InvalidInput(
            f"{archive.shown} is not a pg_dump archive (custom format)",
            hint="linea restores what `linea db backup` (or pg_dump -Fc) wrote; a plain SQL dump is restored with psql",
        )
    return archive


def database_tables(database: Database) -> dict[str, int]:
    with database.connect() as connection:
        return table_row_counts(connection)


def inspect(archive: Archive, *, tool: Tool, database: Database) -> Contents:
    """The archive's table of contents and the SQL of each entry but the data, sorted by what
    linea knows (linea_cli.db.archive); nothing runs and no database is reached."""
    entries = parse_list(_read([tool.path, "--list", archive.source], tool, database, archive))
    schema = [entry for entry in entries if entry.kind not in DATA_KINDS]
    script = _read_listed(tool, database, archive, schema, [])
    split_script(script, schema)
    return classify(entries)


def restore(
    database: Database, archive: Archive, *, tool: Tool, contents: Contents, replace: bool, include_foreign: bool = False
) -> ArchiveSummary:
    """Restore what linea keeps of `archive` (read by `inspect`: every pass reads the same bytes),
    and the foreign objects too when `include_foreign`, in one transaction: all of it, or (on any
    error) nothing. Never the archive's owners or privileges, and the functions and procedures it
    makes are callable by their owner only (`_owner_only_routines`). `replace` drops the restored
    objects first (--clean --if-exists); linea's schema, when the database has it already, stays as it is.
    """
    chosen = contents.restore_list(include_foreign=include_foreign)
    if replace and _has_schema(database, LINEA_SCHEMA):
        chosen = "".join(line + "\n" for line in chosen.splitlines() if not _is_schema_entry(line, LINEA_SCHEMA))
    options = ["--clean", "--if-exists"] if replace else []
    kept = [entry for entry in contents.kept if entry.line in set(chosen.splitlines())]
    if replace and not include_foreign:
        # The drops come from the archive too: only pg_dump's plain DROPs of what is restored.
        schema = [entry for entry in kept if entry.kind not in DATA_KINDS]
        split_script(_read_listed(tool, database, archive, schema, options), schema, what="replaces tables with")
    # So do the statements that load the rows: only COPY ... FROM stdin into the table's own name.
    _check_data(tool, database, archive, [entry for entry in kept if entry.kind == "TABLE DATA"])
    conninfo, environment = libpq_connection(database.url, application_name="linea/db restore")
    routines: list[str] = []
    with tempfile.NamedTemporaryFile("w", suffix=".list", encoding="utf-8") as listing:
        listing.write(chosen)
        listing.flush()
        arguments = [
            tool.path, "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges",
            f"--use-list={listing.name}", *options, f"--dbname={conninfo}", archive.source,
        ]
        with _owner_only_routines(database, routines) if include_foreign else nullcontext():
            with _running(arguments, environment, stdout=subprocess.DEVNULL, archive=archive) as (process, errors):
                if process.wait() != 0:
                    raise _failure(tool, errors, database, default=Conflict, what="the restore failed; nothing was changed")
    return ArchiveSummary(tool=tool, size=archive.size, tables=database_tables(database), routines=routines)


# The functions and procedures of a database that are not PostgreSQL's or an extension's.
_ROUTINES = """
    SELECT p.oid, format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND NOT EXISTS (
        SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
"""
# Whether functions the current role makes are PUBLIC's to execute (PostgreSQL's default, unless
# the role's default privileges say otherwise).
_PUBLIC_EXECUTES_NEW_ROUTINES = """
    SELECT coalesce((SELECT bool_or(a.grantee = 0 AND a.privilege_type = 'EXECUTE')
                     FROM pg_default_acl d, aclexplode(d.defaclacl) a
                     WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)
                       AND d.defaclnamespace = 0 AND d.defaclobjtype = 'f'), true)
"""


@contextmanager
def _owner_only_routines(database: Database, made: list[str]) -> Iterator[None]:
    """Around a restore: the functions and procedures it makes are callable by their owner only,
    never by PUBLIC, and `made` names them ("schema.name(arguments)").

    PostgreSQL lets PUBLIC execute a new function unless told otherwise, and --no-privileges leaves
    the restored ones at that default, so a SECURITY DEFINER function from an archive would be
    anyone's to call as the restoring role. The role's default privileges say otherwise while the
    restore runs (so not even for a moment after its commit), and are given back as they were
    afterwards; then EXECUTE is revoked from PUBLIC on every routine the restore made, whoever's
    default privileges made it. Only a restore with --include-foreign-objects makes any.
    """
    with database.engine.begin() as connection:
        before = {oid for oid, _ in connection.execute(text(_ROUTINES))}
        public_executes = bool(connection.execute(text(_PUBLIC_EXECUTES_NEW_ROUTINES)).scalar())
        if public_executes:
            connection.execute(text("ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC"))
    try:
        yield
        with database.engine.begin() as connection:
            new = sorted((name, int(oid)) for oid, name in connection.execute(text(_ROUTINES)) if oid not in before)
            if new:  # by oid, each named by PostgreSQL itself: a name is never SQL text here
                oids = ",".join(str(oid) for _, oid in new)
                connection.execute(text(
                    "DO $$ DECLARE routine regprocedure; BEGIN FOR routine IN SELECT p.oid::regprocedure FROM pg_proc p "
                    f"WHERE p.oid = ANY('{{{oids}}}'::oid[]) LOOP "
                    "EXECUTE format('REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC', routine); END LOOP; END $$"
                ))
        made.extend(name for name, _ in new)
    finally:
        if public_executes:
            with database.engine.begin() as connection:
                connection.execute(text("ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC"))


def _check_data(tool: Tool, database: Database, archive: Archive, entries: list[Entry]) -> None:
    """Read the rows of `entries` once as pg_restore prints them (no database): each must be a
    plain COPY of its own table (archive.check_data). The rows pass through, unkept."""
    if not entries:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".list", encoding="utf-8") as listing:
        listing.write("".join(f"{entry.line}\n" for entry in entries))
        listing.flush()
        arguments = [tool.path, "--verbose", f"--use-list={listing.name}", "--file=-", archive.source]
        with _running(arguments, dict(os.environ), stdout=subprocess.PIPE, archive=archive) as (process, errors):
            assert process.stdout is not None
            check_data(process.stdout, entries)
            if process.wait() != 0:
                raise _failure(tool, errors, database, default=InvalidInput, what=f"{archive.shown} cannot be read")


def _read_listed(tool: Tool, database: Database, archive: Archive, entries: list[Entry], options: list[str]) -> str:
    """The SQL pg_restore would run for `entries` (with `options`), as text, each under its header."""
    with tempfile.NamedTemporaryFile("w", suffix=".list", encoding="utf-8") as listing:
        listing.write("".join(f"{entry.line}\n" for entry in entries))
        listing.flush()
        return _read(
            [tool.path, "--verbose", "--no-owner", "--no-privileges", f"--use-list={listing.name}", *options,
             "--file=-", archive.source],
            tool, database, archive,
        )


def _read(arguments: list[str], tool: Tool, database: Database, archive: Archive) -> str:
    """What pg_restore prints without a database (a list, or SQL)."""
    with _running(arguments, dict(os.environ), stdout=subprocess.PIPE, archive=archive) as (process, errors):
        assert process.stdout is not None
        output = process.stdout.read()
        if process.wait() != 0:
            raise _failure(tool, errors, database, default=InvalidInput, what=f"{archive.shown} cannot be read")
    return output.decode("utf-8", "replace")


def _has_schema(database: Database, schema: str) -> bool:
    with database.connect() as connection:
        return bool(connection.execute(text("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :s)"), {"s": schema}).scalar())


def _is_schema_entry(line: str, schema: str) -> bool:
    return bool(re.fullmatch(rf"\d+; \d+ \d+ SCHEMA - {schema} .*", line))


def readable_by(archive: Archive, tools: list[Tool], database: Database) -> Tool:
    """The first of `tools` that reads the archive's table of contents (no connection needed; a
    newer pg_dump's archive needs a newer pg_restore): a damaged archive, or one no pg_restore
    here can read, is refused before the database is touched."""
    failure: LineaError | None = None
    for tool in tools:
        arguments = [tool.path, "--list", archive.source]
        with _running(arguments, dict(os.environ), stdout=subprocess.DEVNULL, archive=archive) as (process, errors):
            if process.wait() == 0:
                return tool
            failure = _failure(tool, errors, database, default=InvalidInput, what=f"{archive.shown} cannot be read")
    assert failure is not None
    raise failure


@contextmanager
def _running(
    arguments: list[str], environment: dict[str, str], *, stdout: int, archive: Archive | None = None
) -> Iterator[tuple[subprocess.Popen, BinaryIO]]:
    """The process with its stderr in a temporary file; stopped (and waited for) if the caller
    leaves early: an error, a closed pipe, Ctrl-C or SIGTERM. It inherits the `archive`'s open file."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            arguments, stdin=subprocess.DEVNULL, stdout=stdout, stderr=errors, env=environment,
            pass_fds=(archive.descriptor,) if archive is not None else (),
        )
        try:
            yield process, errors  # type: ignore[misc]
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def _milliseconds_set(duration: str) -> bool:
    return not re.fullmatch(r"\s*0+(\.0*)?\s*(us|ms|s|min|h|d)?\s*", duration)


def _failure(
    tool: Tool, errors: BinaryIO, database: Database, *, default: type[LineaError], what: str | None = None
) -> LineaError:
    """pg_dump's or pg_restore's complaint as one line, secrets masked, with a fitting exit code."""
    errors.seek(0)
    lines = errors.read(64 * 1024).decode("utf-8", "replace").splitlines()
    complaint = next((line for line in lines if "error:" in line or "FATAL" in line), lines[0] if lines else "")
    complaint = mask_passwords(mask_url_text(complaint.split("error:", 1)[-1].strip()), database.secrets)
    complaint = cut(complaint or "no message", limit=300)
    lowered = complaint.lower()
    kind: type[LineaError] = default
    if "connection to server" in lowered or "could not connect" in lowered or "server version mismatch" in lowered:
        kind = DatabaseUnavailable
    elif "row-level security" in lowered:  # pg_dump refuses a table whose policies would hide rows from it
        table = re.search(r'row-level security policy for table "?(?P<name>[^"\s]+)', complaint)
        who = f"role {database.url.username!r}" if database.url.username else "the database role"
        return PermissionDenied(
            f"{what + ': ' if what else ''}{tool.name}: row-level security applies to {who} on "
            f"{'table ' + table['name'] if table else 'a table'}, so the archive would miss the rows it hides ({complaint})",
            hint="back up as a role with BYPASSRLS, or as the owner of the tables",
        )
    elif "permission denied" in lowered or "must be owner" in lowered:
        kind = PermissionDenied
    elif "input file" in lowered or "archive" in lowered:  # truncated, damaged, or from a newer pg_dump
        kind = InvalidInput
    hint = None
    if "transaction_timeout" in complaint:
        hint = ("pg_dump 17 or newer wrote this archive; the pg_restore that reads it sets transaction_timeout, "
                "which PostgreSQL 15 and 16 lack: restore it into PostgreSQL 17 or newer, or back up with a pg_dump "
                "of this server's version (LINEA_PG_DUMP)")
    return kind(f"{what + ': ' if what else ''}{tool.name}: {complaint}", hint=hint)
