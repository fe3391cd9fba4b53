"""Database URLs: parsing, the psycopg 3 driver, and keeping the password out of anything shown.

A password can reach the screen three ways, and each is handled where it can happen:
- a URL linea displays (`db status`): `display_url` renders it with every secret as ***;
- a URL echoed back (an unparsable --database-url) or quoted in a driver message: `mask_url_text`
  masks `user:PASSWORD@` and `password=...` in that text only;
- the bare password inside a driver message: `mask_passwords` replaces it where it stands as a whole
  token, so that a short password never garbles other words (`acc` in `accm_anon`).
All three run in linear time: error text can hold a hostile value of any length.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, quote_plus, unquote

from linea_cli.errors import InvalidInput, shown

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

_PLAIN_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg"}
# Query parameters libpq reads as secrets: the password, and the TLS key's passphrase.
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
EXPECTED_URL = "expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
# A libpq keyword/value string ("host=db password=x dbname=linea") rather than a URL.
_KEYWORD_STRING = re.compile(r"\s*[A-Za-z_]+\s*=")
# `://user:password@`. As in libpq's URI parser the user part stops at ':' and the password at
# '/' or '@', so each attempt stops at the next '/' (of the next '://'): linear in the text.
_USERINFO = re.compile(r"://(?P<user>[^\s/@:]*):(?P<password>[^\s/@]*)@")
# `password=...` / `sslpassword=...` in a query string or a keyword string, quoted or not.
_PASSWORD_SETTING = re.compile(
    r"(?i)(?<![\w])(?P<key>(?:ssl)?password)\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'?|[^\s&'\"]*)"
)


# SQLAlchemy's own URL pattern (sqlalchemy.engine.url._parse_url): what read commands and
# `text_secrets` read without importing SQLAlchemy means what `make_url` makes of it
# (tests/test_direct_reads.py compares the two on many URLs).
URL_PATTERN = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.X,
)


def url_parts(raw: str) -> re.Match[str] | None:
    """`raw` cut as `make_url` cuts it (groups name, username, password, ipv4host, ipv6host, port,
    database, query; nothing unquoted), without SQLAlchemy; None where `parse_database_url` refuses it."""
    text = raw.strip()
    if "://" not in text and _KEYWORD_STRING.match(text):
        return None
    match = URL_PATTERN.match(text)
    if match is None or match["name"] not in _PLAIN_SCHEMES:
        return None
    if match["port"]:
        try:
            int(match["port"])
        except ValueError:
            return None
    return match


def parse_database_url(raw: str) -> URL:
    """A psycopg 3 SQLAlchemy URL from a plain `postgresql://` URL (or one that names psycopg)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in raw and _KEYWORD_STRING.match(raw):
        # Refused rather than half-supported, and never echoed: it may hold password='...'.
        raise InvalidInput(f"the database URL is a libpq keyword/value string (host=... dbname=...); {EXPECTED_URL}")
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError) as exc:
        # Not echoed: where the password sits in text that does not parse cannot be known.
        raise InvalidInput(f"the database URL is not a URL; {EXPECTED_URL}") from exc
    if url.drivername not in _PLAIN_SCHEMES:
        raise InvalidInput(f"unsupported database URL scheme {shown(url.drivername)}: linea needs postgresql://")
    return url.set(drivername="postgresql+psycopg")


def display_url(url: URL) -> str:
    """The URL as a user would type it, every secret (userinfo and query parameters) as ***."""
    query = {key: ("***" if key.lower() in SECRET_PARAMETERS else value) for key, value in url.query.items()}
    rendered = url.set(drivername="postgresql", query=query).render_as_string(hide_password=True)
    # Unquoted so that a socket directory reads as a path, not %2Ftmp%2F...
    return unquote(rendered)


def describe_target(url: URL, *, libpq_environment: tuple[str, ...] = ()) -> str:
    """'database "x" on host:port' for messages, from the URL alone (before linea connected, or
    when it could not: `Database.target` names what the server said once connected). What the URL
    leaves to libpq (a service, the PG* variables) is named as such, never as "None" on localhost.
    Names where, never who with which password."""
    if libpq_environment:
        return f"the database libpq's environment names ({', '.join(libpq_environment)})"
    service = url.query.get("service")
    host = url.host or url.query.get("host")
    if isinstance(host, tuple):
        host = ",".join(host)
    if isinstance(service, str) and not (url.database or host):
        return f'the database of service "{service}"'
    where = f"{host or 'localhost'}:{url.port}" if url.port else str(host or "localhost")
    name = f'"{url.database}"' if url.database else "(libpq's default)"
    return f"database {name} on {where}"


def url_secrets(url: URL) -> list[str]:
    """Every spelling of every secret in `url` that a message might carry."""
    found = [url.password] if isinstance(url.password, str) else []
    for key, value in url.query.items():
        if key.lower() in SECRET_PARAMETERS:
            found.extend([value] if isinstance(value, str) else list(value))
    return _spellings(found)


def text_secrets(raw: str) -> list[str]:
    """The secrets in a configured URL, also when it does not parse (then read off the text).

    `url_secrets` of the parsed URL, read without SQLAlchemy (`url_parts`): every command asks."""
    parts = url_parts(raw)
    if parts is not None:
        found = [unquote(parts["password"])] if parts["password"] is not None else []
        found += [value for key, value in parse_qsl(parts["query"] or "") if key.lower() in SECRET_PARAMETERS]
        return _spellings(found)
    found = [match.group("password") for match in _USERINFO.finditer(raw)]
    found += [match.group("value").strip("'") for match in _PASSWORD_SETTING.finditer(raw)]
    return _spellings(found)


def _spellings(passwords: list[str]) -> list[str]:
    variants: set[str] = set()
    for password in passwords:
        if password:
            variants.update({password, quote(password, safe=""), quote_plus(password), unquote(password)})
    return sorted((v for v in variants if v), key=len, reverse=True)


def mask_url_text(text: str) -> str:
    """`text` with the password of any URL or `password=` setting in it replaced by ***."""
    text = _USERINFO.sub(lambda m: f"://{m.group('user')}:***@", text)
    return _PASSWORD_SETTING.sub(lambda m: f"{m.group('key')}=***", text)


def mask_passwords(text: str, secrets: list[str]) -> str:
    """`text` with each secret replaced by *** where it stands as a whole token (one linear pass)."""
    if not secrets:
        return text
    alternatives = "|".join(re.escape(secret) for secret in sorted(set(secrets), key=len, reverse=True))
    return re.sub(rf"(?<!\w)(?:{alternatives})(?!\w)", "***", text)
