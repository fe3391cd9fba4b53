"""Named profiles: the per-user config file `$XDG_CONFIG_HOME/linea/config.toml`
(`~/.config/linea/config.toml` by default), as kubectl's contexts and gh's hosts.

    current = "staging"            # what `linea profile use staging` wrote

    [profiles.staging]
    service = "staging"            # a pg_service.conf service; or url = "postgresql://..."
    migration_url = "postgresql://admin@db-direct/linea"   # optional: migrations, past PgBouncer
    read_url = "postgresql://linea@db-replica/linea"        # optional: replicas for reads (comma-separated)

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from linea_cli.errors import InvalidInput, NotFound, shown

PROFILE_KEYS = frozenset({"url", "service", "migration_url", "read_url", "confirm"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Profile:
    name: str
    url: str | None = None
    service: str | None = None
    migration_url: str | None = None
    confirm: bool = False
    # Streaming replicas for reads, comma-separated: what LINEA_READ_DATABASE_URL is for this database.
    read_url: str | None = None

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
        for key in ("url", "service", "migration_url", "read_url"):
            value = table.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidInput(f"{where}: `{key}` must be a non-empty string")
        if ("url" in table) == ("service" in table):
            raise InvalidInput(f"{where}: give exactly one of `url` and `service`")
        confirm = table.get("confirm", False)
        if not isinstance(confirm, bool):
            raise InvalidInput(f"{where}: `confirm` must be true or false")
        profiles[name] = Profile(
            name, table.get("url"), table.get("service"), table.get("migration_url"), confirm, table.get("read_url")
        )
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
_COMMENT_LINE = re.compile(r"^\s*#")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# A service name that needs no quoting in `postgresql://?service=NAME`.
_SERVICE = re.compile(r"[A-Za-z0-9_.~-]+")
DATABASE_VARIABLES = ("LINEA_DATABASE_URL", "LINEA_MIGRATION_DATABASE_URL", "LINEA_READ_DATABASE_URL")


def set_current(name: str, path: Path | None = None) -> ProfileFile:
    """Make `name` the current profile in the file, keeping the rest of it (comments included)."""
    with _changing(path):
        profiles = read_profiles(path)
        profiles.get(name)
        lines = profiles.path.read_text(encoding="utf-8").splitlines(keepends=True)
        line = f"current = {_toml_string(name)}\n"
        index = _current_line(lines)
        if index is not None:
            lines[index] = line
        else:
            first_table = next((i for i, text in enumerate(lines) if _TABLE_LINE.match(text)), len(lines))
            lines.insert(first_table, line)
        return _write(profiles, "".join(lines), ProfileFile(profiles.path, profiles.profiles, name))


def add_profile(profile: Profile, path: Path | None = None) -> ProfileFile:
    """Add `profile` to the config file (made, mode 0600, when there is none) as a
    [profiles.NAME] table at its end; the rest of the file is kept as it is."""
    from linea_cli.errors import Conflict

    _check_profile(profile)
    with _changing(path, make=True):
        profiles = read_profiles(path)
        if profile.name in profiles.profiles:
            raise Conflict(
                f"profile {shown(profile.name)} already exists in {profiles.path}",
                hint=f"choose another name, or remove it first: linea profile remove {profile.name}",
            )
        text = profiles.path.read_text(encoding="utf-8") if profiles.path.exists() else ""
        table = [f"[profiles.{_toml_key(profile.name)}]"]
        table += [f"{key} = {_toml_string(value)}" for key, value in
                  (("url", profile.url), ("service", profile.service), ("migration_url", profile.migration_url),
                   ("read_url", profile.read_url))
                  if value is not None]
        if profile.confirm:
            table.append("confirm = true")
        if text and not text.endswith("\n"):
            text += "\n"
        text += ("\n" if text.strip() else "") + "\n".join(table) + "\n"
        return _write(profiles, text, ProfileFile(profiles.path, {**profiles.profiles, profile.name: profile}, profiles.current))


def remove_profile(name: str, path: Path | None = None) -> ProfileFile:
    """Remove the profile `name`: its table, from its [profiles.NAME] line to the next table, with
    the comments inside it and the comment lines right above it (unless they open the file);
    comment lines right above the next table are that table's, kept. And the file's `current`
    line when it named it. The rest of the file is kept as it is."""
    with _changing(path):
        profiles = read_profiles(path)
        profiles.get(name)
        lines = profiles.path.read_text(encoding="utf-8").splitlines(keepends=True)
        header = re.compile(r"^\s*\[\s*profiles\s*\.\s*(?:" + "|".join(
            re.escape(form) for form in (name, f'"{name}"', f"'{name}'")
        ) + r")\s*\]\s*(?:#.*)?$")
        start = next((i for i, text in enumerate(lines) if header.match(text.rstrip("\r\n"))), None)
        if start is not None:
            end = next((i for i in range(start + 1, len(lines)) if _TABLE_LINE.match(lines[i])), len(lines))
            kept_from = end
            if end < len(lines):
                while kept_from - 1 > start and _COMMENT_LINE.match(lines[kept_from - 1]):
                    kept_from -= 1
            above = start
            while above > 0 and _COMMENT_LINE.match(lines[above - 1]):
                above -= 1
            if above > 0:
                start = above  # comment lines right above it are its own, unless they open the file
            while start > 0 and not lines[start - 1].strip():
                start -= 1  # the blank lines that set it apart go with it
            lines[start:kept_from] = ["\n"] if start > 0 and kept_from < len(lines) else []
        current = profiles.current
        if current == name:
            index = _current_line(lines)
            if index is not None:
                del lines[index]
            current = None
        remaining = {key: value for key, value in profiles.profiles.items() if key != name}
        return _write(profiles, "".join(lines), ProfileFile(profiles.path, remaining, current))


def read_env_file(path: Path) -> dict[str, str]:
    """LINEA_DATABASE_URL and LINEA_MIGRATION_DATABASE_URL of the dotenv file `path` (any others
    are not read), when it is the user's own: a regular file (not a symbolic link) owned by the
    user, writable by no one else, in a directory others cannot write to (unless it is sticky).
    Read from the descriptor that was checked, so it cannot be swapped in between."""
    from linea_cli.config import not_own

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        reason = "it is a symbolic link" if os.path.islink(path) else exc.strerror or str(exc)
        raise InvalidInput(f"cannot read {path.absolute()}: {reason}") from None
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):  # a directory (an empty --from-env is "."), a FIFO, a device
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(status.st_mode) else "not a regular file"
        raise InvalidInput(f"cannot read {path.absolute()}: it is {kind}", hint="give a .env file of yours")
    with os.fdopen(fd, "rb") as file:
        problem = not_own(path, status)
        if problem:
            raise InvalidInput(
                f"refusing to read {path.absolute()}: {problem}",
                hint="it would choose the database linea changes: only a file of your own is read",
            )
        content = file.read()
    import io

    from dotenv import dotenv_values

    values: dict[str, str] = {}
    for key, value in dotenv_values(stream=io.StringIO(content.decode("utf-8", errors="replace"))).items():
        if key.upper() in DATABASE_VARIABLES and value is not None:
            values[key.upper()] = value
    return values


def _check_profile(profile: Profile) -> None:
    from linea_cli.db.urls import parse_database_url
    from linea_cli.errors import UsageProblem, parameter

    if not _NAME.fullmatch(profile.name):
        raise InvalidInput(
            f"invalid profile name {shown(profile.name)}: a name is letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    if (profile.url is None) == (profile.service is None):
        raise UsageProblem(f"give one of {parameter('url')} and {parameter('service')}")
    if profile.service is not None and not _SERVICE.fullmatch(profile.service):
        raise InvalidInput(
            f"invalid service name {shown(profile.service)}: letters, digits, '.', '_', '~' and '-'"
        )
    urls = [("url", profile.url), ("migration_url", profile.migration_url)]
    urls += [("read_url", part) for part in (profile.read_url.split(",") if profile.read_url is not None else ())]
    for what, value in urls:
        if value is not None:
            if not value.strip():
                raise InvalidInput(f"the {parameter(what)} is empty", hint="give a postgresql:// URL")
            try:
                parse_database_url(value.strip())  # a URL, postgresql://, never echoed when it does not parse
            except InvalidInput as exc:
                exc.marked_message = f"{parameter(what)}: {exc.marked_message}"
                raise


@contextmanager
def _changing(path: Path | None, *, make: bool = False) -> Iterator[None]:
    """The config file's directory locked (flock) while the file is read and replaced: two
    commands changing it at once take turns, and neither loses the other's change. `make`: the
    directory is made (mode 0700) when it does not exist."""
    import fcntl

    directory = Path(os.path.realpath(path or config_path())).parent
    if make and not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
    try:
        fd: int | None = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = None  # no file to change: reading it says so
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _current_line(lines: list[str]) -> int | None:
    """The index of the top-level `current = ...` line (before the first table), if any."""
    for index, text in enumerate(lines):
        if _TABLE_LINE.match(text):
            return None
        if _CURRENT_LINE.match(text):
            return index
    return None


# `[profiles.NAME]`, NAME bare or quoted (a name holds no character a quoted key would escape).
_PROFILE_HEADER = re.compile(
    r"""^\s*\[\s*profiles\s*\.\s*(?:(?P<bare>[A-Za-z0-9_-]+)|"(?P<basic>[^"\\]*)"|'(?P<literal>[^']*)')\s*\]\s*(?:#.*)?$"""
)


