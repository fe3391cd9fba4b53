"""Settings: root options, then the environment (LINEA_*), then defaults; the database from a
named profile of the user's config file when one is chosen (`with_profile`, `linea_cli.profiles`).

A `.env` in the working directory is not read: profiles replaced it (`linea profile add NAME
--from-env .env` moves its database into one). A directory someone else controls (a cloned
repository, /tmp) must never choose the pg_dump to run, where archives go, who acts, or which
database is changed, and a file of one's own is better kept where it does not depend on the
working directory. One that sets LINEA_ variables is one warning line (`env_file_notice`).
The per-user config file of profiles is read only when nobody but the user can have written it
(`not_own`; anything else is an error: that file chooses the database), and so is a file given
to `profile add --from-env`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from linea_cli.errors import InvalidInput, UsageProblem, shown
from linea_cli.profiles import Profile, read_profiles

# A PostgreSQL time setting: a whole or decimal number, milliseconds unless a unit follows.
_TIME_SETTING = re.compile(r"\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>us|ms|s|min|h|d)?\s*")
_MILLISECONDS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
# lock_timeout and statement_timeout are INTEGER milliseconds on the server (about 24.8 days).
MAX_TIMEOUT_MS = 2_147_483_647


# root's data directory when LINEA_DATA_DIR is unset: the embedded server then runs as the system
# user `pgserver`, which must pass through every parent, and root's home (0700) must stay closed.
ROOT_DATA_DIR = Path("/var/lib/linea")


def default_data_dir() -> Path:
    import platformdirs  # only when LINEA_DATA_DIR is unset

    own = Path(platformdirs.user_data_dir("linea", appauthor=False))
    if os.geteuid() == 0 and not (own / "postgres" / "PG_VERSION").exists():  # an existing one is kept
        return ROOT_DATA_DIR
    return own


ENV_FILE = ".env"
ENV_PREFIX = "LINEA_"
# A `.env` is no longer read (profiles replaced it), only looked at for LINEA_ names to warn about.
ENV_FILE_LIMIT = 1 << 20
_ENV_NAME = re.compile(r"^[ \t]*(?:export[ \t]+)?(LINEA_[A-Za-z0-9_]+)[ \t]*=", re.MULTILINE | re.IGNORECASE)
DATABASE_VARIABLES = frozenset({"LINEA_DATABASE_URL", "LINEA_MIGRATION_DATABASE_URL"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        # No env_file: a `.env` is no longer read (`load_settings` warns about one; profiles replace it).
        env_prefix=ENV_PREFIX, env_file=None, extra="ignore"
    )

    # A named profile of the user's config file (linea_cli.profiles): its database and migration
    # URLs replace LINEA_DATABASE_URL and LINEA_MIGRATION_DATABASE_URL (`load_settings`).
    profile: str | None = None
    # None means the embedded server under data_dir.
    database_url: str | None = None
    # A direct (unpooled) URL for migrations when database_url goes through PgBouncer.
    migration_database_url: str | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    # Email of the acting user, recorded in the audit log; None acts as the system.
    actor: str | None = None
    # Time zone for naive dates given on the command line; the database always holds UTC.
    timezone: str = "UTC"
    lock_timeout: str = "5s"
    statement_timeout: str = "0"
    # Migrations wait this long for a lock, then retry with the wait doubled, this many times:
    # an upgrade fails fast rather than queueing behind live traffic (and blocking it meanwhile).
    migration_lock_timeout: str = "2s"
    migration_attempts: int = Field(default=3, ge=1, le=10)
    # Where `db backup` writes when no -o is given, and `db upgrade` its backup before migrating;
    # None means <data_dir>/backups.
    backup_dir: Path | None = None
    # The pg_dump / pg_restore to run; None means the newest one found that reads the server.
    pg_dump: str | None = None
    pg_restore: str | None = None
    # PgBouncer's admin console (postgresql://USER@HOST:PORT/pgbouncer), read by `db pool`; None: not read.
    pgbouncer_admin_url: str | None = None
    # Streaming replicas (one URL or several, comma-separated) that read commands may use, and how
    # far behind one may be (`replica_max_lag`: a time, a size, or both): services/replica_reads.py.
    read_database_url: str | None = None
    replica_max_lag: str = "5s"

    # The profile in use once `load_settings` has chosen (None: no profile).
    _profile: Profile | None = PrivateAttr(default=None)

    @property
    def chosen_profile(self) -> Profile | None:
        return self._profile

    @property
    def backups_path(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

    @field_validator("data_dir", "backup_dir", "pg_dump", "pg_restore", "timezone", "pgbouncer_admin_url", "read_database_url", "replica_max_lag", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        # An empty value is most likely a script's unset variable: `LINEA_BACKUP_DIR=` would
        # otherwise mean the working directory, and an empty time zone a silent UTC.
        if isinstance(value, str) and not value.strip():
            raise ValueError("it is empty: give a value, or unset it for the default")
        return value

    @field_validator("replica_max_lag")
    @classmethod
    def _replica_lag(cls, value: str) -> str:
        max_lag(value)  # raises ValueError naming what is wrong
        return value.strip()

    @property
    def read_database_urls(self) -> list[str]:
        """The replicas' URLs as configured, in order; empty when none is."""
        return [part.strip() for part in (self.read_database_url or "").split(",") if part.strip()]

    @field_validator("timezone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        # Checked here, not when a date is first parsed: a command given no date would take a
        # wrong zone silently, and the error would not name the variable.
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone: use an IANA name such as Europe/Paris") from None
        return value.strip()

    @field_validator("lock_timeout", "statement_timeout")
    @classmethod
    def _postgres_duration(cls, value: str) -> str:
        # Checked here, not by the server: a bad value would fail every transaction's SET LOCAL.
        match = _TIME_SETTING.fullmatch(value)
        if not match:
            raise ValueError("use a PostgreSQL duration such as 5s, 500ms, 2min, or 0 for none")
        milliseconds = float(match.group("number")) * _MILLISECONDS[match.group("unit") or "ms"]
        if milliseconds > MAX_TIMEOUT_MS:
            raise ValueError(f"at most {MAX_TIMEOUT_MS} ms (about 24 days), or 0 for none")
        return value.strip()


# A replica's lag bound: a time ("5s", "500ms", "1min") and/or a size of WAL ("16MB", "512kB").
_LAG_TIME = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|min|h)")
_LAG_SIZE = re.compile(r"(?P<number>\d+)\s*(?P<unit>B|kB|MB|GB|TB)")
_BYTES = {"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
_LAG_SECONDS = {"ms": 0.001, "s": 1, "min": 60, "h": 3600}


@dataclass(frozen=True)
class MaxLag:
    """How far behind a replica may be and still serve reads: seconds, WAL bytes, or both (both
    must hold). As GitLab's load balancer (max_replication_lag_time, max_replication_difference)."""

    seconds: float | None = None
    bytes: int | None = None

    def __str__(self) -> str:
        parts = []
        if self.seconds is not None:
            parts.append(f"{self.seconds:g}s")
        if self.bytes is not None:
            parts.append(f"{self.bytes} bytes")
        return " and ".join(parts)


def max_lag(text: str) -> MaxLag:
    """LINEA_REPLICA_MAX_LAG read: "5s", "16MB", or "5s,16MB"; ValueError saying the form otherwise."""
    seconds: float | None = None
    size: int | None = None
    parts = [part.strip() for part in text.split(",")]
    for part in parts:
        if (time_match := _LAG_TIME.fullmatch(part)) and seconds is None:
            seconds = float(time_match["number"]) * _LAG_SECONDS[time_match["unit"]]
        elif (size_match := _LAG_SIZE.fullmatch(part)) and size is None:
            size = int(size_match["number"]) * _BYTES[size_match["unit"]]
        else:
            raise ValueError("give a time (5s, 500ms, 1min), a size of WAL (16MB, 512kB), or both: 5s,16MB")
    if (seconds is not None and seconds > 86_400) or (size is not None and size > 1 << 50):
        raise ValueError("at most a day (86400s) and 1PB")
    return MaxLag(seconds=seconds, bytes=size)


def actor_reference(reference: str | None) -> str | None:
    """The acting user's reference as given, or None for the system; an empty one is an error."""
    if reference is None:
        return None
    text = reference.strip()
    if not text:
        raise InvalidInput(
            "the acting user (--as / LINEA_ACTOR) is empty",
            hint="name a user by email or id, or leave LINEA_ACTOR unset to act as the system",
        )
    return text


def env_file_notice(path: Path = Path(ENV_FILE)) -> str | None:
    """The warning for a `.env` at `path` that sets LINEA_ variables, which linea no longer reads
    (profiles replaced it); None when there is none. Names only, never a value.

    Whoever wrote the file, nothing in it is used: it is opened without blocking (a FIFO), read
    only when it is a regular file and at most `ENV_FILE_LIMIT` bytes of it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None  # missing, unreadable, a dangling link: nothing to say
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None  # a directory named .env (a virtualenv), a device
        content = os.read(fd, ENV_FILE_LIMIT)
    except OSError:
        return None
    finally:
        os.close(fd)
    names = sorted({name.upper() for name in _ENV_NAME.findall(content.decode("utf-8", errors="replace"))})
    if not names:
        return None
    shown_names = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    moves = []
    if DATABASE_VARIABLES & set(names):
        moves.append("its database into a profile with `linea profile add NAME --from-env .env`")
    if set(names) - DATABASE_VARIABLES:
        moves.append("its other settings into the environment")
    return f"linea no longer reads {path.absolute()} (it sets {shown_names}): move " + " and ".join(moves)


def not_own(path: Path, found: os.stat_result) -> str | None:
    """Why the file `found` (at `path`) may have been written by someone else; None when it cannot."""
    user = os.geteuid()
    if not stat.S_ISREG(found.st_mode):
        return "not a regular file"
    if found.st_uid != user:
        return f"owned by uid {found.st_uid}, not by you (uid {user})"
    if found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(found.st_mode):04o})"
    directory = path.absolute().parent
    try:
        holder = os.stat(directory)
    except OSError as exc:
        return f"its directory cannot be checked: {exc.strerror or exc}"
    mode = holder.st_mode
    if holder.st_uid not in (user, 0):  # its owner may put any file of the user's there (a hard link)
        return f"its directory {directory} is owned by uid {holder.st_uid}"
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not mode & stat.S_ISVTX:
        return f"its directory {directory} is writable by group or others (mode {stat.S_IMODE(mode):04o})"
    return None


def _warn_on_stderr(message: str) -> None:
    from linea_cli.output import warn

    warn(message)


def load_settings(*, warn: Callable[[str], None] = _warn_on_stderr, **overrides: object) -> Settings:
    """Settings from the root options actually given and the environment, the database from a
    profile when one is in use (`with_profile`). A `.env` in the working directory is not read:
    when it sets LINEA_ variables, `warn` is told so in one line (`env_file_notice`)."""
    given = {key: value for key, value in overrides.items() if value is not None}
    notice = env_file_notice()
    if notice is not None:
        warn(notice)
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        # One line naming the variable, as for any invalid input (not pydantic's report, exit 70).
        problem = exc.errors()[0]
        name = "LINEA_" + str(problem["loc"][0]).upper() if problem["loc"] else "a LINEA_ setting"
        reason = str(problem["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"invalid {name} {shown(problem.get('input'))}: {reason}") from None
    return with_profile(settings, url_given="database_url" in given, profile_given="profile" in given)


def with_profile(settings: Settings, *, url_given: bool, profile_given: bool) -> Settings:
    """`settings` with the database of the profile in use, if any. Which database, first found:

    1. `--database-url` (with `--profile` too: an error, they name two databases);
    2. `--profile NAME`;
    3. `LINEA_PROFILE` (with `LINEA_DATABASE_URL` too: an error, as for the options);
    4. `LINEA_DATABASE_URL`;
    5. the config file's `current` (`linea profile use NAME`);
    6. the embedded server.
    A profile's URLs replace LINEA_DATABASE_URL, LINEA_MIGRATION_DATABASE_URL and
    LINEA_READ_DATABASE_URL (another database's replicas are never this one's).
    """
    name = settings.profile
    if url_given:
        if profile_given:
            raise UsageProblem("--database-url and --profile name two databases: give one")
        return settings.model_copy(update={"profile": None})
    if name is not None and not name.strip():
        raise InvalidInput("the profile (--profile / LINEA_PROFILE) is empty", hint="name a profile, or unset LINEA_PROFILE")
    if name is not None and not profile_given and settings.database_url is not None:
        raise InvalidInput(
            "LINEA_PROFILE and LINEA_DATABASE_URL are both set and name two databases", hint="unset one of them"
        )
    if name is None and settings.database_url is not None:
        return settings
    profiles = read_profiles()
    if name is None:
        name = profiles.current
        if name is None:
            return settings
    profile = profiles.get(name.strip())
    chosen = settings.model_copy(
        update={
            "profile": profile.name, "database_url": profile.database_url, "migration_database_url": profile.migration_url,
            "read_database_url": profile.read_url,
        }
    )
    chosen._profile = profile
    return chosen
