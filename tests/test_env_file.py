"""A `.env` in the working directory is no longer read (profiles replaced it), whoever wrote it:
its pg_dump never runs, its directories are never written, its acting user and its databases are
never taken. When it sets LINEA_ variables, one warning line names them (never their values) and
says how to move them; `linea profile add NAME --from-env .env` moves its database into a
profile. Run as separate processes: the working directory is the point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy.engine import URL

from tests.factories import make_event
from tests.harness import CliRun, Database, plain_url

OTHER_UID = 65534  # nobody: a real user other than the one running the tests
NOWHERE = "postgresql://mallory:sesame@127.0.0.1:1/elsewhere"


def linea_in(
    directory: Path, linea: CliRun, *args: str, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """`linea ARGS` as a process whose working directory is `directory`, with only the test's LINEA_*
    set, and `env` (None: unset)."""
    environment = {key: value for key, value in os.environ.items() if not key.upper().startswith("LINEA_")}
    merged = {**environment, **linea.env, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "linea_cli", *args], cwd=directory,
        env={key: value for key, value in merged.items() if value is not None},
        capture_output=True, text=True, timeout=120,
    )


def libpq_environment(url: URL) -> dict[str, str | None]:
    """No linea URL, and libpq's variables naming the test's database: where a command then goes
    unless something else (a .env read, a profile) chose another database."""
    variables = {
        "PGHOST": url.host or str(url.query["host"]), "PGPORT": str(url.port or 5432), "PGDATABASE": str(url.database),
        "PGUSER": url.username, "PGPASSWORD": url.password and str(url.password),
    }
    return {"LINEA_DATABASE_URL": None, "LINEA_MIGRATION_DATABASE_URL": None, **variables}


def plant(directory: Path, marker: Path, *, mode: int = 0o600) -> Path:
    """A `.env` in `directory` naming a pg_dump that leaves `marker`, a backup directory, an acting
    user, and databases that are none of the test's."""
    program = directory / "pg_dump"
    program.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    program.chmod(0o755)
    env_file = directory / ".env"
    env_file.write_text(
        "# the project's settings\n"
        f"LINEA_PG_DUMP={program}\n"
        f"export LINEA_PG_RESTORE={program}\n"
        f"LINEA_BACKUP_DIR={directory / 'loot'}\n"
        f"linea_data_dir={directory / 'data'}\n"
        "LINEA_ACTOR=mallory@example.com\n"
        f"LINEA_DATABASE_URL={NOWHERE}\n"
        f"LINEA_MIGRATION_DATABASE_URL={NOWHERE}\n"
        "OTHER=1\n"
    )
    env_file.chmod(mode)
    return env_file


def config_path(linea: CliRun) -> Path:
    return Path(linea.env["XDG_CONFIG_HOME"], "linea", "config.toml")


def display(url: URL) -> str:
    """The URL as linea shows it: its password as ***."""
    return plain_url(url).replace(":" + quote(str(url.password), safe="") + "@", ":***@") if url.password else plain_url(url)


def warning_for(env_file: Path) -> str:
    return (
        f"warning: linea no longer reads {env_file} (it sets LINEA_ACTOR, LINEA_BACKUP_DIR, LINEA_DATABASE_URL, "
        "LINEA_DATA_DIR and 3 more): move its database into a profile with `linea profile add NAME --from-env .env` "
        "and its other settings into the environment"
    )


