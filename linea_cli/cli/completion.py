"""Shell completion from the database: event slugs, user emails, venue ids, waitlist addresses.

Typer calls these while the user presses Tab (`linea --install-completion` sets that up for bash,
zsh and fish); statuses and formats complete from their choices without them. A completion must
answer at once and must never get in the way, so it is deliberately unlike a command:

- it connects with psycopg alone, a 2 s connect timeout and a 2 s statement timeout;
- it never starts the embedded server (a stopped server completes nothing) and never migrates;
- it asks for at most `LIMIT` candidates, filtered by prefix in SQL (Typer then keeps those that
  start with exactly what was typed);
- any failure (no database, no schema, a bad URL or setting, a timeout) completes nothing and
  prints nothing: a message in the middle of the user's command line would only garble it.

Values come from the platform and may be hostile: a candidate holding whitespace or control
characters is left out (the shell would insert it as it is), and the help shown beside a
candidate (zsh, fish) has its control characters escaped.
"""

from __future__ import annotations

import re
from typing import Any

from linea_cli.db.like import like_escaped

LIMIT = 50
CONNECT_TIMEOUT_SECONDS = 2
STATEMENT_TIMEOUT = "2s"
HELP_LENGTH = 60

# Written with psycopg's %(name)s placeholders; `prefix` is LIKE-escaped (backslash is PostgreSQL's
# default LIKE escape character).
_EVENTS = (
    "SELECT slug, title FROM events WHERE deleted_at IS NULL"
    " AND lower(slug) LIKE lower(%(prefix)s) || '%%' ORDER BY slug LIMIT %(limit)s"
)
_USERS = (
    "SELECT email, name FROM users WHERE deleted_at IS NULL"
    " AND lower(email) LIKE lower(%(prefix)s) || '%%' ORDER BY lower(email), id LIMIT %(limit)s"
)
_VENUES = (
    "SELECT id, name || ', ' || city FROM venues WHERE deleted_at IS NULL"
    " AND lower(id) LIKE lower(%(prefix)s) || '%%' ORDER BY id LIMIT %(limit)s"
)
# The addresses on the waitlist of the event named earlier on the command line (slug or id).
_WAITLIST = (
    "SELECT w.email, NULL FROM waitlist_entries AS w JOIN events AS e ON e.id = w.event_id"
    " WHERE w.deleted_at IS NULL AND (e.slug = %(event)s OR e.id = %(event)s)"
    " AND lower(w.email) LIKE lower(%(prefix)s) || '%%' ORDER BY lower(w.email), w.id LIMIT %(limit)s"
)
_NOT_INSERTABLE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def complete_event(ctx: Any, incomplete: str) -> list[tuple[str, str]]:
    return _candidates(ctx, _EVENTS, incomplete)


def complete_user(ctx: Any, incomplete: str) -> list[tuple[str, str]]:
    return _candidates(ctx, _USERS, incomplete)


def complete_venue(ctx: Any, incomplete: str) -> list[tuple[str, str]]:
    return _candidates(ctx, _VENUES, incomplete)


def complete_waitlist_email(ctx: Any, incomplete: str) -> list[tuple[str, str]]:
    event = ctx.params.get("event")
    if not isinstance(event, str) or not event:
        return []
    return _candidates(ctx, _WAITLIST, incomplete, event=event)


def _candidates(ctx: Any, query: str, incomplete: str, **params: str) -> list[tuple[str, str]]:
    try:
        conninfo = _conninfo(ctx)
        if conninfo is None:
            return []
        import psycopg

        with psycopg.connect(
            conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS, prepare_threshold=None,
            application_name="linea/completion",
        ) as connection:
            # SET LOCAL-style (third argument true): nothing outlives the transaction behind PgBouncer.
            connection.execute(
                "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
                (STATEMENT_TIMEOUT, STATEMENT_TIMEOUT),
            )
            rows = connection.execute(query, {"prefix": like_escaped(incomplete), "limit": LIMIT, **params}).fetchall()
            connection.rollback()
    except Exception:  # noqa: BLE001 - deliberate: a completion that fails completes nothing, silently
        return []
    from linea_cli.output import visible

    return [
        (value, visible(_shortened(help_text or "")))
        for value, help_text in rows
        if value and not _NOT_INSERTABLE.search(value)
    ]


def _shortened(text: str) -> str:
    return text if len(text) <= HELP_LENGTH else text[: HELP_LENGTH - 1] + "…"


def _conninfo(ctx: Any) -> str | None:
    """The configured database as a libpq conninfo, or the embedded server's if it is running."""
    from pathlib import Path

    from psycopg.conninfo import make_conninfo

    from linea_cli.config import load_settings
    from linea_cli.db import embedded
    from linea_cli.db.urls import parse_database_url

    root = ctx.find_root()
    # Silent about an ignored .env: a warning would be drawn into the line being completed.
    settings = load_settings(database_url=root.params.get("database_url"), warn=lambda message: None)
    if settings.database_url is not None:
        url = parse_database_url(settings.database_url)
    else:
        server = embedded.status(Path(settings.data_dir))
        if not server.running or server.socket_directory is None:
            return None  # never started just to complete a word
        url = embedded.socket_url(server.socket_directory)
    parts: dict[str, Any] = {
        "host": url.host, "port": url.port, "user": url.username, "password": url.password, "dbname": url.database,
    }
    for key, value in url.query.items():
        parts[key] = value if isinstance(value, str) else value[-1]
    return make_conninfo(**{key: str(value) for key, value in parts.items() if value is not None})
