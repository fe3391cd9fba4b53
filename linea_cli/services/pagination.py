"""Keyset (cursor) pagination: page N costs what page 1 costs.

A cursor is the sort key of the last row shown, with the name of the list it belongs to,
base64url-encoded JSON: opaque to users, stable while rows are inserted between pages (no row is
lost or repeated, unlike OFFSET). A cursor is checked before it reaches SQL: another list's cursor,
or values of the wrong type, are invalid input naming --after, never a query error.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from linea_cli.errors import InvalidInput, parameter, shown

if TYPE_CHECKING:
    from sqlalchemy.sql import Select

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None


def encode_cursor(kind: str, values: Sequence[Any]) -> str:
    """The cursor after a row of the list `kind` ("events", "users", ...) whose sort key is `values`."""
    plain = [{"t": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    document = {"list": kind, "after": plain}
    return base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, types: Sequence[type]) -> list[Any]:
    """The sort key in a cursor of the list `kind`, each value of the type its column holds."""
    try:
        padded = cursor.strip() + "=" * (-len(cursor.strip()) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode())
        if not isinstance(document, dict):
            raise ValueError("not a cursor")
        owner, plain = document.get("list"), document.get("after")
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise _invalid_cursor(cursor) from exc
    if owner != kind:
        if isinstance(owner, str) and re.fullmatch(r"[a-z_]{1,30}", owner):  # a list's name, safe to echo
            raise InvalidInput(
                f"invalid cursor for {parameter('after')}: it belongs to the {owner} list, not to the {kind} list; "
                "pass the value printed after the previous page of this list"
            )
        raise _invalid_cursor(cursor)
    if not isinstance(plain, list) or len(plain) != len(types):
        raise _invalid_cursor(cursor)
    values = [_cursor_value(value, expected) for value, expected in zip(plain, types, strict=True)]
    if any(value is None for value in values):
        raise _invalid_cursor(cursor)
    return values


def _cursor_value(value: Any, expected: type) -> Any:
    """The value as its column's type, or None when it is not one (the cursor was tampered with)."""
    if expected is datetime:
        if not (isinstance(value, dict) and isinstance(value.get("t"), str)):
            return None
        try:
            moment = datetime.fromisoformat(value["t"])
        except ValueError:
            return None
        return moment if moment.tzinfo is None else None  # columns hold naive UTC
    if expected is str:
        return value if isinstance(value, str) and "\x00" not in value else None
    return None


def _invalid_cursor(cursor: str) -> InvalidInput:
    return InvalidInput(f"invalid cursor {shown(cursor)} for {parameter('after')}: pass the value printed after the previous page")


def paginate(
    session: Any,
    query: Select,
    *,
    kind: str,
    sort_columns: Sequence[Any],
    limit: int,
    after: str | None,
    descending: bool = False,
) -> Page[Any]:
    """Run `query` ordered by `sort_columns` (unique together), one page after the cursor.

    Rows come back as mappings; the cursor holds `kind` (the list's name) and the sort values of
    the last row.
    """
    import sqlalchemy as sa  # here: the cursors above serve lists read without SQLAlchemy (services/reads.py)

    if after is not None:  # an empty cursor is refused, not read as none
        values = decode_cursor(after, kind, [column.type.python_type for column in sort_columns])
        key = sa.tuple_(*sort_columns)
        query = query.where(key < sa.tuple_(*values) if descending else key > sa.tuple_(*values))
    order = [column.desc() if descending else column.asc() for column in sort_columns]
    rows = session.execute(query.order_by(*order).limit(limit + 1)).mappings().all()
    items = [dict(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(kind, [last[_label(column)] for column in sort_columns])
    return Page(items=items, next_cursor=next_cursor)


def _label(column: Any) -> str:
    return getattr(column, "key", None) or column.name
