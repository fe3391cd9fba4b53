"""What a command needs from the root options: settings, the database, the acting user.

Everything here is lazy so that `linea --help` needs neither a configuration nor a database.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from linea_cli.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlmodel import Session

    from linea_cli.config import Settings
    from linea_cli.db.connected import ConnectedTo
    from linea_cli.db.engine import Database
    from linea_cli.services.actors import Actor, UnitOfWork
    from linea_cli.services.pagination import Page
    from linea_cli.services.replica_reads import ReplicaCheck

T = TypeVar("T")

# Rows read per query by `--all`: what linea holds in memory at once, however long the list.
ALL_PAGE_SIZE = 1000


@dataclass
class CliState:
    database_url: str | None = None
    profile: str | None = None
    actor_email: str | None = None
    debug: bool = False
    command_name: str = "cli"
    _settings: Settings | None = None
    _database: Database | None = None
    _schema_checked: bool = False
    secrets: list[str] = field(default_factory=list)
    # A read command's psycopg connection (`direct_connection`), and where it connected.
    _direct: Any = None
    _direct_declined: bool = False
    connected_to: ConnectedTo | None = None
    # The acting user (--as / LINEA_ACTOR), looked up once per command (`acting_user`).
    _actor: Actor | None = None
    _actor_known: bool = False
    # Where reads may go (issue 22): --primary, --replica required, and the choice made once
    # per command (`read_replica`: a replica's Database, or None for the primary).
    primary_only: bool = False
    replica_required: bool = False
    _read_replica: Database | None = None
    _read_replica_label: str | None = None
    _read_place_known: bool = False
    _replica_schema_checked: bool = False
    # A replica a monitoring view reads (`monitored_database`), closed with the command.
    _monitored: Database | None = None
    # Whether this command wrote to the primary: its reads then wait for a replica to replay the
    # write (or read the primary), and the fence is remembered for the next command (`close`).
    wrote: bool = False

    def settings(self) -> Settings:
        if self._settings is None:
            from linea_cli.config import actor_reference, load_settings
            from linea_cli.db.urls import text_secrets

            # An explicit --database-url means that database for everything, migrations included.
            self._settings = load_settings(
                database_url=self.database_url,
                migration_database_url=self.database_url,
                actor=self.actor_email,
                profile=self.profile,
            )
            # An empty value is most likely a script's unset variable (`--as "$ADMIN"`): falling back
            # to the embedded server or to the system, which may do everything, would be wrong.
            actor_reference(self._settings.actor)
            for name, value in (
                ("--database-url / LINEA_DATABASE_URL", self._settings.database_url),
                ("LINEA_MIGRATION_DATABASE_URL", self._settings.migration_database_url),
            ):
                if value is not None and not value.strip():
                    raise InvalidInput(
                        f"{name} is empty", hint="give a postgresql:// URL, or unset it to use the embedded server"
                    )
            for raw in (
                self._settings.database_url, self._settings.migration_database_url, self._settings.pgbouncer_admin_url,
                self._settings.read_database_url,
            ):
                if raw:
                    self.secrets.extend(text_secrets(raw))
        return self._settings

    def database(self, *, for_migrations: bool = False) -> Database:
        if self._database is None:
            from linea_cli.services.database import open_database as open_unchecked

            self._database = open_unchecked(
                settings=self.settings(), name=self.command_name, for_migrations=for_migrations, check_schema=False,
                on_start=_say_started,
            )
            start_up_done()
        return self._database

    def direct_connection(self) -> Any:
        """The psycopg connection of a read command (`linea_cli.db.direct`), opened once; None when
        the engine's path must serve (the configuration or the database is not plain: see there)."""
        if self._direct is None and not self._direct_declined and self._database is None:
            from linea_cli.db import direct

            self._direct = direct.connect(self.settings(), command=self.command_name)
            self._direct_declined = self._direct is None
            if self._direct is not None:
                start_up_done()
        return self._direct

    def acting_user(self, connection: Callable[[], Any]) -> Actor | None:
        """The acting user, read on `connection()` (psycopg: `reads`; asked for only then) the
        first time only: every transaction of the command acts as the same user, one lookup."""
        if not self._actor_known:
            from linea_cli.config import actor_reference

            reference = actor_reference(self.settings().actor)
            if reference is not None:
                from linea_cli.services.actors import actor_on

                self._actor = actor_on(connection(), reference)
            self._actor_known = True
        return self._actor

    def check_acting_user(self, database: Database) -> Actor | None:
        """`acting_user` for a command that opens the database without a transaction of linea's
        own (the `db` reads and the commands that change the schema): a user who does not exist or
        is deleted is refused (exit 6) there too, not taken for the system."""
        if not self._actor_known:
            from linea_cli.config import actor_reference
            from linea_cli.services.database import acting_user

            self._actor = acting_user(database, actor_reference(self.settings().actor))
            self._actor_known = True
        return self._actor

    def replicas_configured(self) -> bool:
        return bool(self.settings().read_database_urls)

    def note_writes(self, connection: Any) -> None:
        """Before a unit of work commits: remember whether it wrote (a transaction id was assigned),
        when replicas are configured (otherwise nothing is asked: no round trip)."""
        if self.wrote or not self.replicas_configured():
            return
        from linea_cli.services.reads import rows

        found = rows(connection, "SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS wrote")
        self.wrote = bool(found[0]["wrote"])

    def read_replica(self) -> Database | None:
        """The replica this command reads from, or None for the primary: chosen once, at its first
        read (services/replica_reads.py), each replica skipped said in one line on stderr."""
        if not self._read_place_known:
            self._read_replica = self._choose_replica()
            self._read_place_known = True
        return self._read_replica

    def read_from_primary_from_now(self) -> None:
        self._read_replica, self._read_replica_label, self._read_place_known = None, None, True

    def _choose_replica(self) -> Database | None:
        from linea_cli.errors import DatabaseUnavailable, UsageProblem

        if self.primary_only:
            if self.replica_required:
                raise UsageProblem("--primary and --replica required contradict each other: give one")
            return None
        if not self.replicas_configured():
            if self.replica_required:
                raise InvalidInput(
                    "--replica required, but LINEA_READ_DATABASE_URL names no replica",
                    hint="set LINEA_READ_DATABASE_URL to the replicas' URLs (comma-separated)",
                )
            return None
        from linea_cli.output import warn
        from linea_cli.services.fences import FenceUnknown

        with reading() as (connection, _actor):  # the primary's schema and the acting user checked there
            primary = primary_position(connection, self)
        try:
            fence = self.fence(primary)
        except FenceUnknown as exc:
            if self.replica_required:
                raise DatabaseUnavailable(f"linea's last write to this database is unknown: {exc}") from None
            warn(f"linea's last write to this database is unknown ({exc}); reading from the primary")
            return None
        checks = self.examine_replicas(primary, fence_lsn=fence, stop_at_first_usable=True)
        chosen = next((check for check in checks if check.usable), None)
        skipped = [check for check in checks if not check.usable]
        if chosen is None and self.replica_required:
            raise DatabaseUnavailable(
                "no replica may serve this read (--replica required): "
                + "; ".join(f"{check.label} {check.why_not}" for check in skipped),
                hint="wait for the replicas to catch up, or run without --replica required to read from the primary",
            )
        for check in skipped:
            warn(f"{check.label} skipped: {check.why_not}; reading from {chosen.label if chosen else 'the primary'}")
        if chosen is None:
            return None
        self._read_replica_label = chosen.label
        return self.replica_database(chosen.url)

    def fence(self, primary: PrimaryPosition) -> str | None:
        """The WAL position a replica must have replayed to serve this command's reads: its own
        write's, else linea's last write to this database (services/fences.py; None: never wrote).
        Raises FenceUnknown when the fences file cannot be trusted."""
        from linea_cli.services.fences import read_fence

        return primary.lsn if self.wrote else read_fence(primary.key)

    def examine_replicas(
        self, primary: PrimaryPosition, *, fence_lsn: str | None, stop_at_first_usable: bool = False
    ) -> list[ReplicaCheck]:
        """Every configured replica measured against `primary`'s position now and `fence_lsn`
        (services/replica_reads.examine): what the choice of a read's replica and `db status` see."""
        from linea_cli.config import max_lag
        from linea_cli.services.replica_reads import connect_to_replica, examine

        return examine(
            self.settings().read_database_urls, primary_lsn=primary.lsn, limit=max_lag(self.settings().replica_max_lag),
            connect=lambda url: connect_to_replica(url, command=self.command_name), fence_lsn=fence_lsn,
            stop_at_first_usable=stop_at_first_usable, primary_system=primary.system_identifier,
            primary_database=primary.database,
        )

    def replica_database(self, raw_url: str) -> Database:
        """A `Database` on the replica `raw_url` names (from LINEA_READ_DATABASE_URL), named as
        linea/COMMAND in its pg_stat_activity; closed with the command (`close`) by its owner."""
        from linea_cli.db.engine import Database, build_engine
        from linea_cli.db.urls import parse_database_url, url_secrets

        url = parse_database_url(raw_url)
        opened: list[Database] = []  # the engine says where it connected: `target` names the replica
        replica = Database(
            url=url, is_embedded=False, secrets=url_secrets(url),
            engine=build_engine(
                url, settings=self.settings(), application_name=f"linea/{self.command_name}",
                on_connected=lambda connected: setattr(opened[0], "connected_to", connected),
            ),
        )
        opened.append(replica)
        return replica

    def remember_writes(self) -> None:
        """After a command that wrote, with replicas configured: the primary's WAL position now,
        for this database, in the user's fences file (services/fences.py), so that the next read
        on a replica waits until the replica has replayed it. A failure here is one warning: the
        command's own work is done and committed."""
        if not self.wrote or not self.replicas_configured():
            return
        from linea_cli.output import warn
        from linea_cli.services.fences import record_fence

        try:
            with self.database().connect() as connection:
                position = primary_position(connection.connection.driver_connection, self)
            record_fence(position.key, position.lsn)
        except Exception as exc:  # noqa: BLE001 - the command succeeded; its fence is best effort, said
            from linea_cli.errors import first_line

            warn(f"could not remember this write for reads on replicas ({first_line(exc)}): the next read may wait for the primary")

    def decline_direct(self) -> None:
        """From now on the engine's path: the database needs what only it does (see `reading`)."""
        if self._direct is not None:
            self._direct.close()
        self._direct, self._direct_declined = None, True

    def close(self) -> None:
        if self._monitored is not None:
            self._monitored.dispose()
            self._monitored = None
        if self._read_replica is not None:
            self._read_replica.dispose()
            self._read_replica = None
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        if self._database is not None:
            self._database.dispose()
            self._database = None


