"""`users verify-erased` as an attacker tries it: an address hidden in every kind of column and
encoding, tables the role cannot fully see, and a platform that must never wait for the search."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from linea_cli.services import traces
from tests.factories import make_event, make_session, make_user, make_waitlist_entry
from tests.harness import CliRun, Database, libpq_conninfo, plain_url

EMAIL, NAME = "erin.person@example.com", "Erin Quixote"


def _traces(stdout: str) -> set[tuple[str, ...]]:
    """(table, column, row_id, found) from piped output, header left out."""
    return {tuple(line.split("\t")) for line in stdout.splitlines()[1:]}


def _unverified(stderr: str) -> dict[str, str]:
    """{table: reason} from the `not verified: TABLE: REASON` lines."""
    lines = (re.match(r"  not verified: ([^:]+): (.*)", line) for line in stderr.splitlines())
    return {match[1]: match[2] for match in lines if match}


@pytest.fixture
def erased(linea: CliRun, db: Database) -> dict[str, Any]:
    """Erin, erased for real by `users anonymize`: verify-erased says OK before anything is planted."""
    erin = make_user(db, email=EMAIL, name=NAME)
    make_waitlist_entry(db, event=make_event(db), email=EMAIL, user_id=erin["id"])
    linea("users", "anonymize", EMAIL, "--yes")
    assert linea("users", "verify-erased", EMAIL).stdout.startswith("OK: no trace in ")
    return erin


@pytest.fixture
def autocommit(direct_database_url: Any) -> Iterator[psycopg.Connection]:
    """A plain connection of the test's own, outside any transaction (VACUUM, LOCK in a block of its own)."""
    with psycopg.connect(libpq_conninfo(direct_database_url), autocommit=True) as connection:
        yield connection


@pytest.fixture
def role(db: Database, database_url: Any, owned_server: object) -> Iterator[tuple[str, dict[str, str]]]:
    """A login role that may read linea's tables (and what each test grants it), and the env to run as it."""
    name = f"verifier_{database_url.database}"
    db.execute(f'CREATE ROLE "{name}" LOGIN')
    try:
        db.execute(f'GRANT USAGE ON SCHEMA linea TO "{name}"')
        db.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA linea, public TO "{name}"')
        yield name, {"LINEA_DATABASE_URL": plain_url(database_url.set(username=name, password=None))}
    finally:
        db.execute(f'DROP OWNED BY "{name}"')
        db.execute(f'DROP ROLE "{name}"')


# --- every column that can hold text, every common encoding -------------------------------------

PLANTED_DDL = """
CREATE TYPE contact_card AS (label TEXT, address TEXT);
CREATE DOMAIN checked_card AS contact_card;
CREATE TYPE attachment AS (name TEXT, content BYTEA);
CREATE TABLE planted (
    id TEXT PRIMARY KEY,
    card contact_card, checked checked_card, cards contact_card[], attachments attachment[],
    raw BYTEA, doc XML, note TEXT, body JSON, search TSVECTOR
);
"""


