"""import journal: a large `waitlist import` in progress, so that it ends in all or nothing

A large `waitlist import` writes its rows in short transactions (one long one, holding the
event row's FOR KEY SHARE lock through every inserted row's foreign key check while the platform
updates that event, made each platform update leave a multixact version behind that every later
check had to walk: see benchmarks/README.md, "Heavy jobs beside live traffic"). An import in
progress is a row of `linea.imports`, deleted by the transaction that writes its last batch and
its audit row. A row left behind is an unfinished import: `waitlist import EVENT FILE --resume`
finishes it, any other `waitlist import` undoes it (the entries it wrote are named by their ids,
derived from the journal's `id_prefix` and `id_suffix`), and `db doctor` reports it.

The journal holds no address: the rows still to write are in the importer's private local file,
the entries written are in `waitlist_entries`. It has no foreign key: checking one would lock
the event row, the very thing avoided.

Revision ID: 7c4e2a9d1f30
Revises: 5f3c8e1a7b20
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

from linea_cli.db import ddl

revision: str = "7c4e2a9d1f30"
down_revision: str | None = "5f3c8e1a7b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = [
    """CREATE TABLE linea.imports (
        id text PRIMARY KEY,
        event_id text NOT NULL,
        event_slug text NOT NULL,
        source text NOT NULL,
        file_sha256 text NOT NULL,
        on_duplicate text NOT NULL,
        skip_invalid boolean NOT NULL,
        rows integer NOT NULL,
        invalid integer NOT NULL,
        valid integer NOT NULL,
        to_write integer NOT NULL,
        ignored_columns text[] NOT NULL DEFAULT '{}',
        id_prefix text NOT NULL,
        id_suffix text NOT NULL,
        written integer NOT NULL DEFAULT 0,
        inserted integer NOT NULL DEFAULT 0,
        updated integer NOT NULL DEFAULT 0,
        now timestamp(3) NOT NULL,
        started_by text,
        started_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
]

DOWNGRADE = ["DROP TABLE linea.imports"]


def upgrade() -> None:
    ddl.begin()
    ddl.apply(UPGRADE)


def downgrade() -> None:
    ddl.begin()
    ddl.apply(DOWNGRADE)
