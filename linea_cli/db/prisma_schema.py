"""The `schema.prisma` that describes the database exactly as linea leaves it.

The platform's own schema (a copy of ../shared/docs/prisma-reference/schema.prisma ships beside
this module) plus one `@@index(..., map: "idx_...")` per index linea adds, so that the platform's
next `prisma migrate dev` neither drops nor renames them. Expression indexes (`lower(email)`)
cannot be declared in Prisma's schema language; they are listed as comments, and Prisma Migrate
leaves indexes it does not understand alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from linea_cli.db.indexes import LINEA_INDEXES

PLATFORM_SCHEMA = Path(__file__).with_name("platform_schema.prisma")
HEADER = (
    "// `linea db prisma-schema`: the platform's schema with the indexes `linea db upgrade` adds.\n"
    "// Keep the @@index lines marked `linea`.\n"
)


# What Prisma's own templates put in a datasource: Prisma 6 refuses one without a `url`. The
# reference copy beside this module has none (the platform keeps its URL elsewhere), so the schema
# printed without --from gets it; a file given with --from is the platform's, and stays as it is.
DATASOURCE_URL = 'url      = env("DATABASE_URL")'


def prisma_schema(platform_schema: str | None = None) -> str:
    """`platform_schema` (the platform's own schema.prisma, as it is today) with linea's indexes;
    without it, the data model's schema that shipped with linea, its datasource reading
    DATABASE_URL."""
    text = platform_schema if platform_schema is not None else _with_datasource_url(PLATFORM_SCHEMA.read_text())
    if "// linea" in text:
        text = re.sub(r"(?m)^[ \t]*(@@index\(.*\) )?// linea.*\n", "", text)  # an earlier run's lines
    text = text.removeprefix(HEADER)
    models = re.split(r"(?m)^(?=model )", text)
    return HEADER + "".join(_with_linea_indexes(block) for block in models)


def _with_linea_indexes(block: str) -> str:
    table = re.search(r'@@map\("(\w+)"\)', block)
    if not block.startswith("model ") or table is None:
        return block
    fields = dict((column, field) for field, column in re.findall(r'(?m)^\s+(\w+)\s+\S+.*@map\("(\w+)"\)', block))
    lines = []
    for spec in LINEA_INDEXES:
        if spec.table != table.group(1):
            continue
        if spec.columns:
            names = ", ".join(fields[column] for column in spec.columns)
            lines.append(f'@@index([{names}], map: "{spec.name}") // linea')
        else:
            lines.append(f"// linea: {spec.name} ON {spec.table} USING {spec.definition} (not expressible here)")
    if not lines:
        return block
    return block.replace(table.group(0), "\n  ".join([*lines, table.group(0)]), 1)


def _with_datasource_url(text: str) -> str:
    """A `url` in each datasource block that has none, after its provider line."""

    def add(block: re.Match[str]) -> str:
        body = block.group(0)
        if re.search(r"(?m)^\s*url\s*=", body):
            return body
        return re.sub(r'(?m)^([ \t]*)(provider\s*=.*)$', lambda line: f"{line.group(1)}{line.group(2)}\n{line.group(1)}{DATASOURCE_URL}", body, count=1)

    return re.sub(r"(?ms)^datasource \w+ \{.*?^\}", add, text)
