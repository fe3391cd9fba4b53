"""audit log append-only: triggers reject UPDATE, DELETE and TRUNCATE on audit_logs

The audit trail must hold even against a psql session or another application writing to the
database, so the rule lives in PostgreSQL, not in linea. A row trigger rejects UPDATE and DELETE;
row triggers do not fire on TRUNCATE, so a statement trigger rejects that.

The one exception is the GDPR erasure scrub (`linea users anonymize`): it clears IP addresses and
user agents and replaces personal data inside `metadata`, so it needs UPDATE. It sets the
transaction-local setting `linea.audit_scrub` to `on` (set_config(..., true)), which ends with its
transaction. Even then rows are never removed: DELETE and TRUNCATE are refused whatever the
setting, and the scrub may not change which row is which (id, action, resource, created_at).

INSERT stays free: every change linea makes appends a row, and `db seed` only inserts. The
functions live in linea's own schema, out of the platform's `public`.

Revision ID: d7ddba488c9c
Revises: 1a0c2f5e8b01
Create Date: 2026-11-25 12:00:00
"""

from collections.abc import Sequence

from linea_cli.db import ddl, guard

revision: str = "d7ddba488c9c"
down_revision: str | None = "1a0c2f5e8b01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The definitions live in linea_cli.db.guard: `db upgrade` and every restore recreate them from there.
UPGRADE = [
    guard.create_function("audit_logs_append_only"),
    guard.create_trigger("audit_logs_append_only"),
    guard.create_function("audit_logs_no_truncate"),
    guard.create_trigger("audit_logs_no_truncate"),
]

DOWNGRADE = [
    'DROP TRIGGER "audit_logs_no_truncate" ON "audit_logs"',
    "DROP FUNCTION linea.audit_logs_no_truncate()",
    'DROP TRIGGER "audit_logs_append_only" ON "audit_logs"',
    "DROP FUNCTION linea.audit_logs_append_only()",
]


def upgrade() -> None:
    ddl.begin()
    ddl.apply(UPGRADE)


def downgrade() -> None:
    ddl.begin()
    ddl.apply(DOWNGRADE)
