"""`linea events ...`: list and manage events."""

from __future__ import annotations

from typing import Annotated

import typer

from linea_cli.cli.context import transaction
from linea_cli.cli.options import (
    AfterOption,
    FormatOption,
    IncludeDeletedOption,
    JsonOption,
    LimitOption,
    chosen_format,
)
from linea_cli.db.models import EventStatus
from linea_cli.output import OutputFormat, render

app = typer.Typer(help="List and manage events.", no_args_is_help=True)


@app.command("list")
def list_(
    status: Annotated[EventStatus | None, typer.Option(case_sensitive=False, help="Only events in this status.")] = None,
    upcoming: Annotated[bool, typer.Option("--upcoming", help="Only events starting from now on.")] = False,
    include_deleted: IncludeDeletedOption = False,
    limit: LimitOption = 50,
    after: AfterOption = None,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
) -> None:
    """List events by start date, a page at a time.

    Example: linea events list --status PUBLISHED --upcoming --limit 20
    """
    from linea_cli.services.events import LIST_COLUMNS, EventFilter, list_events

    with transaction() as (session, _actor):
        page = list_events(
            session,
            filters=EventFilter(status=status, upcoming=upcoming, include_deleted=include_deleted),
            limit=limit,
            after=after,
        )
    render(page.items, LIST_COLUMNS, chosen_format(fmt, as_json), title="Events", paginated=True, next_cursor=page.next_cursor)
