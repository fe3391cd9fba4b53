"""Proof of erasure: search every table of the database for what identified a person.

What is searched. Every column whose value can hold text, of every table, partitioned table and
materialized view in every schema, the platform's tables that linea does not model included:
text, varchar, char, citext, json, jsonb, xml, hstore, enums, arrays of anything, composite types
and arrays of them, ranges, domains over any of these, and any other type that is not known to
hold only numbers, times, booleans, geometry or ids (uuid, pg_lsn, pgvector, PostGIS...). Each
value is searched as PostgreSQL writes it as text (`col::text`: a composite as `(a,b)`, an array
as `{a,b}`, an hstore as `"k"=>"v"`); a bytea value as its bytes (`encode(col, 'escape')`, which
keeps ASCII as it is), and a bytea inside an array or composite as its hex digits. Left out:
PostgreSQL's own catalogs and linea's bookkeeping schema `linea` (its migration revision and the
names of the indexes and triggers it made, written only by linea's migrations, never from data).

Encodings. Each address and name is searched in any case, as it is, and as the common encodings
write it: JSON string escapes (`\\u0040`, and what `to_jsonb` escapes), percent-encoding (`%40`,
any hex case, `+` or `%20` for a space; the reserved characters, or every byte), HTML/XML
character references (`&#64;`, `&#x40;`; of the characters that are not letters or digits, or of
every character), and the doubled quotes and backslashes of composite and array text. Mixed or
nested encodings beyond these are not searched.

Not verified. A table the search cannot fully see is reported, never passed: row-level security
that applies to the role (`row_security_active`), a foreign table (or a partitioned table with a
foreign partition), a table or some of its columns it may not SELECT, a schema it may not USAGE,
a table it could not lock for reading without making others wait (below), or one rewritten
(VACUUM FULL, a rewriting ALTER) each time it was searched. What it can read of such a table is
still searched.

How, without making the platform wait. The search never holds a table's lock for long: each table
is read in ranges of its pages (`ctid`, as `sessions purge` walks a table), each range in a short
read-only transaction of its own, sized to take about RANGE_SECONDS (at least MIN_SPAN pages);
between two ranges it holds no lock at all, so a deploy's `ALTER TABLE` waits at most one range.
Each lock is taken with a short `lock_timeout` (LOCK_WAIT): if someone holds or waits for a
conflicting lock, the search steps aside (rolls back, waits a little, tries again, LOCK_ATTEMPTS
times), and then reports the table as not verified rather than queueing. All the ranges of a table
see one snapshot, exported by a transaction on a second connection that touches no table (so it
holds no lock): a row that the platform updates meanwhile is still seen where it was, not missed
because its new version went to a page already searched. A table rewritten meanwhile (its file
changed) is searched again from the start in a new snapshot.

Set-based. One SELECT per range: PostgreSQL keeps the rows whose text holds an identifier
(`strpos` on the row's columns' text, lowered once, an OR over the identifiers' forms), and only
those rows come back, to be checked column by column and whole-word here, in each decoded form
(ann@x.com is not a trace of anyone inside joann@x.com, nor inside joann%40x.com). The OR is
made cheaper without changing which rows it keeps: a form that holds another form is left out (a
row holding it holds the other), and many forms (a person's session tokens) are looked for only
in rows holding a run of their characters as long as the shortest of them (one regular
expression per row, instead of hundreds of strpos over rows that cannot hold any).

What counts as a trace:
- the person's addresses (whole, any case), names of two words or more (whole words, any case),
  and pieces of the session tokens linea saw before erasing: anywhere. An address or a name
  that another user has now is theirs, and is not searched for;
- the user id and session ids: only in tables linea does not model. In its own tables erasure
  keeps them on purpose (the anonymized user row, and the rows that point at it);
- IP addresses and user agents only in a row that also holds one of the above or one of the ids:
  many people share an office's address or a browser's version. In `audit_logs`, `ip_address`
  and `user_agent` are the acting user's, so they count only on rows the person made.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, unquote, unquote_plus

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from linea_cli.db.engine import SNAPSHOT_INFO, TRANSACTION_SETTINGS_INFO, USER_AGENT
from linea_cli.db.platform_columns import key_text, quoted
from linea_cli.errors import first_line
from linea_cli.services.personal_data import Person, email_pattern, ip_pattern, name_pattern

# linea's bookkeeping: its revision and the names of what its migrations made; never personal data.
SKIPPED_SCHEMAS = ("pg_catalog", "information_schema", "linea")
# Columns that say who acted rather than whom a row is about: a hit counts only on the person's rows.
ACTOR_COLUMNS = {("public", "audit_logs", "ip_address"): "user_id", ("public", "audit_logs", "user_agent"): "user_id"}
# Shorter pieces of a token could be anyone's.
TOKEN_FRAGMENT_MIN = 16
# Forms of identifiers looked for only in rows holding a run of their characters (see _Query),
# from this many on: below, the regular expression costs about as much as the strpos it spares.
RUN_FILTER_MIN_FORMS = 8
RUN_MAX = 255  # the largest bound of a repetition in PostgreSQL's regular expressions

# Each range of pages is sized to hold its table's lock about this long, whatever the machine,
# but never below MIN_SPAN pages: each range costs a few milliseconds of its own (a transaction,
# the snapshot, the statement's planning), and on a machine whose CPU the platform shares,
# smaller ranges would only add work to the search and to the server (beside the platform's
# load, eight-page ranges doubled the server's CPU time of `users anonymize`).
RANGE_SECONDS = 0.1
FIRST_SPAN, MIN_SPAN, MAX_SPAN = 64, 64, 16_384  # pages per range (8 kB each)
# How long a range waits for its table's lock before stepping aside; shorter than deadlock_timeout.
LOCK_WAIT = "100ms"
LOCK_ATTEMPTS = 5
STEP_ASIDE_SECONDS = 0.05  # times the attempt number
# A table rewritten while it was searched is searched again from the start, this many times in all.
TABLE_ATTEMPTS = 3

_LOCK_NOT_AVAILABLE = "55P03"
_INSUFFICIENT_PRIVILEGE = "42501"
_UNDEFINED_TABLE = "42P01"
_UNDEFINED_COLUMN = "42703"
_INVALID_SNAPSHOT = "22023"
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")

# Types whose text cannot hold an address or a name: numbers, times, booleans, bit strings,
# geometry, internal types (categories), and a few types of other categories known to hold only
# ids, positions or numbers. Anything else is searched as its text.
_NOT_TEXT_CATEGORIES = frozenset("NDBTGVZPX")
_NOT_TEXT_TYPES = frozenset({
    "uuid", "pg_lsn", "txid_snapshot", "pg_snapshot", "macaddr", "macaddr8", "tid", "xid", "xid8", "cid",
    "aclitem", "int2vector", "oidvector", "pg_ndistinct", "pg_dependencies", "pg_mcv_list",
    "vector", "halfvec", "sparsevec", "geometry", "geography", "box2d", "box3d", "raster",
})
# The order the kinds of searched columns are named in ("41 text, 6 json, 2 bytea columns").
COLUMN_KINDS = ("text", "json", "xml", "hstore", "bytea", "enum", "array", "composite", "other")


@dataclass(frozen=True)
class Identifiers:
    """What is searched for; each set lower case."""

    addresses: frozenset[str]
    names: frozenset[str]
    tokens: frozenset[str]
    ids: frozenset[str]
    ips: frozenset[str]
    agents: frozenset[str]

    @classmethod
    def of(cls, person: Person) -> Identifiers:
        return cls(
            addresses=person.own_emails,
            names=frozenset(" ".join(name.split()).lower() for name in person.own_names if len(name.split()) >= 2),
            tokens=frozenset(f.lower() for token in person.tokens for f in token_fragments(token)),
            ids=frozenset(i.lower() for i in [person.user_id, *person.session_ids] if i),
            ips=frozenset(ip.lower() for ip in person.ips),
            # linea's own user agent names linea, not the person.
            agents=frozenset(a.lower() for a in person.agents if a != USER_AGENT),
        )

    def strong(self) -> frozenset[str]:
        return self.addresses | self.names | self.tokens

    def everything(self) -> frozenset[str]:
        return self.strong() | self.ids | self.ips | self.agents


def token_fragments(token: str) -> set[str]:
    """The token, and for a JWT its payload and signature (the header is the same in every token)."""
    parts = token.split(".")
    pieces = {token, *(parts[1:] if len(parts) == 3 else [])}
    return {piece for piece in pieces if len(piece) >= TOKEN_FRAGMENT_MIN}


@dataclass(frozen=True)
class Trace:
    table: str
    column: str
    row_id: str
    found: str  # which kinds of identifier: "address, name"


@dataclass(frozen=True)
class UnverifiedTable:
    """A table the search could not fully see, and why."""

    table: str
    reason: str


@dataclass(frozen=True)
class TraceReport:
    traces: list[Trace]
    tables: int  # tables searched (some perhaps only in part: see not_verified)
    columns: int  # columns searched, all kinds
    kinds: dict[str, int] = field(default_factory=dict)  # columns searched, by kind (COLUMN_KINDS)
    not_verified: list[UnverifiedTable] = field(default_factory=list)
    # What the search could not look for at all (what an erased user's addresses were), and why.
    unknown: list[str] = field(default_factory=list)

    def columns_searched(self) -> str:
        """ "41 text, 6 json, 2 bytea columns" """
        counts = [f"{self.kinds[kind]} {kind}" for kind in COLUMN_KINDS if self.kinds.get(kind)]
        return f"{', '.join(counts) or 'no'} column{'' if self.columns == 1 else 's'}"


# A way to open a connection outside any transaction of the caller's (`Database.connect`).
Connect = Callable[[], AbstractContextManager[Connection]]


def find_traces(connect: Connect, identifiers: Identifiers) -> TraceReport:
    """Every table, column and row in which one of the identifiers remains, and every table the
    search could not fully see.

    Runs its own short read-only transactions on connections of its own: call it after the
    caller's transaction ended (after an erasure committed), never inside one, whose locks would
    make the platform wait for the whole search.
    """
    with connect() as worker, connect() as exporter:
        for connection in (worker, exporter):
            connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        # The OR of strpos calls takes PostgreSQL's JIT longer to compile than to run.
        worker.info[TRANSACTION_SETTINGS_INFO] = {"lock_timeout": LOCK_WAIT, "jit": "off"}
        with worker.begin():
            tables = _searched_tables(worker)
        search = _Search(worker, exporter, identifiers)
        if identifiers.strong() or identifiers.ids:
            for table in tables:
                search.table(table)
        else:  # nothing to look for: nothing can be found, and nothing is read
            search.searched = [table for table in tables if table.searchable]
    kinds = Counter(column.kind for table in search.searched for column in table.columns)
    not_verified = [*(UnverifiedTable(t.shown, t.unverified) for t in tables if t.unverified), *search.not_verified]
    return TraceReport(
        traces=search.traces,
        tables=len(search.searched),
        columns=sum(kinds.values()),
        kinds=dict(kinds),
        not_verified=sorted(not_verified, key=lambda u: u.table),
    )


def between_transactions(table: str) -> None:
    """Called each time one of the search's transactions on `table` ended, when it holds no lock."""


