"""The one confirmation before what cannot be undone: asked on a terminal, skipped with --yes.

Every question names the profile in use (`--profile`, LINEA_PROFILE, `linea profile use`). The
changes that do not ask anywhere else (`confirm_change`) name the database they change on stderr
when it is not the embedded one, and ask on a profile with `confirm = true`.

Without a terminal and without --yes a command stops with a hint naming the flags instead of
hanging on a prompt nobody sees. A declined question raises `typer.Abort`, which the error
boundary turns into "not confirmed; nothing was changed" (exit 1).
"""

from __future__ import annotations

import sys

import typer

from linea_cli.errors import InvalidInput, shown


def confirm_or_stop(prompt: str, *, yes: bool, flags: str = "--yes", type_back: str | None = None) -> None:
    """Ask `prompt` on a terminal, y/N; without one and without `yes`, stop with a hint naming `flags`.

    With `type_back` (a database name), the answer is that name typed back rather than "y": for
    what destroys a database that is not the embedded one. `prompt` then says what happens in
    the words "this <what> in <database>".
    """
    if yes:
        return
    from linea_cli.output import visible

    prompt = _with_profile(prompt)

    if not sys.stdin.isatty():
        if type_back is None:
            raise InvalidInput(f"{prompt} needs confirmation: pass {flags} to run without a terminal")
        raise InvalidInput(f"{prompt} and needs confirmation: pass {flags}")
    if type_back is None:
        if not typer.confirm(visible(prompt), default=False, err=True):
            raise typer.Abort()
        return
    typed = typer.prompt(f"{visible(prompt[:1].upper() + prompt[1:])}. Type the database name", err=True)
    if typed != type_back:
        raise InvalidInput(f"{shown(typed)} is not {shown(type_back)}; nothing was changed")


def _with_profile(prompt: str) -> str:
    from linea_cli.cli.context import state

    name = state().settings().profile
    return f"{prompt} (profile {name})" if name else prompt


def confirm_change(what: str, *, yes: bool, quiet: bool = False) -> None:
    """Before a change that does not otherwise ask (`what`: "delete event x"): on a profile with
    `confirm = true`, ask (or take `yes`); else off the embedded server, name the database on
    stderr (not when `quiet`: a cron job's --quiet)."""
    from linea_cli.cli.context import state
    from linea_cli.output import say

    current = state()
    profile = current.settings().chosen_profile
    database = current.database()
    if profile is not None and profile.confirm:
        confirm_or_stop(f"{what} in {database.target}", yes=yes)
        if yes and not quiet:
            say(f"{what} in {database.target} (profile {profile.name})")
    elif not database.is_embedded and not quiet:
        say(f"{what} in {database.target}" + (f" (profile {profile.name})" if profile else ""))
