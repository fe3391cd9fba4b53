"""`linea waitlist ...`: entries, promotion, stats, CSV import and export."""

from __future__ import annotations

import enum
import sys
from typing import Annotated

import typer

from linea_cli.cli.completion import complete_event, complete_waitlist_email
from linea_cli.cli.confirm import confirm_change
from linea_cli.cli.context import open_database, state, transaction, transactions
from linea_cli.cli.options import DryRunOption, IncludeDeletedOption, Output, YesOption, output_options
from linea_cli.cli.progress import batch_progress, byte_progress
from linea_cli.enums import WaitlistStatus
from linea_cli.errors import UsageProblem, shown
from linea_cli.output import Column, OutputFormat, say, warn

app = typer.Typer(help="Manage event waitlists: add, promote, import and export.", no_args_is_help=True)

# In JSON/CSV order; `priority`: which a narrow terminal leaves out first (see output.Column).
LIST_COLUMNS = (
    Column("email"), Column("status"), Column("name", priority=2), Column("created_at", priority=1),
    Column("updated_at", wide=True),
)
PROMOTED_COLUMNS = (Column("email"), Column("status"), Column("created_at", priority=1))

EventArgument = Annotated[str, typer.Argument(metavar="EVENT", help="Event slug or id.", autocompletion=complete_event)]
EmailArgument = Annotated[
    str, typer.Argument(metavar="EMAIL", help="The address on the waitlist (any case).", autocompletion=complete_waitlist_email)
]
StatusOption = Annotated[
    WaitlistStatus | None, typer.Option("--status", case_sensitive=False, help="Only entries in this status.")
]
# Files larger than this get a progress bar (when stderr is a terminal).
PROGRESS_THRESHOLD = 4 * 1024 * 1024




class OnDuplicate(enum.StrEnum):
    skip = "skip"
    update = "update"


@app.command("list")
@output_options(title="Waitlist entries", pages=True)
def list_(
    event: EventArgument,
    status: StatusOption = None,
    search: Annotated[str | None, typer.Option("--search", metavar="EMAIL", help="Only addresses containing this text.")] = None,
    include_deleted: IncludeDeletedOption = False,
    *,
    out: Output,
) -> None:
    """List an event's waitlist in sign-up order, a page at a time.

    Example: linea waitlist list summer-fest --status PENDING --search @example.com
    """
    from linea_cli.services.waitlist import WaitlistFilter, list_entries

    filters = WaitlistFilter(status=status, search=search, include_deleted=include_deleted)
    columns = (*LIST_COLUMNS, Column("deleted_at", priority=1)) if include_deleted else LIST_COLUMNS
    out.check(columns)
    rows, next_cursor = out.page(
        lambda session, actor, size, cursor: list_entries(
            session, event_ref=event, filters=filters, actor=actor, limit=size, after=cursor
        ),
    )
    out.rows(rows, columns, paginated=True, next_cursor=next_cursor)


@app.command()
@output_options(title="Waitlist entry")
def add(
    event: EventArgument,
    email: EmailArgument,
    status: Annotated[WaitlistStatus, typer.Option("--status", case_sensitive=False, help="Status of the new entry.")] = WaitlistStatus.PENDING,
    *,
    out: Output,
) -> dict:
    """Add an address to an event's waitlist (a duplicate exits 4).

    Example: linea waitlist add summer-fest Ann@Example.com
    """
    from linea_cli.services.waitlist import add_entry

    return out.change(lambda session, actor: add_entry(session, event_ref=event, email=email, status=status, actor=actor))


@app.command()
@output_options(title="Waitlist entry")
def confirm(event: EventArgument, email: EmailArgument, *, out: Output) -> dict:
    """Confirm one entry, if the event has a place left.

    Example: linea waitlist confirm summer-fest ann@example.com
    """
    from linea_cli.services.waitlist import confirm_entry

    return out.change(lambda session, actor: confirm_entry(session, event_ref=event, email=email, actor=actor))


@app.command()
@output_options(title="Waitlist entry")
def cancel(event: EventArgument, email: EmailArgument, *, out: Output) -> dict:
    """Cancel one entry (it stays on the list as CANCELLED and frees its place).

    Example: linea waitlist cancel summer-fest ann@example.com
    """
    from linea_cli.services.waitlist import cancel_entry

    return out.change(lambda session, actor: cancel_entry(session, event_ref=event, email=email, actor=actor))


