"""The root command: global options, the command groups, and the single error boundary.

Every error ends here: a `LineaError` becomes one line on stderr and its exit code; database
driver errors become "database unavailable" (5) naming host and database, never the password; a
value the database refuses (SQLSTATE class 22: out of range, invalid text, datetime overflow...)
is invalid input (1) without SQL; a privilege the database role lacks is permission denied (6)
naming it and the table; a constraint violation no service expected is a conflict (4) saying
what the constraint means (linea_cli.db.refusals); anything unexpected is one line and exit 70,
with a traceback only under --debug. Driver text is shown with URLs masked and cut short; the whole output with the
password masked wherever it stands as a word. A reader that closed stdout (`linea ... | head -1`)
ends linea quietly with exit 141, as it would end `yes`.
"""

from __future__ import annotations

import copy as _copy
import enum
import errno
import gc
import os
import signal
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from linea_cli import __version__
from linea_cli.cli import audit, completion, db, events, profiles, sessions, users, venues, waitlist
from linea_cli.cli.context import CliState, begin, state
from linea_cli.cli.help import UsageError, tidy_help
from linea_cli.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_CODE_MEANINGS,
    EXIT_USAGE,
    DatabaseUnavailable,
    InternalError,
    Interrupted,
    InvalidInput,
    LineaError,
    PermissionDenied,
    Terminated,
    WriteFailed,
    cut,
    with_options,
)

# The longest line an error prints (a backstop), and the longest driver message it quotes.
MAX_LINE_LENGTH = 1000
SHOWN_DRIVER_TEXT = 300


# The variables linea reads, for the end of `linea --help` (README.md's Configuration table says
# the same at more length; tests/test_help.py checks that both name the same variables).
ENVIRONMENT_VARIABLES: tuple[tuple[str, str], ...] = (
    ("LINEA_DATABASE_URL", "the database (postgresql://...); unset: libpq's PGSERVICE/PGHOST/... if set, else the embedded server"),
    ("LINEA_PROFILE", "a profile of ~/.config/linea/config.toml, like --profile"),
    ("LINEA_MIGRATION_DATABASE_URL", "a direct URL for migrations when LINEA_DATABASE_URL goes through PgBouncer"),
    ("LINEA_ACTOR", "the acting user (email or id), like --as; unset: the system"),
    ("LINEA_DATA_DIR", "where the embedded server keeps its data"),
    ("LINEA_BACKUP_DIR", "where db backup and db upgrade put archives (default <data dir>/backups)"),
    ("LINEA_PG_DUMP", "the pg_dump to run (default: the closest to the server's version found)"),
    ("LINEA_PG_RESTORE", "the pg_restore to run (default: as for pg_dump)"),
    ("LINEA_TIMEZONE", "time zone of dates typed without an offset (default UTC)"),
    ("LINEA_LOCK_TIMEOUT", "lock_timeout of every transaction (default 5s)"),
    ("LINEA_STATEMENT_TIMEOUT", "statement_timeout of every transaction (default 0, none)"),
    ("LINEA_MIGRATION_LOCK_TIMEOUT", "how long a migration waits for a lock (default 2s)"),
    ("LINEA_MIGRATION_ATTEMPTS", "how often a migration tries, doubling the wait (default 3)"),
    ("LINEA_READ_DATABASE_URL", "streaming replicas that reads may use (URLs, comma-separated); unset: every read on the primary"),
    ("LINEA_REPLICA_MAX_LAG", "how far behind a replica may be and still serve reads: 5s (default), 16MB, or 5s,16MB"),
    ("LINEA_PGBOUNCER_ADMIN_URL", "PgBouncer's admin console (postgresql://USER@HOST:PORT/pgbouncer), read by db pool"),
    ("LINEA_PAGER", "the pager for tables taller than the terminal (then PAGER, else less -FRX; empty: none)"),
    ("NO_COLOR", "plain output"),
)


