"""libpq's own environment: which of its variables choose a server when linea is given no URL.

Light on purpose (no SQLAlchemy, no psycopg): tab completion asks it too.
"""

from __future__ import annotations

import os

# The variables that say which server or database to use (psql connects where they say). The
# others (PGUSER, PGPASSWORD, PGSSLMODE, PGCONNECT_TIMEOUT, ...) only change how a connection is
# made, and libpq applies them to whatever it connects to; PGSERVICEFILE only says where services
# are described. Names only: a value is never shown (PGPASSWORD is never one of these).
SERVER_CHOOSING_VARIABLES = ("PGSERVICE", "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE")


def libpq_environment() -> tuple[str, ...]:
    """The server-choosing libpq variables set (to something other than empty), in libpq's order."""
    return tuple(name for name in SERVER_CHOOSING_VARIABLES if os.environ.get(name, "").strip())
