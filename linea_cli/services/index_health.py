"""`linea db indexes`: each index of the platform's tables, its size and use, and what is wrong with it.

Verdicts, each for an admin to act on:
- unused: not unique (a unique index enforces a rule even when never read), valid, and not scanned
  once since the statistics were reset (`pg_stat_database.stats_reset`: their age is reported,
  since "never scanned" in the hour after a reset means nothing). Scans on replicas are not counted.
- duplicate: PgHero's rule (ankane/pghero, `duplicate_indexes`): another valid index on the same
  table, of the same access method, whose columns begin with this one's; an identical pair reports
  the one whose name sorts last. Where PgHero passes over indexes on expressions or with a predicate,
  linea compares them too: the leading columns' definitions (expressions, operator classes,
  collations, sort orders included) must match, and so must the predicate. A unique index is never
  the duplicate (it enforces a constraint) but may be what covers one.
- invalid: left by a failed `CREATE INDEX CONCURRENTLY`; still maintained on every write, never read.
- bloated: the estimated free space (`bloat_bytes`) is at least half the index and 1 MiB.

And per table: read mostly by sequential scans (PgHero's rule: at least 10,000 live rows and
under 95% of its scans by an index).

Every read goes through `services.monitoring` (read-only, short lock and statement timeouts): a
read that cannot run is named in `notes` and the rest still reports.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from linea_cli.services.monitoring import Blocked, monitoring_connection, probe
from linea_cli.services.statement_text import mask_statement

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from linea_cli.db.engine import Database

UNUSED, DUPLICATE, INVALID, BLOATED = "UNUSED", "DUPLICATE", "INVALID", "BLOATED"  # upper case, as linea prints enum values
# PgHero's "missing index" rule for a table read by sequential scans.
SEQUENTIAL_MIN_ROWS = 10_000
SEQUENTIAL_MAX_INDEX_SHARE = 95
# An estimate is an estimate: only a large share of a large enough index is called bloated.
BLOATED_SHARE = 0.5
BLOATED_MIN_BYTES = 1024 * 1024

# B-tree page layout (PostgreSQL's defaults): what a page holds besides index tuples, the size of
# an index tuple's header and of its line pointer, the alignment, and the leaf fill factor.
_PAGE_HEADER = 24
_BTREE_SPECIAL = 16
_TUPLE_HEADER = 8
_LINE_POINTER = 4
_MAXALIGN = 8
_BTREE_FILLFACTOR = 90

# Only catalog columns, never a function that deparses: pg_get_indexdef and pg_get_expr lock the
# table, which a deploy's ALTER TABLE may hold; the verdicts need no lock. Each column is compared
# as the catalog stores it: the table's column number (0: an expression, in `expressions`), its
# operator class, collation and sort options (DESC, NULLS FIRST); expressions and the predicate as
# the server's node trees (`_node_text`).
_INDEXES = """
SELECT t.relname AS "table", c.relname AS "index", i.indexrelid AS oid, i.indrelid AS table_oid,
       coalesce(s.idx_scan, 0) AS scans, i.indisunique AS is_unique, i.indisprimary AS is_primary,
       i.indisvalid AS valid, am.amname AS method, i.indnkeyatts AS key_count,
       i.indkey::int2[] AS attributes, i.indclass::oid[] AS classes, i.indcollation::oid[] AS collations,
       i.indoption::int2[] AS options, i.indexprs::text AS expressions, i.indpred::text AS predicate,
       c.relpages AS pages, c.reltuples AS tuples,
       coalesce((SELECT option_value::int FROM pg_options_to_table(c.reloptions) WHERE option_name = 'fillfactor'),
                %(fillfactor)s) AS fillfactor
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_am am ON am.oid = c.relam
  LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
 WHERE n.nspname = current_schema() AND t.relkind IN ('r', 'p', 'm')
 ORDER BY t.relname, c.relname
""".replace("%(fillfactor)s", str(_BTREE_FILLFACTOR))

# The definitions people read, in a read of their own (these functions lock the table).
_DEFINITIONS = """
SELECT i.indexrelid AS oid, pg_get_indexdef(i.indexrelid) AS definition
  FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = current_schema() AND t.relkind IN ('r', 'p', 'm') AND (:table IS NULL OR t.oid = :table)
