"""The embedded default: no URL configured, a real server started on first use, migrated, managed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import CliRun, run_linea_on_terminal


@pytest.fixture
def embedded(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> CliRun:
    import tempfile

    # Short: the server's Unix socket lives in the data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="linea-emb-"))
    for key in ("LINEA_DATABASE_URL", "LINEA_MIGRATION_DATABASE_URL", "LINEA_ACTOR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    # None: unset for the command, whatever the test process has.
    run = CliRun(env={"LINEA_DATABASE_URL": None, "LINEA_DATA_DIR": str(data_dir), "NO_COLOR": "1"})  # type: ignore[dict-item]
    yield run
    run("db", "server", "stop")


def test_first_use_starts_migrates_and_stays_running(embedded: CliRun) -> None:
    status = embedded("db", "server", "status", "--json").json
    assert status["running"] is False and status["initialized"] is False

    listing = embedded("events", "list", "--json")
    assert listing.json == {"items": [], "next_cursor": None}
    assert "started the embedded PostgreSQL server" in listing.stderr
    assert "migrated the embedded database" in listing.stderr

    status = embedded("db", "server", "status", "--json").json
    assert status["running"] is True and status["pid"]
    database = embedded("db", "status", "--json").json
    assert database["mode"] == "embedded" and database["at_head"] is True

    # Left running: the next command neither starts nor migrates anything.
    again = embedded("events", "list")
    assert "started" not in again.stderr and "migrated" not in again.stderr


def test_reset_of_the_embedded_server_is_confirmed_or_needs_yes(embedded: CliRun) -> None:
    embedded("db", "seed", "--users", "3", "--events", "1", "--waitlist", "2", "--sessions", "1")
    # Without a terminal and without --yes: a hint, and nothing is lost.
    refused = embedded("db", "reset", exit_code=1)
    assert "needs confirmation: pass --yes" in refused.stderr
    assert embedded("db", "status", "--json").json["row_counts"]["users"] == 3
    # On a terminal it asks: "n" (or nothing) keeps everything, "y" resets.
    env = {**embedded.env, "LINEA_ACTOR": None}
    declined = run_linea_on_terminal(["db", "reset"], env=env, terminal="stdin", typed=b"n\n")
    assert declined.returncode == 1 and b"deletes every row" in declined.other, declined.other
    assert b"error: not confirmed; nothing was changed" in declined.other and b"Aborted" not in declined.other
    assert embedded("db", "status", "--json").json["row_counts"]["users"] == 3
    accepted = run_linea_on_terminal(["db", "reset"], env=env, terminal="stdin", typed=b"y\n")
    assert accepted.returncode == 0, accepted.other
    assert embedded("db", "status", "--json").json["row_counts"]["users"] == 0
    embedded("db", "seed", "--users", "3", "--events", "1", "--waitlist", "2", "--sessions", "1")
    embedded("db", "reset", "--yes")
    counts = embedded("db", "status", "--json").json["row_counts"]
    assert counts["users"] == 0 and counts["events"] == 0


def test_stop_and_start(embedded: CliRun) -> None:
    embedded("db", "server", "start")
    assert embedded("db", "server", "status", "--json").json["running"] is True
    assert "stopped" in embedded("db", "server", "stop").stderr
    assert embedded("db", "server", "status", "--json").json["running"] is False
    assert "not running" in embedded("db", "server", "stop").stderr
