"""Database privileges: every command group under real least-privilege roles (`linea db roles`).

The roles are real: `linea db roles` creates the group roles in the test server, each test logs in
with LOGIN roles made members of them, and the server enforces what they may do. A refused
privilege is exit 6 naming the privilege and the table, and nothing changes.

Role names are the server's, not the database's: every test uses its own prefix and drops its
roles afterwards, so parallel workers never meet. The LOGIN roles connect to the server directly
(LINEA_TEST_DIRECT_DATABASE_URL under `make test-compat`): the CI's PgBouncer authenticates from an
auth_file that knows only its own user, so a role made during a test cannot log in through it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.factories import (
    days_from_now,
    make_audit_row,
    make_event,
    make_session,
    make_user,
    make_venue,
    make_waitlist_entry,
)
from tests.harness import CliRun, Database, admin_execute, leaf_commands, plain_url

PASSWORD = "role p@ss:w0rd"  # characters a URL must encode, and that must be masked in every message


@dataclass
class Roles:
    prefix: str
    reader: CliRun
    operator: CliRun
    eraser: CliRun
    logins: dict[str, str]  # group role -> its LOGIN role


def _as(linea: CliRun, url: URL, login: str) -> CliRun:
    """`linea` logged in as `login`, for commands and migrations alike (no superuser URL behind it)."""
    role_url = plain_url(url.set(username=login, password=PASSWORD))
    env = {**linea.env, "LINEA_DATABASE_URL": role_url, "LINEA_MIGRATION_DATABASE_URL": role_url}
    return CliRun(env=env, secrets=(*linea.secrets, PASSWORD))


def _drop_roles(direct_database_url: URL, names: list[str]) -> None:
    with psycopg.connect(plain_url(direct_database_url), autocommit=True) as conn:
        existing = [name for (name,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (names,))]
        for name in existing:  # its grants in the test database, then the role itself
            conn.execute(f'DROP OWNED BY "{name}"')
        for name in existing:
            conn.execute(f'DROP ROLE "{name}"')


@pytest.fixture
def role_prefix(direct_database_url: URL) -> Iterator[str]:
    """A prefix of this test's own; every role named with it is dropped afterwards."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    yield prefix
    with psycopg.connect(plain_url(direct_database_url), autocommit=True) as conn:
        names = [name for (name,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (prefix + "\\_%",))]
    _drop_roles(direct_database_url, names)


@pytest.fixture
def roles(linea: CliRun, role_prefix: str, direct_database_url: URL) -> Roles:
    """The roles applied with `linea db roles`, and a LOGIN member of each job's role."""
    linea("db", "roles", "--prefix", role_prefix, "--force", "--yes")
    logins = {}
    for job in ("reader", "operator", "eraser"):
        login = f"{role_prefix}_{job}_login"
        admin_execute(
            direct_database_url,
            f"CREATE ROLE \"{login}\" LOGIN PASSWORD '{PASSWORD}' IN ROLE \"{role_prefix}_{job}\"",
        )
        logins[job] = login
    return Roles(
        prefix=role_prefix,
        reader=_as(linea, direct_database_url, logins["reader"]),
        operator=_as(linea, direct_database_url, logins["operator"]),
        eraser=_as(linea, direct_database_url, logins["eraser"]),
        logins=logins,
    )


# --- a database with a row for every command to act on ------------------------------------------


@dataclass
class World:
    admin: dict
    owner: dict
    visitor: dict
    spare_user: dict
    deleted_user: dict
    venue: dict
    spare_venue: dict
    deleted_venue: dict
    event: dict
    draft: dict
    spare_event: dict
    deleted_event: dict
    ended: dict
    entries: list[dict]
    live_session: dict
    audit_row: dict
    csv: Path


def make_world(db: Database, tmp_path: Path) -> World:
    admin = make_user(db, role="ADMIN", email="admin@example.com")
    owner = make_user(db, role="OWNER", email="owner@example.com")
    visitor = make_user(db, email="visitor@example.com")
    venue = make_venue(db)
    event = make_event(db, owner=owner, venue_id=venue["id"], capacity=10)
    ended = make_event(db, owner=owner, start_date=days_from_now(-10), end_date=days_from_now(-9))
    world = World(
        admin=admin, owner=owner, visitor=visitor,
        spare_user=make_user(db, email="spare@example.com"),
        deleted_user=make_user(db, email="gone@example.com", deleted_at=days_from_now(-1)),
        venue=venue, spare_venue=make_venue(db), deleted_venue=make_venue(db, deleted_at=days_from_now(-1)),
        event=event, draft=make_event(db, owner=owner, status="DRAFT"), spare_event=make_event(db, owner=owner),
        deleted_event=make_event(db, owner=owner, deleted_at=days_from_now(-1)), ended=ended,
        entries=[make_waitlist_entry(db, event=event, email=f"guest{n}@example.net") for n in range(4)],
        live_session=make_session(db, user=visitor),
        audit_row=make_audit_row(db, resource_id=event["id"]),
        csv=tmp_path / "guests.csv",
    )
    make_waitlist_entry(db, event=ended, email="past-guest@example.net")  # for waitlist retention
    make_session(db, user=visitor, expires_at=days_from_now(-30))  # for sessions purge
    world.csv.write_text("email\nimported1@example.net\nimported2@example.net\n")
    return world


