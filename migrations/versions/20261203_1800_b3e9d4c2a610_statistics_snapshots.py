"""statistics snapshots: the server's cumulative counters kept over time, never reset

`linea db snapshot` (for cron) copies the cumulative counters of `pg_stat_statements`,
`pg_stat_user_tables` and `pg_stat_user_indexes` here, so that `db queries --since` can report
what happened between two moments without anyone calling `pg_stat_statements_reset()` (which
would wipe the statistics every other tool and person reads: pghero#325, #259). Each snapshot
also keeps the time of the last reset of those statistics and pg_stat_statements' eviction
count, so that a reset or an evicted statement between two snapshots is reported as such
rather than shown as negative numbers. Statements are kept by their ids and counters, without
their text (a difference is shown with the text pg_stat_statements has now): a snapshot of 5,000
statements is then a few hundred kilobytes, not megabytes, and holds no constant a utility
statement carried. `--keep` deletes the old ones (the rows follow their
snapshot: ON DELETE CASCADE). A snapshot is known by the time it was taken (no sequence: linea's
schema keeps to tables that a backup restores as they are), to the millisecond: the time linea
shows, which `db queries --since` takes back.

Revision ID: b3e9d4c2a610
Revises: 7c4e2a9d1f30
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

from linea_cli.db import ddl

revision: str = "b3e9d4c2a610"
down_revision: str | None = "7c4e2a9d1f30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = [
    """CREATE TABLE linea.stat_snapshots (
        taken_at timestamptz PRIMARY KEY DEFAULT date_trunc('milliseconds', clock_timestamp()),
        statements_reset_at timestamptz,
        statements_evicted bigint,
        counters_reset_at timestamptz
    )""",
    """CREATE TABLE linea.stat_statements (
        taken_at timestamptz NOT NULL REFERENCES linea.stat_snapshots (taken_at) ON DELETE CASCADE,
        queryid bigint NOT NULL,
        userid oid NOT NULL,
        toplevel boolean NOT NULL,
        role text,
        calls bigint NOT NULL,
        total_exec_time double precision NOT NULL,
        rows bigint NOT NULL,
        shared_blks_hit bigint NOT NULL,
        shared_blks_read bigint NOT NULL,
        stats_since timestamptz,
        PRIMARY KEY (taken_at, queryid, userid, toplevel)
    )""",
    """CREATE TABLE linea.stat_tables (
        taken_at timestamptz NOT NULL REFERENCES linea.stat_snapshots (taken_at) ON DELETE CASCADE,
        relid oid NOT NULL,
        schema_name text NOT NULL,
        table_name text NOT NULL,
        seq_scan bigint,
        seq_tup_read bigint,
        idx_scan bigint,
        idx_tup_fetch bigint,
        n_tup_ins bigint,
        n_tup_upd bigint,
        n_tup_del bigint,
        n_live_tup bigint,
        n_dead_tup bigint,
        size_bytes bigint,
        PRIMARY KEY (taken_at, relid)
    )""",
    """CREATE TABLE linea.stat_indexes (
        taken_at timestamptz NOT NULL REFERENCES linea.stat_snapshots (taken_at) ON DELETE CASCADE,
        indexrelid oid NOT NULL,
        schema_name text NOT NULL,
        table_name text NOT NULL,
        index_name text NOT NULL,
        idx_scan bigint,
        idx_tup_read bigint,
        idx_tup_fetch bigint,
        size_bytes bigint,
        PRIMARY KEY (taken_at, indexrelid)
    )""",
]

DOWNGRADE = [
    "DROP TABLE linea.stat_indexes",
    "DROP TABLE linea.stat_tables",
    "DROP TABLE linea.stat_statements",
    "DROP TABLE linea.stat_snapshots",
]


def upgrade() -> None:
    ddl.begin()
    ddl.apply(UPGRADE)


def downgrade() -> None:
    ddl.begin()
    ddl.apply(DOWNGRADE)
