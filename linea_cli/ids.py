"""Ids in the shape Prisma's cuid() gives: 'c' followed by 24 lowercase base-36 characters.

The platform's API generates its own ids the same way; nothing parses them, they only need to be
unique and roughly time-ordered so that new rows cluster at the end of the primary key index.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_counter = itertools.count(secrets.randbelow(36**4))
_fingerprint = None


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 36)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def new_id() -> str:
    global _fingerprint
    if _fingerprint is None:
        _fingerprint = _base36(os.getpid() * 7919 + secrets.randbelow(36**4), 4)
    millis = int(time.time() * 1000)
    return "c" + _base36(millis, 8) + _base36(next(_counter), 4) + _fingerprint + _base36(secrets.randbits(42), 8)


# An id of the same shape made inside PostgreSQL, as a column default for rows loaded without one
# (benchmarks/bench_waitlist_csv.py's plain `psql \copy`): 'c', the epoch milliseconds as 12 hex
# digits (time-ordered, like a cuid), then 12 hex digits of an md5 of random(). Hex digits are
# base-36 digits, so the 25 characters pass wherever a cuid does. The seed and the import make
# their own ids, deterministic from the seed or the file's line numbers.
SQL_NEW_ID = (
    "('c' || lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0')"
    " || substr(md5(random()::text || clock_timestamp()::text), 1, 12))"
)