def test_an_address_planted_in_any_kind_of_column_or_encoding_is_found(
    linea: CliRun, db: Database, erased: dict[str, Any]
) -> None:
    db.execute(PLANTED_DDL)
    shouted = EMAIL.upper()
    db.execute(f"""
        INSERT INTO planted (id, card) VALUES ('composite', ROW('home', '{shouted}'));
        INSERT INTO planted (id, checked) VALUES ('domain', ROW('work', '{EMAIL}'));
        INSERT INTO planted (id, cards) VALUES
            ('array of composites', ARRAY[ROW('a', 'b'), ROW('home', 'Erin.Person@Example.com')]::contact_card[]);
        INSERT INTO planted (id, attachments) VALUES
            ('bytes in composites', ARRAY[ROW('card.vcf', convert_to('EMAIL:{EMAIL}', 'UTF8'))]::attachment[]);
        INSERT INTO planted (id, raw) VALUES ('bytea', convert_to('mailto:{shouted}' || chr(233), 'UTF8'));
        INSERT INTO planted (id, note) VALUES
            ('url-encoded', 'https://x.test/unsubscribe?email=erin.person%40example.com&list=2'),
            ('url-encoded, upper hex', 'mailto%3AERIN.PERSON%40EXAMPLE.COM'),
            ('every byte url-encoded', '%65%72%69%6E%2E%70%65%72%73%6F%6E%40%65%78%61%6D%70%6C%65%2E%63%6F%6D'),
            ('json-escaped', '{{"to": "erin.person\\u0040example.com"}}'),
            ('html entity', 'Contact: erin.person&#x40;example.com');
        INSERT INTO planted (id, body) VALUES ('json type, escaped', '{{"to": "erin\\u002eperson\\u0040example\\u002ecom"}}');
        INSERT INTO planted (id, search) VALUES ('tsvector', to_tsvector('simple', 'write to {EMAIL}'));
        -- Not Erin's: another address that merely contains hers, however encoded.
        INSERT INTO planted (id, note) VALUES
            ('lookalike', 'joerin.person%40example.com, joerin.person\\u0040example.com'),
            ('lookalike 2', 'erin.person&#64;example.com.au');
    """)
    result = linea("users", "verify-erased", EMAIL, exit_code=7)
    assert _traces(result.stdout) == {
        ("planted", "card", "composite", "address"),
        ("planted", "checked", "domain", "address"),
        ("planted", "cards", "array of composites", "address"),
        ("planted", "attachments", "bytes in composites", "address"),
        ("planted", "raw", "bytea", "address"),
        ("planted", "note", "url-encoded", "address"),
        ("planted", "note", "url-encoded, upper hex", "address"),
        ("planted", "note", "every byte url-encoded", "address"),
        ("planted", "note", "json-escaped", "address"),
        ("planted", "note", "html entity", "address"),
        ("planted", "body", "json type, escaped", "address"),
        ("planted", "search", "tsvector", "address"),
    }
    # anonymize runs the same search after its erasure (here: nothing left to erase).
    assert "planted.raw row bytea: address" in linea("users", "anonymize", EMAIL, "--yes", exit_code=7).stderr

    db.execute("TRUNCATE planted")
    ok = linea("users", "verify-erased", EMAIL).stdout
    kinds = re.fullmatch(r"OK: no trace in (\d+) tables \((.*) columns\)\n", ok)
    assert kinds, ok
    counted = dict(reversed(part.split(" ")) for part in kinds[2].split(", "))
    assert counted["xml"] == "1" and counted["bytea"] == "1" and counted["json"] == "2"  # audit_logs.metadata too
    assert counted["composite"] == "2" and counted["array"] == "2" and counted["other"] == "1"  # the tsvector


def test_anonymize_finds_the_name_form_encoded_in_a_platform_table(linea: CliRun, db: Database) -> None:
    make_user(db, email=EMAIL, name=NAME)
    db.execute("CREATE TABLE signups (id TEXT PRIMARY KEY, query TEXT)")
    db.execute("INSERT INTO signups VALUES ('s1', 'name=Erin+Quixote&plan=free'), ('s2', 'name=Erin%20QUIXOTE')")
    result = linea("users", "anonymize", EMAIL, "--yes", exit_code=7)
    assert {line.strip() for line in result.stderr.splitlines() if line.startswith("  ")} == {
        "signups.query row s1: name", "signups.query row s2: name",
    }