@dataclass(frozen=True)
class PrimaryPosition:
    lsn: str  # pg_current_wal_lsn()
    key: str  # the database, as services/fences.py knows it
    system_identifier: str | None  # None where the role may not read it
    database: str


# The cluster's system identifier where the role may read it (pg_control_system() is granted to
# PUBLIC by default; a hardened server may revoke it: then the host, port and database name).
_PRIMARY_POSITION = """
SELECT pg_current_wal_lsn()::text AS lsn, current_database() AS database,
       CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')
            THEN (SELECT system_identifier FROM pg_control_system())::text END AS system_identifier
"""


def primary_position(connection: Any, current: CliState) -> PrimaryPosition:
    """The primary's WAL position and the database's fence key, on `connection` (psycopg)."""
    import psycopg

    from linea_cli.errors import DatabaseUnavailable, first_line
    from linea_cli.services.fences import database_key
    from linea_cli.services.reads import rows

    try:
        found = rows(connection, _PRIMARY_POSITION)[0]
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:  # "recovery is in progress"
        raise DatabaseUnavailable(
            f"the database linea writes to is a replica in recovery: {first_line(exc)}",
            hint="LINEA_DATABASE_URL names the primary; replicas go in LINEA_READ_DATABASE_URL",
        ) from None
    system = found["system_identifier"]
    if system is None:
        info = connection.info
        system = f"{info.host}:{info.port}"
    return PrimaryPosition(
        lsn=found["lsn"], key=database_key(system, found["database"]), system_identifier=found["system_identifier"],
        database=found["database"],
    )


