"""`linea sessions ...`: list and revoke login sessions; purge expired ones (for cron)."""

from __future__ import annotations

from typing import Annotated

import typer

from linea_cli.cli.completion import complete_user
from linea_cli.cli.confirm import confirm_change
from linea_cli.cli.context import transactions
from linea_cli.cli.options import DryRunOption, Output, YesOption, output_options
from linea_cli.cli.progress import batch_progress
from linea_cli.output import Column

app = typer.Typer(help="List, revoke and purge login sessions.", no_args_is_help=True)

# In JSON/CSV order; `priority`: which a narrow terminal leaves out first (see output.Column).
LIST_COLUMNS = (
    Column("id"), Column("user_email"), Column("fingerprint", priority=3), Column("state"),
    Column("expires_at", priority=1), Column("created_at", priority=2),
)


@app.command("list")
@output_options(columns=LIST_COLUMNS, title="Sessions", pages=True)
def list_(
    user: Annotated[str | None, typer.Option("--user", metavar="EMAIL", help="Only this user's sessions.", autocompletion=complete_user)] = None,
    expired: Annotated[bool, typer.Option("--expired", help="Only expired sessions.")] = False,
    live: Annotated[bool, typer.Option("--live", help="Only live sessions (neither expired nor revoked).")] = False,
    include_revoked: Annotated[bool, typer.Option("--include-revoked", help="Include revoked sessions.")] = False,
    *,
    out: Output,
) -> None:
    """List sessions, newest first, without their tokens.

    Example: linea sessions list --user ann@example.com --live
    """
    from linea_cli.services.sessions import SessionFilter, list_sessions

    filters = SessionFilter(user=user, expired=expired, live=live, include_revoked=include_revoked)
    rows, next_cursor = out.page(
        lambda session, actor, size, cursor: list_sessions(session, filters=filters, actor=actor, limit=size, after=cursor)
    )
    out.rows(rows, paginated=True, next_cursor=next_cursor)


@app.command()
@output_options(title="Revoked")
def revoke(
    session_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="The session to revoke.")] = None,
    user: Annotated[str | None, typer.Option("--user", metavar="EMAIL", help="Revoke every live session of this user.", autocompletion=complete_user)] = None,
    *,
    out: Output,
) -> dict:
    """Revoke one session by id, or every live session of a user.

    Example: linea sessions revoke --user ann@example.com
    """
    from linea_cli.errors import InvalidInput
    from linea_cli.services.sessions import revoke_session, revoke_user_sessions

    if (session_id is None) == (user is None):
        raise InvalidInput("pass either a session ID or --user EMAIL")
    if session_id is not None:
        return out.change(lambda session, actor: revoke_session(session, session_id=session_id, actor=actor))
    return out.change(lambda session, actor: revoke_user_sessions(session, user=user or "", actor=actor))


@app.command()
@output_options()
def purge(
    older_than: Annotated[
        str, typer.Option("--older-than", metavar="DURATION", help="Only sessions expired longer ago than this (e.g. 7d, 12h).")
    ] = "0",
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=1_000_000, help="At most N rows per transaction (fewer when a batch would hold its locks over about 30 ms).")
    ] = 50_000,
    dry_run: DryRunOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success (for cron).")] = False,
    yes: YesOption = False,
    *,
    out: Output,
) -> None:
    """Delete expired sessions in batches (for cron).

    One transaction per batch; safe to run from several cron hosts at once.

    Example: linea sessions purge --older-than 7d --quiet
    """
    from linea_cli.services.sessions import parse_duration, purge_expired_sessions

    out.check(("would_purge" if dry_run else "purged", "batches", "expired_before"))  # before any batch
    if not dry_run and older_than == "0":  # nothing to filter: every expired session
        confirm_change("purge every expired session", yes=yes, quiet=quiet)
    with transactions() as unit_of_work:
        result = purge_expired_sessions(
            unit_of_work,
            older_than=parse_duration(older_than),
            batch_size=batch_size,
            dry_run=dry_run,
            on_batch=batch_progress("purged", quiet=quiet),
        )
    if quiet:
        return
    record = {
        ("would_purge" if dry_run else "purged"): result.purged,
        "batches": result.batches,
        "expired_before": result.cutoff,
    }
    out.record(record, title="Session purge" + (" (dry run)" if dry_run else ""))
