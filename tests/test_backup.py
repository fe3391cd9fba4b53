"""`linea db backup` and `linea db restore`, and the backup `linea db upgrade` takes first."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.factories import make_user, make_venue
from tests.harness import (
    CliRun,
    Database,
    admin_execute,
    libpq_conninfo,
    lock_waiters,
    plain_url,
    run_linea_into_closed_pipe,
    run_linea_on_terminal,
    wait_for_lock_waiters,
    wait_until,
)
from tests.test_embedded import embedded  # noqa: F401  (the fixture: linea on its own embedded server)


def table_contents(url: URL) -> dict[str, list[str]]:
    """Every row of every table in every user schema, as sorted JSON text: equal means identical."""
    with psycopg.connect(libpq_conninfo(url)) as conn:
        tables = conn.execute(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
        ).fetchall()
        return {
            name: sorted(row for (row,) in conn.execute(f"SELECT row_to_json(t)::text FROM {name} t"))
            for (name,) in tables
        }


def without_restore_row(contents: dict[str, list[str]]) -> dict[str, list[str]]:
    """The restored database less the one audit row the restore itself wrote (checked to be there)."""
    log = contents["public.audit_logs"]
    mine = [row for row in log if '"action":"RESTORE","resource":"Database"' in row]
    assert len(mine) == 1, log
    return {**contents, "public.audit_logs": [row for row in log if row not in mine]}


@pytest.fixture
def fresh_database(server_url: URL, direct_server_url: URL) -> Iterator[tuple[URL, URL]]:
    """Another empty database to restore into: (as commands reach it, directly)."""
    name = f"linea_restore_{uuid.uuid4().hex[:12]}"
    admin_execute(direct_server_url, f'CREATE DATABASE "{name}"')
    yield server_url.set(database=name), direct_server_url.set(database=name)
    admin_execute(direct_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pointed_at(run: CliRun, urls: tuple[URL, URL]) -> CliRun:
    return CliRun(
        env={**run.env, "LINEA_DATABASE_URL": plain_url(urls[0]), "LINEA_MIGRATION_DATABASE_URL": plain_url(urls[1])},
        secrets=run.secrets,
    )


def test_backup_then_restore_into_a_fresh_database_gives_identical_rows(
    linea: CliRun, db: Database, direct_database_url: URL, fresh_database: tuple[URL, URL], tmp_path: Path
) -> None:
    linea("db", "seed", "--users", "30", "--events", "12", "--waitlist", "300", "--sessions", "20")
    archive = tmp_path / "linea.dump"
    result = linea("db", "backup", "-o", str(archive), "--json")
    # Which pg_dump ran, where the archive went and how big it is, with the URL's password masked.
    assert "with pg_dump " in result.stderr and "/pg_dump)" in result.stderr
    used = re.search(r"with pg_dump (\d+)\.\d+ \(/", result.stderr)
    assert used and int(used.group(1)) >= int(db.scalar("SHOW server_version_num")) // 10000
    assert f"wrote {archive}: " in result.stderr and f"({archive.stat().st_size} bytes)" in result.stderr
    counts = {row["table"]: row["rows"] for row in result.json}
    assert counts["users"] == 30 and counts["waitlist_entries"] == 300 and counts["linea.alembic_version"] == 1
    assert archive.read_bytes().startswith(b"PGDMP")

    restored = pointed_at(linea, fresh_database)
    result = restored("db", "restore", str(archive))
    assert "with pg_restore " in result.stderr
    assert without_restore_row(table_contents(fresh_database[1])) == table_contents(direct_database_url)
    # The restored database is linea's at head: commands work on it at once.
    restored("events", "list", "--limit", "1")


def test_without_o_the_archive_goes_to_the_backup_directory(linea: CliRun, tmp_path: Path) -> None:
    result = linea("db", "backup", env={"LINEA_BACKUP_DIR": str(tmp_path / "kept")})
    [archive] = (tmp_path / "kept").iterdir()
    assert archive.name.endswith(".dump") and archive.read_bytes().startswith(b"PGDMP")
    assert f"wrote {archive}" in result.stderr
    assert stat.S_IMODE((tmp_path / "kept").stat().st_mode) == 0o700  # backups hold everyone's data
    # No LINEA_BACKUP_DIR: under the data directory; a second backup never replaces the first.
    linea("db", "backup")
    linea("db", "backup")
    assert len(list(Path(linea.env["LINEA_DATA_DIR"], "backups").glob("*.dump"))) == 2


def test_backup_keeps_an_existing_files_mode_and_refuses_a_terminal(linea: CliRun, tmp_path: Path) -> None:
    archive = tmp_path / "private.dump"
    archive.write_bytes(b"old")
    archive.chmod(0o600)
    linea("db", "backup", "-o", str(archive))
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600 and archive.read_bytes().startswith(b"PGDMP")
    run = run_linea_on_terminal(["db", "backup", "-o", "-"], env=linea.env)
    assert run.returncode == 1 and b"binary archive to the terminal" in run.other


def test_an_output_that_cannot_be_written_is_one_line(linea: CliRun, tmp_path: Path) -> None:
    for target in ("", str(tmp_path), str(tmp_path / "missing" / "x.dump")):
        refused = linea("db", "backup", "-o", target, exit_code=1)
        assert refused.stderr.startswith("error: ") and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_progress_shows_on_a_terminal_only(linea: CliRun, tmp_path: Path) -> None:
    run = run_linea_on_terminal(["db", "backup", "-o", str(tmp_path / "a.dump")], env=linea.env, terminal="stderr")
    # Rich's live display (the cursor hidden while it runs) with the bytes written so far: "0 bytes"
    # at the start, not the end of the closing line's byte count ("(24100 bytes)").
    assert run.returncode == 0 and b"\x1b[?25l" in run.terminal and re.search(rb"(?<![\d(])0 bytes", run.terminal)
    piped = linea("db", "backup", "-o", str(tmp_path / "b.dump"))
    assert "\x1b" not in piped.stderr and not re.search(r"(?<![\d(])0 bytes", piped.stderr), piped.stderr


def test_upgrade_stops_when_its_backup_fails(platform: CliRun, platform_db: Database, tmp_path: Path) -> None:
    (tmp_path / "not-a-directory").write_text("")
    result = platform("db", "upgrade", exit_code=1, env={"LINEA_BACKUP_DIR": str(tmp_path / "not-a-directory")})
    assert "nothing was migrated" in result.stderr and "--no-backup" in result.stderr
    assert platform_db.scalar("SELECT to_regclass('linea.alembic_version')") is None


def test_backup_into_a_closed_pipe_exits_141(linea: CliRun) -> None:
    result = run_linea_into_closed_pipe(["db", "backup", "-o", "-"], env=linea.env)
    assert result.returncode == 141, result.stderr
    assert "Traceback" not in result.stderr


def test_an_interrupted_backup_leaves_no_file_and_no_pg_dump(
    linea: CliRun, db: Database, direct_database_url: URL, tmp_path: Path
) -> None:
    make_user(db)
    archive = tmp_path / "out" / "linea.dump"
    archive.parent.mkdir()
    archive.write_bytes(b"the previous backup")
    # pg_dump waits for a lock the test holds (no lock timeout): interrupted mid-backup, every time.
    holder = psycopg.connect(libpq_conninfo(direct_database_url))
    try:
        holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        process = subprocess.Popen(
            [sys.executable, "-m", "linea_cli", "db", "backup", "-o", str(archive)],
            env={**os.environ, **linea.env, "LINEA_LOCK_TIMEOUT": "0"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_for_lock_waiters(db, "linea/db backup", [process])
            assert [p.name for p in archive.parent.iterdir() if p.name.endswith(".part")]  # it was writing
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    finally:
        holder.close()
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in archive.parent.iterdir()) == ["linea.dump"]
    assert archive.read_bytes() == b"the previous backup"
    wait_until(lambda: not lock_waiters(db, "linea/db backup"), what="pg_dump's connection ended")


def test_a_restore_over_data_needs_force_and_confirmation_and_changes_nothing_without(
    linea: CliRun, db: Database, tmp_path: Path
) -> None:
    make_venue(db, name="Kept Hall")
    archive = tmp_path / "linea.dump"
    linea("db", "backup", "-o", str(archive))
    later = make_venue(db, name="Added after the backup")

    result = linea("db", "restore", str(archive), exit_code=6)
    assert "is not empty" in result.stderr and "--force" in result.stderr
    linea("db", "restore", str(archive), "--force", exit_code=1)  # no terminal, no --yes
    typed = run_linea_on_terminal(["db", "restore", str(archive), "--force"], env=linea.env, terminal="stdin",
                                  typed=b"not-the-name\n")
    assert typed.returncode == 1 and b"nothing was changed" in typed.other
    assert db.count("venues", "id = :id", id=later["id"]) == 1

    name = str(db.url.database)
    typed = run_linea_on_terminal(["db", "restore", str(archive), "--force"], env=linea.env, terminal="stdin",
                                  typed=name.encode() + b"\n")
    assert typed.returncode == 0, typed.other
    assert db.count("venues", "id = :id", id=later["id"]) == 0
    assert db.count("venues", "name = 'Kept Hall'") == 1


def test_backup_and_restore_are_for_admins(linea: CliRun, db: Database, tmp_path: Path) -> None:
    archive = tmp_path / "linea.dump"
    owner = make_user(db, role="OWNER")
    result = linea("--as", owner["email"], "db", "backup", "-o", str(archive), exit_code=6)
    assert "ADMIN only" in result.stderr and not archive.exists()
    linea("db", "backup", "-o", str(archive))
    result = linea("--as", owner["email"], "db", "restore", str(archive), "--force", "--yes", exit_code=6)
    assert "ADMIN only" in result.stderr
    admin = make_user(db, role="ADMIN")
    linea("--as", admin["email"], "db", "restore", str(archive), "--force", "--yes")
    # The restored log says who restored it, when that user is in the restored data too (here not).
    [row] = db.all("SELECT user_id, metadata FROM audit_logs WHERE action = 'RESTORE' AND resource = 'Database'")
    assert row.user_id is None and row.metadata["actor_reference"] == admin["email"]


@pytest.mark.parametrize("content", [b"email,status\na@example.com,WAITING\n", b"", b"PGDM"])
def test_a_file_that_is_not_an_archive_is_refused(linea: CliRun, db: Database, tmp_path: Path, content: bytes) -> None:
    bogus = tmp_path / "bogus.dump"
    bogus.write_bytes(content)
    result = linea("db", "restore", str(bogus), "--force", "--yes", exit_code=1)
    assert result.stderr.splitlines()[0] == f"error: {str(bogus)!r} is not a pg_dump archive (custom format)"
    linea("db", "restore", str(tmp_path), exit_code=1)
    linea("db", "restore", str(tmp_path / "missing.dump"), exit_code=1)


def test_a_cut_short_archive_restores_nothing(linea: CliRun, db: Database, tmp_path: Path) -> None:
    linea("db", "seed", "--users", "20", "--waitlist", "200")
    archive = tmp_path / "linea.dump"
    linea("db", "backup", "-o", str(archive))
    cut = tmp_path / "cut.dump"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size * 3 // 4])
    make_venue(db, name="Still here")
    result = linea("db", "restore", str(cut), "--force", "--yes", exit_code=1)
    assert len(result.stderr.strip().splitlines()) == 2  # the pg_restore line, then the error
    assert db.count("venues", "name = 'Still here'") == 1


@pytest.mark.parametrize("adopt", [False, True], ids=["platform", "adopted"])
def test_the_platforms_database_restores_identically(
    platform: CliRun, platform_url: URL, fresh_database: tuple[URL, URL], tmp_path: Path, adopt: bool
) -> None:
    if adopt:
        platform("db", "upgrade", "--no-backup")
    archive = tmp_path / "platform.dump"
    platform("db", "backup", "-o", str(archive))
    pointed_at(platform, fresh_database)("db", "restore", str(archive))
    assert without_restore_row(table_contents(fresh_database[1])) == table_contents(platform_url)


def test_upgrade_of_an_external_database_with_rows_backs_it_up_first(
    platform: CliRun, platform_url: URL, fresh_database: tuple[URL, URL], tmp_path: Path
) -> None:
    kept = tmp_path / "kept"
    before = table_contents(platform_url)
    platform("db", "upgrade", "--sql", env={"LINEA_BACKUP_DIR": str(kept)})
    assert not kept.exists()
    result = platform("db", "upgrade", env={"LINEA_BACKUP_DIR": str(kept)})
    [archive] = kept.iterdir()
    assert archive.name.endswith("-before-upgrade.dump") and f"wrote {archive}" in result.stderr
    # At head now: nothing to migrate, nothing to back up.
    platform("db", "upgrade", env={"LINEA_BACKUP_DIR": str(kept)})
    assert len(list(kept.iterdir())) == 1
    # The archive is the database as it was before linea adopted it.
    pointed_at(platform, fresh_database)("db", "restore", str(archive))
    assert without_restore_row(table_contents(fresh_database[1])) == before


def test_upgrade_no_backup_takes_none(platform: CliRun, tmp_path: Path) -> None:
    result = platform("db", "upgrade", "--no-backup", env={"LINEA_BACKUP_DIR": str(tmp_path / "kept")})
    assert not (tmp_path / "kept").exists() and "backing up" not in result.stderr


def test_upgrade_of_an_empty_database_backs_nothing_up(linea: CliRun, empty_database_url: URL, tmp_path: Path) -> None:
    run = CliRun(env={**linea.env, "LINEA_DATABASE_URL": plain_url(empty_database_url),
                      "LINEA_BACKUP_DIR": str(tmp_path / "kept")}, secrets=linea.secrets)
    run.env.pop("LINEA_MIGRATION_DATABASE_URL", None)
    run("db", "upgrade")
    assert not (tmp_path / "kept").exists()


def test_the_pg_dump_setting_is_checked(linea: CliRun, tmp_path: Path) -> None:
    result = linea("db", "backup", "-o", str(tmp_path / "x.dump"), exit_code=1,
                   env={"LINEA_PG_DUMP": str(tmp_path / "no-such-pg_dump")})
    assert "LINEA_PG_DUMP" in result.stderr and "is not a pg_dump that runs" in result.stderr
    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(0o755)
    result = linea("db", "backup", "-o", str(tmp_path / "x.dump"), exit_code=5, env={"LINEA_PG_DUMP": str(old)})
    assert "older than the server" in result.stderr and "postgresql-client-" in result.stderr
    assert not (tmp_path / "x.dump").exists()


def test_without_a_pg_dump_new_enough_the_error_says_how_to_install_one() -> None:
    from linea_cli.db.backup import find_tool
    from linea_cli.errors import DatabaseUnavailable

    with pytest.raises(DatabaseUnavailable) as refused:
        find_tool("pg_dump", server_major=99, configured=None)
    assert "no pg_dump of version 99 or newer" in refused.value.message
    assert "postgresql-client-99" in (refused.value.hint or "")


def test_on_the_embedded_server_a_restore_over_data_is_confirmed_as_reset_is(embedded: CliRun) -> None:  # noqa: F811
    embedded("db", "seed", "--users", "3", "--events", "1", "--waitlist", "2", "--sessions", "1")
    result = embedded("db", "backup")
    [archive] = Path(embedded.env["LINEA_DATA_DIR"], "backups").iterdir()
    assert "with pg_dump 18." in result.stderr  # the wheel's own, the server's version
    embedded("db", "seed", "--append", "--users", "2", "--events", "0", "--waitlist", "0", "--sessions", "0")

    embedded("db", "restore", str(archive), exit_code=6)
    embedded("db", "restore", str(archive), "--force", exit_code=1)
    declined = run_linea_on_terminal(["db", "restore", str(archive), "--force"], env=embedded.env, terminal="stdin",
                                     typed=b"n\n")
    assert declined.returncode == 1 and b"replaces" in declined.other, declined.other
    assert embedded("db", "status", "--json").json["row_counts"]["users"] == 5
    embedded("db", "restore", str(archive), "--force", "--yes")
    assert embedded("db", "status", "--json").json["row_counts"]["users"] == 3
