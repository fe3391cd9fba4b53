"""`linea db ...`: migrations, status, doctor, reset, seed, and the embedded server."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from linea_cli.cli.context import confirm_or_stop, open_database, require_admin_for, state, transaction
from linea_cli.cli.options import (
    FieldsOption,
    FormatOption,
    JsonOption,
    Output,
    YesOption,
    chosen_format,
    output_options,
)
from linea_cli.output import Column, Kind, OutputFormat, render, say, select_columns, warn

app = typer.Typer(help="Migrate, inspect, seed and reset the database; manage the embedded server.", no_args_is_help=True)
server_app = typer.Typer(help="Start, stop and inspect the embedded PostgreSQL server.", no_args_is_help=True)
app.add_typer(server_app, name="server")

def _lock_policy():  # noqa: ANN202  (the type lives behind a lazy import)
    from linea_cli.db.migrate import LockPolicy

    settings = state().settings()
    return LockPolicy.from_settings(settings.migration_lock_timeout, settings.migration_attempts)


SqlOption = Annotated[bool, typer.Option("--sql", help="Print the SQL instead of running it (for review).")]
_RELATIVE = re.compile(r"[+-]\d+")
ForceOption = Annotated[
    bool, typer.Option("--force", help="Allow destroying data on a server other than the embedded one.")
]


def _confirm_destruction(database, what: str, *, force: bool, yes: bool) -> None:  # noqa: ANN001
    """Off the embedded server: --force, then the database name typed at the prompt (or --yes)."""
    from linea_cli.errors import PermissionDenied

    if not force:
        raise PermissionDenied(
            f"refusing: this {what} in {database.target}, which is not the embedded server",
            hint="pass --force, and type the database name when asked (or --force --yes in scripts)",
        )
    _confirm_by_name(database, what, yes=yes, flags="--force --yes")


def _confirm_by_name(database, what: str, *, yes: bool, flags: str) -> None:  # noqa: ANN001
    """The database name typed at the prompt (or --yes); without a terminal, a hint naming `flags`."""
    from linea_cli.errors import InvalidInput, shown

    name = database.url.database or ""
    if yes:
        return
    if not sys.stdin.isatty():
        raise InvalidInput(f"this {what} in {database.target} and needs confirmation: pass {flags}")
    typed = typer.prompt(f"This {what} in {database.target}. Type the database name", err=True)
    if typed != name:
        raise InvalidInput(f"{shown(typed)} is not {shown(name)}; nothing was changed")


class RevisionCommand(TyperCommand):
    """Takes `-1` as the relative revision it is, not as an unknown option (no `--` needed)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        options, rest = (args[: args.index("--")], args[args.index("--") + 1 :]) if "--" in args else (args, [])
        numbers = [arg for arg in options if _RELATIVE.fullmatch(arg)]
        if numbers:
            args = [arg for arg in options if not _RELATIVE.fullmatch(arg)] + ["--", *numbers, *rest]
        return super().parse_args(ctx, args)


@contextmanager
def _revision_refusals(direction: str, revision: str) -> Iterator[None]:
    """Alembic's refusals of a target (`-3` with two migrations applied, downgrade to head...) are
    about the revision the user gave: invalid input, not an internal error."""
    from alembic.util import CommandError

    from linea_cli.errors import InvalidInput, cut, shown

    if _RELATIVE.fullmatch(revision) and (revision[0] == "-") == (direction == "upgrade"):
        other = "downgrade" if direction == "upgrade" else "upgrade"
        raise InvalidInput(f"db {direction} {revision} goes the other way: use `linea db {other} {revision}`")
    try:
        yield
    except CommandError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused by Alembic"
        raise InvalidInput(f"cannot {direction} to {shown(revision)}: {cut(reason, limit=300)}") from exc


