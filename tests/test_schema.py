"""linea's schema is the one Prisma expects, and the migrations behave.

One database is built from Prisma's own DDL, one with `linea db upgrade`; their catalogs must be
equal, names included, but for what linea adds on purpose: its indexes (linea_cli.db.indexes),
the audit log's append-only triggers, and its bookkeeping in the `linea` schema.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL
from sqlmodel import SQLModel

import linea_cli.db.models  # noqa: F401
from linea_cli.db import migrate
from tests.harness import CliRun, plain_url

REFERENCE = Path(__file__).parent / "reference"
SHARED_DOCS = Path(__file__).resolve().parents[2] / "shared" / "docs"
_CREATE_INDEX = re.compile(r"CREATE INDEX (idx_\w+) ON (\w+)\(([\w, ]+)\);")


def data_model_indexes(text: str) -> dict[str, tuple[str, str]]:
    """The data model's indexes, name -> (table, definition as pg_get_indexdef prints it after USING)."""
    found = _CREATE_INDEX.findall(text)
    assert len(found) == text.count("CREATE INDEX"), "a CREATE INDEX this test cannot read"
    return {name: (table, f"btree ({columns})") for name, table, columns in found}


# The "Performance Indexes" of ../shared/docs/data-model.md.
DATA_MODEL_INDEXES = data_model_indexes(REFERENCE.joinpath("data_model_indexes.sql").read_text())
# What linea adds to what Prisma made: the data model's indexes Prisma has no index with the same
# definition of, and the lower(email) indexes behind case-insensitive lookups.
LINEA_INDEXES = {
    "idx_users_role": ("users", "btree (role)"),
    "idx_users_deleted_at": ("users", "btree (deleted_at)"),
    "idx_events_owner_id": ("events", "btree (owner_id)"),
    "idx_events_venue_id": ("events", "btree (venue_id)"),
    "idx_events_deleted_at": ("events", "btree (deleted_at)"),
    "idx_waitlist_entries_status": ("waitlist_entries", "btree (status)"),
    "idx_sessions_user_id": ("sessions", "btree (user_id)"),
    "idx_users_lower_email": ("users", "btree (lower(email))"),
    "idx_waitlist_entries_lower_email": ("waitlist_entries", "btree (lower(email), event_id)"),
}

# What linea adds on purpose, beyond Prisma's DDL.
LINEA_TRIGGERS = {("audit_logs", "audit_logs_append_only"), ("audit_logs", "audit_logs_no_truncate")}
LINEA_FUNCTIONS = {"audit_logs_append_only", "audit_logs_no_truncate"}
LINEA_TABLES = {"alembic_version", "objects", "imports", "stat_snapshots", "stat_statements", "stat_tables", "stat_indexes"}


def catalog(url: URL) -> dict[str, object]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        def rows(query: str) -> list[tuple]:
            return sorted(tuple(r) for r in conn.execute(sa.text(query)))

        snapshot = {
            "tables": rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"),
            "columns": rows(
                "SELECT table_name, column_name, data_type, udt_name, datetime_precision, is_nullable, "
                "column_default FROM information_schema.columns WHERE table_schema = 'public'"
            ),
            "enums": rows(
                "SELECT t.typname, e.enumsortorder, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public'"
            ),
            "constraints": rows(
                "SELECT c.conrelid::regclass::text, c.conname, c.contype::text, pg_get_constraintdef(c.oid) "
                "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'"
            ),
            "unique_indexes": rows(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                "AND indexdef LIKE 'CREATE UNIQUE INDEX%'"
            ),
            "plain_indexes": rows(
                "SELECT tablename, indexname, regexp_replace(indexdef, '^.* USING ', '') FROM pg_indexes "
                "WHERE schemaname = 'public' AND indexdef NOT LIKE 'CREATE UNIQUE INDEX%'"
            ),
            "triggers": rows(
                "SELECT event_object_table, trigger_name FROM information_schema.triggers "
                "WHERE trigger_schema = 'public' GROUP BY 1, 2"
            ),
            "statement_triggers": rows(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT t.tgisinternal"
            ),
            "functions": rows(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
            ),
            "linea_functions": rows(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'linea'"
            ),
            "linea_tables": rows("SELECT tablename FROM pg_tables WHERE schemaname = 'linea'"),
            "schemas": rows("SELECT nspname FROM pg_namespace WHERE nspname IN ('public', 'linea')"),
            "types": rows(
                "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = 'public' AND t.typtype = 'e'"
            ),
        }
    engine.dispose()
    return snapshot


@pytest.fixture
def prisma_catalog(empty_database_url: URL) -> dict[str, object]:
    ddl = REFERENCE.joinpath("prisma_ddl.sql").read_text()
    engine = sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(ddl)
    engine.dispose()
    return catalog(empty_database_url)


@pytest.fixture
def linea_catalog(database_url: URL) -> dict[str, object]:
    return catalog(database_url)


