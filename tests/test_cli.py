"""The root command: help, version, errors as one line with documented exit codes, no secrets."""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy.engine import URL

from tests.harness import CliRun, admin_execute, leaf_commands, plain_url, run_linea_process

UNREACHABLE = "postgresql://u:secret@127.0.0.1:1/x"


# Root options an example may put before the command (`linea --as ann@example.com events create`).
ROOT_OPTIONS_WITH_A_VALUE = ("--as", "--database-url")


def help_problems(path: tuple[str, ...], shown: str, options: set[str]) -> list[str]:
    """What `linea PATH --help` (`shown`) lacks: a one-line help text, and an `Example:` that runs
    this very command with options it has (`options`). Empty when nothing is missing."""
    paragraphs = [" ".join(line.strip() for line in part.splitlines()) for part in shown.split("\n\n")]
    summary = paragraphs[1] if len(paragraphs) > 1 and paragraphs[0].startswith("Usage: ") else ""
    if not summary or summary.startswith(("Example:", "Options:", "Arguments:")):
        return ["no help text"]
    problems = [] if summary[0].isupper() else [f"its help text starts in lower case: {summary!r}"]
    examples = [part.strip().removeprefix("Example: ") for part in shown.split("\n\n") if part.strip().startswith("Example: linea ")]
    if not examples:
        return [*problems, "no `Example: linea ...`"]
    for example in examples:
        if "\n" in example:  # a command line to copy: a line break in it runs half of it
            problems.append(f"its example is wrapped: {example!r}")
            example = " ".join(line.strip() for line in example.splitlines())
        words = shlex.split(example)[1:]
        while words and words[0] in (*ROOT_OPTIONS_WITH_A_VALUE, "--debug"):
            words = words[1:] if words[0] == "--debug" else words[2:]
        if tuple(words[: len(path)]) != path:
            problems.append(f"its example runs another command: {example!r}")
        unknown = [word for word in words[len(path):] if re.match(r"--?[a-z]", word) and word.split("=")[0] not in options]
        if unknown:
            problems.append(f"its example has options the command lacks {unknown}: {example!r}")
    return problems


def test_every_command_has_help_and_an_example(linea: CliRun) -> None:
    missing = {}
    for path, command in leaf_commands():
        options = {opt for param in command.params for opt in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ()))}
        problems = help_problems(path, linea(*path, "--help").stdout, options)
        problems += [f"{param.name} has no help" for param in command.params if param.name != "help" and not getattr(param, "help", None)]
        if problems:
            missing[" ".join(path)] = problems
    assert missing == {}, f"commands without a one-line help, an Example or option help: {missing}"
    groups = {path[:depth] for path, _ in leaf_commands() for depth in range(1, len(path))}
    assert {("events",), ("db",), ("db", "server")} <= groups
    for group in groups:
        assert help_problems(group, linea(*group, "--help").stdout, set()) == ["no `Example: linea ...`"], group


def test_the_help_check_finds_what_is_missing() -> None:
    usage = "Usage: linea events show [OPTIONS] {SLUG|ID}\n\n"
    assert help_problems(("events", "show"), usage + "Options:\n  --json  JSON.\n", {"--json"}) == ["no help text"]
    assert help_problems(("events", "show"), usage + "  Show one event.\n\nOptions:\n", {"--json"}) == [
        "no `Example: linea ...`"
    ]
    assert help_problems(("events", "show"), usage + "  Show one event.\n\n  Example: linea events show gala --json\n", {"--json"}) == []
    assert help_problems(("events", "show"), usage + "  show one event.\n\n  Example: linea --as a@b.c events show\n  gala --jsn -1\n", {"--json"}) == [
        "its help text starts in lower case: 'show one event.'",
        "its example is wrapped: 'linea --as a@b.c events show\\n  gala --jsn -1'",
        "its example has options the command lacks ['--jsn']: 'linea --as a@b.c events show gala --jsn -1'",
    ]
    assert help_problems(("events", "show"), usage + "  Show one event.\n\n  Example: linea events list\n", set()) == [
        "its example runs another command: 'linea events list'"
    ]


