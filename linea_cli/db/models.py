"""SQLModel tables: exactly the platform's data model, as Prisma creates it.

Names follow ../shared/docs/prisma-reference/prisma_ddl.sql (tables, columns, enum types,
`<table>_pkey`, `<table>_<cols>_key`, `<table>_<col>_fkey`, `<table>_<cols>_idx`); the indexes
linea adds beyond Prisma's carry the data model's `idx_` names (linea_cli.db.indexes). Timestamps are TIMESTAMP(3) holding UTC
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

from linea_cli.db.indexes import LINEA_INDEXES, PRISMA_INDEXES
from linea_cli.enums import EventStatus, UserRole, WaitlistStatus

NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
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


def _indexes(table: str) -> tuple[sa.Index, ...]:
    """Prisma's indexes and linea's additions on `table`, as a database linea creates has them."""
    indexes = []
    for spec in (*PRISMA_INDEXES, *LINEA_INDEXES):
        if spec.table != table:
            continue
        inner = spec.definition.split("(", 1)[1].rsplit(")", 1)[0]
        elements = [sa.text(part) if "(" in part else part for part in (p.strip() for p in inner.split(", "))]
        indexes.append(sa.Index(spec.name, *elements, unique=spec.unique))
    return tuple(indexes)


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
    __table_args__ = _indexes("users")

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
    __table_args__ = _indexes("events")

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
    __table_args__ = _indexes("waitlist_entries")

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
    __table_args__ = _indexes("sessions")

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
    __table_args__ = _indexes("audit_logs")

    id: str = _id()
    action: str = _text("action")
    resource: str = _text("resource")
    resource_id: str = _text("resource_id")
    user_id: str | None = _foreign_key("user_id", "users.id", nullable=True)
    ip_address: str | None = _text("ip_address", nullable=True)
    user_agent: str | None = _text("user_agent", nullable=True)
    metadata_: dict[str, Any] | None = Field(default=None, sa_column=sa.Column("metadata", JSONB, nullable=True))
    created_at: datetime = _timestamp("created_at", nullable=False, server_now=True)

