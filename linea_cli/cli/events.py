"""`linea events ...`: list, show, create, update, publish, cancel, complete, delete, restore."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from linea_cli.cli.completion import complete_event, complete_user, complete_venue
from linea_cli.cli.context import listed_rows, state, transaction
from linea_cli.cli.options import (
    AfterOption,
    AllOption,
    DryRunOption,
    FieldsOption,
    FormatOption,
    IncludeDeletedOption,
    JsonOption,
    LimitOption,
    chosen_format,
)
from linea_cli.enums import EventStatus
from linea_cli.output import (
    TABLE_FORMATS,
    Column,
    OutputFormat,
    render,
    render_record,
    say,
    select_columns,
    select_fields,
    warn,
)

app = typer.Typer(help="List and manage events.", no_args_is_help=True)

EventArgument = Annotated[str, typer.Argument(metavar="SLUG|ID", help="The event's slug or id.", autocompletion=complete_event)]
ForceOption = Annotated[bool, typer.Option("--force", help="Publish even though the event starts in the past.")]
TitleOption = Annotated[str | None, typer.Option("--title", help="Title (the slug does not follow it).")]
StartOption = Annotated[str | None, typer.Option("--start", metavar="DATE", help="Start, ISO 8601.")]
EndOption = Annotated[str | None, typer.Option("--end", metavar="DATE", help="End, ISO 8601.")]
OwnerOption = Annotated[
    str | None, typer.Option("--owner", metavar="EMAIL", help="Owner (an OWNER or ADMIN).", autocompletion=complete_user)
]
VenueOption = Annotated[str | None, typer.Option("--venue", metavar="ID", help="Venue id.", autocompletion=complete_venue)]
CapacityOption = Annotated[int | None, typer.Option("--capacity", metavar="N", help="Places (0 or more).")]
DescriptionOption = Annotated[str | None, typer.Option("--description", help="Description.")]
YoutubeOption = Annotated[
    str | None, typer.Option("--youtube-url", metavar="URL", help="A YouTube watch, share or embed link.")
]
LatOption = Annotated[float | None, typer.Option("--lat", help="Map latitude, -90 to 90.")]
LngOption = Annotated[float | None, typer.Option("--lng", help="Map longitude, -180 to 180.")]
ZoomOption = Annotated[int | None, typer.Option("--zoom", help="Map zoom, 0 to 22.")]
SlugOption = Annotated[str | None, typer.Option("--slug", help="Explicit slug (refused when taken).")]

# In JSON/CSV order; `priority`: which a narrow terminal leaves out first (see output.Column).
LIST_COLUMNS = (
    Column("slug"), Column("title"), Column("status"), Column("start_date", priority=1),
    Column("end_date", wide=True), Column("capacity", justify="right", priority=3),
    Column("owner_email", priority=2), Column("venue_name", priority=5), Column("id", priority=4),
    Column("deleted_at", priority=1, deleted=True),
)
COMPLETED_COLUMNS = (
    Column("slug"), Column("title"), Column("start_date", priority=1), Column("end_date", priority=2),
    Column("id", priority=3),
)


def _date(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    from linea_cli.timeutil import parse_datetime

    return parse_datetime(value, timezone=state().settings().timezone, field=field)


@app.command("list")
def list_(
    status: Annotated[EventStatus | None, typer.Option(case_sensitive=False, help="Only events in this status.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", metavar="EMAIL", help="Only events of this owner.", autocompletion=complete_user)] = None,
    venue: Annotated[str | None, typer.Option("--venue", metavar="ID", help="Only events at this venue.", autocompletion=complete_venue)] = None,
    from_: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="Only events starting at or after DATE.")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="DATE", help="Only events starting up to DATE (a date: that whole day).")
    ] = None,
    upcoming: Annotated[bool, typer.Option("--upcoming", help="Only events starting from now on.")] = False,
    past: Annotated[bool, typer.Option("--past", help="Only events that have ended (end, else start, before now).")] = False,
    search: Annotated[
        str | None, typer.Option("--search", metavar="TEXT", help="Title, slug or description contains TEXT (any case).")
    ] = None,
    include_deleted: IncludeDeletedOption = False,
    limit: LimitOption = 50,
    after: AfterOption = None,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
    every_page: AllOption = False,
) -> None:
    """List events by start date, a page at a time.

    Example: linea events list --status PUBLISHED --upcoming --search fest --limit 20
    """
    from linea_cli.services.events import EventFilter, list_events, parse_period_end

    filters = EventFilter(
        status=status, owner=owner, venue_id=venue, upcoming=upcoming, past=past, search=search,
        include_deleted=include_deleted, starts_from=_date(from_, "--from"),
        starts_before=parse_period_end(to, timezone=state().settings().timezone) if to else None,
    )
    rows, next_cursor = listed_rows(
        lambda session, _actor, size, cursor: list_events(session, filters=filters, limit=size, after=cursor),
        limit=limit, after=after, every_page=every_page,
    )
    render(
        rows, LIST_COLUMNS, chosen_format(fmt, as_json), title="Events", paginated=True,
        next_cursor=next_cursor, include_deleted=include_deleted, fields=fields,
    )


@app.command()
def show(
    event: EventArgument,
    include_deleted: IncludeDeletedOption = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Show an event with its owner, venue, waitlist counts and places left.

    Example: linea events show summer-fest --json
    """
    from linea_cli.services.events import over_capacity, show_event

    with transaction() as (session, _actor):
        record = show_event(session, event, include_deleted=include_deleted)
    if overbooked := over_capacity(record["slug"], record["capacity"], record["places_left"]):
        warn(overbooked)
    render_record(record, chosen_format(fmt, as_json), title=f"Event {record['slug']}", fields=fields)


