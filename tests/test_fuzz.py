"""The fuzz walker: every command, option and argument of linea, fed hostile values.

It walks the Click command tree Typer builds from linea's app (so a new command or option is
walked without anyone listing it), and runs each command in-process once per option or argument
and hostile value, that one parameter hostile and the others valid, as an ADMIN and as a VISITOR.
A run fails the walk when it exits outside the documented codes (70 included), prints a traceback,
lets an exception escape the error boundary, or shows SQL on stderr.

One database serves a whole module (per xdist worker): arguments name rows by id, which no
hostile `update` can change, and nothing that destroys or stops the server is run.
"""

from __future__ import annotations

import random
import re
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.engine import URL

from tests.factories import days_from_now, make_audit_row, make_event, make_session, make_user, make_venue
from tests.harness import Database, admin_execute, invoke, leaf_commands, make_cli_run

# 141 (a closed pipe) is being introduced alongside this walker.
DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 7, 130, 141, 143}

HOSTILE_VALUES = {
    "empty": "",
    # Not compressible, so that PostgreSQL cannot squeeze it under an index's row size limit.
    "10k": "".join(random.Random(10_000).choices(string.ascii_letters + string.digits, k=10_000)),
    # No NUL: an argv string cannot hold one.
    "control": "\x1b[2J\x1b[31mred\x1b]0;pwned\x07\x1b[0m \x01\x08\x7f\r\n\t\x9b",
    "emoji": "🎉👩‍👩‍👧‍👦🏳️‍🌈",
    "sql": "'; DROP TABLE users; --",
    "negative": "-1",
    "huge": "99999999999999999999",
    "bad-date": "2026-02-30T25:61",
    "nan": "nan",
    "inf": "inf",
}

ACTORS = {"ADMIN": "fuzz-admin@example.com", "VISITOR": "fuzz-visitor@example.com"}

# Commands never walked: they destroy the schema or start and stop servers (the suite's own
# server must survive), and none of them takes a value to walk.
NOT_WALKED = {"db reset", "db server start", "db server stop"}

# Flags added to every run of a command: migrations only print their SQL (--sql never touches the
# database); anonymize does not stop at its confirmation, nor seed at a database with data.
ALWAYS = {"db upgrade": ["--sql"], "db downgrade": ["--sql"], "users anonymize": ["--yes"], "db seed": ["--append"]}


_SQL_ON_STDERR = re.compile(
    r"\[SQL:|Background on this error|psycopg|sqlalchemy|\bSELECT\b|\bINSERT INTO\b|\bDELETE FROM\b|\bUPDATE\s+\S+\s+SET\b"
)


@dataclass(frozen=True)
class Fixture:
    """The rows the walk names: valid values for every argument and required option."""

    env: dict[str, str]
    valid: dict[str, str]


COMMANDS = {" ".join(path): command for path, command in leaf_commands() if " ".join(path) not in NOT_WALKED}


