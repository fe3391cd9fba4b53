"""Alembic environment: linea's models, and a connection or URL handed over by linea itself.

linea passes an open connection in `config.attributes["connection"]` (online) or a URL in
`config.attributes["url"]` (offline `--sql`); the URL never goes through alembic.ini, whose
configparser would choke on a `%` in a password. Run from the repository root, plain `alembic`
falls back to linea's settings (LINEA_MIGRATION_DATABASE_URL, LINEA_DATABASE_URL or embedded).
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import linea_cli.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata

# Objects linea creates on purpose that the models do not describe.
IGNORED_TABLES = {"alembic_version"}


def include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001
    return not (type_ == "table" and name in IGNORED_TABLES)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    url = config.attributes.get("url")
    if url is None:
        from linea_cli.config import load_settings
        from linea_cli.db.engine import resolve_url

        url = resolve_url(load_settings(), for_migrations=True, start_embedded=False)
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    from linea_cli.config import load_settings
    from linea_cli.db.engine import Database

    database = Database.open(load_settings(), command="alembic", for_migrations=True)
    with database.engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