# What a role may not change, command by command: the words after `linea`, from the world's rows.
WRITES: dict[str, Callable[[World], list[str]]] = {
    "events create": lambda w: ["events", "create", "--title", "Role test", "--start", "2031-05-01T10:00", "--owner", w.owner["email"]],
    "events update": lambda w: ["events", "update", w.event["slug"], "--title", "Renamed"],
    "events publish": lambda w: ["events", "publish", w.draft["slug"]],
    "events cancel": lambda w: ["events", "cancel", w.spare_event["slug"]],
    "events complete": lambda w: ["events", "complete", w.ended["slug"]],
    "events delete": lambda w: ["events", "delete", w.draft["slug"]],
    "events restore": lambda w: ["events", "restore", w.deleted_event["slug"]],
    "events complete-past": lambda w: ["events", "complete-past"],
    "venues create": lambda w: ["venues", "create", "--name", "Hall", "--address", "1 Road", "--city", "Porto", "--country", "PT"],
    "venues update": lambda w: ["venues", "update", w.venue["id"], "--name", "Renamed hall"],
    "venues delete": lambda w: ["venues", "delete", w.spare_venue["id"]],
    "venues restore": lambda w: ["venues", "restore", w.deleted_venue["id"]],
    "waitlist add": lambda w: ["waitlist", "add", w.event["slug"], "new-guest@example.net"],
    "waitlist confirm": lambda w: ["waitlist", "confirm", w.event["slug"], w.entries[0]["email"]],
    "waitlist cancel": lambda w: ["waitlist", "cancel", w.event["slug"], w.entries[1]["email"]],
    "waitlist remove": lambda w: ["waitlist", "remove", w.event["slug"], w.entries[2]["email"]],
    "waitlist promote": lambda w: ["waitlist", "promote", w.event["slug"]],
    "waitlist retention": lambda w: ["--as", w.admin["email"], "waitlist", "retention", "--ended-before", "1d"],
    "waitlist import": lambda w: ["waitlist", "import", w.event["slug"], str(w.csv)],
    "users create": lambda w: ["users", "create", "newcomer@example.com"],
    "users update": lambda w: ["users", "update", w.visitor["email"], "--name", "Renamed"],
    "users set-role": lambda w: ["users", "set-role", w.spare_user["email"], "OWNER"],
    "users delete": lambda w: ["users", "delete", w.spare_user["email"]],
    "users restore": lambda w: ["users", "restore", w.deleted_user["email"]],
    "users anonymize": lambda w: ["users", "anonymize", w.visitor["email"], "--yes"],
    "sessions revoke": lambda w: ["sessions", "revoke", w.live_session["id"]],
    "sessions purge": lambda w: ["sessions", "purge"],
    "db snapshot": lambda w: ["db", "snapshot"],
    "db seed": lambda w: ["db", "seed", "--append", "--users", "2", "--venues", "1", "--events", "1", "--waitlist", "1", "--sessions", "1"],
}
# Commands that change the schema or the server's roles: for neither the reader nor the operator.
SCHEMA_CHANGES: dict[str, Callable[[World], list[str]]] = {
    "db reset": lambda w: ["db", "reset", "--force", "--yes"],
    "db downgrade": lambda w: ["db", "downgrade", "-1", "--force", "--yes"],
    "db roles": lambda w: ["db", "roles", "--prefix", "nobody_at_all", "--force", "--yes"],
}
# What the reader may run.
READS: dict[str, Callable[[World], list[str]]] = {
    "events list": lambda w: ["events", "list"],
    "events show": lambda w: ["events", "show", w.event["slug"]],
    "venues list": lambda w: ["venues", "list"],
    "venues show": lambda w: ["venues", "show", w.venue["id"]],
    "waitlist list": lambda w: ["waitlist", "list", w.event["slug"]],
    "waitlist stats": lambda w: ["waitlist", "stats", w.event["slug"]],
    "users list": lambda w: ["users", "list"],
    "users show": lambda w: ["users", "show", w.visitor["email"]],
    "sessions list": lambda w: ["sessions", "list"],
    "audit list": lambda w: ["audit", "list"],
    "audit show": lambda w: ["audit", "show", w.audit_row["id"]],
    "audit export": lambda w: ["audit", "export"],
    "db status": lambda w: ["db", "status"],
    "db doctor": lambda w: ["db", "doctor"],
    "db history": lambda w: ["db", "history"],
    "db snapshots": lambda w: ["db", "snapshots"],
    "db indexes": lambda w: ["db", "indexes"],
    "db pool": lambda w: ["db", "pool"],
    "db activity": lambda w: ["db", "activity"],
}
# Reads the reader is refused (exit 6): exports of personal data are recorded in the audit log,
# which the reader may not add to; an access request and an archive must be whole, and the reader
# may not read `sessions.token`. The operator runs them.
WHOLE_READS: dict[str, Callable[[World], list[str]]] = {
    "waitlist export": lambda w: ["waitlist", "export", w.event["slug"], "-o", str(w.csv.with_name("export.csv"))],
    "users export": lambda w: ["users", "export", w.visitor["email"]],
    "db backup": lambda w: ["db", "backup", "-o", str(w.csv.with_name("backup.dump"))],
}
# Tested elsewhere, or not about the database's privileges.
ELSEWHERE = {
    "users verify-erased",  # a table it may not read is its own outcome, "not verified" (issue 17, item 4)
    "db upgrade", "db restore",  # below, from a database behind head and from an archive
    "db prisma-schema", "db server status", "db server start", "db server stop",  # no database privileges involved
    "profile list", "profile show", "profile use", "profile add", "profile remove",  # the user's config file, no database
    "db queries",  # pg_stat_statements' own rule (pg_read_all_stats): test_queries.py
    "db cancel", "db terminate",  # the server's own rule (the session's role, pg_signal_backend): test_activity.py
}

