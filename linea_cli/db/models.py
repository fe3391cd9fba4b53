"""SQLModel tables: exactly the platform's data model, as Prisma creates it.

Names follow ../shared/docs/prisma-reference/prisma_ddl.sql (tables, columns, enum types,
`<table>_pkey`, `<table>_<cols>_key`, `<table>_<col>_fkey`); the non-unique indexes carry the
`idx_` names of the data model's "Performance Indexes". Timestamps are TIMESTAMP(3) holding UTC
without a zone: linea converts at its edges (see linea_cli.timeutil).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import TIMESTAMP as PG_TIMESTAMP
from sqlmodel import Field, SQLModel

from linea_cli.enums import EventStatus, UserRole, WaitlistStatus

NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ix": "idx_%(table_name)s_%(column_0_N_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION

__all__ = ["EventStatus", "UserRole", "WaitlistStatus"]


def _pg_enum(python_enum: type[enum.Enum]) -> sa.Enum:
    # Prisma names the types after its enums, quoted PascalCase, and casts to those names.
    return sa.Enum(python_enum, name=python_enum.__name__, create_type=False)


USER_ROLE = _pg_enum(UserRole)
EVENT_STATUS = _pg_enum(EventStatus)
WAITLIST_STATUS = _pg_enum(WaitlistStatus)
TIMESTAMP = PG_TIMESTAMP(precision=3, timezone=False)


def _id() -> Any:
    return Field(sa_column=sa.Column("id", sa.Text, primary_key=True))


def _text(name: str, *, nullable: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(name, sa.Text, nullable=nullable))


def _float(name: str) -> Any:
    return Field(default=None, sa_column=sa.Column(name, sa.Double, nullable=True))


# PostgreSQL's INTEGER (capacity, zoom): values beyond it are refused before they reach the database.
INTEGER_MAX = 2_147_483_647


def _int(name: str) -> Any:
    return Field(default=None, sa_column=sa.Column(name, sa.Integer, nullable=True))


def _timestamp(name: str, *, nullable: bool = True, server_now: bool = False) -> Any:
    server_default = sa.text("CURRENT_TIMESTAMP") if server_now else None
    return Field(
        default=None,
        sa_column=sa.Column(name, TIMESTAMP, nullable=nullable, server_default=server_default),
    )


def _foreign_key(name: str, target: str, *, nullable: bool) -> Any:
    return Field(
        default=None,
        sa_column=sa.Column(
            name,
            sa.Text,
            sa.ForeignKey(target, ondelete="SET NULL" if nullable else "RESTRICT", onupdate="CASCADE"),
            nullable=nullable,
        ),
    )


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        sa.Index("users_email_key", "email", unique=True),
        sa.Index("idx_users_email", "email"),
        sa.Index("idx_users_role", "role"),
        sa.Index("idx_users_deleted_at", "deleted_at"),
    )

    id: str = _id()
    email: str = _text("email")
    name: str | None = _text("name", nullable=True)
    role: UserRole = Field(
        default=UserRole.VISITOR,
        sa_column=sa.Column("role", USER_ROLE, nullable=False, server_default=sa.text("'VISITOR'")),
    )
    created_at: datetime = _timestamp("created_at", nullable=False, server_now=True)
    updated_at: datetime = _timestamp("updated_at", nullable=False)
    deleted_at: datetime | None = _timestamp("deleted_at")


class Venue(SQLModel, table=True):
    __tablename__ = "venues"

    id: str = _id()
    name: str = _text("name")
    address: str = _text("address")
    city: str = _text("city")
    country: str = _text("country")
    latitude: float | None = _float("latitude")
    longitude: float | None = _float("longitude")
    website: str | None = _text("website", nullable=True)
    created_at: datetime = _timestamp("created_at", nullable=False, server_now=True)
    updated_at: datetime = _timestamp("updated_at", nullable=False)
    deleted_at: datetime | None = _timestamp("deleted_at")


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        sa.Index("events_slug_key", "slug", unique=True),
        sa.Index("idx_events_slug", "slug"),
        sa.Index("idx_events_start_date", "start_date"),
        sa.Index("idx_events_status", "status"),
        sa.Index("idx_events_owner_id", "owner_id"),
        sa.Index("idx_events_venue_id", "venue_id"),
        sa.Index("idx_events_deleted_at", "deleted_at"),
    )

    id: str = _id()
    title: str = _text("title")
    slug: str = _text("slug")
    description: str | None = _text("description", nullable=True)
    status: EventStatus = Field(
        default=EventStatus.DRAFT,
        sa_column=sa.Column("status", EVENT_STATUS, nullable=False, server_default=sa.text("'DRAFT'")),
    )
    start_date: datetime = _timestamp("start_date", nullable=False)
    end_date: datetime | None = _timestamp("end_date")
    capacity: int | None = _int("capacity")
    youtube_url: str | None = _text("youtube_url", nullable=True)
    map_lat: float | None = _float("map_lat")
    map_lng: float | None = _float("map_lng")
    map_zoom: int | None = _int("map_zoom")
    owner_id: str = _foreign_key("owner_id", "users.id", nullable=False)
    venue_id: str | None = _foreign_key("venue_id", "venues.id", nullable=True)
    created_at: datetime = _timestamp("created_at", nullable=False, server_now=True)
    updated_at: datetime = _timestamp("updated_at", nullable=False)
    deleted_at: datetime | None = _timestamp("deleted_at")


class WaitlistEntry(SQLModel, table=True):
    __tablename__ = "waitlist_entries"
    __table_args__ = (
        sa.Index("waitlist_entries_email_event_id_key", "email", "event_id", unique=True),
        sa.Index("idx_waitlist_entries_event_id", "event_id"),
        sa.Index("idx_waitlist_entries_email", "email"),
        sa.Index("idx_waitlist_entries_status", "status"),
    )

    id: str = _id()
    email: str = _text("email")
    event_id: str = _foreign_key("event_id", "events.id", nullable=False)
    user_id: str | None = _foreign_key("user_id", "users.id", nullable=True)
    status: WaitlistStatus = Field(
        default=WaitlistStatus.PENDING,
        sa_column=sa.Column("status", WAITLIST_STATUS, nullable=False, server_default=sa.text("'PENDING'")),
    )
    created_at: datetime = _timestamp("created_at", nullable=False, server_now=True)
    updated_at: datetime = _timestamp("updated_at", nullable=False)
    deleted_at: datetime | None = _timestamp("deleted_at")


class Session(SQLModel, table=True):
    __tablename__ = "sessions"
    __table_args__ = (
        sa.Index("sessions_token_key", "token", unique=True),
        sa.Index("idx_sessions_token", "token"),
        sa.Index("idx_sessions_expires_at", "expires_at"),
        sa.Index("idx_sessions_user_id", "user_id"),
    )

    id: str = _id()
    user_id: str = _foreign_key("user_id", "users.id", nullable=False)
    # linea stores the SHA-256 hex digest of the token, never the token itself.
    token: str = _text("token")
    expires_at: datetime = _timestamp("expires_at", nullable=False)
    created_at: datetime = _timestamp("created_at", nullable=False, server_now=True)
    updated_at: datetime = _timestamp("updated_at", nullable=False)
    deleted_at: datetime | None = _timestamp("deleted_at")


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_logs"
    __table_args__ = (
        sa.Index("idx_audit_logs_resource", "resource", "resource_id"),
        sa.Index("idx_audit_logs_user_id", "user_id"),
        sa.Index("idx_audit_logs_created_at", "created_at"),
    )

    id: str = _id()
    action: str = _text("action")
    resource: str = _text("resource")
    resource_id: str = _text("resource_id")
    user_id: str | None = _foreign_key("user_id", "users.id", nullable=True)
    ip_address: str | None = _text("ip_address", nullable=True)
    user_agent: str | None = _text("user_agent", nullable=True)
    metadata_: dict[str, Any] | None = Field(default=None, sa_column=sa.Column("metadata", JSONB, nullable=True))
    created_at: datetime = _timestamp("created_at", nullable=False, server_now=True)


TABLES_IN_DEPENDENCY_ORDER = ("users", "venues", "events", "waitlist_entries", "sessions", "audit_logs")
