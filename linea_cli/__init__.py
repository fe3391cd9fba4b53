"""linea: command-line administration for the Linea event platform, and a library for scripts.

    import linea_cli

    with linea_cli.open_database("postgresql://...") as db:     # or () for LINEA_DATABASE_URL / embedded
        with db.unit_of_work() as session:                        # one transaction, committed at the end
            page = linea_cli.services.events.list_events(session, filters=EventFilter(), limit=5)

    with linea_cli.temporary_server() as server:                  # a throwaway embedded PostgreSQL
        db = linea_cli.open_database(server.url, migrate=True)
        with linea_cli.temporary_replica(server) as replica:      # a streaming replica of it, read-only
            ...

The names below are loaded on first use: `linea --version` and `--help` import no database code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from linea_cli.version import __version__

# name -> the module that defines it
_PUBLIC = {
    "open_database": "linea_cli.services.database",
    "Database": "linea_cli.db.engine",
    "temporary_server": "linea_cli.db.embedded",
    "TemporaryServer": "linea_cli.db.embedded",
    "temporary_replica": "linea_cli.db.embedded",
    "LineaError": "linea_cli.errors",
}
_SUBPACKAGES = ("services", "errors", "enums")

__all__ = [
    "Database", "LineaError", "TemporaryServer", "__version__", "enums", "errors", "open_database", "services",
    "temporary_replica", "temporary_server",
]

if TYPE_CHECKING:
    from linea_cli import enums, errors, services
    from linea_cli.db.embedded import TemporaryServer, temporary_replica, temporary_server
    from linea_cli.db.engine import Database
    from linea_cli.errors import LineaError
    from linea_cli.services.database import open_database


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
