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


# The same shape computed inside PostgreSQL, for set-based inserts (seed, import):
# 'c', 11 base-36 digits of the epoch milliseconds... kept simple: 'c' + 24 hex-free base-36 chars
# derived from a random md5, which is all the uniqueness the column needs.
SQL_NEW_ID = (
    "('c' || lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0')"
    " || substr(md5(random()::text || clock_timestamp()::text), 1, 12))"
)
