"""Shell completion: what Tab offers after `linea events show `, `--owner `, `--status `, ...

Driven the way linea's scripts drive it (the `_LINEA_COMPLETE` protocol): bash through COMP_LINE,
COMP_POINT and readline's word, zsh and fish through `_TYPER_COMPLETE_ARGS`; and by typing Tab
in a real bash and zsh on a pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.factories import days_from_now, make_event, make_user, make_venue, make_waitlist_entry
from tests.harness import HANG_GUARD_SECONDS, CliRun, Database, plain_url, run_linea_process


def bash_complete(linea: CliRun, line: str, env: dict[str, str] | None = None, *, text: str | None = None) -> list[str]:
    """What bash inserts for `line` (the cursor at its end), in place of readline's word `text`
    (by default the whole last word)."""
    completion_env = {"_LINEA_COMPLETE": "complete_bash", "COMP_LINE": line, "COMP_POINT": str(len(line))}
    if text is not None:
        completion_env["_LINEA_COMP_TEXT"] = text
    result = linea(env={**completion_env, **(env or {})})
    # "No candidates" is an empty line; a failure must look exactly like that.
    assert result.stderr == ""
    return [candidate for candidate in result.stdout.splitlines() if candidate]


def test_event_slugs_complete_by_prefix(linea: CliRun, db: Database) -> None:
    for slug in ("summer-fest", "summer-camp", "spring-fair", "sum_mer"):
        make_event(db, slug=slug, title=slug.title())
    make_event(db, slug="summer-gone", deleted_at=days_from_now(-1))

    assert bash_complete(linea, "linea events show sum") == ["sum_mer", "summer-camp", "summer-fest"]
    assert bash_complete(linea, "linea waitlist stats summer-f") == ["summer-fest"]
    # `_` and `%` are letters here, not patterns.
    assert bash_complete(linea, "linea events show sum_") == ["sum_mer"]
    assert bash_complete(linea, "linea events show %") == []


def test_at_most_fifty_candidates(linea: CliRun, db: Database) -> None:
    owner = make_user(db, role="OWNER")
    for n in range(60):
        make_event(db, owner=owner, slug=f"many-{n:02d}")
    assert bash_complete(linea, "linea events show many-") == [f"many-{n:02d}" for n in range(50)]


def test_users_venues_and_waitlist_addresses_complete(linea: CliRun, db: Database) -> None:
    owner = make_user(db, email="olga@example.com", role="OWNER")
    make_user(db, email="oscar@example.com")
    make_user(db, email="old@example.com", deleted_at=days_from_now(-1))
    venue = make_venue(db, id="venue-lisbon-1")
    event = make_event(db, owner=owner, slug="summer-fest")
    make_waitlist_entry(db, event=event, email="ann@example.net")
    make_waitlist_entry(db, event=event, email="bob@example.net")
    make_waitlist_entry(db, event=make_event(db, owner=owner), email="amy@example.net")

    assert bash_complete(linea, "linea users show o") == ["olga@example.com", "oscar@example.com"]
    assert bash_complete(linea, "linea events list --owner ol") == ["olga@example.com"]
    assert bash_complete(linea, "linea sessions list --user os") == ["oscar@example.com"]
    assert bash_complete(linea, "linea events list --venue venue-l") == [venue["id"]]
    assert bash_complete(linea, "linea venues show venue") == [venue["id"]]
    # The addresses on the waitlist of the event named before, and only those.
    assert bash_complete(linea, "linea waitlist confirm summer-fest a") == ["ann@example.net"]
    assert bash_complete(linea, "linea waitlist cancel summer-fest ") == ["ann@example.net", "bob@example.net"]


def test_erased_people_are_not_offered(linea: CliRun, db: Database) -> None:
    owner = make_user(db, email="olga@example.com", role="OWNER")
    make_user(db, email="dana@example.com")
    event = make_event(db, owner=owner, slug="summer-fest")
    make_waitlist_entry(db, event=event, email="dana@example.com")
    make_waitlist_entry(db, event=event, email="dora@example.net")
    assert bash_complete(linea, "linea users show d") == ["dana@example.com"]
    linea("users", "anonymize", "dana@example.com", "--yes")
    placeholders = db.all("SELECT email FROM users WHERE email LIKE 'deleted-%@anonymized.invalid' "
                          "UNION ALL SELECT email FROM waitlist_entries WHERE email LIKE 'deleted-%@anonymized.invalid'")
    assert len(placeholders) == 2  # the account and its waitlist entry, both still there
    assert bash_complete(linea, "linea users show d") == []
    assert bash_complete(linea, "linea users show ") == ["olga@example.com"]
    assert bash_complete(linea, "linea waitlist cancel summer-fest d") == ["dora@example.net"]


def test_statuses_and_options_complete_from_their_choices(linea: CliRun) -> None:
    assert bash_complete(linea, "linea events list --sta") == ["--status"]
    assert bash_complete(linea, "linea events list --status p") == ["PUBLISHED"]
    assert bash_complete(linea, "linea waitlist list some-event --status c") == ["CONFIRMED", "CANCELLED"]


def test_values_no_quoting_carries_are_left_out_and_help_is_escaped(linea: CliRun, db: Database) -> None:
    make_event(db, slug="evil\x1b]0;pwned\x07", title="Evil")
    make_event(db, slug="evil\nrm", title="Newline")
    make_event(db, slug="evil\u202etxt", title="Bidi")
    make_event(db, slug="evil\u2028x", title="Line separator")
    make_event(db, slug="evil two", title="Two")
    make_event(db, slug="evil-3", title="Three\x1b[2J")
    make_event(db, slug="-evil", title="An option look-alike")
    assert bash_complete(linea, "linea events show evil") == ["evil\\ two", "evil-3"]
    assert "-evil" not in bash_complete(linea, "linea events show ")
    zsh = linea(env={"_LINEA_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "linea events show evil"})
    assert zsh.stdout.splitlines() == ["evil two:Two", "evil-3:Three\\x1b[2J"]


def test_the_database_and_actor_given_after_the_command_are_the_ones_completed_from(
    linea: CliRun, db: Database, empty_database_url: URL
) -> None:
    # Root options go after the command too (`linea events show --database-url URL ...`).
    make_event(db, slug="summer-fest")
    make_user(db, email="vic@example.com")
    make_user(db, email="val@example.com")
    assert bash_complete(linea, "linea events show sum") == ["summer-fest"]
    assert bash_complete(linea, f"linea events show --database-url {plain_url(empty_database_url)} sum") == []
    assert bash_complete(linea, "linea users show v") == ["val@example.com", "vic@example.com"]
    assert bash_complete(linea, "linea users show --as vic@example.com v") == ["vic@example.com"]  # a visitor sees only themselves


def test_failures_complete_nothing_and_print_nothing(linea: CliRun, empty_database_url: URL, tmp_path: Path) -> None:
    for url in (
        "postgresql://linea@127.0.0.1:1/linea",  # nobody listens
        plain_url(empty_database_url),  # no schema
        "not a url",
        "mysql://root@localhost/linea",
    ):
        result = linea(env={"_LINEA_COMPLETE": "complete_bash", "COMP_LINE": "linea events show s", "COMP_POINT": "19",
                            "LINEA_DATABASE_URL": url})
        assert (result.stdout.strip(), result.stderr) == ("", ""), url
    assert bash_complete(linea, "linea --database-url postgresql://x@127.0.0.1:1/x users show a") == []
    assert bash_complete(linea, "linea events show s", env={"LINEA_STATEMENT_TIMEOUT": "soon"}) == []


def test_a_stopped_embedded_server_is_not_started_to_complete(linea: CliRun) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="linea-cmp-"))
    env = {"LINEA_DATABASE_URL": None, "LINEA_DATA_DIR": str(data_dir)}  # type: ignore[dict-item]
    assert bash_complete(linea, "linea events show s", env=env) == []  # type: ignore[arg-type]
    assert list(data_dir.iterdir()) == []


def test_zsh_and_fish_get_candidates_with_their_help(linea: CliRun, db: Database) -> None:
    make_event(db, slug="summer-fest", title="Summer: the fest")
    env = {**linea.env, "_TYPER_COMPLETE_ARGS": "linea events show sum"}
    zsh = run_linea_process([], env={**env, "_LINEA_COMPLETE": "complete_zsh"})
    assert zsh.returncode == 0 and zsh.stderr == ""
    assert zsh.stdout.splitlines() == ["summer-fest:Summer: the fest"]
    fish = run_linea_process([], env={**env, "_LINEA_COMPLETE": "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "get-args"})
    assert fish.returncode == 0 and fish.stdout.splitlines() == ["summer-fest\tSummer: the fest"]


HOSTILE = "Z`touch${IFS}pwned`@x.org"  # a legal address; unquoted, bash runs `touch pwned`


def test_bash_gets_each_value_quoted_for_the_quote_it_is_typed_in(linea: CliRun, db: Database) -> None:
    event = make_event(db, slug="summer-fest")
    make_waitlist_entry(db, event=event, email=HOSTILE)
    make_waitlist_entry(db, event=event, email="o'hara!$x@x.org")
    make_waitlist_entry(db, event=event, email="ann@example.net")

    line = "linea waitlist remove summer-fest "
    assert bash_complete(linea, line + "Z") == ["Z\\`touch\\$\\{IFS\\}pwned\\`@x.org"]
    # In an open quote readline replaces what follows the quote, and closes the quote itself
    # unless the answer does.
    assert bash_complete(linea, line + "'Z", text="Z") == ["Z`touch${IFS}pwned`@x.org'"]
    assert bash_complete(linea, line + '"Z', text="Z") == ['Z\\`touch\\${IFS}pwned\\`@x.org"']
    assert bash_complete(linea, line + "o", text="o") == ["o\\'hara\\!\\$x@x.org"]
    assert bash_complete(linea, line + "'o", text="o") == ["o'\\''hara!$x@x.org'"]
    assert bash_complete(linea, line + '"o', text="o") == ['o\'hara"\\!"\\$x@x.org"']
    assert bash_complete(linea, line + "o\\'h", text="o\\'h") == ["o\\'hara\\!\\$x@x.org"]
    # `@` starts readline's word: the answer replaces only from there.
    assert bash_complete(linea, line + "ann@ex", text="@ex") == ["@example.net"]
    assert bash_complete(linea, line + "Z\\`touch", text="Z\\`touch") == ["Z\\`touch\\$\\{IFS\\}pwned\\`@x.org"]


def test_completion_shows_only_what_the_acting_user_may_see(linea: CliRun, db: Database) -> None:
    make_user(db, email="admin@example.com", role="ADMIN")
    vera = make_user(db, email="vera@example.com", role="VISITOR")
    make_user(db, email="victor@example.com", role="VISITOR")
    olga = make_user(db, email="olga@example.com", role="OWNER")
    oscar = make_user(db, email="oscar@example.com", role="OWNER")
    mine = make_event(db, owner=olga, slug="olgas-fest")
    theirs = make_event(db, owner=oscar, slug="oscars-fest")
    make_waitlist_entry(db, event=mine, email="ann@example.net")
    make_waitlist_entry(db, event=theirs, email="amy@example.net")

    everyone = ["vera@example.com", "victor@example.com"]
    assert bash_complete(linea, "linea users show v") == everyone  # the system
    assert bash_complete(linea, "linea --as admin@example.com users show v") == everyone
    assert bash_complete(linea, "linea --as vera@example.com users show v") == ["vera@example.com"]
    assert bash_complete(linea, "linea users show v", env={"LINEA_ACTOR": vera["id"]}) == ["vera@example.com"]
    assert bash_complete(linea, "linea --as vera@example.com events list --owner ") == ["vera@example.com"]
    assert bash_complete(linea, "linea --as olga@example.com sessions list --user o") == ["olga@example.com"]
    assert bash_complete(linea, "linea --as nobody@example.com users show v") == []  # refused, as the command
    # A waitlist completes only where `waitlist list` lets the actor read it.
    assert bash_complete(linea, "linea --as olga@example.com waitlist remove olgas-fest a") == ["ann@example.net"]
    assert bash_complete(linea, "linea --as olga@example.com waitlist remove oscars-fest a") == []
    assert bash_complete(linea, "linea waitlist remove oscars-fest a", env={"LINEA_ACTOR": "vera@example.com"}) == []
    assert bash_complete(linea, "linea waitlist remove oscars-fest a") == ["amy@example.net"]
    assert bash_complete(linea, f"linea --as admin@example.com waitlist remove {theirs['id']} a") == ["amy@example.net"]
    # Events and venues are anyone's to list.
    assert bash_complete(linea, "linea --as vera@example.com events show o") == ["olgas-fest", "oscars-fest"]


# --- Tab in a real shell on a pseudo-terminal ---------------------------------------------------

# What a line editor writes besides text: CSI and OSC sequences, keypad modes, carriage returns, bells.
_TERMINAL_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>]|[\r\x07\x08]")


class Terminal:
    """A shell on a pseudo-terminal, typed into like a person would."""

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path) -> None:
        self.primary, secondary = pty.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
        self.process = subprocess.Popen(
            argv, stdin=secondary, stdout=secondary, stderr=secondary, cwd=cwd, env=env, start_new_session=True,
            preexec_fn=_take_terminal,  # the shell's job control needs its terminal
        )
        os.close(secondary)
        self.shown = b""  # every byte the shell wrote
        self.screen = ""  # ... as text, terminal control stripped
        self.read_up_to = 0

    def type(self, text: str) -> None:
        os.write(self.primary, text.encode())

    def wait_for(self, pattern: str) -> re.Match[str]:
        """Read until `pattern` shows after what earlier waits consumed (bounded only against a hang)."""
        started = time.monotonic()
        while True:
            match = re.compile(pattern).search(self.screen, self.read_up_to)
            if match:
                self.read_up_to = match.end()
                return match
            if time.monotonic() - started > HANG_GUARD_SECONDS:
                pytest.fail(f"never saw {pattern!r}; the terminal showed:\n{self.screen}")
            ready, _, _ = select.select([self.primary], [], [], 1)
            if ready:
                try:
                    self.shown += os.read(self.primary, 65536)
                except OSError:  # the shell is gone
                    pytest.fail(f"the shell ended before {pattern!r}; it showed:\n{self.screen}")
                self.screen = _TERMINAL_CONTROL.sub("", self.shown.decode(errors="replace"))

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=HANG_GUARD_SECONDS)
        os.close(self.primary)


def _take_terminal() -> None:
    """In the child, in its new session: make the pseudo-terminal (stdin) its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def shell_environment(linea: CliRun, home: Path) -> dict[str, str]:
    linea_bin = Path(sys.executable).parent  # this venv's `linea`
    assert (linea_bin / "linea").exists()
    return {
        "PATH": f"{linea_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home), "ZDOTDIR": str(home), "HISTFILE": "/dev/null", "INPUTRC": "/dev/null",
        "TERM": "dumb", "LANG": "C.UTF-8", "NO_COLOR": "1",
        "LINEA_DATABASE_URL": linea.env["LINEA_DATABASE_URL"], "LINEA_DATA_DIR": linea.env["LINEA_DATA_DIR"],
    }


