"""At a terminal, a table taller than the screen goes through the person's pager; piped, never."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.factories import days_from_now, make_event, make_user, make_waitlist_entry
from tests.harness import HANG_GUARD_SECONDS, ROOT, CliRun, Database, run_linea_in_terminal

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


# --- the real less, as a person meets it --------------------------------------------------------

LESS = "/usr/bin/less"
# What less writes besides text: CSI sequences (cursor, erase, standout), keypad modes, carriage
# returns, bells and backspaces.
_TERMINAL_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>]|[\r\x07\x08]")


class PersonAtTerminal:
    """`linea ...` run by a person at an 80x24 terminal (stdin and stdout on it, its controlling
    terminal, where less reads keys), with no pager chosen: linea runs `less -FRX` from PATH."""

    def __init__(self, args: tuple[str, ...], *, env: dict[str, str | None]) -> None:
        self.primary, secondary = pty.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        environment = {
            **os.environ, **env, "LINEA_PAGER": None, "PAGER": None, "LESS": None, "LESSOPEN": None, "LESSCLOSE": None,
            "COLUMNS": None, "LINES": None, "TERM": "xterm", "PATH": f"{Path(LESS).parent}{os.pathsep}{os.environ['PATH']}",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "linea_cli", *args], cwd=ROOT, stdin=secondary, stdout=secondary, stderr=subprocess.PIPE,
            env={key: value for key, value in environment.items() if value is not None},
            start_new_session=True, preexec_fn=_take_terminal,
        )
        os.close(secondary)
        self.shown = b""
        self.read_up_to = 0

    @property
    def screen(self) -> str:
        return _TERMINAL_CONTROL.sub("", self.shown.decode(errors="replace"))

    def type(self, keys: str) -> None:
        os.write(self.primary, keys.encode())

    def wait_for(self, pattern: str) -> re.Match[str]:
        """Read until `pattern` shows after what earlier waits consumed (bounded only against a hang)."""
        compiled = re.compile(pattern)
        while True:
            match = compiled.search(self.screen, self.read_up_to)
            if match:
                self.read_up_to = match.end()
                return match
            ready, _, _ = select.select([self.primary], [], [], HANG_GUARD_SECONDS)
            data = b""
            if ready:
                try:
                    data = os.read(self.primary, 65536)
                except OSError:  # linea and less are gone
                    pass
            if not data:
                pytest.fail(f"never saw {pattern!r}; the terminal showed:\n{self.screen}", pytrace=False)
            self.shown += data

    def wait_for_exit(self) -> tuple[int, str]:
        """Read the terminal to its end: linea's exit code and stderr."""
        while True:
            try:
                data = os.read(self.primary, 65536)
            except OSError:
                break
            if not data:
                break
            self.shown += data
        _, stderr = self.process.communicate(timeout=HANG_GUARD_SECONDS)
        os.close(self.primary)
        return self.process.returncode, stderr.decode()


def _take_terminal() -> None:
    """In the child, in its new session: make the pseudo-terminal (stdin) its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def add_events(db: Database, owner: dict, count: int) -> None:
    """`count` published events of `owner`, starting one a day from tomorrow (slugs day-00001...)."""
    db.execute(
        "INSERT INTO events (id, title, slug, status, start_date, owner_id, created_at, updated_at) "
        "SELECT 'bulk' || lpad(n::text, 21, '0'), 'A long title for the event of day ' || n, 'day-' || lpad(n::text, 5, '0'),"
        " 'PUBLISHED', now() + n * interval '1 day', :owner, now(), now() FROM generate_series(1, :count) AS n",
        owner=owner["id"], count=count,
    )


needs_less = pytest.mark.skipif(not os.access(LESS, os.X_OK), reason="less is not installed")


def day(n: int) -> str:
    """How `add_events`' n-th event shows with --fields slug,title."""
    return f"day-{n:05}  A long title for the event of day {n}"


@needs_less
def test_a_tall_list_opens_in_less_at_its_first_screen_and_q_quits(linea: CliRun, db: Database) -> None:
    add_events(db, make_user(db, role="OWNER"), 40)
    person = PersonAtTerminal(("events", "list", "--fields", "slug,title"), env=linea.env)
    try:
        person.wait_for(r"\n:")  # less's prompt, below the first screen
        first = person.screen
        person.type("q")
        code, stderr = person.wait_for_exit()
    finally:
        if person.process.poll() is None:
            person.process.kill()
    # 23 lines of the list, and less's prompt on the 24th.
    assert first.split("\n") == ["Events", "slug       title", *(day(n) for n in range(1, 22)), ":"]
    assert (code, stderr) == (0, "")


@needs_less
def test_all_shows_the_first_screen_in_less_before_the_last_page_is_read(linea: CliRun, db: Database) -> None:
    # 12 pages of 1,000 rows, 600 kB: far more than the pipe to less holds while less waits for a key.
    owner = make_user(db, role="OWNER")
    add_events(db, owner, 12000)
    person = PersonAtTerminal(("events", "list", "--all", "--fields", "slug,title"), env=linea.env)
    try:
        person.wait_for(r"\n:")
        first = person.screen
        # Shown only if linea reads the last page after the first screen is on the terminal.
        make_event(db, owner=owner, slug="latecomer", title="Added after the first screen",
                   start_date=days_from_now(365 * 100))
        person.type("G")  # to the end: less reads all that linea writes
        person.wait_for(r"\(END\)")
        last = person.screen[len(first):]
        person.type("q")
        code, stderr = person.wait_for_exit()
    finally:
        if person.process.poll() is None:
            person.process.kill()
    assert first.split("\n") == ["Events", "slug       title", *(day(n) for n in range(1, 22)), ":"]
    # Columns sized from the first page (a title of day 1000 at most): longer titles are cut.
    assert last.split("\n")[-3:] == [
        "day-12000  A long title for the event of day 120…", "latecomer  Added after the first screen", "(END)",
    ]
    assert (code, stderr) == (0, "")
