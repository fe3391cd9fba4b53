"""The platform's enums, importable without SQLAlchemy so that `linea --help` stays fast."""

from __future__ import annotations

import enum


class UserRole(enum.StrEnum):
    VISITOR = "VISITOR"
    OWNER = "OWNER"
    ADMIN = "ADMIN"


class EventStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"


class WaitlistStatus(enum.StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
