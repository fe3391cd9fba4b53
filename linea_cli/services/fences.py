"""The read-your-own-writes fence: the primary's WAL position after linea's last write, per database.

After a command wrote to the primary, linea notes `pg_current_wal_lsn()` for that database in the
user's state directory ($XDG_STATE_HOME/linea/fences.json, else ~/.local/state/linea); a later
read command waits for a replica to replay past it before reading there (services/replica_reads.py).
A database is known by its cluster's system identifier and its name, not by the URL that reached
it: two spellings of one server (a host name and its address, a pooler and the server) share
their fence, and replicas share their primary's identifier.

The file is the user's own: written with mode 0600 in a 0700 directory, replaced atomically under
a lock (two commands finishing together keep the later position), and read only when nobody else
can have written it (`config.not_own`). A file that cannot be read or trusted is no fence at all,
so the caller reads from the primary (`FenceUnknown`): never a stale read because of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FENCES_FILE = "fences.json"
# A file far bigger than any fences file linea writes is not read.
MAX_FENCES_BYTES = 1 << 20
# The newest positions kept: one per database an operator used; the oldest go first.
MAX_DATABASES = 200


class FenceUnknown(Exception):
    """The fences file exists but cannot be read or trusted: the position is unknown."""


def state_directory() -> Path:
    explicit = os.environ.get("XDG_STATE_HOME")
    if explicit and os.path.isabs(explicit):
        return Path(explicit) / "linea"
    return Path.home() / ".local" / "state" / "linea"


def database_key(system_identifier: str, database: str) -> str:
    return f"{system_identifier}/{database}"


def read_fence(key: str, *, directory: Path | None = None) -> str | None:
    """The position remembered for `key`, None when linea never wrote there (from this account)."""
    path = (directory or state_directory()) / FENCES_FILE
    return _read(path).get(key, {}).get("lsn")


def record_fence(key: str, lsn: str, *, directory: Path | None = None) -> None:
    """Remember `lsn` for `key`, unless a later position is remembered already."""
    from linea_cli.services.replica_reads import lsn_number

    folder = directory or state_directory()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / FENCES_FILE
    with _locked(folder):
        try:
            fences = _read(path)
        except FenceUnknown:
            fences = {}  # replaced by one of our own: the positions in it were not trusted anyway
        known = fences.get(key, {}).get("lsn")
        if known is not None and lsn_number(known) >= lsn_number(lsn):
            return
        fences.pop(key, None)
        fences[key] = {"lsn": lsn}
        while len(fences) > MAX_DATABASES:
            fences.pop(next(iter(fences)))
        temporary = folder / f".{FENCES_FILE}.{os.getpid()}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(fences, file)
        os.replace(temporary, path)


def _read(path: Path) -> dict[str, dict[str, str]]:
    from linea_cli.config import not_own
    from linea_cli.services.replica_reads import lsn_number

    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise FenceUnknown(f"{path}: {exc.strerror or exc}") from None
    try:
        reason = not_own(path, os.fstat(descriptor))
        if reason is not None:
            raise FenceUnknown(f"{path} is {reason}")
        content = os.read(descriptor, MAX_FENCES_BYTES + 1)
    finally:
        os.close(descriptor)
    try:
        fences = json.loads(content)
        if len(content) > MAX_FENCES_BYTES or not isinstance(fences, dict):
            raise ValueError
        for entry in fences.values():
            lsn_number(entry["lsn"])
    except (ValueError, TypeError, KeyError, AttributeError):
        raise FenceUnknown(f"{path} is not a fences file linea wrote") from None
    return fences


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    import fcntl

    descriptor = os.open(folder / ".fences.lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
