"""What a pg_dump archive holds, judged before any of it runs.

pg_restore's own manual warns that an archive executes arbitrary code: a function in a CHECK
constraint runs on every restored row, an index expression when the index is built, an event
trigger on the restore's own DDL, and a SECURITY DEFINER function stays behind for anyone to
call. So linea reads the archive's table of contents (`pg_restore --list`) and the SQL of every
entry but the data (`pg_restore --verbose -f -`, which prints each entry under a `-- TOC entry N`
header and connects to nothing), and sorts each entry:

- kept: what linea knows and restores through a filtered list (`pg_restore -L`): tables of the
  platform's schema (`public`: the data model's, `_prisma_migrations`, tables the platform's
  Prisma added) and linea's own (`linea.alembic_version`, `linea.objects`, `linea.imports`), their data, enum
  types, sequences (ownership and values), column defaults, constraints, indexes, and comments on
  them; each only when its SQL has the plain form pg_dump writes and calls no function but a
  built-in one known to be harmless (see `SAFE_FUNCTIONS`): a constraint, default or index
  expression that calls anything else is itself code, and foreign.
- linea's own functions and triggers (the audit log's append-only guard): never taken from the
  archive; linea recreates them from its own definitions after every restore.
- privileges (ACL entries): never restored (the restore runs with --no-privileges).
- foreign: everything else (functions, other triggers, event triggers, extensions, schemas,
  views, rules, policies, publications, foreign servers, large objects, ...), named by kind.

An archive whose text does not split as pg_restore prints it (a header twice, an id it was not
asked for, session settings other than pg_dump's) is refused as a whole: it was not written by
pg_dump.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from linea_cli.db.catalog import LINEA_SCHEMA, PLATFORM_SCHEMA, PLATFORM_TABLES
from linea_cli.errors import InvalidInput, cut, shown

# linea's own objects: its bookkeeping tables, and the audit log's guard (recreated, never restored).
LINEA_TABLES = ("alembic_version", "objects", "imports", "stat_snapshots", "stat_statements", "stat_tables", "stat_indexes")
LINEA_FUNCTIONS = ("audit_logs_append_only", "audit_logs_no_truncate")
LINEA_TRIGGERS = ("audit_logs_append_only", "audit_logs_no_truncate")
PRISMA_TABLE = "_prisma_migrations"
# What linea kept in `public` before revision 5f3c8e1a7b20 (its next upgrade moves or drops them).
OLD_LINEA_FUNCTIONS = ("linea_audit_logs_append_only()", "linea_audit_logs_no_truncate()", "linea_set_updated_at()")
OLD_LINEA_TRIGGERS = tuple(
    f"{table} {table}_set_updated_at" for table in ("users", "events", "venues", "waitlist_entries", "sessions")
)

# Built-in functions a column default, CHECK constraint or index expression may call and still be
# restored: none of them reads files, runs SQL text (query_to_xml does), or reaches the server.
SAFE_FUNCTIONS = frozenset(
    """
    lower upper length char_length character_length octet_length btrim ltrim rtrim trim substr substring
    strpos position left right lpad rpad replace concat concat_ws md5 starts_with regexp_like
    now clock_timestamp statement_timestamp transaction_timestamp timezone date_trunc date_part extract
    make_interval make_date make_timestamp to_timestamp age
    nextval currval setval gen_random_uuid
    coalesce nullif greatest least abs round floor ceil ceiling trunc mod sign
    array_length cardinality array_position array_lower array_upper
    jsonb_typeof json_typeof jsonb_array_length json_array_length jsonb_build_object jsonb_build_array
    """.split()
)

# Entries pg_restore never runs with --no-privileges / without --create.
NEVER_RESTORED = frozenset({"ACL", "DEFAULT ACL", "ACL LANGUAGE", "DATABASE", "DATABASE PROPERTIES"})
DATA_KINDS = frozenset({"TABLE DATA", "BLOBS", "BLOB", "LARGE OBJECTS"})

# pg_restore's entry kinds (its `desc`), longest first so that "TABLE DATA" is not read as "TABLE".
KINDS = sorted(
    (kind.strip() for kind in """
    ACCESS METHOD|ACL|ACL LANGUAGE|AGGREGATE|BLOB|BLOB METADATA|BLOBS|CAST|CHECK CONSTRAINT|COLLATION|COMMENT|
    CONSTRAINT|CONVERSION|DATABASE|DATABASE PROPERTIES|DEFAULT|DEFAULT ACL|DOMAIN|ENCODING|EVENT TRIGGER|
    EXTENSION|FK CONSTRAINT|FOREIGN DATA WRAPPER|FOREIGN SERVER|FOREIGN TABLE|FUNCTION|INDEX|INDEX ATTACH|
    LARGE OBJECT|LARGE OBJECTS|MATERIALIZED VIEW|MATERIALIZED VIEW DATA|OPERATOR|OPERATOR CLASS|OPERATOR FAMILY|
    POLICY|PROCEDURAL LANGUAGE|PROCEDURE|PUBLICATION|PUBLICATION TABLE|PUBLICATION TABLES IN SCHEMA|
    ROW SECURITY|RULE|SCHEMA|SEARCHPATH|SECURITY LABEL|SEQUENCE|SEQUENCE OWNED BY|SEQUENCE SET|SERVER|
    SHELL TYPE|STATISTICS|STATISTICS DATA|STDSTRINGS|SUBSCRIPTION|SUBSCRIPTION TABLE|TABLE|TABLE ATTACH|
    TABLE DATA|TEXT SEARCH CONFIGURATION|TEXT SEARCH DICTIONARY|TEXT SEARCH PARSER|TEXT SEARCH TEMPLATE|
    TRANSFORM|TRIGGER|TYPE|USER MAPPING|VIEW
    """.split("|")),
    key=len,
    reverse=True,
)

# How a refusal names each kind (plural); a kind not here is named by pg_restore's word for it.
KIND_NAMES = {
    "FUNCTION": "functions", "PROCEDURE": "procedures", "AGGREGATE": "aggregates", "TRIGGER": "triggers",
    "EVENT TRIGGER": "event triggers", "EXTENSION": "extensions", "SCHEMA": "schemas", "VIEW": "views",
    "MATERIALIZED VIEW": "materialized views", "RULE": "rules", "POLICY": "policies",
    "ROW SECURITY": "row-level security", "PUBLICATION": "publications", "PUBLICATION TABLE": "publications",
    "SUBSCRIPTION": "subscriptions", "FOREIGN DATA WRAPPER": "foreign data wrappers", "SERVER": "foreign servers",
    "FOREIGN SERVER": "foreign servers", "USER MAPPING": "user mappings", "FOREIGN TABLE": "foreign tables",
    "LARGE OBJECT": "large objects", "LARGE OBJECTS": "large objects", "BLOB": "large objects",
    "BLOBS": "large objects", "BLOB METADATA": "large objects", "TYPE": "types", "DOMAIN": "domains", "CAST": "casts", "OPERATOR": "operators",
    "COLLATION": "collations", "PROCEDURAL LANGUAGE": "languages", "COMMENT": "comments",
    "TABLE": "tables", "SEQUENCE": "sequences", "INDEX": "indexes", "DEFAULT": "column defaults",
    "CONSTRAINT": "constraints", "CHECK CONSTRAINT": "constraints", "FK CONSTRAINT": "constraints",
}
# Kinds that go with their table (or sequence) when it is refused, named once with it; code
# (a trigger, a rule, a policy, anything calling a function) is always named on its own.
_FOLLOWING = frozenset(
    {"TABLE DATA", "CONSTRAINT", "FK CONSTRAINT", "CHECK CONSTRAINT", "DEFAULT", "INDEX", "SEQUENCE SET",
     "SEQUENCE OWNED BY", "COMMENT"}
)
# The order kinds are listed in a refusal: code first.
_FIRST = ("functions", "procedures", "event triggers", "triggers", "extensions", "casts", "operators")


@dataclass
class Entry:
    """One entry of the archive's table of contents, with the SQL pg_restore would run for it."""

    dump_id: int
    kind: str
    schema: str | None
    tag: str
    line: str
    sql: str = ""
    calls: tuple[str, ...] = ()  # functions its SQL calls that linea does not know
    order: int = 0  # its place in the archive
    follows: bool = False  # refused with the table it belongs to (named once, with the table)

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.tag}" if self.schema else self.tag

    @property
    def table(self) -> str | None:
        """The table an entry of a table belongs to ("users users_pkey" -> users), else None."""
        if self.kind in ("TABLE", "TABLE DATA"):
            return self.tag
        if self.kind in ("CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT", "DEFAULT", "TRIGGER", "RULE", "POLICY"):
            return self.tag.split(" ", 1)[0]
        return None


