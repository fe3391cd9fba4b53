"""Named profiles in ~/.config/linea/config.toml (XDG_CONFIG_HOME here): which database a command
uses, `linea profile list/use/show`, and the confirmation a `confirm = true` profile asks for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.factories import make_event
from tests.harness import CliRun, Database, plain_url, run_linea_on_terminal

NOWHERE = "postgresql://nobody@127.0.0.1:1/nowhere"  # a command that connects here fails with exit 5


def write_config(linea: CliRun, text: str, *, mode: int = 0o600) -> Path:
    path = Path(linea.env["XDG_CONFIG_HOME"]) / "linea" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def profiles(linea: CliRun, database_url: URL) -> Path:
    return write_config(linea, f"""# the test's databases
[profiles.test]
url = "{plain_url(database_url)}"

[profiles.elsewhere]
url = "{NOWHERE}"

[profiles.prod]
url = "{plain_url(database_url)}"
confirm = true
""")


def test_the_profile_chooses_the_database_and_shows_in_db_status(linea: CliRun, profiles: Path, database_url: URL) -> None:
    # LINEA_DATABASE_URL names a database that does not exist: --profile wins over it.
    elsewhere = {"LINEA_DATABASE_URL": NOWHERE}
    status = linea("--profile", "test", "db", "status", "--json", env=elsewhere).json
    assert status["profile"] == "test"
    assert re.search(f"/{re.escape(database_url.database)}(\\?|$)", status["url"]), status["url"]
    linea("--profile", "elsewhere", "db", "status", exit_code=5)
    # LINEA_PROFILE, with no LINEA_DATABASE_URL beside it.
    alone = {"LINEA_DATABASE_URL": None, "LINEA_PROFILE": "test"}
    assert linea("db", "status", "--json", env=alone).json["profile"] == "test"
    # Without a profile: none shown.
    assert linea("db", "status", "--json").json["profile"] is None


def test_profile_use_makes_it_current_and_keeps_the_file(linea: CliRun, profiles: Path) -> None:
    unset = {"LINEA_DATABASE_URL": None}
    run = linea("profile", "use", "test")
    assert run.stderr.startswith("now using profile test (postgresql://")
    assert profiles.read_text().startswith('# the test\'s databases\ncurrent = "test"\n[profiles.test]\n')
    assert linea("db", "status", "--json", env=unset).json["profile"] == "test"
    # LINEA_DATABASE_URL still wins over the current profile.
    assert linea("db", "status", "--json").json["profile"] is None
    linea("profile", "use", "elsewhere")
    assert profiles.read_text().count("current =") == 1
    linea("db", "status", env=unset, exit_code=5)
    listed = linea("profile", "list", "--json", "--fields", "name,current,in_use,confirm", env=unset).json
    assert listed == [
        {"name": "elsewhere", "current": True, "in_use": True, "confirm": False},
        {"name": "prod", "current": False, "in_use": False, "confirm": True},
        {"name": "test", "current": False, "in_use": False, "confirm": False},
    ]
    shown = linea("profile", "show", "--json", env=unset).json
    assert shown["name"] == "elsewhere"
    assert shown["url"] == NOWHERE
    assert shown["file"] == str(profiles)


def test_a_password_in_a_profile_is_masked(linea: CliRun) -> None:
    write_config(linea, '[profiles.p]\nurl = "postgresql://u:hunter2@db/x"\nmigration_url = "postgresql://a:sesame@db/x"\n')
    run = linea("profile", "show", "p")
    assert "hunter2" not in run.stdout and "sesame" not in run.stdout
    assert "postgresql://u:***@db/x" in run.stdout


@pytest.mark.parametrize(
    ("args", "env", "exit_code", "message"),
    [
        (("--profile", "nope"), {}, 3, "error: no profile 'nope' in "),
        (("--profile", "test", "--database-url", NOWHERE), {}, 2, "error: --database-url and --profile name two databases: give one\n"),
        ((), {"LINEA_PROFILE": "test"}, 1, "error: LINEA_PROFILE and LINEA_DATABASE_URL are both set and name two databases\n"),
    ],
)
def test_ambiguous_or_unknown_profiles_are_refused(
    linea: CliRun, profiles: Path, args: tuple[str, ...], env: dict[str, str], exit_code: int, message: str
) -> None:
    run = linea(*args, "db", "status", env=env, exit_code=exit_code)
    assert run.stderr.startswith(message)


def test_a_config_file_others_may_write_is_refused(linea: CliRun, profiles: Path) -> None:
    profiles.chmod(0o620)
    run = linea("profile", "list", exit_code=1)
    assert run.stderr.startswith(f"error: refusing to read {profiles}: writable by group or others (mode 0620)\n")
    run = linea("--profile", "test", "db", "status", exit_code=1)
    assert "refusing to read" in run.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[profiles.a]\nurl = "postgresql://x/y"\nconfrim = true\n', "unknown key 'confrim'"),
        ('[profiles.a]\nurl = "postgresql://x/y"\nservice = "s"\n', "give exactly one of `url` and `service`"),
        ('[profiles.a]\nurl = "postgresql://x/y"\nconfirm = "yes"\n', "`confirm` must be true or false"),
        ("[profiles.a\n", "is not valid TOML"),
    ],
)
def test_an_invalid_config_file_is_one_line(linea: CliRun, text: str, message: str) -> None:
    write_config(linea, text)
    run = linea("profile", "list", exit_code=1)
    assert message in run.stderr
    assert len(run.stderr.splitlines()) <= 2


def test_a_confirm_profile_asks_before_a_delete(linea: CliRun, profiles: Path, db: Database, database_url: URL) -> None:
    event = make_event(db)
    # No terminal and no --yes: refused, nothing deleted.
    run = linea("--profile", "prod", "events", "delete", event["slug"], exit_code=1)
    assert run.stderr.startswith(f"error: delete event {event['slug']} in ")
    assert run.stderr.splitlines()[0].endswith(" (profile prod) needs confirmation: pass --yes to run without a terminal")
    assert db.scalar("SELECT deleted_at FROM events WHERE id = :id", id=event["id"]) is None
    run = linea("--profile", "prod", "events", "delete", event["slug"], "--yes")
    assert f"delete event {event['slug']} in " in run.stderr and "(profile prod)" in run.stderr
    assert db.scalar("SELECT deleted_at FROM events WHERE id = :id", id=event["id"]) is not None


def test_a_delete_off_the_embedded_server_names_the_database(linea: CliRun, db: Database, database_url: URL) -> None:
    event = make_event(db)
    run = linea("events", "cancel", event["slug"])
    first = run.stderr.splitlines()[0]
    assert first.startswith(f"cancel event {event['slug']} in ")
    assert database_url.database in first


def test_at_a_terminal_a_confirm_profile_asks_and_names_itself(linea: CliRun, profiles: Path, db: Database) -> None:
    event = make_event(db)
    env = {**linea.env, "LINEA_DATABASE_URL": None, "LINEA_PROFILE": "prod"}
    declined = run_linea_on_terminal(["users", "delete", event["owner_id"]], env=env, terminal="stdin", typed=b"n\n")
    shown = declined.other.decode()
    assert declined.returncode == 1, shown
    assert f"delete user {event['owner_id']} in " in shown
    assert "(profile prod) [y/N]" in shown
    assert "error: not confirmed; nothing was changed" in shown
    assert db.scalar("SELECT deleted_at FROM users WHERE id = :id", id=event["owner_id"]) is None
    accepted = run_linea_on_terminal(["users", "delete", event["owner_id"]], env=env, terminal="stdin", typed=b"y\n")
    assert accepted.returncode == 0, accepted.other.decode()
    assert db.scalar("SELECT deleted_at FROM users WHERE id = :id", id=event["owner_id"]) is not None


def test_the_database_name_typed_back_is_asked_for_with_the_profile(linea: CliRun, profiles: Path, db: Database) -> None:
    event = make_event(db)
    env = {**linea.env, "LINEA_DATABASE_URL": None}
    run = run_linea_on_terminal(["--profile", "test", "db", "reset", "--force"], env=env, terminal="stdin", typed=b"no\n")
    shown = run.other.decode()
    assert run.returncode == 1, shown
    assert " (profile test). Type the database name" in shown
    assert "error: 'no' is not '" in shown and "; nothing was changed" in shown
    assert db.count("events", "id = :id", id=event["id"]) == 1


def test_an_import_into_a_waitlist_with_entries_asks_on_a_confirm_profile(
    linea: CliRun, profiles: Path, db: Database, tmp_path: Path
) -> None:
    event = make_event(db, status="PUBLISHED")
    first = tmp_path / "first.csv"
    first.write_text("email\nann@example.com\n")
    second = tmp_path / "second.csv"
    second.write_text("email\nbob@example.com\n")
    # An empty waitlist: nothing to ask about, even on a confirm profile.
    linea("--profile", "prod", "waitlist", "import", event["slug"], str(first))
    run = linea("--profile", "prod", "waitlist", "import", event["slug"], str(second), exit_code=1)
    assert f"import into the waitlist of {event['slug']} (1 entry) in " in run.stderr
    assert "(profile prod) needs confirmation: pass --yes" in run.stderr
    assert db.count("waitlist_entries", "event_id = :id", id=event["id"]) == 1
    linea("--profile", "prod", "waitlist", "import", event["slug"], str(second), "--yes")
    assert db.count("waitlist_entries", "event_id = :id", id=event["id"]) == 2
    # Off a profile, the database is named on stderr.
    third = tmp_path / "third.csv"
    third.write_text("email\ncid@example.com\n")
    run = linea("waitlist", "import", event["slug"], str(third))
    assert run.stderr.startswith(f"import into the waitlist of {event['slug']} (2 entries) in database ")


def test_completion_reads_the_database_of_the_profile_given(linea: CliRun, profiles: Path, db: Database) -> None:
    make_event(db, slug="profiled-fest")
    line = "linea --profile test events show profiled-"
    env = {"_LINEA_COMPLETE": "complete_bash", "COMP_LINE": line, "COMP_POINT": str(len(line)), "LINEA_DATABASE_URL": NOWHERE}
    result = linea(env=env)
    assert result.stdout.split() == ["profiled-fest"]


def test_profile_names_complete(linea: CliRun, profiles: Path) -> None:
    for line, expected in (
        ("linea --profile e", ["elsewhere"]),
        ("linea profile use p", ["prod"]),
        ("linea profile show ", ["elsewhere", "prod", "test"]),
    ):
        env = {"_LINEA_COMPLETE": "complete_bash", "COMP_LINE": line, "COMP_POINT": str(len(line))}
        result = linea(env=env)
        assert result.stdout.split() == expected, line
        assert result.stderr == ""


def test_a_config_file_linked_from_the_users_dotfiles_is_read(linea: CliRun, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir(mode=0o700)
    (dotfiles / "config.toml").write_text('[profiles.linked]\nurl = "postgresql://db/x"\n')
    link = Path(linea.env["XDG_CONFIG_HOME"]) / "linea" / "config.toml"
    link.parent.mkdir(parents=True)
    link.symlink_to(dotfiles / "config.toml")
    assert [row["name"] for row in linea("profile", "list", "--json").json] == ["linked"]
    (dotfiles / "config.toml").chmod(0o664)
    run = linea("profile", "list", exit_code=1)
    assert run.stderr.startswith(f"error: refusing to read {link}: writable by group or others (mode 0664)\n")


def test_profile_after_the_command_is_the_same_root_option(linea: CliRun) -> None:
    """Like --database-url, --as and --debug, --profile is a root option taken after the command too."""
    before = linea("--profile", "nope", "events", "list", exit_code=3)
    after = linea("events", "list", "--profile", "nope", exit_code=3)
    assert after.stderr == before.stderr
    assert after.stderr.startswith("error: no profile 'nope' in ")