@app.command()
@output_options(title="Removed waitlist entry")
def remove(event: EventArgument, email: EmailArgument, *, out: Output) -> dict:
    """Remove one entry (soft delete; `waitlist add` brings it back).

    Example: linea waitlist remove summer-fest ann@example.com
    """
    from linea_cli.services.waitlist import remove_entry

    return out.change(lambda session, actor: remove_entry(session, event_ref=event, email=email, actor=actor))


@app.command()
@output_options(columns=PROMOTED_COLUMNS, title="Promoted entries")
def promote(
    event: EventArgument,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Confirm at most N entries (default: fill every place).")] = None,
    *,
    out: Output,
) -> None:
    """Confirm PENDING entries first come, first served, never beyond the capacity.

    Example: linea waitlist promote summer-fest --count 25
    """
    from linea_cli.services.waitlist import promote_waitlist

    out.check()  # --fields picks the entries' columns, in JSON too; checked before anything changes
    result = out.read(lambda session, actor: promote_waitlist(session, event_ref=event, count=count, actor=actor))
    summary = {"event": result.event, "promoted": len(result.promoted), "capacity": result.capacity,
               "places_left": result.places_left, "pending_left": result.pending_left}
    out.summary(summary, result.promoted, items="entries")
    if out.format is OutputFormat.json:  # the document carries the summary
        return
    places = "unlimited" if result.capacity is None else str(result.places_left)
    say(f"promoted {len(result.promoted)} on {result.event}; places left: {places}; still pending: {result.pending_left}")


# Named as every list names them (`slug`, `..._at`, `..._id`): a table then keeps slugs and ids whole.
RETENTION_COLUMNS = (Column("slug"), Column("ended_at"), Column("entries", justify="right"), Column("event_id", priority=1))


@app.command()
@output_options(title="Waitlist retention")
def retention(
    ended_before: Annotated[
        str, typer.Option("--ended-before", metavar="DURATION|DATE", help="Events that ended before this: a duration back from now (180d, 26w) or a date (2026-01-31).")
    ],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=100_000, help="Entries anonymized per transaction.")] = 5_000,
    dry_run: DryRunOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success (for cron).")] = False,
    *,
    out: Output,
) -> None:
    """Anonymize the waitlist addresses of people without an account once their event has ended (for cron).

    Entries without a user and whose address is no live user's lose the address; status and
    counts stay. One transaction per batch, one audit row per event. An ADMIN must act, named by
    --as or LINEA_ACTOR (as in cron: LINEA_ACTOR=admin@example.com).

    Example: linea --as admin@example.com waitlist retention --ended-before 180d --quiet
    """
    from linea_cli.services.retention import apply_retention, parse_cutoff

    out.check(RETENTION_COLUMNS if dry_run else ("anonymized", "events", "batches", "ended_before"))  # before anything runs
    with transactions() as unit_of_work:
        result = apply_retention(
            unit_of_work,
            cutoff=parse_cutoff(ended_before),
            batch_size=batch_size,
            dry_run=dry_run,
            on_batch=batch_progress("anonymized", quiet=quiet),
        )
    if dry_run:
        rows = [{"slug": e.slug, "ended_at": e.ended, "entries": e.entries, "event_id": e.id} for e in result.events]
        out.rows(rows, RETENTION_COLUMNS, title="Ended events with account-less sign-ups")
        if not quiet and out.format is OutputFormat.table:
            say(f"would anonymize {result.anonymized} waitlist entries of {len(result.events)} events")
        return
    if quiet:
        return
    record = {"anonymized": result.anonymized, "events": len(result.events), "batches": result.batches,
              "ended_before": result.cutoff}
    if out.format is OutputFormat.table and out.fields is None:
        from linea_cli.timeutil import iso_timestamp

        say(f"anonymized {result.anonymized} waitlist entries of {len(result.events)} events "
            f"that ended before {iso_timestamp(result.cutoff)}")
        return
    out.record(record)


@app.command()
@output_options(title="Waitlist")
def stats(event: EventArgument, *, out: Output) -> None:
    """Show counts per status, capacity, places left, first and last sign-up, and sign-ups over time.

    Example: linea waitlist stats summer-fest --json
    """
    from linea_cli.charts import signups_picture
    from linea_cli.output import Picture
    from linea_cli.services.reads import over_capacity, waitlist_summary

    record = out.query(lambda connection, actor: waitlist_summary(connection, event_ref=event, actor=actor))
    if overbooked := over_capacity(record["event"], record["capacity"], record["places_left"]):
        warn(overbooked)
    out.record(record, picture=Picture(keys=("signups_period", "signups"), draw=signups_picture))


