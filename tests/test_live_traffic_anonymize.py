"""`users anonymize` beside the platform's live traffic (issue 18).

The platform goes on writing for the person while linea erases them: a login inserts a session
and an audit row pointing at the user, whose foreign-key checks lock the user row FOR KEY SHARE.
The erasure must not make those writes wait while it reads whole tables, and what they add
meanwhile must be erased too. Each test plays the platform from inside the erasure (a hook after
one of its steps), on connections of its own, and tells "waited behind linea" from "went through"
by asking PostgreSQL (`pg_blocking_pids`), never by timing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from linea_cli.services import personal_data
from tests.factories import make_audit_row, make_event, make_session, make_user, make_waitlist_entry
from tests.harness import CliRun, Database, plain_url

EMAIL, NAME, IP, AGENT = "ann.lee@example.com", "Ann Lee", "198.51.100.7", "AnnBrowser/1.0"
NEW_EMAIL = "ann.new@example.com"
# Generous bound for a step that normally takes milliseconds (a busy 2-core machine).
PATIENCE = 60.0


@pytest.fixture
def ann(linea: CliRun, db: Database) -> dict[str, Any]:
    """An admin to act, and Ann with sessions, audit rows (address, name, IP in their JSON) and an entry."""
    make_user(db, email="root@example.com", role="ADMIN")
    ann = make_user(db, email=EMAIL, name=NAME)
    event = make_event(db)
    make_waitlist_entry(db, event=event, email=EMAIL, user_id=ann["id"])
    ann["event_id"], ann["other_event_id"] = event["id"], make_event(db)["id"]
    for _ in range(3):
        make_session(db, user=ann)
        make_audit_row(db, action="LOGIN", resource="User", resource_id=ann["id"], user_id=ann["id"],
                       ip_address=IP, user_agent=AGENT, metadata={"email": EMAIL, "name": NAME})
    return ann


class Platform:
    """The platform's writes for Ann, on connections of its own, each watched from outside."""

    def __init__(self, url: URL, user_id: str, watcher: Database) -> None:
        self.url, self.user_id, self.watcher = plain_url(url), user_id, watcher
        self.written: list[str] = []  # ids of the audit rows committed
        self.waited_for_linea: list[str] = []  # what waited behind linea's transaction
        self._number = 0

    def connect(self) -> psycopg.Connection:
        connection = psycopg.connect(self.url, autocommit=False)
        connection.execute("SET lock_timeout = '120s'")  # waits are observed, never cut short
        connection.commit()
        return connection

    def login(self, connection: psycopg.Connection, *, email: str = EMAIL) -> str:
        """What platform_load does for the person: a session and an audit row (with their address,
        name and IP in it), in the connection's open transaction."""
        self._number += 1
        tag = f"{self._number}-{connection.info.backend_pid}"
        connection.execute(
            "INSERT INTO sessions (id, user_id, token, expires_at, created_at, updated_at) "
            "VALUES (%s, %s, %s, now() + interval '30 days', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')",
            (f"cpls{tag}", self.user_id, f"platform-token-{tag}-{'x' * 24}"),
        )
        connection.execute(
            "INSERT INTO audit_logs (id, action, resource, resource_id, user_id, ip_address, user_agent, metadata, created_at) "
            "VALUES (%s, 'LOGIN', 'User', %s, %s, %s, %s, %s, now() AT TIME ZONE 'UTC')",
            (f"cpla{tag}", self.user_id, self.user_id, IP, AGENT, json.dumps({"email": email, "name": NAME})),
        )
        return f"cpla{tag}"

    def mention(self, connection: psycopg.Connection, event_id: str) -> tuple[str, str]:
        """Rows holding the person's address without pointing at the user: someone else's audit row
        naming them, and a waitlist sign-up with their address and no account."""
        self._number += 1
        tag = f"{self._number}-{connection.info.backend_pid}"
        connection.execute(
            "INSERT INTO audit_logs (id, action, resource, resource_id, metadata, created_at) "
            "VALUES (%s, 'INVITE', 'Event', %s, %s, now() AT TIME ZONE 'UTC')",
            (f"cplm{tag}", event_id, json.dumps({"invited": [EMAIL.upper()]})),
        )
        connection.execute(
            "INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at) "
            "VALUES (%s, %s, %s, 'PENDING', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')",
            (f"cplw{tag}", EMAIL, event_id),
        )
        return f"cplm{tag}", f"cplw{tag}"

    def beside(self, linea_pid: int, what: str, write: Callable[[psycopg.Connection], None]) -> bool:
        """Run `write` (then commit) on a connection of its own while linea's transaction is open;
        True when it went through, False when PostgreSQL showed it waiting for linea's backend (it
        then finishes once linea's transaction has ended)."""
        done, failed, pids = threading.Event(), [], []

        def run() -> None:
            try:
                with self.connect() as connection:
                    pids.append(connection.info.backend_pid)
                    write(connection)
                    connection.commit()
            except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
                failed.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, daemon=True).start()
        deadline = time.monotonic() + PATIENCE
        while not done.wait(0.005):
            if pids and linea_pid in self.watcher.scalar("SELECT pg_blocking_pids(:pid)", pid=pids[0]):
                self.waited_for_linea.append(what)
                return False
            assert time.monotonic() < deadline, f"the platform's {what} neither went through nor waited for linea"
        assert not failed, f"the platform's {what} failed: {failed[0]!r}"
        return True