@app.command(cls=RevisionCommand)
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, or +N for N more.")] = "head",
    sql: SqlOption = False,
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Do not back up an external database before migrating it.")
    ] = False,
) -> None:
    """Migrate the database up to REVISION (default: head).

    On a server other than the embedded one, a database holding rows that has something to
    migrate is first backed up into the backup directory (see `linea db backup`), unless
    --no-backup. --sql never backs up.

    Example: linea db upgrade
    """
    from linea_cli.db import migrate

    with _revision_refusals("upgrade", revision):
        database = state().database(for_migrations=True)
        if not sql:
            require_admin_for(database, "migrate the database")
        if not sql and not no_backup and not database.is_embedded:
            from linea_cli.db.backup import needs_backup_before_upgrade

            if needs_backup_before_upgrade(database):
                from linea_cli.errors import LineaError

                try:
                    _back_up(database, None, label="before-upgrade")
                except LineaError as exc:
                    exc.message = f"nothing was migrated: the backup before it failed: {exc.message}"
                    exc.hint = (f"{exc.hint}; " if exc.hint else "") + "or migrate without one: --no-backup"
                    raise
        migrate.upgrade(
            database, revision, sql=sql, locks=_lock_policy(), on_retry=warn, on_note=lambda note: say(f"note: {note}")
        )
    if not sql:
        say(f"{database.target} is at {migrate.current_revision(database)}")


@app.command(cls=RevisionCommand)
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, -N for N fewer, or 'base' to remove what linea added.")],
    sql: SqlOption = False,
    force: ForceOption = False,
    yes: YesOption = False,
) -> None:
    """Migrate the database down to REVISION.

    On a database linea adopted from the platform only linea's indexes, triggers and bookkeeping
    go; the platform's tables and rows stay. Where linea made the tables, a downgrade that would
    drop tables holding rows on a server other than the embedded one needs the confirmation
    `db reset` asks for.

    Example: linea db downgrade -1
    """
    from linea_cli.db import migrate

    with _revision_refusals("downgrade", revision):
        database = state().database(for_migrations=True)
        if not sql:
            require_admin_for(database, "migrate the database")
        if not sql and not database.is_embedded:
            doomed = migrate.tables_dropped_with_rows(database, revision)
            if doomed:
                _confirm_destruction(database, f"drops {', '.join(doomed)} with their rows", force=force, yes=yes)
        migrate.downgrade(database, revision, sql=sql, locks=_lock_policy(), on_retry=warn)
    if not sql:
        say(f"{database.target} is at {migrate.current_revision(database) or 'base'}")


@app.command()
@output_options(title="Database")
def status(*, out: Output) -> None:
    """Show the server, the masked URL, the schema revision and row counts.

    Example: linea db status --json
    """
    from linea_cli.services import database as database_service

    database = open_database(require_schema=False)
    record = database_service.status(database)
    if database.is_embedded:
        record["data_directory"] = str(state().settings().data_dir)
    out.record(record)
    if record["unfillable_columns"]:
        warn(
            f"{', '.join(record['unfillable_columns'])}: NOT NULL without a default, unknown to linea; "
            "inserts into these tables fail (exit 5) until the platform gives each a default (see `linea db doctor`)"
        )


@app.command()
@output_options(title="Migrations")
def history(*, out: Output) -> None:
    """List the migrations, newest first, marking the current one.

    Example: linea db history
    """
    from linea_cli.db import migrate

    database = open_database(require_schema=False)
    current = migrate.current_revision(database)
    rows = (vars(info) for info in migrate.history(current))
    out.rows(rows, [
        Column("revision", kind=Kind.id), Column("down_revision", kind=Kind.id, priority=3), Column("description", wrap=True),
        Column("is_head", priority=2), Column("is_current", priority=1),
    ])


@app.command()
@output_options(title="Checks")
def doctor(*, out: Output) -> None:
    """Check that the database is fit for linea and cron jobs; exit 5 when a check fails.

    Example: linea db doctor
    """
    from linea_cli.errors import DatabaseUnavailable
    from linea_cli.services import database as database_service

    database = open_database(require_schema=False)
    checks = database_service.doctor(database)
    out.rows((vars(check) for check in checks), ["check", "status", Column("detail", wrap=True)])
    failed = [check.check for check in checks if check.status == database_service.FAIL]
    if failed:
        raise DatabaseUnavailable(f"{len(failed)} check(s) failed: {', '.join(failed)}")


