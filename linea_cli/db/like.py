"""LIKE and ILIKE patterns that match what a person typed literally.

`%` and `_` are LIKE's wildcards and `\\` its escape character (PostgreSQL's default; SQLAlchemy
callers also say `escape="\\\\"`), so all three are escaped: a search for `50%_off` finds that text,
not every row. Plain string work, no SQLAlchemy: shell completion uses it too.
"""

from __future__ import annotations


def like_escaped(text: str) -> str:
    """`text` with LIKE's special characters escaped (then add the `%` wanted around it)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_pattern(text: str) -> str:
    """`%text%`: rows containing `text`, its wildcards matched literally."""
    return "%" + like_escaped(text) + "%"
