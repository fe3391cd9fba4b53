"""Shell completion: what Tab offers after `linea events show `, `--owner `, `--status `, ...

Driven the way the shells drive it (Typer's `_LINEA_COMPLETE` protocol): bash through COMP_WORDS
and COMP_CWORD, zsh and fish through `_TYPER_COMPLETE_ARGS`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy.engine import URL

from tests.factories import days_from_now, make_event, make_user, make_venue, make_waitlist_entry
from tests.harness import CliRun, Database, plain_url, run_linea_process


def bash_complete(linea: CliRun, line: str, env: dict[str, str] | None = None) -> list[str]:
    """The candidates bash gets for `line` (the word being completed is its last, maybe empty)."""
    words = line.split(" ")
    result = linea(env={"_LINEA_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1),
                        **(env or {})})
    # Typer answers "no candidates" with an empty line; a failure must look exactly like that.
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


def test_statuses_complete_from_their_choices(linea: CliRun) -> None:
    assert bash_complete(linea, "linea events list --status p") == ["PUBLISHED"]
    assert bash_complete(linea, "linea waitlist list some-event --status c") == ["CONFIRMED", "CANCELLED"]


def test_hostile_values_are_left_out_and_help_is_escaped(linea: CliRun, db: Database) -> None:
    make_event(db, slug="evil\x1b]0;pwned\x07", title="Evil")
    make_event(db, slug="evil two", title="Two")
    make_event(db, slug="evil-3", title="Three\x1b[2J")
    assert bash_complete(linea, "linea events show evil") == ["evil-3"]
    zsh = linea(env={"_LINEA_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "linea events show evil"})
    assert "evil-3" in zsh.stdout and "\x1b" not in zsh.stdout and "Three\\x1b[2J" in zsh.stdout


def test_failures_complete_nothing_and_print_nothing(linea: CliRun, empty_database_url: URL, tmp_path: Path) -> None:
    for url in (
        "postgresql://linea@127.0.0.1:1/linea",  # nobody listens
        plain_url(empty_database_url),  # no schema
        "not a url",
        "mysql://root@localhost/linea",
    ):
        result = linea(env={"_LINEA_COMPLETE": "complete_bash", "COMP_WORDS": "linea events show s", "COMP_CWORD": "3",
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
    assert '"summer-fest":"Summer\\\\: the fest"' in zsh.stdout
    fish = run_linea_process([], env={**env, "_LINEA_COMPLETE": "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "get-args"})
    assert fish.returncode == 0 and fish.stdout.splitlines() == ["summer-fest\tSummer: the fest"]