@dataclass
class Contents:
    """The archive's entries, sorted: restored, recreated by linea, never restored, foreign."""

    kept: list[Entry] = field(default_factory=list)
    recreated: list[Entry] = field(default_factory=list)
    never: list[Entry] = field(default_factory=list)
    foreign: list[Entry] = field(default_factory=list)
    extra_tables: list[str] = field(default_factory=list)  # platform tables the data model does not name

    def foreign_by_kind(self) -> dict[str, list[str]]:
        """Refused objects by kind, each named once ("functions": ["attacker.note(text)", ...])."""
        kinds: dict[str, list[str]] = {}
        # pg_dump 15 writes a data entry named "BLOBS" beside each large object's own "BLOB <oid>":
        # the objects are named by their oids, their data is not another object.
        named_objects = any(entry.kind in ("BLOB", "BLOB METADATA", "LARGE OBJECT") for entry in self.foreign)
        for entry in self.foreign:
            if entry.follows or (named_objects and entry.kind in ("BLOBS", "LARGE OBJECTS")):
                continue
            kind = KIND_NAMES.get(entry.kind, entry.kind.lower())
            if entry.calls and entry.kind in ("TABLE", "INDEX", "DEFAULT", "CONSTRAINT", "CHECK CONSTRAINT"):
                kind = f"{kind} calling functions linea does not know"
                named = f"{entry.name} ({', '.join(entry.calls)})"
            else:
                named = entry.name
            if named not in kinds.setdefault(kind, []):
                kinds[kind].append(named)
        order = {kind: index for index, kind in enumerate(_FIRST)}
        return dict(sorted(kinds.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))

    def never_names(self) -> list[str]:
        """The privileges and database settings left out, as "GRANTs on TABLE public.users"."""
        named = []
        for entry in self.never:
            what, _, target = entry.tag.partition(" ")
            thing = f"{what} {entry.schema + '.' if entry.schema else ''}{target}" if target else entry.tag
            named.append(f"GRANTs on {thing}" if "ACL" in entry.kind else f"{entry.kind.lower()} {thing}")
        return named

    def foreign_lines(self, *, limit: int = 400) -> tuple[str, ...]:
        return tuple(cut(f"{kind}: {', '.join(names)}", limit=limit) for kind, names in self.foreign_by_kind().items())

    def restore_list(self, *, include_foreign: bool) -> str:
        """The `pg_restore -L` list: what is kept (and, when asked, what is foreign), in archive order."""
        chosen = self.kept + (self.foreign if include_foreign else [])
        return "".join(f"{entry.line}\n" for entry in sorted(chosen, key=lambda entry: entry.order))