def completion_script(linea: CliRun, shell: str) -> str:
    """What `linea --show-completion SHELL` prints."""
    result = run_linea_process(["--show-completion", shell], env=linea.env)
    assert result.returncode == 0 and "_LINEA_COMPLETE=complete_" in result.stdout, result.stderr
    return result.stdout


def linea_from_bash(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`linea ARGS` typed at a bash prompt: the current shell is bash (bash runs it as a child)."""
    return subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", '"$0" -m linea_cli "$@"; exit $?', sys.executable, *args],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
    )


# A line only each shell's script has.
SCRIPT_MARKS = {"bash": "complete -o default -F", "zsh": "#compdef linea", "fish": "complete --command linea"}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_the_named_shells_script_whatever_shell_runs_it(shell: str) -> None:
    # From bash, `--show-completion fish` printed bash's script (exit 0): redirected into
    # ~/.config/fish/completions/linea.fish it silently installed a bash script there.
    for args in (["--show-completion", shell], [f"--show-completion={shell}"]):
        result = linea_from_bash(args)
        assert (result.returncode, result.stderr) == (0, ""), args
        assert f"_LINEA_COMPLETE=complete_{shell}" in result.stdout
        assert [mark for mark in SCRIPT_MARKS.values() if mark in result.stdout] == [SCRIPT_MARKS[shell]]
    # Without a shell, the current one's.
    assert SCRIPT_MARKS["bash"] in linea_from_bash(["--show-completion"]).stdout


@pytest.mark.parametrize("option", ["--show-completion", "--install-completion"])
def test_completion_for_an_unknown_shell_is_a_usage_error_naming_the_shells(option: str, tmp_path: Path) -> None:
    result = linea_from_bash([option, "nosuchshell"], env={"HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == (
        f"error: invalid value for {option}: nosuchshell is not one of bash, zsh, fish, powershell, pwsh"
    )
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing installed


def test_install_completion_installs_the_named_shells_script(tmp_path: Path) -> None:
    result = linea_from_bash(["--install-completion", "fish"], env={"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    installed = tmp_path / ".config" / "fish" / "completions" / "linea.fish"
    assert installed.read_text().strip() == linea_from_bash(["--show-completion", "fish"]).stdout.strip()
    assert not (tmp_path / ".bashrc").exists()


def tab_then_enter(
    linea: CliRun, db: Database, tmp_path: Path, shell: list[str], setup: str, typed: str, address: str,
    status: str = "$?",
) -> None:
    """Type `linea waitlist remove summer-fest TYPED<Tab><Enter>` in `shell`: the one address
    that completes must reach linea as it is (its entry removed), and nothing in it may run. A
    quote left open shows the continuation prompt (`setup` sets PS2 to CONTINUED> ): a failure, at once."""
    event = make_event(db, slug="summer-fest")
    make_waitlist_entry(db, event=event, email=address)
    home = tmp_path / "home"
    home.mkdir()
    terminal = Terminal(shell, env=shell_environment(linea, home), cwd=tmp_path)
    try:
        terminal.type(f"{setup}; echo load''ed\n")
        terminal.wait_for(r"\bloaded\b")
        terminal.type(f"linea waitlist remove summer-fest {typed}\t")
        terminal.wait_for(r"@x\.org")  # the completion is on the line
        terminal.type("\n")
        terminal.type(f"echo exit:{status}\n")
        exit_code = terminal.wait_for(r"exit:(\d+)|CONTINUED> ")
    finally:
        terminal.close()
    assert not (tmp_path / "pwned").exists(), "the completed address ran its command substitution"
    assert exit_code.group(1) is not None, f"the completion left a quote open:\n{terminal.screen}"
    assert exit_code.group(1) == "0", terminal.screen
    assert db.scalar("SELECT deleted_at IS NOT NULL FROM waitlist_entries WHERE email = :e", e=address) is True
    assert "Removed waitlist entry" in terminal.screen


QUOTES = "o'hara!{x}$y@x.org"  # quotes, history expansion, braces and a variable


@pytest.mark.parametrize("typed", ["Z", "'Z", '"Z', "Z\\`touch"], ids=["bare", "single-quote", "double-quote", "escaped"])
def test_tab_in_bash_inserts_a_hostile_address_quoted(linea: CliRun, db: Database, tmp_path: Path, typed: str) -> None:
    script = tmp_path / "linea.bash"
    script.write_text(completion_script(linea, "bash"))
    shell = ["bash", "--norc", "--noprofile", "-i"]
    tab_then_enter(linea, db, tmp_path, shell, f"PS2='CONTINUED> '; source {script}", typed, HOSTILE)


@pytest.mark.parametrize("typed", ["o", "'o", '"o'], ids=["bare", "single-quote", "double-quote"])
def test_tab_in_bash_keeps_quotes_and_bangs(linea: CliRun, db: Database, tmp_path: Path, typed: str) -> None:
    script = tmp_path / "linea.bash"
    script.write_text(completion_script(linea, "bash"))
    shell = ["bash", "--norc", "--noprofile", "-i"]
    tab_then_enter(linea, db, tmp_path, shell, f"PS2='CONTINUED> '; source {script}", typed, QUOTES)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
@pytest.mark.parametrize(("typed", "address"), [("Z", HOSTILE), ("'Z", HOSTILE), ("o", QUOTES)], ids=["bare", "single-quote", "quotes"])
def test_tab_in_zsh_inserts_a_hostile_address_quoted(
    linea: CliRun, db: Database, tmp_path: Path, typed: str, address: str
) -> None:
    script = tmp_path / "linea.zsh"
    script.write_text(completion_script(linea, "zsh"))
    setup = f"PS2='CONTINUED> '; autoload -Uz compinit; compinit -u -D; source {script}"
    tab_then_enter(linea, db, tmp_path, ["zsh", "-f", "-i"], setup, typed, address)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
@pytest.mark.parametrize(("typed", "address"), [("Z", HOSTILE), ("o", QUOTES)], ids=["hostile", "quotes"])
def test_tab_in_fish_inserts_a_hostile_address_quoted(
    linea: CliRun, db: Database, tmp_path: Path, typed: str, address: str
) -> None:
    script = tmp_path / "linea.fish"
    script.write_text(completion_script(linea, "fish"))
    shell = ["fish", "--no-config", "--interactive"]
    tab_then_enter(linea, db, tmp_path, shell, f"source {script}", typed, address, status="$status")


def test_bash_scripts_installed_before_linea_had_its_own_complete_nothing(linea: CliRun, db: Database) -> None:
    # Typer's script sent COMP_WORDS and inserted the answers into its command line unquoted.
    make_event(db, slug="summer-fest")
    old = linea(env={"_LINEA_COMPLETE": "complete_bash", "COMP_WORDS": "linea\nevents\nshow\ns", "COMP_CWORD": "3"})
    assert (old.stdout.strip(), old.stderr) == ("", "")
    assert bash_complete(linea, "linea events show s") == ["summer-fest"]


def _modules_imported(stderr: str) -> set[str]:
    """The modules `python -X importtime` (PYTHONPROFILEIMPORTTIME) reports, top-level names."""
    found = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            found.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return found


def test_a_tab_press_on_a_database_value_loads_neither_the_orm_nor_the_command_tree(
    linea: CliRun, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The suite's own variables (LINEA_TEST_DATABASE_URL, LINEA_COMPAT_DIR, in CI) are LINEA_
    # settings the fast path does not know: it would rightly leave the answer to the full path.
    # The processes get only linea.env's.
    for name in [name for name in os.environ if name.startswith("LINEA_")]:
        monkeypatch.delenv(name)
    owner = make_user(db, email="olga@example.com", role="OWNER")
    event = make_event(db, owner=owner, slug="summer-fest")
    make_waitlist_entry(db, event=event, email="ann@example.net")
    for line, expected in (
        ("linea events show sum", "summer-fest"),
        ("linea events list --limit 5 --owner ol", "olga@example.com"),
        (f"linea --database-url {linea.env['LINEA_DATABASE_URL']} waitlist confirm summer-fest a", "ann@example.net"),
    ):
        env = {**linea.env, "_LINEA_COMPLETE": "complete_bash", "COMP_LINE": line, "COMP_POINT": str(len(line)),
               "PYTHONPROFILEIMPORTTIME": "1"}
        tab = run_linea_process([], env=env)
        assert (tab.returncode, tab.stdout) == (0, expected + "\n"), tab.stderr[-2000:]
        imported = _modules_imported(tab.stderr)
        assert "psycopg" in imported
        assert imported & {"sqlalchemy", "sqlmodel", "typer", "pydantic", "pydantic_settings", "rich", "alembic"} == set()

    # What the services must decide (an acting user) goes through the command tree, as before.
    line = "linea --as olga@example.com events list --owner ol"
    env = {**linea.env, "_LINEA_COMPLETE": "complete_bash", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "PYTHONPROFILEIMPORTTIME": "1"}
    tab = run_linea_process([], env=env)
    assert (tab.returncode, tab.stdout) == (0, "olga@example.com\n")
    assert "sqlmodel" in _modules_imported(tab.stderr)


def test_the_index_of_the_fast_path_is_the_command_tree_s() -> None:
    from linea_cli.cli.completion import completion_index
    from linea_cli.completion_index import COMMANDS

    assert COMMANDS == completion_index(), "run `.venv/bin/python -m linea_cli.cli.completion` to regenerate it"
    assert COMMANDS["waitlist confirm"]["arguments"] == [["event", "event"], ["email", "waitlist_email"]]
    assert COMMANDS["events list"]["options"]["--venue"] == "venue"


def test_the_fast_path_escapes_and_finds_the_data_directory_as_linea_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from linea_cli import completion_fast
    from linea_cli.config import default_data_dir
    from linea_cli.output import visible

    every = "".join(chr(n) for n in range(0x2100)) + "\u2028\u2029\u202e\u2066\u2069"
    assert completion_fast.visible(every) == visible(every)
    monkeypatch.setenv("XDG_DATA_HOME", "/nowhere/data")
    assert completion_fast._default_data_dir() == default_data_dir()


# --- how many connections a Tab press opens ------------------------------------------------------

# Put on PYTHONPATH of a `linea` process, Python runs this at start-up: every psycopg connection the
# process opens (psycopg.connect is Connection.connect, SQLAlchemy's psycopg dialect calls it too)
# writes a line into $COUNT_CONNECTIONS_IN, and at exit a line says which path answered (whether the
# command tree was loaded). Not a LINEA_ variable: one of those would make the fast path defer.
COUNTING_SITECUSTOMIZE = '''
import atexit
import os
import sys

import psycopg

_connect = psycopg.Connection.connect.__func__


def _counted(cls, *args, **kwargs):
    with open(os.environ["COUNT_CONNECTIONS_IN"], "a") as log:
        log.write("connect\\n")
    return _connect(cls, *args, **kwargs)


psycopg.Connection.connect = classmethod(_counted)
psycopg.connect = psycopg.Connection.connect


@atexit.register
def _which_path():
    with open(os.environ["COUNT_CONNECTIONS_IN"], "a") as log:
        log.write("exit " + ("tree" if "linea_cli.cli" in sys.modules else "fast") + "\\n")
'''


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for `linea` processes that log their connections (read them with `connections`)."""
    # The suite's own LINEA_ variables (CI's) would make the fast path defer: the processes get linea.env's.
    for name in [name for name in os.environ if name.startswith("LINEA_")]:
        monkeypatch.delenv(name)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(COUNTING_SITECUSTOMIZE)
    return {"PYTHONPATH": str(hook), "COUNT_CONNECTIONS_IN": str(tmp_path / "connections.log")}


def connections(counted: dict[str, str]) -> list[str]:
    """What the processes logged since the last call: `connect` per connection, `exit PATH` per process."""
    log = Path(counted["COUNT_CONNECTIONS_IN"])
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def tab(linea: CliRun, counted: dict[str, str], line: str, env: dict[str, str] | None = None) -> str:
    """bash's Tab at the end of `line`, as its own `linea` process: what it answered."""
    completion_env = {"_LINEA_COMPLETE": "complete_bash", "COMP_LINE": line, "COMP_POINT": str(len(line))}
    result = run_linea_process([], env={**linea.env, **counted, **completion_env, **(env or {})})
    assert (result.returncode, result.stderr) == (0, ""), result.stderr[-2000:]
    return result.stdout


def test_a_tab_press_opens_one_connection_on_either_path(linea: CliRun, db: Database, counted: dict[str, str]) -> None:
    owner = make_user(db, email="olga@example.com", role="OWNER")
    event = make_event(db, owner=owner, slug="summer-fest")
    make_waitlist_entry(db, event=event, email="ann@example.net")

    # The fast path: psycopg alone.
    assert tab(linea, counted, "linea events show sum") == "summer-fest\n"
    assert connections(counted) == ["connect", "exit fast"]
    assert tab(linea, counted, "linea waitlist confirm summer-fest a") == "ann@example.net\n"
    assert connections(counted) == ["connect", "exit fast"]
    # The command tree, where the services decide (an acting user, checked on that same connection)
    # or a setting must be validated.
    assert tab(linea, counted, "linea --as olga@example.com events list --owner ol") == "olga@example.com\n"
    assert connections(counted) == ["connect", "exit tree"]
    assert tab(linea, counted, "linea waitlist cancel summer-fest ", env={"LINEA_ACTOR": "olga@example.com"}) == "ann@example.net\n"
    assert connections(counted) == ["connect", "exit tree"]
    assert tab(linea, counted, "linea users show ol", env={"LINEA_STATEMENT_TIMEOUT": "5s"}) == "olga@example.com\n"
    assert connections(counted) == ["connect", "exit tree"]
    # Choices and option names need no database at all.
    assert tab(linea, counted, "linea events list --status p") == "PUBLISHED\n"
    assert connections(counted) == ["exit tree"]


def fish(linea: CliRun, counted: dict[str, str], line: str, action: str = "get-args", env: dict[str, str] | None = None) -> tuple[int, str]:
    """fish's request for `line` (`_TYPER_COMPLETE_FISH_ACTION`), as its own `linea` process: exit code and answer."""
    completion_env = {"_LINEA_COMPLETE": "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": action, "_TYPER_COMPLETE_ARGS": line}
    result = run_linea_process([], env={**linea.env, **counted, **completion_env, **(env or {})})
    assert result.stderr == "", result.stderr[-2000:]
    return result.returncode, result.stdout


def test_fish_is_answered_on_the_fast_path_with_its_help_as_it_is(linea: CliRun, db: Database, counted: dict[str, str]) -> None:
    make_event(db, slug="summer-fest", title="[b]Summer[/b] fest")  # text, not markup
    make_event(db, slug="spring-fair", title="[/x] spring")  # Typer's markup reading raised here
    make_event(db, slug="autumn-gala", title="Autumn " + "gala " * 20)
    assert fish(linea, counted, "linea events show s") == (0, "spring-fair\t[/x] spring\nsummer-fest\t[b]Summer[/b] fest\n")
    assert connections(counted) == ["connect", "exit fast"]
    # The command tree answers the same (here because a setting must be validated).
    timeout = {"LINEA_STATEMENT_TIMEOUT": "5s"}
    assert fish(linea, counted, "linea events show s", env=timeout) == (0, "spring-fair\t[/x] spring\nsummer-fest\t[b]Summer[/b] fest\n")
    assert connections(counted) == ["connect", "exit tree"]
    # A help longer than 80 columns stays on its candidate's line (shortened to 60 characters).
    long_help = "autumn-gala\t" + ("Autumn " + "gala " * 20)[:59] + "…\n"
    assert fish(linea, counted, "linea events show a") == (0, long_help)
    assert fish(linea, counted, "linea events show a", env=timeout) == (0, long_help)
    connections(counted)
    # An option's help longer than 80 columns is one line too (Typer wrapped it: its end became a candidate).
    code, options = fish(linea, counted, "linea events list --f")
    assert code == 0 and options.splitlines()[-1] == (
        "--fields\tOnly these fields, in this order, in every format (e.g. --fields slug,status,id); a wrong name lists the valid ones."
    )
    assert all("\t" in line for line in options.splitlines())
    assert connections(counted) == ["exit tree"]  # option names: the command tree's, no connection
    # is-args (the script Typer installed asks it before every Tab): whether there are candidates.
    assert fish(linea, counted, "linea events show s", "is-args") == (0, "")
    assert fish(linea, counted, "linea events show x", "is-args") == (1, "")
    assert connections(counted) == ["connect", "exit fast"] * 2
    assert fish(linea, counted, "linea events show s", "is-args", env=timeout) == (0, "")
    assert fish(linea, counted, "linea events show x", "is-args", env=timeout) == (1, "")
    assert connections(counted) == ["connect", "exit tree"] * 2
    # Quoting is Click's splitting: the command tree's.
    assert fish(linea, counted, "linea events show 'su") == (0, "summer-fest\t[b]Summer[/b] fest\n")
    assert connections(counted) == ["connect", "exit tree"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_tab_in_fish_runs_one_linea_on_the_fast_path_with_one_connection(
    linea: CliRun, db: Database, tmp_path: Path, counted: dict[str, str]
) -> None:
    event = make_event(db, slug="summer-fest")
    make_waitlist_entry(db, event=event, email="zoe@x.org")
    script = tmp_path / "linea.fish"
    script.write_text(completion_script(linea, "fish"))
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "zfile").write_text("")  # no candidate from the database: fish offers file names
    terminal = Terminal(["fish", "--no-config", "--interactive"], env={**shell_environment(linea, home), **counted}, cwd=tmp_path)
    try:
        # No autosuggestions: they would run completions as the line is typed.
        terminal.type(f"set -g fish_autosuggestion_enabled 0; source {script}; echo load''ed\n")
        terminal.wait_for(r"\bloaded\b")
        terminal.type("linea waitlist remove summer-fest z\t")
        terminal.wait_for(r"zoe@x\.org")
        tab_press = connections(counted)
        terminal.type("\x15linea events show z\t")  # Ctrl-U: a new line
        terminal.wait_for(r"events show zfile")
        no_candidate = connections(counted)
    finally:
        terminal.close()
    assert tab_press == ["connect", "exit fast"]
    assert no_candidate == ["connect", "exit fast"]
