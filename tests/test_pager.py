"""At a terminal, a table taller than the screen goes through the person's pager; piped, never."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.factories import days_from_now, make_event, make_waitlist_entry
from tests.harness import ROOT, CliRun, Database, run_linea_in_terminal

# A pager that shows it was used: every line it is given, marked.
MARKING_PAGER = "sed -u 's/^/paged: /'"
ROWS = 30  # more lines than the 24 of the test terminal
HEADER = "email".ljust(len("guest00@example.net") + 2) + "status"


@pytest.fixture
def tall_list(db: Database) -> dict:
    event = make_event(db, slug="gala")
    for n in range(ROWS):
        make_waitlist_entry(db, event=event, email=f"guest{n:02}@example.net")
    make_event(db, slug="small")
    return event


def shown(linea: CliRun, *args: str, **env: str | None) -> str:
    code, text, stderr = run_linea_in_terminal(args, env={**linea.env, **env}, columns=80)
    assert code == 0, stderr
    assert "warning" not in stderr and "error" not in stderr, stderr
    return text


def test_a_table_taller_than_the_terminal_goes_through_linea_pager_then_pager(linea: CliRun, tall_list: dict) -> None:
    text = shown(linea, "waitlist", "list", "gala", "--fields", "email,status", LINEA_PAGER=MARKING_PAGER, PAGER="false")
    lines = text.splitlines()
    assert lines[:3] == ["paged: Waitlist entries", "paged: " + HEADER, "paged: guest00@example.net  PENDING"]
    assert len(lines) == ROWS + 2 and all(line.startswith("paged: ") for line in lines)
    # PAGER when LINEA_PAGER is not set.
    text = shown(linea, "waitlist", "list", "gala", "--fields", "email,status", LINEA_PAGER=None, PAGER=MARKING_PAGER)
    assert text.splitlines()[-1] == "paged: guest29@example.net  PENDING"
    # A record view taller than the screen too.
    text = shown(linea, "events", "show", "gala", LINEA_PAGER=MARKING_PAGER, LINES="5")
    assert text.startswith("paged: Event gala\npaged: id ")


def test_no_pager_when_asked_when_it_fits_or_when_empty(linea: CliRun, tall_list: dict) -> None:
    text = shown(linea, "waitlist", "list", "gala", "--fields", "email,status", "--no-pager", LINEA_PAGER=MARKING_PAGER)
    assert text.splitlines()[:2] == ["Waitlist entries", HEADER]
    assert "paged" not in text and len(text.splitlines()) == ROWS + 2
    # A table that fits the screen is printed as it is.
    text = shown(linea, "waitlist", "list", "gala", "--fields", "email,status", "--limit", "5", LINEA_PAGER=MARKING_PAGER)
    assert "paged" not in text and text.splitlines()[-1] == "guest04@example.net  PENDING"
    # An empty LINEA_PAGER means no pager, whatever PAGER says.
    text = shown(linea, "waitlist", "list", "gala", "--fields", "email,status", LINEA_PAGER="", PAGER=MARKING_PAGER)
    assert "paged" not in text and len(text.splitlines()) == ROWS + 2


def test_a_piped_table_never_goes_through_the_pager(linea: CliRun, tall_list: dict) -> None:
    result = linea("waitlist", "list", "gala", "--fields", "email,status", env={"LINEA_PAGER": MARKING_PAGER})
    assert result.stdout.splitlines()[:2] == ["email\tstatus", "guest00@example.net\tPENDING"]
    assert "paged" not in result.stdout and len(result.stdout.splitlines()) == ROWS + 1


def test_without_a_pager_set_linea_runs_less_quitting_when_it_fits(linea: CliRun, tall_list: dict, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    less = bin_dir / "less"
    less.write_text("#!/bin/sh\necho \"less $*\"\nexec cat\n")
    less.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    text = shown(linea, "waitlist", "list", "gala", "--fields", "email,status", LINEA_PAGER=None, PAGER=None, PATH=path)
    assert text.splitlines()[:2] == ["less -FRX", "Waitlist entries"]


def test_a_pager_that_cannot_run_is_said_and_the_table_shown(linea: CliRun, tall_list: dict) -> None:
    code, text, stderr = run_linea_in_terminal(
        ("waitlist", "list", "gala", "--fields", "email,status"), env={**linea.env, "LINEA_PAGER": "no-such-pager-here -x"}, columns=80
    )
    assert code == 0
    assert stderr == "warning: cannot run the pager no-such-pager-here -x (No such file or directory); showing the table as it is\n"
    assert len(text.splitlines()) == ROWS + 2


def test_a_pager_variable_that_is_not_a_command_line_is_an_error(linea: CliRun, tall_list: dict) -> None:
    code, text, stderr = run_linea_in_terminal(
        ("waitlist", "list", "gala"), env={**linea.env, "LINEA_PAGER": "less 'unclosed"}, columns=80
    )
    assert (code, text) == (1, "")
    assert stderr == "error: LINEA_PAGER is not a command line: No closing quotation\nhint: unset LINEA_PAGER, or quote it as a shell would\n"


def test_quitting_the_pager_before_the_first_line_ends_the_list_quietly(linea: CliRun, tall_list: dict) -> None:
    code, text, stderr = run_linea_in_terminal(("waitlist", "list", "gala"), env={**linea.env, "LINEA_PAGER": "true"}, columns=80)
    assert (code, text, stderr) == (0, "", "")


def test_quitting_the_pager_early_ends_the_list_quietly(linea: CliRun, db: Database, tall_list: dict) -> None:
    add_entries(db, tall_list, 3000)
    code, text, stderr = run_linea_in_terminal(
        ("waitlist", "list", "gala", "--fields", "email,status", "--all"), env={**linea.env, "LINEA_PAGER": "head -n 3"}, columns=80
    )
    assert (code, stderr) == (0, "")
    assert [line.split() for line in text.splitlines()] == [["Waitlist", "entries"], ["email", "status"], ["guest00@example.net", "PENDING"]]


def add_entries(db: Database, event: dict, count: int) -> None:
    """`count` more entries on `event`, after its others, with long addresses (about 60 characters a line)."""
    db.execute(
        "INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at) "
        "SELECT 'bulk' || lpad(n::text, 21, '0'), 'guest' || lpad(n::text, 6, '0') || '@long-forgotten-guests.example.org',"
        " :event, 'PENDING', now() + n * interval '1 ms', now() FROM generate_series(1, :count) AS n",
        event=event["id"], count=count,
    )


def run_on_terminal_acting(args: tuple[str, ...], *, env: dict[str, str | None], when: bytes, act: Callable[[], None]) -> bytes:
    """`linea ...` with stdout on an 80-column pseudo-terminal, read as it comes: once `when` has been
    shown, `act()` runs (the test holds the terminal meanwhile: a pager and linea behind it wait)."""
    import fcntl
    import pty
    import struct
    import termios

    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    environment = {**os.environ, **env, "COLUMNS": None, "LINES": None}
    process = subprocess.Popen(
        [sys.executable, "-m", "linea_cli", *args], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=secondary,
        stderr=subprocess.PIPE, env={key: value for key, value in environment.items() if value is not None},
    )
    os.close(secondary)
    written, acted = b"", False
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:
            break
        if not data:
            break
        written += data
        if not acted and when in written:
            act()
            acted = True
    _, stderr = process.communicate(timeout=600)
    os.close(primary)
    assert process.returncode == 0, stderr
    assert acted, written[-2000:]
    return written


def test_all_streams_rows_to_the_pager_as_pages_arrive(linea: CliRun, db: Database, tall_list: dict) -> None:
    # 12 pages of 1,000 rows, 700 kB: far more than a pipe and a terminal hold. The row added once
    # the first rows are on the screen is shown only if the last pages were read after that.
    add_entries(db, tall_list, 12000)

    def add_last() -> None:
        make_waitlist_entry(db, event=tall_list, email="latecomer@example.net", created_at=days_from_now(1))

    written = run_on_terminal_acting(
        ("waitlist", "list", "gala", "--fields", "email,status", "--all"), env={**linea.env, "LINEA_PAGER": MARKING_PAGER},
        when=b"paged: guest00@example.net", act=add_last,
    )
    lines = written.decode().replace("\r\n", "\n").splitlines()
    assert len(lines) == 2 + ROWS + 12000 + 1
    # Columns sized from the first page: the email column is as wide as its longest address.
    width = len("guest000001@long-forgotten-guests.example.org") + 2
    assert lines[2] == "paged: " + "guest00@example.net".ljust(width) + "PENDING"
    assert lines[-1] == "paged: " + "latecomer@example.net".ljust(width) + "PENDING"
