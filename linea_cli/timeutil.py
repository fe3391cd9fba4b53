"""Time at linea's edges: the database holds naive UTC (TIMESTAMP(3)); people see offsets."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from linea_cli.errors import InvalidInput, shown

# linea's one timestamp format, for all data (piped tables, JSON, NDJSON, CSV, COPY exports): ISO 8601
# in UTC with the stored millisecond precision, e.g. 2026-11-25T11:55:57.301+00:00. A fixed width
# sorts as text and needs no guessing; `iso_timestamp` and this to_char pattern (for a stored naive
# UTC column) must agree, and tests/test_output.py checks that they do.
SQL_ISO_TIMESTAMP = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+00:00\"'"


def utc_now() -> datetime:
    """Now as the database stores it: naive UTC, millisecond precision."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {shown(name)}: use an IANA name such as Europe/Paris") from exc


_SPAN_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_SPAN_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_span(text: str, *, field: str) -> timedelta | None:
    """'90s', '30m', '12h', '7d', '2w' or combinations ('1d12h'); None when `text` is no span.

    One rule for every option taking a span back from now (--since, --keep, --older-than): a span
    reaching back before year 1 is no date at all, so it is refused naming `field`, however many
    digits it has (never an OverflowError, nor a database's "timestamp out of range")."""
    raw = text.strip().lower().replace(" ", "")
    if not raw or _SPAN_PART.sub("", raw):
        return None
    try:
        span = sum((timedelta(**{_SPAN_UNITS[unit]: int(amount)}) for amount, unit in _SPAN_PART.findall(raw)),
                   timedelta())
        utc_now() - span
    except (OverflowError, ValueError):
        raise InvalidInput(f"{field} {shown(text)} reaches back before year 1") from None
    return span


def parse_datetime(value: str, *, timezone: str = "UTC", field: str = "date") -> datetime:
    """ISO 8601 date or datetime, naive meaning `timezone`, returned as naive UTC for the database."""
    text = value.strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time())
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(
            f"invalid {field} {shown(value)}: use ISO 8601, e.g. 2026-06-01 or 2026-06-01T18:30+02:00"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone(timezone))
    try:
        return to_database(parsed)
    except OverflowError:  # 0001-01-01T00:00+14:00 is still year 0 in UTC
        raise _outside_calendar(field, value) from None


def _outside_calendar(field: str, value: str) -> InvalidInput:
    return InvalidInput(f"{field} {shown(value)} falls outside the calendar in UTC (years 1 to 9999)")


def to_database(moment: datetime) -> datetime:
    """Naive UTC, millisecond precision, as TIMESTAMP(3) holds it."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def iso_timestamp(moment: datetime) -> str:
    """A stored (naive UTC) or aware datetime in linea's one output format."""
    return from_database(moment).isoformat(timespec="milliseconds")  # type: ignore[union-attr]


def from_database(moment: datetime | None) -> datetime | None:
    """An aware UTC datetime from a stored naive one."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
