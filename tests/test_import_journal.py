"""A large `waitlist import` beside the platform's traffic: short transactions, still all or nothing.

An import of more than JOURNAL_FROM_ROWS rows writes them in batches, each its own transaction
(linea_cli.services.import_journal says why: one long transaction holding the event row's FOR
KEY SHARE lock made every platform update of that event leave a multixact version behind that
each later foreign key check walked). The tests stop the import at a known row with a gate: a
test trigger that makes the insert of `gate@example.com` wait on an advisory lock the test
holds. At the gate, nothing depends on timing: what the platform can do and see there is
what these tests check, then what a kill -9, SIGTERM, `--resume` and the next import leave.

One test times the import, as the issue asks: beside a platform-writer load against the same
import without it, a ratio with a generous bound (today's design stays within a few times; one
long transaction went from 2 s to minutes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from linea_cli.services.import_journal import FIRST_BATCH_ROWS, JOURNAL_FROM_ROWS
from tests.factories import make_event, make_waitlist_entry
from tests.harness import ROOT, CliRun, Database, plain_url, wait_until

GATE_KEY = 4242
ROWS = JOURNAL_FROM_ROWS + 2_000
# In the second batch whatever its size (the first holds FIRST_BATCH_ROWS rows; a batch at most doubles).
GATE_LINE = FIRST_BATCH_ROWS + FIRST_BATCH_ROWS // 4


@pytest.fixture
def gate(db: Database) -> Iterator[sa.Connection]:
    """Closed: an insert of gate@example.com waits until the test opens it (unlocks GATE_KEY)."""
    db.execute(f"""
        CREATE FUNCTION public.test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.email = 'gate@example.com' THEN PERFORM pg_advisory_xact_lock_shared({GATE_KEY}); END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_gate BEFORE INSERT ON waitlist_entries FOR EACH ROW EXECUTE FUNCTION public.test_gate();
    """)
    with db.engine.connect() as holder:
        holder.execute(sa.text(f"SELECT pg_advisory_lock({GATE_KEY})"))
        holder.commit()
        yield holder
        holder.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        holder.commit()


def open_gate(holder: sa.Connection) -> None:
    holder.execute(sa.text(f"SELECT pg_advisory_unlock({GATE_KEY})"))
    holder.commit()


def big_file(tmp_path: Path, name: str = "big.csv") -> str:
    path = tmp_path / name
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email\n")
        for line in range(2, ROWS + 2):
            handle.write("gate@example.com\n" if line == GATE_LINE else f"row{line}@example.com\n")
    return str(path)


def start_import(database_url, tmp_path: Path, *args: str) -> subprocess.Popen:  # noqa: ANN001
    env = {**os.environ, "LINEA_DATABASE_URL": plain_url(database_url), "LINEA_DATA_DIR": str(tmp_path), "NO_COLOR": "1",
           "PYTHONFAULTHANDLER": "1"}
    env.pop("LINEA_ACTOR", None)
    return subprocess.Popen([sys.executable, "-m", "linea_cli", "waitlist", "import", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_at_gate(db: Database, process: subprocess.Popen) -> None:
    wait_until(
        lambda: db.scalar(f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {GATE_KEY} AND NOT granted"),
        what="the import reached the gate", processes=[process],
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        stdout, stderr = process.communicate()
    return process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")


def live_emails(db: Database, event: dict) -> int:
    return db.count("waitlist_entries", "event_id = :e", e=event["id"])


def journal_rows(db: Database) -> int:
    return int(db.scalar("SELECT count(*) FROM linea.imports"))


def no_address_in_the_journal(db: Database) -> None:
    """The journal names the file and counts, never a person: nothing of it matches an address."""
    assert db.scalar("SELECT count(*) FROM linea.imports AS i WHERE i::text LIKE '%@%'") == 0


def platform_signup(db: Database, event: dict, email: str) -> None:
    """What the platform does when someone joins: the entry and the event's updated_at, at once or not at all."""
    with db.engine.begin() as platform:
        platform.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
        # Fails at once (55P03) if any transaction holds a lock on the event row, linea's FOR KEY SHARE included.
        platform.execute(sa.text("SELECT 1 FROM events WHERE id = :e FOR UPDATE NOWAIT"), {"e": event["id"]})
        platform.execute(sa.text(
            "INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at) "
            "VALUES (:id, :email, :e, 'PENDING', now(), now())"
        ), {"id": "cplatform" + email.split("@")[0], "email": email, "e": event["id"]})
        platform.execute(sa.text("UPDATE events SET updated_at = now() WHERE id = :e"), {"e": event["id"]})


