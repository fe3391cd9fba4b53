"""Named profiles: the per-user config file `$XDG_CONFIG_HOME/linea/config.toml`
(`~/.config/linea/config.toml` by default), as kubectl's contexts and gh's hosts.

    current = "staging"            # what `linea profile use staging` wrote

    [profiles.staging]
    service = "staging"            # a pg_service.conf service; or url = "postgresql://..."
    migration_url = "postgresql://admin@db-direct/linea"   # optional: migrations, past PgBouncer

    [profiles.prod]
    url = "postgresql://linea@prod-db/linea"
    confirm = true                 # destructive commands ask first (or take --yes)

The file chooses which database every command changes, so it is read only when it is the user's
own (the same check as for a `.env`, `config.not_own`): anything else is an error, never a silent
fall back to another database. A file that does not exist is no profiles.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from linea_cli.errors import InvalidInput, NotFound, shown

PROFILE_KEYS = frozenset({"url", "service", "migration_url", "confirm"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Profile:
    name: str
    url: str | None = None
    service: str | None = None
    migration_url: str | None = None
    confirm: bool = False

    @property
    def database_url(self) -> str:
        """The URL linea connects with: the profile's own, or libpq's service URL."""
        return self.url if self.url is not None else f"postgresql://?service={self.service}"


@dataclass(frozen=True)
class ProfileFile:
    path: Path
    profiles: dict[str, Profile]
    current: str | None = None

    def get(self, name: str) -> Profile:
        profile = self.profiles.get(name)
        if profile is None:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise NotFound(
                f"no profile {shown(name)} in {self.path} (profiles: {known})",
                hint="`linea profile list` lists them",
            )
        return profile


def config_path() -> Path:
    """`$XDG_CONFIG_HOME/linea/config.toml`; `~/.config/...` when it is unset or not absolute."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "linea" / "config.toml"


def read_profiles(path: Path | None = None) -> ProfileFile:
    """The profiles in the config file (none when it does not exist); an error when someone else
    could have written it, or when it is not valid."""
    path = path or config_path()
    content = _read_own(path)
    if content is None:
        return ProfileFile(path, {})
    import tomllib

    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"{path} is not valid TOML: {exc}") from None
    return _parse(path, data)


def _parse(path: Path, data: dict) -> ProfileFile:
    unknown = sorted(set(data) - {"current", "profiles"})
    if unknown:
        raise InvalidInput(f"{path}: unknown key {shown(unknown[0])}", hint="use `current` and [profiles.NAME] tables")
    current = data.get("current")
    if current is not None and not isinstance(current, str):
        raise InvalidInput(f"{path}: `current` must be a profile name in quotes")
    tables = data.get("profiles", {})
    if not isinstance(tables, dict):
        raise InvalidInput(f"{path}: `profiles` must be tables, [profiles.NAME]")
    profiles: dict[str, Profile] = {}
    for name, table in tables.items():
        where = f"{path}: profile {shown(name)}"
        if not _NAME.fullmatch(name):
            raise InvalidInput(f"{where}: a name is letters, digits, '.', '_' and '-'")
        if not isinstance(table, dict):
            raise InvalidInput(f"{where} must be a table, [profiles.{name}]")
        extra = sorted(set(table) - PROFILE_KEYS)
        if extra:
            raise InvalidInput(f"{where}: unknown key {shown(extra[0])}", hint="keys: " + ", ".join(sorted(PROFILE_KEYS)))
        for key in ("url", "service", "migration_url"):
            value = table.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidInput(f"{where}: `{key}` must be a non-empty string")
        if ("url" in table) == ("service" in table):
            raise InvalidInput(f"{where}: give exactly one of `url` and `service`")
        confirm = table.get("confirm", False)
        if not isinstance(confirm, bool):
            raise InvalidInput(f"{where}: `confirm` must be true or false")
        profiles[name] = Profile(name, table.get("url"), table.get("service"), table.get("migration_url"), confirm)
    return ProfileFile(path, profiles, current)


def _read_own(path: Path) -> bytes | None:
    """The file's bytes when it is the user's own; None when it does not exist.

    A symbolic link (dotfile managers make them) is followed, and both the link's directory and
    the file's own are checked.
    """
    from linea_cli.config import not_own

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as file:
        found = os.fstat(file.fileno())
        problem = not_own(path, found)
        if problem is None and os.path.islink(path):
            problem = not_own(Path(os.path.realpath(path)), found)
            if problem is None:
                problem = _directory_not_own(path.absolute().parent)
        if problem:
            raise InvalidInput(
                f"refusing to read {path}: {problem}",
                hint="it chooses the database linea changes: make it yours alone (chmod go-w)",
            )
        return file.read()


def _directory_not_own(directory: Path) -> str | None:
    holder = os.stat(directory)
    if holder.st_uid not in (os.geteuid(), 0):
        return f"its directory {directory} is owned by uid {holder.st_uid}"
    if holder.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not holder.st_mode & stat.S_ISVTX:
        return f"its directory {directory} is writable by group or others"
    return None


_CURRENT_LINE = re.compile(r"^\s*current\s*=.*$")
_TABLE_LINE = re.compile(r"^\s*\[")


def set_current(name: str, path: Path | None = None) -> ProfileFile:
    """Make `name` the current profile in the file, keeping the rest of it (comments included)."""
    profiles = read_profiles(path)
    profiles.get(name)
    path = profiles.path
    real = Path(os.path.realpath(path))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    line = f'current = "{name}"\n'
    for index, text in enumerate(lines):
        if _TABLE_LINE.match(text):
            lines.insert(index, line)
            break
        if _CURRENT_LINE.match(text):
            lines[index] = line
            break
    else:
        lines.append(line)
    # Written beside it and renamed: a reader sees the old file or the new one, never half.
    fd, temporary = tempfile.mkstemp(prefix=".config.", suffix=".toml", dir=real.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write("".join(lines))
        os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode) & ~(stat.S_IWGRP | stat.S_IWOTH))
        os.replace(temporary, real)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return read_profiles(path)