def parse_list(text: str) -> list[Entry]:
    """`pg_restore --list` read as entries, in the archive's order (comment lines skipped)."""
    entries = []
    for position, line in enumerate(text.splitlines()):
        match = re.fullmatch(r"(\d+); (\d+) (\d+) (.*)", line)
        if not match:
            if line.strip() and not line.startswith(";"):
                raise InvalidInput(f"pg_restore --list printed a line linea cannot read: {shown(line)}")
            continue
        rest = match.group(4)
        kind = next((k for k in KINDS if rest.startswith(k + " ")), rest.split(" ", 1)[0])
        words = rest[len(kind) + 1 :].split(" ")
        schema = words[0] if words and words[0] != "-" else None
        tag = " ".join(words[1:-1]) if len(words) > 2 else (words[1] if len(words) > 1 else "")
        entries.append(Entry(dump_id=int(match.group(1)), kind=kind, schema=schema, tag=tag, line=line, order=position))
    return entries


# --- the SQL pg_restore prints ---------------------------------------------------------------

_HEADER = re.compile(r"^-- TOC entry (\d+) \(class \d+ OID \d+\)$", re.M)
# What pg_restore sets between entries (from the archive's tablespace and access method, quoted).
_BETWEEN_ENTRIES = re.compile(
    r"SET default_tablespace = ('([a-z_][a-z0-9_]*)?'|\"[^\"\n]*\"|[a-z_][a-z0-9_]*);|SET default_table_access_method = heap;"
)
# The session settings pg_restore starts with, as pg_dump 10.3+ writes them.
_SETTING_LINES = re.compile(
    rf"{_BETWEEN_ENTRIES.pattern}|"
    r"SET (statement_timeout|lock_timeout|idle_in_transaction_session_timeout|transaction_timeout) = 0;"
    r"|SET client_encoding = '[A-Za-z0-9_]+';|SET standard_conforming_strings = on;"
    r"|SELECT pg_catalog\.set_config\('search_path', '', false\);|SET check_function_bodies = false;"
    r"|SET xmloption = content;|SET client_min_messages = warning;|SET row_security = off;"
    r"|SET default_with_oids = false;|\\(un)?restrict [A-Za-z0-9]+"
)
_SEARCH_PATH = "SELECT pg_catalog.set_config('search_path', '', false);"


