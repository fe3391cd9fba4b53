"""the platform schema: six tables and three enum types, exactly as Prisma Migrate creates them

The DDL is Prisma Migrate's (../shared/docs/prisma-reference/prisma_ddl.sql), names included, so
that a database linea creates and one Prisma created look the same to Prisma. On a database that
already holds the platform's tables (made by Prisma Migrate), this revision creates nothing: it
records that linea adopted the schema, after linea_cli.db.platform found it matches the data
model. Either way linea.objects remembers who made the tables, and a downgrade drops them only
if linea did.

Revision ID: 1a0c2f5e8b01
Revises:
Create Date: 2026-11-25 00:10:00
"""

from collections.abc import Sequence

from linea_cli.db import ddl
from linea_cli.db.catalog import BASELINE_ADOPTED, BASELINE_CREATED, OBJECTS_TABLE, PLATFORM_TABLES
from linea_cli.db.indexes import PRISMA_INDEXES

revision: str = "1a0c2f5e8b01"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
    # Indexes, named as Prisma names them (linea's additions come in a later revision).
    """CREATE UNIQUE INDEX "users_email_key" ON "users"("email")""",
    """CREATE UNIQUE INDEX "events_slug_key" ON "events"("slug")""",
    """CREATE INDEX "events_slug_idx" ON "events"("slug")""",
    """CREATE INDEX "events_start_date_idx" ON "events"("start_date")""",
    """CREATE INDEX "events_status_idx" ON "events"("status")""",
    """CREATE INDEX "waitlist_entries_event_id_idx" ON "waitlist_entries"("event_id")""",
    """CREATE INDEX "waitlist_entries_email_idx" ON "waitlist_entries"("email")""",
    """CREATE UNIQUE INDEX "waitlist_entries_email_event_id_key" ON "waitlist_entries"("email", "event_id")""",
    """CREATE UNIQUE INDEX "sessions_token_key" ON "sessions"("token")""",
    """CREATE INDEX "sessions_token_idx" ON "sessions"("token")""",
    """CREATE INDEX "sessions_expires_at_idx" ON "sessions"("expires_at")""",
    """CREATE INDEX "audit_logs_resource_resource_id_idx" ON "audit_logs"("resource", "resource_id")""",
    """CREATE INDEX "audit_logs_user_id_idx" ON "audit_logs"("user_id")""",
    """CREATE INDEX "audit_logs_created_at_idx" ON "audit_logs"("created_at")""",
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
]

DOWNGRADE = [
    # Dropping the tables drops their indexes, constraints and triggers with them.
    'DROP TABLE "audit_logs"',
    'DROP TABLE "sessions"',
    'DROP TABLE "waitlist_entries"',
    'DROP TABLE "events"',
    'DROP TABLE "venues"',
    'DROP TABLE "users"',
    'DROP TYPE "WaitlistStatus"',
    'DROP TYPE "EventStatus"',
    'DROP TYPE "UserRole"',
]


def upgrade() -> None:
    ddl.begin()
    catalog = ddl.catalog()
    statements: list[str | ddl.Statement] = [ddl.CREATE_OBJECTS_TABLE]
    adopting = catalog.has_platform_tables
    if not adopting:
        statements.extend(UPGRADE)
        for table in PLATFORM_TABLES:
            catalog.planned_table(table)
        for spec in PRISMA_INDEXES:
            catalog.planned_index(spec)
    statements.append(ddl.baseline_marker(created=not adopting))
    catalog.objects.add(("baseline", BASELINE_ADOPTED if adopting else BASELINE_CREATED))
    ddl.apply(statements)


def downgrade() -> None:
    ddl.begin()
    catalog = ddl.catalog()
    # Only tables linea created are ever dropped: on an adopted database they are the platform's.
    statements = list(DOWNGRADE) if catalog.baseline == BASELINE_CREATED else []
    statements.append(f"DROP TABLE {OBJECTS_TABLE}")
    if catalog.baseline == BASELINE_CREATED:
        catalog.tables.clear()
    catalog.objects.clear()
    ddl.apply(statements)