def assert_not_read(linea: CliRun, directory: Path, marker: Path, url: URL) -> None:
    """Nothing of `directory`'s .env used, and the warning said once per command, without a value."""
    warning = warning_for(directory / ".env")
    backups = Path(linea.env["LINEA_DATA_DIR"], "backups")
    before = len(list(backups.glob("*.dump"))) if backups.exists() else 0
    backup = linea_in(directory, linea, "db", "backup")
    assert backup.returncode == 0, backup.stderr
    assert backup.stderr.splitlines()[0] == warning and backup.stderr.count("warning:") == 1, backup.stderr
    assert "mallory" not in backup.stderr and "sesame" not in backup.stderr and "loot" not in backup.stderr
    assert not marker.exists()  # its pg_dump never ran, not even to ask its version
    assert not (directory / "loot").exists() and not (directory / "data").exists()
    # The archive went to the user's own backup directory, from the test's database (not `elsewhere`).
    assert len(list(backups.glob("*.dump"))) == before + 1
    listing = linea_in(directory, linea, "events", "list")  # as mallory it would be exit 6
    assert listing.returncode == 0 and listing.stderr == warning + "\nno events found\n", listing.stderr
    # No linea URL: libpq's environment chooses the database, not the file's URL (exit 5, `elsewhere`).
    status = linea_in(directory, linea, "db", "status", "--json", env=libpq_environment(url))
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["database"] == url.database
    # `linea --help` reads no configuration at all.
    helped = linea_in(directory, linea, "--help")
    assert helped.returncode == 0 and helped.stderr == ""


