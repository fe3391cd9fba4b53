"""Which indexes the platform's database has, by definition: Prisma's, the data model's, linea's.

An index is identified by what it indexes, not by its name: `definition` is the part of
`pg_get_indexdef()` after `USING`, exactly as PostgreSQL prints it (`btree (owner_id)`). A data
model index is satisfied by any valid index on the same table with the same definition, unique or
not, whatever it is called; linea creates one under the data model's `idx_` name only where none
exists, so it never holds a second index with the same definition.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IndexSpec:
    name: str
    table: str
    definition: str
    unique: bool = False

    @property
    def columns(self) -> list[str]:
        """The plain columns of the definition (empty for an expression index)."""
        inner = self.definition.split("(", 1)[1].rsplit(")", 1)[0]
        if "(" in inner:
            return []
        return [column.strip() for column in inner.split(",")]


# What Prisma Migrate creates from schema.prisma (tests/reference/prisma_ddl.sql), by its names.
PRISMA_INDEXES = (
    IndexSpec("users_email_key", "users", "btree (email)", unique=True),
    IndexSpec("events_slug_key", "events", "btree (slug)", unique=True),
    IndexSpec("events_slug_idx", "events", "btree (slug)"),
    IndexSpec("events_start_date_idx", "events", "btree (start_date)"),
    IndexSpec("events_status_idx", "events", "btree (status)"),
    IndexSpec("waitlist_entries_event_id_idx", "waitlist_entries", "btree (event_id)"),
    IndexSpec("waitlist_entries_email_idx", "waitlist_entries", "btree (email)"),
    IndexSpec("waitlist_entries_email_event_id_key", "waitlist_entries", "btree (email, event_id)", unique=True),
    IndexSpec("sessions_token_key", "sessions", "btree (token)", unique=True),
    IndexSpec("sessions_token_idx", "sessions", "btree (token)"),
    IndexSpec("sessions_expires_at_idx", "sessions", "btree (expires_at)"),
    IndexSpec("audit_logs_resource_resource_id_idx", "audit_logs", "btree (resource, resource_id)"),
    IndexSpec("audit_logs_user_id_idx", "audit_logs", "btree (user_id)"),
    IndexSpec("audit_logs_created_at_idx", "audit_logs", "btree (created_at)"),
)

# The "Performance Indexes" of ../shared/docs/data-model.md.
DATA_MODEL_INDEXES = (
    IndexSpec("idx_users_email", "users", "btree (email)"),
    IndexSpec("idx_users_role", "users", "btree (role)"),
    IndexSpec("idx_users_deleted_at", "users", "btree (deleted_at)"),
    IndexSpec("idx_events_slug", "events", "btree (slug)"),
    IndexSpec("idx_events_start_date", "events", "btree (start_date)"),
    IndexSpec("idx_events_status", "events", "btree (status)"),
    IndexSpec("idx_events_owner_id", "events", "btree (owner_id)"),
    IndexSpec("idx_events_venue_id", "events", "btree (venue_id)"),
    IndexSpec("idx_events_deleted_at", "events", "btree (deleted_at)"),
    IndexSpec("idx_waitlist_entries_event_id", "waitlist_entries", "btree (event_id)"),
    IndexSpec("idx_waitlist_entries_email", "waitlist_entries", "btree (email)"),
    IndexSpec("idx_waitlist_entries_status", "waitlist_entries", "btree (status)"),
    IndexSpec("idx_sessions_token", "sessions", "btree (token)"),
    IndexSpec("idx_sessions_expires_at", "sessions", "btree (expires_at)"),
    IndexSpec("idx_sessions_user_id", "sessions", "btree (user_id)"),
    IndexSpec("idx_audit_logs_resource", "audit_logs", "btree (resource, resource_id)"),
    IndexSpec("idx_audit_logs_user_id", "audit_logs", "btree (user_id)"),
    IndexSpec("idx_audit_logs_created_at", "audit_logs", "btree (created_at)"),
)

# Emails are compared without regard to case (`lower(email) = lower(:value)`): the platform keeps
# addresses as people typed them. These keep those lookups on an index at any size.
CASE_INSENSITIVE_EMAIL_INDEXES = (
    IndexSpec("idx_users_lower_email", "users", "btree (lower(email))"),
    IndexSpec("idx_waitlist_entries_lower_email", "waitlist_entries", "btree (lower(email), event_id)"),
)


def _satisfied_by_prisma(spec: IndexSpec) -> bool:
    return any(p.table == spec.table and p.definition == spec.definition for p in PRISMA_INDEXES)


# What linea adds to a database Prisma made: the data model's indexes Prisma has no equivalent of,
# and the case-insensitive email indexes.
LINEA_INDEXES = tuple(spec for spec in DATA_MODEL_INDEXES if not _satisfied_by_prisma(spec)) + CASE_INSENSITIVE_EMAIL_INDEXES