# --- what is searched: the catalog ---------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # one of COLUMN_KINDS
    nested_bytea: bool  # bytea inside an array or composite: written as hex digits


@dataclass(frozen=True)
class _Table:
    oid: int
    schema: str
    name: str
    relkind: str
    columns: tuple[_Column, ...]  # the searched columns the role may read
    key: tuple[str, ...]  # the primary key's columns, if readable; else rows are named by ctid
    leaves: tuple[int, ...]  # the relations holding its rows: itself, or a partitioned table's partitions
    whole_table_select: bool  # SELECT on the table (not only on columns): ctid ranges can be read
    remote: bool  # a foreign table, or a partitioned table with a foreign partition: not read
    unverified: str | None  # why the search cannot fully see it, from the catalog

    @property
    def shown(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"

    @property
    def searchable(self) -> bool:
        return bool(self.columns) and not self.remote


_TABLES_SQL = """
    SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind,
           has_schema_privilege(n.oid, 'USAGE') AS usage,
           has_table_privilege(c.oid, 'SELECT') AS readable,
           c.relkind <> 'f' AND row_security_active(c.oid) AS row_security,
           (SELECT array_agg(l.oid ORDER BY l.oid) FROM pg_partition_tree(c.oid) AS p
              JOIN pg_class AS l ON l.oid = p.relid WHERE p.isleaf) AS partitions,
           (SELECT array_agg(l.relname::text ORDER BY l.relname) FROM pg_partition_tree(c.oid) AS p
              JOIN pg_class AS l ON l.oid = p.relid WHERE p.isleaf AND l.relkind = 'f') AS foreign_partitions,
           (SELECT array_agg(k.attname::text ORDER BY array_position(i.indkey::int2[], k.attnum))
              FROM pg_index AS i JOIN pg_attribute AS k ON k.attrelid = i.indrelid AND k.attnum = ANY(i.indkey)
             WHERE i.indrelid = c.oid AND i.indisprimary) AS key,
           (SELECT bool_and(has_column_privilege(c.oid, k.attnum, 'SELECT'))
              FROM pg_index AS i JOIN pg_attribute AS k ON k.attrelid = i.indrelid AND k.attnum = ANY(i.indkey)
             WHERE i.indrelid = c.oid AND i.indisprimary) AS key_readable
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm', 'f') AND NOT c.relispartition
      AND (c.relkind <> 'm' OR c.relispopulated)  -- a materialized view never refreshed holds no rows
      AND n.nspname <> ALL(:skipped) AND n.nspname NOT LIKE 'pg\\_%'
    ORDER BY n.nspname, c.relname
"""
_COLUMNS_SQL = """
    SELECT a.attrelid, a.attname::text AS name, a.atttypid, a.attnum,
           has_column_privilege(a.attrelid, a.attnum, 'SELECT') AS readable
    FROM pg_attribute AS a
    WHERE a.attrelid = ANY(:relations) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attrelid, a.attnum
"""
_TYPES_SQL = """
    SELECT t.oid, t.typname::text AS name, t.typtype, t.typcategory, t.typbasetype, t.typelem, t.typrelid,
           coalesce(r.rngsubtype, m.rngsubtype) AS subtype
    FROM pg_type AS t
    LEFT JOIN pg_range AS r ON r.rngtypid = t.oid
    LEFT JOIN pg_range AS m ON m.rngmultitypid = t.oid
"""
_FIELDS_SQL = """
    SELECT attrelid, atttypid FROM pg_attribute
    WHERE attrelid = ANY(:relations) AND attnum > 0 AND NOT attisdropped
"""


def _searched_tables(connection: Connection) -> list[_Table]:
    rows = connection.execute(sa.text(_TABLES_SQL), {"skipped": list(SKIPPED_SCHEMAS)}).mappings().all()
    kinds = _TypeKinds(connection)
    columns: dict[int, list[sa.RowMapping]] = {}
    for column in connection.execute(sa.text(_COLUMNS_SQL), {"relations": [r["oid"] for r in rows]}).mappings():
        columns.setdefault(column["attrelid"], []).append(column)
    tables = []
    for row in rows:
        searched = [(c, kinds.of(c["atttypid"])) for c in columns.get(row["oid"], [])]
        searched = [(c, kind) for c, kind in searched if kind is not None]
        if not searched:
            continue  # nothing in it can hold text
        readable = row["usage"] and row["readable"]
        visible = [c for c, _ in searched if row["usage"] and (row["readable"] or c["readable"])]
        hidden = [c["name"] for c, _ in searched if c not in visible]
        unverified = _unverified_by_catalog(row, hidden, searched=len(searched))
        key = tuple(row["key"] or ()) if (readable or row["key_readable"]) else ()
        tables.append(_Table(
            oid=row["oid"], schema=row["schema"], name=row["name"], relkind=row["relkind"],
            columns=tuple(_Column(c["name"], *kind) for c, kind in searched if c in visible),
            key=key, leaves=tuple(row["partitions"] or (row["oid"],)), whole_table_select=bool(readable),
            remote=row["relkind"] == "f" or bool(row["foreign_partitions"]), unverified=unverified,
        ))
    return tables


def _unverified_by_catalog(row: sa.RowMapping, hidden: list[str], *, searched: int) -> str | None:
    if row["relkind"] == "f":
        return "a foreign table: its rows are on another server; not searched"
    if row["foreign_partitions"]:
        return f"a foreign partition ({', '.join(row['foreign_partitions'])}): its rows are on another server; not searched"
    if not row["usage"]:
        return "no USAGE privilege on its schema; not searched"
    reasons = []
    if len(hidden) == searched:
        reasons.append("no SELECT privilege on it; not searched")
    elif hidden:
        reasons.append(f"no SELECT privilege on column{'s' if len(hidden) > 1 else ''} {', '.join(hidden)}; those not searched")
    if row["row_security"]:
        reasons.append("row-level security applies to this role and may hide rows from it")
    return "; ".join(reasons) or None


class _TypeKinds:
    """What kind of searched column each type makes, or None for a type whose text holds no text."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._types = {t["oid"]: t for t in connection.execute(sa.text(_TYPES_SQL)).mappings()}
        self._fields: dict[int, list[int]] = {}
        self._memo: dict[int, tuple[str, bool] | None] = {}

    def of(self, type_oid: int) -> tuple[str, bool] | None:
        """(kind, whether a bytea is nested inside), or None."""
        if type_oid not in self._memo:
            self._memo[type_oid] = None  # a composite that contains itself (through an array) stops here
            self._memo[type_oid] = self._classify(type_oid)
        return self._memo[type_oid]

    def _classify(self, type_oid: int) -> tuple[str, bool] | None:
        t = self._types.get(type_oid)
        if t is None:
            return ("other", False)
        if t["typtype"] == "d":  # a domain is searched as the type it is based on
            return self.of(t["typbasetype"])
        name, category = t["name"], t["typcategory"]
        if name in ("json", "jsonb", "xml", "hstore", "bytea"):
            return ("json" if name.startswith("json") else name, False)
        if category == "A" and t["typelem"]:
            inner = self.of(t["typelem"])
            return None if inner is None else ("array", inner[0] == "bytea" or inner[1])
        if t["typtype"] == "c":
            inner_kinds = [k for k in map(self.of, self._fields_of(t["typrelid"])) if k is not None]
            return ("composite", any(k[0] == "bytea" or k[1] for k in inner_kinds)) if inner_kinds else None
        if t["typtype"] in ("r", "m"):
            inner = self.of(t["subtype"]) if t["subtype"] else None
            return None if inner is None else ("other", inner[0] == "bytea" or inner[1])
        if t["typtype"] == "e":
            return ("enum", False)
        if category == "S":
            return ("text", False)
        if category in _NOT_TEXT_CATEGORIES or name in _NOT_TEXT_TYPES:
            return None
        return ("other", False)

    def _fields_of(self, relation: int) -> list[int]:
        if relation not in self._fields:
            rows = self._connection.execute(sa.text(_FIELDS_SQL), {"relations": [relation]}).all()
            self._fields[relation] = [row.atttypid for row in rows]
        return self._fields[relation]


# --- how each identifier is written ----------------------------------------------------------


def _u(char: str) -> str:
    """A JSON \\u escape (two for a character beyond the BMP), lower case as the lowered text has it."""
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _unreserved(char: str) -> bool:
    """Left as it is by percent-encoding (RFC 3986's unreserved characters)."""
    return char.isascii() and (char.isalnum() or char in "-._~")


def _encodings(needle: str) -> set[str]:
    """An address or name (lower case) as text holds it and as the common encodings write it.

    Each of JSON's \\u escapes, percent-encoding and HTML/XML character references is applied to
    the characters outside RFC 3986's unreserved set (`@`, `+`, a space, non-ASCII), to every
    character but letters and digits, and to every character; hex digits in lower case, as the
    lowered text has them.
    """
    chosen: tuple[Callable[[str], bool], ...] = (_unreserved, lambda c: c.isascii() and c.isalnum(), lambda c: False)
    schemes: tuple[Callable[[str], str], ...] = (
        _u,
        lambda c: "".join(f"%{byte:02x}" for byte in c.encode()),
        lambda c: f"&#{ord(c)};",
        lambda c: f"&#x{ord(c):x};",
    )
    return {
        *_escapes(needle),
        json.dumps(needle)[1:-1],  # JSON with non-ASCII escaped (ensure_ascii)
        quote_plus(needle, safe="").lower(),  # a form's encoding: + for a space
        *("".join(c if keep(c) else encode(c) for c in needle) for keep in chosen for encode in schemes),
    }


def _escapes(needle: str) -> set[str]:
    """The needle as it is, and as JSON, array and hstore text (`\\"`) and composite text (`""`) quote it."""
    return {needle, json.dumps(needle, ensure_ascii=False)[1:-1], needle.replace("\\", "\\\\").replace('"', '""')}


def _shortest_forms(forms: Iterable[str]) -> list[str]:
    """The forms (sorted) less each that holds another one searched in the same lowered text
    (`a` for ASCII forms, `u` for the others): a row holding it holds the other, and is kept for
    that one. A JWT holds its payload and signature, which are searched for too."""
    kept: list[str] = []
    for form in sorted(set(forms), key=lambda f: (len(f), f)):
        if not any(shorter in form and shorter.isascii() == form.isascii() for shorter in kept):
            kept.append(form)
    return sorted(kept)


def _run_of(forms: list[str]) -> str:
    """A regular expression that a text holding any of `forms` (ASCII) matches: a run of their
    characters as long as the shortest (at most RUN_MAX). Letters and digits as they are, any other
    character as a `\\u` escape (valid inside a bracket expression, and never a range or negation)."""
    chars = sorted(set("".join(forms)))
    written = "".join(c if c.isascii() and c.isalnum() else f"\\u{ord(c):04x}" for c in chars)
    return f"[{written}]{{{min(RUN_MAX, *map(len, forms))}}}"


# What every form of one encoding holds, and the name of its parameter.
_MARKERS = {"%": "marker_percent", "\\u": "marker_json", "&#": "marker_html"}


def _bytea_escaped(text: str) -> str:
    """`text`'s UTF-8 bytes as `encode(bytes, 'escape')` writes them."""
    return "".join(
        "\\\\" if byte == 0x5C else f"\\{byte:03o}" if byte == 0 or byte >= 0x80 else chr(byte) for byte in text.encode()
    )


def _hex(text: str) -> set[str]:
    """`text`'s UTF-8 bytes as hex digits, as a bytea inside an array or composite is written (lower or upper case)."""
    return {text.encode().hex(), text.upper().encode().hex()}


def _json_unescaped(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        escaped = match[1]
        if escaped[0] == "u":
            return chr(int(escaped[1:], 16))
        return {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}.get(escaped, escaped)

    unescaped = re.sub(r"\\(u[0-9a-fA-F]{4}|.)", one, text, flags=re.DOTALL)
    return unescaped.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _bytes_unescaped(text: str) -> str:
    """What `encode(bytes, 'escape')` wrote (octal escapes, doubled backslashes) as UTF-8 text."""
    if "\\" not in text or not text.isascii():
        return text
    raw = re.sub(r"\\\\|\\([0-7]{3})", lambda m: chr(int(m[1], 8)) if m[1] else "\\", text)
    return raw.encode("latin-1").decode("utf-8", "replace")


def _hex_decoded(text: str) -> str:
    return re.sub(r"\\x((?:[0-9a-fA-F]{2})+)", lambda m: bytes.fromhex(m[1]).decode("utf-8", "replace"), text)


_DECODERS: tuple[Callable[[str], str], ...] = (
    _json_unescaped, lambda t: t.replace('""', '"'), unquote, unquote_plus, html.unescape, _bytes_unescaped, _hex_decoded,
)


def _views(text: str) -> list[str]:
    """The text, and what it says once decoded (twice over, for an encoding inside another)."""
    views = {text}
    for _ in range(2):
        views |= {decode(view) for view in views for decode in _DECODERS}
    return [text, *sorted(views - {text})]


# --- the search ----------------------------------------------------------------------------------


class _NotVerifiable(Exception):
    """A table the search had to give up on: the reason."""


class _Restart(Exception):
    """A table to search again from the start, in a new snapshot."""


class _Search:
    def __init__(self, worker: Connection, exporter: Connection, identifiers: Identifiers) -> None:
        self.worker, self.exporter, self.identifiers = worker, exporter, identifiers
        self.traces: list[Trace] = []
        self.searched: list[_Table] = []
        self.not_verified: list[UnverifiedTable] = []
        self.modelled = {("public", name) for name in SQLModel.metadata.tables}
        self.matchers = _Matchers(identifiers)

    def table(self, table: _Table) -> None:
        if not table.searchable:
            return
        query = _Query(table, self.identifiers, modelled=(table.schema, table.name) in self.modelled)
        if query.statement is None:
            self.searched.append(table)  # nothing it may hold counts here (an id in linea's own tables)
            return
        for attempt in range(1, TABLE_ATTEMPTS + 1):
            try:
                traces = list(self._walk(table, query))
            except _Restart:
                if attempt == TABLE_ATTEMPTS:
                    self.not_verified.append(UnverifiedTable(
                        table.shown, f"rewritten or altered while it was searched, {TABLE_ATTEMPTS} times"
                    ))
                    return
                with self.worker.begin():  # its columns as they are now
                    table = next((t for t in _searched_tables(self.worker) if t.oid == table.oid), None)
                if table is None or not table.searchable:
                    return
                query = _Query(table, self.identifiers, modelled=query.modelled)
                continue
            except _NotVerifiable as reason:
                self.not_verified.append(UnverifiedTable(table.shown, str(reason)))
                return
            except _Gone:
                return
            self.searched.append(table)
            self.traces.extend(traces)
            return

    def _walk(self, table: _Table, query: _Query) -> Iterator[Trace]:
        """Every range of the table's pages, each in a transaction of its own, all in one snapshot."""
        with self.exporter.begin():
            snapshot = self.exporter.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            if not _SNAPSHOT_ID.fullmatch(snapshot):
                raise ValueError(f"unexpected snapshot id {snapshot!r}")
            self.worker.info[SNAPSHOT_INFO] = snapshot
            try:
                yield from self._ranges(table, query)
            finally:
                self.worker.info.pop(SNAPSHOT_INFO, None)

    def _ranges(self, table: _Table, query: _Query) -> Iterator[Trace]:
        page, pages, span, last = 0, None, FIRST_SPAN, False
        while not last:
            started = time.perf_counter()
            pages, last, rows = self._one_range(table, query, page=page, span=span, pages=pages)
            # Sized by the transaction alone (the lock's time), not by the rows' checks below.
            factor = min(2.0, max(0.5, RANGE_SECONDS / max(time.perf_counter() - started, 0.001)))
            between_transactions(table.shown)
            for row in rows:
                yield from _row_traces(table, query, row, self.matchers, self.identifiers)
            page += span
            span = min(MAX_SPAN, max(MIN_SPAN, int(span * factor)))

    def _one_range(
        self, table: _Table, query: _Query, *, page: int, span: int, pages: int | None
    ) -> tuple[int, bool, list[sa.Row]]:
        """The table's pages, whether this range was its last, and the matching rows of pages
        [page, page + span) (to the end for the last one), read in one short transaction that
        steps aside when the table's lock is not free."""
        for attempt in range(1, LOCK_ATTEMPTS + 1):
            try:
                with self.worker.begin():  # its lock_timeout, jit and snapshot: see find_traces and _walk
                    if pages is None:
                        pages = self.worker.execute(sa.text(_PAGES_SQL), {"leaves": list(table.leaves)}).scalar_one()
                    # Without SELECT on the whole table, ctid cannot be read: the table in one transaction.
                    last = not table.whole_table_select or page + span >= pages
                    params = {**query.params, **_range(page, None if last else span), "leaves": list(table.leaves)}
                    rows = self.worker.execute(query.statement, params).all()
                if rows and rows[-1][0] is None:  # the row _REWRITTEN_SQL adds
                    raise _Restart
                return pages, last, rows
            except sa.exc.DBAPIError as exc:
                state = getattr(exc.orig, "sqlstate", None)
                if state == _LOCK_NOT_AVAILABLE:
                    between_transactions(table.shown)
                    if attempt < LOCK_ATTEMPTS:
                        time.sleep(STEP_ASIDE_SECONDS * attempt)
                    continue
                if state == _INSUFFICIENT_PRIVILEGE:
                    raise _NotVerifiable(f"permission denied while searching it: {first_line(exc)}") from None
                if state == _UNDEFINED_TABLE:
                    raise _Gone from None
                if state in (_UNDEFINED_COLUMN, _INVALID_SNAPSHOT):
                    raise _Restart from None
                raise
        raise _NotVerifiable(
            f"its lock was not free in {LOCK_ATTEMPTS} tries of {LOCK_WAIT} (others held or waited for it); "
            "not searched, rather than make them wait"
        )


class _Gone(Exception):
    """The table was dropped meanwhile: nothing of the person's is in it any more."""


# The pages a table had (its largest partition's, for a partitioned table); locks it for reading.
_PAGES_SQL = """
    SELECT coalesce(max(pg_relation_size(leaf)), 0) / current_setting('block_size')::int
    FROM unnest(CAST(:leaves AS oid[])) AS leaf
"""
# Whether a relation holding the table's rows got a new file since the snapshot (VACUUM FULL, a
# rewriting ALTER, TRUNCATE): its rows moved, or this snapshot no longer sees them. pg_class as
# the snapshot saw it, against the file the relation has now (current once its lock is held).
# Checked in the range's own statement, after the rows: one row with a NULL row id when so.
_REWRITTEN_SQL = """
    SELECT NULL, {nulls} WHERE EXISTS (
        SELECT FROM pg_class WHERE oid = ANY(CAST(:leaves AS oid[])) AND relfilenode <> pg_relation_filenode(oid))
"""


def _range(page: int, span: int | None) -> dict[str, str]:
    return {"low": f"({page},0)", "high": f"({page + span},0)" if span is not None else "(4294967295,0)"}




class _Query:
    """The SELECT that keeps a range's rows holding an identifier, in any encoding searched.

    The filter is row-wide (the text of all its columns, lowered once): one strpos per form of
    each identifier per row, not per column; which column holds what, and whether it counts, is
    decided here for the few rows it keeps (`_row_traces`).
    """

    def __init__(self, table: _Table, identifiers: Identifiers, *, modelled: bool) -> None:
        self.table, self.modelled = table, modelled
        self.params: dict[str, Any] = {}
        self.unicode = False
        has_bytea = any(column.kind == "bytea" for column in table.columns)
        has_hex = any(column.nested_bytea for column in table.columns)

        def hits(needles: Iterable[str], *, full: bool) -> list[str]:
            variants = {v for n in needles for v in (_encodings(n) if full else _escapes(n))}
            if has_bytea:
                variants |= {_bytea_escaped(v) for v in variants}
            if has_hex:
                variants |= {h for n in needles for h in _hex(n)}
            groups: dict[str | None, list[str]] = {}
            for variant in _shortest_forms(variants):
                marker = next((m for m in _MARKERS if m in variant), None)
                groups.setdefault(marker, []).append(variant)
            # Many plain forms (tokens: hundreds) are looked for only in a row holding a run of
            # their characters as long as the shortest: a row holding one holds such a run.
            unmarked = groups.pop(None, [])
            plain = [v for v in unmarked if v.isascii()]
            found = [term(v) for v in unmarked if not v.isascii()]
            if len(plain) >= RUN_FILTER_MIN_FORMS:
                self.params[run := f"n{len(self.params)}"] = _run_of(plain)
                found.append(f"(a ~ :{run} AND ({' OR '.join(map(term, plain))}))")
            else:
                found += map(term, plain)
            # An encoded form is looked for only in a row that holds its marker (`%`, `\u`, `&#`):
            # most hold none, and one strpos for the marker spares those for every form.
            for marker, forms in groups.items():
                self.params[_MARKERS[marker]] = marker
                found.append(f"(strpos(a, :{_MARKERS[marker]}) > 0 AND ({' OR '.join(map(term, forms))}))")
            return found

        def term(variant: str) -> str:
            name = f"n{len(self.params)}"
            self.params[name] = variant
            self.unicode |= not variant.isascii()
            return f"strpos({'a' if variant.isascii() else 'u'}, :{name}) > 0"

        strong = hits(identifiers.addresses | identifiers.names, full=True) + hits(identifiers.tokens, full=False)
        ids = hits(identifiers.ids, full=False)
        weak = hits(identifiers.ips | identifiers.agents, full=False)
        conditions = [*strong, *(ids if not modelled else [])]
        if weak and (strong or ids):
            conditions.append(f"(({' OR '.join(weak)}) AND ({' OR '.join(strong + ids)}))")
        self.statement = self._statement(conditions) if conditions else None

    def _statement(self, conditions: list[str]) -> sa.TextClause:
        table = self.table
        partitioned = table.relkind == "p"
        if table.key:
            row_id = key_text(table.key)
        elif not table.whole_table_select:
            row_id = "'-'"
        else:
            row_id = ("tableoid::regclass::text || ' ' || " if partitioned else "") + "'ctid ' || ctid::text"
        texts = ", ".join(
            (f"encode({quoted(c.name)}, 'escape')" if c.kind == "bytea" else f"{quoted(c.name)}::text") + f" AS t{n}"
            for n, c in enumerate(table.columns)
        )
        outer = ", ".join(f"t{n}" for n in range(len(table.columns)))
        # The row's text, columns apart (chr(1)), lowered once: `a` with the "C" collation, which
        # lowers A-Z only and is three times faster, for forms that are all ASCII; `u` with the
        # database's own rules, only when some form is not.
        row = f"concat_ws(chr(1), {outer})"
        lowered = f'lower({row} COLLATE "C") AS a' + (f', lower({row} COLLATE "default") AS u' if self.unicode else "")
        pages = " WHERE ctid >= CAST(:low AS tid) AND ctid < CAST(:high AS tid)" if table.whole_table_select else ""
        only = "" if partitioned else "ONLY "
        # Each column is written as text once per row, in subqueries PostgreSQL does not flatten (OFFSET 0).
        # The rewritten check comes last (UNION ALL runs its parts in order), once the table is locked.
        nulls = ", ".join("NULL" for _ in table.columns)
        return sa.text(
            f"SELECT row_id, {outer} FROM (SELECT row_id, {outer}, {lowered} FROM ("
            f"SELECT {row_id} AS row_id, {texts} FROM {only}{quoted(table.schema, table.name)}{pages} "
            f"OFFSET 0) AS texts OFFSET 0) AS lowered WHERE {' OR '.join(conditions)}"
            f" UNION ALL {_REWRITTEN_SQL.format(nulls=nulls)}"
        )


class _Matchers:
    """The identifiers as whole-word patterns, compiled once."""

    def __init__(self, identifiers: Identifiers) -> None:
        self.strong: list[tuple[str, re.Pattern[str]]] = [
            *(("address", email_pattern(a)) for a in sorted(identifiers.addresses)),
            *(("name", p) for p in map(name_pattern, sorted(identifiers.names)) if p is not None),
            *(("token", re.compile(re.escape(t), re.IGNORECASE)) for t in sorted(identifiers.tokens)),
        ]
        self.ids = [re.compile(r"(?<![\w-])" + re.escape(i) + r"(?![\w-])", re.IGNORECASE) for i in sorted(identifiers.ids)]
        self.weak: list[tuple[str, re.Pattern[str]]] = [
            *(("ip address", ip_pattern(ip)) for ip in sorted(identifiers.ips)),
            *(("user agent", re.compile(re.escape(a), re.IGNORECASE)) for a in sorted(identifiers.agents)),
        ]


def _row_traces(table: _Table, query: _Query, row: sa.Row, matchers: _Matchers, identifiers: Identifiers) -> Iterator[Trace]:
    row_id = str(row[0])
    values = {column.name: ([] if row[n + 1] is None else _views(row[n + 1])) for n, column in enumerate(table.columns)}

    def found(patterns: list[tuple[str, re.Pattern[str]]], texts: list[str]) -> list[str]:
        return [kind for kind, pattern in patterns if any(pattern.search(text) for text in texts)]

    strong = {column: found(matchers.strong, texts) for column, texts in values.items()}
    with_id = {column for column, texts in values.items() if any(p.search(t) for p in matchers.ids for t in texts)}
    context = any(strong.values()) or bool(with_id)
    for column, texts in values.items():
        kinds = list(strong[column])
        if column in with_id and not query.modelled:
            kinds.append("id")
        actor = ACTOR_COLUMNS.get((table.schema, table.name, column))
        is_persons_row = actor is None or any(text.lower() in identifiers.ids for text in values.get(actor, [])[:1])
        if context and is_persons_row:
            kinds += found(matchers.weak, texts)
        if kinds:
            yield Trace(table.shown, column, row_id, ", ".join(dict.fromkeys(kinds)))