def test_a_large_import_commits_batch_by_batch_and_leaves_the_event_row_free_between_them(
    db: Database, database_url, gate: sa.Connection, tmp_path: Path,  # noqa: ANN001
) -> None:
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="before@example.com")
    process = start_import(database_url, tmp_path, event["slug"], big_file(tmp_path), "--json")
    wait_at_gate(db, process)
    # The first batch is committed: its transaction, and its lock on the event row, are over. (In
    # one transaction, nothing would be visible yet, and the lock would last to the end.)
    assert live_emails(db, event) > 1
    # A sign-up meanwhile takes the event row at once and commits.
    platform_signup(db, event, "platform@example.com")
    # The connection holding the import's lock keeps no snapshot: no dead version of the event row
    # outlives a batch because of it (a bound parameter once left its portal, and an xmin, open).
    keeper = db.all("SELECT backend_xmin FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name LIKE 'linea/%' AND state = 'idle in transaction'")
    assert len(keeper) == 1 and keeper[0].backend_xmin is None
    open_gate(gate)
    code, stdout, stderr = finish(process)
    assert code == 0, stderr
    assert json.loads(stdout)["inserted"] == ROWS
    assert live_emails(db, event) == ROWS + 2
    assert journal_rows(db) == 0
    assert db.count("audit_logs", "action = 'IMPORT'") == 1
    # Ids still sort like the file: sign-up order is the file's order.
    ordered = [row.email for row in db.all(
        "SELECT email FROM waitlist_entries WHERE event_id = :e AND email LIKE 'row%' ORDER BY created_at, id LIMIT 3", e=event["id"])]
    assert ordered == ["row2@example.com", "row3@example.com", "row4@example.com"]


@pytest.mark.parametrize("then", ["another import undoes it", "--resume finishes it"])
def test_a_killed_import_is_reported_then_undone_or_resumed(
    linea: CliRun, db: Database, database_url, gate: sa.Connection, tmp_path: Path, then: str,  # noqa: ANN001
) -> None:
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="before@example.com")
    path = big_file(tmp_path)
    process = start_import(database_url, tmp_path, event["slug"], path)
    wait_at_gate(db, process)
    process.send_signal(signal.SIGKILL)
    finish(process)
    open_gate(gate)  # the killed linea's batch ends (rolled back) once its backend gets past the gate
    wait_until(
        lambda: not db.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                              "AND application_name LIKE 'linea/%' AND pid <> pg_backend_pid()"),
        what="the killed import's backends ended",
    )
    written = live_emails(db, event) - 1
    assert 0 < written < ROWS  # half done: what the journal is for
    no_address_in_the_journal(db)
    doctor = linea("db", "doctor", "--json", exit_code=5).json
    unfinished = next(check for check in doctor if check["check"] == "unfinished imports")
    assert unfinished["status"] == "FAIL" and event["slug"] in unfinished["detail"] and "--resume" in unfinished["detail"]

    if then == "another import undoes it":
        small = tmp_path / "small.csv"
        small.write_text("email\nsomeone@example.com\n")
        # A dry run says that its counts include the unfinished import's entries.
        dry = linea("waitlist", "import", event["slug"], str(small), "--dry-run", "--json")
        assert f"an unfinished import into {event['slug']} wrote {written} entries" in dry.stderr
        # Meanwhile an admin confirmed one of its entries and removed another: theirs now, kept.
        linea("waitlist", "confirm", event["slug"], "row2@example.com")
        linea("waitlist", "remove", event["slug"], "row3@example.com")
        result = linea("waitlist", "import", event["slug"], str(small), "--json")
        assert "undid an unfinished import into " + event["slug"] in result.stderr
        assert f"removed the {written - 2} entries it had written; kept 2 that were changed since" in result.stderr
        left = {row.email: (row.status, row.deleted_at is not None) for row in db.all(
            "SELECT email, status::text, deleted_at FROM waitlist_entries WHERE event_id = :e", e=event["id"])}
        assert left == {"before@example.com": ("PENDING", False), "someone@example.com": ("PENDING", False),
                        "row2@example.com": ("CONFIRMED", False), "row3@example.com": ("PENDING", True)}
        assert db.count("audit_logs", "action = 'IMPORT'") == 1  # the small import's own
        undone = db.all("SELECT metadata FROM audit_logs WHERE action = 'IMPORT_UNDONE'")
        assert len(undone) == 1 and (undone[0].metadata["removed"], undone[0].metadata["kept"]) == (written - 2, 2)
    else:
        other_file = tmp_path / "other.csv"
        other_file.write_text(Path(path).read_text().replace("row9@", "row9x@"))
        refused = linea("waitlist", "import", event["slug"], str(other_file), "--resume", exit_code=1)
        assert "is not the file of the unfinished import" in refused.stderr
        assert live_emails(db, event) - 1 == written and journal_rows(db) == 1
        result = linea("waitlist", "import", event["slug"], path, "--resume", "--json")
        assert result.json["inserted"] == ROWS
        assert live_emails(db, event) == ROWS + 1
        assert db.count("audit_logs", "action = 'IMPORT'") == 1
    assert journal_rows(db) == 0
    others_failing = any(check["status"] == "FAIL" and check["check"] != "unfinished imports" for check in doctor)
    after = linea("db", "doctor", "--json", exit_code=5 if others_failing else 0).json
    assert next(check for check in after if check["check"] == "unfinished imports")["status"] == "OK"


