"""`linea audit ...`: read and export the audit log (ADMINs and the system only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from linea_cli.cli.completion import complete_user
from linea_cli.cli.context import rows_on_replica_or_primary, state
from linea_cli.cli.options import Output, output_options
from linea_cli.output import Column, OutputFormat, say

if TYPE_CHECKING:  # the service module (and SQLAlchemy with it) loads only when a command runs
    from linea_cli.services.audit import AuditFilter

app = typer.Typer(help="Read and export the audit log.", no_args_is_help=True)

# In JSON/CSV order; `priority`: which a narrow terminal leaves out first (see output.Column).
# The id first and always shown: it is what `audit show ID` takes.
LIST_COLUMNS = (
    Column("id"), Column("created_at"), Column("action"), Column("resource", priority=1),
    Column("resource_id", priority=1), Column("actor_email", priority=2),
)

ResourceOption = Annotated[str | None, typer.Option("--resource", metavar="RESOURCE", help="Only rows about this resource type, as recorded (User, Event, Session, ...).")]
ResourceIdOption = Annotated[str | None, typer.Option("--resource-id", metavar="ID", help="Only rows about this id.")]
UserOption = Annotated[str | None, typer.Option("--user", metavar="EMAIL", help="Only rows made by this user (email or id).", autocompletion=complete_user)]
ActionOption = Annotated[str | None, typer.Option("--action", metavar="ACTION", help="Only this action (CREATE, UPDATE, DELETE, ...).")]
SinceOption = Annotated[str | None, typer.Option("--since", metavar="TIME", help="Only rows at or after TIME (ISO 8601).")]
UntilOption = Annotated[str | None, typer.Option("--until", metavar="TIME", help="Only rows before TIME (ISO 8601).")]
OutputFileOption = Annotated[
    str | None, typer.Option("--output", "-o", metavar="FILE", help="Write to FILE (atomically) instead of stdout (default or -).")
]


def _filters(
    resource: str | None, resource_id: str | None, user: str | None, action: str | None, since: str | None, until: str | None
) -> AuditFilter:
    from linea_cli.services.audit import AuditFilter
    from linea_cli.timeutil import parse_datetime

    timezone = state().settings().timezone
    return AuditFilter(
        resource=resource,
        resource_id=resource_id,
        user=user,
        action=action,
        since=parse_datetime(since, timezone=timezone, field="--since") if since else None,
        until=parse_datetime(until, timezone=timezone, field="--until") if until else None,
    )


@app.command("list")
@output_options(columns=LIST_COLUMNS, title="Audit log", pages=True)
def list_(
    resource: ResourceOption = None,
    resource_id: ResourceIdOption = None,
    user: UserOption = None,
    action: ActionOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    *,
    out: Output,
) -> None:
    """List audit rows, newest first, a page at a time.

    Example: linea audit list --resource User --action UPDATE --since 2026-11-01
    """
    from linea_cli.services.audit import list_audit

    filters = _filters(resource, resource_id, user, action, since, until)
    rows, next_cursor = out.page(
        lambda session, actor, size, cursor: list_audit(session, filters=filters, actor=actor, limit=size, after=cursor)
    )
    out.rows(rows, paginated=True, next_cursor=next_cursor)


@app.command()
@output_options(title="Audit row")
def show(audit_id: Annotated[str, typer.Argument(metavar="ID", help="The audit row's id.")], *, out: Output) -> dict:
    """Show one audit row with its metadata pretty-printed.

    Example: linea audit show c0000019a2b3c4d5e6f7a8b9c
    """
    from linea_cli.services.audit import show_audit

    return out.show(lambda session, actor: show_audit(session, audit_id=audit_id, actor=actor))


@app.command()
@output_options(default=OutputFormat.ndjson)
def export(
    resource: ResourceOption = None,
    resource_id: ResourceIdOption = None,
    user: UserOption = None,
    action: ActionOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    output: OutputFileOption = None,
    *,
    out: Output,
) -> None:
    """Stream matching audit rows, oldest first (ndjson unless --format).

    To stdout, or to -o FILE through a temporary file renamed into place on success.

    Example: linea audit export --since 2026-01-01 --format csv -o audit-2026.csv
    """
    from contextlib import closing

    from linea_cli.output_file import output_file, text_writer, writes_to_stdout
    from linea_cli.services.audit import EXPORT_COLUMNS, stream_audit

    filters = _filters(resource, resource_id, user, action, since, until)
    out.check(EXPORT_COLUMNS)  # an unknown --fields name stops before the EXPORT audit row
    # On a replica when one may serve; one gone mid-export leaves the rows after the last one
    # written to the primary (each row once).
    rows = rows_on_replica_or_primary(
        lambda session, actor, after: stream_audit(session, filters=filters, actor=actor, after=after)
    )
    with closing(rows), output_file(output, private=True) as file:
        count = out.rows(rows, EXPORT_COLUMNS, stream=text_writer(file))
    if not writes_to_stdout(output):
        say(f"wrote {count} audit row(s) to {output}")