_REFUSED = re.compile(
    r"^error: role '[^']+' (lacks the (SELECT|INSERT|UPDATE|DELETE|TRUNCATE|USAGE|CREATE|TEMPORARY) privilege on "
    r"(table|sequence|schema|database) \w+"
    # a schema change or a GRANT, in words: what it tried to do to which object, and what that needs
    r"|may not [a-z ]+ (table|index|sequence|schema|database|view) \w+: (must be its owner|needs the TRIGGER privilege)[^(]* \("
    r"|may not do this: .+)"
    # pg_dump's and pg_restore's own words (db backup, db restore)
    r"|^error: (.+: )?pg_(dump|restore): .*ERROR: +(permission denied for \w+ \w+|must be owner of \w+ \w+)$"
)


def snapshot(db: Database) -> dict[str, str]:
    """Every row of every table in public and linea, as one digest per table."""
    tables = db.all(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name FROM pg_tables "
        "WHERE schemaname IN ('public', 'linea') ORDER BY 1"
    )
    return {
        row.name: db.scalar(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {row.name} t")
        for row in tables
    }


def assert_refused(run: CliRun, args: list[str], db: Database, *, table: str | None = None) -> str:
    before = snapshot(db)
    result = run(*args, exit_code=6)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and _REFUSED.match(errors[0]), f"`linea {' '.join(args)}`: {result.stderr}"
    if table is not None:
        assert f" {table} " in errors[0], errors[0]
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    assert snapshot(db) == before, f"`linea {' '.join(args)}` changed the database"
    return errors[0]


def test_every_command_is_classified() -> None:
    """A new command must say how it behaves under the roles, here, before it ships."""
    commands = {" ".join(path) for path, _ in leaf_commands()}
    classified = {*WRITES, *SCHEMA_CHANGES, *READS, *WHOLE_READS, *ELSEWHERE}
    assert commands == classified, f"unclassified: {sorted(commands - classified)}; gone: {sorted(classified - commands)}"


# --- the reader ---------------------------------------------------------------------------------


def test_reader_runs_every_read_command(roles: Roles, db: Database, tmp_path: Path) -> None:
    world = make_world(db, tmp_path)
    before = snapshot(db)
    for name, args in READS.items():
        assert roles.reader(*args(world)).stdout, name
    assert snapshot(db) == before
    # Sessions are listed without the one column the reader may not read.
    listed = roles.reader("sessions", "list", "--json").json["items"]
    assert world.live_session["id"] in {row["id"] for row in listed} and len(listed) == 2
    assert all(row["fingerprint"] is None for row in listed)


def test_reader_is_refused_every_write_and_nothing_changes(roles: Roles, db: Database, tmp_path: Path) -> None:
    world = make_world(db, tmp_path)
    for name, args in {**WRITES, **SCHEMA_CHANGES, **WHOLE_READS}.items():
        line = assert_refused(roles.reader, args(world), db)
        if name in WHOLE_READS:
            assert re.search(r"(on|for) table (sessions|audit_logs)", line), line
    assert not world.csv.with_name("export.csv").exists() and not world.csv.with_name("backup.dump").exists()
    # The privilege and the table, in the server's words too.
    line = assert_refused(roles.reader, WRITES["waitlist add"](world), db, table="waitlist_entries")
    assert line.startswith(f"error: role '{roles.logins['reader']}' lacks the INSERT privilege on table waitlist_entries")
    line = assert_refused(roles.reader, WRITES["users update"](world), db, table="users")
    assert "lacks the UPDATE privilege on table users" in line
    line = assert_refused(roles.reader, WRITES["sessions purge"](world), db, table="sessions")
    assert "lacks the DELETE privilege on table sessions" in line


def test_a_read_command_refused_a_table_names_the_privilege_and_the_table(
    roles: Roles, db: Database, direct_database_url: URL, tmp_path: Path
) -> None:
    # `users show` reads through psycopg alone (services/reads.py): the refusal still names the
    # privilege and the table, as the ORM's statements did.
    world = make_world(db, tmp_path)
    admin_execute(direct_database_url, f'REVOKE SELECT ON audit_logs FROM "{roles.prefix}_reader"')
    result = roles.reader("users", "show", world.owner["email"], exit_code=6)
    assert result.stderr.splitlines()[0] == (
        f"error: role '{roles.logins['reader']}' lacks the SELECT privilege on table audit_logs"
        " (permission denied for table audit_logs); its transaction was rolled back"
    )


def test_reader_cannot_read_session_tokens(roles: Roles, direct_database_url: URL, db: Database, tmp_path: Path) -> None:
    world = make_world(db, tmp_path)
    url = direct_database_url.set(username=roles.logins["reader"], password=PASSWORD)
    with psycopg.connect(plain_url(url)) as conn:
        assert conn.execute("SELECT count(id) FROM sessions").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT token FROM sessions WHERE id = %s", (world.live_session["id"],))


# --- the operator and the eraser ----------------------------------------------------------------


def test_operator_runs_every_write_command(roles: Roles, db: Database, tmp_path: Path) -> None:
    world = make_world(db, tmp_path)
    for name, args in WRITES.items():
        if name == "users anonymize":
            continue
        roles.operator(*args(world))
    assert db.scalar("SELECT count(*) FROM events WHERE title = 'Role test'") == 1
    assert db.scalar("SELECT count(*) FROM waitlist_entries WHERE email LIKE 'imported%'") == 2
    assert db.scalar("SELECT deleted_at FROM sessions WHERE id = :id", id=world.live_session["id"]) is not None
    assert db.scalar("SELECT count(*) FROM sessions WHERE expires_at < now() - interval '1 day'") == 0
    assert db.scalar("SELECT role::text FROM users WHERE id = :id", id=world.spare_user["id"]) == "OWNER"
    # Every change was audited under the operator's grant to add to the log.
    assert db.scalar("SELECT count(*) FROM audit_logs WHERE action = 'CREATE' AND resource = 'Event'") >= 1
    for args in (*READS.values(), *WHOLE_READS.values()):
        roles.operator(*args(world))
    assert "guest3@example.net" in world.csv.with_name("export.csv").read_text()  # through COPY
    assert {row["fingerprint"] is not None for row in roles.operator("sessions", "list", "--json").json["items"]} == {True}


def test_operator_runs_a_large_import_through_its_journal(roles: Roles, db: Database, tmp_path: Path) -> None:
    world = make_world(db, tmp_path)
    big = tmp_path / "big.csv"
    big.write_text("email\n" + "".join(f"bulk{n}@example.net\n" for n in range(12_000)))
    counts = roles.operator("waitlist", "import", world.spare_event["slug"], str(big), "--json").json
    assert counts["inserted"] == 12_000
    assert db.scalar("SELECT count(*) FROM linea.imports") == 0  # the journal row came and went
    checks = roles.reader("db", "doctor", "--json").json  # the reader may read the journal
    assert next(check for check in checks if check["check"] == "unfinished imports")["status"] == "OK"


def test_doctor_as_the_reader_runs_every_check_and_says_which_sessions_it_cannot_see(
    roles: Roles, direct_database_url: URL
) -> None:
    """Without pg_read_all_stats a role sees other roles' sessions without their state: doctor says
    so rather than calling them fine; every check still runs (exit 0, nothing UNKNOWN)."""
    with psycopg.connect(plain_url(direct_database_url)) as other:  # the superuser's, idle in a transaction
        other.execute("SELECT 1")
        checks = {check["check"]: check for check in roles.reader("db", "doctor", "--json").json}
    assert [name for name, check in checks.items() if check["status"] == "UNKNOWN"] == []
    for name in ("long-running queries", "idle in transaction"):
        assert re.fullmatch(
            r"none over 1 min; [1-9]\d* session\(s\) of other roles not visible to this one \(grant it pg_read_all_stats\)",
            checks[name]["detail"],
        ), checks[name]["detail"]


def test_operator_may_only_add_to_the_audit_log(roles: Roles, db: Database, tmp_path: Path, direct_database_url: URL) -> None:
    world = make_world(db, tmp_path)
    url = direct_database_url.set(username=roles.logins["operator"], password=PASSWORD)
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        for statement in ("UPDATE audit_logs SET action = 'X'", "DELETE FROM audit_logs", "TRUNCATE audit_logs"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table audit_logs"):
                conn.execute(statement)
    # An erasure rewrites the person's audit rows: refused to the operator, whole, with nothing erased...
    roles.operator("users", "update", world.visitor["email"], "--name", "Visiting Person")  # an audit row naming them
    line = assert_refused(roles.operator, WRITES["users anonymize"](world), db, table="audit_logs")
    assert "lacks the UPDATE privilege on table audit_logs" in line
    assert db.scalar("SELECT email FROM users WHERE id = :id", id=world.visitor["id"]) == world.visitor["email"]
    # ...and done by the eraser, which may scrub those columns (the append-only trigger guards the rest).
    roles.eraser(*WRITES["users anonymize"](world))
    assert db.scalar("SELECT email FROM users WHERE id = :id", id=world.visitor["id"]) != world.visitor["email"]


def test_operator_cannot_change_the_schema(roles: Roles, linea: CliRun, db: Database, tmp_path: Path) -> None:
    world = make_world(db, tmp_path)
    for args in SCHEMA_CHANGES.values():
        assert_refused(roles.operator, args(world), db)
    # A database behind head: the operator cannot migrate it either.
    linea("db", "downgrade", "-1", "--force", "--yes")
    revision = db.scalar("SELECT version_num FROM linea.alembic_version")
    line = assert_refused(roles.operator, ["db", "upgrade", "--no-backup"], db)
    assert "lacks the SELECT privilege" not in line, line
    assert db.scalar("SELECT version_num FROM linea.alembic_version") == revision


def test_operator_refused_a_repair_says_what_it_tried(roles: Roles, linea: CliRun, db: Database, tmp_path: Path) -> None:
    """At head with nothing to repair `db upgrade` changes nothing and succeeds for any role; a
    repair (the audit log's append-only trigger dropped) is a schema change the operator may not
    make: said as what it tried, not as a SELECT it never lacked."""
    make_world(db, tmp_path)
    roles.operator("db", "upgrade", "--no-backup")
    roles.reader("db", "upgrade", "--no-backup")
    db.execute("DROP TRIGGER audit_logs_append_only ON audit_logs")
    line = assert_refused(roles.operator, ["db", "upgrade", "--no-backup"], db)
    assert re.match(
        rf"error: role '{roles.logins['operator']}' may not create a trigger on table audit_logs: needs the TRIGGER "
        r"privilege, or to be its owner \(permission denied for table audit_logs\)", line
    ), line
    assert not db.scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_logs_append_only'")


def test_operator_cannot_restore_an_archive(roles: Roles, linea: CliRun, db: Database, tmp_path: Path) -> None:
    make_world(db, tmp_path)
    archive = tmp_path / "before.dump"
    linea("db", "backup", "-o", str(archive))
    assert_refused(roles.operator, ["db", "restore", str(archive), "--force", "--yes"], db)


# --- linea db roles -----------------------------------------------------------------------------


def privileges(db: Database, prefix: str) -> set[tuple]:
    """Every privilege, membership and attribute of the roles named with `prefix`."""
    like = prefix + "\\_%"
    found: set[tuple] = set()
    found |= {("table", *row) for row in db.all(
        "SELECT grantee, table_schema, table_name, privilege_type FROM information_schema.role_table_grants "
        "WHERE grantee LIKE :like", like=like)}
    found |= {("column", *row) for row in db.all(
        "SELECT grantee, table_name, column_name, privilege_type FROM information_schema.column_privileges "
        "WHERE grantee LIKE :like", like=like)}
    found |= {("member", *row) for row in db.all(
        "SELECT r.rolname, m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
        "JOIN pg_roles m ON m.oid = a.member WHERE m.rolname LIKE :like", like=like)}
    found |= {("role", *row) for row in db.all(
        "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole FROM pg_roles WHERE rolname LIKE :like", like=like)}
    found |= {("database", row.datacl) for row in db.all("SELECT datacl::text FROM pg_database WHERE datname = current_database()")}
    return found


def test_roles_prints_the_sql_and_changes_nothing(linea: CliRun, db: Database, role_prefix: str) -> None:
    sql = linea("db", "roles", "--sql", "--prefix", role_prefix).stdout
    assert f'CREATE ROLE "{role_prefix}_reader" NOLOGIN' in sql
    assert re.search(rf'GRANT SELECT \([^)]*\) ON "public"."sessions" TO "{role_prefix}_reader"', sql)
    assert '"token"' not in sql.split("GRANT SELECT (")[1].split(")")[0]
    assert "audit_logs, events, sessions, users, venues, waitlist_entries" in sql  # the tables it grants on, named
    assert db.scalar("SELECT count(*) FROM pg_roles WHERE rolname LIKE :like", like=role_prefix + "\\_%") == 0
    # The printed SQL, run by hand, does what the command does.
    db.execute(sql.replace("BEGIN;", "").replace("COMMIT;", ""))
    assert db.scalar("SELECT count(*) FROM pg_roles WHERE rolname LIKE :like AND NOT rolcanlogin", like=role_prefix + "\\_%") == 4


def test_roles_are_idempotent_audited_and_follow_new_tables(
    linea: CliRun, db: Database, role_prefix: str
) -> None:
    admin = make_user(db, role="ADMIN", email="chief@example.com")
    linea("--as", admin["email"], "db", "roles", "--prefix", role_prefix, "--force", "--yes")
    first = privileges(db, role_prefix)
    linea("db", "roles", "--prefix", role_prefix, "--force", "--yes")
    assert privileges(db, role_prefix) == first
    reader, operator = f"{role_prefix}_reader", f"{role_prefix}_operator"
    assert ("column", reader, "sessions", "token", "SELECT") not in first
    assert ("column", reader, "sessions", "expires_at", "SELECT") in first
    assert ("table", operator, "public", "audit_logs", "INSERT") in first
    assert ("table", operator, "public", "audit_logs", "UPDATE") not in first
    audit = db.all("SELECT user_id, metadata FROM audit_logs WHERE action = 'GRANT' ORDER BY created_at")
    assert [row.user_id for row in audit] == [admin["id"], None]
    assert audit[0].metadata["roles"] == [reader, operator, f"{role_prefix}_eraser", f"{role_prefix}_migrator"]
    # A table the platform adds later: granted once the roles are applied again, as the output says.
    db.execute("CREATE TABLE categories (id text PRIMARY KEY, name text NOT NULL)")
    assert not db.scalar("SELECT has_table_privilege(:role, 'public.categories', 'SELECT')", role=reader)
    result = linea("db", "roles", "--prefix", role_prefix, "--force", "--yes")
    assert "granted on the 7 tables" in result.stderr
    assert db.scalar("SELECT has_table_privilege(:role, 'public.categories', 'SELECT')", role=reader)
    assert db.scalar("SELECT has_table_privilege(:role, 'public.categories', 'INSERT')", role=operator)


def test_roles_need_an_admin_and_confirmation(linea: CliRun, db: Database, role_prefix: str) -> None:
    visitor = make_user(db, email="visitor@example.com")
    linea("--as", visitor["email"], "db", "roles", "--prefix", role_prefix, "--force", "--yes", exit_code=6)
    result = linea("db", "roles", "--prefix", role_prefix, exit_code=6)  # not the embedded server: --force
    assert "not the embedded server" in result.stderr
    linea("db", "roles", "--prefix", "Bad-Prefix", "--force", "--yes", exit_code=1)
    assert db.scalar("SELECT count(*) FROM pg_roles WHERE rolname LIKE :like", like=role_prefix + "\\_%") == 0
    assert db.scalar("SELECT count(*) FROM audit_logs WHERE action = 'GRANT'") == 0


def test_roles_refuse_existing_roles_linea_did_not_make(
    linea: CliRun, db: Database, role_prefix: str, direct_database_url: URL
) -> None:
    """Roles someone else made under linea's names are neither trusted nor altered: granting to a
    LOGIN SUPERUSER "reader" would put a superuser behind a table that says "no writes"."""
    reader, operator, eraser = (f"{role_prefix}_{job}" for job in ("reader", "operator", "eraser"))
    admin_execute(
        direct_database_url,
        f'CREATE ROLE "{reader}" LOGIN SUPERUSER; GRANT pg_write_all_data TO "{reader}"; '
        f'CREATE ROLE "{role_prefix}_other" NOLOGIN; CREATE ROLE "{operator}" NOLOGIN NOINHERIT IN ROLE "{role_prefix}_other"; '
        f'CREATE ROLE "{eraser}" NOLOGIN',
    )
    db.execute(f'CREATE TABLE crm_notes (id text PRIMARY KEY); ALTER TABLE crm_notes OWNER TO "{eraser}"')
    before = privileges(db, role_prefix)
    result = linea("db", "roles", "--prefix", role_prefix, "--force", "--yes", exit_code=4)
    lines = result.stderr.splitlines()
    assert lines[0] == "error: 3 of the roles exist and are not what linea makes; nothing was changed", result.stderr
    assert lines[1:4] == [
        f"  {reader}: SUPERUSER; LOGIN; a member of pg_write_all_data",
        f"  {operator}: NOINHERIT; a member of {role_prefix}_other",
        f"  {eraser}: the owner of crm_notes",
    ], result.stderr
    assert lines[4].startswith("hint: drop them") and "--prefix" in lines[4] and len(lines) == 5
    # Nothing granted, created or altered, and no GRANT in the audit log.
    assert privileges(db, role_prefix) == before
    assert db.scalar("SELECT rolsuper AND rolcanlogin FROM pg_roles WHERE rolname = :r", r=reader)
    assert db.scalar("SELECT count(*) FROM pg_roles WHERE rolname = :r", r=f"{role_prefix}_migrator") == 0
    assert db.scalar("SELECT count(*) FROM audit_logs WHERE action = 'GRANT'") == 0
    # --sql says so in comments, and the printed SQL itself stops at its check when run by hand.
    sql = linea("db", "roles", "--sql", "--prefix", role_prefix).stdout
    assert f"-- {reader}: SUPERUSER; LOGIN; a member of pg_write_all_data: this script stops at its check" in sql
    with psycopg.connect(plain_url(db.url)) as conn, pytest.raises(psycopg.errors.RaiseException, match=f"role {reader} exists"):
        conn.execute(sql.replace("BEGIN;", "").replace("COMMIT;", ""))
    assert privileges(db, role_prefix) == before
    # Once they are gone (or under another prefix), the roles are made as linea makes them.
    _drop_roles(direct_database_url, [reader, operator, eraser])
    linea("db", "roles", "--prefix", role_prefix, "--force", "--yes")
    assert not db.scalar("SELECT bool_or(rolsuper OR rolcanlogin) FROM pg_roles WHERE rolname LIKE :like", like=role_prefix + "\\_%")


@pytest.mark.parametrize("prefix", ["pg", "pg_x", "Bad-Prefix", "9lives", "_x", "x" * 55, "caf\u00e9"])
def test_roles_refuse_a_prefix_the_server_would_refuse_or_cut(linea: CliRun, db: Database, prefix: str) -> None:
    for args in (["--sql"], ["--force", "--yes"]):
        result = linea("db", "roles", "--prefix", prefix, *args, exit_code=1)
        assert result.stdout == "" and result.stderr.startswith("error: --prefix "), result.stderr
        assert [line.split(":")[0] for line in result.stderr.splitlines()] == ["error", "hint"], result.stderr
    assert db.scalar("SELECT count(*) FROM audit_logs WHERE action = 'GRANT'") == 0


def test_roles_take_the_longest_prefix_postgresql_keeps(linea: CliRun, db: Database, role_prefix: str) -> None:
    longest = f"{role_prefix}_" + "x" * (54 - len(role_prefix) - 1)
    linea("db", "roles", "--prefix", longest, "--force", "--yes")
    names = {row.rolname for row in db.all("SELECT rolname FROM pg_roles WHERE rolname LIKE :like", like=longest + "\\_%")}
    assert names == {f"{longest}_{job}" for job in ("reader", "operator", "eraser", "migrator")}
    assert max(len(name) for name in names) == 63
    linea("db", "roles", "--prefix", longest + "x", "--sql", exit_code=1)


def test_a_reserved_name_the_server_refuses_is_invalid_input(db: Database) -> None:
    """Whatever statement meets it, a name the server reserves (pg_...) is exit 1, not 70."""
    from linea_cli.cli import translate_error
    from linea_cli.cli.context import CliState

    with psycopg.connect(plain_url(db.url)) as conn, pytest.raises(psycopg.errors.ReservedName) as raised:
        conn.execute("CREATE SCHEMA pg_linea_test")
    error = translate_error(raised.value, CliState())
    assert error.exit_code == 1 and error.message.startswith("the database refused a name: "), error.message


def test_a_refused_schema_change_or_grant_is_said_in_words(
    db: Database, role_prefix: str, direct_database_url: URL
) -> None:
    """The privilege is derived only from statements that read or write rows; a GRANT, an ALTER or
    a statement linea cannot see is said as what it was, never as a SELECT it did not lack."""
    from linea_cli.db.refusals import privilege_refusal

    login = f"{role_prefix}_bare"
    admin_execute(direct_database_url, f"CREATE ROLE \"{login}\" LOGIN PASSWORD '{PASSWORD}'")
    db.execute(f'GRANT USAGE ON SCHEMA linea TO "{login}"')
    url = direct_database_url.set(username=login, password=PASSWORD)
    cases = [
        ('GRANT SELECT ON "public"."events", "public"."users" TO PUBLIC',
         "may not grant privileges on table events: must be its owner, or hold the privileges WITH GRANT OPTION "
         "(permission denied for table events)"),
        ("ALTER TABLE users ADD COLUMN nickname text",
         "may not alter table users: must be its owner (must be owner of table users)"),
        ("CREATE INDEX ON venues (city)", "may not create an index on table venues: must be its owner (must be owner of table venues)"),
        ('ALTER TABLE ONLY "public"."venues" ADD COLUMN x text', "may not alter table venues: must be its owner"),
        ("UPDATE events SET title = 'x'", "lacks the UPDATE privilege on table events (permission denied for table events)"),
        ("SELECT id FROM events FOR UPDATE", "lacks the UPDATE privilege on table events"),
        ("COPY waitlist_entries FROM STDIN", "lacks the INSERT privilege on table waitlist_entries"),
        # several statements at once, or a DO block: which one was refused is unknown
        ("DO $$ BEGIN EXECUTE 'GRANT SELECT ON events TO PUBLIC'; END $$",
         "may not do this: permission denied for table events"),
    ]
    for statement, words in cases:
        with psycopg.connect(plain_url(url)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as raised:
            conn.execute(statement)
        message = privilege_refusal(raised.value, statement, login).message
        assert message.startswith(f"role '{login}' {words}"), (statement, message)
    # No statement at all (an error raised outside SQLAlchemy): the server's words, the role named.
    message = privilege_refusal(raised.value, None, login).message
    assert message == f"role '{login}' may not do this: permission denied for table events; its transaction was rolled back"


def test_roles_applied_by_a_role_that_may_not_grant_says_so(
    roles: Roles, linea: CliRun, db: Database, direct_database_url: URL, tmp_path: Path
) -> None:
    make_world(db, tmp_path)
    login = f"{roles.prefix}_granter"
    admin_execute(direct_database_url, f"CREATE ROLE \"{login}\" LOGIN CREATEROLE PASSWORD '{PASSWORD}'")
    run = _as(linea, direct_database_url, login)
    line = assert_refused(run, ["db", "roles", "--prefix", roles.prefix, "--force", "--yes"], db)
    assert re.match(
        rf"error: role '{login}' may not (revoke|grant) privileges on table \w+: must be its owner, or hold the "
        r"privileges WITH GRANT OPTION \(permission denied for table \w+\)", line
    ), line


def test_a_backup_row_level_security_would_cut_short_is_refused(
    roles: Roles, linea: CliRun, db: Database, tmp_path: Path
) -> None:
    make_world(db, tmp_path)
    db.execute("CREATE TABLE crm_notes (id text PRIMARY KEY, body text); INSERT INTO crm_notes VALUES ('n1', 'hidden'); "
               "ALTER TABLE crm_notes ENABLE ROW LEVEL SECURITY; CREATE POLICY own_notes ON crm_notes USING (false)")
    linea("db", "roles", "--prefix", roles.prefix, "--force", "--yes")  # the operator may read the new table
    archive = tmp_path / "backup.dump"
    result = roles.operator("db", "backup", "-o", str(archive), exit_code=6)
    errors = [line for line in result.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert errors[0].startswith(
        f"error: pg_dump: row-level security applies to role '{roles.logins['operator']}' on table crm_notes, "
        "so the archive would miss the rows it hides"
    ), result.stderr
    assert errors[1] == "hint: back up as a role with BYPASSRLS, or as the owner of the tables", result.stderr
    assert not archive.exists()


# --- a privilege missing on one table, found through COPY ---------------------------------------


def test_copy_refused_names_the_privilege_and_table(
    linea: CliRun, db: Database, role_prefix: str, direct_database_url: URL, tmp_path: Path
) -> None:
    world = make_world(db, tmp_path)
    login = f"{role_prefix}_nowait"
    admin_execute(direct_database_url, f"CREATE ROLE \"{login}\" LOGIN PASSWORD '{PASSWORD}'")
    db.execute(
        f'GRANT USAGE ON SCHEMA linea TO "{login}"; GRANT SELECT ON ALL TABLES IN SCHEMA linea TO "{login}"; '
        f'GRANT SELECT ON events, users, venues, audit_logs TO "{login}"; GRANT INSERT ON audit_logs TO "{login}"; '
        f'GRANT SELECT ("event_id", "status", "deleted_at", "created_at", "id") ON waitlist_entries TO "{login}"'
    )
    run = _as(linea, direct_database_url, login)
    out = tmp_path / "export.csv"
    line = assert_refused(run, ["waitlist", "export", world.event["slug"], "-o", str(out)], db, table="waitlist_entries")
    assert "lacks the SELECT privilege on table waitlist_entries" in line
    assert not out.exists()


# --- constraints nobody expected ------------------------------------------------------------------


def test_a_platform_check_constraint_is_a_conflict_in_words(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    db.execute("ALTER TABLE events ADD CONSTRAINT events_capacity_positive CHECK (capacity > 0)")
    result = linea("events", "create", "--title", "Tiny", "--start", "2031-01-01T10:00", "--owner", owner["email"],
                   "--capacity", "0", exit_code=4)
    assert result.stderr.startswith(
        "error: conflicts with check constraint events_capacity_positive on events "
        "(new row for relation \"events\" violates check constraint \"events_capacity_positive\"); nothing was changed"
    ), result.stderr
    assert db.count("events") == 0


def test_a_platform_unique_index_is_a_conflict_in_words(linea: CliRun, db: Database) -> None:
    db.execute("CREATE UNIQUE INDEX venues_name_city_key ON venues (name, city)")
    args = ["venues", "create", "--name", "Hall", "--address", "1 Road", "--city", "Porto", "--country", "PT"]
    linea(*args)
    result = linea(*args, exit_code=4)
    assert result.stderr.startswith("error: conflicts with unique constraint venues_name_city_key on venues"), result.stderr
    assert "Traceback" not in result.stderr
    assert db.count("venues") == 1


def test_a_known_constraint_is_named_by_its_meaning(db: Database) -> None:
    """The data model's constraints, violated for real, in the words the boundary prints."""
    from linea_cli.db.refusals import constraint_refusal

    user = make_user(db)
    event = make_event(db)
    cases = [
        (f"INSERT INTO users (id, email, updated_at) VALUES ('x1', '{user['email']}', now())",
         "a user with this email already exists"),
        (f"UPDATE events SET slug = 'taken' WHERE id = '{event['id']}'; "
         f"INSERT INTO events (id, title, slug, start_date, owner_id, updated_at) "
         f"VALUES ('x2', 't', 'taken', now(), '{user['id']}', now())", "an event with this slug already exists"),
        ("INSERT INTO sessions (id, user_id, token, expires_at, updated_at) VALUES ('x3', 'nobody', 't', now(), now())",
         "the session's user does not exist"),
        (f"DELETE FROM users WHERE id = '{event['owner_id']}'", "the user still owns events"),
    ]
    for statement, meaning in cases:
        with psycopg.connect(plain_url(db.url)) as conn, pytest.raises(psycopg.IntegrityError) as raised:
            conn.execute(statement)
        assert constraint_refusal(raised.value).message == f"{meaning}; nothing was changed"


def test_a_not_null_column_without_a_value_is_a_conflict_not_a_crash(linea: CliRun, db: Database) -> None:
    """The generic fallback for NOT NULL (exit 4): here a column linea knows, made required by the platform."""
    db.execute("ALTER TABLE venues ALTER COLUMN website SET NOT NULL")
    result = linea("venues", "create", "--name", "Hall", "--address", "1 Road", "--city", "Porto", "--country", "PT",
                   exit_code=4)
    assert result.stderr.startswith("error: venues.website needs a value (NOT NULL) and was given none"), result.stderr
    assert db.count("venues") == 0


def test_a_role_that_may_not_connect_is_refused(
    linea: CliRun, db: Database, role_prefix: str, direct_database_url: URL
) -> None:
    login = f"{role_prefix}_outsider"
    admin_execute(direct_database_url, f"CREATE ROLE \"{login}\" LOGIN PASSWORD '{PASSWORD}'")
    db.execute(f'REVOKE CONNECT ON DATABASE "{direct_database_url.database}" FROM PUBLIC')
    result = _as(linea, direct_database_url, login)("events", "list", exit_code=6)
    pattern = rf'error: role {login!r} may not connect to .*permission denied for database "?linea_test_\w+"?'
    assert re.match(pattern, result.stderr), result.stderr
    assert len(result.stderr.splitlines()) == 2, result.stderr  # the line and its hint
