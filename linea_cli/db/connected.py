"""Where libpq actually connected: light (no SQLAlchemy), shared by the engine and the direct path."""

from __future__ import annotations

from dataclasses import dataclass

MINIMUM_SERVER_VERSION = 150000  # PostgreSQL 15


@dataclass(frozen=True)
class ConnectedTo:
    """Where libpq actually connected, whatever the URL said or left to libpq (a service, PG*
    variables, a list of hosts): the database as the server names it (`current_database()`), and
    the host (name, address, or a Unix socket's directory) and port libpq used, and the role."""

    database: str
    host: str
    port: str
    user: str

    def __str__(self) -> str:
        return f'database "{self.database}" on {self.host}:{self.port}'


# Every transaction's first statement, on the engine's connections and the direct ones alike:
# linea's timeouts for this transaction only (SET LOCAL's way: nothing outlives it behind
# PgBouncer), and the database's name as the server knows it (no round trip of its own).
TRANSACTION_START = (
    "SELECT set_config('lock_timeout', %(lock)s, true), "
    "set_config('statement_timeout', %(statement)s, true), current_database()"
)


def connected_to(database: str, info: object) -> ConnectedTo:
    """Where a psycopg connection is (`info`: its ConnectionInfo, libpq's PQhost/PQport/PQuser)."""
    return ConnectedTo(database=database, host=info.host, port=str(info.port), user=info.user)  # type: ignore[attr-defined]


def server_version_num(connection: object) -> int:
    """A psycopg connection's server as `SHOW server_version_num` says it (150004): libpq's
    PQserverVersion, no round trip (`engine.server_version_num` is the engine's)."""
    return int(connection.info.server_version)  # type: ignore[attr-defined]
