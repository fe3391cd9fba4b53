"""Shell completion from the database: event slugs, user emails, venue ids, waitlist addresses.

Typer calls these while the user presses Tab (`linea --install-completion` sets that up for bash,
zsh and fish); statuses and formats complete from their choices without them. A completion must
answer at once and must never get in the way, so it is deliberately unlike a command:

- it connects with psycopg (checks for an acting user run on that same connection), a 2 s
  connect timeout and a 2 s statement timeout;
- it never starts the embedded server (a stopped server completes nothing) and never migrates;
- it asks for at most `LIMIT` candidates, filtered by prefix in SQL (Typer then keeps those that
  start with exactly what was typed);
- any failure (no database, no schema, a bad URL or setting, a timeout, an acting user who does
  not exist) completes nothing and prints nothing: a message in the middle of the user's command
  line would only garble it.

It shows only what the command would: with an acting user (--as / LINEA_ACTOR) it loads the
services and asks their permission checks (someone other than an ADMIN completes only their own
address, and an event's waitlist only where `waitlist list` lets them read it); without one linea
acts as the system, as commands do, and the services are not loaded.

A database value with nothing else to decide (no acting user, no settings file...) is answered
before this module is even imported, by linea_cli.completion_fast, from the same queries, quoting
and index of the command tree (`completion_index`, written by `python -m linea_cli.cli.completion`);
this module answers everything else.

Values come from the platform and may be hostile (``Z`touch${IFS}x`@x.org`` is a legal address).
A shell inserts what completion answers into the command line, where it would be run on Enter, so
linea answers each shell in its own terms, with its own scripts (`SCRIPTS`) in place of Typer's:

- bash inserts the answer as it is: linea quotes each candidate for the quoting the user is in
  (backslashes outside quotes; inside an open `'` or `"`, that quote's rules, closing it), and
  replaces exactly the text readline replaces (which starts after a `:`, `=` or open quote, or at
  `@`). Its script reads the answers with `mapfile` (no word splitting or globbing of them).
- zsh and fish quote what they insert themselves: linea hands them the value as it is (zsh through
  `_describe`, never through `eval`).
- A candidate no quoting can carry safely is left out: control characters, other invisible or
  bidirectional characters, line and paragraph separators, and database values starting with `-`
  (the command would take them for an option). The help shown beside a candidate (zsh, fish) has its
  control characters escaped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, MutableMapping
from typing import Any

from typer._completion_classes import BashComplete, FishComplete, ZshComplete

from linea_cli.completion_fast import (
    CONNECT_TIMEOUT_SECONDS,
    EVENTS,
    LIMIT,
    USERS,
    VENUES,
    WAITLIST,
    BashLine,
    bash_quoted,
    fish_answer,
    insertable,
    like_escaped,
    limit_time,
    shortened,
    visible,
    zsh_answer,
)

__all__ = ["bash_quoted", "insertable"]

# What the acting user may complete: the query's parameters, or None for nothing. Called with a
# SQLModel session, the resolved actor and the parameters so far.
Scope = Callable[[Any, Any, dict[str, Any]], "dict[str, Any] | None"]


def complete_event(ctx: Any, incomplete: str) -> list[tuple[str, str]]:
    # Anyone may list and show events (services/events.py takes no actor there).
    return _candidates(ctx, EVENTS, incomplete)


def complete_user(ctx: Any, incomplete: str) -> list[tuple[str, str]]:
    return _candidates(ctx, USERS, incomplete, scope=_users_scope, only=None)


def complete_venue(ctx: Any, incomplete: str) -> list[tuple[str, str]]:
    return _candidates(ctx, VENUES, incomplete)


def complete_waitlist_email(ctx: Any, incomplete: str) -> list[tuple[str, str]]:
    event = ctx.params.get("event")
    if not isinstance(event, str) or not event:
        return []
    return _candidates(ctx, WAITLIST, incomplete, scope=_waitlist_scope, event=event.strip())


def _users_scope(session: Any, actor: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    """`users show`'s rule: an ADMIN (or the system) sees everyone, anyone else only themselves."""
    from linea_cli.errors import PermissionDenied
    from linea_cli.services.actors import require_self_or_admin

    try:
        require_self_or_admin(actor, None, "show themselves")
    except PermissionDenied:
        return {**params, "only": actor.user_id}
    return params