@app.command("import")
@output_options()
def import_(
    event: EventArgument,
    file: Annotated[str, typer.Argument(metavar="FILE", help="CSV file with a header row; - reads stdin.")],
    delimiter: Annotated[
        str | None,
        typer.Option("--delimiter", "-d", help="Field separator: ',' ';' or 'tab' (default: found in the header line)."),
    ] = None,
    encoding: Annotated[
        str,
        typer.Option("--encoding", metavar="CODEC", help="The file's encoding: any Python codec (windows-1252, latin-1, utf-16...); auto reads UTF-8 with or without BOM and UTF-16 with BOM."),
    ] = "auto",
    on_duplicate: Annotated[
        OnDuplicate, typer.Option("--on-duplicate", case_sensitive=False, help="skip keeps the existing entry; update sets its status from the file.")
    ] = OnDuplicate.skip,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Import the valid rows and report the rest (default: all or nothing).")] = False,
    errors_file: Annotated[str | None, typer.Option("--errors-file", metavar="PATH", help="Write every invalid row (line,email,reason) to this CSV.")] = None,
    dry_run: DryRunOption = False,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Finish the event's unfinished import of this same file (left by a killed linea) instead of undoing it."),
    ] = False,
    yes: YesOption = False,
    *,
    out: Output,
) -> None:
    """Import a CSV of addresses (email[,status][,created_at][,name]) into an event's waitlist.

    Example: linea waitlist import summer-fest excel.csv --encoding windows-1252 --skip-invalid
    """
    import contextlib

    from linea_cli import csvio
    from linea_cli.output import csv_rows
    from linea_cli.output_file import output_file, text_writer
    from linea_cli.services.waitlist import ImportRejected, ImportSummary, import_waitlist

    if resume and dry_run:
        raise UsageProblem("--resume finishes an unfinished import: it cannot be a --dry-run")
    # Before the file is read: a large import commits its batches as it goes.
    out.check(ImportSummary(event="").counts())
    def before_commit(_summary: ImportSummary) -> None:
        if errors_out is not None:
            errors_out.flush()  # an errors file that cannot be written stops the import before it commits

    with contextlib.ExitStack() as stack:
        on_invalid, errors_out = None, None
        if errors_file is not None:
            # Kept when the import is refused for invalid rows: it is the list of them.
            errors_out = stack.enter_context(output_file(errors_file, option="--errors-file", keep_on=(ImportRejected,)))
            write_error = csv_rows(text_writer(errors_out), ("line", "email", "reason"), own=("reason",))
            on_invalid = lambda row: write_error(vars(row))  # noqa: E731
        source = stack.enter_context(csvio.open_input(file))
        if not dry_run:  # said (or asked) once the files named are known to open
            from linea_cli.services.waitlist import entry_count

            with transaction() as (session, _actor):
                entries = entry_count(session, event)
            if entries:  # it changes a waitlist people are already on
                confirm_change(f"import into the waitlist of {event} ({entries} {'entry' if entries == 1 else 'entries'})", yes=yes)
        if file == "-" and sys.stdin.isatty():
            say("reading CSV from the terminal: type or paste it, header first, and end with Ctrl-D")
        size = csvio.input_size(file)
        bar = stack.enter_context(byte_progress("reading", total=size, show=size is not None and size >= PROGRESS_THRESHOLD))
        with transactions() as unit_of_work:
            summary = import_waitlist(
                unit_of_work,
                connect=open_database().connect,
                event_ref=event,
                source=source,
                source_name=file,
                delimiter=None if delimiter is None else csvio.parse_delimiter(delimiter),
                encoding=encoding,
                on_delimiter=lambda name: say(f"columns separated by {name} (found in the header line; --delimiter to choose)"),
                on_duplicate=on_duplicate.value,
                skip_invalid=skip_invalid,
                dry_run=dry_run,
                resume=resume,
                timezone=state().settings().timezone,
                errors_file=errors_file,
                on_invalid=on_invalid,
                on_progress=bar.advance if bar else None,
                on_phase=bar.phase if bar else None,
                on_undone=_say_undone,
                before_commit=before_commit,
            )
    _say_import_notes(summary, errors_file)
    out.record(summary.counts(), title="Import (dry run)" if dry_run else "Import")


