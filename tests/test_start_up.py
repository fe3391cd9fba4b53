"""What `linea` loads before it answers: help, the version and mistakes in the arguments need no
database code (issue 20: a person feels every import). A Tab press on a database value is checked
in tests/test_completion.py."""

from __future__ import annotations

from tests.harness import run_linea_process

DATABASE_CODE = {"sqlalchemy", "sqlmodel", "psycopg", "alembic", "pydantic_settings"}


def imported_packages(stderr: str) -> set[str]:
    """The top-level packages `python -X importtime` (PYTHONPROFILEIMPORTTIME) reports."""
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_help_the_version_and_argument_errors_load_no_database_code() -> None:
    # A database that does not answer: none of these may even try it.
    env = {"LINEA_DATABASE_URL": "postgresql://linea@127.0.0.1:1/linea", "PYTHONPROFILEIMPORTTIME": "1", "NO_COLOR": "1"}
    for args, exit_code, shown in (
        (["--version"], 0, "linea "),
        (["--help"], 0, "Usage: linea"),
        (["events", "list", "--help"], 0, "Usage: linea events list"),
        (["events", "list", "--limit", "many"], 2, ""),
        (["events", "nosuch"], 2, ""),
        (["waitlist", "import"], 2, ""),
    ):
        result = run_linea_process(args, env=env)
        assert result.returncode == exit_code, (args, result.stderr[-500:])
        assert shown in result.stdout
        imported = imported_packages(result.stderr)
        assert "linea_cli" in imported, args  # the profile was read
        assert imported & DATABASE_CODE == set(), args
