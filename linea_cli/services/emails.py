"""Email addresses: validated with email-validator (no DNS), stored in one canonical form.

linea lower-cases the whole address, local part included, when it writes one; it compares
without regard to case (`same_address`), because the platform keeps addresses as people typed them. RFC 5321 lets a server treat
`Ann@x.com` and `ann@x.com` as two mailboxes, but no mail provider in use does, and people type
their address in varying case; one canonical form is what lets the unique keys
(users.email, waitlist_entries(email, event_id)) stop the same person entering twice.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from linea_cli.errors import InvalidInput


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