def test_version(linea: CliRun) -> None:
    # The installed package's version (what pip shows), not the module's own constant.
    assert linea("--version").stdout == f"linea {importlib.metadata.version('linea-cli')}\n"
    assert re.fullmatch(r"linea \d+\.\d+\.\d+\n", linea("--version").stdout)


def test_help_needs_no_database(linea: CliRun) -> None:
    result = linea("--help", env={"LINEA_DATABASE_URL": "not a url at all"})
    assert "events" in result.stdout and "db" in result.stdout


def test_unreachable_database_is_exit_5_without_the_password(linea: CliRun) -> None:
    result = linea("--database-url", UNREACHABLE, "db", "status", exit_code=5)
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert '"x" on 127.0.0.1:1' in result.stderr
    assert "secret" not in result.stdout + result.stderr


def test_debug_traceback_still_masks_the_password(linea: CliRun) -> None:
    result = linea("--debug", "--database-url", UNREACHABLE, "db", "status", exit_code=5)
    assert "Traceback" in result.stderr
    assert "secret" not in result.stdout + result.stderr


def test_done_when_as_a_real_process() -> None:
    completed = run_linea_process(["--database-url", UNREACHABLE, "db", "status"], env={})
    assert completed.returncode == 5
    assert "secret" not in completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("password", ["p%ss", "p@ss", "p:ss", "p ss", "100%@: x"])