def _all_tables(text: str, names: set[str]) -> bool:
    """Whether each profile of `text` is a [profiles.NAME] table of its own and nothing else
    defines one (an inline table, a dotted key such as `profiles.x.url = ...`, a [profiles] table):
    the file's lines are then profiles' tables and the rest, which add, remove and use edit apart.
    Without its profiles' tables, the rest of the file must hold no profile."""
    import tomllib

    lines = text.splitlines(keepends=True)
    rest: list[str] = []
    headed: list[str] = []
    in_profile = False
    for line in lines:
        if _TABLE_LINE.match(line):
            header = _PROFILE_HEADER.match(line.rstrip("\r\n"))
            in_profile = header is not None
            if header is not None:
                headed.append(next(group for group in header.groups() if group is not None))
                continue
        if not in_profile:
            rest.append(line)
    if sorted(headed) != sorted(names):
        return False
    try:
        return not tomllib.loads("".join(rest)).get("profiles")
    except tomllib.TOMLDecodeError:
        return False


def _toml_key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _toml_string(name)


def _toml_string(value: str) -> str:
    """`value` as a TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = []
    for character in value:
        if character in '"\\':
            escaped.append("\\" + character)
        elif ord(character) < 0x20 or ord(character) == 0x7F:
            escaped.append(f"\\u{ord(character):04X}")
        else:
            escaped.append(character)
    return '"' + "".join(escaped) + '"'


def _write(before: ProfileFile, text: str, expected: ProfileFile) -> ProfileFile:
    """Replace the config file with `text` once it reads as `expected`: written beside it (mode
    0600: it may hold passwords), flushed to disk and renamed over it, so a reader sees the old
    file or the new one, never half, and a crash leaves one of them. A file whose profiles are
    not written as [profiles.NAME] tables (inline tables, dotted keys) cannot be edited line by
    line: refused, unchanged."""
    import tomllib

    path = before.path
    try:
        after = _parse(path, tomllib.loads(text))
    except (tomllib.TOMLDecodeError, InvalidInput):
        after = None
    if after != expected or not _all_tables(text, set(expected.profiles)):
        raise InvalidInput(
            f"cannot change {path} line by line (its profiles are not all [profiles.NAME] tables): nothing was changed",
            hint="edit the file by hand",
        )
    real = Path(os.path.realpath(path))
    problem = _directory_not_own(real.parent)
    if problem:
        raise InvalidInput(f"refusing to write {path}: {problem}")
    fd, temporary = tempfile.mkstemp(prefix=".config.", suffix=".toml", dir=real.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, real)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(real.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return after
