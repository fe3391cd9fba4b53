"""What a command needs from the root options: settings, the database, the acting user.

Everything here is lazy so that `linea --help` needs neither a configuration nor a database.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from linea_cli.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlmodel import Session

    from linea_cli.config import Settings
    from linea_cli.db.connected import ConnectedTo
    from linea_cli.db.engine import Database
    from linea_cli.services.actors import Actor, UnitOfWork
    from linea_cli.services.pagination import Page

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
            for raw in (self._settings.database_url, self._settings.migration_database_url, self._settings.pgbouncer_admin_url):
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

    def decline_direct(self) -> None:
        """From now on the engine's path: the database needs what only it does (see `reading`)."""
        if self._direct is not None:
            self._direct.close()
        self._direct, self._direct_declined = None, True

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        if self._database is not None:
            self._database.dispose()
            self._database = None


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
        if current._schema_checked:
            return
        open_database()  # behind: migrates the embedded database, else says what to run
    with database.unit_of_work() as session:
        actor = current.acting_user(lambda: _driver_connection(session))
        yield session, actor


@contextmanager
def transactions() -> Iterator[UnitOfWork]:
    """`transaction` for a job of many short ones (a purge's batches), all on one connection."""
    database = open_database()
    with database.units_of_work() as unit_of_work:

        @contextmanager
        def one() -> Iterator[tuple[Session, Actor | None]]:
            with unit_of_work() as session:
                yield session, state().acting_user(lambda: _driver_connection(session))

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


def listed_rows(
    fetch: Callable[[Any, Actor | None, int, str | None], Page], *, limit: int, after: str | None, every_page: bool,
    read_only: bool = False,
) -> tuple[Iterable[dict], str | None]:
    """The rows of a list command and the cursor after them: one page, or with `--all` every page.

    `fetch(session, actor, limit, after)` reads one page (with `read_only`, `fetch(connection, ...)`
    on a psycopg connection: `reading`). `--all` walks the keyset cursor, each
    page in a transaction of its own: memory holds one page, and a slow reader of the output
    (`| less`) never keeps a transaction open on the server. The first page is read here, so an
    unknown event or a refused permission is an error before anything is printed.
    """
    size = ALL_PAGE_SIZE if every_page else limit
    unit = reading if read_only else transaction
    with unit() as (session, actor):
        page = fetch(session, actor, size, after)
    if not every_page:
        return page.items, page.next_cursor
    return _following_pages(fetch, page, unit), None


def _following_pages(
    fetch: Callable[[Any, Actor | None, int, str | None], Page], first: Page,
    unit: Callable[[], AbstractContextManager[tuple[Any, Actor | None]]],
) -> Iterator[dict]:
    page: Page | None = first
    while page is not None:
        yield from page.items
        cursor = page.next_cursor
        page.items = []  # let the rows already written go before the next page comes
        if cursor is None:
            return
        with unit() as (session, actor):
            page = fetch(session, actor, ALL_PAGE_SIZE, cursor)

