"""Email addresses: validated with email-validator (no DNS), stored in one canonical form.

linea lower-cases the whole address, local part included, when it writes one; it compares
without regard to case (`same_address`), because the platform keeps addresses as people typed them. RFC 5321 lets a server treat
`Ann@x.com` and `ann@x.com` as two mailboxes, but no mail provider in use does, and people type
their address in varying case; one canonical form is what lets the unique keys
(users.email, waitlist_entries(email, event_id)) stop the same person entering twice.

email-validator costs ~60 µs an address (~140 µs more with an internationalized domain), which
would make a million-row import take minutes, so ordinary ASCII addresses go through a stricter
regular expression first (`fast_canonical_email`), and internationalized ones through
email-validator's own rules with each domain checked once (`international_canonical_email`):
whatever they accept, email-validator accepts too, with the same canonical form
(tests/test_waitlist_csv.py checks they agree). Anything else takes the slow, exact path.
"""

from __future__ import annotations

import functools
import re
import unicodedata
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
    canonical = fast_canonical_email(text) or international_canonical_email(text)
    if canonical is not None:
        return canonical, None
    if not text:
        return None, "email is empty"
    from email_validator import EmailNotValidError, validate_email

    try:  # once: the reason when it is invalid, the canonical form when it is not
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, f"invalid email {shown(text)}: {exc}"
    return result.normalized.lower(), None


# --- internationalized addresses, as fast ------------------------------------------------------
#
# email-validator spends ~140 µs of an internationalized address on IDNA (the domain), checked
# again for every address, and ~30 µs more on the rest; a waitlist has few domains and many
# addresses. So each domain is checked once, by email-validator (`_domain_forms`, cached), and the
# local part by email-validator's own rules for an unquoted one (`_plain_local`: its dot-atom
# pattern, then its category rule for each non-ASCII character: letters, numbers, punctuation,
# symbols, and combining marks not first), in NFC, with the same length limits. An address this
# path accepts, validate_email accepts too, with the same canonical form; anything it does not
# accept (quotes, display names, an invalid part, a local part not in NFC) takes the exact path,
# which gives the reason (tests/test_waitlist_csv.py checks the two agree).

_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_MAX_LENGTH = 254
_dot_atom_intl: Any = None  # email-validator's pattern, compiled when first needed


def international_canonical_email(text: str) -> str | None:
    """The canonical form of an address (internationalized or not) that is certainly valid, else None.

    No quote, space, bracket or second `@` passes `_plain_local` or the domain's check, so the
    address splits at its one `@` as email-validator splits it. What it returns needs no COPY
    escaping: no backslash, tab or line break passes either.

    The import's hot loop for accented addresses: one regular expression (`_learned_address`)
    takes the usual ones whole, as `simple_email` takes ASCII ones. It knows the non-ASCII
    characters of the local parts checked so far (`_learn`), which a waitlist has few of (its
    languages' accented letters); an address with one it does not know yet is checked character
    by character (`_plain_local`), and teaches it its characters.
    """
    found = _learned_address(text) if _learned_address is not None else None
    if found is not None:
        local, domain = found.groups()
        if not _is_normalized("NFC", local):
            return None
    else:
        local, at, domain = text.rpartition("@")
        if not at or not local or not _plain_local(local):
            return None
        _learn(local)
    forms = _domain_forms(domain)
    if forms is None:
        return None
    normalized_domain, longest_domain = forms
    if len(local.encode()) + 1 + longest_domain > _MAX_LENGTH:
        return None  # the exact path says how long it is
    return (local + "@" + normalized_domain).lower()


# What `_plain_local` took in local parts so far: the non-ASCII characters it takes anywhere
# (letters, numbers, punctuation, symbols), and combining marks (anywhere but first). At most
# `_MOST_LEARNED` (a file of thousands of Chinese names: the others keep the exact loop).
_learned_taken: set[str] = set()
_learned_marks: set[str] = set()
_MOST_LEARNED = 1000
_learned_address: Any = None  # `fullmatch` of the expression made of them: (local part, domain)
_is_normalized = unicodedata.is_normalized


def _learn(local: str) -> None:
    """Add the non-ASCII characters of `local` (which `_plain_local` took) to what
    `_learned_address` takes, and make it again when that grew."""
    global _learned_address
    if len(_learned_taken) + len(_learned_marks) >= _MOST_LEARNED:
        return
    category = unicodedata.category
    grew = False
    for found in _NON_ASCII.finditer(local):
        char = found.group()
        if char not in _learned_taken and char not in _learned_marks:
            (_learned_marks if category(char)[0] == "M" else _learned_taken).add(char)
            grew = True
    if grew:
        from email_validator.rfc_constants import ATEXT

        # Each character escaped: inside a class only `]`, `\`, `^` and `-` would mean something,
        # and no non-ASCII character is one of them; escaped all the same.
        taken = "".join(map(re.escape, sorted(_learned_taken)))
        marks = "".join(map(re.escape, sorted(_learned_marks)))
        first, rest = f"[{ATEXT}{taken}]", f"[{ATEXT}{taken}{marks}]"
        # email-validator's DOT_ATOM_TEXT_INTL over these characters, its one `@`, and the domain.
        _learned_address = re.compile(rf"({first}{rest}*(?:\.{rest}+)*)@([^@]+)").fullmatch


def _plain_local(local: str) -> bool:
    global _dot_atom_intl
    if _dot_atom_intl is None:
        from email_validator.rfc_constants import DOT_ATOM_TEXT_INTL

        _dot_atom_intl = DOT_ATOM_TEXT_INTL.match
    if _dot_atom_intl(local) is None or not unicodedata.is_normalized("NFC", local):
        return False
    category = unicodedata.category
    for found in _NON_ASCII.finditer(local):
        kind = category(found.group())[0]
        if kind not in "LNPS" and (kind != "M" or found.start() == 0):
            return False
    return True


@functools.lru_cache(maxsize=16384)
def _domain_forms(domain: str) -> tuple[str, int] | None:
    """The domain as email-validator normalizes it, and the largest of its UTF-8 sizes as typed,
    as normalized and in IDNA ASCII (what the address's length is checked with); None when it is
    not valid."""
    import email_validator
    from email_validator.syntax import validate_email_domain_name

    if not domain or domain.startswith("["):
        return None
    try:
        info = validate_email_domain_name(
            domain, test_environment=email_validator.TEST_ENVIRONMENT, globally_deliverable=email_validator.GLOBALLY_DELIVERABLE
        )
    except email_validator.EmailNotValidError:
        return None
    return info["domain"], max(len(domain.encode()), len(info["domain"].encode()), len(info["ascii_domain"].encode()))