@pytest.fixture(scope="module")
def fuzz(
    direct_server_url: URL, server_url: URL, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fixture]:
    name = f"linea_fuzz_{uuid.uuid4().hex[:12]}"
    admin_execute(direct_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    db = Database(direct_server_url.set(database=name))
    admin = make_user(db, email=ACTORS["ADMIN"], role="ADMIN")
    make_user(db, email=ACTORS["VISITOR"], role="VISITOR")
    owner = make_user(db, email="fuzz-owner@example.com", role="OWNER")
    target = make_user(db, email="fuzz-target@example.com", role="VISITOR")
    venue = make_venue(db)
    event = make_event(db, owner=owner, slug="fuzz-event", capacity=10, venue_id=venue["id"])
    make_event(db, owner=owner, status="PUBLISHED", start_date=days_from_now(-3))
    login = make_session(db, user=target)
    make_session(db, user=target, expires_at=days_from_now(-1))
    audit = make_audit_row(db, user_id=admin["id"], metadata={"note": "fuzz"})
    work = tmp_path_factory.mktemp("fuzz")
    (work / "import.csv").write_text("email,status\nfuzz-guest@example.com,PENDING\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as monkeypatch:
        run = make_cli_run(server_url.set(database=name), work, monkeypatch, migration_url=db.url)
        yield Fixture(
            env=run.env,
            valid={
                # arguments, by parameter name
                "event": event["id"], "venue": venue["id"], "user": target["email"], "person": target["email"],
                "email": "fuzz-guest@example.com", "role": "OWNER", "file": "import.csv", "revision": "head",
                "audit_id": audit["id"], "session_id": login["id"], "pid": "1",
                # required options
                "title": "Fuzz night", "start": "2031-01-01", "name": "Fuzz hall", "address": "1 Fuzz Street",
                "city": "Lisbon", "country": "PT", "ended_before": "180d",
            },
        )
    db.close()
    admin_execute(direct_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    # No run may have fallen back to the embedded server (it would start one in the data dir).
    if (work / "data" / "postgres").exists():
        invoke(["db", "server", "stop"], env=run.env, catch_exceptions=True)
        pytest.fail("a hostile run started the embedded server instead of using the test database")


def _runs(
    name: str, command: Any, valid: dict[str, str], *, per_param: int | None = None
) -> Iterator[tuple[str, list[str], str]]:
    """(parameter name, the words after the command's path, the hostile value's label) for every run.

    `per_param` samples that many values for each parameter, a different few for each, so that
    together the parameters still meet every value.
    """
    labels = list(HOSTILE_VALUES)
    params = [p for p in command.params if not getattr(p, "is_flag", False) and p.expose_value]
    for index, hostile_param in enumerate(params):
        chosen = labels if per_param is None else [labels[(index * per_param + k) % len(labels)] for k in range(per_param)]
        for label in chosen:
            options: list[str] = list(ALWAYS.get(name, []))
            arguments: list[str] = []
            for param in params:
                if param is hostile_param:
                    given = HOSTILE_VALUES[label]
                elif param.required:
                    given = valid[param.name]
                else:
                    continue
                if param.param_type_name == "argument":
                    arguments.append(given)
                else:
                    options.append(f"{param.opts[0]}={given}")
            # `--` so that a value starting with "-" stays an argument.
            yield hostile_param.name, [*options, "--", *arguments] if arguments else options, label


def _problem(result: Any, value: str) -> str | None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"{type(result.exception).__name__} escaped the error boundary: {result.exception}"
    if result.exit_code not in DOCUMENTED_EXIT_CODES:
        return f"exit {result.exit_code}: {result.stderr.strip()[:300]}"
    if "Traceback" in result.stdout or "Traceback" in result.stderr:
        return f"a traceback (exit {result.exit_code})"
    # Messages are for a terminal: a control character from the value must come back escaped.
    if "\x1b" in result.stderr or "\x07" in result.stderr:
        return f"a raw control character on stderr (exit {result.exit_code})"
    # The hostile value itself may be quoted back in a message; anything else SQL-like is a leak.
    stderr = result.stderr.replace(value, "").replace(repr(value), "")
    leak = _SQL_ON_STDERR.search(stderr)
    if leak:
        return f"SQL on stderr ({leak.group(0)!r}): {stderr.strip()[:300]}"
    return None


# Every value as an ADMIN (who gets furthest); a few per parameter as a VISITOR, who is refused
# after the same parsing: enough to catch a refusal that crashes, and the walk stays fast.
SAMPLES = {"ADMIN": None, "VISITOR": 3}


def _walk(name: str, fixture: Fixture) -> list[str]:
    path = name.split()
    failures = []
    for actor, email in ACTORS.items():
        for param, words, label in _runs(name, COMMANDS[name], fixture.valid, per_param=SAMPLES[actor]):
            result = invoke(["--as", email, *path, *words], env=fixture.env, catch_exceptions=True)
            problem = _problem(result, HOSTILE_VALUES[label])
            if problem:
                failures.append(f"{name} [{param}={label}] as {actor}: {problem}")
    return failures


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_hostile_values_never_crash_a_command(name: str, fuzz: Fixture) -> None:
    failures = _walk(name, fuzz)
    assert not failures, f"{len(failures)} hostile run(s) of `linea {name}` failed:\n" + "\n".join(failures)


@pytest.mark.parametrize("option", ["--database-url", "--as"])
def test_hostile_root_options_never_crash(option: str, fuzz: Fixture) -> None:
    failures = []
    for label, value in HOSTILE_VALUES.items():
        result = invoke([f"{option}={value}", "events", "list"], env=fuzz.env, catch_exceptions=True)
        problem = _problem(result, value)
        if problem:
            failures.append(f"{option}={label}: {problem}")
    assert not failures, "\n".join(failures)


def test_the_walk_finds_every_command_and_has_valid_values_for_the_rest(fuzz: Fixture) -> None:
    """A guard on the walker itself: a new required option or argument needs a valid value above."""
    assert {"events create", "waitlist import", "users anonymize", "sessions purge", "audit export"} <= set(COMMANDS)
    runs = [run for name, command in COMMANDS.items() for run in _runs(name, command, fuzz.valid)]
    assert len(runs) >= 150 * len(HOSTILE_VALUES)
