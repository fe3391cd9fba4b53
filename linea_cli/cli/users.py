"""`linea users ...`: manage users, and answer data-protection requests (export, anonymize)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from linea_cli.cli.completion import complete_user
from linea_cli.cli.confirm import confirm_change, confirm_or_stop
from linea_cli.cli.context import transaction
from linea_cli.cli.field_options import list_columns
from linea_cli.cli.options import (
    FieldsOption,
    FormatOption,
    IncludeDeletedOption,
    JsonOption,
    Output,
    YesOption,
    chosen_format,
    output_options,
)
from linea_cli.enums import UserRole
from linea_cli.errors import InvalidInput
from linea_cli.fields import USERS
from linea_cli.output import Column, OutputFormat, render, render_record, say, select_fields

if TYPE_CHECKING:
    from sqlmodel import Session

    from linea_cli.services.actors import Actor
    from linea_cli.services.traces import TraceReport

app = typer.Typer(help="Manage users, and answer data-protection requests.", no_args_is_help=True)

# From linea_cli.fields.USERS: in JSON/CSV order; `priority`: which a narrow terminal leaves out first.
LIST_COLUMNS = list_columns(USERS)

# Where `verify-erased` (and `anonymize`) found what identified a person: never the value itself.
TRACE_COLUMNS = (Column("table"), Column("column"), Column("row_id"), Column("found"))

UserArgument = Annotated[
    str, typer.Argument(metavar="EMAIL|ID", help="The user's email address or id.", autocompletion=complete_user)
]
EmailArgument = Annotated[
    str, typer.Argument(metavar="EMAIL|ID", help="The person's email address (or user id).", autocompletion=complete_user)
]
RoleArgument = Annotated[UserRole, typer.Argument(case_sensitive=False, help="VISITOR, OWNER or ADMIN.")]


@app.command("list")
@output_options(columns=LIST_COLUMNS, title="Users", pages=True)
def list_(
    role: Annotated[UserRole | None, typer.Option(case_sensitive=False, help="Only users with this role.")] = None,
    search: Annotated[str | None, typer.Option(metavar="TEXT", help="Only users whose email or name contains TEXT.")] = None,
    include_deleted: IncludeDeletedOption = False,
    *,
    out: Output,
) -> None:
    """List users by email, a page at a time.

    Example: linea users list --role ADMIN --search example.org
    """
    from linea_cli.services.users import UserFilter, list_users

    filters = UserFilter(role=role, search=search, include_deleted=include_deleted)
    rows, next_cursor = out.page(
        lambda session, actor, size, cursor: list_users(session, filters=filters, actor=actor, limit=size, after=cursor)
    )
    out.rows(rows, paginated=True, next_cursor=next_cursor, include_deleted=include_deleted)


@app.command()
@output_options(title="User")
def show(user: UserArgument, *, out: Output) -> Mapping[str, Any]:
    """Show a user, with what they own and their last activity.

    Counts owned events (not deleted), waitlist entries (by user id or email), live sessions.

    Example: linea users show ann@example.com
    """
    from linea_cli.services.reads import user_summary

    return out.query(lambda connection, actor: user_summary(connection, reference=user, actor=actor))


@app.command()
@output_options(title="Created user")
def create(
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The new user's email address.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    role: Annotated[UserRole, typer.Option(case_sensitive=False, help="VISITOR, OWNER or ADMIN.")] = UserRole.VISITOR,
    *,
    out: Output,
) -> Mapping[str, Any]:
    """Create a user; the email is validated and stored lower-cased.

    Example: linea users create ann@example.com --name "Ann Lee" --role OWNER
    """
    from linea_cli.services.users import create_user, user_record

    return out.change(lambda session, actor: user_record(create_user(session, email=email, name=name, role=role, actor=actor)))


@app.command()
@output_options(title="User")
def update(
    user: UserArgument,
    name: Annotated[str | None, typer.Option(help="New display name (\"\" clears it).")] = None,
    email: Annotated[str | None, typer.Option("--email", metavar="NEW", help="New email address.")] = None,
    *,
    out: Output,
) -> Mapping[str, Any]:
    """Change a user's name and/or email address.

    Example: linea users update ann@example.com --email ann.lee@example.com
    """
    from linea_cli.services.users import update_user, user_record

    if name is None and email is None:
        raise InvalidInput("nothing to update: pass --name and/or --email")
    changed: list[bool] = []

    def change(session: Session, actor: Actor | None) -> dict[str, Any]:
        updated, changes = update_user(session, reference=user, name=name, email=email, actor=actor)
        changed.append(bool(changes))
        return user_record(updated)

    record = out.change(change)
    if not any(changed):
        say("nothing changed")
    return record


@app.command("set-role")
@output_options(title="User")
def set_role(
    user: UserArgument,
    role: RoleArgument,
    force: Annotated[bool, typer.Option("--force", help="Demote to VISITOR even though the user owns events.")] = False,
    *,
    out: Output,
) -> Mapping[str, Any]:
    """Give a user a role; the last ADMIN cannot be demoted.

    Example: linea users set-role ann@example.com ADMIN
    """
    from linea_cli.services.users import set_role as set_user_role
    from linea_cli.services.users import user_record

    changed: list[bool] = []

    def change(session: Session, actor: Actor | None) -> dict[str, Any]:
        updated, did = set_user_role(session, reference=user, role=role, force=force, actor=actor)
        changed.append(did)
        return user_record(updated)

    record = out.change(change)
    if not any(changed):
        say(f"{record['email']} is already {role.name}")
    return record


@app.command()
@output_options(title="Deleted user")
def delete(user: UserArgument, yes: YesOption = False, *, out: Output) -> Mapping[str, Any]:
    """Soft-delete a user and revoke their live sessions.

    `linea users restore` undoes the delete; revoked sessions stay revoked.

    Example: linea users delete ann@example.com
    """
    from linea_cli.services.users import delete_user, user_record

    confirm_change(f"delete user {user}", yes=yes)
    revoked: list[int] = []

    def change(session: Session, actor: Actor | None) -> dict[str, Any]:
        deleted, count = delete_user(session, reference=user, actor=actor)
        revoked.append(count)
        return user_record(deleted)

    record = out.change(change)
    say(f"deleted {record['email']}; revoked {revoked[0]} live session(s)")
    return record


@app.command()
@output_options(title="Restored user")
def restore(user: UserArgument, *, out: Output) -> Mapping[str, Any]:
    """Restore a soft-deleted user (revoked sessions stay revoked).

    Example: linea users restore ann@example.com
    """
    from linea_cli.services.users import restore_user, user_record

    return out.change(lambda session, actor: user_record(restore_user(session, reference=user, actor=actor)))


@app.command()
def export(
    person: EmailArgument,
    output: Annotated[
        str | None, typer.Option("--output", "-o", metavar="FILE", help="Write to FILE (atomically) instead of stdout (default or -).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON, as always: one document, taken like every command's --json.")
    ] = False,
) -> None:
    """Export what linea holds about a person as JSON (GDPR access).

    Works for people known only by an address on waitlists. The export is audited (EXPORT).

    Example: linea users export ann@example.com -o ann.json
    """
    from linea_cli.cli.context import read_on_replica_or_primary
    from linea_cli.output_file import output_file, text_writer, writes_to_stdout
    from linea_cli.services.gdpr import export_person, record_person_export

    # Read on a replica when one may serve (it changes nothing); audited on the primary, in the
    # unit of work that writes the file: no audit row for an export that was not written.
    document = read_on_replica_or_primary(lambda session, actor: export_person(session, reference=person, actor=actor))
    with transaction() as (session, actor):
        record_person_export(session, document=document, actor=actor)
        with output_file(output, private=True) as out:
            render_record(document, OutputFormat.json, stream=text_writer(out))
    if not writes_to_stdout(output):
        say(f"wrote the export to {output}")


@app.command()
def anonymize(
    person: EmailArgument,
    yes: YesOption = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Erase a person's personal data for good (GDPR erasure).

    Every row stays; the person's email, name, IP addresses and user agents leave every table.
    Once that committed, every table is searched for them: exit 7 names what linea could not
    erase, exit 8 the tables it could not fully search.

    Example: linea users anonymize ann@example.com --yes
    """
    from dataclasses import asdict

    from linea_cli.cli.context import open_database
    from linea_cli.services.gdpr import anonymize_person

    confirm_or_stop(f"Anonymize {person.strip()} (erases their personal data for good)", yes=yes)
    with transaction() as (session, actor):
        result, proof = anonymize_person(session, reference=person, actor=actor)
        select_fields(asdict(result), fields)  # an unknown --fields name stops the change before its commit
    if not result.changed:
        say(f"nothing to anonymize: linea holds no personal data for {person.strip()} (already anonymized?)")
    render_record(asdict(result), chosen_format(fmt, as_json), title="Anonymized", fields=fields)
    # The erasure is committed (and said): keeping the rest of the person's data would not be
    # better than what the proof finds. It reads what others now see, in short transactions, on
    # the primary: a replica may not have replayed the erasure yet (never trust it right after a write).
    report = proof.search(open_database().connect)
    _raise_unless_proven(
        report,
        prefix="erased what linea models, but ",
        details=tuple(f"{t.table}.{t.column} row {t.row_id}: {t.found}" for t in report.traces),
        hint="erase them with the platform's own tooling, then check with `linea users verify-erased`",
    )


