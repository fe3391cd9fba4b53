"""A statement's text as linea shows it: the passwords it carries replaced by ***.

The server keeps a utility statement's text as it was run (pg_stat_statements normalizes the
constants of plain queries only; pg_stat_activity normalizes nothing): `CREATE ROLE r PASSWORD
'...'`, a user mapping's `OPTIONS (password '...')`, a subscription's `CONNECTION '...
password=...'`, a URL in a dblink call. `mask_statement` is the one function every command that
shows statement text uses (`db queries`, `db activity`, the question `db cancel` / `db terminate`
ask). It masks:

- the literal after the word PASSWORD, whatever its form: '...', E'...', U&'...', $$...$$,
  $tag$...$tag$, with or without whitespace or comments (-- and nested /* */) before it, a literal
  continued on the next line ('a'<newline>'b'), a literal doubled inside another one
  (EXECUTE '... PASSWORD ''...'''), and one cut short (pg_stat_activity keeps the first
  track_activity_query_size bytes): to the end of the text;
- a `password=` setting and a URL's password (`db.urls.mask_url_text`).

One pass, linear in the text: a statement's text can be long.
"""

from __future__ import annotations

import re

from linea_cli.db.urls import mask_url_text

MASK = "'***'"
_KEYWORD = re.compile(r"(?i)(?<![\w$\"])password(?![\w$\"])")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][\w\u0080-\U0010ffff]*)?\$")
_CONTINUATION = re.compile(r"[ \t\f\r]*\n\s*'")


def mask_statement(text: str | None) -> str | None:
    """`text` with every password it carries replaced by *** (None stays None)."""
    if not text:
        return text
    return mask_url_text(_mask_password_literals(text))


def _mask_password_literals(text: str) -> str:
    parts: list[str] = []
    done = 0  # text[:done] is in parts
    seen = 0  # what was looked at already (a literal masked, the comments after a PASSWORD)
    for match in _KEYWORD.finditer(text):
        if match.start() < seen:
            continue
        start = _skip_blanks(text, match.end())
        if start < len(text) and text[start] == "=":  # `password = '...'` in an option list
            start = _skip_blanks(text, start + 1)
        seen = start
        end, mask = _literal(text, start)
        if end is None:
            continue
        parts += [text[done:start], mask]
        done = seen = end
    parts.append(text[done:])
    return "".join(parts)


def _skip_blanks(text: str, at: int) -> int:
    """The first position from `at` that is no whitespace and in no comment."""
    length = len(text)
    while at < length:
        if text[at].isspace():
            at += 1
        elif text.startswith("--", at):
            newline = text.find("\n", at)
            at = length if newline < 0 else newline + 1
        elif text.startswith("/*", at):
            depth, at = 1, at + 2
            while at < length and depth:
                if text.startswith("/*", at):
                    depth, at = depth + 1, at + 2
                elif text.startswith("*/", at):
                    depth, at = depth - 1, at + 2
                else:
                    at += 1
        else:
            break
    return at


def _literal(text: str, at: int) -> tuple[int | None, str]:
    """Where the string literal starting at `at` ends (the end of the text for one cut short),
    with what replaces it; (None, '') when no literal starts there."""
    head = text[at : at + 3].lower()
    after = text[at + 2 : at + 3]
    if head.startswith("''") and after and not after.isspace() and after not in "';),":  # doubled inside a literal
        close = text.find("''", at + 2)
        return (len(text) if close < 0 else close + 2), "''***''"
    if head.startswith("'"):
        return _quoted(text, at + 1, backslash=False), MASK
    if head.startswith("e'"):
        return _quoted(text, at + 2, backslash=True), MASK
    if head.startswith("u&'"):
        return _quoted(text, at + 3, backslash=False), MASK
    tag = _DOLLAR_TAG.match(text, at)
    if tag:
        close = text.find(tag.group(), tag.end())
        return (len(text) if close < 0 else close + len(tag.group())), MASK
    return None, ""


def _quoted(text: str, at: int, *, backslash: bool) -> int:
    """The end of a quoted literal whose body starts at `at`, with the literals continuing it on
    the next lines ('a'<newline>'b' is one literal)."""
    length = len(text)
    while at < length:
        char = text[at]
        if backslash and char == "\\":
            at += 2
        elif char == "'":
            if text.startswith("''", at):
                at += 2
                continue
            following = _CONTINUATION.match(text, at + 1)
            if following is None:
                return at + 1
            at = following.end()
        else:
            at += 1
    return length