@pytest.mark.parametrize("directory_mode", [0o700, 0o1777])
def test_the_users_own_env_file_is_no_longer_read(
    linea: CliRun, direct_database_url: URL, tmp_path: Path, directory_mode: int
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    project.chmod(directory_mode)  # their own directory, or their own file in a sticky one like /tmp
    plant(project, tmp_path / "marker")
    assert_not_read(linea, project, tmp_path / "marker", direct_database_url)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the .env is chowned to another user")
def test_another_users_env_file_is_not_read_either(linea: CliRun, direct_database_url: URL, tmp_path: Path) -> None:
    clone = tmp_path / "clone"  # a repository someone else cloned, or a directory of theirs
    clone.mkdir(mode=0o755)
    env_file = plant(clone, tmp_path / "marker", mode=0o644)
    for path in (clone, env_file, clone / "pg_dump"):
        os.chown(path, OTHER_UID, OTHER_UID)
    assert_not_read(linea, clone, tmp_path / "marker", direct_database_url)


def test_an_env_file_others_may_write_or_a_link_is_not_read(linea: CliRun, direct_database_url: URL, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    writable = tmp_path / "writable-file"
    writable.mkdir(mode=0o700)
    plant(writable, marker, mode=0o664)
    assert_not_read(linea, writable, marker, direct_database_url)

    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    plant(real, marker)
    linked = tmp_path / "linked"
    linked.mkdir(mode=0o700)
    (linked / ".env").symlink_to(real / ".env")
    (linked / "pg_dump").symlink_to(real / "pg_dump")
    assert_not_read(linea, linked, marker, direct_database_url)


def test_no_warning_without_linea_variables(linea: CliRun, tmp_path: Path) -> None:
    for name, make in (
        ("others", lambda path: path.write_text("# LINEA_ACTOR=commented@example.com\nDATABASE_URL=postgresql://x/y\n")),
        ("virtualenv", lambda path: path.mkdir()),  # a directory named .env
        ("fifo", os.mkfifo),  # nobody writes to it: opening it must not wait for a writer
    ):
        directory = tmp_path / name
        directory.mkdir()
        make(directory / ".env")
        listing = linea_in(directory, linea, "events", "list")
        assert (listing.returncode, listing.stderr) == (0, "no events found\n"), name


def test_only_the_database_settings_are_named_for_a_profile(linea: CliRun, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LINEA_TIMEZONE=Europe/Paris\nLINEA_ACTOR=ann@example.com\n")
    listing = linea_in(tmp_path, linea, "events", "list")
    assert listing.stderr.splitlines()[0] == (
        f"warning: linea no longer reads {tmp_path / '.env'} (it sets LINEA_ACTOR, LINEA_TIMEZONE): "
        "move its other settings into the environment"
    )
    (tmp_path / ".env").write_text("LINEA_DATABASE_URL=postgresql://db/linea\n")
    listing = linea_in(tmp_path, linea, "events", "list")
    assert listing.stderr.splitlines()[0] == (
        f"warning: linea no longer reads {tmp_path / '.env'} (it sets LINEA_DATABASE_URL): "
        "move its database into a profile with `linea profile add NAME --from-env .env`"
    )


def test_a_tab_press_says_nothing_about_an_env_file(linea: CliRun, db: Database, tmp_path: Path) -> None:
    make_event(db, slug="tabbed-fest")
    plant(tmp_path, tmp_path / "marker")
    line = "linea events show tabbed-"
    completed = linea_in(tmp_path, linea, env={"_LINEA_COMPLETE": "complete_bash", "COMP_LINE": line, "COMP_POINT": str(len(line))})
    assert (completed.returncode, completed.stdout.split(), completed.stderr) == (0, ["tabbed-fest"], "")


def test_profile_add_from_env_moves_its_database(linea: CliRun, database_url: URL, direct_database_url: URL, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir(mode=0o700)
    env_file = project / ".env"
    env_file.write_text(
        f"LINEA_DATABASE_URL='{plain_url(database_url)}'\n"
        f"LINEA_MIGRATION_DATABASE_URL={plain_url(direct_database_url)}\n"
        "LINEA_ACTOR=mallory@example.com\nLINEA_PG_DUMP=/tmp/evil\n"
    )
    env_file.chmod(0o600)
    added = linea_in(project, linea, "profile", "add", "legacy", "--from-env", ".env", "--json")
    assert added.returncode == 0, added.stderr
    assert added.stderr == f"added profile legacy ({display(database_url)}) to {config_path(linea)}\n"
    assert json.loads(added.stdout) == {
        "name": "legacy", "url": display(database_url), "service": None, "migration_url": display(direct_database_url),
        "read_url": None, "confirm": False, "file": str(config_path(linea)),
    }
    for secret in {str(u.password) for u in (database_url, direct_database_url) if u.password}:
        assert secret not in added.stdout + added.stderr
    config = config_path(linea)
    assert config.read_text() == (
        f'[profiles.legacy]\nurl = "{plain_url(database_url)}"\nmigration_url = "{plain_url(direct_database_url)}"\n'
    )
    assert config.stat().st_mode & 0o777 == 0o600
    # The profile reaches the test's database (LINEA_DATABASE_URL names none: --profile wins over it).
    status = linea_in(project, linea, "--profile", "legacy", "db", "status", "--json", env={"LINEA_DATABASE_URL": NOWHERE})
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["profile"] == "legacy"
    assert json.loads(status.stdout)["database"] == database_url.database


def test_profile_add_from_env_reads_only_the_users_own_file(linea: CliRun, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir(mode=0o700)
    env_file = project / ".env"
    env_file.write_text("LINEA_DATABASE_URL=postgresql://u:sesame@db/x\n")
    env_file.chmod(0o664)
    config = config_path(linea)
    refused = linea_in(project, linea, "profile", "add", "p", "--from-env", ".env")
    assert (refused.returncode, refused.stderr.splitlines()[0]) == (
        1, f"error: refusing to read {env_file}: writable by group or others (mode 0664)"
    )
    env_file.chmod(0o600)
    (project / "linked.env").symlink_to(env_file)
    linked = linea_in(project, linea, "profile", "add", "p", "--from-env", "linked.env")
    assert (linked.returncode, linked.stderr) == (1, f"error: cannot read {project / 'linked.env'}: it is a symbolic link\n")
    env_file.write_text("LINEA_DATABASE_URL=postgresql://u:sesame@db:port/x\n")
    invalid = linea_in(project, linea, "profile", "add", "p", "--from-env", ".env")
    assert (invalid.returncode, invalid.stderr) == (
        1, f"error: LINEA_DATABASE_URL in {env_file}: the database URL is not a URL; expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE\n"
    )
    env_file.write_text("LINEA_ACTOR=ann@example.com\n")
    without = linea_in(project, linea, "profile", "add", "p", "--from-env", ".env")
    assert (without.returncode, without.stderr.splitlines()[0]) == (1, f"error: {env_file} sets no LINEA_DATABASE_URL")
    both = linea_in(project, linea, "profile", "add", "p", "--from-env", ".env", "--url", "postgresql://db/x")
    assert both.returncode == 2 and both.stderr.startswith("error: --from-env takes the database from the file: give no --url")
    assert not config.exists()
    for run in (refused, linked, invalid, without, both):
        assert "sesame" not in run.stdout + run.stderr