@app.command("verify-erased")
def verify_erased(
    person: EmailArgument,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Prove an erasure: search every table for the person; exit 7 naming each trace.

    Reads every column that can hold text (JSON, XML, arrays, composites, bytea...) of every
    table, the platform's too, in the common encodings, and changes nothing. Each trace is a
    table, a column and a row id; no trace prints one OK line. A table it could not fully search
    (row-level security, a foreign table, no privilege) is named, and exits 8. Give the
    address the request named: after an erasure linea no longer knows a user's addresses, so
    the user id `anonymize` printed, alone, checks their rows and the id but exits 8 (the
    addresses not searched for). For cron after each erasure.

    Example: linea users verify-erased ann@example.com
    """
    from linea_cli.cli.context import connected_on_replica_or_primary
    from linea_cli.output import select_columns, write_stdout
    from linea_cli.services.gdpr import verify_erased as what_to_prove

    output = chosen_format(fmt, as_json)
    select_columns(TRACE_COLUMNS, fields)  # an unknown --fields name stops before the search
    with transaction() as (session, actor):
        proof = what_to_prove(session, reference=person, actor=actor)
    # The search (every table) on a replica when one may serve: one that has not replayed linea's
    # last write (an erasure: the fence) or is paused is skipped, said, and the primary searched.
    report = connected_on_replica_or_primary(proof.search)
    if report.traces or output not in (OutputFormat.table, OutputFormat.wide):
        render((vars(trace) for trace in report.traces), TRACE_COLUMNS, output, title="Traces", fields=fields)
    _raise_unless_proven(report)
    if output in (OutputFormat.table, OutputFormat.wide):
        write_stdout(f"OK: no trace in {report.tables} tables ({report.columns_searched()})\n")


def _raise_unless_proven(
    report: TraceReport, *, prefix: str = "", details: tuple[str, ...] = (), hint: str | None = None
) -> None:
    """Exit 7 when traces remain; else exit 8 when some table could not be fully searched, or the
    erased user's addresses could not be searched for (named by id alone).

    Traces win: what was found is certain, what was not searched only a doubt. Either way each
    table not verified is a line of its own, with the reason.
    """
    from linea_cli.errors import NotVerified, TracesRemain

    unverified = tuple(f"not verified: {u.table}: {u.reason}" for u in report.not_verified) + tuple(
        f"not searched for: {what}" for what in report.unknown
    )
    if report.traces:
        tables = len({trace.table for trace in report.traces})
        summary = f"{len(report.traces)} trace(s) of the person remain in {tables} table(s)"
        raise TracesRemain(prefix + summary, details=details + unverified, hint=hint)
    if unverified:
        doubts = [f"{len(report.not_verified)} table(s) could not be fully searched"] if report.not_verified else []
        doubts += ["part of what identifies the person could not be searched for"] if report.unknown else []
        raise NotVerified(
            f"{prefix}the erasure could not be verified: {' and '.join(doubts)} "
            f"(no trace in the {report.tables} tables searched, {report.columns_searched()})",
            details=unverified,
            hint="search as a role that may read every row of them (their owner, or one with BYPASSRLS), "
            "or retry when the database is less busy" if report.not_verified
            else "run it both ways: with the address the request named, and with the user id anonymize printed",
        )
