"""Keyset (cursor) pagination: page N costs what page 1 costs.

A cursor is the sort key of the last row shown, base64url-encoded JSON: opaque to users, stable
while rows are inserted between pages (no row is lost or repeated, unlike OFFSET).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql import Select

from linea_cli.errors import InvalidInput

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None


def encode_cursor(values: Sequence[Any]) -> str:
    plain = [{"t": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(plain, list) or len(plain) != size:
            raise ValueError("wrong shape")
        return [datetime.fromisoformat(v["t"]) if isinstance(v, dict) else v for v in plain]
    except (ValueError, binascii.Error, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise InvalidInput(f"invalid cursor {cursor!r}: pass the value printed after the previous page") from exc


def paginate(
    session: Any,
    query: Select,
    *,
    sort_columns: Sequence[Any],
    limit: int,
    after: str | None,
    descending: bool = False,
) -> Page[Any]:
    """Run `query` ordered by `sort_columns` (unique together), one page after the cursor.

    Rows come back as mappings; the cursor holds the sort values of the last row.
    """
    if after:
        values = decode_cursor(after, len(sort_columns))
        key = sa.tuple_(*sort_columns)
        query = query.where(key < sa.tuple_(*values) if descending else key > sa.tuple_(*values))
    order = [column.desc() if descending else column.asc() for column in sort_columns]
    rows = session.execute(query.order_by(*order).limit(limit + 1)).mappings().all()
    items = [dict(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last[_label(column)] for column in sort_columns])
    return Page(items=items, next_cursor=next_cursor)


def _label(column: Any) -> str:
    return getattr(column, "key", None) or column.name