class LineaGroup(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy_help(self)
        inherit_root_options(self)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:  # `linea --help | head -1` writes the help from here
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            raise typer.Exit(stop_writing_stdout()) from None
        except UsageError as exc:  # linea's root options
            raise typer.Exit(show_usage_error(exc)) from None

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if ctx.parent is None:  # `--show-completion fish`: the shell, for the option's callback
            from linea_cli.cli.completion import take_shell_word

            args = take_shell_word(ctx, args, _VALUED_ROOT_OPTIONS)
        return super().parse_args(ctx, args)

    def _main_shell_completion(self, ctx_args: Any, prog_name: str, complete_var: str | None = None) -> None:
        # linea's completion classes and scripts (cli/completion.py): quoted for each shell.
        from linea_cli.cli.completion import shell_complete

        shell_complete(self, ctx_args, prog_name, complete_var)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        # Definition lists, not an epilog paragraph: Click would rewrap the table into prose.
        with formatter.section("Environment"):
            formatter.write_dl(ENVIRONMENT_VARIABLES)
        with formatter.section("Exit codes"):
            formatter.write_dl(EXIT_CODE_MEANINGS)

    def invoke(self, ctx: Any) -> Any:
        # The words naming the command ("events list"), read before Typer consumes them.
        words = [*getattr(ctx, "_protected_args", []), *ctx.args]
        ctx.meta["linea.command"] = " ".join(_leading_words(words, 2)) or "cli"
        try:
            return super().invoke(ctx)
        except UsageError as exc:  # in linea's style, still exit 2
            raise typer.Exit(show_usage_error(exc, command_path=f"linea {ctx.meta['linea.command']}")) from None
        except typer.Abort:
            # A declined prompt, or Ctrl-C or end of input at one (Click tells them apart from
            # neither): one line like every error, instead of Click's "Aborted!".
            raise typer.Exit(report_error(InvalidInput("not confirmed; nothing was changed"), state())) from None
        except (typer.Exit, typer.TyperException, SystemExit):
            raise  # Typer's own: usage errors (exit 2), --help
        except BrokenPipeError:
            raise typer.Exit(stop_writing_stdout()) from None
        except BaseException as exc:  # noqa: BLE001 - the single boundary: everything else becomes one line
            code = report_error(exc, state())
            raise typer.Exit(code) from None
        finally:
            current = state()
            try:
                current.remember_writes()
            finally:
                current.close()


# The root options a command also takes after its name (`linea events list --debug`), as gh and
# kubectl take their global flags anywhere: parameter name -> the CliState field it sets.
INHERITED_ROOT_OPTIONS = {
    "database_url": "database_url", "profile": "profile", "acting_as": "actor_email", "debug": "debug",
    "primary": "primary_only", "replica": "replica_required",
}


def inherit_root_options(root: Any) -> None:
    """Give every group and command under `root` its root options `--database-url`, `--profile`,
    `--as` and `--debug`, hidden from their help (the root's help lists them once).

    Click parses a command's words only after the root's callback has made the CliState, so a root
    option given after the command sets that state here; it is also put in the root's parameters,
    where completion reads the database and the acting user. The later of two wins, as for any
    option given twice.
    """
    inherited = [param for param in root.params if param.name in INHERITED_ROOT_OPTIONS]

    def add_to(group: Any) -> None:
        for command in getattr(group, "commands", {}).values():
            names = {param.name for param in command.params}
            command.params.extend(_inherited(param) for param in inherited if param.name not in names)
            add_to(command)

    add_to(root)


def _inherited(param: Any) -> Any:
    copy = _copy.copy(param)
    copy.hidden = True
    copy.expose_value = False
    copy.callback = _set_root_option
    return copy


def _set_root_option(ctx: Any, param: Any, value: Any) -> Any:
    from typer._click.core import ParameterSource

    if ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
        return value  # not given after this command: the root's own value stands
    root = ctx.find_root()
    root.params[param.name] = value
    if isinstance(root.obj, CliState):  # None while completing: the root's callback has not run
        # `--replica required` after the command: the CliState keeps a bool (Click gives the string).
        field_value = value == ReplicaUse.required if param.name == "replica" else value
        setattr(root.obj, INHERITED_ROOT_OPTIONS[param.name], field_value)
    return value


class ReplicaUse(enum.StrEnum):
    """`--replica`: read on a replica when one is fit, else the primary; or insist on one (exit 5)."""

    preferred = "preferred"
    required = "required"


def stop_writing_stdout() -> int:
    """The reader of stdout is gone: say nothing, and point stdout at /dev/null so that the flush
    at interpreter exit has somewhere to go (the recipe in Python's signal documentation)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, ValueError, OSError):  # not a real file (tests' in-memory stdout)
        pass
    return EXIT_BROKEN_PIPE


def show_usage_error(exc: Any, *, command_path: str = "linea") -> int:
    """A usage error as every other error: `error: ...` and `hint: ...`, instead of Click's
    usage line, "Try ..." line and "Error:" (help asked for by `no_args_is_help` is shown as is)."""
    from linea_cli.cli.help import usage_error_lines
    from linea_cli.output import visible

    lines = usage_error_lines(exc, command_path=command_path)
    if lines is None:
        exc.show()
        return exc.exit_code
    try:
        sys.stderr.write("".join(visible(cut(line, limit=MAX_LINE_LENGTH)) + "\n" for line in lines))
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    return EXIT_USAGE


def report_error(exc: BaseException, current: CliState) -> int:
    """Write the one-line error (and a traceback under --debug); return the exit code.

    Messages quote values as they are; control characters in them are escaped here, line by line,
    and the password is masked wherever it stands as a word.
    """
    from linea_cli.db.urls import mask_passwords, mask_url_text
    from linea_cli.output import visible

    error = translate_error(exc, current)
    lines = [f"error: {error.marked_message}", *(f"  {detail}" for detail in error.details)]
    if error.marked_hint:
        lines.append(f"hint: {error.marked_hint}")
    lines = [with_options(line, option_of) for line in lines]
    if current.debug:
        trace = mask_url_text("".join(traceback.format_exception(exc)).rstrip())
        lines[:0] = trace.splitlines()
    text = mask_passwords("\n".join(lines), current.secrets)
    try:
        sys.stderr.write("\n".join(visible(cut(line, limit=MAX_LINE_LENGTH)) for line in text.splitlines()) + "\n")
        sys.stderr.flush()
    except BrokenPipeError:  # nobody reads stderr any more: the exit code still tells
        pass
    return error.exit_code


# The options whose names are not their parameter's (`--as` acts for `actor`); any other parameter
# a service names is the option of the same name, `batch_size` as `--batch-size`.
OPTIONS_BY_PARAMETER = {"actor": "--as"}


def option_of(parameter: str) -> str:
    """The command line's option for a service's parameter named in a message."""
    return OPTIONS_BY_PARAMETER.get(parameter) or "--" + parameter.replace("_", "-")


def translate_error(exc: BaseException, current: CliState) -> LineaError:
    if isinstance(exc, LineaError):
        return exc
    if isinstance(exc, TerminatedBySignal):
        return Terminated("terminated; anything not yet committed was rolled back")
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted("interrupted; anything not yet committed was rolled back")
    known = _database_error(exc, current) or _migration_error(exc)
    if known is not None:
        return known
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:  # e.g. `linea ... > /dev/full`
        from linea_cli.output_file import write_failed

        return write_failed(exc)
    # One line, and for a database error the driver's own: SQLAlchemy's text quotes the SQL.
    cause = getattr(exc, "orig", None) or exc
    return InternalError(f"unexpected {type(cause).__name__}: {_first_line(cause)}", hint="run with --debug for a traceback")


def _database_error(exc: BaseException, current: CliState) -> LineaError | None:
    try:
        import psycopg
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - both are dependencies
        return None
    from linea_cli.db.refusals import ROLES_HINT, constraint_refusal, privilege_refusal

    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    rolled_back = _rolled_back(exc, original)
    if rolled_back is not None:
        return rolled_back
    if isinstance(original, psycopg.DataError):
        # SQLSTATE class 22 (numeric value out of range, invalid text representation, datetime
        # field overflow, string too long...): a value the user gave that edge checks let through.
        return InvalidInput(f"the database refused a value: {_first_line(original)}")
    if isinstance(original, psycopg.OperationalError | sa_exc.InterfaceError) or isinstance(
        exc, sa_exc.OperationalError
    ):
        reason = _first_line(original)
        if isinstance(original, psycopg.errors.LockNotAvailable):
            return DatabaseUnavailable(f"gave up waiting for a lock: {reason}", hint="retry when the database is less busy")
        if isinstance(original, psycopg.errors.QueryCanceled):
            return DatabaseUnavailable(f"statement timed out: {reason}")
        if "permission denied" in reason:  # "for database x: User does not have CONNECT privilege"
            role = _role(current)
            who = f"role {role!r}" if role else "the database role"
            return PermissionDenied(f"{who} may not connect to {_target(current)}: {reason}", hint=ROLES_HINT)
        return DatabaseUnavailable(f"cannot use {_target(current)}: {reason}")
    if isinstance(original, psycopg.errors.ReservedName):  # a role or schema named pg_...: the server keeps those
        return InvalidInput(f"the database refused a name: {_first_line(original)}", hint="choose a name not starting with pg_")
    if isinstance(original, psycopg.errors.InsufficientPrivilege):
        return privilege_refusal(original, getattr(exc, "statement", None), _role(current))
    if isinstance(original, psycopg.IntegrityError):  # one no service expected (they catch their own)
        return constraint_refusal(original)
    if isinstance(original, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedObject):
        return DatabaseUnavailable(
            f"{_target(current)} lacks linea's schema: {_first_line(original)}",
            hint="run `linea db upgrade`",
        )
    return None


def _rolled_back(exc: BaseException, original: BaseException) -> LineaError | None:
    import psycopg

    from linea_cli.cli.context import ReplicaLost

    if isinstance(exc, ReplicaLost):  # outside a read that could go on from the primary
        return DatabaseUnavailable(str(exc), hint="run again, or with --primary")
    if isinstance(original, psycopg.errors.TransactionRollback):
        # SQLSTATE class 40 (a deadlock, a serialization failure): nothing was committed.
        return DatabaseUnavailable(f"the server rolled the transaction back: {_first_line(original)}", hint="run again")
    return None


# A full disk or quota, a file too large, an I/O error: the machine's, not linea's.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _migration_error(exc: BaseException) -> LineaError | None:
    """Alembic's CommandError names what it cannot do with the revision given (unknown, or a
    relative step that goes nowhere): invalid input, in Alembic's own words."""
    alembic_errors = sys.modules.get("alembic.util.exc")
    if alembic_errors is None or not isinstance(exc, alembic_errors.CommandError):
        return None
    return InvalidInput(_first_line(exc), hint="`linea db history` lists the revisions")


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return _driver_text(lines[0]) if lines else type(error).__name__


