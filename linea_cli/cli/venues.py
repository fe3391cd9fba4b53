"""`linea venues ...`: list, show, create, update, delete, restore."""

from __future__ import annotations

from typing import Annotated

import typer

from linea_cli.cli.completion import complete_venue
from linea_cli.cli.context import listed_rows, transaction
from linea_cli.cli.options import (
    AfterOption,
    AllOption,
    FieldsOption,
    FormatOption,
    IncludeDeletedOption,
    JsonOption,
    LimitOption,
    chosen_format,
)
from linea_cli.output import Column, OutputFormat, render, render_record, say, select_fields

app = typer.Typer(help="List and manage venues.", no_args_is_help=True)

# In JSON/CSV order; `priority`: which a narrow terminal leaves out first (see output.Column).
LIST_COLUMNS = (
    Column("id"), Column("name"), Column("city", priority=1), Column("country", priority=2),
    Column("address", priority=4), Column("website", priority=5), Column("deleted_at", priority=1, deleted=True),
)

VenueArgument = Annotated[str, typer.Argument(metavar="ID", help="The venue's id.", autocompletion=complete_venue)]
LatOption = Annotated[float | None, typer.Option("--lat", help="Latitude, -90 to 90.")]
LngOption = Annotated[float | None, typer.Option("--lng", help="Longitude, -180 to 180.")]
WebsiteOption = Annotated[str | None, typer.Option("--website", metavar="URL", help="An http(s) URL.")]


@app.command("list")
def list_(
    city: Annotated[str | None, typer.Option("--city", help="Only venues in this city (any case).")] = None,
    country: Annotated[str | None, typer.Option("--country", help="Only venues in this country (any case).")] = None,
    search: Annotated[
        str | None, typer.Option("--search", metavar="TEXT", help="Name, address or city contains TEXT (any case).")
    ] = None,
    include_deleted: IncludeDeletedOption = False,
    limit: LimitOption = 50,
    after: AfterOption = None,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
    every_page: AllOption = False,
) -> None:
    """List venues by name, a page at a time.

    Example: linea venues list --city Lisbon --limit 20
    """
    from linea_cli.services.venues import VenueFilter, list_venues

    filters = VenueFilter(city=city, country=country, search=search, include_deleted=include_deleted)
    rows, next_cursor = listed_rows(
        lambda session, _actor, size, cursor: list_venues(session, filters=filters, limit=size, after=cursor),
        limit=limit, after=after, every_page=every_page,
    )
    render(
        rows, LIST_COLUMNS, chosen_format(fmt, as_json), title="Venues", paginated=True,
        next_cursor=next_cursor, include_deleted=include_deleted, fields=fields,
    )


@app.command()
def show(
    venue: VenueArgument,
    include_deleted: IncludeDeletedOption = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Show a venue with its upcoming events.

    Example: linea venues show cm3x0example000000000000 --json
    """
    from linea_cli.services.venues import show_venue

    with transaction() as (session, _actor):
        record = show_venue(session, venue, include_deleted=include_deleted)
    render_record(record, chosen_format(fmt, as_json), title=f"Venue {record['name']}", fields=fields)


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="Name.")],
    address: Annotated[str, typer.Option("--address", help="Street address.")],
    city: Annotated[str, typer.Option("--city", help="City.")],
    country: Annotated[str, typer.Option("--country", help="Country (e.g. PT).")],
    lat: LatOption = None,
    lng: LngOption = None,
    website: WebsiteOption = None,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Create a venue.

    Example: linea venues create --name "Riverside Hall" --address "1 Quay St" --city Lisbon --country PT --lat 38.7 --lng -9.1
    """
    from linea_cli.services.venues import VenueFields, create_venue

    changes = VenueFields(
        name=name, address=address, city=city, country=country, latitude=lat, longitude=lng, website=website
    )
    with transaction() as (session, actor):
        record = create_venue(session, fields_=changes, actor=actor)
        select_fields(record, fields)  # an unknown --fields name stops the change before its commit
    say(f"created venue {record['id']}")
    render_record(record, chosen_format(fmt, as_json), title=f"Venue {record['name']}", fields=fields)


@app.command()
def update(
    venue: VenueArgument,
    name: Annotated[str | None, typer.Option("--name", help="Name.")] = None,
    address: Annotated[str | None, typer.Option("--address", help="Street address.")] = None,
    city: Annotated[str | None, typer.Option("--city", help="City.")] = None,
    country: Annotated[str | None, typer.Option("--country", help="Country.")] = None,
    lat: LatOption = None,
    lng: LngOption = None,
    website: WebsiteOption = None,
    clear: Annotated[
        list[str] | None,
        typer.Option("--clear", metavar="FIELD", help="Empty a field: lat, lng, website (repeatable)."),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Change a venue's fields.

    Example: linea venues update cm3x0example000000000000 --website https://riverside.example --clear lat --clear lng
    """
    from linea_cli.services.venues import VenueFields, update_venue

    changes = VenueFields(
        name=name, address=address, city=city, country=country, latitude=lat, longitude=lng, website=website
    )
    with transaction() as (session, actor):
        record = update_venue(session, venue, fields_=changes, clear=tuple(clear or ()), actor=actor)
        select_fields(record, fields)  # an unknown --fields name stops the change before its commit
    render_record(record, chosen_format(fmt, as_json), title=f"Venue {record['name']}", fields=fields)


@app.command()
def delete(
    venue: VenueArgument,
    force: Annotated[
        bool, typer.Option("--force", help="Delete even with upcoming events, detaching them from the venue.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Soft-delete a venue (refused while it has upcoming events, unless --force).

    Example: linea venues delete cm3x0example000000000000 --force
    """
    from linea_cli.services.venues import delete_venue

    with transaction() as (session, actor):
        record = delete_venue(session, venue, actor=actor, force=force)
        select_fields(record, fields)  # an unknown --fields name stops the change before its commit
    if record["detached_events"]:
        say(f"detached {record['detached_events']} upcoming event(s) from the venue")
    say(f"deleted venue {record['id']} (undo: linea venues restore {record['id']})")
    render_record(record, chosen_format(fmt, as_json), title=f"Venue {record['name']}", fields=fields)


@app.command()
def restore(venue: VenueArgument, fmt: FormatOption = OutputFormat.table, as_json: JsonOption = False, fields: FieldsOption = None) -> None:
    """Restore a soft-deleted venue.

    Example: linea venues restore cm3x0example000000000000
    """
    from linea_cli.services.venues import restore_venue

    with transaction() as (session, actor):
        record = restore_venue(session, venue, actor=actor)
        select_fields(record, fields)  # an unknown --fields name stops the change before its commit
    say(f"restored venue {record['id']}")
    render_record(record, chosen_format(fmt, as_json), title=f"Venue {record['name']}", fields=fields)