def _waitlist_scope(session: Any, actor: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    """`waitlist list`'s rule: only the waitlist of an event the actor may manage."""
    from linea_cli.errors import LineaError
    from linea_cli.services.waitlist import listable_event

    try:
        event = listable_event(session, params["event"], actor=actor)
    except LineaError:  # refused, or no such event
        return None
    return {**params, "event": event.id}


def _candidates(ctx: Any, query: str, incomplete: str, *, scope: Scope | None = None, **params: Any) -> list[tuple[str, str]]:
    try:
        conninfo, actor_reference = _conninfo_and_actor(ctx)
        if conninfo is None:
            return []
        import psycopg

        params = {"prefix": like_escaped(incomplete), "limit": LIMIT, **params}
        with psycopg.connect(
            conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS, prepare_threshold=None,
            application_name="linea/completion",
        ) as connection:
            if actor_reference is None:  # the system: every check passes
                limit_time(connection)
                rows = connection.execute(query, params).fetchall()
            else:
                rows = _rows_as_actor(connection, actor_reference, query, params, scope)
            connection.rollback()
    except Exception:  # noqa: BLE001 - deliberate: a completion that fails completes nothing, silently
        return []
    # A value starting with `-` would reach the command as an option: not offered.
    return [
        (value, visible(shortened(help_text or ""))) for value, help_text in rows
        if insertable(value) and not value.startswith("-")
    ]


def _rows_as_actor(connection: Any, reference: str, query: str, params: dict[str, Any], scope: Scope | None) -> list[Any]:
    """The rows the acting user may see, checked by the services on this same connection."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from linea_cli.services.actors import resolve_actor

    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: connection, poolclass=sa.pool.StaticPool)
    with Session(engine) as session:
        # The engine's first connect ends in a rollback: the time limits come after it.
        driver = session.connection().connection.driver_connection
        limit_time(driver)
        actor = resolve_actor(session, reference)  # refused (unknown, ambiguous): nothing
        scoped = params if scope is None else scope(session, actor, params)
        if scoped is None:
            return []
        return driver.execute(query, scoped).fetchall()


def _conninfo_and_actor(ctx: Any) -> tuple[str | None, str | None]:
    """The configured database as a libpq conninfo (or the embedded server's if it is running),
    and the acting user's reference (None: the system)."""
    from pathlib import Path

    from psycopg.conninfo import make_conninfo

    from linea_cli.config import actor_reference, load_settings
    from linea_cli.db import embedded
    from linea_cli.db.libpq_environment import libpq_environment
    from linea_cli.db.urls import parse_database_url

    root = ctx.find_root()
    # Silent about a .env no longer read: a warning would be drawn into the line being completed.
    settings = load_settings(
        database_url=root.params.get("database_url"), actor=root.params.get("acting_as"), warn=lambda message: None,
        profile=root.params.get("profile"),
    )
    reference = actor_reference(settings.actor)  # an empty one is an error: nothing
    if settings.database_url is not None:
        url = parse_database_url(settings.database_url)
    elif libpq_environment():
        return "", reference  # the server libpq's environment names, as every command uses it
    else:
        server = embedded.status(Path(settings.data_dir))
        if not server.running or server.socket_directory is None:
            return None, reference  # never started just to complete a word
        url = embedded.socket_url(server.socket_directory)
    parts: dict[str, Any] = {
        "host": url.host, "port": url.port, "user": url.username, "password": url.password, "dbname": url.database,
    }
    for key, value in url.query.items():
        parts[key] = value if isinstance(value, str) else value[-1]
    return make_conninfo(**{key: str(value) for key, value in parts.items() if value is not None}), reference


class LineaBashComplete(BashComplete):
    """bash: the line and cursor (COMP_LINE, COMP_POINT) and readline's own word ($2), so that
    each answer is quoted for the quoting at its start and replaces exactly readline's word."""

    def get_completion_args(self) -> tuple[list[str], str]:
        self.line = BashLine(os.environ)
        return self.line.args, self.line.incomplete

    def format_completion(self, item: Any) -> str:
        return self.line.answer(str(item.value))

    def complete(self) -> str:
        if "COMP_LINE" not in os.environ:  # Typer's script, installed before linea had its own
            return ""
        args, incomplete = self.get_completion_args()
        answers = (self.format_completion(item) for item in self.get_completions(args, incomplete))
        return "\n".join(answer for answer in answers if answer)


class LineaZshComplete(ZshComplete):
    """zsh: `value:help` lines for `_describe` (`:` and `\\` escaped), which quotes what it inserts."""

    def format_completion(self, item: Any) -> str:
        return zsh_answer(str(item.value), item.help or "")

    def complete(self) -> str:
        args, incomplete = self.get_completion_args()
        return "\n".join(
            self.format_completion(item) for item in self.get_completions(args, incomplete) if insertable(str(item.value))
        )


class LineaFishComplete(FishComplete):
    """fish: `value<TAB>help` lines; fish escapes what it inserts. The help is shown as it is: Typer
    reads it as Rich markup (a title `[b]x[/b]` lost its brackets, `[/x]` raised) and wraps it at
    80 columns (a long help became a second, bogus candidate)."""

    def format_completion(self, item: Any) -> str:
        return fish_answer(str(item.value), item.help or "")

    def complete(self) -> str:
        args, incomplete = self.get_completion_args()
        answers = [self.format_completion(item) for item in self.get_completions(args, incomplete) if insertable(str(item.value))]
        action = os.environ.get("_TYPER_COMPLETE_FISH_ACTION")
        if action == "is-args":  # the script Typer installed asks first whether there are candidates
            import sys

            sys.exit(0 if answers else 1)
        return "\n".join(answers) if action == "get-args" else ""


# Typer's templates, linea's scripts: %(complete_func)s, %(autocomplete_var)s and %(prog_name)s are
# filled in by Typer (a literal % is written %%).
SCRIPTS = {
    "bash": """
%(complete_func)s() {
    local answer
    local -a answers
    COMPREPLY=()
    mapfile -t answers < <(env COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" _LINEA_COMP_TEXT="$2" \\
                           %(autocomplete_var)s=complete_bash "$1" 2>/dev/null)
    for answer in "${answers[@]}"; do
        [[ -n $answer ]] && COMPREPLY+=("$answer")
    done
    return 0
}

complete -o default -F %(complete_func)s %(prog_name)s
""",
    "zsh": """
#compdef %(prog_name)s

%(complete_func)s() {
  local output
  local -a answers
  output="$(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" %(autocomplete_var)s=complete_zsh %(prog_name)s 2>/dev/null)"
  if [[ -n $output ]]; then
    answers=("${(@f)output}")
    _describe -t values value answers
  else
    _files
  fi
}

compdef %(complete_func)s %(prog_name)s
""",
    # One linea process per Tab (Typer's script ran two: one to ask whether there are candidates,
    # one for them); none: file names, as with no linea completion.
    "fish": """
function %(complete_func)s
    set -l answers (env %(autocomplete_var)s=complete_fish _TYPER_COMPLETE_FISH_ACTION=get-args \\
                        _TYPER_COMPLETE_ARGS=(commandline -cp) %(prog_name)s 2>/dev/null | string match -v -- '')
    if set -q answers[1]
        printf '%%s\\n' $answers
    else
        __fish_complete_path (commandline -ct)
    end
end

complete --command %(prog_name)s --no-files --arguments '(%(complete_func)s)'
""",
}
_CLASSES: dict[str, type[Any]] = {"bash": LineaBashComplete, "zsh": LineaZshComplete, "fish": LineaFishComplete}
for _shell, _class in _CLASSES.items():
    if _shell in SCRIPTS:
        _class.source_template = SCRIPTS[_shell]


# The shells `--install-completion` and `--show-completion` take: linea's scripts, and Typer's for PowerShell.
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")
COMPLETION_OPTIONS = ("--install-completion", "--show-completion")
_SHELL_WORD = "linea.completion_shell"


def take_shell_word(ctx: Any, args: list[str], valued_root_options: tuple[str, ...]) -> list[str]:
    """`--show-completion fish`, `--show-completion=fish`: the shell named after a completion
    option among the root's words, kept in ctx.meta for the option's callback (the options are
    flags to Click, which would read `fish` as a command's name). The words, `=SHELL` taken off."""
    position = 0
    while position < len(args):
        word = args[position]
        name, equals, value = word.partition("=")
        if name in COMPLETION_OPTIONS:
            if equals:
                ctx.meta[_SHELL_WORD] = value
                return [*args[:position], name, *args[position + 1:]]
            after = args[position + 1] if position + 1 < len(args) else None
            if after is not None and not after.startswith("-"):
                ctx.meta[_SHELL_WORD] = after
            return args
        if word in valued_root_options:
            position += 2
        elif word.startswith("-"):
            position += 1
        else:
            return args  # the group's name: what follows is the command's
    return args


def _shell(ctx: Any, param: Any) -> str:
    """The shell named after the option, else the current one; a usage error (exit 2) naming the
    shells for any other."""
    from typer import BadParameter
    from typer._completion_shared import _get_shell_name

    shells = ", ".join(SHELLS)
    named = ctx.meta.get(_SHELL_WORD)
    if named is not None:
        if named not in SHELLS:
            raise BadParameter(f"{named} is not one of {shells}", ctx=ctx, param=param)
        return str(named)
    current = _get_shell_name()
    if current not in SHELLS:
        which = "could not tell the current shell" if current is None else f"the current shell ({current}) is not one of {shells}"
        raise BadParameter(f"{which}: name one after it ({param.opts[0]} bash)", ctx=ctx, param=param)
    return str(current)


def show_completion(ctx: Any, param: Any, value: Any) -> Any:
    """`--show-completion [SHELL]`: print that shell's script (default: the current shell's)."""
    if not value or ctx.resilient_parsing:
        return value
    from typer.completion import show_callback

    return show_callback(ctx, param, _shell(ctx, param))


def install_completion(ctx: Any, param: Any, value: Any) -> Any:
    """`--install-completion [SHELL]`: install that shell's script (default: the current shell's)."""
    if not value or ctx.resilient_parsing:
        return value
    from typer.completion import install_callback

    return install_callback(ctx, param, _shell(ctx, param))


def use_linea_scripts() -> None:
    """Make `--install-completion` and `--show-completion` write linea's scripts, not Typer's."""
    from typer import _completion_shared

    _completion_shared._completion_scripts.update(SCRIPTS)


def shell_complete(cli: Any, ctx_args: MutableMapping[str, Any], prog_name: str, complete_var: str | None) -> None:
    """Answer the shell's completion request (`_LINEA_COMPLETE=complete_bash` ...), if this is one."""
    import sys

    import typer

    complete_var = complete_var or f"_{prog_name}_COMPLETE".replace("-", "_").upper()
    instruction = os.environ.get(complete_var)
    if not instruction:
        return
    action, _, shell = instruction.partition("_")
    completion_class = _CLASSES.get(shell)
    if completion_class is None or action not in ("complete", "source"):
        from typer._completion_classes import completion_init
        from typer.completion import shell_complete as typers

        completion_init()  # Typer's PowerShell class (linea's root adds its completion options itself)
        sys.exit(typers(cli, ctx_args, prog_name, complete_var, instruction))  # powershell, and Typer's errors
    comp = completion_class(cli, ctx_args, prog_name, complete_var)
    typer.echo(comp.complete() if action == "complete" else comp.source())
    sys.exit(0)


# --- the index the fast path reads (linea_cli/completion_index.py) -------------------------------

_KINDS = {complete_event: "event", complete_user: "user", complete_venue: "venue", complete_waitlist_email: "waitlist_email"}
INDEX_PATH = "linea_cli/completion_index.py"


def completion_index() -> dict[str, dict[str, Any]]:
    """For every `GROUP COMMAND`: its arguments in order ([parameter name, what completes it or None]),
    its options taking one value (name -> what completes it or None) and its flags. Options taking
    several values, or repeated values, are left out: the fast path defers on them."""
    import typer.main
    from typer import _click as click

    from linea_cli.cli import app

    def kind(param: Any) -> str | None:
        # Typer wraps the `autocompletion` function twice: in a closure, and with update_wrapper.
        custom = getattr(param, "_custom_shell_complete", None)
        for cell in getattr(custom, "__closure__", None) or ():
            function = getattr(cell.cell_contents, "__wrapped__", cell.cell_contents)
            if function in _KINDS:
                return _KINDS[function]
        return None

    index: dict[str, dict[str, Any]] = {}
    root = typer.main.get_command(app)
    for group_name, group in sorted(root.commands.items()):  # type: ignore[attr-defined]
        for command_name, command in sorted(getattr(group, "commands", {}).items()):
            if getattr(command, "commands", None):
                continue  # `db server ...`: three words deep, the full path's
            arguments: list[list[Any]] = []
            options: dict[str, str | None] = {}
            flags: list[str] = []
            for param in command.get_params(click.Context(command)):
                if param.param_type_name == "argument":
                    arguments.append([param.name, kind(param) if param.nargs == 1 else None])
                    if param.nargs != 1:
                        break  # nothing after a variadic argument is known by position
                    continue
                names = [*param.opts, *param.secondary_opts]
                if param.is_flag or param.count:  # type: ignore[attr-defined]
                    flags.extend(names)
                elif param.nargs == 1 and not param.multiple:  # type: ignore[attr-defined]
                    options.update((name, kind(param)) for name in param.opts)
            index[f"{group_name} {command_name}"] = {"arguments": arguments, "options": options, "flags": sorted(flags)}
    return index


def index_source() -> str:
    import pprint

    return (
        '"""Generated by `python -m linea_cli.cli.completion` from the command tree: do not edit.\n\n'
        "Where each command's words stand, for linea_cli.completion_fast (tests/test_completion.py\n"
        'checks that it matches the tree)."""\n\n'
        "from typing import Any\n\n"
        f"COMMANDS: dict[str, dict[str, Any]] = {pprint.pformat(completion_index(), width=110, sort_dicts=True)}\n"
    )


if __name__ == "__main__":
    from pathlib import Path

    # Run with -m, this file is a second module (`__main__`) beside `linea_cli.cli.completion`, whose
    # callbacks the command tree holds: the index is made by that module, or no callback matches.
    from linea_cli.cli import completion as loaded

    Path(__file__).resolve().parent.parent.parent.joinpath(INDEX_PATH).write_text(loaded.index_source())
