"""Each resource's fields, declared once: events, venues, users.

A `Field` says what a record key is (the column's name, its JSON key and `--fields` name), its
Python type, whether a person sets it (`create`/`update` options), may empty it (`--clear`),
whether it is personal data (GDPR export and erasure), whether and where it is a list column,
and how a table for people shows it. Everything else is derived from these tuples, as Django
derives forms and the admin's columns from a model:

- services: the editable columns and their audit snapshots, the values a command hands over
  (`given`), the record a command prints (`record`), the list query's columns (`listed`);
- commands: the `create`/`update` options (`cli/fields.py` builds the Typer parameters), the
  `--clear` choices, the list columns and so the `--fields` names, JSON keys and CSV headers;
- GDPR: the fields of owned events exported, and the personal fields erased.

A new nullable column is one `Field` here (besides the model, its migration and the reference
DDL). This module imports neither Typer, Rich nor SQLAlchemy: `linea --help` imports it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, make_dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

from linea_cli.enums import EventStatus, UserRole
from linea_cli.errors import InvalidInput, LineaError, NotFound


@dataclass(frozen=True)
class Field:
    """One field of a resource's record. Only `key` is required: a stored, read-only, unlisted text."""

    key: str  # record key = column name = JSON key = `--fields` name
    type: type = str  # the value's Python type (a datetime option is typed as text and parsed)
    stored: bool = True  # a column of the resource's table; False: the service computes it (a count, a join)
    editable: bool = False  # set by `create` and `update`, and snapshotted for the audit log
    required: bool = False  # `create` needs it
    clearable: bool = False  # `update --clear OPTION` empties it
    personal: bool = False  # personal data: in GDPR exports, emptied by erasure
    list_at: int | None = None  # its place among `list`'s columns; None: not a list column
    # How a table for people shows it (see output.Column): kind None is read from the key's ending.
    kind: str | None = None
    justify: str = "left"
    priority: int = 0
    wide: bool = False
    # Its option on `create`/`update`: `--OPTION` (default: the key with - for _), its metavar and help.
    option: str | None = None
    metavar: str | None = None
    help: str = ""
    create_help: str | None = None  # when `create` says it differently (the slug follows the title there)
    given_as: str | None = None  # the name the service takes the value by, when not the key (a reference to resolve)
    complete: str | None = None  # what the option completes from the database: "user", "venue", "event"

    @property
    def flag(self) -> str:
        return "--" + (self.option or self.key.replace("_", "-"))

    @property
    def name_given(self) -> str:
        return self.given_as or self.key


EVENTS: tuple[Field, ...] = (
    Field("id", list_at=90, priority=4),
    Field("slug", editable=True, list_at=10, help="Explicit slug (refused when taken)."),
    Field("title", editable=True, required=True, list_at=20, help="Title (the slug does not follow it).",
          create_help="Title; the slug is derived from it."),
    Field("status", type=EventStatus, list_at=30),
    Field("start_date", type=datetime, editable=True, required=True, list_at=40, priority=1, option="start",
          metavar="DATE", help="Start, ISO 8601.", create_help="Start, ISO 8601 (naive: LINEA_TIMEZONE)."),
    Field("end_date", type=datetime, editable=True, clearable=True, list_at=50, wide=True, option="end",
          metavar="DATE", help="End, ISO 8601."),
    Field("description", editable=True, clearable=True, help="Description."),
    Field("capacity", type=int, editable=True, clearable=True, list_at=60, justify="right", priority=3,
          metavar="N", help="Places (0 or more)."),
    Field("places_left", type=int, stored=False),
    Field("waitlist_pending", type=int, stored=False),
    Field("waitlist_confirmed", type=int, stored=False),
    Field("waitlist_cancelled", type=int, stored=False),
    Field("youtube_url", editable=True, clearable=True, metavar="URL", help="A YouTube watch, share or embed link."),
    Field("map_lat", type=float, editable=True, clearable=True, option="lat", help="Map latitude, -90 to 90."),
    Field("map_lng", type=float, editable=True, clearable=True, option="lng", help="Map longitude, -180 to 180."),
    Field("map_zoom", type=int, editable=True, clearable=True, option="zoom", help="Map zoom, 0 to 22."),
    Field("owner_id", editable=True, option="owner", metavar="EMAIL", help="Owner (an OWNER or ADMIN).",
          given_as="owner", complete="user"),
    Field("owner_email", stored=False, list_at=70, priority=2),
    Field("owner_name", stored=False),
    Field("venue_id", editable=True, clearable=True, option="venue", metavar="ID", help="Venue id.", complete="venue"),
    Field("venue_name", stored=False, list_at=80, priority=5),
    Field("created_at", type=datetime),
    Field("updated_at", type=datetime),
    Field("deleted_at", type=datetime, list_at=100, priority=1),
)

