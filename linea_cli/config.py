"""Settings: environment (LINEA_*), a .env file in the working directory, and root options."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from linea_cli.errors import InvalidInput, shown

# A PostgreSQL time setting: a whole or decimal number, milliseconds unless a unit follows.
_TIME_SETTING = re.compile(r"\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>us|ms|s|min|h|d)?\s*")
_MILLISECONDS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
# lock_timeout and statement_timeout are INTEGER milliseconds on the server (about 24.8 days).
MAX_TIMEOUT_MS = 2_147_483_647


def default_data_dir() -> Path:
    import platformdirs  # only when LINEA_DATA_DIR is unset

    return Path(platformdirs.user_data_dir("linea", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LINEA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

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

    @property
    def backups_path(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

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


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with root-option overrides that were actually given."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        # One line naming the variable, as for any invalid input (not pydantic's report, exit 70).
        problem = exc.errors()[0]
        name = "LINEA_" + str(problem["loc"][0]).upper() if problem["loc"] else "a LINEA_ setting"
        reason = str(problem["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"invalid {name} {shown(problem.get('input'))}: {reason}") from None
