"""Database URLs: parsing, the psycopg 3 driver, and masking the password in anything shown."""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus, unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from linea_cli.errors import InvalidInput

_PLAIN_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg"}
# user:password@ inside anything that looks like a URL, for text we could not parse.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):(?P<password>[^@\s]*)@")


def parse_database_url(raw: str) -> URL:
    """A psycopg 3 SQLAlchemy URL from a plain `postgresql://` URL (or one that names psycopg)."""
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError) as exc:
        raise InvalidInput(f"invalid database URL {mask_text(raw)!r}: expected postgresql://user:password@host:port/database") from exc
    if url.drivername not in _PLAIN_SCHEMES:
        raise InvalidInput(f"unsupported database URL scheme {url.drivername!r}: linea needs postgresql://")
    return url.set(drivername="postgresql+psycopg")


def display_url(url: URL) -> str:
    """The URL as a user would type it, password replaced by ***."""
    # Unquoted so that a socket directory reads as a path, not %2Ftmp%2F...
    return unquote(url.set(drivername="postgresql").render_as_string(hide_password=True))


def describe_target(url: URL) -> str:
    """'database "x" on host:port' for messages: names where, never who with which password."""
    host = url.host or url.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = ",".join(host)
    where = f"{host}:{url.port}" if url.port else str(host)
    return f'database "{url.database}" on {where}'


def mask_text(text: str) -> str:
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}:***@", text)


def secret_variants(password: str | None) -> list[str]:
    """Every spelling of a password that might appear in a message (raw and URL-encoded)."""
    if not password:
        return []
    variants = {password, quote(password, safe=""), quote_plus(password), password.replace("%", "%%")}
    return sorted((v for v in variants if v), key=len, reverse=True)


def mask_secrets(text: str, secrets: list[str]) -> str:
    text = mask_text(text)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
