"""Named profiles in ~/.config/linea/config.toml (XDG_CONFIG_HOME here): which database a command
uses, `linea profile list/use/show`, and the confirmation a `confirm = true` profile asks for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.factories import make_event
from tests.harness import CliRun, Database, plain_url, run_linea_on_terminal, run_linea_process
from tests.test_target import service  # noqa: F401  (the fixture: a pg_service.conf naming the test database)

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
        ("linea profile remove t", ["test"]),
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


def test_profile_add_writes_a_table_and_keeps_the_rest(linea: CliRun, profiles: Path, database_url: URL) -> None:
    before = profiles.read_text()
    added = linea(
        "profile", "add", "staging", "--url", "postgresql://linea:hunter2@staging-db/linea",
        "--migration-url", "postgresql://admin:sesame@staging-direct/linea", "--confirm", "--json",
        "--read-url", "postgresql://linea:hunter2@staging-r1/linea,postgresql://linea:hunter2@staging-r2/linea",
    )
    assert added.json == {
        "name": "staging", "url": "postgresql://linea:***@staging-db/linea", "service": None,
        "migration_url": "postgresql://admin:***@staging-direct/linea", "confirm": True, "file": str(profiles),
        "read_url": "postgresql://linea:***@staging-r1/linea,postgresql://linea:***@staging-r2/linea",
    }
    assert added.stderr == f"added profile staging (postgresql://linea:***@staging-db/linea) to {profiles}\n"
    assert "hunter2" not in added.stdout + added.stderr and "sesame" not in added.stdout + added.stderr
    assert profiles.read_text() == before + (
        '\n[profiles.staging]\nurl = "postgresql://linea:hunter2@staging-db/linea"\n'
        'migration_url = "postgresql://admin:sesame@staging-direct/linea"\n'
        'read_url = "postgresql://linea:hunter2@staging-r1/linea,postgresql://linea:hunter2@staging-r2/linea"\nconfirm = true\n'
    )
    assert profiles.stat().st_mode & 0o777 == 0o600
    linea("profile", "add", "svc.eu", "--service", "linea_eu")
    assert profiles.read_text().endswith('\n\n[profiles."svc.eu"]\nservice = "linea_eu"\n')
    listed = linea("profile", "list", "--json", "--fields", "name,url,service,confirm").json
    assert [row["name"] for row in listed] == ["elsewhere", "prod", "staging", "svc.eu", "test"]
    assert listed[3] == {"name": "svc.eu", "url": None, "service": "linea_eu", "confirm": False}
    # The new profile is a database like the others.
    linea("profile", "add", "again", "--url", plain_url(database_url))
    assert linea("--profile", "again", "db", "status", "--json", env={"LINEA_DATABASE_URL": NOWHERE}).json["profile"] == "again"


def test_profile_add_makes_the_file_private(linea: CliRun) -> None:
    config = Path(linea.env["XDG_CONFIG_HOME"]) / "linea" / "config.toml"
    assert not config.parent.exists()
    linea("profile", "add", "first", "--url", "postgresql://u:pw@db/x")
    assert config.read_text() == '[profiles.first]\nurl = "postgresql://u:pw@db/x"\n'
    assert (config.stat().st_mode & 0o777, config.parent.stat().st_mode & 0o777) == (0o600, 0o700)


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (("test", "--url", "postgresql://db/x"), 4, "error: profile 'test' already exists in {file}\n"
         "hint: choose another name, or remove it first: linea profile remove test\n"),
        (("new", "--url", "host=db password=hunter2"), 1, "error: --url: the database URL is a libpq keyword/value string "
         "(host=... dbname=...); expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE\n"),
        (("new", "--url", "mysql://u:hunter2@db/x"), 1, "error: --url: unsupported database URL scheme 'mysql': linea needs postgresql://\n"),
        (("new", "--url", "postgresql://db/x", "--migration-url", "postgresql://u:hunter2@db:port/x"), 1,
         "error: --migration-url: the database URL is not a URL; expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE\n"),
        (("new", "--url", "postgresql://db/x", "--service", "s"), 2, "error: give one of --url and --service\n"),
        (("new",), 2, "error: give one of --url and --service\n"),
        (("new", "--service", "a&password=x"), 1, "error: invalid service name 'a&password=x': letters, digits, '.', '_', '~' and '-'\n"),
        (("bad name", "--service", "s"), 1, "error: invalid profile name 'bad name': a name is letters, digits, '.', '_' and '-', "
         "starting with a letter or digit\n"),
        (("new", "--url", "postgresql://db/x", "--from-env", ".env"), 2, "error: --from-env takes the database from the file: "
         "give no --url, --service, --migration-url or --read-url with it\n"),
        (("new", "--url", "postgresql://db/x", "--read-url", "postgresql://db/r,,"), 1, "error: the --read-url is empty\nhint: give a postgresql:// URL\n"),
    ],
)
def test_profile_add_refuses_what_it_cannot_write(
    linea: CliRun, profiles: Path, args: tuple[str, ...], exit_code: int, message: str
) -> None:
    before = profiles.read_text()
    run = linea("profile", "add", *args, exit_code=exit_code)
    assert run.stderr == message.format(file=profiles)
    assert "hunter2" not in run.stderr
    assert profiles.read_text() == before


def test_profile_remove_takes_its_table_and_the_current_line(linea: CliRun) -> None:
    config = write_config(linea, """# my databases
