"""The one way into the database, for a script and for a command alike, and `linea db` reaching
migrations, backups and the embedded server through services."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

import linea_cli
from tests.factories import make_user
from tests.harness import ROOT, CliRun, Database, plain_url


def test_a_script_given_an_empty_url_is_refused_not_sent_to_the_embedded_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script's unset variable (`open_database(os.environ.get("URL", ""))`) used to open the
    embedded server, as if no URL had been given; the command line refuses it, and so does the library."""
    monkeypatch.setenv("LINEA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LINEA_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(linea_cli.errors.InvalidInput, match="^the database URL is empty$"):
        linea_cli.open_database("")
    monkeypatch.setenv("LINEA_DATABASE_URL", " ")
    with pytest.raises(linea_cli.errors.InvalidInput, match="^LINEA_DATABASE_URL is empty$"):
        linea_cli.open_database()
    assert not (tmp_path / "data").exists()  # no embedded server was started


def on(linea: CliRun, url: URL) -> CliRun:
    """`linea` on the database at `url`, for migrations too."""
    run = CliRun(env={**linea.env, "LINEA_DATABASE_URL": plain_url(url)}, secrets=linea.secrets)
    run.env.pop("LINEA_MIGRATION_DATABASE_URL", None)
    return run


def test_a_script_and_a_command_find_the_same_database_behind(linea: CliRun, empty_database_url: URL) -> None:
    """One check for both: the same words; exit 5 for the command."""
    with pytest.raises(linea_cli.errors.DatabaseUnavailable) as refused:
        linea_cli.open_database(empty_database_url)
    message = refused.value.message
    assert message.startswith(f'database "{empty_database_url.database}" on ') and message.endswith(" has no linea schema")
    result = on(linea, empty_database_url)("events", "list", exit_code=5)
    assert message in result.stderr
    assert "run `linea db upgrade`" in result.stderr


def test_upgrade_to_base_on_an_empty_database_says_base(linea: CliRun, empty_database_url: URL) -> None:
    """It said "is at None"."""
    result = on(linea, empty_database_url)("db", "upgrade", "base")
    assert result.stderr.strip().endswith(" is at base")
    empty = Database(empty_database_url)
    assert empty.scalar("SELECT to_regclass('public.events')") is None
    empty.close()


def test_a_script_backs_up_and_restores_through_the_services(
    db: Database, direct_database_url: URL, direct_server_url: URL, empty_database_url: URL, tmp_path: Path
) -> None:
    """What `db backup` and `db restore` do, from Python: the services the commands call."""
    make_user(db, email="kept@example.com")
    archive_path = tmp_path / "nightly.dump"
    with linea_cli.open_database(plain_url(direct_database_url)) as source:
        done = linea_cli.services.backups.back_up(source, str(archive_path), directory=tmp_path, lock_timeout="5s")
    assert done.target == str(archive_path)
    assert done.summary.tables["users"] == 1 and done.summary.size == archive_path.stat().st_size
    empty_url = direct_server_url.set(database=empty_database_url.database)
    with (
        linea_cli.open_database(plain_url(empty_url), check_schema=False) as target,
        linea_cli.services.backups.opened_archive(str(archive_path)) as archive,
    ):
        plan = linea_cli.services.backups.plan_restore(target, archive)
        assert plan.existing == {} and plan.foreign == ()
        restored = linea_cli.services.backups.restore(target, plan, actor_reference=None)
    assert restored.recorded and restored.summary.tables["users"] == 1
    check = Database(empty_url)
    assert check.scalar("SELECT email FROM users") == "kept@example.com"
    assert check.scalar("SELECT metadata->>'archive' FROM audit_logs WHERE action = 'RESTORE'") == str(archive_path)
    check.close()


def test_db_commands_reach_the_database_layer_through_services() -> None:
    tree = ast.parse((ROOT / "linea_cli" / "cli" / "db.py").read_text())
    imported = {f"{node.module}.{alias.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names} | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                                            for alias in node.names}
    assert sorted(name for name in imported if name.startswith("linea_cli.db.")) == []
    for service in ("linea_cli.services.migrations", "linea_cli.services.backups", "linea_cli.services.server"):
        assert any(name.startswith(service) for name in imported), service