def test_reference_copies_match_the_shared_contract() -> None:
    if not SHARED_DOCS.exists():
        pytest.skip("../shared is not beside this checkout")
    shared_ddl = SHARED_DOCS.joinpath("prisma-reference", "prisma_ddl.sql").read_text()
    assert REFERENCE.joinpath("prisma_ddl.sql").read_text() == shared_ddl
    assert data_model_indexes(SHARED_DOCS.joinpath("data-model.md").read_text()) == DATA_MODEL_INDEXES


def test_tables_columns_and_enums_match_prisma(prisma_catalog: dict, linea_catalog: dict) -> None:
    # Nothing of linea's in public: Prisma sees only the tables it knows.
    assert linea_catalog["tables"] == prisma_catalog["tables"]
    assert linea_catalog["columns"] == prisma_catalog["columns"]
    assert linea_catalog["enums"] == prisma_catalog["enums"]
    assert linea_catalog["types"] == prisma_catalog["types"]
    assert {t for (t,) in linea_catalog["linea_tables"]} == LINEA_TABLES


def test_constraints_and_unique_indexes_match_prisma(prisma_catalog: dict, linea_catalog: dict) -> None:
    # Primary keys, foreign keys with their ON DELETE / ON UPDATE actions: equal, names included.
    assert linea_catalog["constraints"] == prisma_catalog["constraints"]
    assert linea_catalog["unique_indexes"] == prisma_catalog["unique_indexes"]


def test_indexes_are_prismas_by_name_plus_linea_additions(prisma_catalog: dict, linea_catalog: dict) -> None:
    linea_plain = {name: (table, definition) for table, name, definition in linea_catalog["plain_indexes"]}
    prisma_plain = {name: (table, definition) for table, name, definition in prisma_catalog["plain_indexes"]}
    assert linea_plain == prisma_plain | LINEA_INDEXES
    # The data model's that Prisma lacks are exactly linea's, by the reference's definitions.
    prisma_definitions = set(prisma_plain.values()) | {
        (table, re.sub(r"^.* USING ", "", definition)) for table, _, definition in prisma_catalog["unique_indexes"]
    }
    lacking = {name for name, spec in DATA_MODEL_INDEXES.items() if spec not in prisma_definitions}
    assert lacking == set(LINEA_INDEXES) - {"idx_users_lower_email", "idx_waitlist_entries_lower_email"}
    assert {name: LINEA_INDEXES[name] for name in lacking} == {name: DATA_MODEL_INDEXES[name] for name in lacking}
    # linea never holds two non-unique indexes with the same definition.
    assert len(set(linea_plain.values())) == len(linea_plain)


def test_every_data_model_index_exists_by_definition(linea_catalog: dict) -> None:
    plain = {(table, definition) for table, _, definition in linea_catalog["plain_indexes"]}
    unique = {(table, re.sub(r"^.* USING ", "", definition)) for table, _, definition in linea_catalog["unique_indexes"]}
    for name, spec in DATA_MODEL_INDEXES.items():
        assert spec in plain | unique, f"{name} is not satisfied"
    assert len(DATA_MODEL_INDEXES) == 18


def test_only_the_audit_triggers_are_added_and_functions_live_in_linea(prisma_catalog: dict, linea_catalog: dict) -> None:
    assert prisma_catalog["statement_triggers"] == []
    assert set(linea_catalog["statement_triggers"]) == LINEA_TRIGGERS
    assert linea_catalog["functions"] == []
    assert {f for (f,) in linea_catalog["linea_functions"]} == LINEA_FUNCTIONS


# --- migrations: what pytest-alembic's standard tests prove ---------------------------------


def test_single_head() -> None:
    from linea_cli.db.revision import HEAD_REVISION

    assert migrate.script_directory().get_heads() == [HEAD_REVISION]


def test_upgrade_from_base_to_head_then_every_step_down_and_up(linea: CliRun, empty_database_url: URL) -> None:
    url = ["--database-url", plain_url(empty_database_url)]
    revisions = [script.revision for script in reversed(list(migrate.script_directory().walk_revisions()))]
    before = {}
    for revision in revisions:
        linea(*url, "db", "upgrade", revision)
        before[revision] = catalog(empty_database_url)
    for index in range(len(revisions) - 1, -1, -1):
        down_to = revisions[index - 1] if index else "base"
        linea(*url, "db", "downgrade", down_to)
        if index:
            assert catalog(empty_database_url) == before[down_to]
        linea(*url, "db", "upgrade", revisions[index])
        assert catalog(empty_database_url) == before[revisions[index]], f"{revisions[index]} is not up/down consistent"
        linea(*url, "db", "downgrade", down_to)
    leftovers = catalog(empty_database_url)
    assert leftovers["tables"] == [] and leftovers["schemas"] == [("public",)]
    assert leftovers["types"] == [] and leftovers["functions"] == [] and leftovers["statement_triggers"] == []


def test_models_and_migrations_agree(database_url: URL) -> None:
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": lambda obj, name, type_, reflected, compare_to: not (
                    type_ == "table" and name == "alembic_version"
                ),
            },
        )
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []

