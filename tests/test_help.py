"""One vocabulary: usage errors in linea's style, enum values in upper case taken in any case,
help without type noise, and `linea --help` ending with the environment and the exit codes."""

from __future__ import annotations

import re

import pytest

from tests.factories import make_event, make_user
from tests.harness import ROOT, CliRun, Database, leaf_commands

USAGE_ERRORS = {
    ("events", "list", "--bogus"): "error: no such option: --bogus",
    ("events", "list", "--limit", "x"): "error: invalid value for --limit: not a whole number",
    ("events", "list", "--limit", "0"): "error: invalid value for --limit: must be at least 1",
    ("events", "list", "--status", "nope"): (
        "error: invalid value for --status: 'nope' is not one of DRAFT, PUBLISHED, CANCELLED, COMPLETED (any case)"
    ),
    ("users", "set-role", "ann@example.com", "boss"): (
        "error: invalid value for ROLE: 'boss' is not one of VISITOR, OWNER, ADMIN (any case)"
    ),
    ("events", "create"): "error: missing option --title",
    ("events", "show"): "error: missing argument SLUG|ID",
    ("events", "bogus"): "error: no such command 'bogus'",
    ("--bogus",): "error: no such option: --bogus",
    ("events", "list", "--fields"): "error: option '--fields' requires an argument",
}


@pytest.mark.parametrize("args", list(USAGE_ERRORS), ids=" ".join)
def test_usage_errors_are_one_error_line_and_a_hint(linea: CliRun, args: tuple[str, ...]) -> None:
    result = linea(*args, exit_code=2)
    error, hint = result.stderr.splitlines()
    assert error == USAGE_ERRORS[args]
    assert hint.startswith("hint: ") and "--help" in hint
    assert result.stdout == ""


def test_a_mistyped_option_is_named_with_what_was_meant(linea: CliRun) -> None:
    hint = linea("events", "list", "--limt", "3", exit_code=2).stderr.splitlines()[1]
    assert hint.startswith("hint: did you mean --limit")


def test_a_group_without_a_command_still_shows_its_help(linea: CliRun) -> None:
    result = linea("events", exit_code=2)
    assert "Commands:" in result.stdout + result.stderr


def test_enum_values_are_taken_in_any_case_and_printed_in_upper_case(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER", email="owner@example.com")
    make_event(db, owner=owner, slug="draft-one", status="DRAFT")
    make_event(db, owner=owner, slug="live-one", status="PUBLISHED")
    listed = linea("events", "list", "--status", "published", "--json").json["items"]
    assert [(item["slug"], item["status"]) for item in listed] == [("live-one", "PUBLISHED")]
    assert linea("users", "create", "vera@example.com", "--role", "Admin", "--json").json["role"] == "ADMIN"
    linea("users", "set-role", "owner@example.com", "admin")
    assert db.scalar("SELECT role::text FROM users WHERE email = 'owner@example.com'") == "ADMIN"
    linea("waitlist", "add", "live-one", "guest@example.net", "--status", "confirmed")
    entries = linea("waitlist", "list", "live-one", "--status", "CONFIRMED", "--json").json["items"]
    assert [entry["status"] for entry in entries] == ["CONFIRMED"]
    checks = linea("db", "doctor", "--json", "--fields", "check,status").json
    assert {check["status"] for check in checks} <= {"OK", "WARN", "FAIL"}


def test_help_has_no_type_noise_and_whole_command_lines(linea: CliRun) -> None:
    for path, _command in leaf_commands():
        text = linea(*path, "--help").stdout
        assert not re.search(r"<(str|int|float|int range|float range)>", text), path
        assert "<int range>" not in text and "1<=x" not in text, path
    for group in ("", "events", "venues", "waitlist", "users", "sessions", "audit", "db", "db server", "profile"):
        text = linea(*group.split(), "--help").stdout
        commands = text.split("Commands:")[1].split("\n\n")[0]
        assert "..." not in commands, group


# Commands that print no record: a document of their own (users export, db prisma-schema), or
# only messages.
WITHOUT_FORMAT = {
    "users export", "db upgrade", "db downgrade", "db reset", "db prisma-schema", "db server start", "db server stop",
    "profile use",
}
LISTS = {"events list", "venues list", "waitlist list", "users list", "sessions list", "audit list"}


def test_every_record_command_takes_format_json_and_fields(linea: CliRun) -> None:
    without, lists = set(), set()
    for path, command in leaf_commands():
        options = {opt for param in command.params for opt in getattr(param, "opts", ())}
        if "--format" in options:
            assert {"-f", "--json", "--fields"} <= options, path
        else:
            without.add(" ".join(path))
        if {"--all", "--limit", "--after"} <= options:
            lists.add(" ".join(path))
    assert without == WITHOUT_FORMAT
    assert lists == LISTS


# The variables linea reads and its exit codes, as `linea --help` and the README list them.
VARIABLES = [
    "LINEA_DATABASE_URL", "LINEA_PROFILE", "LINEA_MIGRATION_DATABASE_URL", "LINEA_ACTOR", "LINEA_DATA_DIR", "LINEA_BACKUP_DIR",
    "LINEA_PG_DUMP", "LINEA_PG_RESTORE", "LINEA_TIMEZONE", "LINEA_LOCK_TIMEOUT", "LINEA_STATEMENT_TIMEOUT",
    "LINEA_MIGRATION_LOCK_TIMEOUT", "LINEA_MIGRATION_ATTEMPTS", "LINEA_READ_DATABASE_URL", "LINEA_REPLICA_MAX_LAG", "LINEA_PGBOUNCER_ADMIN_URL", "LINEA_PAGER", "NO_COLOR",
]
EXIT_CODES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "70", "130 / 143", "141"]


def listed_names(section: str) -> list[str]:
    """The term of each entry of a `linea --help` definition list (entries start 2 spaces in, the
    term stands 2 spaces or more before its meaning)."""
    return [re.split(r" {2,}", line.strip())[0] for line in section.splitlines() if line.startswith("  ") and line[2] != " "]


def test_root_help_ends_with_the_environment_and_the_exit_codes(linea: CliRun) -> None:
    text = linea("--help").stdout
    environment, exit_codes = text.split("Environment:")[1].split("Exit codes:")
    assert listed_names(environment) == VARIABLES
    assert listed_names(exit_codes) == EXIT_CODES


def test_the_readme_names_the_same_variables_and_exit_codes_as_the_help() -> None:
    readme = (ROOT / "README.md").read_text()
    documented_variables = set(re.findall(r"`((?:LINEA_)[A-Z_]+|NO_COLOR)`", readme.split("### Configuration")[1].split("\n\n")[1]))
    assert documented_variables == set(VARIABLES)
    table = readme.split("## Exit codes")[1].split("\n\n")[1]
    documented_codes = [row.split("|")[1].strip() for row in table.splitlines()[2:]]
    assert documented_codes == EXIT_CODES
