"""Which database, one engine per command, and the unit of work that owns each transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, create_engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from linea_cli.config import Settings
from linea_cli.db import embedded
from linea_cli.db.connected import MINIMUM_SERVER_VERSION, TRANSACTION_START, ConnectedTo, connected_to
from linea_cli.db.libpq_environment import libpq_environment
from linea_cli.db.urls import describe_target, display_url, parse_database_url, url_secrets
from linea_cli.errors import DatabaseUnavailable, InvalidInput, cut
from linea_cli.interrupts import interrupts_held
from linea_cli.version import __version__

USER_AGENT = f"linea-cli/{__version__}"
# A connection whose `info` holds a snapshot id under this key (`services/traces.py` puts one
# there) begins each transaction in that snapshot, as the transaction that exported it sees the
# database: SET TRANSACTION SNAPSHOT must be the transaction's first statement.
SNAPSHOT_INFO = "linea.snapshot"
# ... and applies these settings ({name: value}) to each transaction, over the configured timeouts.
TRANSACTION_SETTINGS_INFO = "linea.transaction_settings"


@dataclass
class Database:
    """An engine bound to one database, with what linea needs to talk about it safely."""

    url: URL
    is_embedded: bool
    engine: Engine
    secrets: list[str] = field(default_factory=list)
    # The libpq variables that chose the server when no linea URL was given (PGSERVICE, PGHOST...).
    libpq_environment: tuple[str, ...] = ()
    # Learnt from the first transaction on the server (no round trip of its own): see build_engine.
    connected_to: ConnectedTo | None = None

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        command: str,
        for_migrations: bool = False,
        on_start: Callable[[URL], None] = lambda url: None,
    ) -> Database:
        """The configured database (the migration URL first for migrations), else the embedded one.

        A running embedded server is connected to as it announced itself; one that is not running
        is started here or, when the announcement was stale, at the first connection (`on_start`
        hears of it either way).
        """
        raw = (settings.migration_database_url if for_migrations else None) or settings.database_url
        # No linea URL, but libpq's own variables name a server: that one, as psql would connect.
        chosen_by_libpq = () if raw else libpq_environment()
        if chosen_by_libpq:
            raw = "postgresql://"  # everything left to libpq, which reads the environment
        url = parse_database_url(raw) if raw else embedded.announced_url(settings.data_dir)
        if url is None:
            url, started = embedded.ensure_running(settings.data_dir)
            if started:
                on_start(url)
        opened: list[Database] = []  # the engine hears where it connected before anyone asks
        engine = build_engine(
            url, settings=settings, application_name=f"linea/{command}",
            on_connected=lambda connected: setattr(opened[0], "connected_to", connected),
        )
        database = cls(
            url=url, is_embedded=not raw, engine=engine, secrets=url_secrets(url), libpq_environment=chosen_by_libpq
        )
        opened.append(database)
        if not raw:

            def started_late(new_url: URL) -> None:
                database.url = new_url
                on_start(new_url)

            embedded.start_on_demand(engine, settings.data_dir, started_late)
        return database

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def display_url(self) -> str:
        """The URL as configured (secrets masked); with libpq's environment, the variables it read."""
        if self.libpq_environment:
            return f"postgresql:// (libpq environment: {', '.join(self.libpq_environment)})"
        return display_url(self.url)

    @property
    def target(self) -> str:
        """'database "x" on host:port' as the server and libpq know it once connected; before
        that (or when connecting failed) what the URL says. Never connects: errors use it."""
        if self.connected_to is not None:
            return str(self.connected_to)
        return describe_target(self.url, libpq_environment=self.libpq_environment)

    def identify(self) -> ConnectedTo:
        """Where this database really is, connecting once if nothing has yet: for what must name
        it exactly (the name typed back at a confirmation, a backup's file name, `db status`)."""
        if self.connected_to is None:
            with self.connect() as connection:
                connection.begin()  # the "begin" hook asks the server (build_engine)
        assert self.connected_to is not None
        return self.connected_to

    @contextmanager
    def unit_of_work(self, *, bind: Connection | None = None) -> Iterator[Session]:
        """One transaction: services flush, this commits on success and rolls back on any error.

        Ending it is one step with Ctrl-C and SIGTERM held back (a signal received meanwhile acts
        right after): the commit, what `on_commit` registered, and closing the connection. So a
        signal cannot fall between a COMMIT and the caller's count of what it committed, nor
        halfway through closing, where SQLAlchemy's pool would log a traceback. On an error the
        connection is closed without a ROLLBACK round trip: the server rolls the transaction back
        when the connection ends, and nothing waits on the server while signals are held.
        """
        session = Session(bind or self.engine, expire_on_commit=False)
        try:
            yield session
            session.flush()  # what is still pending may wait on locks: that stays interruptible
        except BaseException:
            with interrupts_held():
                session.invalidate()
            raise
        with interrupts_held():
            try:
                session.commit()
            except BaseException:
                session.invalidate()
                raise
            try:
                for callback in session.info.pop(_ON_COMMIT, ()):
                    callback()
            finally:
                session.close()

    @contextmanager
    def units_of_work(self) -> Iterator[Callable[[], AbstractContextManager[Session]]]:
        """Units of work one after another on one connection, for jobs of many short transactions.

        A batched job (session purge, waitlist retention) commits every few milliseconds; a new
        connection per transaction would cost more than the batch itself (NullPool: a server
        process each time). Each unit still commits or rolls back on its own, as `unit_of_work`
        does; after an error the connection is gone, and the next unit opens a fresh one (so an
        interrupted job can still write its audit row).
        """
        held: list[Connection] = []

        @contextmanager
        def unit_of_work() -> Iterator[Session]:
            if not held or held[0].closed or held[0].invalidated:
                held[:] = [self.engine.connect()]
            try:
                with self.unit_of_work(bind=held[0]) as session:
                    yield session
            except BaseException:
                with interrupts_held():
                    held[0].invalidate()
                raise

        try:
            yield unit_of_work
        finally:
            with interrupts_held():
                for connection in held:
                    if not connection.closed and not connection.invalidated:
                        connection.close()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads outside a unit of work, ended the way `unit_of_work` ends its own."""
        connection = self.engine.connect()
        try:
            yield connection
            # Ended in its own round trip, so that PgBouncer can hand the server connection on.
            connection.rollback()
        except BaseException:
            with interrupts_held():
                connection.invalidate()
            raise
        with interrupts_held():
            connection.close()

    def close(self) -> None:
        """Close the engine's connections (with NullPool, none stay open between units of work)."""
        self.engine.dispose()

    dispose = close