def test_one_import_into_an_event_at_a_time(
    linea: CliRun, db: Database, database_url, gate: sa.Connection, tmp_path: Path,  # noqa: ANN001
) -> None:
    event, other = make_event(db), make_event(db)
    process = start_import(database_url, tmp_path, event["slug"], big_file(tmp_path), "--json")
    wait_at_gate(db, process)
    written = live_emails(db, event)
    # A second import into that event while the first runs would skip its rows as already listed
    # (and lose them if the first were then undone): refused, nothing changed.
    again = tmp_path / "again.csv"
    again.write_text("email\nrow2@example.com\nnew@example.com\n")
    refused = linea("waitlist", "import", event["slug"], str(again), exit_code=4)
    assert f"an import into {event['slug']} is running" in refused.stderr
    assert live_emails(db, event) == written
    linea("waitlist", "import", other["slug"], str(again))  # another event's import is not held up
    open_gate(gate)
    code, stdout, stderr = finish(process)
    assert code == 0, stderr
    assert json.loads(stdout)["inserted"] == ROWS
    assert live_emails(db, event) == ROWS and live_emails(db, other) == 2


def test_sigterm_mid_import_undoes_what_its_batches_committed(
    db: Database, database_url, gate: sa.Connection, tmp_path: Path,  # noqa: ANN001
) -> None:
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="before@example.com")
    process = start_import(database_url, tmp_path, event["slug"], big_file(tmp_path))
    wait_at_gate(db, process)
    assert live_emails(db, event) > 1
    process.send_signal(signal.SIGTERM)
    code, _, stderr = finish(process)
    assert code == 143, stderr
    assert [row.email for row in db.all("SELECT email FROM waitlist_entries WHERE event_id = :e", e=event["id"])] == [
        "before@example.com"]
    assert journal_rows(db) == 0
    # The batches' entries came and went: the undo is in the audit log, no import is.
    assert [row.action for row in db.all("SELECT action FROM audit_logs")] == ["IMPORT_UNDONE"]


def statuses_file(tmp_path: Path) -> Path:
    """ROWS addresses to confirm, then a second row for row7 (a duplicate in the file: the first row wins)."""
    path = tmp_path / "statuses.csv"
    path.write_text("email,status\n" + "".join(f"row{n}@example.com,CONFIRMED\n" for n in range(ROWS))
                    + "row7@example.com,CANCELLED\n", encoding="utf-8")
    return path


def test_update_of_duplicates_and_skip_counts_through_the_journal(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="row5@example.com", status="PENDING")
    make_waitlist_entry(db, event=event, email="row6@example.com", status="CANCELLED")
    path = statuses_file(tmp_path)
    counts = linea("waitlist", "import", event["slug"], str(path), "--on-duplicate", "update", "--json").json
    assert (counts["inserted"], counts["updated"], counts["skipped"]) == (ROWS - 2, 2, 1)
    statuses = dict(db.all("SELECT email, status::text FROM waitlist_entries WHERE event_id = :e AND email IN "
                           "('row5@example.com', 'row6@example.com', 'row7@example.com')", e=event["id"]))
    assert statuses == {"row5@example.com": "CONFIRMED", "row6@example.com": "CONFIRMED", "row7@example.com": "CONFIRMED"}
    assert journal_rows(db) == 0