@app.command()
def create(
    title: Annotated[str, typer.Option("--title", help="Title; the slug is derived from it.")],
    start: Annotated[str, typer.Option("--start", metavar="DATE", help="Start, ISO 8601 (naive: LINEA_TIMEZONE).")],
    end: EndOption = None,
    owner: OwnerOption = None,
    venue: VenueOption = None,
    capacity: CapacityOption = None,
    description: DescriptionOption = None,
    youtube_url: YoutubeOption = None,
    lat: LatOption = None,
    lng: LngOption = None,
    zoom: ZoomOption = None,
    slug: SlugOption = None,
    publish: Annotated[bool, typer.Option("--publish", help="Create it PUBLISHED instead of DRAFT.")] = False,
    force: ForceOption = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Create an event (a DRAFT unless --publish).

    Example: linea --as ann@example.com events create --title "Summer Fest" --start 2026-07-01T18:00 --capacity 200
    """
    from linea_cli.services.events import EventFields, create_event

    changes = EventFields(
        title=title, slug=slug, description=description, start_date=_date(start, "--start"),
        end_date=_date(end, "--end"), capacity=capacity, youtube_url=youtube_url, map_lat=lat, map_lng=lng,
        map_zoom=zoom, owner=owner, venue_id=venue,
    )
    with transaction() as (session, actor):
        record = create_event(session, fields_=changes, actor=actor, publish=publish, force=force)
        select_fields(record, fields)  # an unknown --fields name stops the change before its commit
    say(f"created event {record['slug']} ({record['status'].name})")
    render_record(record, chosen_format(fmt, as_json), title=f"Event {record['slug']}", fields=fields)


@app.command()
def update(
    event: EventArgument,
    title: TitleOption = None,
    start: StartOption = None,
    end: EndOption = None,
    owner: OwnerOption = None,
    venue: VenueOption = None,
    capacity: CapacityOption = None,
    description: DescriptionOption = None,
    youtube_url: YoutubeOption = None,
    lat: LatOption = None,
    lng: LngOption = None,
    zoom: ZoomOption = None,
    slug: SlugOption = None,
    clear: Annotated[
        list[str] | None,
        typer.Option(
            "--clear", metavar="FIELD",
            help="Empty a field: description, end, capacity, youtube-url, lat, lng, zoom, venue (repeatable).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Set a capacity below the confirmed entries (overbook the event).")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Change an event's fields; the slug changes only with --slug.

    A capacity below the confirmed entries is refused (exit 4) unless --force.

    Example: linea events update summer-fest --capacity 250 --clear youtube-url
    """
    from linea_cli.services.events import EventFields, over_capacity, update_event

    changes = EventFields(
        title=title, slug=slug, description=description, start_date=_date(start, "--start"),
        end_date=_date(end, "--end"), capacity=capacity, youtube_url=youtube_url, map_lat=lat, map_lng=lng,
        map_zoom=zoom, owner=owner, venue_id=venue,
    )
    with transaction() as (session, actor):
        record = update_event(session, event, fields_=changes, clear=tuple(clear or ()), actor=actor, force=force)
        select_fields(record, fields)  # an unknown --fields name stops the change before its commit
    if overbooked := over_capacity(record["slug"], record["capacity"], record["places_left"]):
        warn(overbooked)
    render_record(record, chosen_format(fmt, as_json), title=f"Event {record['slug']}", fields=fields)


@app.command()
def publish(
    event: EventArgument,
    force: ForceOption = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Publish a DRAFT event (it must start in the future unless --force).

    Example: linea events publish summer-fest
    """
    from linea_cli.services.events import publish_event

    with transaction() as (session, actor):
        record = publish_event(session, event, actor=actor, force=force)
        select_fields(record, fields)  # an unknown --fields name stops the change before its commit
    say(f"published event {record['slug']}")
    render_record(record, chosen_format(fmt, as_json), title=f"Event {record['slug']}", fields=fields)


@app.command()
def cancel(event: EventArgument, fmt: FormatOption = OutputFormat.table, as_json: JsonOption = False, fields: FieldsOption = None) -> None:
    """Cancel a DRAFT or PUBLISHED event (final).

    Example: linea events cancel summer-fest
    """
    from linea_cli.services.events import cancel_event

    with transaction() as (session, actor):
        record = cancel_event(session, event, actor=actor)
        select_fields(record, fields)  # an unknown --fields name stops the change before its commit
    say(f"cancelled event {record['slug']}")
    render_record(record, chosen_format(fmt, as_json), title=f"Event {record['slug']}", fields=fields)


@app.command()
def complete(event: EventArgument, fmt: FormatOption = OutputFormat.table, as_json: JsonOption = False, fields: FieldsOption = None) -> None:
    """Mark a PUBLISHED event as COMPLETED (final).

    Example: linea events complete summer-fest
    """
    from linea_cli.services.events import complete_event

    with transaction() as (session, actor):
        record = complete_event(session, event, actor=actor)
        select_fields(record, fields)  # an unknown --fields name stops the change before its commit
    say(f"completed event {record['slug']}")
    render_record(record, chosen_format(fmt, as_json), title=f"Event {record['slug']}", fields=fields)


@app.command()
def delete(event: EventArgument, fmt: FormatOption = OutputFormat.table, as_json: JsonOption = False, fields: FieldsOption = None) -> None:
    """Soft-delete an event: hidden from lists, kept for the audit trail and `restore`.

    Example: linea events delete summer-fest
    """
    from linea_cli.services.events import delete_event

    with transaction() as (session, actor):
        record = delete_event(session, event, actor=actor)
        select_fields(record, fields)  # an unknown --fields name stops the change before its commit
    say(f"deleted event {record['slug']} (undo: linea events restore {record['slug']})")
    render_record(record, chosen_format(fmt, as_json), title=f"Event {record['slug']}", fields=fields)


@app.command()
def restore(event: EventArgument, fmt: FormatOption = OutputFormat.table, as_json: JsonOption = False, fields: FieldsOption = None) -> None:
    """Restore a soft-deleted event.

    Example: linea events restore summer-fest
    """
    from linea_cli.services.events import restore_event

    with transaction() as (session, actor):
        record = restore_event(session, event, actor=actor)
        select_fields(record, fields)  # an unknown --fields name stops the change before its commit
    say(f"restored event {record['slug']}")
    render_record(record, chosen_format(fmt, as_json), title=f"Event {record['slug']}", fields=fields)


@app.command("complete-past")
def complete_past(dry_run: DryRunOption = False, fmt: FormatOption = OutputFormat.table, as_json: JsonOption = False, fields: FieldsOption = None) -> None:
    """Mark PUBLISHED events that have ended as COMPLETED (for cron).

    Example: linea events complete-past --dry-run
    """
    from linea_cli.services.events import complete_past_events

    select_columns(COMPLETED_COLUMNS, fields)  # an unknown --fields name stops before anything changes
    with transaction() as (session, actor):
        done = complete_past_events(session, actor=actor, dry_run=dry_run)
    chosen = chosen_format(fmt, as_json)
    if done or chosen not in TABLE_FORMATS:
        render(done, COMPLETED_COLUMNS, chosen, title="Completed events", fields=fields)
    say(f"{'would complete' if dry_run else 'completed'} {len(done)} event(s)")
