"""Alembic, driven from linea: where the scripts are, the revisions, and running them."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from linea_cli.db.engine import Database
from linea_cli.errors import DatabaseUnavailable, InvalidInput, shown


def migrations_path() -> Path:
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise DatabaseUnavailable("linea's migration scripts are missing from this installation")


def alembic_config(stdout: TextIO | None = None) -> Config:
    config = Config(stdout=stdout or sys.stdout)
    config.set_main_option("script_location", str(migrations_path()))
    config.set_main_option("path_separator", "os")
    return config


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    heads = script_directory().get_heads()
    if len(heads) != 1:
        raise DatabaseUnavailable(f"linea's migrations have {len(heads)} heads; expected one")
    return heads[0]


def known_revisions() -> set[str | None]:
    """Every revision id the scripts know, and None (an empty database, before the first)."""
    return {script.revision for script in script_directory().walk_revisions()} | {None}


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class RevisionInfo:
    revision: str
    down_revision: str | None
    description: str
    is_head: bool
    is_current: bool


def history(current: str | None) -> list[RevisionInfo]:
    scripts = script_directory()
    return [
        RevisionInfo(
            revision=script.revision,
            down_revision=script.down_revision if isinstance(script.down_revision, str) else None,
            description=(script.doc or "").splitlines()[0] if script.doc else "",
            is_head=script.is_head,
            is_current=script.revision == current,
        )
        for script in scripts.walk_revisions()
    ]


def pending_revisions(current: str | None) -> list[str]:
    scripts = script_directory()
    head = head_revision()
    if current == head:
        return []
    revisions = scripts.iterate_revisions(head, current or "base")
    return [script.revision for script in reversed(list(revisions))]


def _validate_revision(revision: str) -> None:
    """head, heads, base, +N / -N within the migrations there are, or a known revision id (or prefix).

    Anything else is invalid input here, before Alembic would fail on it with an internal error.
    """
    if revision in ("head", "base", "heads"):
        return
    relative = re.fullmatch(r"[+-](\d{1,9})", revision)
    if relative:
        steps, count = int(relative.group(1)), len(known_revisions()) - 1
        if not 1 <= steps <= count:
            raise InvalidInput(f"relative revision {revision}: linea has {count} migration(s); use 1 to {count} steps")
        return
    try:
        found = script_directory().get_revision(revision)
    except Exception as exc:  # alembic raises several kinds for an unknown or ambiguous id
        raise InvalidInput(f"unknown revision {shown(revision)}: see `linea db history`") from exc
    if found is None:
        raise InvalidInput(f"unknown revision {shown(revision)}: see `linea db history`")


@dataclass(frozen=True)
class LockPolicy:
    """How long a migration waits for each lock, and how often it tries again (doubling the wait)."""

    first_timeout_ms: int = 2000
    attempts: int = 3

    @classmethod
    def from_settings(cls, lock_timeout: str, attempts: int) -> LockPolicy:
        return cls(first_timeout_ms=_milliseconds(lock_timeout), attempts=attempts)


def _milliseconds(duration: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(ms|s|min)?\s*", duration)
    if not match:
        raise InvalidInput(f"invalid duration {duration!r}: use e.g. 500ms, 2s or 1min")
    value, unit = int(match.group(1)), match.group(2) or "ms"
    return value * {"ms": 1, "s": 1000, "min": 60000}[unit]


def upgrade(
    database: Database,
    revision: str = "head",
    *,
    sql: bool = False,
    stdout: TextIO | None = None,
    locks: LockPolicy | None = None,
    on_retry: Callable[[str], None] = lambda message: None,
) -> None:
    _run(database, "upgrade", revision, sql=sql, stdout=stdout, locks=locks or LockPolicy(), on_retry=on_retry)


def downgrade(
    database: Database,
    revision: str,
    *,
    sql: bool = False,
    stdout: TextIO | None = None,
    locks: LockPolicy | None = None,
    on_retry: Callable[[str], None] = lambda message: None,
) -> None:
    _run(database, "downgrade", revision, sql=sql, stdout=stdout, locks=locks or LockPolicy(), on_retry=on_retry)


def _run(
    database: Database,
    direction: str,
    revision: str,
    *,
    sql: bool,
    stdout: TextIO | None,
    locks: LockPolicy,
    on_retry: Callable[[str], None],
) -> None:
    _validate_revision(revision)
    config = alembic_config(stdout)
    run = command.upgrade if direction == "upgrade" else command.downgrade
    if sql:
        if direction == "downgrade" and ":" not in revision:
            current = current_revision(database) or "base"
            revision = f"{current}:{revision}"
        # Offline SQL needs only the dialect; the URL never carries the password into alembic.
        config.attributes["url"] = database.url.set(password=None)
        run(config, revision, sql=True)
        return
    timeout_ms = locks.first_timeout_ms
    for attempt in range(1, locks.attempts + 1):
        try:
            # All pending revisions run in this one transaction: a failure leaves the schema as it was.
            with database.engine.begin() as connection:
                connection.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": f"{timeout_ms}ms"})
                config.attributes["connection"] = connection
                run(config, revision)
            return
        except OperationalError as exc:
            if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                raise
            if attempt == locks.attempts:
                raise DatabaseUnavailable(
                    f"migration gave up after {attempt} attempts: another session holds a lock it needs "
                    f"(last wait {timeout_ms} ms)",
                    hint="find it in pg_stat_activity (or retry when traffic is lower); nothing was changed",
                ) from exc
            on_retry(f"a table is locked by another session; retrying with lock_timeout {timeout_ms * 2} ms")
            timeout_ms *= 2
