"""The user's named profiles (`linea_cli.profiles`) as records: list, show, and choose the current one.

No database is opened: the config file is all there is. URLs are shown with passwords masked.
"""

from __future__ import annotations

from typing import Any

from linea_cli.errors import NotFound
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