current = "b"

[profiles.a]
url = "postgresql://db/a"

# b: the one I use
[profiles.b]
url = "postgresql://db/b"  # staging
# confirm = true, one day

# c, the last
[profiles.c]
service = "c"
""")
    run = linea("profile", "remove", "b", "--json")
    assert run.json == {
        "name": "b", "url": "postgresql://db/b", "service": None, "migration_url": None, "confirm": False,
        "read_url": None, "file": str(config), "was_current": True,
    }
    assert run.stderr == (
        f"removed profile b from {config}\nit was the current profile: none is now (choose one with `linea profile use NAME`)\n"
    )
    assert config.read_text() == """# my databases

[profiles.a]
url = "postgresql://db/a"

# c, the last
[profiles.c]
service = "c"
"""
    linea("profile", "remove", "c")
    assert config.read_text() == '# my databases\n\n[profiles.a]\nurl = "postgresql://db/a"\n'
    assert [row["name"] for row in linea("profile", "list", "--json").json] == ["a"]
    run = linea("profile", "remove", "c", exit_code=3)
    assert run.stderr.startswith(f"error: no profile 'c' in {config} (profiles: a)\n")
    linea("profile", "remove", "a")
    assert linea("profile", "list", "--json").json == []


NOT_TABLES = {
    "dotted-keys": 'profiles.a.url = "postgresql://db/a"\n\n[profiles.b]\nurl = "postgresql://db/b"\n',
    "inline-table": 'profiles.a = { url = "postgresql://db/a" }\n\n[profiles.b]\nurl = "postgresql://db/b"\n',
    "profiles-table": '[profiles]\na = { service = "a" }\n\n[profiles.b]\nurl = "postgresql://db/b"\n',
    "alone": 'profiles.a.url = "postgresql://db/a"\nprofiles.b = { service = "b" }\n',
}


@pytest.mark.parametrize("text", NOT_TABLES.values(), ids=NOT_TABLES.keys())
def test_a_file_that_cannot_be_changed_line_by_line_is_left_as_it_is(linea: CliRun, text: str) -> None:
    # `profile add` appended its table and `profile use` its `current` line to such a file (exit 0);
    # only `profile remove` refused it.
    config = write_config(linea, text)
    message = (
        f"error: cannot change {config} line by line (its profiles are not all [profiles.NAME] tables): nothing was changed\n"
        "hint: edit the file by hand\n"
    )
    for change in (["add", "zz", "--url", "postgresql://db/zz"], ["add", "yy", "--service", "yy"], ["use", "a"], ["use", "b"],
                   ["remove", "a"], ["remove", "b"]):
        assert linea("profile", *change, exit_code=1).stderr == message, change
        assert config.read_text() == text, change
    # It is still read: every command can use its profiles.
    assert [row["name"] for row in linea("profile", "list", "--json").json] == ["a", "b"]


def test_a_file_of_tables_however_their_headers_are_written_is_changed_line_by_line(linea: CliRun) -> None:
    text = '# mine\n[profiles."a.b"]  # quoted\nurl = "postgresql://db/ab"\n\n[ profiles . \'q\' ]\nservice = "q"\n'
    config = write_config(linea, text)
    linea("profile", "add", "c", "--service", "c")
    linea("profile", "use", "q")
    assert config.read_text() == '# mine\ncurrent = "q"\n' + text.removeprefix("# mine\n") + '\n[profiles.c]\nservice = "c"\n'
    linea("profile", "remove", "a.b")
    assert [row["name"] for row in linea("profile", "list", "--json").json] == ["c", "q"]


def test_profile_add_and_remove_write_only_the_users_own_file(linea: CliRun, profiles: Path, tmp_path: Path) -> None:
    profiles.chmod(0o620)
    run = linea("profile", "add", "new", "--service", "s", exit_code=1)
    assert run.stderr.startswith(f"error: refusing to read {profiles}: writable by group or others (mode 0620)\n")
    linea("profile", "remove", "test", exit_code=1)
    profiles.chmod(0o600)
    assert "[profiles.new]" not in profiles.read_text() and "[profiles.test]" in profiles.read_text()
    # A link from the user's dotfiles stays a link: the file it points to is replaced.
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir(mode=0o700)
    real = dotfiles / "config.toml"
    profiles.rename(real)
    profiles.symlink_to(real)
    linea("profile", "add", "new", "--service", "s")
    linea("profile", "use", "new")
    assert profiles.is_symlink() and real.read_text().endswith('\n[profiles.new]\nservice = "s"\n')
    assert real.read_text().startswith('# the test\'s databases\ncurrent = "new"\n[profiles.test]\n')
    assert {path.name for path in dotfiles.iterdir()} == {"config.toml"}  # no temporary file left


def test_which_database_a_command_uses_first_found(
    linea: CliRun, profiles: Path, direct_database_url: URL, service: dict[str, str], tmp_path: Path  # noqa: F811
) -> None:
    """The README's order: --database-url, --profile, LINEA_PROFILE, LINEA_DATABASE_URL, the file's
    current profile, libpq's environment, the embedded server. Each is given with every later one
    naming a database that does not exist (NOWHERE, profile `elsewhere`, PGHOST and PGDATABASE)."""
    real = linea.env["LINEA_DATABASE_URL"]
    nowhere_libpq = {**service, "PGHOST": "/nonexistent", "PGDATABASE": "nowhere", "LINEA_MIGRATION_DATABASE_URL": None}
    data_dir = tmp_path / "no-embedded-server"

    def used(*args: str, **env: str | None) -> tuple[str | None, str]:
        status = linea(*args, "db", "status", "--json", env={**nowhere_libpq, "LINEA_DATA_DIR": str(data_dir), **env}).json
        return status["profile"], status["database"]

    name = str(direct_database_url.database)
    # 6. libpq's environment, no current profile: not the embedded server.
    assert used(LINEA_DATABASE_URL=None, PGSERVICE="linea_staging", PGHOST=None, PGDATABASE=None) == (None, name)
    assert not data_dir.exists()
    linea("profile", "use", "elsewhere")
    # 1. --database-url, over LINEA_PROFILE, LINEA_DATABASE_URL, the current profile and PG*.
    assert used("--database-url", real, LINEA_PROFILE="elsewhere", LINEA_DATABASE_URL=NOWHERE) == (None, name)
    # 2. --profile, over LINEA_PROFILE and LINEA_DATABASE_URL.
    assert used("--profile", "test", LINEA_PROFILE="elsewhere", LINEA_DATABASE_URL=NOWHERE) == ("test", name)
    # 3. LINEA_PROFILE, over the current profile.
    assert used(LINEA_PROFILE="test", LINEA_DATABASE_URL=None) == ("test", name)
    # 4. LINEA_DATABASE_URL, over the current profile.
    assert used(LINEA_DATABASE_URL=real) == (None, name)
    # 5. The current profile, over libpq's environment.
    linea("profile", "use", "test")
    assert used(LINEA_DATABASE_URL=None) == ("test", name)
    # ... which would otherwise be used: PGHOST names no server.
    linea("profile", "use", "elsewhere")
    linea("db", "status", env={**nowhere_libpq, "LINEA_DATABASE_URL": None}, exit_code=5)
    assert not data_dir.exists()


def test_profiles_added_at_the_same_time_are_all_kept(linea: CliRun, profiles: Path) -> None:
    """Each `profile add` reads the file, adds its table and replaces the file: run side by side,
    they take turns (the directory is locked meanwhile), so none replaces the file with a text that
    lacks another's profile."""
    from concurrent.futures import ThreadPoolExecutor

    names = [f"p{number}" for number in range(8)]
    with ThreadPoolExecutor(len(names)) as pool:
        runs = list(pool.map(lambda name: run_linea_process(["profile", "add", name, "--service", name], env=linea.env), names))
    assert [run.returncode for run in runs] == [0] * len(names), [run.stderr for run in runs]
    listed = [row["name"] for row in linea("profile", "list", "--json").json]
    assert listed == sorted(["elsewhere", "prod", "test", *names])
    assert {path.name for path in profiles.parent.iterdir()} == {"config.toml"}