"""
# A node tree's `:location N` is where its text stood in the statement that made it: two indexes
# on the same expression, created by two statements, differ only there.
_LOCATION = re.compile(r":location -?\d+")

# Sizes in a read of their own: pg_relation_size takes a lock on the index, which a DDL statement
# may hold; then the catalog's page counts (as of the last VACUUM or ANALYZE) stand in.
_SIZES = """
SELECT i.indexrelid AS oid, pg_relation_size(i.indexrelid) AS size
  FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = current_schema() AND t.relkind IN ('r', 'p', 'm')
"""

# What an index tuple's data weighs: each plain column's average width and share of NULLs from
# the planner's statistics (pg_stats, filled by ANALYZE); an expression column has none here.
_WIDTHS = """
SELECT i.indexrelid AS oid, k.attnum, s.avg_width, s.null_frac
  FROM pg_index i
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 CROSS JOIN LATERAL unnest(i.indkey::int2[]) AS k(attnum)
  LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
  LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = t.relname AND s.attname = a.attname
                      AND NOT s.inherited
 WHERE n.nspname = current_schema() AND t.relkind IN ('r', 'p', 'm')
"""

_SEQUENTIAL = f"""
SELECT relname AS "table", n_live_tup AS live_rows, seq_scan AS sequential_scans,
       coalesce(idx_scan, 0) AS index_scans, seq_tup_read AS rows_read_sequentially
  FROM pg_stat_user_tables
 WHERE schemaname = current_schema() AND n_live_tup >= {SEQUENTIAL_MIN_ROWS}
   AND seq_scan + coalesce(idx_scan, 0) > 0
   AND 100 * coalesce(idx_scan, 0) < {SEQUENTIAL_MAX_INDEX_SHARE} * (seq_scan + coalesce(idx_scan, 0))
 ORDER BY n_live_tup DESC, relname
"""


# The statement most likely behind a table's sequential scans, when pg_stat_statements is there:
# of this database's reads and writes that name the table, the one that took the most time.
_CAUSE = r"""
SELECT query, calls FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND query ~* '^\s*(select|update|delete|with)\M' AND query ~* :pattern
 ORDER BY total_exec_time DESC LIMIT 1
