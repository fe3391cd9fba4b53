"""The rules. Plain functions that take a database session first and keyword-only values.

They flush, never commit (the command's unit of work commits), raise `linea_cli.errors` kinds,
and neither print nor import Typer or Rich. Those of `linea db` (database, migrations, backups,
server) take the `Database` instead: migrations, pg_dump and pg_restore run outside any one transaction.
Those of `reads.py` take a psycopg connection: the read commands that load no ORM run them, and the
session-taking functions of the library hand them their session's own connection. So do those of
`replicas.py` (a replica's lag), which run before a read command chooses where to read.
"""

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    # `linea_cli.services.events` works after `import linea_cli` alone, as a script expects.
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
