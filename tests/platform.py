"""A database as the platform's API leaves it: Prisma Migrate's DDL, `_prisma_migrations`, and rows
written the way the platform writes them (cuid ids, addresses as people typed them, raw JWTs in
`sessions.token`, its own audit actions and JSON shapes, names from public sign-up)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from pathlib import Path

import psycopg

from tests.harness import libpq_conninfo

REFERENCE_DDL = Path(__file__).parent / "reference" / "prisma_ddl.sql"
# Migrations the platform's Prisma made after linea adopted its database, as `prisma migrate dev`
# writes them (prisma/migrations/<name>/migration.sql).
LATER_MIGRATIONS = Path(__file__).parent / "reference" / "prisma_migrations"
# users.phone, users.locale NOT NULL DEFAULT 'en', categories (created_by: an address),
# events.category_id and events.tags, notification_preferences (a foreign key to users.id).
CATEGORIES_MIGRATION = "20260910101500_categories_phone_locale"
# waitlist_entries.source TEXT NOT NULL without a default: linea cannot fill it.
WAITLIST_SOURCE_MIGRATION = "20261105140000_waitlist_source"

# Prisma Migrate's own bookkeeping table, as `prisma migrate deploy` creates it.
PRISMA_MIGRATIONS_DDL = """
CREATE TABLE "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)"""

MIGRATION_NAMES = ("20250101093000_init", "20250302120000_event_video", "20250615081500_waitlist_status")

VERA = {"id": "clv0usr100000001abcdefghi", "email": "Vera.Visitor@Example.com", "name": "Vera Visitor", "role": "VISITOR"}
OLGA = {"id": "clv0usr200000002abcdefghi", "email": "Olga.Owner@Example.COM", "name": "Olga \x1b[31mOwner", "role": "OWNER"}
ADAM = {"id": "clv0usr300000003abcdefghi", "email": "ADAM@example.com", "name": "Adam Admin", "role": "ADMIN"}
MAL = {"id": "clv0usr400000004abcdefghi", "email": "mal@Example.com", "name": "Mal\x1b]0;PWNED\x07lory\x1b[2J", "role": "VISITOR"}
PLATFORM_USERS = (VERA, OLGA, ADAM, MAL)

VENUE_ID = "clv0venu00000001abcdefghi"
EVENT_ID = "clv0evnt00000001abcdefghi"
EVENT_SLUG = "platform-launch-party"
PAST_EVENT_ID = "clv0evnt00000002abcdefghi"


def jwt_for(user: dict) -> str:
    """A token shaped like the platform's: header.payload.signature, the payload naming the user."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': user['id'], 'email': user['email']})}.c2lnbmF0dXJl"


def build_platform_database(url, *, rows: bool = True) -> None:  # noqa: ANN001
    """Create Prisma's schema in the (empty) database at `url`, then fill it as the platform does."""
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
        conn.execute(REFERENCE_DDL.read_text())
        conn.execute(PRISMA_MIGRATIONS_DDL)
        for number, name in enumerate(MIGRATION_NAMES):
            conn.execute(
                "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count, started_at) "
                "VALUES (%s, %s, now() - make_interval(days => %s), %s, 1, now() - make_interval(days => %s))",
                (f"00000000-0000-4000-8000-00000000000{number}", "0" * 64, 30 - number, name, 30 - number),
            )
        if rows:
            fill_platform_rows(conn)


def apply_prisma_migration(url, name: str) -> None:  # noqa: ANN001
    """Apply a later migration as `prisma migrate deploy` does: a `_prisma_migrations` row started,
    the file's statements run, then the row finished with the file's SHA-256 checksum."""
    script = (LATER_MIGRATIONS / name / "migration.sql").read_text()
    row_id = str(uuid.uuid4())
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count) "
            "VALUES (%s, %s, %s, now(), 0)",
            (row_id, hashlib.sha256(script.encode()).hexdigest(), name),
        )
        with conn.transaction():
            conn.execute(script)
        conn.execute(
            "UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = 1 WHERE id = %s", (row_id,)
        )


def fill_platform_rows(conn: psycopg.Connection) -> None:
    for user in PLATFORM_USERS:
        conn.execute(
            'INSERT INTO users (id, email, name, role, updated_at) VALUES (%s, %s, %s, %s::"UserRole", now())',
            (user["id"], user["email"], user["name"], user["role"]),
        )
    conn.execute(
        "INSERT INTO venues (id, name, address, city, country, updated_at) "
        "VALUES (%s, 'Hall \x1b[2J One', '1 Main St', 'Lisbon', 'PT', now())",
        (VENUE_ID,),
    )
    conn.execute(
        "INSERT INTO events (id, title, slug, status, start_date, end_date, capacity, owner_id, venue_id, updated_at) "
        "VALUES (%s, 'Platform Launch Party', %s, 'PUBLISHED', now() + interval '30 days', now() + interval '31 days', "
        "50, %s, %s, now())",
        (EVENT_ID, EVENT_SLUG, OLGA["id"], VENUE_ID),
    )
    conn.execute(
        "INSERT INTO events (id, title, slug, status, start_date, end_date, owner_id, updated_at) "
        "VALUES (%s, 'Last Year''s Meetup', 'last-years-meetup', 'PUBLISHED', now() - interval '400 days', "
        "now() - interval '399 days', %s, now())",
        (PAST_EVENT_ID, OLGA["id"]),
    )
    entries = [
        ("clv0wait00000001abcdefghi", VERA["email"], EVENT_ID, VERA["id"], "PENDING"),
        ("clv0wait00000002abcdefghi", "Guest.Person@Mail.Example", EVENT_ID, None, "CONFIRMED"),
        ("clv0wait00000003abcdefghi", "vera.visitor@example.com", PAST_EVENT_ID, None, "CONFIRMED"),
    ]
    for entry in entries:
        conn.execute(
            "INSERT INTO waitlist_entries (id, email, event_id, user_id, status, updated_at) "
            'VALUES (%s, %s, %s, %s, %s::"WaitlistStatus", now())',
            entry,
        )
    for number, user in enumerate((VERA, OLGA, ADAM)):
        conn.execute(
            "INSERT INTO sessions (id, user_id, token, expires_at, updated_at) VALUES (%s, %s, %s, %s, now())",
            (f"clv0sess0000000{number}abcdefghi", user["id"], jwt_for(user), "2030-01-01" if number else "2020-01-01"),
        )
    audit_rows = [
        ("clv0audt00000001abcdefghi", "user.login", "User", VERA["id"], VERA["id"], "203.0.113.7",
         "Mozilla/5.0 (X11; Linux x86_64)", {"email": VERA["email"], "method": "password"}),
        ("clv0audt00000002abcdefghi", "EVENT_UPDATED", "Event", EVENT_ID, OLGA["id"], "2001:db8::1", "curl/8.0",
         {"changes": [{"field": "capacity", "from": 40, "to": 50}], "by": OLGA["email"]}),
        ("clv0audt00000003abcdefghi", "waitlist.join", "WaitlistEntry", "clv0wait00000001abcdefghi", None, None, None,
         ["raw", "array", VERA["email"].upper()]),
        ("clv0audt00000004abcdefghi", "SIGNUP", "User", MAL["id"], MAL["id"], "198.51.100.2", "\x1b[31mEvilAgent", "a string"),
    ]
    for row in audit_rows:
        conn.execute(
            "INSERT INTO audit_logs (id, action, resource, resource_id, user_id, ip_address, user_agent, metadata) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            (*row[:7], json.dumps(row[7])),
        )