def _say_import_notes(summary, errors_file: str | None) -> None:  # noqa: ANN001 - ImportSummary, imported lazily
    """What people should know about an import beside its counts: columns and names left out, the
    first invalid rows."""
    if summary.unfinished_written:
        warn(f"an unfinished import into {summary.event} wrote {summary.unfinished_written} entries: the real import "
             "undoes it first, so these counts (which include its entries) will differ")
    if summary.unknown_columns:
        warn("ignored unknown column(s): " + ", ".join(summary.unknown_columns))
    if summary.named_rows:
        warn(f"the name column is not imported ({summary.named_rows} rows have one): an entry has no name of its own;"
             " export shows the name of the user with that address")
    for row in summary.first_invalid:
        say(f"line {row.line}: {row.reason}")
    if summary.invalid > len(summary.first_invalid):
        say(f"... and {summary.invalid - len(summary.first_invalid)} more invalid rows" + (f" (see {errors_file})" if errors_file else ""))


def _say_undone(undone) -> None:  # noqa: ANN001 - import_journal.Undone, imported lazily
    journal = undone.journal
    kept = f"; kept {undone.kept} that were changed since (confirmed, cancelled or removed)" if undone.kept else ""
    warn(f"undid an unfinished import into {journal.event_slug} (file {shown(journal.source)}, started "
         f"{journal.started_at:%Y-%m-%d %H:%M:%S} UTC): removed the {undone.removed} entries it had written{kept}")


@app.command()
@output_options(default=OutputFormat.csv)
def export(
    event: EventArgument,
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="FILE", help="Write to FILE (atomically) instead of stdout (default or -).")] = None,
    status: StatusOption = None,
    *,
    out: Output,
    raw: Annotated[bool, typer.Option("--raw", help="Do not neutralize cells a spreadsheet would run as formulas.")] = False,
    bom: Annotated[bool, typer.Option("--bom", help="Start the CSV with a UTF-8 byte order mark, for Excel to show accents.")] = False,
) -> None:
    """Export an event's waitlist (email,status,created_at,updated_at,name) as CSV, JSON or NDJSON.

    Example: linea waitlist export summer-fest -o summer-fest.csv --bom
    """
    if bom and out.format is not OutputFormat.csv:
        from linea_cli.errors import InvalidInput

        raise InvalidInput(f"--bom is for CSV, not {out.format.value}", hint="the other formats are UTF-8 without a byte order mark")
    from contextlib import closing

    from linea_cli.cli.context import read_on_replica_or_primary, rows_on_replica_or_primary
    from linea_cli.output_file import output_file, text_writer, writes_to_stdout
    from linea_cli.services.waitlist import exportable_event_id, record_waitlist_export, stream_waitlist
    from linea_cli.services.waitlist_csv import EXPORT_COLUMNS

    out.check(EXPORT_COLUMNS)  # an unknown --fields name stops before anything is read
    with output_file(output) as file:  # a FILE that cannot be written stops before anything is read
        event_id = read_on_replica_or_primary(
            lambda session, actor: exportable_event_id(session, event_ref=event, actor=actor)
        )
        if bom and out.format is OutputFormat.csv:
            file.write("\ufeff".encode())
        if out.format is OutputFormat.csv and out.fields is None:  # every column: COPY writes it
            from linea_cli.services.waitlist import export_waitlist_csv
            from linea_cli.services.waitlist_csv import ExportProgress

            # A replica gone mid-COPY: the primary goes on after the last row written, once each.
            progress = ExportProgress()
            count = read_on_replica_or_primary(
                lambda session, _actor: export_waitlist_csv(session, event_id=event_id, out=file, status=status, raw=raw, progress=progress)
            )
        else:
            rows = rows_on_replica_or_primary(
                lambda session, _actor, after: stream_waitlist(session, event_id=event_id, status=status, after=after)
            )
            with closing(rows):
                count = out.rows(rows, EXPORT_COLUMNS, stream=text_writer(file), raw_csv=raw)
        # The EXPORT row, on the primary, once every byte is written (a device or a full disk fails
        # at the flush) and before the file is kept (output_file renames it on leaving): an export
        # that failed leaves no row, and no file is kept without one.
        file.flush()
        with transaction() as (session, actor):
            record_waitlist_export(session, event_ref=event_id, actor=actor, fmt=out.format.value, status=status)
    if not writes_to_stdout(output):
        say(f"exported {count} entries to {output}")
