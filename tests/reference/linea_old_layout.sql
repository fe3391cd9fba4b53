-- The schema linea 0.x (before its bookkeeping moved to the `linea` schema) left in a database:
-- its first two migrations as they were, and its version table in public at d7ddba488c9c.
-- tests/test_platform.py upgrades it to show that such a database moves to the current layout.

CREATE TYPE "UserRole" AS ENUM ('VISITOR', 'OWNER', 'ADMIN');

CREATE TYPE "EventStatus" AS ENUM ('DRAFT', 'PUBLISHED', 'CANCELLED', 'COMPLETED');

CREATE TYPE "WaitlistStatus" AS ENUM ('PENDING', 'CONFIRMED', 'CANCELLED');

CREATE TABLE "users" (
    "id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" "UserRole" NOT NULL DEFAULT 'VISITOR',
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,
    "deleted_at" TIMESTAMP(3),
    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

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
);

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
);

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
);

CREATE TABLE "sessions" (
    "id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "expires_at" TIMESTAMP(3) NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,
    "deleted_at" TIMESTAMP(3),
    CONSTRAINT "sessions_pkey" PRIMARY KEY ("id")
);

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
);

CREATE UNIQUE INDEX "users_email_key" ON "users"("email");

CREATE UNIQUE INDEX "events_slug_key" ON "events"("slug");

CREATE UNIQUE INDEX "waitlist_entries_email_event_id_key" ON "waitlist_entries"("email", "event_id");

CREATE UNIQUE INDEX "sessions_token_key" ON "sessions"("token");

CREATE INDEX "idx_users_email" ON "users"("email");

CREATE INDEX "idx_users_role" ON "users"("role");

CREATE INDEX "idx_users_deleted_at" ON "users"("deleted_at");

CREATE INDEX "idx_events_slug" ON "events"("slug");

CREATE INDEX "idx_events_start_date" ON "events"("start_date");

CREATE INDEX "idx_events_status" ON "events"("status");

CREATE INDEX "idx_events_owner_id" ON "events"("owner_id");

CREATE INDEX "idx_events_venue_id" ON "events"("venue_id");

CREATE INDEX "idx_events_deleted_at" ON "events"("deleted_at");

CREATE INDEX "idx_waitlist_entries_event_id" ON "waitlist_entries"("event_id");

CREATE INDEX "idx_waitlist_entries_email" ON "waitlist_entries"("email");

CREATE INDEX "idx_waitlist_entries_status" ON "waitlist_entries"("status");

CREATE INDEX "idx_sessions_token" ON "sessions"("token");

CREATE INDEX "idx_sessions_expires_at" ON "sessions"("expires_at");

CREATE INDEX "idx_sessions_user_id" ON "sessions"("user_id");

CREATE INDEX "idx_audit_logs_resource" ON "audit_logs"("resource", "resource_id");

CREATE INDEX "idx_audit_logs_user_id" ON "audit_logs"("user_id");

CREATE INDEX "idx_audit_logs_created_at" ON "audit_logs"("created_at");

ALTER TABLE "events" ADD CONSTRAINT "events_owner_id_fkey" FOREIGN KEY ("owner_id")
       REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

ALTER TABLE "events" ADD CONSTRAINT "events_venue_id_fkey" FOREIGN KEY ("venue_id")
       REFERENCES "venues"("id") ON DELETE SET NULL ON UPDATE CASCADE;

ALTER TABLE "waitlist_entries" ADD CONSTRAINT "waitlist_entries_event_id_fkey" FOREIGN KEY ("event_id")
       REFERENCES "events"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

ALTER TABLE "waitlist_entries" ADD CONSTRAINT "waitlist_entries_user_id_fkey" FOREIGN KEY ("user_id")
       REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;

ALTER TABLE "sessions" ADD CONSTRAINT "sessions_user_id_fkey" FOREIGN KEY ("user_id")
       REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

ALTER TABLE "audit_logs" ADD CONSTRAINT "audit_logs_user_id_fkey" FOREIGN KEY ("user_id")
       REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;

CREATE FUNCTION linea_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now() AT TIME ZONE 'UTC';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER "users_set_updated_at" BEFORE UPDATE ON "users"
            FOR EACH ROW EXECUTE FUNCTION linea_set_updated_at();

CREATE TRIGGER "events_set_updated_at" BEFORE UPDATE ON "events"
            FOR EACH ROW EXECUTE FUNCTION linea_set_updated_at();

CREATE TRIGGER "venues_set_updated_at" BEFORE UPDATE ON "venues"
            FOR EACH ROW EXECUTE FUNCTION linea_set_updated_at();

CREATE TRIGGER "waitlist_entries_set_updated_at" BEFORE UPDATE ON "waitlist_entries"
            FOR EACH ROW EXECUTE FUNCTION linea_set_updated_at();

CREATE TRIGGER "sessions_set_updated_at" BEFORE UPDATE ON "sessions"
            FOR EACH ROW EXECUTE FUNCTION linea_set_updated_at();

CREATE FUNCTION linea_audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('linea.audit_scrub', true) = 'on' THEN
        IF NEW.id IS DISTINCT FROM OLD.id
           OR NEW.action IS DISTINCT FROM OLD.action
           OR NEW.resource IS DISTINCT FROM OLD.resource
           OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
            RAISE EXCEPTION 'the audit scrub may only clear personal data in audit_logs'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'only the GDPR erasure (linea users anonymize) may scrub personal data';
END
$$;

CREATE TRIGGER "audit_logs_append_only" BEFORE UPDATE OR DELETE ON "audit_logs"
    FOR EACH ROW EXECUTE FUNCTION linea_audit_logs_append_only();

CREATE FUNCTION linea_audit_logs_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only: TRUNCATE is not allowed'
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER "audit_logs_no_truncate" BEFORE TRUNCATE ON "audit_logs"
    FOR EACH STATEMENT EXECUTE FUNCTION linea_audit_logs_no_truncate();

CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
INSERT INTO alembic_version (version_num) VALUES ('d7ddba488c9c');