def after_first(kinds: set[str], act: Callable[[sa.orm.Session, str], None], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run `act(session, kind)` once right after the erasure's first erase of each kind in `kinds`."""
    seen: set[str] = set()
    assert kinds <= {kind.key for kind in personal_data.KINDS}, "a kind the erasure does not have: nothing would run"
    for kind in personal_data.KINDS:
        if kind.key not in kinds:
            continue
        original = type(kind).erase

        def erase(self: Any, session: Any, *args: Any, _original: Any = original, **kwargs: Any) -> int:
            changed = _original(self, session, *args, **kwargs)
            if self.key not in seen:
                seen.add(self.key)
                act(session, self.key)
            return changed

        monkeypatch.setattr(type(kind), "erase", erase)


def backend_pid(session: Any) -> int:
    return int(session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def ann_is_erased(db: Database, linea: CliRun, ann: dict[str, Any], audit_ids: list[str]) -> None:
    assert db.count("sessions", "user_id = :id", id=ann["id"]) == 0
    rows = db.all("SELECT ip_address, user_agent, metadata::text AS metadata FROM audit_logs WHERE id = ANY(:ids)", ids=audit_ids)
    assert len(rows) == len(audit_ids)
    for row in rows:
        assert row.ip_address is None and row.user_agent is None
        assert EMAIL not in row.metadata and NEW_EMAIL not in row.metadata and NAME not in row.metadata
    linea("--as", "root@example.com", "users", "verify-erased", EMAIL)


def test_the_platform_never_waits_for_the_erasure_while_it_reads_whole_tables(
    linea: CliRun, db: Database, direct_database_url: URL, ann: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After each kind's erase, the platform logs Ann in: it goes through at once (nothing holds
    the user row against its foreign-key checks), and what it wrote is erased all the same, as are
    an audit row and a sign-up holding only her address, written after the audit log was read."""
    platform = Platform(direct_database_url, ann["id"], db)
    mentions: list[tuple[str, str]] = []

    def log_in(session: Any, kind: str) -> None:
        def write(connection: psycopg.Connection) -> None:
            platform.written.append(platform.login(connection))
            if kind == "audit_logs":
                mentions.append(platform.mention(connection, ann["other_event_id"]))
        platform.beside(backend_pid(session), f"login after erasing {kind}", write)

    after_first({"sessions", "waitlist_entries", "owned_events", "audit_logs", "platform_rows"}, log_in, monkeypatch)
    record = linea("--as", "root@example.com", "users", "anonymize", EMAIL, "--yes", "--json").json

    assert platform.waited_for_linea == [], "the platform's writes for the person waited behind linea's erasure"
    assert len(platform.written) == 5
    assert record["sessions_deleted"] == 3 + 5
    ann_is_erased(db, linea, ann, platform.written)
    [(audit_id, entry_id)] = mentions
    assert EMAIL not in db.scalar("SELECT lower(metadata::text) FROM audit_logs WHERE id = :id", id=audit_id)
    entry = db.one("SELECT email, status::text AS status FROM waitlist_entries WHERE id = :id", id=entry_id)
    assert entry.email.endswith("@anonymized.invalid") and entry.status == "CANCELLED"


def test_linea_steps_aside_for_a_platform_transaction_holding_the_user_and_erases_what_it_wrote(
    linea: CliRun, db: Database, direct_database_url: URL, ann: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A platform transaction that wrote for Ann is still open when linea wants the user row: linea
    waits for it (in short tries, stepping aside between them), and erases what it committed."""
    platform = Platform(direct_database_url, ann["id"], db)
    opened, release = threading.Event(), threading.Event()
    seen_waiting: list[bool] = []
    open_login: list[psycopg.Connection] = []

    def hold_a_login(session: Any, kind: str) -> None:
        linea_pid = backend_pid(session)

        def write(connection: psycopg.Connection) -> None:
            platform.written.append(platform.login(connection))
            open_login.append(connection)
            opened.set()
            release.wait(PATIENCE)  # committed once linea was seen waiting for it

        def watch() -> None:
            opened.wait(PATIENCE)
            holder = open_login[0].info.backend_pid if open_login else None
            deadline = time.monotonic() + PATIENCE
            while time.monotonic() < deadline:
                if holder in db.scalar("SELECT pg_blocking_pids(:pid)", pid=linea_pid):
                    seen_waiting.append(True)
                    break
                time.sleep(0.005)
            release.set()

        threading.Thread(target=watch, daemon=True).start()
        threading.Thread(target=lambda: platform.beside(linea_pid, "open login", write), daemon=True).start()
        assert opened.wait(PATIENCE) or platform.waited_for_linea, "the platform's login never started"

    after_first({"audit_logs"}, hold_a_login, monkeypatch)
    linea("--as", "root@example.com", "users", "anonymize", EMAIL, "--yes", env={"LINEA_LOCK_TIMEOUT": "120s"})

    assert platform.waited_for_linea == [], "the platform's login waited behind linea's erasure"
    assert seen_waiting, "linea did not wait for the platform's open transaction on the user"
    ann_is_erased(db, linea, ann, platform.written)


def test_an_address_changed_while_the_erasure_reads_is_erased_too(
    linea: CliRun, db: Database, direct_database_url: URL, ann: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ann changes her address on the platform while linea scrubs the audit log (nothing holds her
    row against it any more), and logs in with it: the erasure knows it once it locks the row."""
    platform = Platform(direct_database_url, ann["id"], db)

    def change_address(session: Any, kind: str) -> None:
        def write(connection: psycopg.Connection) -> None:
            connection.execute("UPDATE users SET email = %s, updated_at = now() AT TIME ZONE 'UTC' WHERE id = %s", (NEW_EMAIL, ann["id"]))
            platform.written.append(platform.login(connection, email=NEW_EMAIL))
        platform.beside(backend_pid(session), "address change", write)

    after_first({"audit_logs"}, change_address, monkeypatch)
    record = linea("--as", "root@example.com", "users", "anonymize", EMAIL, "--yes", "--json").json

    assert platform.waited_for_linea == [], "the platform's address change waited behind linea's erasure"
    assert record["email"] == f"deleted-{ann['id']}@anonymized.invalid"
    assert db.scalar("SELECT email FROM users WHERE id = :id", id=ann["id"]) == record["email"]
    ann_is_erased(db, linea, ann, platform.written)
    linea("--as", "root@example.com", "users", "verify-erased", NEW_EMAIL)


def test_a_platform_transaction_holding_the_user_throughout_makes_it_give_up_with_nothing_erased(
    linea: CliRun, db: Database, direct_database_url: URL, ann: dict[str, Any]
) -> None:
    platform = Platform(direct_database_url, ann["id"], db)
    with platform.connect() as holding:
        platform.login(holding)  # uncommitted: its foreign-key check holds Ann's row
        result = linea("--as", "root@example.com", "users", "anonymize", EMAIL, "--yes",
                       env={"LINEA_LOCK_TIMEOUT": "300ms"}, exit_code=5)
        holding.rollback()
    assert "gave up waiting for a lock" in result.stderr and "nothing was erased" in result.stderr
    assert db.scalar("SELECT email FROM users WHERE id = :id", id=ann["id"]) == EMAIL
    assert db.count("sessions", "user_id = :id", id=ann["id"]) == 3
    assert db.count("audit_logs", "user_id = :id AND ip_address = :ip", id=ann["id"], ip=IP) == 3


def test_a_platform_transaction_that_holds_the_user_and_waits_for_the_erasure_makes_it_give_up_at_once(
    linea: CliRun, db: Database, direct_database_url: URL, ann: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ann logs in and, in the same platform transaction, her waitlist entry is confirmed, just
    after linea anonymized it: the confirmation waits for linea (the entry's row lock), and linea
    cannot lock her user row before that transaction ends. linea gives up at once, erasing
    nothing, rather than keep the platform waiting for LINEA_LOCK_TIMEOUT."""
    platform = Platform(direct_database_url, ann["id"], db)

    def log_in_and_confirm(session: Any, kind: str) -> None:
        def write(connection: psycopg.Connection) -> None:
            platform.written.append(platform.login(connection))
            connection.execute(
                "UPDATE waitlist_entries SET status = 'CONFIRMED', updated_at = now() AT TIME ZONE 'UTC' WHERE event_id = %s AND user_id = %s",
                (ann["event_id"], ann["id"]),
            )
        platform.beside(backend_pid(session), "login and confirmation", write)

    after_first({"waitlist_entries"}, log_in_and_confirm, monkeypatch)
    result = linea("--as", "root@example.com", "users", "anonymize", EMAIL, "--yes",
                   env={"LINEA_LOCK_TIMEOUT": "120s"}, exit_code=5)

    assert platform.waited_for_linea == ["login and confirmation"]  # on the entry, as before
    assert "waits for this erasure" in result.stderr and "nothing was erased" in result.stderr
    deadline = time.monotonic() + PATIENCE
    while db.count("waitlist_entries", "user_id = :id AND status = 'CONFIRMED'", id=ann["id"]) == 0:
        assert time.monotonic() < deadline, "the platform's confirmation never committed"
        time.sleep(0.01)  # the platform's transaction goes on once linea's has ended
    assert db.scalar("SELECT email FROM users WHERE id = :id", id=ann["id"]) == EMAIL
    assert db.scalar("SELECT email FROM waitlist_entries WHERE user_id = :id", id=ann["id"]) == EMAIL
    assert db.count("sessions", "user_id = :id", id=ann["id"]) == 3 + 1