"""


@dataclass
class IndexReport:
    """What `db indexes` shows: one row per index (`indexes`), the tables read mostly by
    sequential scans, when the statistics began (None: never reset, or unknown) and how long
    ago, and the reads that could not be made (`notes`)."""

    statistics_reset: datetime | None
    statistics_age_seconds: int | None
    indexes: list[dict[str, Any]]
    sequential_scan_tables: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def index_report(database: Database, *, since: datetime | None = None) -> IndexReport:
    """Each index of the tables in the database's schema (the platform's), with its verdicts;
    with `since`, its scans are those since the statistics snapshot taken then
    (`query_stats.index_scans_since`), and UNUSED means not scanned since."""
    with monitoring_connection(database) as connection:
        return read_index_report(connection, since=since)


def read_index_report(connection: Connection, *, since: datetime | None = None) -> IndexReport:
    """`index_report` on a monitoring connection (`services.monitoring.monitoring_connection`)."""
    notes: list[str] = []
    found = probe(connection, lambda c: [dict(row._mapping) for row in c.execute(text(_INDEXES))])
    if isinstance(found, Blocked):
        # Without the catalog there is nothing to report: the caller says why.
        raise IndexesUnreadable(found.reason)
    window = _scans_since(connection, found, since, notes)
    reset = probe(connection, lambda c: c.execute(text(
        "SELECT stats_reset, extract(epoch FROM now() - stats_reset)::bigint AS age FROM pg_stat_database "
        "WHERE datname = current_database()"
    )).first())
    if isinstance(reset, Blocked):
        notes.append(f"statistics' age: {reset.reason}")
        reset = None
    definitions = _definitions(connection, found, notes)
    sizes = probe(connection, lambda c: {oid: size for oid, size in c.execute(text(_SIZES))})
    block_size = int(connection.execute(text("SELECT current_setting('block_size')")).scalar_one())
    if isinstance(sizes, Blocked):
        notes.append(f"sizes are the catalog's estimates (as of the last VACUUM or ANALYZE): {sizes.reason}")
        sizes = {row["oid"]: row["pages"] * block_size for row in found}
    widths = probe(connection, lambda c: c.execute(text(_WIDTHS)).all())
    if isinstance(widths, Blocked):
        notes.append(f"no bloat estimate: {widths.reason}")
        widths = []
    sequential = probe(connection, lambda c: [dict(row._mapping) for row in c.execute(text(_SEQUENTIAL))])
    if isinstance(sequential, Blocked):
        notes.append(f"tables read by sequential scans: {sequential.reason}")
        sequential = []
    by_index: dict[int, list[tuple[int | None, float]]] = {}
    for oid, _attnum, width, null_share in widths:
        by_index.setdefault(oid, []).append((width, null_share or 0.0))
    rows = [
        _row(index, sizes.get(index["oid"]), by_index.get(index["oid"], []), block_size, definitions.get(index["oid"]))
        for index in found
    ]
    _mark_window(found, rows, window)
    _mark_duplicates(rows, found)
    for table in sequential:
        scans = table["sequential_scans"] + table["index_scans"]
        table["index_scan_share"] = round(100 * table["index_scans"] / scans, 1)
        table["query"] = table["query_calls"] = None
    if sequential and probe(connection, lambda c: c.execute(text("SELECT to_regclass('pg_stat_statements')")).scalar()):
        for table in sequential:
            # The table's name as a whole word, quoted or not (a regular expression: escaped).
            pattern = r'(^|[^\w"])"?' + re.sub(r"(\W)", r"\\\1", table["table"]) + r'"?($|[^\w"])'
            cause = probe(connection, lambda c, pattern=pattern: c.execute(text(_CAUSE), {"pattern": pattern}).first())
            if cause is not None and not isinstance(cause, Blocked):
                table["query"], table["query_calls"] = mask_statement(cause.query), cause.calls
    return IndexReport(
        statistics_reset=reset.stats_reset if reset is not None else None,
        statistics_age_seconds=reset.age if reset is not None else None,
        indexes=rows,
        sequential_scan_tables=sequential,
        notes=notes,
    )


class IndexesUnreadable(Exception):
    """The catalog of indexes could not be read (a lock, a privilege): the reason, in words."""


def _definitions(connection: Connection, indexes: Sequence[Mapping[str, Any]], notes: list[str]) -> dict[int, str]:
    """Each index's CREATE INDEX statement: all at once, else table by table, a table whose lock
    is held (a DDL statement) leaving its indexes without one, said in `notes`."""

    def read(table: int | None) -> Callable[[Connection], dict[int, str]]:
        return lambda c: {oid: definition for oid, definition in c.execute(text(_DEFINITIONS), {"table": table})}

    every = probe(connection, read(None))
    if not isinstance(every, Blocked):
        return every
    found: dict[int, str] = {}
    tables = {index["table_oid"]: index["table"] for index in indexes}
    for oid, name in sorted(tables.items(), key=lambda item: item[1]):
        some = probe(connection, read(oid))
        if isinstance(some, Blocked):
            notes.append(f"{name}: no index definitions, {some.reason}")
        else:
            found.update(some)
    return found


def _scans_since(
    connection: Connection, found: list[dict[str, Any]], since: datetime | None, notes: list[str]
) -> dict[int, dict[str, Any]] | None:
    """Each index's scans since the snapshot taken at `since` put in `found` in place of those
    since the statistics' reset; returns the counts by index oid (`query_stats.index_scans_since`),
    None without `since`."""
    from linea_cli.services.query_stats import index_scans_since

    if since is None:
        return None
    counted, window_notes = index_scans_since(connection, since)
    notes.extend(window_notes)
    window = {row["oid"]: row for row in counted}
    for index in found:
        counted_since = window.get(index["oid"])
        if counted_since is not None:
            index["scans"] = counted_since["scans"]
    return window


def _mark_window(
    found: list[dict[str, Any]], rows: list[dict[str, Any]], window: dict[int, dict[str, Any]] | None
) -> None:
    """With --since, each row says from when its scans count (`counted_from`) and whether from a
    later moment than the snapshot (`partial`: a reset since, or an index made since)."""
    if window is None:
        return
    for index, row in zip(found, rows, strict=True):
        counted_since = window.get(index["oid"], {"counted_from": None, "partial": True})
        row["counted_from"], row["partial"] = counted_since["counted_from"], counted_since["partial"]


def _row(
    index: Mapping[str, Any], size: int | None, widths: Sequence[tuple[int | None, float]], block_size: int,
    definition: str | None,
) -> dict[str, Any]:
    verdicts = []
    if not index["valid"]:
        verdicts.append(INVALID)
    elif not index["is_unique"] and index["scans"] == 0:
        verdicts.append(UNUSED)
    bloat = _bloat_estimate(index, size, widths, block_size)
    if bloat is not None and size and bloat >= BLOATED_MIN_BYTES and bloat >= BLOATED_SHARE * size:
        verdicts.append(BLOATED)
    return {
        "table": index["table"],
        "index": index["index"],
        "size_bytes": size,
        "scans": index["scans"],
        "bloat_bytes": bloat,
        "verdicts": verdicts,
        "covered_by": None,
        "unique": index["is_unique"],
        "primary": index["is_primary"],
        "valid": index["valid"],
        "definition": definition,
    }


def _bloat_estimate(
    index: Mapping[str, Any], size: int | None, widths: Sequence[tuple[int | None, float]], block_size: int
) -> int | None:
    """Bytes of the B-tree `index` beyond what its rows need when packed at its fill factor: its
    size less the pages its tuples would fill (the tuple count and column widths as the planner's
    statistics know them). None where the statistics cannot tell (no ANALYZE yet, an expression,
    another access method)."""
    tuples = index["tuples"]
    if index["method"] != "btree" or size is None or tuples is None or tuples < 0 or not widths:
        return None
    if any(width is None for width, _ in widths):
        return None
    data = sum(width * (1 - null_share) for width, null_share in widths)  # type: ignore[operator]
    header = _TUPLE_HEADER + (_MAXALIGN if any(null_share > 0 for _, null_share in widths) else 0)
    per_tuple = math.ceil((header + data) / _MAXALIGN) * _MAXALIGN + _LINE_POINTER
    usable = (block_size - _PAGE_HEADER - _BTREE_SPECIAL) * index["fillfactor"] / 100
    needed_pages = math.ceil(tuples * per_tuple / usable) + 1  # and the metapage
    return max(0, size - needed_pages * block_size)


def _mark_duplicates(rows: list[dict[str, Any]], indexes: Sequence[Mapping[str, Any]]) -> None:
    """Mark each row whose index another covers (PgHero's rule, with expressions and predicates
    compared rather than passed over; see the module's docstring)."""
    for row, index in zip(rows, indexes, strict=True):
        if index["is_unique"] or index["is_primary"] or not index["valid"]:
            continue
        keys, included = _keys(index), _included(index)
        for other in indexes:
            if other is index or other["table"] != index["table"] or not other["valid"]:
                continue
            if other["method"] != index["method"] or _node_text(other["predicate"]) != _node_text(index["predicate"]):
                continue
            other_keys = _keys(other)
            if other_keys[: len(keys)] != keys or not included <= {column[0] for column in other_keys} | _included(other):
                continue
            identical = other_keys == keys and _included(other) == included
            # Of two identical indexes the one whose name sorts last goes, unless the other is unique.
            if identical and not other["is_unique"] and index["index"] < other["index"]:
                continue
            row["verdicts"].append(DUPLICATE)
            row["covered_by"] = other["index"]
            break


def _keys(index: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The key columns as the catalog has them: (column number or expression, operator class,
    collation, sort options)."""
    return _columns(index)[: index["key_count"]]


def _included(index: Mapping[str, Any]) -> set[Any]:
    """The INCLUDE columns (numbers, or expressions)."""
    return {column[0] for column in _columns(index)[index["key_count"]:]}


def _columns(index: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    expressions = iter(_node_list(index["expressions"]))
    return [
        (next(expressions, None) if attribute == 0 else attribute, cls, collation, option)
        for attribute, cls, collation, option in zip(
            index["attributes"], index["classes"], index["collations"], index["options"], strict=True
        )
    ]


def _node_text(tree: str | None) -> str | None:
    return None if tree is None else _LOCATION.sub("", tree)


def _node_list(tree: str | None) -> list[str]:
    """The items of a node list as the server prints it, `({FUNCEXPR ...} {OPEXPR ...})`, each
    without its locations (braces inside tokens are escaped with a backslash)."""
    if tree is None:
        return []
    items: list[str] = []
    depth, start, escaped = 0, 0, False
    for at, character in enumerate(tree):
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == "{":
            if depth == 0:
                start = at
            depth += 1
        elif character == "}":
            depth -= 1
            if depth == 0:
                items.append(_LOCATION.sub("", tree[start : at + 1]))
    return items
