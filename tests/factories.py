"""Rows for tests to start from, each with overridable defaults: make_user(db, role="ADMIN")."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

from linea_cli.ids import new_id
from linea_cli.timeutil import utc_now
from tests.harness import Database

_numbers = itertools.count(1)


def _insert(db: Database, table: str, row: dict[str, Any], casts: dict[str, str] | None = None) -> dict[str, Any]:
    casts = casts or {}
    columns = ", ".join(f'"{key}"' for key in row)
    values = ", ".join(f"CAST(:{key} AS {casts[key]})" if key in casts else f":{key}" for key in row)
    db.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({values})', **row)
    return row


def make_user(db: Database, **overrides: Any) -> dict[str, Any]:
    n = next(_numbers)
    now = utc_now()
    row = {"id": new_id(), "email": f"person{n}@example.com", "name": f"Person {n}", "role": "VISITOR",
           "created_at": now, "updated_at": now, "deleted_at": None}
    row.update(overrides)
    return _insert(db, "users", row, {"role": '"UserRole"'})


def make_venue(db: Database, **overrides: Any) -> dict[str, Any]:
    n = next(_numbers)
    now = utc_now()
    row = {"id": new_id(), "name": f"Venue {n}", "address": f"{n} Main Street", "city": "Lisbon", "country": "PT",
           "latitude": 38.72, "longitude": -9.14, "website": None, "created_at": now, "updated_at": now,
           "deleted_at": None}
    row.update(overrides)
    return _insert(db, "venues", row)


def make_event(db: Database, *, owner: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    n = next(_numbers)
    now = utc_now()
    if owner is None and "owner_id" not in overrides:
        owner = make_user(db, role="OWNER")
    row = {"id": new_id(), "title": f"Event {n}", "slug": f"event-{n}", "description": None, "status": "PUBLISHED",
           "start_date": now + timedelta(days=30), "end_date": None, "capacity": None, "youtube_url": None,
           "map_lat": None, "map_lng": None, "map_zoom": None, "owner_id": owner["id"] if owner else None,
           "venue_id": None, "created_at": now, "updated_at": now, "deleted_at": None}
    row.update(overrides)
    return _insert(db, "events", row, {"status": '"EventStatus"'})


def make_waitlist_entry(db: Database, *, event: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    n = next(_numbers)
    now = utc_now()
    row = {"id": new_id(), "email": f"guest{n}@example.net", "event_id": event["id"], "user_id": None,
           "status": "PENDING", "created_at": now, "updated_at": now, "deleted_at": None}
    row.update(overrides)
    return _insert(db, "waitlist_entries", row, {"status": '"WaitlistStatus"'})


def make_session(db: Database, *, user: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    import hashlib

    now = utc_now()
    row = {"id": new_id(), "user_id": user["id"], "token": hashlib.sha256(new_id().encode()).hexdigest(),
           "expires_at": now + timedelta(days=1), "created_at": now, "updated_at": now, "deleted_at": None}
    row.update(overrides)
    return _insert(db, "sessions", row)


def make_audit_row(db: Database, **overrides: Any) -> dict[str, Any]:
    row = {"id": new_id(), "action": "UPDATE", "resource": "Event", "resource_id": new_id(), "user_id": None,
           "ip_address": None, "user_agent": None, "metadata": None, "created_at": utc_now()}
    row.update(overrides)
    if isinstance(row["metadata"], dict):
        row["metadata"] = json.dumps(row["metadata"])
    return _insert(db, "audit_logs", row, {"metadata": "jsonb"})


def days_from_now(days: float) -> datetime:
    return utc_now() + timedelta(days=days)
