"""create the platform schema: six tables, three enum types, indexes, updated_at triggers

The DDL is Prisma Migrate's (../shared/docs/prisma-reference/prisma_ddl.sql) with one deliberate
difference: non-unique indexes carry the data model's `idx_` names instead of Prisma's `_idx`
names, and the data model's extra indexes (role, deleted_at, owner_id, ...) are created too.
The `updated_at` trigger backs up writers that forget the column (raw SQL, psql sessions); it
leaves a value the writer set alone, so Prisma's and linea's own timestamps win.

Revision ID: 1a0c2f5e8b01
Revises:
Create Date: 2026-11-25 00:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "1a0c2f5e8b01"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES_WITH_UPDATED_AT = ("users", "events", "venues", "waitlist_entries", "sessions")

UPGRADE = [
    """CREATE TYPE "UserRole" AS ENUM ('VISITOR', 'OWNER', 'ADMIN')""",
    """CREATE TYPE "EventStatus" AS ENUM ('DRAFT', 'PUBLISHED', 'CANCELLED', 'COMPLETED')""",
    """CREATE TYPE "WaitlistStatus" AS ENUM ('PENDING', 'CONFIRMED', 'CANCELLED')""",
    """
    CREATE TABLE "users" (
        "id" TEXT NOT NULL,
        "email" TEXT NOT NULL,
        "name" TEXT,
        "role" "UserRole" NOT NULL DEFAULT 'VISITOR',
        "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        "updated_at" TIMESTAMP(3) NOT NULL,
        "deleted_at" TIMESTAMP(3),
        CONSTRAINT "users_pkey" PRIMARY KEY ("id")
    )""",
    """
    CREATE TABLE "events" (
        "id" TEXT NOT NULL,
        "title" TEXT NOT NULL,
        "slug" TEXT NOT NULL,
        "description" TEXT,
        "status" "EventStatus" NOT NULL DEFAULT 'DRAFT',
        "start_date" TIMESTAMP(3) NOT NULL,
        "end_date" TIMESTAMP(3),
        "capacity" INTEGER,
        "youtube_url" TEXT,
        "map_lat" DOUBLE PRECISION,
        "map_lng" DOUBLE PRECISION,
        "map_zoom" INTEGER,
        "owner_id" TEXT NOT NULL,
        "venue_id" TEXT,
        "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        "updated_at" TIMESTAMP(3) NOT NULL,
        "deleted_at" TIMESTAMP(3),
        CONSTRAINT "events_pkey" PRIMARY KEY ("id")
    )""",
    """
    CREATE TABLE "venues" (
        "id" TEXT NOT NULL,
        "name" TEXT NOT NULL,
        "address" TEXT NOT NULL,
        "city" TEXT NOT NULL,
        "country" TEXT NOT NULL,
        "latitude" DOUBLE PRECISION,
        "longitude" DOUBLE PRECISION,
        "website" TEXT,
        "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        "updated_at" TIMESTAMP(3) NOT NULL,
        "deleted_at" TIMESTAMP(3),
        CONSTRAINT "venues_pkey" PRIMARY KEY ("id")
    )""",
    """
    CREATE TABLE "waitlist_entries" (
        "id" TEXT NOT NULL,
        "email" TEXT NOT NULL,
        "event_id" TEXT NOT NULL,
        "user_id" TEXT,
        "status" "WaitlistStatus" NOT NULL DEFAULT 'PENDING',
        "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        "updated_at" TIMESTAMP(3) NOT NULL,
        "deleted_at" TIMESTAMP(3),
        CONSTRAINT "waitlist_entries_pkey" PRIMARY KEY ("id")
    )""",
    """
    CREATE TABLE "sessions" (
        "id" TEXT NOT NULL,
        "user_id" TEXT NOT NULL,
        "token" TEXT NOT NULL,
        "expires_at" TIMESTAMP(3) NOT NULL,
        "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        "updated_at" TIMESTAMP(3) NOT NULL,
        "deleted_at" TIMESTAMP(3),
        CONSTRAINT "sessions_pkey" PRIMARY KEY ("id")
    )""",
    """
    CREATE TABLE "audit_logs" (
        "id" TEXT NOT NULL,
        "action" TEXT NOT NULL,
        "resource" TEXT NOT NULL,
        "resource_id" TEXT NOT NULL,
        "user_id" TEXT,
        "ip_address" TEXT,
        "user_agent" TEXT,
        "metadata" JSONB,
        "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        CONSTRAINT "audit_logs_pkey" PRIMARY KEY ("id")
    )""",
    # Unique indexes, named as Prisma names them.
    """CREATE UNIQUE INDEX "users_email_key" ON "users"("email")""",
    """CREATE UNIQUE INDEX "events_slug_key" ON "events"("slug")""",
    """CREATE UNIQUE INDEX "waitlist_entries_email_event_id_key" ON "waitlist_entries"("email", "event_id")""",
    """CREATE UNIQUE INDEX "sessions_token_key" ON "sessions"("token")""",
    # Performance indexes, named as the data model names them.
    """CREATE INDEX "idx_users_email" ON "users"("email")""",
    """CREATE INDEX "idx_users_role" ON "users"("role")""",
    """CREATE INDEX "idx_users_deleted_at" ON "users"("deleted_at")""",
    """CREATE INDEX "idx_events_slug" ON "events"("slug")""",
    """CREATE INDEX "idx_events_start_date" ON "events"("start_date")""",
    """CREATE INDEX "idx_events_status" ON "events"("status")""",
    """CREATE INDEX "idx_events_owner_id" ON "events"("owner_id")""",
    """CREATE INDEX "idx_events_venue_id" ON "events"("venue_id")""",
    """CREATE INDEX "idx_events_deleted_at" ON "events"("deleted_at")""",
    """CREATE INDEX "idx_waitlist_entries_event_id" ON "waitlist_entries"("event_id")""",
    """CREATE INDEX "idx_waitlist_entries_email" ON "waitlist_entries"("email")""",
    """CREATE INDEX "idx_waitlist_entries_status" ON "waitlist_entries"("status")""",
    """CREATE INDEX "idx_sessions_token" ON "sessions"("token")""",
    """CREATE INDEX "idx_sessions_expires_at" ON "sessions"("expires_at")""",
    """CREATE INDEX "idx_sessions_user_id" ON "sessions"("user_id")""",
    """CREATE INDEX "idx_audit_logs_resource" ON "audit_logs"("resource", "resource_id")""",
    """CREATE INDEX "idx_audit_logs_user_id" ON "audit_logs"("user_id")""",
    """CREATE INDEX "idx_audit_logs_created_at" ON "audit_logs"("created_at")""",
    # Foreign keys, with Prisma's names and actions.
    """ALTER TABLE "events" ADD CONSTRAINT "events_owner_id_fkey" FOREIGN KEY ("owner_id")
       REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE""",
    """ALTER TABLE "events" ADD CONSTRAINT "events_venue_id_fkey" FOREIGN KEY ("venue_id")
       REFERENCES "venues"("id") ON DELETE SET NULL ON UPDATE CASCADE""",
    """ALTER TABLE "waitlist_entries" ADD CONSTRAINT "waitlist_entries_event_id_fkey" FOREIGN KEY ("event_id")
       REFERENCES "events"("id") ON DELETE RESTRICT ON UPDATE CASCADE""",
    """ALTER TABLE "waitlist_entries" ADD CONSTRAINT "waitlist_entries_user_id_fkey" FOREIGN KEY ("user_id")
       REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE""",
    """ALTER TABLE "sessions" ADD CONSTRAINT "sessions_user_id_fkey" FOREIGN KEY ("user_id")
       REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE""",
    """ALTER TABLE "audit_logs" ADD CONSTRAINT "audit_logs_user_id_fkey" FOREIGN KEY ("user_id")
       REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE""",
    """
    CREATE FUNCTION linea_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
            NEW.updated_at := now() AT TIME ZONE 'UTC';
        END IF;
        RETURN NEW;
    END
    $$""",
    *(
        f"""CREATE TRIGGER "{table}_set_updated_at" BEFORE UPDATE ON "{table}"
            FOR EACH ROW EXECUTE FUNCTION linea_set_updated_at()"""
        for table in TABLES_WITH_UPDATED_AT
    ),
]

DOWNGRADE = [
    # Dropping the tables drops their indexes, constraints and triggers with them.
    'DROP TABLE "audit_logs"',
    'DROP TABLE "sessions"',
    'DROP TABLE "waitlist_entries"',
    'DROP TABLE "events"',
    'DROP TABLE "venues"',
    'DROP TABLE "users"',
    "DROP FUNCTION linea_set_updated_at()",
    'DROP TYPE "WaitlistStatus"',
    'DROP TYPE "EventStatus"',
    'DROP TYPE "UserRole"',
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