def _driver_text(text: object) -> str:
    """Text linea did not write (a driver or library message): URLs masked, cut to a sane length."""
    from linea_cli.db.urls import mask_url_text

    return cut(mask_url_text(str(text)), limit=SHOWN_DRIVER_TEXT)


def _role(current: CliState) -> str | None:
    """The role linea connected as (the URL's user), to name it in a refused privilege."""
    if current._database is not None:  # as libpq connected (a service or PGUSER may have named it)
        connected = current._database.connected_to
        return connected.user if connected is not None else current._database.url.username
    if current.connected_to is not None:  # a read command's own connection (linea_cli.db.direct)
        return current.connected_to.user
    try:  # the connection itself was refused: the URL it was given
        from linea_cli.db.urls import parse_database_url

        raw = current.settings().database_url
        return parse_database_url(raw).username if raw else None
    except Exception:  # noqa: BLE001 - naming the role must never hide the real error
        return None


def _target(current: CliState) -> str:
    if current._database is not None:
        return current._database.target
    if current.connected_to is not None:  # a read command's own connection (linea_cli.db.direct)
        return str(current.connected_to)
    try:
        from linea_cli.db.libpq_environment import libpq_environment
        from linea_cli.db.urls import describe_target, parse_database_url

        raw = current.settings().database_url
        chosen_by_libpq = () if raw else libpq_environment()
        if raw or chosen_by_libpq:
            return describe_target(parse_database_url(raw or "postgresql://"), libpq_environment=chosen_by_libpq)
        return "the embedded database"
    except Exception:  # noqa: BLE001 - naming the target must never hide the real error
        return "the database"


