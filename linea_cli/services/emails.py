"""Email addresses: validated with email-validator (no DNS), stored in one canonical form.

linea lower-cases the whole address, local part included, when it writes one; it compares
without regard to case (`same_address`), because the platform keeps addresses as people typed them. RFC 5321 lets a server treat
`Ann@x.com` and `ann@x.com` as two mailboxes, but no mail provider in use does, and people type
their address in varying case; one canonical form is what lets the unique keys
(users.email, waitlist_entries(email, event_id)) stop the same person entering twice.

email-validator costs ~60 µs an address, which would make a million-row import take a minute, so
ordinary ASCII addresses go through a stricter regular expression first (`fast_canonical_email`):
whatever it accepts, email-validator accepts too, with the same canonical form
(tests/test_waitlist_csv.py checks the two agree). Anything else takes the slow, exact path.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from linea_cli.errors import InvalidInput, shown


def normalize_email(raw: str) -> str:
    """The canonical form of an address, or InvalidInput with the validator's reason."""
    reason = email_problem(raw)
    if reason is not None:
        raise InvalidInput(f"invalid email {raw.strip()!r}: {reason}")
    return canonical_email(raw)


def canonical_email(raw: str) -> str:
    """Canonical form of an address already known to be valid."""
    from email_validator import validate_email  # loaded when an address is written: reads need none of it

    result = validate_email(raw.strip(), check_deliverability=False)
    return result.normalized.lower()


def same_address(column: Any, address: str) -> Any:
    """SQL: `column` holds `address` in any case. Never a LIKE pattern, where `%` and `_` would
    match other people; the platform stores addresses as people typed them (`Vera@Example.com`),
    and `lower(email)` indexes (linea_cli.db.indexes) keep this on an index."""
    return sa.func.lower(column) == address.strip().lower()


def email_problem(raw: str) -> str | None:
    """Why an address is invalid, or None when it is fine (for bulk validation without raising)."""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


# --- fast and exact, for bulk validation -------------------------------------------------------

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# At most 254 characters, a local part of at most 64, no "--" anywhere (Punycode and the label
# rules about it take the exact path), and a letters-only top-level label that is not one of the
# special-use names email-validator refuses (arpa, invalid, local, localhost, onion, test).
_SIMPLE_EMAIL = re.compile(
    rf"(?=.{{3,254}}\Z)(?=[^@]{{1,64}}@)(?!.*--)(?:{_ATOM}(?:\.{_ATOM})*)@(?:{_LABEL}\.)+"
    r"(?!(?i:arpa|invalid|local|localhost|onion|test)\Z)[A-Za-z]{2,63}",
    re.ASCII,
)
# A plain ASCII address that is certainly valid (a match object), else None: the import's hot loop.
simple_email = _SIMPLE_EMAIL.fullmatch


def fast_canonical_email(raw: str) -> str | None:
    """The canonical form of a plain ASCII address that is certainly valid, else None (use the exact path)."""
    return raw.lower() if simple_email(raw) else None


def check_email(raw: str) -> tuple[str | None, str | None]:
    """(canonical address, None) or (None, reason)."""
    text = raw.strip()
    canonical = fast_canonical_email(text)
    if canonical is not None:
        return canonical, None
    if not text:
        return None, "email is empty"
    reason = email_problem(text)
    if reason is not None:
        return None, f"invalid email {shown(text)}: {reason}"
    return canonical_email(text), None