VENUES: tuple[Field, ...] = (
    Field("id", list_at=10),
    Field("name", editable=True, required=True, list_at=20, help="Name."),
    Field("address", editable=True, required=True, list_at=50, priority=4, help="Street address."),
    Field("city", editable=True, required=True, list_at=30, priority=1, help="City."),
    Field("country", editable=True, required=True, list_at=40, priority=2, help="Country.",
          create_help="Country (e.g. PT)."),
    Field("latitude", type=float, editable=True, clearable=True, option="lat", help="Latitude, -90 to 90."),
    Field("longitude", type=float, editable=True, clearable=True, option="lng", help="Longitude, -180 to 180."),
    Field("website", editable=True, clearable=True, list_at=60, priority=5, metavar="URL", help="An http(s) URL."),
    Field("created_at", type=datetime),
    Field("updated_at", type=datetime),
    Field("deleted_at", type=datetime, list_at=70, priority=1),
)

# A user's email and name are set by `users create/update` (an argument, a role default, checks of
# their own: see cli/users.py); the declaration gives their record, list columns and personal data.
USERS: tuple[Field, ...] = (
    Field("id", list_at=60, priority=3),
    Field("email", personal=True, list_at=10),
    Field("name", personal=True, list_at=20, priority=1),
    Field("role", type=UserRole, list_at=30),
    Field("created_at", type=datetime, list_at=40, priority=2),
    Field("updated_at", type=datetime),
    Field("deleted_at", type=datetime, list_at=50, priority=1),
)


def stored(resource: Iterable[Field]) -> tuple[Field, ...]:
    return tuple(field for field in resource if field.stored)


def editable(resource: Iterable[Field]) -> tuple[Field, ...]:
    return tuple(field for field in resource if field.editable)


def clearable(resource: Iterable[Field]) -> tuple[Field, ...]:
    return tuple(field for field in resource if field.clearable)


def personal(resource: Iterable[Field]) -> tuple[Field, ...]:
    return tuple(field for field in resource if field.personal)


def listed(resource: Iterable[Field]) -> tuple[Field, ...]:
    """The list's columns, in their order (JSON keys, CSV header, table columns)."""
    return tuple(sorted((field for field in resource if field.list_at is not None), key=lambda field: field.list_at or 0))


def keys(resource: Iterable[Field]) -> tuple[str, ...]:
    return tuple(field.key for field in resource)


def record(resource: Iterable[Field], row: Any, computed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of `row` (a model instance), in the declaration's order: stored fields read from
    the row (enums as their enum), the others from `computed`."""
    computed = computed or {}
    values: dict[str, Any] = {}
    for field in resource:
        if not field.stored:
            values[field.key] = computed.get(field.key)
            continue
        value = computed[field.key] if field.key in computed else getattr(row, field.key)
        values[field.key] = field.type(value) if value is not None and issubclass(field.type, enum.Enum) else value
    return values


def values_class(name: str, resource: Iterable[Field]) -> type:
    """A frozen dataclass of the editable fields by their given names, each None by default: the
    values a command hands a service (None means "not given"; `clear` empties a field)."""
    return make_dataclass(
        name, [(field.name_given, field.type | None, dataclass_field(default=None)) for field in editable(resource)],
        frozen=True,
    )


def given(resource: Iterable[Field], values: Any) -> dict[str, Any]:
    """The fields `values` (a `values_class` instance) gives, by their given names: those not None."""
    found = {field.name_given: getattr(values, field.name_given, None) for field in editable(resource)}
    return {name: value for name, value in found.items() if value is not None}


class NamesField(LineaError):
    """An error about the value given for one field. Its message names the field: a service by the
    key (`map_lat: latitude 91.0 is outside [-90, 90]`), a command by the option that gave it
    (`--lat: ...`): the command renames it (`rename`), so services speak of fields, not flags."""

    def __init__(self, field: str, *, before: str = "", after: str = "", hint: str | None = None) -> None:
        super().__init__(before + field + after, hint=hint)
        self.field, self.before, self.after = field, before, after

    def rename(self, name: str) -> None:
        self.message = self.before + name + self.after
        self.args = (self.message,)


class InvalidField(NamesField, InvalidInput):
    """An invalid value for a field (exit 1)."""


class FieldNotFound(NamesField, NotFound):
    """A field's value names nothing (`--owner` a user who does not exist; exit 3)."""
