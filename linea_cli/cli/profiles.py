"""`linea profile ...`: the named databases of ~/.config/linea/config.toml (list, show, use, add, remove)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from linea_cli.cli.context import state
from linea_cli.cli.options import Output, output_options
from linea_cli.output import Column, Kind, say

app = typer.Typer(help="List, show, choose, add and remove named databases (~/.config/linea/config.toml).", no_args_is_help=True)

# URLs and service names are copied into commands: shown whole or not at all, never cut or broken
# across lines. A profile is its name and its database (a URL or a service): at 80 columns with a
# URL of the usual length, `current` joins them; the rest from wider terminals.
LIST_COLUMNS = [
    Column("name"), Column("current", priority=1), Column("in_use", priority=3), Column("url", kind=Kind.id),
    Column("service", kind=Kind.id), Column("migration_url", kind=Kind.id, priority=4),
    Column("read_url", kind=Kind.id, priority=5), Column("confirm", priority=2),
]


def complete_profile(ctx: Any, incomplete: str) -> list[tuple[str, str]]:
    """The profiles of the config file whose names start with `incomplete`, each with its
    database; nothing when the file cannot be read (completion never prints an error)."""
    from linea_cli.errors import LineaError
    from linea_cli.services.profiles import list_profiles

    try:
        return [
            (row["name"], row["url"] or f"service {row['service']}")
            for row in list_profiles(None) if row["name"].startswith(incomplete)
        ]
    except LineaError:
        return []


def _in_use() -> str | None:
    return state().settings().profile


def _title(record: Mapping[str, Any]) -> str:
    return f"Profile {record['name']}"


@app.command("list")
@output_options(columns=LIST_COLUMNS, title="Profiles")
def list_(*, out: Output) -> None:
    """List the profiles, marking the current one and the one in use.

    Example: linea profile list
    """
    from linea_cli.services.profiles import list_profiles

    out.check()
    out.rows(list_profiles(_in_use()))


@app.command()
@output_options(title=_title)
def show(
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="The profile (default: the one in use).", autocompletion=complete_profile)
    ] = None,
    *,
    out: Output,
) -> Mapping[str, Any]:
    """Show a profile: its database, migration URL and whether it confirms.

    Example: linea profile show prod
    """
    from linea_cli.services.profiles import show_profile

    return show_profile(name, _in_use())


@app.command()
def use(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The profile to use from now on.", autocompletion=complete_profile)],
) -> None:
    """Make a profile the current one: every later command uses its database.

    --profile, LINEA_PROFILE, --database-url and LINEA_DATABASE_URL still win over it.

    Example: linea profile use staging
    """
    from linea_cli.services.profiles import use_profile

    record = use_profile(name)
    say(f"now using profile {record['name']} ({record['url'] or 'service ' + record['service']})")


# The fields of `profile add` and `profile remove`, checked before the file is written.
_CHANGED_FIELDS = dict.fromkeys(("name", "url", "service", "migration_url", "read_url", "confirm", "file"))


@app.command()
@output_options(title=_title)
def add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The new profile's name: letters, digits, '.', '_', '-'.")],
    url: Annotated[
        str | None, typer.Option("--url", metavar="URL", help="Its database: a postgresql:// URL.", show_default=False)
    ] = None,
    service: Annotated[
        str | None, typer.Option("--service", metavar="NAME", help="Its database: a service of pg_service.conf.", show_default=False)
    ] = None,
    migration_url: Annotated[
        str | None,
        typer.Option("--migration-url", metavar="URL", help="A direct URL for migrations (past PgBouncer).", show_default=False),
    ] = None,
    read_url: Annotated[
        str | None,
        typer.Option("--read-url", metavar="URLS", help="Streaming replicas for reads (comma-separated).", show_default=False),
    ] = None,
    confirm: Annotated[bool, typer.Option("--confirm", help="Destructive commands ask first (or take --yes).")] = False,
    from_env: Annotated[
        Path | None,
        typer.Option(
            "--from-env", metavar="FILE", show_default=False,
            help="Take LINEA_DATABASE_URL, LINEA_MIGRATION_DATABASE_URL and LINEA_READ_DATABASE_URL from a .env file of yours.",
        ),
    ] = None,
    *,
    out: Output,
) -> Mapping[str, Any]:
    """Add a profile: a named database in ~/.config/linea/config.toml.

    Give its database with --url or --service, or move a .env's with --from-env.
    Passwords are never printed.

    Example: linea profile add staging --service staging --confirm
    """
    from linea_cli.services.profiles import add_profile

    out.check({**_CHANGED_FIELDS})
    record = add_profile(
        name, url=url, service=service, migration_url=migration_url, read_url=read_url, confirm=confirm, from_env=from_env
    )
    say(f"added profile {record['name']} ({record['url'] or 'service ' + record['service']}) to {record['file']}")
    return record


@app.command()
@output_options(title=_title)
def remove(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The profile to remove.", autocompletion=complete_profile)],
    *,
    out: Output,
) -> Mapping[str, Any]:
    """Remove a profile from ~/.config/linea/config.toml (not its database).

    Example: linea profile remove staging
    """
    from linea_cli.services.profiles import remove_profile

    out.check({**_CHANGED_FIELDS, "was_current": None})
    record = remove_profile(name)
    say(f"removed profile {record['name']} from {record['file']}")
    if record["was_current"]:
        say("it was the current profile: none is now (choose one with `linea profile use NAME`)")
    return record