_ON_COMMIT = "linea.on_commit"


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once this unit of work has committed, in the same uninterruptible step.

    For bookkeeping that must match what committed (purge's running count): no signal lands
    between the two, and a failed commit runs nothing.
    """
    session.info.setdefault(_ON_COMMIT, []).append(callback)


def build_engine(
    url: URL, *, settings: Settings, application_name: str, on_connected: Callable[[ConnectedTo], None] | None = None
) -> Engine:
    """An engine for `url`: one connection per unit of work, the timeouts set in each transaction.

    `on_connected` hears where the first transaction ran (`ConnectedTo`): the database's name is
    asked in the statement that sets that transaction's timeouts, so it costs no round trip; the
    host and port are libpq's own (`PQhost`, `PQport`: after a service file, PG* variables and a
    list of hosts were resolved). Not `inet_server_addr()`: behind PgBouncer that names the
    pooler's own connection to the server, not what the operator connected to, and it is empty on
    a Unix socket, which is named by its directory here.
    """
    not_told = [on_connected] if on_connected is not None else []
    try:
        engine = create_engine(
            url,
            poolclass=NullPool,  # one short-lived process per command; PgBouncer does the pooling
            hide_parameters=True,  # never echo bound values (emails, tokens) in error messages
            connect_args={
                # PgBouncer in transaction mode cannot keep server-side prepared statements.
                "prepare_threshold": None,
                "application_name": application_name[:63],
                "connect_timeout": 10,
            },
        )
    except ArgumentError as exc:  # a URL that parses but names no usable server (port=abc)
        raise InvalidInput(f"invalid database URL: {cut(str(exc), limit=200)}") from None
    lock_timeout, statement_timeout = settings.lock_timeout, settings.statement_timeout

    # SET LOCAL per transaction rather than startup options: PgBouncer rejects `options=-c ...`.
    @event.listens_for(engine, "begin")
    def _set_transaction_timeouts(connection: Connection) -> None:
        snapshot = connection.info.get(SNAPSHOT_INFO)
        overrides = connection.info.get(TRANSACTION_SETTINGS_INFO)

        def tell(database: str) -> None:
            if not_told:
                # psycopg's ConnectionInfo (libpq's)
                not_told.pop()(connected_to(database, connection.connection.dbapi_connection.info))

        if snapshot is None and not overrides:
            row = connection.exec_driver_sql(
                TRANSACTION_START, {"lock": lock_timeout, "statement": statement_timeout}
            ).one()
            tell(row[2])
            return
        # One round trip for a job of many short transactions (the proof of erasure's ranges): the
        # snapshot (an id PostgreSQL made, checked by its taker: SET takes no parameter) and the
        # settings as literals, in one simple-protocol statement.
        values = {"lock_timeout": lock_timeout, "statement_timeout": statement_timeout, **(overrides or {})}
        sets = ", ".join(f"set_config('{name}', '{value.replace(chr(39), chr(39) * 2)}', true)" for name, value in values.items())
        if snapshot is None:  # settings alone (a monitoring read's): where it connected comes with them
            tell(connection.exec_driver_sql(f"SELECT {sets}, current_database()").one()[-1])
            return
        connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'; SELECT {sets}")

    # An insert that fails on a NOT NULL column the platform added and linea cannot fill is one
    # line and exit 5 wherever it happens, not a conflict nor an internal error.
    @event.listens_for(engine, "handle_error")
    def _name_unfillable_column(context: Any) -> BaseException | None:
        from linea_cli.db.platform_columns import unfillable_column_error

        return unfillable_column_error(context)

    return engine


def server_version_num(connection: Connection) -> int:
    """As `SHOW server_version_num` (150004), from what SQLAlchemy read when it first connected."""
    numbers = [*connection.dialect.server_version_info, 0, 0]
    major, minor, patch = (int(number) for number in numbers[:3])
    return major * 10000 + minor if major >= 10 else major * 10000 + minor * 100 + patch


def check_server_version(connection: Connection, target: str) -> None:
    version = server_version_num(connection)
    if version < MINIMUM_SERVER_VERSION:
        raise DatabaseUnavailable(
            f"{target} runs PostgreSQL {version // 10000}; linea needs PostgreSQL 15 or newer"
        )
