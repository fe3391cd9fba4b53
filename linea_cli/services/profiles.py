"""The user's named profiles (`linea_cli.profiles`) as records: list, show, choose the current
one, add and remove.

No database is opened: the config file is all there is. URLs are shown with passwords masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from linea_cli import profiles as config_file
from linea_cli.errors import InvalidInput, NotFound, UsageProblem, parameter
from linea_cli.profiles import Profile, ProfileFile, read_profiles, set_current


def _record(profile: Profile, profiles: ProfileFile, in_use: str | None) -> dict[str, Any]:
    from linea_cli.db.urls import mask_url_text

    return {
        "name": profile.name,
        "current": profile.name == profiles.current,
        "in_use": profile.name == in_use,
        "url": mask_url_text(profile.url) if profile.url is not None else None,
        "service": profile.service,
        "migration_url": mask_url_text(profile.migration_url) if profile.migration_url is not None else None,
        "read_url": mask_url_text(profile.read_url) if profile.read_url is not None else None,
        "confirm": profile.confirm,
    }


def list_profiles(in_use: str | None) -> list[dict[str, Any]]:
    """Every profile, by name; `in_use` is the one this command line uses (--profile, LINEA_PROFILE)."""
    profiles = read_profiles()
    return [_record(profiles.profiles[name], profiles, in_use) for name in sorted(profiles.profiles)]


def show_profile(name: str | None, in_use: str | None) -> dict[str, Any]:
    """The profile `name`, or without one the profile in use; with the file it comes from."""
    profiles = read_profiles()
    wanted = name or in_use
    if wanted is None:
        raise NotFound(
            "no profile is in use", hint="name one, or choose one with `linea profile use NAME` or --profile"
        )
    return {**_record(profiles.get(wanted), profiles, in_use), "file": str(profiles.path)}


def use_profile(name: str) -> dict[str, Any]:
    """Make `name` the config file's current profile: the database of every later command."""
    profiles = set_current(name)
    return {**_record(profiles.get(name), profiles, name), "file": str(profiles.path)}


def add_profile(
    name: str,
    *,
    url: str | None = None,
    service: str | None = None,
    migration_url: str | None = None,
    read_url: str | None = None,
    confirm: bool = False,
    from_env: Path | None = None,
) -> dict[str, Any]:
    """Add a profile to the config file: its database by `url` or `service` (a pg_service.conf
    service), `read_url` its replicas (comma-separated), or the URLs from the dotenv file `from_env`
    (its LINEA_DATABASE_URL, LINEA_MIGRATION_DATABASE_URL and LINEA_READ_DATABASE_URL, nothing
    else; the file must be the user's own)."""
    if from_env is not None:
        if url is not None or service is not None or migration_url is not None or read_url is not None:
            raise UsageProblem(
                f"{parameter('from_env')} takes the database from the file: give no {parameter('url')}, "
                f"{parameter('service')}, {parameter('migration_url')} or {parameter('read_url')} with it"
            )
        values = config_file.read_env_file(from_env)
        from linea_cli.db.urls import parse_database_url

        for variable, value in values.items():
            if not value.strip():
                raise InvalidInput(f"{variable} is empty in {from_env.absolute()}")
            try:
                parse_database_url(value)  # never echoed when it does not parse
            except InvalidInput as exc:
                exc.marked_message = f"{variable} in {from_env.absolute()}: {exc.marked_message}"
                raise
        url = values.get("LINEA_DATABASE_URL")
        if url is None:
            raise InvalidInput(
                f"{from_env.absolute()} sets no LINEA_DATABASE_URL",
                hint=f"give the database with {parameter('url')} or {parameter('service')} instead",
            )
        migration_url = values.get("LINEA_MIGRATION_DATABASE_URL")
        read_url = values.get("LINEA_READ_DATABASE_URL")
    profile = Profile(
        name,
        url.strip() if url is not None else None,
        service.strip() if service is not None else None,
        migration_url.strip() if migration_url is not None else None,
        confirm,
        read_url.strip() if read_url is not None else None,
    )
    profiles = config_file.add_profile(profile)
    return _changed(_record(profiles.profiles[name], profiles, None), profiles)


def remove_profile(name: str) -> dict[str, Any]:
    """Remove a profile from the config file; `was_current` when it was the file's current one
    (then none is current)."""
    before = read_profiles()
    record = _record(before.get(name), before, None)
    config_file.remove_profile(name)
    return {**_changed(record, before), "was_current": record["current"]}


def _changed(record: dict[str, Any], profiles: ProfileFile) -> dict[str, Any]:
    """A profile added or removed: what it is, and the file (whether it is current or in use is
    another command line's matter)."""
    return {key: value for key, value in record.items() if key not in ("current", "in_use")} | {"file": str(profiles.path)}
