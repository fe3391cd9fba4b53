"""Settings: environment (LINEA_*), a .env file in the working directory, and root options."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
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


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with root-option overrides that were actually given."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)