def test_resume_needs_an_unfinished_import_of_that_event(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    path = tmp_path / "x.csv"
    path.write_text("email\na@example.com\n")
    assert "no unfinished import" in linea("waitlist", "import", event["slug"], str(path), "--resume", exit_code=3).stderr
    linea("waitlist", "import", event["slug"], str(path), "--resume", "--dry-run", exit_code=2)
    assert live_emails(db, event) == 0


def test_a_large_dry_run_counts_without_writing_or_locking(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="Row5@Example.com", status="PENDING")
    path = statuses_file(tmp_path)
    counts = linea("waitlist", "import", event["slug"], str(path), "--on-duplicate", "update", "--dry-run", "--json").json
    assert (counts["inserted"], counts["updated"], counts["skipped"], counts["dry_run"]) == (ROWS - 1, 1, 1, True)
    assert live_emails(db, event) == 1 and journal_rows(db) == 0 and db.count("audit_logs") == 0


# --- beside the platform's live traffic ---------------------------------------------------------

LOAD_ROWS = 100_000
LOAD_WRITERS = 3
# Generous: on a quiet 2-core machine the import beside the writers takes about 1.5 to 3 times its
# quiet time (the writers and their server processes share the cores); one long transaction took
# 2 s quiet and minutes beside the same writers (benchmarks/README.md).
LOAD_RATIO = 8


class PlatformWriters:
    """What the platform does when people join the event's waitlist, about 45 times a second per
    writer: insert an entry and set the event's updated_at, in one short transaction."""

    def __init__(self, db: Database, event: dict) -> None:
        self.db, self.event = db, event
        self.stop = threading.Event()
        self.done = 0
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(LOAD_WRITERS)]

    def __enter__(self) -> PlatformWriters:
        for thread in self.threads:
            thread.start()
        wait_until(lambda: self.done >= LOAD_WRITERS * 5 or self.failures, what="the platform writers ran")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _write(self, number: int) -> None:
        count = 0
        while not self.stop.is_set():
            count += 1
            try:
                with self.db.engine.begin() as platform:
                    platform.execute(sa.text(
                        "INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at) "
                        "VALUES (:id, :email, :e, 'PENDING', now(), now())"
                    ), {"id": f"cload{number}x{count}", "email": f"load{number}.{count}@example.com", "e": self.event["id"]})
                    platform.execute(sa.text("UPDATE events SET updated_at = now() WHERE id = :e"), {"e": self.event["id"]})
                self.done += 1
            except sa.exc.DBAPIError as exc:  # a deadlock, a serialization failure, a lock timeout
                self.failures.append(str(exc.orig))
            self.stop.wait(0.022)


def timed_import(database_url, tmp_path: Path, event: dict, path: str, *, timeout: float | None = None) -> float:  # noqa: ANN001
    started = time.perf_counter()
    process = start_import(database_url, tmp_path, event["slug"], path, "--json")
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"the import beside the platform's writers was still running after {timeout:.0f} s", pytrace=False)
    assert process.returncode == 0, stderr.decode(errors="replace")
    assert json.loads(stdout)["inserted"] == LOAD_ROWS
    return time.perf_counter() - started


def test_a_large_import_beside_the_platforms_writers_keeps_its_speed(
    db: Database, database_url, tmp_path: Path,  # noqa: ANN001
) -> None:
    path = tmp_path / "load.csv"
    path.write_text("email\n" + "".join(f"person{n}@example.com\n" for n in range(LOAD_ROWS)), encoding="utf-8")
    quiet = timed_import(database_url, tmp_path, make_event(db), str(path))
    event = make_event(db)
    with PlatformWriters(db, event) as writers:
        before = writers.done
        loaded = timed_import(database_url, tmp_path, event, str(path), timeout=LOAD_RATIO * quiet + 30)
        during = writers.done - before
    assert loaded <= LOAD_RATIO * quiet + 5, f"{loaded:.1f} s beside the writers, {quiet:.1f} s quiet"
    assert writers.failures == []
    assert during > 0  # the platform went on writing meanwhile
    assert live_emails(db, event) == LOAD_ROWS + writers.done


def test_a_bad_row_at_the_end_of_a_large_file_writes_nothing(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    path = tmp_path / "bad-end.csv"
    path.write_text("email\n" + "".join(f"row{n}@example.com\n" for n in range(ROWS)) + "not an address\n")
    result = linea("waitlist", "import", event["slug"], str(path), exit_code=1)
    assert f"line {ROWS + 2}" in result.stderr and "nothing was imported" in result.stderr
    assert live_emails(db, event) == 0 and journal_rows(db) == 0 and db.count("audit_logs") == 0


def test_an_empty_file_name_is_one_clear_line(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    result = linea("waitlist", "import", event["slug"], "", exit_code=1)
    assert result.stderr.strip() == "error: the file name is empty: name a CSV file, or - for stdin"
    assert live_emails(db, event) == 0