def start_up_done() -> None:
    """Let the cyclic garbage collector run again (`linea_cli.cli.main` holds it during start-up).

    What start-up made stays for the whole process: frozen, later collections skip it.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _say_started(url: URL) -> None:
    from linea_cli.output import say

    say(f"started the embedded PostgreSQL server ({url.query.get('host')})")


_current_state: ContextVar[CliState | None] = ContextVar("linea_cli_state", default=None)


def begin(new_state: CliState) -> CliState:
    """Make `new_state` the one every helper below sees for this invocation."""
    _current_state.set(new_state)
    return new_state


def state() -> CliState:
    current = _current_state.get()
    if current is None:
        current = begin(CliState())
    return current


def open_database(*, require_schema: bool = True) -> Database:
    """The command's database, checked once as a script's is (`services.database.ensure_schema`):
    reachable, PostgreSQL 15+, and at the migrations' head (the embedded server's migrated on the
    spot, said here; anywhere else the error says to run `linea db upgrade`).
    """
    current = state()
    database = current.database()
    if require_schema and not current._schema_checked:
        from linea_cli.services.database import ensure_schema

        migrated = ensure_schema(database)
        if migrated:
            from linea_cli.output import say

            say(f"migrated the embedded database to {migrated}")
        current._schema_checked = True
    current.check_acting_user(database)
    return database


def replica_checks(primary: Database, *, stop_at_first_usable: bool = False) -> list[ReplicaCheck]:
    """Each configured replica as a read command would find it now (`CliState.examine_replicas`):
    measured against `primary`'s WAL position, and against the fence of linea's last write to this
    database, waited for as a read waits, since a read skips a replica that has not replayed it.
    When the fences file cannot be trusted a read goes to the primary: each replica says so."""
    from dataclasses import replace

    from linea_cli.services.fences import FenceUnknown

    current = state()
    with primary.connect() as connection:
        position = primary_position(connection.connection.driver_connection, current)
    try:
        fence, unknown = current.fence(position), None
    except FenceUnknown as exc:
        fence, unknown = None, str(exc)
    checks = current.examine_replicas(position, fence_lsn=fence, stop_at_first_usable=stop_at_first_usable and unknown is None)
    if unknown is None:
        return checks
    why = f"linea's last write to this database is unknown ({unknown}): reads go to the primary"
    return [replace(check, why_not=why) if check.usable else check for check in checks]


def monitored_database(server: str) -> tuple[Database, str | None]:
    """The server a monitoring view reads (`--server`), and its label (None for the primary).

    `primary`; `replica`: the first replica a read would use now (the same choice, each one
    skipped said on stderr; none usable is exit 5); `N`: the Nth of LINEA_READ_DATABASE_URL
    whatever its lag, since watching a lagging replica is the point. The acting user (--as) is
    checked on the primary, where the users are, whichever server is shown.
    """
    from linea_cli.errors import DatabaseUnavailable, UsageProblem

    choice = server.strip().lower()
    if choice != "primary" and choice != "replica" and not choice.isdigit():
        raise UsageProblem(f"--server {server!r}: give primary, replica, or a replica's number (1 for the first)")
    primary = open_database(require_schema=False)
    if choice == "primary":
        return primary, None
    current = state()
    if current.primary_only:
        raise UsageProblem(f"--primary and --server {choice} contradict each other: give one")
    urls = current.settings().read_database_urls
    if not urls:
        raise InvalidInput(
            f"--server {choice}: LINEA_READ_DATABASE_URL names no replica",
            hint="set LINEA_READ_DATABASE_URL to the replicas' URLs (comma-separated), or use --server primary",
        )
    if choice == "replica":
        from linea_cli.output import warn

        checks = replica_checks(primary, stop_at_first_usable=True)
        chosen = next((check for check in checks if check.usable), None)
        if chosen is None:
            raise DatabaseUnavailable(
                "no replica may serve reads now: " + "; ".join(f"{check.label} {check.why_not}" for check in checks),
                hint="see one anyway with --server N (its number in LINEA_READ_DATABASE_URL), or use --server primary",
            )
        for check in checks[:-1]:
            warn(f"{check.label} skipped: {check.why_not}; showing {chosen.label}")
        url, label = chosen.url, chosen.label
    else:
        position = int(choice)
        if not 1 <= position <= len(urls):
            raise InvalidInput(f"--server {choice}: LINEA_READ_DATABASE_URL names {len(urls)} replica(s), numbered from 1")
        from linea_cli.services.replica_reads import replica_where

        url, label = urls[position - 1], f"replica {position} ({replica_where(urls[position - 1])})"
    current._monitored = current.replica_database(url)
    try:
        current._monitored.identify()  # connected here: a replica that does not answer is named as such
    except Exception as exc:
        if not _went_away(exc):
            raise
        from linea_cli.services.replica_reads import driver_words

        raise DatabaseUnavailable(
            f"{label} is unreachable: {driver_words(exc)}", hint="see `linea db status` for every replica, or use --server primary"
        ) from None
    return current._monitored, label


def require_admin_for(database: Database, action: str) -> None:
    """Commands that change the schema: the system (no --as) or an ADMIN, checked before anything runs."""
    from linea_cli.services.actors import require_admin

    require_admin(state().check_acting_user(database), action)


def _driver_connection(session: Session) -> Any:
    from linea_cli.services.reads import driver_connection

    return driver_connection(session)


@contextmanager
def transaction() -> Iterator[tuple[Session, Actor | None]]:
    """One unit of work with the acting user resolved inside it: commit on success, else roll back."""
    current = state()
    database = current.database()
    if not current._schema_checked:
        from linea_cli.services.database import schema_is_current

        # The schema check in the command's own transaction: one connection when all is well.
        with database.unit_of_work() as session:
            current._schema_checked = schema_is_current(session, database)
            if current._schema_checked:
                yield session, current.acting_user(lambda: _driver_connection(session))
                current.note_writes(_driver_connection(session))
        if current._schema_checked:
            return
        open_database()  # behind: migrates the embedded database, else says what to run
    with database.unit_of_work() as session:
        actor = current.acting_user(lambda: _driver_connection(session))
        yield session, actor
        current.note_writes(_driver_connection(session))


@contextmanager
def transactions() -> Iterator[UnitOfWork]:
    """`transaction` for a job of many short ones (a purge's batches), all on one connection."""
    database = open_database()
    with database.units_of_work() as unit_of_work:

        @contextmanager
        def one() -> Iterator[tuple[Session, Actor | None]]:
            with unit_of_work() as session:
                yield session, state().acting_user(lambda: _driver_connection(session))
                state().note_writes(_driver_connection(session))

        yield one


@contextmanager
def reading() -> Iterator[tuple[Any, Actor | None]]:
    """A read's unit of work on a psycopg connection, with the acting user resolved inside it.

    Without SQLAlchemy when it can (`linea_cli.db.direct`: the connection made as the engine would
    make it, the schema checked in the first transaction as `transaction` checks it); else (a
    configuration that is not plain, a database not at head, an embedded server to start) through
    `transaction`, on its session's own connection: the same queries (services/reads.py), and
    everything the engine's path says and does.
    """
    current = state()
    connection = current.direct_connection()
    if connection is not None:
        from linea_cli.db import direct

        def heard(where: ConnectedTo) -> None:
            current.connected_to = where

        with direct.transaction(connection, current.settings(), on_connected=heard):
            if current._schema_checked or direct.at_head(connection):
                current._schema_checked = True
                yield connection, current.acting_user(lambda: connection)
                return
        current.decline_direct()
    from linea_cli.services.reads import driver_connection

    with transaction() as (session, actor):
        yield driver_connection(session), actor


class ReplicaLost(Exception):
    """The replica a read was on stopped answering (its connection failed or was cut), or cancelled
    the read to replay the primary's changes (a recovery conflict): the read may go on elsewhere."""

    def __init__(self, label: str, what: str) -> None:
        super().__init__(f"{label} {what}")
        self.label = label


# SQLSTATEs of a server that went away (connection exceptions, admin or crash shutdown, starting
# up): the read may go on elsewhere. A server that answered with any other error did not go away.
_GONE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def _went_away(exc: BaseException) -> bool:
    import psycopg
    from sqlalchemy import exc as sa_exc

    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    if isinstance(original, psycopg.InterfaceError) or isinstance(exc, sa_exc.InterfaceError):
        return True
    if not isinstance(original, psycopg.OperationalError):
        return False
    sqlstate = getattr(original, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_GONE_SQLSTATES)


def _recovery_conflict(exc: BaseException) -> bool:
    # SQLSTATE class 40 on a hot standby: "canceling statement due to conflict with recovery"
    # (40001), when replay needs what the read holds (max_standby_streaming_delay passed).
    import psycopg
    from sqlalchemy import exc as sa_exc

    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    return isinstance(original, psycopg.errors.TransactionRollback)


@contextmanager
def read_transaction(*, driver: bool = False) -> Iterator[tuple[Any, Actor | None]]:
    """A read's unit of work: on the command's replica when one may serve it (`CliState.read_replica`),
    else on the primary (`transaction`, or `reading` with `driver`). Yields (session, actor), or
    with `driver` (psycopg connection, actor). On the replica, a failed connection raises
    `ReplicaLost` (see `read_on_replica_or_primary`), and the replica's schema is checked once.
    """
    current = state()
    replica = current.read_replica()
    if replica is None:
        with (reading() if driver else transaction()) as pair:
            yield pair
        return
    from linea_cli.services.reads import driver_connection

    label = current._read_replica_label or "the replica"
    try:
        with replica.unit_of_work() as session:
            if not current._replica_schema_checked:
                from linea_cli.services.database import schema_is_current

                if not schema_is_current(session, replica):
                    from linea_cli.errors import DatabaseUnavailable

                    raise DatabaseUnavailable(
                        f"{label} is not at linea's revision yet", hint="retry once it has replayed `linea db upgrade`, or use --primary"
                    )
                current._replica_schema_checked = True
            actor = current.acting_user(lambda: driver_connection(session))
            yield (driver_connection(session) if driver else session), actor
    except Exception as exc:
        lost = _replica_lost(exc, label)
        if lost is None:
            raise
        raise lost from exc


def _go_on_from_primary(lost: ReplicaLost) -> None:
    """After `lost`: the rest of the command reads from the primary (one warning line), or with
    --replica required exit 5."""
    current = state()
    if current.replica_required:
        from linea_cli.errors import DatabaseUnavailable

        raise DatabaseUnavailable(
            f"{lost} (--replica required)", hint="run again once the replica is back, or without --replica required"
        ) from None
    import traceback

    from linea_cli.output import warn

    # The lost read's frames hold its session and connection: let them go now, not at some later
    # garbage collection, whose rollback on a dead connection would be logged with a traceback.
    if lost.__cause__ is not None and lost.__cause__.__traceback__ is not None:
        traceback.clear_frames(lost.__cause__.__traceback__)
    warn(f"{lost}; reading from the primary from here on")
    current.read_from_primary_from_now()


def read_on_replica_or_primary(call: Callable[[Any, Actor | None], T], *, driver: bool = False) -> T:
    """`call(session or connection, actor)` in a `read_transaction`; when the replica goes away,
    the read again on the primary (one warning line), or with --replica required exit 5.

    A `call` that writes output as it reads must not write twice what it wrote before the
    replica went away: it keeps where it got (a cursor) and goes on from there when called again.
    """
    try:
        with read_transaction(driver=driver) as (connection, actor):
            return call(connection, actor)
    except ReplicaLost as lost:
        _go_on_from_primary(lost)
        with read_transaction(driver=driver) as (connection, actor):
            return call(connection, actor)


K = TypeVar("K")


def rows_on_replica_or_primary(
    stream: Callable[[Any, Actor | None, K | None], Iterable[tuple[K, dict]]],
) -> Generator[dict, None, None]:
    """The rows of an export, streamed in one read transaction on the command's replica (or the
    primary); when the replica goes away mid-stream, the rest from the primary (`_go_on_from_primary`).

    `stream(session, actor, after)` yields (key, row) in the key's order, only rows after `after`
    (None: from the first): the rows already handed on are not read again, none is missed. The
    first row is read here, so an unknown name or a refused permission is an error before
    anything is written. The caller closes what it gets (`with closing(rows)`).
    """
    after: K | None = None

    def attempt() -> Iterator[dict]:
        nonlocal after
        with read_transaction() as (session, actor):
            for key, row in stream(session, actor, after):
                yield row
                after = key  # handed on (written): the primary would go on after it

    def every_row() -> Generator[dict, None, None]:
        try:
            yield from attempt()
        except ReplicaLost as lost:
            _go_on_from_primary(lost)
            yield from attempt()

    rows = every_row()
    for first in rows:
        return _then(first, rows)
    return _then(None, rows)


def _then(first: dict | None, rows: Generator[dict, None, None]) -> Generator[dict, None, None]:
    """`first` (unless None), then `rows`; closing it closes `rows`, so a caller that stops early
    (`with closing(...)`: a closed pipe, a full disk) ends the read transaction there and then,
    not whenever the garbage collector finds it (by then its server may be gone)."""
    try:
        if first is not None:
            yield first
        yield from rows
    finally:
        rows.close()


def connected_on_replica_or_primary(run: Callable[[Callable[[], Any]], T]) -> T:
    """`run(connect)` where `connect()` opens connections (SQLAlchemy's) on the command's replica,
    or the primary; a replica that goes away during `run`: `run` again on the primary, or exit 5
    (`_go_on_from_primary`). For reads of many short transactions (the proof of erasure)."""
    current = state()
    replica = current.read_replica()
    if replica is None:
        return run(open_database().connect)
    label = current._read_replica_label or "the replica"
    try:
        return run(replica.connect)
    except Exception as exc:
        lost = _replica_lost(exc, label)
        if lost is None:
            raise
        _go_on_from_primary(lost)
    return run(open_database().connect)


def _replica_lost(exc: BaseException, label: str) -> ReplicaLost | None:
    from linea_cli.errors import first_line

    if _went_away(exc):
        return ReplicaLost(label, f"went away: {first_line(exc)}")
    if _recovery_conflict(exc):
        return ReplicaLost(label, f"cancelled the read to replay the primary's changes: {first_line(exc)}")
    return None


def listed_rows(
    fetch: Callable[[Any, Actor | None, int, str | None], Page], *, limit: int, after: str | None, every_page: bool,
    read_only: bool = False,
) -> tuple[Iterable[dict], str | None]:
    """The rows of a list command and the cursor after them: one page, or with `--all` every page.

    `fetch(session, actor, limit, after)` reads one page (with `read_only`, `fetch(connection, ...)`
    on a psycopg connection). Pages are read on the command's replica when one may serve it
    (`read_on_replica_or_primary`): a replica gone mid-list leaves the rest to the primary, from
    the keyset cursor reached. `--all` walks the keyset cursor, each
    page in a transaction of its own: memory holds one page, and a slow reader of the output
    (`| less`) never keeps a transaction open on the server. The first page is read here, so an
    unknown event or a refused permission is an error before anything is printed.
    """
    size = ALL_PAGE_SIZE if every_page else limit

    def read_page(cursor: str | None) -> Page:
        return read_on_replica_or_primary(
            lambda connection, actor: fetch(connection, actor, size, cursor), driver=read_only
        )

    page = read_page(after)
    if not every_page:
        return page.items, page.next_cursor
    return _following_pages(read_page, page), None


def _following_pages(read_page: Callable[[str | None], Page], first: Page) -> Iterator[dict]:
    page: Page | None = first
    while page is not None:
        yield from page.items
        cursor = page.next_cursor
        page.items = []  # let the rows already written go before the next page comes
        if cursor is None:
            return
        page = read_page(cursor)