def test_anonymize_finds_a_copy_of_any_of_many_session_tokens_whole_or_in_pieces(linea: CliRun, db: Database) -> None:
    """Many tokens are looked for only in rows holding a long enough run of their characters, and a
    whole token through its payload and signature, which it holds: each kind of copy is still found."""
    import base64
    import hashlib

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    erin = make_user(db, email=EMAIL, name=NAME)
    header, tokens = b64(b'{"alg":"HS256","typ":"JWT"}'), []
    for n in range(12):
        payload = b64(json.dumps({"sub": erin["id"], "device": n}).encode())
        tokens.append(f"{header}.{payload}.{b64(hashlib.sha256(payload.encode()).digest())}")
        make_session(db, user=erin, token=tokens[-1])
    db.execute("CREATE TABLE devices (id TEXT PRIMARY KEY, note TEXT, blob BYTEA)")
    db.execute(
        "INSERT INTO devices (id, note, blob) VALUES "
        "('d1', :whole, NULL), ('d2', :signature, NULL), ('d3', NULL, convert_to(:raw, 'UTF8')), "
        # A long run of the tokens' characters, no token: read, not reported.
        "('d4', :lookalike, convert_to(:lookalike, 'UTF8'))",
        whole=f"Authorization: Bearer {tokens[0]}", signature=f"sig={tokens[5].split('.')[2]};",
        raw=tokens[7].split(".")[1], lookalike=b64(hashlib.sha256(b"someone else").digest()) * 4,
    )
    result = linea("users", "anonymize", EMAIL, "--yes", exit_code=7)
    assert {line.strip() for line in result.stderr.splitlines() if line.startswith("  ")} == {
        "devices.note row d1: token", "devices.note row d2: token", "devices.blob row d3: token",
    }


def test_an_address_in_an_xml_column_is_found(linea: CliRun, db: Database, erased: dict[str, Any]) -> None:
    db.execute("CREATE TABLE documents (id TEXT PRIMARY KEY, doc XML)")
    try:
        db.execute("INSERT INTO documents VALUES ('empty', NULL)")
        db.execute(f"INSERT INTO documents VALUES ('d1', XMLPARSE(CONTENT '<to>{EMAIL.upper()}</to>'))")
    except sa.exc.NotSupportedError as exc:  # the embedded server is built without libxml: xml holds nothing
        pytest.skip(f"xml values are not supported on this server: {str(exc).splitlines()[0]}")
    db.execute("INSERT INTO documents VALUES ('d2', XMLPARSE(CONTENT '<to>erin.person&#64;example.com</to>'))")
    result = linea("users", "verify-erased", EMAIL, exit_code=7)
    assert _traces(result.stdout) == {("documents", "doc", "d1", "address"), ("documents", "doc", "d2", "address")}


def test_an_address_in_an_hstore_column_is_found(linea: CliRun, db: Database, erased: dict[str, Any]) -> None:
    try:
        db.execute("CREATE EXTENSION IF NOT EXISTS hstore")
    except sa.exc.DBAPIError as exc:  # the embedded server's wheel ships no contrib modules
        pytest.skip(f"hstore is not available on this server: {str(exc).splitlines()[0]}")
    db.execute("CREATE TABLE profiles (id TEXT PRIMARY KEY, attributes HSTORE)")
    db.execute(f"""INSERT INTO profiles VALUES ('p1', '"contact"=>"{EMAIL.upper()}", "x"=>"y"')""")
    result = linea("users", "verify-erased", EMAIL, exit_code=7)
    assert _traces(result.stdout) == {("profiles", "attributes", "p1", "address")}


