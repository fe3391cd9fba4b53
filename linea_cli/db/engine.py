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
from linea_cli.db.urls import describe_target, display_url, parse_database_url, url_secrets
from linea_cli.errors import DatabaseUnavailable, InvalidInput, cut
from linea_cli.interrupts import interrupts_held
from linea_cli.version import __version__

MINIMUM_SERVER_VERSION = 150000
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
        url = parse_database_url(raw) if raw else embedded.announced_url(settings.data_dir)
        if url is None:
            url, started = embedded.ensure_running(settings.data_dir)
            if started:
                on_start(url)
        engine = build_engine(url, settings=settings, application_name=f"linea/{command}")
        database = cls(url=url, is_embedded=not raw, engine=engine, secrets=url_secrets(url))
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
        return display_url(self.url)

    @property
    def target(self) -> str:
        return describe_target(self.url)

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


def build_engine(url: URL, *, settings: Settings, application_name: str) -> Engine:
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
        if snapshot is None and not overrides:
            connection.exec_driver_sql(
                "SELECT set_config('lock_timeout', %(lock)s, true), "
                "set_config('statement_timeout', %(statement)s, true)",
                {"lock": lock_timeout, "statement": statement_timeout},
            )
            return
        # One round trip for a job of many short transactions (the proof of erasure's ranges): the
        # snapshot (an id PostgreSQL made, checked by its taker: SET takes no parameter) and the
        # settings as literals, in one simple-protocol statement.
        values = {"lock_timeout": lock_timeout, "statement_timeout": statement_timeout, **(overrides or {})}
        sets = ", ".join(f"set_config('{name}', '{value.replace(chr(39), chr(39) * 2)}', true)" for name, value in values.items())
        connection.exec_driver_sql((f"SET TRANSACTION SNAPSHOT '{snapshot}'; " if snapshot else "") + f"SELECT {sets}")

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
