"""Alembic environment: linea's models, and a connection or URL handed over by linea itself.

linea passes an open connection in `config.attributes["connection"]` (online) or a URL in
`config.attributes["url"]` (offline `--sql`), and a snapshot of the database's catalog in
`config.attributes["catalog"]` from which the revisions plan their DDL (linea_cli.db.ddl); the
URL never goes through alembic.ini, whose configparser would choke on a `%` in a password.
Run migrations with `linea db upgrade/downgrade`, not with the plain `alembic` command.

linea's version table lives in the `linea` schema, out of the platform's `public`.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import linea_cli.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from linea_cli.db.catalog import LINEA_SCHEMA, VERSION_TABLE

config = context.config
target_metadata = SQLModel.metadata


def include_object(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001 - Alembic's hook signature
    return not (type_ == "table" and name == VERSION_TABLE)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        compare_server_default=True,
        # Each revision commits on its own, so that CREATE INDEX CONCURRENTLY can run between them.
        transaction_per_migration=True,
        version_table_schema=LINEA_SCHEMA,
        **kwargs,
    )


def run_migrations_offline() -> None:
    url = config.attributes.get("url")
    if url is None:
        raise SystemExit("print linea's migration SQL with `linea db upgrade --sql`")
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise SystemExit("run linea's migrations with `linea db upgrade`")
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
