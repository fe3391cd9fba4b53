"""A `.env` in the working directory is read only when it is the user's own; anyone else's is one
warning line and is ignored as a whole: its pg_dump never runs, its directories are never written,
its acting user and its databases are never taken. Run as separate processes: the working
directory is the point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import make_user
from tests.harness import CliRun, Database

OTHER_UID = 65534  # nobody: a real user other than the one running the tests


def linea_in(directory: Path, linea: CliRun, *args: str) -> subprocess.CompletedProcess[str]:
    """`linea ARGS` as a process whose working directory is `directory`, with only the test's LINEA_* set."""
    environment = {key: value for key, value in os.environ.items() if not key.upper().startswith("LINEA_")}
    return subprocess.run(
        [sys.executable, "-m", "linea_cli", *args], cwd=directory, env={**environment, **linea.env},
        capture_output=True, text=True, timeout=120,
    )


def plant(directory: Path, marker: Path, *, mode: int = 0o600) -> Path:
    """A `.env` in `directory` naming a pg_dump that leaves `marker`, a backup directory, an acting
    user, and databases that are none of the test's."""
    program = directory / "pg_dump"
    program.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    program.chmod(0o755)
    env_file = directory / ".env"
    env_file.write_text(
        f"LINEA_PG_DUMP={program}\n"
        f"LINEA_PG_RESTORE={program}\n"
        f"LINEA_BACKUP_DIR={directory / 'loot'}\n"
        f"LINEA_DATA_DIR={directory / 'data'}\n"
        "LINEA_ACTOR=mallory@example.com\n"
        "LINEA_MIGRATION_DATABASE_URL=postgresql://mallory@127.0.0.1:1/elsewhere\n"
    )
    env_file.chmod(mode)
    return env_file


def assert_ignored(linea: CliRun, directory: Path, marker: Path, warning: str) -> None:
    """Every setting of `directory`'s .env ignored, with `warning` said once per command."""
    backups = Path(linea.env["LINEA_DATA_DIR"], "backups")
    before = len(list(backups.glob("*.dump"))) if backups.exists() else 0
    backup = linea_in(directory, linea, "db", "backup")
    assert backup.returncode == 0, backup.stderr
    assert backup.stderr.splitlines()[0] == warning and backup.stderr.count("warning:") == 1, backup.stderr
    assert not marker.exists()  # its pg_dump never ran, not even to ask its version
    assert not (directory / "loot").exists() and not (directory / "data").exists()
    # The archive went to the user's own backup directory, from the test's database (not `elsewhere`).
    assert len(list(backups.glob("*.dump"))) == before + 1
    listing = linea_in(directory, linea, "events", "list")  # as mallory it would be exit 6
    assert listing.returncode == 0 and listing.stderr == warning + "\nno events found\n", listing.stderr
    # `linea --help` reads no configuration at all.
    helped = linea_in(directory, linea, "--help")
    assert helped.returncode == 0 and helped.stderr == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the .env is chowned to another user")
def test_another_users_env_file_is_ignored_with_one_warning(linea: CliRun, tmp_path: Path) -> None:
    clone = tmp_path / "clone"  # a repository someone else cloned, or a directory of theirs
    clone.mkdir(mode=0o755)
    env_file = plant(clone, tmp_path / "marker", mode=0o644)
    for path in (clone, env_file, clone / "pg_dump"):
        os.chown(path, OTHER_UID, OTHER_UID)
    assert_ignored(
        linea, clone, tmp_path / "marker",
        f"warning: ignoring {env_file}: owned by uid {OTHER_UID}, not by you (uid 0)",
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the directory is chowned to another user")
def test_the_users_own_env_file_in_another_users_directory_is_ignored(linea: CliRun, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"  # they may have put (hard-linked) any file of the user's there
    theirs.mkdir(mode=0o755)
    env_file = plant(theirs, tmp_path / "marker")
    os.chown(theirs, OTHER_UID, OTHER_UID)
    assert_ignored(
        linea, theirs, tmp_path / "marker", f"warning: ignoring {env_file}: its directory {theirs} is owned by uid {OTHER_UID}"
    )


def test_an_env_file_others_may_write_is_ignored_with_one_warning(linea: CliRun, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    writable = tmp_path / "writable-file"
    writable.mkdir(mode=0o700)
    env_file = plant(writable, marker, mode=0o664)
    assert_ignored(linea, writable, marker, f"warning: ignoring {env_file}: writable by group or others (mode 0664)")

    # The user's own file, in a directory anyone may write to (and so replace the file in).
    open_directory = tmp_path / "open-directory"
    open_directory.mkdir()
    open_directory.chmod(0o777)
    plant(open_directory, marker)
    assert_ignored(
        linea, open_directory, marker,
        f"warning: ignoring {open_directory / '.env'}: its directory {open_directory} is writable by group "
        "or others (mode 0777)",
    )


def test_a_linked_env_file_is_ignored_with_one_warning(linea: CliRun, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    plant(real, marker)
    linked = tmp_path / "linked"
    linked.mkdir(mode=0o700)
    (linked / ".env").symlink_to(real / ".env")
    assert_ignored(linea, linked, marker, f"warning: ignoring {linked / '.env'}: it is a symbolic link")


@pytest.mark.parametrize("directory_mode", [0o700, 0o1777])
def test_the_users_own_env_file_is_read(linea: CliRun, db: Database, tmp_path: Path, directory_mode: int) -> None:
    project = tmp_path / "project"
    project.mkdir()
    project.chmod(directory_mode)  # their own directory, or their own file in a sticky one like /tmp
    marker = tmp_path / "marker"
    plant(project, marker)
    listing = linea_in(project, linea, "events", "list")
    assert listing.returncode == 6 and "mallory@example.com" in listing.stderr, listing.stderr
    assert "warning" not in listing.stderr
    # The environment wins over the file; the file's pg_dump is the one that runs.
    admin = make_user(db, role="ADMIN")
    linea.env["LINEA_ACTOR"] = admin["email"]
    linea.env.setdefault("LINEA_MIGRATION_DATABASE_URL", linea.env["LINEA_DATABASE_URL"])
    backup = linea_in(project, linea, "db", "backup")
    assert backup.returncode == 1 and "warning" not in backup.stderr, backup.stderr
    assert marker.exists()