def test_an_address_in_a_partition_is_found_through_its_partitioned_table(
    linea: CliRun, db: Database, erased: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(traces, "FIRST_SPAN", 1)
    monkeypatch.setattr(traces, "MIN_SPAN", 1)
    monkeypatch.setattr(traces, "MAX_SPAN", 1)
    db.execute("""
        CREATE TABLE mail_log (sent DATE NOT NULL, body TEXT) PARTITION BY RANGE (sent);
        CREATE TABLE mail_log_2025 PARTITION OF mail_log FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE mail_log_2026 PARTITION OF mail_log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        INSERT INTO mail_log SELECT DATE '2025-01-01' + n % 700, repeat('x', 200) FROM generate_series(1, 2000) AS n;
    """)
    db.execute(f"INSERT INTO mail_log VALUES ('2026-06-01', 'sent to {EMAIL}')")
    result = linea("users", "verify-erased", EMAIL, exit_code=7)
    ((table, column, row_id, found),) = _traces(result.stdout)
    assert (table, column, found) == ("mail_log", "body", "address")
    assert re.fullmatch(r"mail_log_2026 ctid \(\d+,\d+\)", row_id)


# --- what the role cannot see is not verified: exit 8, never 0 ----------------------------------


def test_rows_hidden_by_row_level_security_are_not_verified(
    linea: CliRun, db: Database, erased: dict[str, Any], role: tuple[str, dict[str, str]]
) -> None:
    name, as_role = role
    db.execute(f"""
        CREATE TABLE crm_notes (id TEXT PRIMARY KEY, owner_role TEXT, body TEXT);
        ALTER TABLE crm_notes ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own_notes ON crm_notes USING (owner_role = current_user);
        GRANT SELECT ON crm_notes TO "{name}";
        INSERT INTO crm_notes VALUES ('hidden', 'someone_else', 'call {EMAIL}');
    """)
    result = linea("users", "verify-erased", EMAIL, env=as_role, exit_code=8)
    assert result.stdout == ""
    assert _unverified(result.stderr) == {"crm_notes": "row-level security applies to this role and may hide rows from it"}
    assert "the erasure could not be verified: 1 table(s) could not be fully searched" in result.stderr
    # The table's owner sees every row: the trace.
    assert _traces(linea("users", "verify-erased", EMAIL, exit_code=7).stdout) == {("crm_notes", "body", "hidden", "address")}

    # What the role can see is still searched; a trace found wins over the doubt (exit 7, not 8).
    db.execute(f"""INSERT INTO crm_notes VALUES ('visible', '{name}', 'also {EMAIL}')""")
    result = linea("users", "verify-erased", EMAIL, env=as_role, exit_code=7)
    assert _traces(result.stdout) == {("crm_notes", "body", "visible", "address")}
    assert set(_unverified(result.stderr)) == {"crm_notes"}

    # Row-level security does not apply to the table's owner, unless forced (superusers bypass it always).
    db.execute(f"DELETE FROM crm_notes WHERE id = 'visible'; ALTER TABLE crm_notes OWNER TO \"{name}\"")
    result = linea("users", "verify-erased", EMAIL, env=as_role, exit_code=7)
    assert _traces(result.stdout) == {("crm_notes", "body", "hidden", "address")} and not _unverified(result.stderr)
    db.execute("ALTER TABLE crm_notes FORCE ROW LEVEL SECURITY")
    assert set(_unverified(linea("users", "verify-erased", EMAIL, env=as_role, exit_code=8).stderr)) == {"crm_notes"}


def test_columns_and_tables_the_role_may_not_read_are_not_verified(
    linea: CliRun, db: Database, erased: dict[str, Any], role: tuple[str, dict[str, str]]
) -> None:
    name, as_role = role
    db.execute(f"""
        CREATE TABLE contacts (id TEXT PRIMARY KEY, label TEXT, secret TEXT);
        GRANT SELECT (id, label) ON contacts TO "{name}";
        INSERT INTO contacts VALUES ('c1', 'friend', '{EMAIL}');
        CREATE TABLE private_notes (id TEXT PRIMARY KEY, body TEXT);
        CREATE SCHEMA crm;
        CREATE TABLE crm.leads (id TEXT PRIMARY KEY, email TEXT);
        GRANT SELECT ON crm.leads TO "{name}";
    """)
    result = linea("users", "verify-erased", EMAIL, env=as_role, exit_code=8)
    assert _unverified(result.stderr) == {
        "contacts": "no SELECT privilege on column secret; those not searched",
        "private_notes": "no SELECT privilege on it; not searched",
        "crm.leads": "no USAGE privilege on its schema; not searched",
    }
    # The columns it may read are searched, row ids included.
    db.execute(f"UPDATE contacts SET label = 'see {EMAIL}'")
    result = linea("users", "verify-erased", EMAIL, env=as_role, exit_code=7)
    assert _traces(result.stdout) == {("contacts", "label", "c1", "address")}


def test_a_foreign_table_is_not_verified(linea: CliRun, db: Database, erased: dict[str, Any]) -> None:
    try:
        db.execute("CREATE FOREIGN DATA WRAPPER linea_test_wrapper")
    except sa.exc.DBAPIError as exc:  # not a superuser (the CI server through PgBouncer)
        pytest.skip(f"cannot create a foreign-data wrapper here: {str(exc).splitlines()[0]}")
    db.execute("""
        CREATE SERVER linea_test_remote FOREIGN DATA WRAPPER linea_test_wrapper;
        CREATE FOREIGN TABLE remote_contacts (email TEXT) SERVER linea_test_remote;
        CREATE TABLE mail_log (sent DATE NOT NULL, body TEXT) PARTITION BY RANGE (sent);
        CREATE TABLE mail_log_2026 PARTITION OF mail_log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        CREATE FOREIGN TABLE mail_log_archive PARTITION OF mail_log FOR VALUES FROM ('2000-01-01') TO ('2026-01-01')
            SERVER linea_test_remote;
    """)
    try:
        result = linea("users", "verify-erased", EMAIL, exit_code=8)
        assert _unverified(result.stderr) == {
            "remote_contacts": "a foreign table: its rows are on another server; not searched",
            "mail_log": "a foreign partition (mail_log_archive): its rows are on another server; not searched",
        }
    finally:
        db.execute("DROP FOREIGN DATA WRAPPER linea_test_wrapper CASCADE")


# --- never make the platform wait --------------------------------------------------------------


def _big_table(db: Database, rows: int = 2000, *, trace_rows: tuple[int, ...] | None = None) -> None:
    """A platform table of about 60 pages (about 35 rows a page), Erin's address in some rows (the last one)."""
    db.execute("CREATE TABLE platform_log (id INT PRIMARY KEY, body TEXT)")
    db.execute(
        "INSERT INTO platform_log SELECT n, CASE WHEN n = ANY(:traces) THEN 'sent to ' || :email || repeat(' ', 180) "
        "ELSE repeat('x', 200) END FROM generate_series(1, :rows) AS n",
        traces=list((rows,) if trace_rows is None else trace_rows), email=EMAIL, rows=rows,
    )


def _page(db: Database, row_id: int) -> int:
    return int(db.scalar("SELECT (ctid::text::point)[0] FROM platform_log WHERE id = :id", id=row_id))


def _one_page_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FIRST_SPAN", "MIN_SPAN", "MAX_SPAN"):
        monkeypatch.setattr(traces, name, 4)
    monkeypatch.setattr(traces, "STEP_ASIDE_SECONDS", 0)


def _on_table(monkeypatch: pytest.MonkeyPatch, table: str, action: Callable[[int], None]) -> list[int]:
    """Run action(n) between the search's n-th and next transaction on `table`; the calls made."""
    calls: list[int] = []

    def between(name: str) -> None:
        if name == table:
            calls.append(len(calls) + 1)
            action(calls[-1])

    monkeypatch.setattr(traces, "between_transactions", between)
    return calls


def _linea_locks(db: Database, table: str) -> list[str]:
    """The locks linea's connections hold on `table` now."""
    return [row.mode for row in db.all(
        "SELECT l.mode FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
        "WHERE a.application_name LIKE 'linea/%' AND l.locktype = 'relation' AND l.granted "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.relation = to_regclass(:table)", table=table,
    )]


def test_between_two_ranges_the_search_holds_no_lock_and_a_deploy_goes_through(
    linea: CliRun, db: Database, erased: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _big_table(db)
    _one_page_ranges(monkeypatch)
    deployed: list[int] = []

    def deploy(call: int) -> None:
        if call == 2:
            assert _linea_locks(db, "platform_log") == []
            # The platform's next deploy, with a lock_timeout far longer than any range: it would
            # wait for a search that held its lock, and here it does not wait at all.
            db.execute("SET LOCAL lock_timeout = '60s'; ALTER TABLE platform_log ADD COLUMN deployed TEXT")
            deployed.append(call)

    calls = _on_table(monkeypatch, "platform_log", deploy)
    result = linea("users", "verify-erased", EMAIL, exit_code=7)
    assert _traces(result.stdout) == {("platform_log", "body", "2000", "address")}
    assert deployed == [2] and len(calls) > 10  # the ALTER went through mid-way, the walk went on
    assert db.scalar("SELECT count(*) FROM information_schema.columns WHERE column_name = 'deployed'") == 1


def test_slow_work_between_ranges_does_not_shrink_them_below_64_pages(
    linea: CliRun, db: Database, erased: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18: beside the platform's load, time outside the search's transactions (checking the
    rows found, a machine whose CPU is shared) made the ranges shrink to 8 pages, and each range's
    own cost (a transaction, the snapshot, the statement) doubled the server's work. The ranges are
    sized by their transactions only, and never below 64 pages."""
    _big_table(db, rows=20_000, trace_rows=(20_000,))
    pages = db.scalar("SELECT pg_relation_size('platform_log') / current_setting('block_size')::int")
    assert pages > 500
    calls = _on_table(monkeypatch, "platform_log", lambda _call: time.sleep(0.2))
    result = linea("users", "verify-erased", EMAIL, exit_code=7)
    assert _traces(result.stdout) == {("platform_log", "body", "20000", "address")}
    assert 1 <= len(calls) <= -(-pages // 64)


def test_a_table_someone_holds_a_lock_on_is_stepped_around_then_searched(
    linea: CliRun, db: Database, erased: dict[str, Any], autocommit: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _big_table(db, rows=50)
    _one_page_ranges(monkeypatch)
    # The platform's deploy holds ACCESS EXCLUSIVE (an ALTER running): the search must not queue.
    autocommit.execute("BEGIN")
    autocommit.execute("LOCK TABLE platform_log IN ACCESS EXCLUSIVE MODE")
    calls = _on_table(monkeypatch, "platform_log", lambda call: None)
    result = linea("users", "verify-erased", EMAIL, exit_code=8)
    assert _unverified(result.stderr) == {"platform_log": (
        "its lock was not free in 5 tries of 100ms (others held or waited for it); not searched, rather than make them wait"
    )}
    assert len(calls) == 5  # the tries the message names

    # The deploy ends after the second try: the search steps aside, then reads the table.
    calls = _on_table(monkeypatch, "platform_log", lambda call: autocommit.execute("COMMIT") if call == 2 else None)
    result = linea("users", "verify-erased", EMAIL, exit_code=7)
    assert _traces(result.stdout) == {("platform_log", "body", "50", "address")}
    assert calls[:2] == [1, 2]


def test_anonymize_commits_its_erasure_and_exits_8_when_a_table_could_not_be_searched(
    linea: CliRun, db: Database, autocommit: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    erin = make_user(db, email=EMAIL, name=NAME)
    _big_table(db, rows=50, trace_rows=())
    monkeypatch.setattr(traces, "STEP_ASIDE_SECONDS", 0)

    def lock_platform_log(call: int) -> None:
        # Once the search has begun (the erasure, which empties addresses in the platform's tables
        # too, has committed), someone takes the table for themselves until the end.
        if call == 1:
            autocommit.execute("BEGIN")
            autocommit.execute("LOCK TABLE platform_log IN ACCESS EXCLUSIVE MODE")

    _on_table(monkeypatch, "events", lock_platform_log)
    result = linea("users", "anonymize", EMAIL, "--yes", exit_code=8)
    assert "error: erased what linea models, but the erasure could not be verified" in result.stderr
    assert set(_unverified(result.stderr)) == {"platform_log"}
    assert db.scalar("SELECT email FROM users WHERE id = :id", id=erin["id"]).startswith("deleted-")
    autocommit.execute("ROLLBACK")
    assert linea("users", "verify-erased", EMAIL).stdout.startswith("OK: ")


def test_a_row_the_platform_moves_during_the_search_is_still_found(
    linea: CliRun, db: Database, erased: dict[str, Any], autocommit: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """All ranges of a table read one snapshot: an updated row's new version, written to a page
    already searched, does not hide its old version from the pages still to come."""
    trace_row = 1000  # on a full page in the middle: an update must put it on another page
    _big_table(db, trace_rows=(trace_row,))
    db.execute("DELETE FROM platform_log WHERE id <= 100")
    autocommit.execute("VACUUM platform_log")  # the first pages are free space now
    _one_page_ranges(monkeypatch)
    before = _page(db, trace_row)

    def update(call: int) -> None:
        if call == 1:  # pages 0-3 searched
            db.execute(f"UPDATE platform_log SET body = body || '.' WHERE id = {trace_row}")
            assert _page(db, trace_row) < 4 < before, "the new version should land on a page already searched"

    _on_table(monkeypatch, "platform_log", update)
    result = linea("users", "verify-erased", EMAIL, exit_code=7)
    assert _traces(result.stdout) == {("platform_log", "body", str(trace_row), "address")}


def test_a_table_rewritten_during_the_search_is_searched_again(
    linea: CliRun, db: Database, erased: dict[str, Any], autocommit: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _big_table(db)
    db.execute("DELETE FROM platform_log WHERE id < 1990")
    _one_page_ranges(monkeypatch)

    def rewrite(call: int) -> None:
        if call == 1:  # compacts the table: the last rows move to the pages already searched
            autocommit.execute("VACUUM FULL platform_log")
            assert _page(db, 2000) < 4

    calls = _on_table(monkeypatch, "platform_log", rewrite)
    result = linea("users", "verify-erased", EMAIL, exit_code=7)
    assert _traces(result.stdout) == {("platform_log", "body", "2000", "address")}
    assert len(calls) >= 2


def test_anonymize_searches_only_after_its_erasure_committed(
    linea: CliRun, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    erin = make_user(db, email=EMAIL, name=NAME)
    # An address inside a longer text: the erasure empties whole addresses, so this one remains.
    db.execute(f"CREATE TABLE crm_contacts (id TEXT PRIMARY KEY, email TEXT); INSERT INTO crm_contacts VALUES ('c1', 'to: {EMAIL}')")
    seen: list[str] = []
    _on_table(monkeypatch, "crm_contacts", lambda call: seen.append(
        db.scalar("SELECT email FROM users WHERE id = :id", id=erin["id"])
    ))
    result = linea("users", "anonymize", EMAIL, "--yes", exit_code=7)
    assert seen and seen[0].startswith("deleted-")  # another connection saw the erasure committed
    assert "crm_contacts.email row c1: address" in result.stderr


# --- on the platform's database -----------------------------------------------------------------


def test_on_the_platforms_database_planted_copies_are_found_after_a_real_erasure(
    adopted: CliRun, platform_db: Database
) -> None:
    from tests.platform import VERA

    adopted("users", "anonymize", VERA["email"], "--yes")
    ok = adopted("users", "verify-erased", VERA["email"]).stdout
    assert re.fullmatch(r"OK: no trace in \d+ tables \(\d+ text, \d+ json, \d+ enum columns\)\n", ok), ok
    platform_db.execute("""
        CREATE TABLE "EmailOutbox" ("id" TEXT PRIMARY KEY, "payload" BYTEA, "links" TEXT[]);
        INSERT INTO "EmailOutbox" VALUES
            ('o1', convert_to('To: vera.visitor@example.com', 'UTF8'), NULL),
            ('o2', NULL, ARRAY['https://x.test/u?e=Vera.Visitor%40Example.com']);
    """)
    result = adopted("users", "verify-erased", VERA["email"], exit_code=7)
    assert _traces(result.stdout) == {
        ("EmailOutbox", "payload", "o1", "address"), ("EmailOutbox", "links", "o2", "address"),
    }
