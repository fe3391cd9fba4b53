"""linea used from Python, the way a script uses it: `import linea_cli`, open, read, write, throw away."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy.engine import URL

import linea_cli
from linea_cli.services.events import EventFilter
from tests.factories import make_event, make_user
from tests.harness import CliRun, Database, plain_url


def test_a_script_reads_and_writes_through_units_of_work(db: Database, database_url: URL) -> None:
    owner = make_user(db, email="owner@example.com", role="OWNER")
    make_event(db, owner=owner, slug="library-night")
    with linea_cli.open_database(plain_url(database_url)) as linea_db:
        with linea_db.unit_of_work() as session:
            page = linea_cli.services.events.list_events(session, filters=EventFilter(), limit=5)
            user = linea_cli.services.users.create_user(session, email="Script@Example.com", actor=None)
        assert [event["slug"] for event in page.items] == ["library-night"]
        assert user.email == "script@example.com"
        with pytest.raises(linea_cli.errors.Conflict), linea_db.unit_of_work() as session:
            linea_cli.services.users.create_user(session, email="other@example.com", actor=None)
            linea_cli.services.users.create_user(session, email="script@example.com", actor=None)
    assert db.count("users", "email = 'script@example.com'") == 1
    assert db.count("users", "email = 'other@example.com'") == 0  # the failed unit wrote nothing
    audit = db.one("SELECT action, resource, user_id FROM audit_logs")
    assert (audit.action, audit.resource, audit.user_id) == ("CREATE", "User", None)


def test_without_a_url_the_configured_database_is_opened(
    db: Database, database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINEA_DATABASE_URL", plain_url(database_url))
    with linea_cli.open_database(name="nightly") as linea_db, linea_db.connect() as connection:
        assert connection.exec_driver_sql("SELECT current_setting('application_name')").scalar() == "linea/nightly"
    assert not linea_db.is_embedded


def test_a_database_behind_is_refused_unless_migrated(db: Database, empty_database_url: URL) -> None:
    with pytest.raises(linea_cli.errors.DatabaseUnavailable, match="has no linea schema") as refused:
        linea_cli.open_database(empty_database_url)
    assert refused.value.hint == "run `linea db upgrade`"
    empty = Database(empty_database_url)
    assert empty.scalar("SELECT to_regclass('public.events')") is None
    linea_cli.open_database(empty_database_url, migrate=True).close()
    assert empty.scalar("SELECT to_regclass('public.events')") == "events"
    empty.close()


@pytest.mark.parametrize("tcp", [False, True], ids=["socket", "tcp"])
def test_a_temporary_server_is_migrated_on_request_and_gone_afterwards(tcp: bool) -> None:
    with linea_cli.temporary_server(tcp=tcp) as server:
        assert ("@127.0.0.1:" in server.url) is tcp
        if tcp:  # reachable by every local user: never `trust`, a password is asked
            without_password = server.url.split("@", 1)[1]
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(f"postgresql://postgres@{without_password}", connect_timeout=30).close()
        with linea_cli.open_database(server.url, migrate=True) as linea_db, linea_db.unit_of_work() as session:
            linea_cli.services.users.create_user(session, email="temp@example.com", actor=None)
        check = Database(linea_db.url)
        assert check.scalar("SELECT email FROM users") == "temp@example.com"
        check.close()
    assert not server.data_directory.exists()


def test_importing_linea_cli_loads_no_database_code() -> None:
    probe = "import sys, linea_cli; linea_cli.__version__; print(sorted({'sqlalchemy', 'psycopg'} & set(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_a_script_reads_parameters_where_the_command_line_reads_options(
    linea: CliRun, db: Database, database_url: URL
) -> None:
    """Services speak of their parameters; the command line's boundary names them as options."""
    owner = make_user(db, email="owner@example.com", role="OWNER")
    make_event(db, owner=owner, slug="long-ago", status="DRAFT", start_date=datetime(2001, 1, 1, 10, tzinfo=UTC))
    with linea_cli.open_database(plain_url(database_url)) as linea_db:
        with pytest.raises(linea_cli.errors.InvalidInput) as bad_cursor, linea_db.unit_of_work() as session:
            linea_cli.services.events.list_events(session, filters=EventFilter(), limit=5, after="nonsense")
        with pytest.raises(linea_cli.errors.Conflict) as past, linea_db.unit_of_work() as session:
            linea_cli.services.events.publish_event(session, "long-ago", actor=None)
    assert str(bad_cursor.value) == "invalid cursor 'nonsense' for after: pass the value printed after the previous page"
    assert past.value.hint == "pass force=True to publish it anyway"

    listed = linea("events", "list", "--after", "nonsense", exit_code=1)
    assert listed.stderr == "error: invalid cursor 'nonsense' for --after: pass the value printed after the previous page\n"
    published = linea("--as", "owner@example.com", "events", "publish", "long-ago", exit_code=4)
    assert published.stderr.splitlines()[-1] == "hint: pass --force to publish it anyway"


def test_services_and_the_data_layer_name_no_command_line_option() -> None:
    """A message a service writes names a parameter (`errors.parameter`), never an option: the
    options are the command line's, named at its boundary. Arguments to pg_dump, pg_restore and
    initdb, and advice to run a whole `linea ...` command, are not options of the call."""
    import ast
    import re
    from pathlib import Path

    option = re.compile(r"(?<![\w`-])--[a-z][a-z-]*")
    tools = {"backup.py", "embedded.py", "archive.py"}  # they build other programs' command lines
    found = []
    for path in sorted((Path(linea_cli.__file__).parent).glob("*/*.py")):
        if path.parent.name not in ("services", "db") or path.name in tools:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Module | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and "linea " not in node.value and option.search(node.value)):
                found.append(f"{path.parent.name}/{path.name}:{node.lineno}: {node.value!r}")
    assert found == []