def split_script(script: str, entries: Iterable[Entry], *, what: str = "sets up its session with") -> None:
    """Give each entry its SQL from pg_restore's text output. Refused unless every header is one of
    `entries`, once, and what comes before the first entry is only pg_dump's session settings with
    an empty search_path (and, with --clean, pg_dump's plain DROPs: `what` says which it was)."""
    wanted = {entry.dump_id: entry for entry in entries}
    headers = list(_HEADER.finditer(script))
    seen: set[int] = set()
    for number, header in enumerate(headers):
        dump_id = int(header.group(1))
        if dump_id not in wanted or dump_id in seen:
            raise _tampered()
        seen.add(dump_id)
        end = headers[number + 1].start() if number + 1 < len(headers) else len(script)
        wanted[dump_id].sql = _entry_sql(script[header.end() : end], last=number + 1 == len(headers))
    preamble = script[: headers[0].start()] if headers else script
    _check_preamble(preamble, what=what)


def _entry_sql(block: str, *, last: bool) -> str:
    """The SQL of one entry: its header comment (up to the line `--`) and pg_restore's own
    settings removed; after the last entry, the closing comments too."""
    lines = block.split("\n")
    index = 1
    while index < len(lines) and lines[index].startswith("--"):
        index += 1
        if lines[index - 1] == "--":
            break
    body = [line for line in lines[index:] if not _BETWEEN_ENTRIES.fullmatch(line)]
    closing = ("-- Completed on", "-- PostgreSQL database dump complete", "\\unrestrict ") if last else ()
    while body and (not body[-1].strip() or body[-1] == "--" or (closing and body[-1].startswith(closing))):
        body.pop()  # the `--` opening the next entry's header, or the script's closing comments
    return "\n".join(body).strip()


def _check_preamble(preamble: str, *, what: str) -> None:
    """Only pg_dump's session settings (and the drops of --clean) before the first entry."""
    lines = [line for line in preamble.splitlines() if line.strip() and not line.startswith("--")]
    odd = [line for line in lines if not _SETTING_LINES.fullmatch(line) and not _DROP_LINE.fullmatch(line)]
    if odd:
        raise InvalidInput(
            f"the archive {what} SQL pg_dump does not write: {shown(cut(odd[0], limit=120))}; nothing was restored"
        )
    if _SEARCH_PATH not in lines:
        raise InvalidInput(
            "the archive does not empty the search_path (pg_dump older than 10.3?); nothing was restored",
            hint="restore an archive written by `linea db backup` or a current pg_dump",
        )


# What pg_restore --clean --if-exists runs first for the entries linea keeps.
_NAME = r'(?:[a-z_][a-z0-9_$]*|"(?:[^"\n]|"")+")'
_QUALIFIED = rf"{_NAME}\.{_NAME}"
_DROP_LINE = re.compile(
    rf"DROP (?:TABLE|INDEX|SEQUENCE|TYPE|VIEW) IF EXISTS {_QUALIFIED};|DROP SCHEMA IF EXISTS {_NAME};"
    rf"|ALTER TABLE IF EXISTS (?:ONLY )?{_QUALIFIED} DROP CONSTRAINT IF EXISTS {_NAME};"
    rf"|ALTER TABLE IF EXISTS (?:ONLY )?{_QUALIFIED} ALTER COLUMN {_NAME} DROP DEFAULT;"
    rf"|ALTER TABLE IF EXISTS (?:ONLY )?{_QUALIFIED} ALTER COLUMN {_NAME} DROP IDENTITY(?: IF EXISTS)?;"
)


def check_data(lines: Iterable[bytes], entries: Iterable[Entry]) -> None:
    """pg_restore's text output for the data `entries` (line by line): each must be pg_dump's own
    `COPY schema.table (columns) FROM stdin;` of the table it belongs to, followed by rows up to
    `\\.`; a data entry of a hand-made archive could hold any SQL instead (`COPY ... FROM PROGRAM`)."""
    wanted = {entry.dump_id: entry for entry in entries}
    seen: set[int] = set()
    current: Entry | None = None
    in_rows = False
    for line in lines:
        if in_rows:
            in_rows = line != b"\\.\n"
            continue
        text = line.decode("utf-8", "replace").rstrip("\n")
        header = _HEADER.fullmatch(text)
        if header:
            dump_id = int(header.group(1))
            if dump_id not in wanted or dump_id in seen:
                raise _tampered()
            seen.add(dump_id)
            current = wanted[dump_id]
        elif current is not None and text.startswith("COPY "):
            if not _plain_copy(text, current):
                raise InvalidInput(
                    f"the archive's data for {current.name} is not loaded by pg_dump's COPY ... FROM stdin "
                    f"but by {shown(cut(text, limit=120))}; nothing was restored"
                )
            current, in_rows = None, True
        elif text.strip() and not text.startswith("--") and not _SETTING_LINES.fullmatch(text):
            raise InvalidInput(
                f"the archive's data holds SQL, not rows: {shown(cut(text, limit=120))}; nothing was restored",
                hint="linea restores archives whose rows pg_dump wrote as COPY (not --inserts)",
            )