@app.command()
def reset(
    force: ForceOption = False,
    yes: YesOption = False,
) -> None:
    """Drop every table and rebuild the schema at head (all data is lost).

    On the embedded server it asks first (--yes skips the question). Anywhere else it needs
    --force, and then the database name typed at the prompt (or --force --yes in scripts).

    Example: linea db reset --yes
    """
    from linea_cli.services import database as database_service

    database = state().database(for_migrations=True)
    require_admin_for(database, "reset the database")
    if database.is_embedded:
        confirm_or_stop(f"Reset {database.target} (deletes every row)", yes=yes)
    else:
        _confirm_destruction(database, "deletes every row", force=force, yes=yes)
    database_service.reset_schema(database, locks=_lock_policy())
    say(f"{database.target} was reset to an empty schema at head")


@app.command()
def roles(
    sql: SqlOption = False,
    prefix: Annotated[
        str, typer.Option("--prefix", metavar="PREFIX", help="Name the roles PREFIX_reader, PREFIX_operator, ...")
    ] = "linea",
    force: Annotated[
        bool, typer.Option("--force", help="Allow changing roles on a server other than the embedded one.")
    ] = False,
    yes: YesOption = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Create or update least-privilege PostgreSQL roles for linea's jobs.

    Four NOLOGIN group roles: PREFIX_reader (every read command; never sessions.token),
    PREFIX_operator (the write commands; audit_logs only grows), PREFIX_eraser (the operator,
    and the audit-row scrub of `users anonymize`), PREFIX_migrator (the schema). Grants name the
    tables that exist now: run it again after the platform adds tables. Running it again changes
    nothing else. Existing roles of these names that linea did not make (other attributes,
    memberships, owned tables) are refused, exit 4, and left as they are. The system or an ADMIN
    only; on a server other than the embedded one it needs --force and the database name typed
    (or --force --yes). --sql prints the SQL instead.

    Example: linea db roles --sql > roles.sql
    """
    from linea_cli.db.roles import RoleNames, plan_roles
    from linea_cli.output import write_stdout

    names = RoleNames.with_prefix(prefix)
    columns = ["role", Column("may", wrap=True)]
    select_columns(columns, fields)
    database = state().database(for_migrations=True)
    if sql:
        with database.connect() as connection:
            write_stdout(plan_roles(connection, names).sql())
        return
    require_admin_for(database, "create database roles")
    if not database.is_embedded:
        shown_names = ", ".join(vars(names).values())
        _confirm_destruction(database, f"creates or changes the roles {shown_names} and their grants", force=force, yes=yes)
    from linea_cli.services.actors import resolve_actor
    from linea_cli.services.roles import apply_roles

    with database.unit_of_work() as session:
        plan = apply_roles(session, names=names, actor=resolve_actor(session, state().settings().actor))
    for note in plan.notes:
        warn(note)
    say(f"granted on the {len(plan.tables)} tables that exist in {database.target}; run it again after the platform adds tables")
    render(plan.summary(), columns, chosen_format(fmt, as_json), title="Roles", fields=fields)


OutputOption = Annotated[
    str | None,
    typer.Option(
        "--output", "-o", metavar="FILE",
        help="Write the archive to FILE (atomically; - for stdout). Default: a new file in the backup directory.",
    ),
]


@app.command()
def backup(
    output: OutputOption = None,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Write a pg_dump archive (custom format) of the database, then its size and rows per table.

    Without -o the archive goes to the backup directory (LINEA_BACKUP_DIR, default
    <data dir>/backups) as DATABASE-YYYYMMDDTHHMMSSZ.dump. It runs the pg_dump closest to the
    server's version, not older (or LINEA_PG_DUMP), and says which. ADMIN only. Restore it with
    `linea db restore FILE`.

    Example: linea db backup -o before-the-import.dump
    """
    from linea_cli.errors import InvalidInput
    from linea_cli.output_file import writes_to_stdout

    columns = ["table", Column("rows", justify="right")]
    select_columns(columns, fields)  # an unknown --fields name stops before pg_dump runs
    to_stdout = output is not None and writes_to_stdout(output)
    if to_stdout and sys.stdout.isatty():
        raise InvalidInput("refusing to write a binary archive to the terminal", hint="give -o FILE, or redirect stdout")
    database = state().database(for_migrations=True)
    # Everyone's data, the audit log included (which only ADMINs read): ADMIN only, like reading the log.
    require_admin_for(database, "back up the database")
    summary = _back_up(database, output, label=None)
    render(
        ({"table": table, "rows": rows} for table, rows in summary.tables.items()),
        columns, chosen_format(fmt, as_json), title="Backed up", fields=fields,
        stream=sys.stderr if to_stdout else None,
    )


def _back_up(database, output: str | None, *, label: str | None):  # noqa: ANN001, ANN202 (lazy types)
    """Back `database` up into `output` (None: a new file in the backup directory), saying with
    what, where to and how much."""
    from rich.filesize import decimal

    from linea_cli.db import backup as backups
    from linea_cli.output_file import output_file, writes_to_stdout

    settings = state().settings()
    tool = backups.find_tool("pg_dump", server_major=backups.server_major(database), configured=settings.pg_dump)
    target = output if output is not None else str(backups.new_backup_path(settings.backups_path, database, label))
    shown_target = "stdout" if writes_to_stdout(target) else target
    with output_file(target, option="--output", private=True) as out:
        # Said once the target opened: an -o that cannot be written is then the only line.
        say(f"backing up {database.display_url} with {tool} to {shown_target}")
        with _byte_progress("pg_dump") as progress:
            summary = backups.backup(database, out, tool=tool, lock_timeout=settings.lock_timeout, on_bytes=progress)
    rows = sum(summary.tables.values())
    say(f"wrote {shown_target}: {decimal(summary.size)} ({summary.size} bytes), {len(summary.tables)} tables, {rows} rows")
    return summary


@contextmanager
def _byte_progress(what: str) -> Iterator[Any]:
    """A callback showing bytes written so far on a terminal's stderr; a no-op anywhere else."""
    if not sys.stderr.isatty():
        yield lambda written: None
        return
    from rich.progress import FileSizeColumn, Progress, SpinnerColumn, TimeElapsedColumn, TransferSpeedColumn

    from linea_cli.output import error_console

    with Progress(
        SpinnerColumn(), "[progress.description]{task.description}", FileSizeColumn(), TransferSpeedColumn(),
        TimeElapsedColumn(), console=error_console(), transient=True,
    ) as progress:
        task = progress.add_task(what, total=None)
        yield lambda written: progress.update(task, completed=written)


@app.command()
def restore(
    file: Annotated[str, typer.Argument(metavar="FILE", help="An archive `linea db backup` (or pg_dump -Fc) wrote.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the contents of a database that is not empty.")
    ] = False,
    include_foreign: Annotated[
        bool,
        typer.Option(
            "--include-foreign-objects",
            help="Also restore what linea did not make (functions, triggers, views...), after listing it and asking.",
        ),
    ] = False,
    yes: YesOption = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Restore a pg_dump archive into the database, in one transaction (all of it or nothing).

    Only what linea knows is restored: the platform's tables and linea's, their rows, indexes,
    constraints and sequences. An archive holding anything else (functions, triggers, event
    triggers, extensions, views, other schemas, or constraints, defaults and indexes calling
    functions linea does not know) is refused, naming those objects, unless
    --include-foreign-objects, which lists them and asks for the database name (or --yes).
    Owners and privileges are never restored (functions restored that way are callable by their
    owner only); linea's own triggers and functions are recreated from its definitions. Every
    pass reads the file opened once (a copy, when others may write to it). Into an empty database it just restores. A database holding tables
    needs --force, and then the confirmation `db reset` asks for. ADMIN only. The restored audit
    log gets one RESTORE row naming the archive.

    Example: linea db restore backups/linea-20260101T020000Z.dump --force
    """
    from rich.filesize import decimal

    from linea_cli.db import backup as backups

    columns = ["table", Column("rows", justify="right")]
    select_columns(columns, fields)
    database = state().database(for_migrations=True)
    require_admin_for(database, "restore the database")
    settings = state().settings()
    # Opened once: every pass of pg_restore reads these bytes, whatever is renamed over FILE meanwhile.
    with backups.opened_archive(file, copy_into=settings.backups_path) as archive:
        summary = _restore(database, archive, force=force, include_foreign=include_foreign, yes=yes)
    if not summary.tables:
        say(f"restored {file} ({decimal(summary.size)}): it held no tables, and {database.target} has none")
    else:
        say(f"restored {file} ({decimal(summary.size)}): {len(summary.tables)} tables, {sum(summary.tables.values())} rows")
    fmt = chosen_format(fmt, as_json)
    if summary.tables or fmt not in (OutputFormat.table, OutputFormat.wide):
        render(
            ({"table": table, "rows": rows} for table, rows in summary.tables.items()),
            columns, fmt, title="Restored", fields=fields,
        )


def _restore(database, archive, *, force: bool, include_foreign: bool, yes: bool):  # noqa: ANN001, ANN202 (lazy types)
    """`db restore` once the archive is open: checked, confirmed, restored, linea's guarantees put back, recorded."""
    from linea_cli.db import backup as backups
    from linea_cli.db import migrate
    from linea_cli.services import database as database_service

    file = archive.name
    settings = state().settings()
    tools = backups.find_tools("pg_restore", server_major=backups.server_major(database), configured=settings.pg_restore)
    tool = backups.readable_by(archive, tools, database)  # a damaged archive is refused before anyone is asked
    contents = backups.inspect(archive, tool=tool, database=database)
    if not include_foreign:
        backups.refuse_foreign(contents, file, database)  # one line per kind, nothing restored
    foreign = contents.foreign_lines()
    replace = _confirm_replacing(database, file, force=force, yes=yes)
    if foreign:
        for line in foreign:
            warn(f"not made by linea, to be restored as asked: {line}")
        _confirm_by_name(
            database, f"restore runs code linea did not make ({len(foreign)} kinds, listed above)", yes=yes,
            flags="--include-foreign-objects --yes",
        )
    if contents.never:
        say(f"not restored (owners and privileges never are): {', '.join(contents.never_names())}")
    if contents.extra_tables:
        say(f"the platform's tables the data model does not name are restored too: {', '.join(contents.extra_tables)}")
    say(f"restoring {file} into {database.display_url} with {tool}")
    summary = backups.restore(
        database, archive, tool=tool, contents=contents, replace=replace, include_foreign=include_foreign
    )
    if foreign:
        kinds = ", ".join(line.split(": ", 1)[0] for line in foreign)
        warn(f"restored what linea did not make, as asked: {kinds} (listed above)")
    if summary.routines:
        owner = database.url.username or "the restoring role"
        named = ", ".join(summary.routines[:20]) + (f" and {len(summary.routines) - 20} more" if len(summary.routines) > 20 else "")
        say(f"note: restored functions {named} are callable only by their owner, {owner}: EXECUTE revoked from PUBLIC")
    # linea's guard is never taken from the archive: recreated here, with anything else that differs.
    repaired = migrate.repair(database, locks=_lock_policy())
    rest = repaired.words
    if repaired.guard and repaired.guard_was_absent:  # as after every restore: the archive's copy is never taken
        say("recreated linea's append-only guard on audit_logs")
        rest = repaired.other
    if rest:
        say(f"note: repaired: {'; '.join(rest)}")
    with database.unit_of_work() as session:
        database_service.record_restore(
            session, actor_reference=settings.actor, archive=file, tables=summary.tables,
            foreign=list(foreign),
        )
    return summary


def _confirm_replacing(database, file: str, *, force: bool, yes: bool) -> bool:  # noqa: ANN001
    """Whether the restore replaces tables; a database holding any needs --force, then the confirmation `db reset` asks."""
    from linea_cli.db import backup as backups
    from linea_cli.errors import PermissionDenied

    existing = backups.database_tables(database)
    if not existing:
        return False
    what = f"replaces {len(existing)} tables holding {sum(existing.values())} rows"
    if not force:
        raise PermissionDenied(
            f"refusing: {database.target} is not empty ({len(existing)} tables, {sum(existing.values())} rows); nothing was changed",
            hint="pass --force to replace its contents with the archive's (it asks first), or restore into an empty database",
        )
    if database.is_embedded:
        confirm_or_stop(f"Restore {file} over {database.target} ({what})", yes=yes)
    else:
        _confirm_destruction(database, what, force=force, yes=yes)
    return True


@app.command()
def seed(
    users: Annotated[int, typer.Option(min=0, help="Users to create.")] = 50,
    venues: Annotated[int, typer.Option(min=0, help="Venues to create.")] = 10,
    events: Annotated[int, typer.Option(min=0, help="Events to create.")] = 40,
    waitlist: Annotated[int, typer.Option(min=0, help="Waitlist entries to create.")] = 500,
    sessions: Annotated[int, typer.Option(min=0, help="Login sessions to create.")] = 50,
    seed_value: Annotated[int, typer.Option("--seed", help="Same seed, same rows.")] = 42,
    anchor: Annotated[
        str | None, typer.Option(help="Date the data is placed around (default: today, UTC).", metavar="DATE")
    ] = None,
    append: Annotated[bool, typer.Option("--append", help="Add to a database that already has data.")] = False,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Seed only an empty database; otherwise do nothing and exit 0.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonOption = False,
    fields: FieldsOption = None,
) -> None:
    """Fill the database with deterministic fake data for demos and CI.

    Example: linea db seed --users 1000 --events 200 --waitlist 1000000 --seed 7
    """
    from linea_cli.services.seed import SeedPlan, seed_database
    from linea_cli.timeutil import parse_datetime

    plan = SeedPlan(
        users=users,
        venues=venues,
        events=events,
        waitlist=waitlist,
        sessions=sessions,
        seed=seed_value,
        anchor=parse_datetime(anchor, field="--anchor") if anchor is not None else None,
    )
    columns = ["table", Column("rows", justify="right")]
    select_columns(columns, fields)  # an unknown --fields name stops before anything is seeded
    show_steps = sys.stderr.isatty()
    with transaction() as (session, actor):
        result = seed_database(
            session,
            plan=plan,
            actor=actor,
            append=append,
            if_empty=if_empty,
            on_step=(lambda step: say(f"seeding {step}...")) if show_steps else (lambda step: None),
        )
    if result.skipped:
        say("the database already has data; nothing seeded (--if-empty)")
        return
    counts = {k: v for k, v in vars(result).items() if k != "skipped"}
    render(
        ({"table": table, "rows": rows} for table, rows in counts.items()),
        columns,
        chosen_format(fmt, as_json),
        title="Seeded",
        fields=fields,
    )


@app.command("prisma-schema")
def prisma_schema(
    platform_schema: Annotated[
        str | None,
        typer.Option("--from", metavar="FILE", help="The platform's schema.prisma to add linea's indexes to."),
    ] = None,
) -> None:
    """Print the schema.prisma that describes the database as linea leaves it.

    The platform's models (from --from FILE, else the data model's as linea knows it) with an
    `@@index(..., map: "idx_...")` line for each index linea adds, so that Prisma's schema diff
    neither drops nor renames them.

    Example: linea db prisma-schema --from apps/api/prisma/schema.prisma > schema.prisma.new
    """
    from linea_cli.db.prisma_schema import prisma_schema as schema_text
    from linea_cli.errors import InvalidInput, shown
    from linea_cli.output import write_stdout

    text = None
    if platform_schema is not None:
        try:
            with open(platform_schema, encoding="utf-8") as source:
                text = source.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read --from {shown(platform_schema)}: {getattr(exc, 'strerror', None) or exc}") from None
    write_stdout(schema_text(text))


@server_app.command("status")
@output_options(title="Embedded PostgreSQL")
def server_status(*, out: Output) -> None:
    """Show whether the embedded server is running, and where its data lives.

    Example: linea db server status
    """
    from linea_cli.db import embedded

    current = embedded.status(state().settings().data_dir)
    out.record(vars(current))


@server_app.command("start")
def server_start() -> None:
    """Start the embedded server (it also starts by itself on first use).

    Example: linea db server start
    """
    from linea_cli.db import embedded

    data_dir = state().settings().data_dir
    _, started = embedded.ensure_running(data_dir)
    say(("started" if started else "already running") + f": embedded PostgreSQL in {embedded.pgdata_path(data_dir)}")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the embedded server.

    Example: linea db server stop
    """
    from linea_cli.db import embedded

    data_dir = state().settings().data_dir
    stopped = embedded.stop(data_dir)
    say("stopped the embedded PostgreSQL server" if stopped else "the embedded PostgreSQL server was not running")