def test_special_character_passwords_work_and_never_show(
    password: str, linea: CliRun, direct_server_url: URL, empty_database_url: URL
) -> None:
    role = f"linea_pw_{uuid.uuid4().hex[:8]}"
    try:
        admin_execute(direct_server_url, f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
    except Exception as exc:  # noqa: BLE001 - an external test server may not allow it
        pytest.skip(f"cannot create a role here: {exc}")
    # As a user writes it: the password URL-encoded (quote, not SQLAlchemy's renderer, encodes spaces).
    # Straight to the server: a pooler would not know this new role.
    where = plain_url(direct_server_url.set(database=empty_database_url.database)).split("@", 1)[1]
    url = f"postgresql://{role}:{quote(password, safe='')}@{where}"
    assert password not in url
    upgrade = linea("--database-url", url, "db", "upgrade")
    status = linea("--database-url", url, "db", "status", "--json")
    assert status.json["at_head"] is True
    shown = status.json["url"]
    assert "***" in shown
    for output in (upgrade.stdout, upgrade.stderr, status.stdout, status.stderr):
        assert password not in output
    # A failing command with the same password: still masked.
    broken = url.replace(f"/{empty_database_url.database}", "/no_such_database")
    failed = linea("--database-url", broken, "events", "list", exit_code=5)
    assert password not in failed.stderr and "no_such_database" in failed.stderr
    admin_execute(direct_server_url, f'DROP DATABASE IF EXISTS "{empty_database_url.database}" WITH (FORCE)')
    admin_execute(direct_server_url, f"DROP ROLE {role}")


def test_invalid_url_is_invalid_input(linea: CliRun) -> None:
    result = linea("--database-url", "mysql://root:hunter2@db/x", "events", "list", exit_code=1)
    assert "postgresql://" in result.stderr and "hunter2" not in result.stderr


def test_a_password_in_the_query_string_is_masked(linea: CliRun, database_url: URL) -> None:
    # libpq reads ?password= (and ?sslpassword=) as well as user:password@; the server's own
    # password, if it has one, moves into the query string.
    password = str(database_url.password) if database_url.password else "p@ssw0rd-in-query"
    url = plain_url(database_url.set(password=None))
    url += ("&" if "?" in url else "?") + f"password={quote(password, safe='')}&sslpassword=key-phrase-42"
    shown = linea("--database-url", url, "db", "status", "--json").json["url"]
    assert "password=***" in shown and "sslpassword=***" in shown
    table = linea("--database-url", url, "db", "status").stdout
    broken = url.replace(f"/{database_url.database}?", "/no_such_database?")
    failed = linea("--database-url", broken, "events", "list", exit_code=5)
    assert "no_such_database" in failed.stderr
    for output in (shown, table, failed.stderr):
        assert password not in output and quote(password, safe="") not in output
        assert "key-phrase-42" not in output


def test_a_libpq_keyword_string_is_refused_without_echoing_it(linea: CliRun) -> None:
    for conninfo in ("host=db.internal port=5432 dbname=linea user=linea password='s3 cr3t'",
                     "dbname=linea password=s3cr3t"):
        result = linea("--database-url", conninfo, "db", "status", exit_code=1)
        assert len(result.stderr.strip().splitlines()) == 1
        assert "keyword" in result.stderr and "postgresql://" in result.stderr
        assert "s3" not in result.stderr and "db.internal" not in result.stderr
    result = linea("db", "status", exit_code=1, env={"LINEA_DATABASE_URL": "host=x password=hunter2"})
    assert "hunter2" not in result.stderr


def test_text_that_is_not_a_url_is_not_echoed(linea: CliRun) -> None:
    result = linea("--database-url", "postgres//admin:hunter2@db/x", "db", "status", exit_code=1)
    assert "hunter2" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_short_password_does_not_garble_other_words(linea: CliRun) -> None:
    result = linea("--database-url", "postgresql://acc:acc@127.0.0.1:1/accm_anon", "db", "status", exit_code=5)
    assert 'database "accm_anon" on 127.0.0.1:1' in result.stderr
    assert "***m_anon" not in result.stderr


def test_a_huge_password_or_value_gives_a_short_answer(linea: CliRun) -> None:
    secret = "s" * 200_000
    result = linea("--database-url", f"postgresql://u:{secret}@127.0.0.1:1/x", "db", "status", exit_code=5)
    assert secret[:50] not in result.stderr and len(result.stderr) < 1000
    result = linea("--database-url", "postgresql://u:p@127.0.0.1:1/x?sslmode=" + "v" * 200_000, "db", "status",
                   exit_code=5)
    assert len(result.stderr) < 1000 and "characters)" in result.stderr
    # Text shaped to make a backtracking mask quadratic is refused at once, and briefly.
    result = linea("--database-url", "a://b:" * 40_000, "db", "status", exit_code=1)
    assert len(result.stderr) < 1000


def test_usage_errors_are_exit_2(linea: CliRun) -> None:
    linea("events", "list", "--no-such-option", exit_code=2)
    linea("no-such-group", exit_code=2)


def test_unknown_actor_is_refused(linea: CliRun) -> None:
    result = linea("--as", "nobody@example.com", "events", "list", exit_code=6)
    assert "nobody@example.com" in result.stderr


DB_READS = [["db", "activity"], ["db", "pool"], ["db", "indexes"], ["db", "doctor"], ["db", "snapshots"],
            ["db", "status"], ["db", "history"], ["db", "queries"]]


@pytest.mark.parametrize("args", DB_READS, ids=" ".join)
def test_an_unknown_or_deleted_actor_is_refused_by_the_db_reads_too(linea: CliRun, db, args: list[str]) -> None:  # noqa: ANN001
    from linea_cli.timeutil import utc_now
    from tests.factories import make_user

    make_user(db, email="gone@example.com", role="ADMIN", deleted_at=utc_now())
    live = make_user(db, email="vic@example.com", role="VISITOR")
    for who in ("nobody@example.com", "gone@example.com"):
        result = linea("--as", who, *args, exit_code=6)
        assert result.stderr.startswith(f"error: acting user '{who}' does not exist or is deleted"), result.stderr
        assert result.stdout == ""
    if args != ["db", "queries"]:  # (which needs pg_stat_statements: tests/test_queries.py)
        linea("--as", live["email"], *args)  # a live user reads them as anyone may


def test_on_a_database_without_users_the_db_reads_refuse_an_acting_user(linea: CliRun, empty_database_url: URL) -> None:
    # Nobody can be checked there: refused as `db upgrade --as` is, never taken for the system.
    url = plain_url(empty_database_url)
    result = linea("--database-url", url, "--as", "ada@example.com", "db", "status", exit_code=6)
    assert result.stderr.splitlines()[0].startswith("error: acting user 'ada@example.com' cannot be checked")
    assert "without --as" in result.stderr
    linea("--database-url", url, "db", "status")


@pytest.mark.parametrize(
    "args",
    [["db", "snapshot"], ["db", "activity"], ["db", "status"], ["events", "list", "--all"], ["db", "backup"],
     ["sessions", "purge", "--batch-size", "1", "--quiet"]],
    ids=lambda args: " ".join(args[:2]),
)
def test_the_acting_user_is_looked_up_once_per_command(
    linea: CliRun, db, args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path  # noqa: ANN001
) -> None:
    from linea_cli.services import actors
    from linea_cli.timeutil import utc_now
    from tests.factories import make_session, make_user

    admin = make_user(db, email="ada@example.com", role="ADMIN")
    for _ in range(3):  # three batches of `sessions purge`: three transactions, one lookup
        make_session(db, user=admin, expires_at=utc_now() - timedelta(days=2))
    lookups = []
    looked_up = actors.actor_on

    def counted(connection, reference):  # noqa: ANN001, ANN202
        lookups.append(reference)
        return looked_up(connection, reference)

    monkeypatch.setattr(actors, "actor_on", counted)
    if args == ["db", "backup"]:
        args = [*args, "-o", str(tmp_path / "backup.dump")]
    linea("--as", admin["email"], *args)
    assert lookups == [admin["email"]]
    if args[0] == "sessions":
        assert db.count("sessions") == 0


def test_unexpected_errors_are_one_line_and_exit_70(linea: CliRun, monkeypatch: pytest.MonkeyPatch) -> None:
    from linea_cli.services import reads

    def explode(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("boom")

    monkeypatch.setattr(reads, "events_page", explode)  # what `events list` reads with
    result = linea("events", "list", exit_code=70)
    assert result.stderr.startswith("error: unexpected RuntimeError: boom")
    assert "Traceback" not in result.stderr


def test_root_options_also_come_after_the_command(linea: CliRun, db, database_url: URL) -> None:  # noqa: ANN001
    # As gh and kubectl take their global flags: before the command, after it, or between words.
    result = linea("events", "list", "--database-url", UNREACHABLE, exit_code=5)
    assert '"x" on 127.0.0.1:1' in result.stderr
    assert "Traceback" not in result.stderr
    result = linea("events", "--debug", "list", f"--database-url={UNREACHABLE}", exit_code=5)
    assert "Traceback" in result.stderr and '"x" on 127.0.0.1:1' in result.stderr
    assert "secret" not in result.stdout + result.stderr
    # The later of two wins, as for any option given twice.
    linea("--database-url", UNREACHABLE, "events", "list", "--database-url", plain_url(database_url))
    linea("--database-url", plain_url(database_url), "events", "list", "--database-url", UNREACHABLE, exit_code=5)

    from tests.factories import make_user

    boss = make_user(db, email="boss@example.com", role="ADMIN")
    make_user(db, email="vic@example.com", role="VISITOR")
    make_user(db, email="eve@example.com", role="VISITOR")
    linea("users", "set-role", "eve@example.com", "ADMIN", "--as", "vic@example.com", exit_code=6)
    assert db.scalar("SELECT role::text FROM users WHERE email = 'eve@example.com'") == "VISITOR"
    linea("users", "set-role", "eve@example.com", "ADMIN", "--as", "boss@example.com")
    assert db.scalar("SELECT role::text FROM users WHERE email = 'eve@example.com'") == "ADMIN"
    assert db.scalar("SELECT user_id FROM audit_logs WHERE action = 'UPDATE'") == boss["id"]
    # Three words deep, a group's own place included.
    result = linea("db", "server", "status", "--database-url", "", exit_code=1)
    assert "--database-url / LINEA_DATABASE_URL is empty" in result.stderr


def test_the_debug_the_hint_asks_for_goes_after_the_command_too(linea: CliRun, monkeypatch: pytest.MonkeyPatch) -> None:
    from linea_cli.services import reads

    def explode(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("boom")

    monkeypatch.setattr(reads, "events_page", explode)  # what `events list` reads with
    hinted = linea("events", "list", exit_code=70)
    assert hinted.stderr.splitlines()[-1] == "hint: run with --debug for a traceback"
    result = linea("events", "list", "--debug", exit_code=70)
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "error: unexpected RuntimeError: boom" in result.stderr.splitlines()


def test_an_empty_database_url_is_refused_rather_than_the_embedded_server(linea: CliRun, tmp_path) -> None:  # noqa: ANN001
    result = linea("--database-url", "", "events", "list", exit_code=1)
    assert "--database-url / LINEA_DATABASE_URL is empty" in result.stderr
    assert not (tmp_path / "data" / "postgres").exists()  # no embedded server was started


def test_an_empty_actor_is_refused_rather_than_acting_as_the_system(linea: CliRun, db) -> None:  # noqa: ANN001
    from tests.factories import make_user

    make_user(db, email="eve@example.com", role="VISITOR")
    result = linea("--as", "", "users", "set-role", "eve@example.com", "ADMIN", exit_code=1)
    assert "(--as / LINEA_ACTOR) is empty" in result.stderr
    assert db.scalar("SELECT role::text FROM users") == "VISITOR"


def test_a_value_the_database_cannot_hold_is_invalid_input_without_sql(linea: CliRun, db) -> None:  # noqa: ANN001
    from tests.factories import make_user

    owner = make_user(db, role="OWNER")
    result = linea(
        "events", "create", "--title", "Big", "--start", "2031-01-01", "--owner", owner["email"],
        "--capacity", "99999999999999999999", exit_code=1,
    )
    # Checked at the edge, naming the option (the class-22 backstop is in tests/test_invalid_input.py).
    assert result.stderr.splitlines() == ["error: --capacity must be between 0 and 2147483647, not 99999999999999999999"]
    assert db.count("events") == 0


def test_an_impossible_migration_target_is_invalid_input(linea: CliRun) -> None:
    for revision in ("-1", "99999999999999999999"):
        result = linea("db", "upgrade", "--sql", "--", revision, exit_code=1)
        lines = result.stderr.splitlines()
        assert lines[0].startswith("error: ") and revision in lines[0] and "Traceback" not in result.stderr


def test_unexpected_database_errors_are_one_line_without_the_sql(linea: CliRun, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    from linea_cli.services import reads, venues

    def broken_query(connection, **kwargs):  # noqa: ANN001, ANN003, ANN202
        reads.rows(connection, "SELEC id FROM events WHERE title = 'secret plan'")

    monkeypatch.setattr(reads, "events_page", broken_query)  # a read on psycopg's connection (services/reads.py)
    result = linea("events", "list", exit_code=70)
    assert result.stderr.startswith('error: unexpected SyntaxError: syntax error at or near "SELEC"')
    assert "secret plan" not in result.stderr and "[SQL:" not in result.stderr

    def broken_orm_query(session, **kwargs):  # noqa: ANN001, ANN003, ANN202
        session.execute(sa.text("SELEC id FROM events WHERE title = 'secret plan'"))

    monkeypatch.setattr(venues, "list_venues", broken_orm_query)  # ... and through SQLAlchemy's session
    result = linea("venues", "list", exit_code=70)
    assert result.stderr.startswith('error: unexpected SyntaxError: syntax error at or near "SELEC"')
    assert "secret plan" not in result.stderr and "[SQL:" not in result.stderr
