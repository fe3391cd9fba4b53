"""`linea db restore` trusts nothing linea did not make, as an attacker would try it: a database
holding code of theirs, backed up with linea's own `db backup`, restored into a fresh database.
And `db doctor` / `db upgrade` on linea's guarantees (the audit log's append-only triggers, no
PUBLIC privileges) that a restored archive or a stray session can break.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.harness import CliRun, Database, libpq_conninfo, run_linea_on_terminal
from tests.test_backup import fresh_database, pointed_at, table_contents, without_restore_row  # noqa: F401

# A function whose every call leaves a row behind, in the database it ran in: proof that it ran.
ATTACKER_SETUP = """
CREATE SCHEMA attacker;
CREATE TABLE attacker.marker (what text, db text);
CREATE FUNCTION attacker.note(value text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO attacker.marker VALUES ('check ' || value, current_database()); RETURN true; END $$;
CREATE FUNCTION attacker.key(value text) RETURNS text IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN RETURN upper(value); END $$;
ALTER TABLE users ADD CONSTRAINT users_email_noted CHECK (attacker.note(email));
CREATE INDEX events_keyed ON events (attacker.key(title));
CREATE FUNCTION public.backdoor() RETURNS text SECURITY DEFINER LANGUAGE sql AS 'SELECT current_user';
GRANT EXECUTE ON FUNCTION public.backdoor() TO PUBLIC;
CREATE VIEW public.everyone AS SELECT email FROM users;
CREATE FUNCTION attacker.copy_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO attacker.marker VALUES (NEW.token, current_database()); RETURN NEW; END $$;
CREATE TRIGGER sessions_copied BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION attacker.copy_token();
CREATE RULE venues_noticed AS ON INSERT TO venues DO ALSO NOTIFY attacker;
CREATE POLICY everyone_reads ON users USING (true);
CREATE PUBLICATION attacker_feed FOR TABLE sessions;
SELECT lo_from_bytea(0, 'kept outside every table');
ALTER TABLE venues ADD CONSTRAINT venues_path CHECK (set_config('search_path', 'attacker, pg_catalog', false) <> '');
"""
GRANTS_AND_NO_GUARD = """
GRANT ALL ON users, sessions, audit_logs TO PUBLIC;
DROP TRIGGER audit_logs_append_only ON audit_logs;
DROP TRIGGER audit_logs_no_truncate ON audit_logs;
"""
EVENT_TRIGGER = """
CREATE FUNCTION attacker.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO attacker.marker VALUES ('ddl', current_database()); END $$;
CREATE EVENT TRIGGER attacker_ddl ON ddl_command_start EXECUTE FUNCTION attacker.on_ddl();
"""


def superuser(db: Database) -> bool:
    return bool(db.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))


def run_sql(url: URL, sql: str) -> None:
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
        conn.execute(sql)


def relations(url: URL) -> list[str]:
    """Every table, view and sequence of every user schema, and every schema but the built-in ones."""
    with psycopg.connect(libpq_conninfo(url)) as conn:
        return [name for (name,) in conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'v', 'S', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_%' UNION ALL SELECT nspname FROM pg_namespace "
            "WHERE nspname NOT IN ('public', 'pg_catalog', 'information_schema', 'pg_toast')"
        )]


def public_privileges(url: URL) -> list[tuple[str, str]]:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        return conn.execute(
            "SELECT c.relname, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a "
            "WHERE a.grantee = 0 AND c.relname IN ('users', 'sessions', 'audit_logs')"
        ).fetchall()


def guard_triggers(url: URL) -> set[str]:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        return {name for (name,) in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.audit_logs'::regclass AND tgenabled = 'O' "
            "AND NOT tgisinternal"
        )}


def test_an_archive_holding_an_attackers_code_is_refused_by_kind_and_nothing_runs(
    linea: CliRun, db: Database, fresh_database: tuple[URL, URL], tmp_path: Path  # noqa: F811
) -> None:
    linea("db", "seed", "--users", "5", "--events", "3", "--waitlist", "10", "--sessions", "2")
    run_sql(db.url, GRANTS_AND_NO_GUARD)
    run_sql(db.url, ATTACKER_SETUP)
    event_trigger = superuser(db)  # an event trigger needs a superuser (not so behind PgBouncer in CI)
    if event_trigger:
        run_sql(db.url, EVENT_TRIGGER)
    archive = tmp_path / "hostile.dump"
    linea("db", "backup", "-o", str(archive))
    restoring = pointed_at(linea, fresh_database)

    refused = restoring("db", "restore", str(archive), exit_code=1)
    lines = refused.stderr.splitlines()
    assert lines[0].startswith(f"error: {archive} holds objects linea did not make") and "nothing was restored" in lines[0]
    kinds = {line.strip().split(": ", 1)[0]: line.strip().split(": ", 1)[1] for line in lines[1:-1]}
    assert set(kinds["functions"].split(", ")) == {
        "attacker.copy_token()", "attacker.key(text)", "attacker.note(text)", "public.backdoor()",
        *(["attacker.on_ddl()"] if event_trigger else []),
    }
    assert kinds["triggers"] == "public.sessions sessions_copied"  # not linea's: refused
    assert kinds["rules"] == "public.venues venues_noticed" and kinds["policies"] == "public.users everyone_reads"
    assert kinds["publications"].startswith("attacker_feed") and kinds["large objects"].isdigit()
    assert kinds["tables calling functions linea does not know"] == (
        "public.users (attacker.note), public.venues (set_config)"
    )
    assert kinds["indexes calling functions linea does not know"] == "public.events_keyed (attacker.key)"
    assert kinds["views"] == "public.everyone"
    assert kinds["schemas"] == "attacker" and kinds["tables"] == "attacker.marker"
    assert ("event triggers" in kinds) == event_trigger
    if event_trigger:
        assert kinds["event triggers"] == "attacker_ddl"
    assert lines[-1].startswith("hint: ") and "--include-foreign-objects" in lines[-1]
    assert relations(fresh_database[1]) == []  # nothing restored, so nothing ran

    # Asked for, they are listed again and restored only after the database name (or --yes).
    unconfirmed = restoring("db", "restore", str(archive), "--include-foreign-objects", exit_code=1)
    assert "needs confirmation" in unconfirmed.stderr and "attacker.note(text)" in unconfirmed.stderr
    mistyped = run_linea_on_terminal(
        ["db", "restore", str(archive), "--include-foreign-objects"], env=restoring.env, terminal="stdin",
        typed=b"not-the-name\n",
    )
    assert mistyped.returncode == 1 and b"nothing was changed" in mistyped.other
    assert relations(fresh_database[1]) == []

    result = restoring("db", "restore", str(archive), "--include-foreign-objects", "--yes")
    assert "warning: not made by linea, to be restored as asked: functions: " in result.stderr
    assert "warning: restored what linea did not make, as asked: functions, " in result.stderr
    [callable_by] = [line for line in result.stderr.splitlines() if line.startswith("note: restored functions ")]
    assert "public.backdoor()" in callable_by and "attacker.note(value text)" in callable_by
    assert "are callable only by their owner" in callable_by
    assert_no_one_else_may_call_the_backdoor(fresh_database[1])
    target = Database(fresh_database[1])
    try:
        # The restore ran the attacker's CHECK on every restored user: that is what was refused before.
        ran = target.all("SELECT what, count(*) AS n FROM attacker.marker WHERE db = current_database() GROUP BY what")
        assert {row.what.split(" ")[0] for row in ran} >= {"check"}
        [row] = target.all("SELECT metadata FROM audit_logs WHERE action = 'RESTORE' AND resource = 'Database'")
        assert any(line.startswith("functions: ") for line in row.metadata["foreign_objects"])
        # Never the archive's privileges, and linea's guard is back even so.
        assert public_privileges(fresh_database[1]) == []
        assert guard_triggers(fresh_database[1]) == {"audit_logs_append_only", "audit_logs_no_truncate"}
    finally:
        target.close()


def assert_no_one_else_may_call_the_backdoor(url: URL) -> None:
    """A SECURITY DEFINER function restored from an archive: PUBLIC may not execute it (PostgreSQL's
    default for a new function), so a role with no privileges cannot call it; nor read the
    attacker's schema. The restoring role's default privileges are as they were."""
    role, password = f"nobody_{uuid.uuid4().hex[:10]}", "no-privileges"
    run_sql(url, f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    try:
        # Straight to the server: a pooler would not know this new role.
        with psycopg.connect(libpq_conninfo(url.set(username=role, password=password)), autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function backdoor"):
                conn.execute("SELECT public.backdoor()")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema attacker"):
                conn.execute("SELECT * FROM attacker.marker")
    finally:
        run_sql(url, f'DROP ROLE "{role}"')
    with psycopg.connect(libpq_conninfo(url)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_default_acl").fetchone() == (0,)


def test_grants_and_dropped_triggers_in_an_archive_do_not_survive_the_restore(
    linea: CliRun, db: Database, direct_database_url: URL, fresh_database: tuple[URL, URL], tmp_path: Path  # noqa: F811
) -> None:
    linea("db", "seed", "--users", "8", "--events", "3", "--waitlist", "20", "--sessions", "4")
    run_sql(db.url, GRANTS_AND_NO_GUARD)
    archive = tmp_path / "loose.dump"
    linea("db", "backup", "-o", str(archive))

    restoring = pointed_at(linea, fresh_database)
    result = restoring("db", "restore", str(archive))
    assert "not restored (owners and privileges never are): " in result.stderr
    # linea's own guard never comes from an archive: recreated from linea's definitions.
    assert "recreated linea's append-only guard on audit_logs" in result.stderr.splitlines()
    assert "note: " not in result.stderr  # nothing else to repair: --no-privileges left no grant behind
    assert "GRANTs on TABLE public.audit_logs" in result.stderr
    assert without_restore_row(table_contents(fresh_database[1])) == table_contents(direct_database_url)
    assert public_privileges(fresh_database[1]) == []
    assert guard_triggers(fresh_database[1]) == {"audit_logs_append_only", "audit_logs_no_truncate"}
    with psycopg.connect(libpq_conninfo(fresh_database[1])) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM audit_logs")
    checks = {check["check"]: check["status"] for check in restoring("db", "doctor", "--json").json}
    assert checks["audit log append-only"] == "OK" and checks["public privileges"] == "OK"


def test_a_table_the_platform_added_is_restored_with_its_sequence(
    linea: CliRun, db: Database, direct_database_url: URL, fresh_database: tuple[URL, URL], tmp_path: Path  # noqa: F811
) -> None:
    run_sql(db.url, """
        CREATE TABLE categories (id serial PRIMARY KEY, name varchar(40) NOT NULL CHECK (length(name) > 1),
                                 created_at timestamp(3) DEFAULT CURRENT_TIMESTAMP);
        INSERT INTO categories (name) VALUES ('music'), ('talks');
        COMMENT ON TABLE categories IS 'added by a later Prisma migration';
    """)
    archive = tmp_path / "categories.dump"
    linea("db", "backup", "-o", str(archive))
    restoring = pointed_at(linea, fresh_database)
    result = restoring("db", "restore", str(archive))
    assert "the data model does not name are restored too: categories" in result.stderr
    assert without_restore_row(table_contents(fresh_database[1])) == table_contents(direct_database_url)
    run_sql(fresh_database[1], "INSERT INTO categories (name) VALUES ('food')")  # the sequence carries on
    target = Database(fresh_database[1])
    try:
        assert target.scalar("SELECT max(id) FROM categories") == 3
    finally:
        target.close()


def test_an_archive_of_an_older_linea_layout_restores_and_upgrades(
    linea: CliRun, empty_database_url: URL, direct_server_url: URL, fresh_database: tuple[URL, URL],  # noqa: F811
    tmp_path: Path,
) -> None:
    """linea's functions and triggers in `public` (before the `linea` schema) are linea's: recreated, not refused."""
    from tests.harness import admin_execute
    from tests.test_adoption import REFERENCE

    old = (empty_database_url, direct_server_url.set(database=empty_database_url.database))
    admin_execute(old[1], REFERENCE.joinpath("linea_old_layout.sql").read_text())
    archive = tmp_path / "old.dump"
    pointed_at(linea, old)("db", "backup", "-o", str(archive))
    restoring = pointed_at(linea, fresh_database)
    restoring("db", "restore", str(archive))
    assert guard_triggers(fresh_database[1]) == {"audit_logs_append_only", "audit_logs_no_truncate"}
    restoring("db", "upgrade")
    restoring("db", "doctor")


def patched(archive: Path, old: bytes, new: bytes, *, after: bytes = b"") -> Path:
    """A hand-made archive: `old` (the first after `after`) replaced by `new`, as long, in the
    table of contents (which a custom-format archive keeps uncompressed)."""
    assert len(old) == len(new)
    data = archive.read_bytes()
    start = data.index(old, data.index(after))
    target = archive.with_name(f"patched-{len(list(archive.parent.iterdir()))}.dump")
    target.write_bytes(data[:start] + new + data[start + len(old) :])
    return target


@pytest.mark.parametrize(
    ("old", "new", "after", "refusal"),
    [
        (b"set_config('search_path', '', false);", b"set_config('search_path', 'a',true); ", b"",
         "sets up its session with SQL pg_dump does not write"),
        (b"FROM stdin;\n", b"FROM '/x' ;\n", b"COPY public.venues (",
         "the archive's data for public.venues is not loaded by pg_dump's COPY ... FROM stdin"),
        (b"USING btree (role);", b"USING btree (a(b));", b"",
         "indexes calling functions linea does not know: public.idx_users_role (a)"),
        (b"CREATE TYPE public.\"UserRole\" AS ENUM", b"DROP   TYPE public.\"UserRole\" CASCADE", b"",
         "types: public.UserRole"),
    ],
    ids=["search_path", "copy", "index", "type"],
)
def test_a_hand_made_archive_is_judged_by_the_sql_it_holds(
    linea: CliRun, fresh_database: tuple[URL, URL], tmp_path: Path,  # noqa: F811
    old: bytes, new: bytes, after: bytes, refusal: str,
) -> None:
    linea("db", "seed", "--users", "3", "--events", "2", "--waitlist", "4", "--sessions", "1")
    archive = tmp_path / "linea.dump"
    linea("db", "backup", "-o", str(archive))
    restoring = pointed_at(linea, fresh_database)
    result = restoring("db", "restore", str(patched(archive, old, new, after=after)), exit_code=1)
    assert refusal in result.stderr and "nothing was restored" in result.stderr
    assert relations(fresh_database[1]) == []


def test_a_hand_made_drop_is_refused_before_replacing(linea: CliRun, db: Database, tmp_path: Path) -> None:
    linea("db", "seed", "--users", "3", "--events", "2", "--waitlist", "4", "--sessions", "1")
    archive = tmp_path / "linea.dump"
    linea("db", "backup", "-o", str(archive))
    before = db.count("users")
    # pg_restore --clean runs each entry's DROP statement, which the archive holds too.
    hostile = patched(archive, b"DROP TABLE public.venues;", b"DROP ROLE postgres;      ")
    result = linea("db", "restore", str(hostile), "--force", "--yes", exit_code=1)
    assert "replaces tables with SQL pg_dump does not write" in result.stderr
    assert db.count("users") == before
    linea("db", "restore", str(archive), "--force", "--yes")  # the untouched archive replaces as before


REPAIRED = {
    "DROP TRIGGER audit_logs_append_only ON audit_logs": "trigger audit_logs_append_only on audit_logs was missing",
    "ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_no_truncate": "trigger audit_logs_no_truncate on audit_logs was disabled",
    "CREATE OR REPLACE FUNCTION linea.audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RETURN COALESCE(NEW, OLD); END $$": "function linea.audit_logs_append_only differed from linea's",
}


@pytest.mark.parametrize(
    "breakage",
    [
        "DROP TRIGGER audit_logs_append_only ON audit_logs",
        "ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_no_truncate",
        "CREATE OR REPLACE FUNCTION linea.audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RETURN COALESCE(NEW, OLD); END $$",
    ],
    ids=["dropped", "disabled", "replaced"],
)
def test_doctor_fails_on_a_broken_append_only_guard_and_upgrade_at_head_repairs_it(
    linea: CliRun, db: Database, breakage: str
) -> None:
    linea("db", "seed", "--users", "2", "--events", "1", "--waitlist", "1", "--sessions", "1")
    db.execute(breakage)
    checks = {check["check"]: check for check in linea("db", "doctor", "--json", exit_code=5).json}
    assert checks["audit log append-only"]["status"] == "FAIL"
    assert "linea db upgrade" in checks["audit log append-only"]["detail"]

    assert 'CREATE OR REPLACE ' in linea("db", "upgrade", "--sql").stdout  # the repair, for review
    result = linea("db", "upgrade")
    assert f"note: repaired: {REPAIRED[breakage]}" in result.stderr.splitlines()
    for statement in ("DELETE FROM audit_logs", "TRUNCATE audit_logs", "UPDATE audit_logs SET action = 'X'"):
        with pytest.raises(Exception, match="append-only"):
            db.execute(statement)
    checks = {check["check"]: check for check in linea("db", "doctor", "--json").json}
    assert checks["audit log append-only"]["status"] == "OK"
    assert "repaired" not in linea("db", "upgrade").stderr  # nothing left to repair: nothing runs


def test_doctor_fails_when_every_role_may_write_the_audit_log_or_read_tokens(linea: CliRun, db: Database) -> None:
    checks = {check["check"]: check for check in linea("db", "doctor", "--json").json}
    assert checks["public privileges"]["status"] == "OK"
    db.execute("GRANT INSERT, DELETE ON audit_logs TO PUBLIC")
    db.execute("GRANT SELECT (token) ON sessions TO PUBLIC")
    checks = {check["check"]: check for check in linea("db", "doctor", "--json", exit_code=5).json}
    detail = checks["public privileges"]["detail"]
    assert checks["public privileges"]["status"] == "FAIL"
    assert "audit_logs (DELETE, INSERT)" in detail and "sessions (SELECT (token))" in detail

    assert "note: repaired: PUBLIC's DELETE, INSERT on audit_logs revoked; PUBLIC's SELECT (token) on sessions revoked" in (
        linea("db", "upgrade").stderr.splitlines()
    )
    assert db.scalar("SELECT has_table_privilege('public', 'audit_logs', 'INSERT')") is False
    assert db.scalar("SELECT has_column_privilege('public', 'sessions', 'token', 'SELECT')") is False
    linea("db", "doctor")


@pytest.mark.parametrize(
    ("sql", "calls"),
    [
        ("ALTER TABLE ONLY public.users ADD CONSTRAINT c CHECK ((lower(email) <> ''::text));", []),
        ("ALTER TABLE ONLY public.users ALTER COLUMN id SET DEFAULT nextval('public.s'::regclass);", []),
        ("CREATE INDEX i ON public.users USING btree (pg_catalog.upper(email), created_at);", []),
        # PostgreSQL reads 'a\' as a whole string (standard_conforming_strings): the call is code.
        ("ALTER TABLE ONLY public.users ALTER COLUMN name SET DEFAULT ('a\\' || attacker.f() || '');", ["attacker.f"]),
        ("ALTER TABLE ONLY public.venues ADD CONSTRAINT c CHECK ((query_to_xml('x', true, true, '') IS NOT NULL));",
         ["query_to_xml"]),
        ('ALTER TABLE ONLY public.events ADD CONSTRAINT c CHECK ("public"."f"(title));', ["public.f"]),
        ("ALTER TABLE ONLY public.events ADD CONSTRAINT c CHECK ((capacity OPERATOR(attacker.+++) 1));",
         ["OPERATOR(attacker.+++)"]),
        # A comment hidden in an operator would hide what follows it from a naive reader: not plain.
        ("ALTER TABLE ONLY public.users ALTER COLUMN name SET DEFAULT (1 <-- '\n|| attacker.f() || '\n);", None),
        ("ALTER TABLE ONLY public.users ALTER COLUMN name SET DEFAULT $$x$$;", None),
    ],
)
def test_what_counts_as_a_call_is_what_postgresql_would_call(sql: str, calls: list[str] | None) -> None:
    from linea_cli.db.archive import NotPlain, foreign_calls, statements

    if calls is None:
        with pytest.raises(NotPlain):
            statements(sql)
        return
    assert [call for statement in statements(sql) for call in foreign_calls(statement)] == calls


@pytest.mark.parametrize("swap", ["renamed over it", "rewritten in place"])
def test_the_archive_restored_is_the_archive_checked(
    linea: CliRun, db: Database, direct_database_url: URL, fresh_database: tuple[URL, URL],  # noqa: F811
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str,
) -> None:
    """pg_restore reads an archive several times (its list, its SQL, its rows, the restore). Whoever
    controls the file or its directory puts a hostile archive in its place once linea has checked
    it, while the confirmation is asked: the restore still reads the bytes that were checked."""
    linea("db", "seed", "--users", "6", "--venues", "3", "--events", "3", "--waitlist", "12", "--sessions", "3")
    padding = "A" * 40
    db.execute(f"ALTER TABLE venues ADD CONSTRAINT venues_named CHECK (name <> '{padding}')")
    shared = tmp_path / "shared"  # a directory someone else may write to
    shared.mkdir()
    archive = shared / "linea.dump"
    linea("db", "backup", "-o", str(archive))
    checked = table_contents(direct_database_url)
    # The same archive but for that CHECK, now calling a function on every restored venue (it leaves
    # a large object behind each time: proof that it ran).
    written = f"name <> '{padding}'::text".encode()
    hostile = patched(archive, written, b"lo_from_bytea(0, 'ran') <> 0".ljust(len(written)))
    planted = hostile.read_bytes()
    restoring = pointed_at(linea, fresh_database)
    restoring("db", "restore", str(archive))  # so that the next restore replaces tables, and asks first
    if swap == "rewritten in place":
        archive.chmod(0o666)  # writable by others: its bytes could change under an open file

    import linea_cli.cli.db as db_commands

    def swapped_while_asking(original):  # noqa: ANN001, ANN202
        def confirm(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if swap == "renamed over it":
                os.rename(hostile, archive)
            else:
                with archive.open("r+b") as file:
                    file.truncate(0)
                    file.write(planted)
            swaps.append(swap)
            return original(*args, **kwargs)
        return confirm

    swaps: list[str] = []
    # Every question (y/N on the embedded server, the database name elsewhere) is this one.
    monkeypatch.setattr(db_commands, "confirm_or_stop", swapped_while_asking(db_commands.confirm_or_stop))
    restoring("db", "restore", str(archive), "--force", "--yes")
    assert swaps == [swap] and archive.read_bytes() == planted
    # What was checked was restored: the rows of the archive as it was, and the CHECK never ran.
    assert without_restore_row(table_contents(fresh_database[1])) == checked
    target = Database(fresh_database[1])
    try:
        assert target.scalar("SELECT count(*) FROM pg_largeobject_metadata") == 0
    finally:
        target.close()
    # Given again, the file now there is checked as any other: refused.
    monkeypatch.undo()
    refused = restoring("db", "restore", str(archive), "--force", "--yes", exit_code=1)
    assert "tables calling functions linea does not know: public.venues (lo_from_bytea)" in refused.stderr


def test_an_archive_without_tables_says_so(
    linea: CliRun, empty_database_url: URL, direct_server_url: URL, fresh_database: tuple[URL, URL],  # noqa: F811
    tmp_path: Path,
) -> None:
    empty = (empty_database_url, direct_server_url.set(database=empty_database_url.database))
    archive = tmp_path / "empty.dump"
    pointed_at(linea, empty)("db", "backup", "-o", str(archive))
    result = pointed_at(linea, fresh_database)("db", "restore", str(archive))
    assert f"restored {archive} (" in result.stderr and "it held no tables, and " in result.stderr
    assert "no restored found" not in result.stderr and result.stdout == ""
    assert pointed_at(linea, fresh_database)("db", "restore", str(archive), "--json").json == []