def _plain_copy(text: str, entry: Entry) -> bool:
    try:
        [statement] = statements(text)
    except (NotPlain, ValueError):
        return False
    table, index = _qualified(statement, 1)
    if statement[0].word != "COPY" or table != (entry.schema, entry.tag) or index >= len(statement):
        return False
    rest = statement[index:]
    return (
        [token.text for token in rest[:1]] == ["("] and _words(rest[-3:], 3) == [")", "FROM", "STDIN"]
        and all(token.kind in ("word", "quoted") or token.text == "," for token in rest[1:-3])
    )


def _tampered() -> InvalidInput:
    return InvalidInput(
        "the archive's SQL does not match its table of contents (an entry that is not pg_dump's); nothing was restored"
    )


# --- reading SQL -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<escaped>[Ee]'(?:[^'\\]|''|\\.)*')
    |(?P<string>(?:[BbXxNn]|[Uu]&)?'(?:[^']|'')*')
    |(?P<quoted>"(?:[^"]|"")+")
    |(?P<dollar>\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$)
    |(?P<comment>--|/\*)
    |(?P<word>[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9$\x80-\U0010ffff]*)
    |(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
    |(?P<punct>::|[(),;\[\].])
    |(?P<operator>[-+*/<>=~!@#%^&|`?]+)
    """,
    re.X,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str

    @property
    def word(self) -> str:
        """A keyword or unquoted name, upper-cased ("" for anything else)."""
        return self.text.upper() if self.kind == "word" else ""

    @property
    def name(self) -> str:
        """The identifier it spells: unquoted ones folded to lower case, quoted ones as written."""
        if self.kind == "quoted":
            return self.text[1:-1].replace('""', '"')
        return self.text.lower()


class NotPlain(Exception):
    """SQL that is not in the plain form pg_dump writes for an object linea restores."""


def tokens(sql: str) -> list[Token]:
    """The SQL's tokens, spaces left out, read as PostgreSQL reads them with
    standard_conforming_strings on (a backslash escapes only in E'...'); anything pg_dump would
    not write in an object's definition (a comment, also inside an operator, a dollar-quoted body,
    an unknown character) is NotPlain."""
    found, position = [], 0
    while position < len(sql):
        match = _TOKEN.match(sql, position)
        if not match or match.lastgroup in ("comment", "dollar") or (
            match.lastgroup == "operator" and ("--" in match.group() or "/*" in match.group())
        ):
            raise NotPlain(sql[position : position + 20])
        if match.lastgroup != "space":
            found.append(Token("string" if match.lastgroup == "escaped" else match.lastgroup or "", match.group()))
        position = match.end()
    return found


def statements(sql: str) -> list[list[Token]]:
    """The SQL split at its semicolons (each statement must end with one)."""
    found: list[list[Token]] = [[]]
    for token in tokens(sql):
        if token.text == ";":
            found.append([])
        else:
            found[-1].append(token)
    if found[-1]:
        raise NotPlain("a statement without its semicolon")
    return found[:-1]


# Words before "(" that do not call a function: keywords, and types taking a modifier.
_NOT_CALLS = frozenset(
    """
    CHECK KEY UNIQUE INCLUDE EXCLUDE WITH AS ENUM IDENTITY IN ANY ALL SOME ARRAY VALUES WHERE DEFAULT
    CAST COALESCE NULLIF GREATEST LEAST ROW EXTRACT SUBSTRING POSITION TRIM OVERLAY AND OR NOT THEN ELSE
    WHEN CASE IS BETWEEN LIKE ILIKE SIMILAR ESCAPE ON USING REFERENCES TABLE INDEX DISTINCT
    VARYING VARCHAR CHARACTER CHAR BPCHAR NUMERIC DECIMAL TIMESTAMP TIMESTAMPTZ TIME TIMETZ INTERVAL BIT
    VARBIT FLOAT
    """.split()
)
# Words after which a name followed by "(" names an object, not a function.
_OBJECT_BEFORE = frozenset({"TABLE", "ON", "USING", "REFERENCES", "INDEX", "ONLY"})


def foreign_calls(statement: list[Token]) -> list[str]:
    """Functions (and operators) `statement` calls that are neither in SAFE_FUNCTIONS nor linea's."""
    found = []
    for index, token in enumerate(statement):
        if token.text != "(" or index == 0:
            continue
        start = index - 1
        if statement[start].kind not in ("word", "quoted"):
            continue
        while start >= 2 and statement[start - 1].text == "." and statement[start - 2].kind in ("word", "quoted"):
            start -= 2
        parts = [part.name for part in statement[start:index:2]]
        if parts == ["operator"] and statement[start].kind == "word":
            inner = statement[index + 1 : index + 4]
            if [token.name for token in inner[:2]] != ["pg_catalog", "."]:
                found.append(f"OPERATOR({''.join(token.text for token in inner)})")
            continue
        if len(parts) == 1 and statement[start].word in _NOT_CALLS:
            continue
        if start > 0 and statement[start - 1].word in _OBJECT_BEFORE:
            continue
        schema, function = (parts[-2] if len(parts) > 1 else "pg_catalog"), parts[-1]
        if schema == "pg_catalog" and function in SAFE_FUNCTIONS:
            continue
        if schema == LINEA_SCHEMA and function in LINEA_FUNCTIONS:
            continue
        found.append(".".join(parts))
    return found


def _qualified(statement: list[Token], index: int) -> tuple[tuple[str, str] | None, int]:
    """The schema-qualified name at `index` ((schema, name), index after it), or None."""
    if (
        index + 2 < len(statement) and statement[index].kind in ("word", "quoted") and statement[index + 1].text == "."
        and statement[index + 2].kind in ("word", "quoted")
    ):
        return (statement[index].name, statement[index + 2].name), index + 3
    return None, index


def _words(statement: list[Token], count: int) -> list[str]:
    return [token.word or token.text for token in statement[:count]]


def _after(statement: list[Token], *words: str) -> int:
    """The index after the leading `words` (an optional word in brackets: "[ONLY]"), or -1."""
    index = 0
    for word in words:
        optional = word.startswith("[")
        word = word.strip("[]")
        if index < len(statement) and statement[index].word == word:
            index += 1
        elif not optional:
            return -1
    return index


# --- sorting -----------------------------------------------------------------------------------


def classify(entries: list[Entry], *, platform_tables: Iterable[str] = PLATFORM_TABLES) -> Contents:
    """Sort the entries (their SQL read by `split_script`); see the module's docstring."""
    contents = Contents()
    known = set(platform_tables) | {PRISMA_TABLE}
    tables = {
        (entry.schema, entry.tag) for entry in entries
        if entry.kind == "TABLE" and _table_kept(entry) and not foreign_calls_of(entry)
    }
    refused = {(entry.schema, entry.tag) for entry in entries if entry.kind == "TABLE"} - tables
    sequences = {(entry.schema, entry.tag) for entry in entries if entry.kind == "SEQUENCE" and _sequence_kept(entry, tables)}
    refused |= {(entry.schema, entry.tag) for entry in entries if entry.kind == "SEQUENCE"} - sequences
    enums = {(entry.schema, entry.tag) for entry in entries if entry.kind == "TYPE" and _enum_kept(entry)}
    for entry in entries:
        if entry.kind in NEVER_RESTORED:
            contents.never.append(entry)
        elif _linea_guard(entry):
            contents.recreated.append(entry)
        elif _kept(entry, tables=tables, sequences=sequences, enums=enums):
            contents.kept.append(entry)
        else:
            if entry.schema in (PLATFORM_SCHEMA, LINEA_SCHEMA):
                entry.calls = tuple(foreign_calls_of(entry))
            referenced = set(re.findall(r'REFERENCES ([^ (.]+)\.([^ (]+)\(', entry.sql))
            entry.follows = entry.kind in _FOLLOWING and not entry.calls and (
                (entry.schema, _table_of(entry)) in refused
                or any((schema, name.strip('"')) in refused for schema, name in referenced)
            )
            contents.foreign.append(entry)
    contents.extra_tables = sorted(
        name for schema, name in tables if schema == PLATFORM_SCHEMA and name not in known | {"alembic_version"}
    )
    return contents


def _table_of(entry: Entry) -> str | None:
    """The table an entry belongs to: from its tag, or (an index) its SQL."""
    if entry.kind == "COMMENT":
        what, _, target = entry.tag.partition(" ")
        return {"TABLE": target, "COLUMN": target.split(".", 1)[0], "CONSTRAINT": target.rsplit(" ON ", 1)[-1]}.get(what)
    if entry.kind in ("SEQUENCE SET", "SEQUENCE OWNED BY"):
        return entry.tag
    if entry.kind == "INDEX":
        match = re.search(r" ON (?:ONLY )?(?:[^ .]+)\.([^ ]+) USING ", entry.sql)
        return match.group(1).strip('"') if match else None
    return entry.table


def foreign_calls_of(entry: Entry) -> list[str]:
    try:
        return sorted({call for statement in statements(entry.sql) for call in foreign_calls(statement)})
    except NotPlain:
        return []


def _plain(entry: Entry) -> list[list[Token]] | None:
    """The entry's statements when they are plain and call nothing linea does not know."""
    try:
        found = statements(entry.sql)
    except NotPlain:
        return None
    if not found or any(foreign_calls(statement) for statement in found):
        return None
    return found


def _linea_guard(entry: Entry) -> bool:
    """linea's functions and triggers (today's, and the older layout's in `public`): never restored."""
    if entry.kind == "FUNCTION":
        return (entry.schema == LINEA_SCHEMA and entry.tag in {f"{name}()" for name in LINEA_FUNCTIONS}) or (
            entry.schema == PLATFORM_SCHEMA and entry.tag in OLD_LINEA_FUNCTIONS
        )
    if entry.kind == "TRIGGER":
        return entry.schema == PLATFORM_SCHEMA and entry.tag in {
            *(f"audit_logs {name}" for name in LINEA_TRIGGERS), *OLD_LINEA_TRIGGERS
        }
    if entry.kind == "COMMENT":
        return entry.tag in {*(f"FUNCTION {name}()" for name in LINEA_FUNCTIONS),
                             *(f"TRIGGER {name} ON audit_logs" for name in LINEA_TRIGGERS)}
    return False


def _table_kept(entry: Entry) -> bool:
    if entry.schema == LINEA_SCHEMA:
        allowed = entry.tag in LINEA_TABLES
    else:
        allowed = entry.schema == PLATFORM_SCHEMA
    found = _plain(entry) if allowed else None
    if not found:
        return False
    first, *rest = found
    start = _after(first, "CREATE", "[UNLOGGED]", "TABLE")
    name, index = _qualified(first, start) if start >= 0 else (None, 0)
    if name != (entry.schema, entry.tag) or index >= len(first) or first[index].text != "(":
        return False
    try:
        closing = _closing(first, index)
    except NotPlain:
        return False
    if _words(first[closing + 1 :], 2) not in ([], ["WITH", "("]):
        return False  # INHERITS, PARTITION BY, USING another access method, TABLESPACE...
    for statement in rest:  # pg_dump's per-column settings (statistics, storage, compression)
        start = _after(statement, "ALTER", "TABLE", "[ONLY]")
        name, index = _qualified(statement, start) if start >= 0 else (None, 0)
        words = _words(statement[index:], 5)
        if name != (entry.schema, entry.tag) or not (
            words[:1] == ["ALTER"] and "SET" in words and {"STATISTICS", "STORAGE", "COMPRESSION"} & set(words)
            or words[:2] == ["REPLICA", "IDENTITY"]
        ):
            return False
    return True


def _sequence_kept(entry: Entry, tables: set[tuple[str | None, str]]) -> bool:
    found = _plain(entry) if entry.schema == PLATFORM_SCHEMA else None
    if not found or len(found) != 1:
        return False
    [statement] = found
    if _after(statement, "CREATE", "SEQUENCE") == 2:
        name, index = _qualified(statement, 2)
        return name == (entry.schema, entry.tag) and all(token.text not in "()" for token in statement[index:])
    # An identity column's sequence: ALTER TABLE t ALTER COLUMN c ADD GENERATED ... (SEQUENCE NAME s ...)
    start = _after(statement, "ALTER", "TABLE", "[ONLY]")
    table, index = _qualified(statement, start) if start >= 0 else (None, 0)
    words = [token.word for token in statement]
    named = _qualified(statement, words.index("NAME") + 1)[0] if "NAME" in words else None
    return (
        table in tables and _words(statement[index:], 2) == ["ALTER", "COLUMN"]
        and _words(statement[index + 3 :], 2) == ["ADD", "GENERATED"] and named == (entry.schema, entry.tag)
    )


def _closing(statement: list[Token], opening: int) -> int:
    """The index of the parenthesis closing the one at `opening`."""
    depth = 0
    for index in range(opening, len(statement)):
        depth += {"(": 1, ")": -1}.get(statement[index].text, 0)
        if depth == 0:
            return index
    raise NotPlain("an unclosed parenthesis")


def _enum_kept(entry: Entry) -> bool:
    found = _plain(entry) if entry.schema == PLATFORM_SCHEMA else None
    if not found or len(found) != 1:
        return False
    [statement] = found
    name, index = _qualified(statement, 2) if _after(statement, "CREATE", "TYPE") == 2 else (None, 0)
    rest = statement[index:]
    return (
        name == (entry.schema, entry.tag) and _words(rest, 3) == ["AS", "ENUM", "("] and rest[-1].text == ")"
        and all(token.kind == "string" or token.text == "," for token in rest[3:-1])
    )


def _kept(
    entry: Entry, *, tables: set[tuple[str | None, str]], sequences: set[tuple[str | None, str]],
    enums: set[tuple[str | None, str]],
) -> bool:
    kind, key = entry.kind, (entry.schema, entry.tag)
    if kind == "TABLE":
        return key in tables
    if kind == "TABLE DATA":
        return key in tables
    if kind == "TYPE":
        return key in enums
    if kind in ("SEQUENCE", "SEQUENCE SET"):
        return key in sequences and (kind == "SEQUENCE" or _setval(entry))
    if kind == "SCHEMA":
        return entry.tag in (LINEA_SCHEMA, PLATFORM_SCHEMA) and entry.sql in ("", f"CREATE SCHEMA {entry.tag};")
    found = _plain(entry)
    if not found or len(found) != 1:
        return False
    [statement] = found
    if kind == "SEQUENCE OWNED BY":
        start = _after(statement, "ALTER", "SEQUENCE")
        sequence, index = _qualified(statement, start) if start >= 0 else (None, 0)
        owner = statement[index + 2 :] if _words(statement[index:], 2) == ["OWNED", "BY"] else []
        return (
            sequence == key and key in sequences and len(owner) == 5
            and (owner[0].name, owner[2].name) in tables
        )
    if kind in ("DEFAULT", "CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT"):
        return _table_change_kept(entry, statement, tables)
    if kind == "INDEX":
        return _index_kept(entry, statement, tables)
    if kind == "COMMENT":
        return _comment_kept(entry, statement, tables=tables, sequences=sequences, enums=enums)
    return False


def _table_change_kept(entry: Entry, statement: list[Token], tables: set[tuple[str | None, str]]) -> bool:
    """A column default or a constraint: ALTER TABLE [ONLY] t ALTER COLUMN c SET DEFAULT ... /
    ADD CONSTRAINT ..., on a table linea restores (and referencing only such tables)."""
    start = _after(statement, "ALTER", "TABLE", "[ONLY]")
    table, index = _qualified(statement, start) if start >= 0 else (None, 0)
    words = _words(statement[index:], 4)
    if table not in tables or table != (entry.schema, entry.table):
        return False
    if entry.kind == "DEFAULT":
        return words[:2] == ["ALTER", "COLUMN"] and words[3:4] == ["SET"]
    if words[:2] != ["ADD", "CONSTRAINT"]:
        return False
    referenced = [
        _qualified(statement, position + 1)[0] for position, token in enumerate(statement) if token.word == "REFERENCES"
    ]
    return all(target in tables for target in referenced)


def _index_kept(entry: Entry, statement: list[Token], tables: set[tuple[str | None, str]]) -> bool:
    """CREATE [UNIQUE] INDEX i ON [ONLY] t USING method (...), on a table linea restores."""
    start = _after(statement, "CREATE", "[UNIQUE]", "INDEX")
    if start < 0 or statement[start].name != entry.tag or _words(statement[start + 1 :], 1) != ["ON"]:
        return False
    index = start + 2 + (statement[start + 2].word == "ONLY")
    table, index = _qualified(statement, index)
    return (
        table in tables and table[0] == entry.schema and _words(statement[index:], 1) == ["USING"]
        and statement[index + 1].word in ("BTREE", "HASH", "GIN", "GIST", "BRIN", "SPGIST")
    )


def _setval(entry: Entry) -> bool:
    return bool(
        re.fullmatch(r"SELECT pg_catalog\.setval\('[^'\n]+', -?\d+, (true|false)\);", entry.sql)
    )


def _comment_kept(
    entry: Entry, statement: list[Token], *, tables: set[tuple[str | None, str]],
    sequences: set[tuple[str | None, str]], enums: set[tuple[str | None, str]],
) -> bool:
    """A comment on a table, column, index, constraint, sequence, type or schema linea restores."""
    if _words(statement, 2) != ["COMMENT", "ON"] or statement[-1].kind != "string" or statement[-2].word != "IS":
        return False
    what, _, target = entry.tag.partition(" ")
    schema = entry.schema
    if what == "TABLE" or what == "COLUMN":
        return (schema, target.split(".", 1)[0]) in tables
    if what == "CONSTRAINT":
        return (schema, target.rsplit(" ON ", 1)[-1]) in tables
    if what == "SEQUENCE":
        return (schema, target) in sequences
    if what == "TYPE":
        return (schema, target) in enums
    if what == "SCHEMA":
        return target in (LINEA_SCHEMA, PLATFORM_SCHEMA)
    if what == "INDEX":
        return schema == PLATFORM_SCHEMA
    return False
