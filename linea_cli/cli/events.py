"""`linea events ...`: list, show, create, update, publish, cancel, complete, delete, restore."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import typer

from linea_cli.cli.completion import complete_event, complete_user, complete_venue
from linea_cli.cli.confirm import confirm_change
from linea_cli.cli.context import state
from linea_cli.cli.field_options import field_options, list_columns, naming_options
from linea_cli.cli.options import DryRunOption, IncludeDeletedOption, Output, YesOption, output_options
from linea_cli.enums import EventStatus
from linea_cli.errors import InvalidInput
from linea_cli.fields import EVENTS
from linea_cli.output import Column, say, warn

app = typer.Typer(help="List and manage events.", no_args_is_help=True)

EventArgument = Annotated[str, typer.Argument(metavar="SLUG|ID", help="The event's slug or id.", autocompletion=complete_event)]
ForceOption = Annotated[bool, typer.Option("--force", help="Publish even though the event starts in the past.")]

# From linea_cli.fields.EVENTS: in JSON/CSV order; `priority`: which a narrow terminal leaves out first.
LIST_COLUMNS = list_columns(EVENTS)
COMPLETED_COLUMNS = (
    Column("slug"), Column("title"), Column("start_date", priority=1), Column("end_date", priority=2),
    Column("id", priority=3),
)


def _title(record: Mapping[str, Any]) -> str:
    return f"Event {record['slug']}"


def _date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    from linea_cli.timeutil import parse_datetime

    return parse_datetime(value, timezone=state().settings().timezone, field=option)


def _period_end(value: str | None) -> datetime | None:
    """The exclusive upper bound for `--to`: a date alone includes that whole day."""
    from datetime import timedelta

    moment = _date(value, "--to")
    if value is None or moment is None:
        return None
    step = timedelta(days=1) if len(value.strip()) == 10 else timedelta(milliseconds=1)
    try:
        return moment + step
    except OverflowError:  # `--to 9999-12-31`: the day after is past the calendar, so no bound is left
        return datetime.max


@app.command("list")
@output_options(columns=LIST_COLUMNS, title="Events", pages=True)
@naming_options(EVENTS)
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
    *,
    out: Output,
) -> None:
    """List events by start date, a page at a time.

    Example: linea events list --status PUBLISHED --upcoming --search fest --limit 20
    """
    from linea_cli.services.reads import EventFilter, events_page

    if upcoming and past:
        raise InvalidInput("--upcoming and --past exclude each other: pass one")
    filters = EventFilter(
        status=status, owner=owner, venue_id=venue, upcoming=upcoming, past=past, search=search,
        include_deleted=include_deleted, starts_from=_date(from_, "--from"), starts_before=_period_end(to),
    )
    rows, next_cursor = out.page(
        lambda connection, _actor, size, cursor: events_page(connection, filters=filters, limit=size, after=cursor),
        read_only=True,
    )
    out.rows(rows, paginated=True, next_cursor=next_cursor, include_deleted=include_deleted)


@app.command()
@output_options(title=_title)
def show(event: EventArgument, include_deleted: IncludeDeletedOption = False, *, out: Output) -> Mapping[str, Any]:
    """Show an event with its owner, venue, waitlist counts and places left.

    Example: linea events show summer-fest --json
    """
    from linea_cli.services.events import over_capacity, show_event

    record = out.show(lambda session, _actor: show_event(session, event, include_deleted=include_deleted))
    if overbooked := over_capacity(record["slug"], record["capacity"], record["places_left"]):
        warn(overbooked)
    return record


@app.command()
@output_options(title=_title)
@field_options(EVENTS, creating=True)
def create(
    given: dict[str, Any],
    publish: Annotated[bool, typer.Option("--publish", help="Create it PUBLISHED instead of DRAFT.")] = False,
    force: ForceOption = False,
    *,
    out: Output,
) -> Mapping[str, Any]:
    """Create an event (a DRAFT unless --publish).

    Example: linea --as ann@example.com events create --title "Summer Fest" --start 2031-07-01T18:00 --capacity 200
    """
    from linea_cli.services.events import EventFields, create_event

    record = out.change(
        lambda session, actor: create_event(session, fields_=EventFields(**given), actor=actor, publish=publish, force=force)
    )
    say(f"created event {record['slug']} ({record['status'].name})")
    return record


@app.command()
@output_options(title=_title)
@field_options(EVENTS, clearing=True)
def update(
    event: EventArgument,
    given: dict[str, Any],
    clear: tuple[str, ...],
    force: Annotated[
        bool, typer.Option("--force", help="Set a capacity below the confirmed entries (overbook the event).")
    ] = False,
    *,
    out: Output,
) -> Mapping[str, Any]:
    """Change an event's fields; the slug changes only with --slug.

    A capacity below the confirmed entries is refused (exit 4) unless --force.

    Example: linea events update summer-fest --capacity 250 --clear youtube-url
    """
    from linea_cli.services.events import EventFields, over_capacity, update_event

    record = out.change(
        lambda session, actor: update_event(
            session, event, fields_=EventFields(**given), clear=clear, actor=actor, force=force
        )
    )
    if overbooked := over_capacity(record["slug"], record["capacity"], record["places_left"]):
        warn(overbooked)
    return record


@app.command()
@output_options(title=_title)
def publish(event: EventArgument, force: ForceOption = False, *, out: Output) -> Mapping[str, Any]:
    """Publish a DRAFT event (it must start in the future unless --force).

    Example: linea events publish summer-fest
    """
    from linea_cli.services.events import publish_event

    record = out.change(lambda session, actor: publish_event(session, event, actor=actor, force=force))
    say(f"published event {record['slug']}")
    return record


@app.command()
@output_options(title=_title)
def cancel(event: EventArgument, yes: YesOption = False, *, out: Output) -> Mapping[str, Any]:
    """Cancel a DRAFT or PUBLISHED event (final).

    Example: linea events cancel summer-fest
    """
    from linea_cli.services.events import cancel_event

    confirm_change(f"cancel event {event}", yes=yes)
    record = out.change(lambda session, actor: cancel_event(session, event, actor=actor))
    say(f"cancelled event {record['slug']}")
    return record


@app.command()
@output_options(title=_title)
def complete(event: EventArgument, *, out: Output) -> Mapping[str, Any]:
    """Mark a PUBLISHED event as COMPLETED (final).

    Example: linea events complete summer-fest
    """
    from linea_cli.services.events import complete_event

    record = out.change(lambda session, actor: complete_event(session, event, actor=actor))
    say(f"completed event {record['slug']}")
    return record


@app.command()
@output_options(title=_title)
def delete(event: EventArgument, yes: YesOption = False, *, out: Output) -> Mapping[str, Any]:
    """Soft-delete an event: hidden from lists, kept for the audit trail and `restore`.

    Example: linea events delete summer-fest
    """
    from linea_cli.services.events import delete_event

    confirm_change(f"delete event {event}", yes=yes)
    record = out.change(lambda session, actor: delete_event(session, event, actor=actor))
    say(f"deleted event {record['slug']} (undo: linea events restore {record['slug']})")
    return record


@app.command()
@output_options(title=_title)
def restore(event: EventArgument, *, out: Output) -> Mapping[str, Any]:
    """Restore a soft-deleted event.

    Example: linea events restore summer-fest
    """
    from linea_cli.services.events import restore_event

    record = out.change(lambda session, actor: restore_event(session, event, actor=actor))
    say(f"restored event {record['slug']}")
    return record


@app.command("complete-past")
@output_options(columns=COMPLETED_COLUMNS, title="Completed events")
def complete_past(dry_run: DryRunOption = False, *, out: Output) -> None:
    """Mark PUBLISHED events that have ended as COMPLETED (for cron).

    Example: linea events complete-past --dry-run
    """
    from linea_cli.services.events import complete_past_events

    out.check()  # an unknown --fields name stops before anything changes
    done = out.read(lambda session, actor: complete_past_events(session, actor=actor, dry_run=dry_run))
    if done or not out.for_people:
        out.rows(done)
    say(f"{'would complete' if dry_run else 'completed'} {len(done)} event(s)")