class TerminatedBySignal(KeyboardInterrupt):
    """SIGTERM, raised as a KeyboardInterrupt: psycopg then cancels the running query, transactions
    roll back and temporary files are removed exactly as for Ctrl-C."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise TerminatedBySignal()


def _root_app() -> typer.Typer:
    from linea_cli.cli.completion import use_linea_scripts

    use_linea_scripts()  # for --install-completion and --show-completion
    return typer.Typer(
        cls=LineaGroup,
        name="linea",
        help="Administer the Linea event platform's PostgreSQL database.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        pretty_exceptions_show_locals=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        rich_markup_mode=None,
        add_completion=False,  # linea's own --install-completion and --show-completion (root's)
    )


app = _root_app()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"linea {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", metavar="URL", help="PostgreSQL URL (default: LINEA_DATABASE_URL, else the embedded server).", show_default=False),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", metavar="NAME", help="A profile of ~/.config/linea/config.toml (default: LINEA_PROFILE, else its current one).", show_default=False, autocompletion=profiles.complete_profile),
    ] = None,
    acting_as: Annotated[
        str | None, typer.Option("--as", metavar="EMAIL", help="Act as this user (default: LINEA_ACTOR, else the system).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    primary: Annotated[
        bool, typer.Option("--primary", help="Read from the primary, never from a replica (LINEA_READ_DATABASE_URL).")
    ] = False,
    replica: Annotated[
        ReplicaUse,
        typer.Option(
            "--replica", metavar="preferred|required",
            help="Reads on a replica when one is within LINEA_REPLICA_MAX_LAG, else the primary (preferred); or exit 5 (required).",
        ),
    ] = ReplicaUse.preferred,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    install_completion: Annotated[
        bool,
        typer.Option(
            "--install-completion", callback=completion.install_completion, expose_value=False, is_eager=True,
            help="Install completion for the current shell, or the SHELL named after it (bash, zsh, fish).",
        ),
    ] = False,
    show_completion: Annotated[
        bool,
        typer.Option(
            "--show-completion", callback=completion.show_completion, expose_value=False, is_eager=True,
            help="Print the completion script of the current shell, or of the SHELL named after it (bash, zsh, fish).",
        ),
    ] = False,
) -> None:
    """Administer the Linea event platform's PostgreSQL database."""
    ctx.obj = begin(
        CliState(
            database_url=database_url, profile=profile, actor_email=acting_as, debug=debug, command_name=_command_name(ctx),
            primary_only=primary, replica_required=replica == ReplicaUse.required,
        )
    )


