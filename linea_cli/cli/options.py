"""Option types shared by every command group, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from linea_cli.output import OutputFormat

FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="Output format.", case_sensitive=False, show_default=True),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Shorthand for --format json.")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=10000, help="Rows per page.")]
AfterOption = Annotated[
    str | None, typer.Option("--after", metavar="CURSOR", help="Continue after this cursor (printed by the previous page).")
]
FieldsOption = Annotated[
    str | None,
    typer.Option(
        "--fields", metavar="FIELD,...",
        help="Only these fields, in this order, in every format (e.g. --fields slug,status,id); a wrong name lists the valid ones.",
    ),
]
AllOption = Annotated[
    bool,
    typer.Option(
        "--all", help="Every page, streamed in constant memory (JSON keeps the page shape, with next_cursor null); --limit is ignored.",
    ),
]
IncludeDeletedOption = Annotated[bool, typer.Option("--include-deleted", help="Include soft-deleted rows.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")]


def chosen_format(fmt: OutputFormat, as_json: bool) -> OutputFormat:
    return OutputFormat.json if as_json else fmt
