"""`linea venues ...`: list, show, create, update, delete, restore."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from linea_cli.cli.completion import complete_venue
from linea_cli.cli.field_options import field_options, list_columns
from linea_cli.cli.options import IncludeDeletedOption, Output, output_options
from linea_cli.fields import VENUES
from linea_cli.output import say

app = typer.Typer(help="List and manage venues.", no_args_is_help=True)

# From linea_cli.fields.VENUES: in JSON/CSV order; `priority`: which a narrow terminal leaves out first.
LIST_COLUMNS = list_columns(VENUES)

VenueArgument = Annotated[str, typer.Argument(metavar="ID", help="The venue's id.", autocompletion=complete_venue)]


def _title(record: Mapping[str, Any]) -> str:
    return f"Venue {record['name']}"


@app.command("list")
@output_options(columns=LIST_COLUMNS, title="Venues", pages=True)
def list_(
    city: Annotated[str | None, typer.Option("--city", help="Only venues in this city (any case).")] = None,
    country: Annotated[str | None, typer.Option("--country", help="Only venues in this country (any case).")] = None,
    search: Annotated[
        str | None, typer.Option("--search", metavar="TEXT", help="Name, address or city contains TEXT (any case).")
    ] = None,
    include_deleted: IncludeDeletedOption = False,
    *,
    out: Output,
) -> None:
    """List venues by name, a page at a time.

    Example: linea venues list --city Lisbon --limit 20
    """
    from linea_cli.services.venues import VenueFilter, list_venues

    filters = VenueFilter(city=city, country=country, search=search, include_deleted=include_deleted)
    rows, next_cursor = out.page(lambda session, _actor, size, cursor: list_venues(session, filters=filters, limit=size, after=cursor))
    out.rows(rows, paginated=True, next_cursor=next_cursor, include_deleted=include_deleted)


@app.command()
@output_options(title=_title)
def show(venue: VenueArgument, include_deleted: IncludeDeletedOption = False, *, out: Output) -> Mapping[str, Any]:
    """Show a venue with its upcoming events.

    Example: linea venues show cm3x0example000000000000 --json
    """
    from linea_cli.services.venues import show_venue

    return out.show(lambda session, _actor: show_venue(session, venue, include_deleted=include_deleted))


@app.command()
@output_options(title=_title)
@field_options(VENUES, creating=True)
def create(given: dict[str, Any], *, out: Output) -> Mapping[str, Any]:
    """Create a venue.

    Example: linea venues create --name "Riverside Hall" --address "1 Quay St" --city Lisbon --country PT --lat 38.7 --lng -9.1
    """
    from linea_cli.services.venues import VenueFields, create_venue

    record = out.change(lambda session, actor: create_venue(session, fields_=VenueFields(**given), actor=actor))
    say(f"created venue {record['id']}")
    return record


@app.command()
@output_options(title=_title)
@field_options(VENUES, clearing=True)
def update(venue: VenueArgument, given: dict[str, Any], clear: tuple[str, ...], *, out: Output) -> Mapping[str, Any]:
    """Change a venue's fields.

    Example: linea venues update cm3x0example000000000000 --website https://riverside.example --clear lat --clear lng
    """
    from linea_cli.services.venues import VenueFields, update_venue

    return out.change(
        lambda session, actor: update_venue(session, venue, fields_=VenueFields(**given), clear=clear, actor=actor)
    )


@app.command()
@output_options(title=_title)
def delete(
    venue: VenueArgument,
    force: Annotated[
        bool, typer.Option("--force", help="Delete even with upcoming events, detaching them from the venue.")
    ] = False,
    *,
    out: Output,
) -> Mapping[str, Any]:
    """Soft-delete a venue (refused while it has upcoming events, unless --force).

    Example: linea venues delete cm3x0example000000000000 --force
    """
    from linea_cli.services.venues import delete_venue

    record = out.change(lambda session, actor: delete_venue(session, venue, actor=actor, force=force))
    if record["detached_events"]:
        say(f"detached {record['detached_events']} upcoming event(s) from the venue")
    say(f"deleted venue {record['id']} (undo: linea venues restore {record['id']})")
    return record


@app.command()
@output_options(title=_title)
def restore(venue: VenueArgument, *, out: Output) -> Mapping[str, Any]:
    """Restore a soft-deleted venue.

    Example: linea venues restore cm3x0example000000000000
    """
    from linea_cli.services.venues import restore_venue

    record = out.change(lambda session, actor: restore_venue(session, venue, actor=actor))
    say(f"restored venue {record['id']}")
    return record