def _command_name(ctx: typer.Context) -> str:
    """'events list', for application_name: an operator sees linea's commands in pg_stat_activity."""
    return str(ctx.meta.get("linea.command") or ctx.invoked_subcommand or "cli")


def _leading_words(words: list[str], count: int) -> list[str]:
    leading: list[str] = []
    for word in words:
        if word.startswith("-") or len(leading) == count:
            break
        leading.append(word)
    return leading


# name: (group, help panel), in the order `linea --help` lists them
GROUPS: dict[str, tuple[typer.Typer, str]] = {
    "events": (events.app, "Platform"),
    "venues": (venues.app, "Platform"),
    "waitlist": (waitlist.app, "Platform"),
    "users": (users.app, "People"),
    "sessions": (sessions.app, "People"),
    "audit": (audit.app, "People"),
    "db": (db.app, "Database"),
    "profile": (profiles.app, "Database"),
}
for _name, (_group, _panel) in GROUPS.items():
    app.add_typer(_group, name=_name, rich_help_panel=_panel)

# Root options that take a value, which the group name follows.
_VALUED_ROOT_OPTIONS = ("--database-url", "--profile", "--as", "--replica")


def app_for(words: list[str]) -> typer.Typer:
    """The root command holding only the group `words` name, or every group.

    Typer turns every command of every group it holds into a Click command (signatures, type
    hints) before it reads a word: a sixth of a read command's start-up. Help, completion, and
    words that name no group get them all, so that listings and "no such command" stay whole.
    """
    if "_LINEA_COMPLETE" in os.environ:
        return app
    position = 0
    while position < len(words):
        word = words[position]
        if word in _VALUED_ROOT_OPTIONS:
            position += 2
        elif word in ("--debug", "--primary") or word.startswith(tuple(f"{option}=" for option in _VALUED_ROOT_OPTIONS)):
            position += 1
        else:
            break
    name = words[position] if position < len(words) else None
    if name not in GROUPS:
        return app
    one = _root_app()
    one.callback()(root)
    group, panel = GROUPS[name]
    one.add_typer(group, name=name, rich_help_panel=panel)
    return one


def main() -> None:
    # Start-up creates a few hundred thousand objects that live as long as the process (modules,
    # classes, tables, validators), and the cyclic collector would walk them again and again: a
    # sixth of a read command's CPU time. It resumes once the command has its database
    # (`context.start_up_done`), for whatever the command then does at scale.
    if "_LINEA_COMPLETE" in os.environ:  # `linea` answers there first (linea_cli.launch); callers of main() too
        from linea_cli.completion_fast import answered

        if answered():
            return
    gc.disable()
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        app_for(sys.argv[1:])(prog_name="linea")
    finally:
        # What is still buffered goes out now, not in the interpreter's own flush at exit, where
        # a closed pipe or a full disk would print "Exception ignored" and exit 120.
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            raise SystemExit(stop_writing_stdout()) from None
        except OSError as exc:
            from linea_cli.output_file import write_failed

            stop_writing_stdout()
            sys.stderr.write(f"error: {write_failed(exc).message}\n")
            raise SystemExit(WriteFailed.exit_code) from None
