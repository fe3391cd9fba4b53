"""Tab answered before Typer, SQLAlchemy, SQLModel or pydantic is imported: psycopg and one connection.

A Tab press runs a whole `linea` process, and importing the command tree and the ORM took about
four times as long as the query. So `linea_cli.launch.main` (the `linea` script) asks `answered()`
first: when the word being completed is a database value (an event slug, a user's address, a
venue id, a waitlist address) and everything that decides the answer is simple, this module
answers on its own, with the same queries, quoting and limits as `linea_cli.cli.completion`
(which keeps the rules; this module only applies them); otherwise it answers nothing and the full
command tree does the work, as before:

- where the command line stands comes from `linea_cli/completion_index.py`, generated from the
  command tree (`python -m linea_cli.cli.completion`; tests/test_completion.py checks it is
  current); a word it does not know (an option added since, `--`, an option being typed)
  defers to the tree;
- the database: `--database-url` / LINEA_DATABASE_URL handed to libpq as it is (a postgresql://
  URL), else the embedded server's socket as its `postmaster.pid` announces it; anything else
  that could choose or change the database or the answer defers: an acting user (--as,
  LINEA_ACTOR: the services' permission checks), a per-user config file, any other LINEA_
  setting (validated by the full path), libpq's PG* variables with no linea URL (a `.env` in the
  working directory is read by no path: nothing to defer for);
- bash, zsh and fish (`_TYPER_COMPLETE_FISH_ACTION` get-args, and is-args, which answers by its
  exit code, for the script Typer installed before linea had its own); a zsh or fish line with a
  quote or a backslash defers (their quoting is Click's splitting, in the full path).

Any failure once it has decided to answer (no server, no schema, a timeout) completes nothing and
prints nothing, as the full path does.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LIMIT = 50
CONNECT_TIMEOUT_SECONDS = 2
STATEMENT_TIMEOUT = "2s"
HELP_LENGTH = 60

# Written with psycopg's %(name)s placeholders; `prefix` is LIKE-escaped (backslash is PostgreSQL's
# default LIKE escape character).
EVENTS = (
    "SELECT slug, title FROM events WHERE deleted_at IS NULL"
    " AND lower(slug) LIKE lower(%(prefix)s) || '%%' ORDER BY slug LIMIT %(limit)s"
)
# An erased person's address becomes a placeholder on this reserved domain
# (services.users.ANONYMIZED_DOMAIN, not imported: completion loads no services): nobody to offer.
_NOT_ERASED = "lower({column}) NOT LIKE '%%@anonymized.invalid'"
# `only`: the one user the actor may see (NULL: everyone).
USERS = (
    "SELECT email, name FROM users WHERE deleted_at IS NULL AND " + _NOT_ERASED.format(column="email") +
    " AND (%(only)s::text IS NULL OR id = %(only)s::text)"
    " AND lower(email) LIKE lower(%(prefix)s) || '%%' ORDER BY lower(email), id LIMIT %(limit)s"
)
VENUES = (
    "SELECT id, name || ', ' || city FROM venues WHERE deleted_at IS NULL"
    " AND lower(id) LIKE lower(%(prefix)s) || '%%' ORDER BY id LIMIT %(limit)s"
)
# The addresses on the waitlist of the event named earlier on the command line (slug or id).
WAITLIST = (
    "SELECT w.email, NULL FROM waitlist_entries AS w JOIN events AS e ON e.id = w.event_id"
    " WHERE w.deleted_at IS NULL AND e.deleted_at IS NULL AND (e.slug = %(event)s OR e.id = %(event)s)"
    " AND " + _NOT_ERASED.format(column="w.email") +
    " AND lower(w.email) LIKE lower(%(prefix)s) || '%%' ORDER BY lower(w.email), w.id LIMIT %(limit)s"
)

# Settings this module reads itself, or that cannot change a completion (completion never
# migrates: the migration URL PgBouncer deployments set is not its); any other LINEA_ variable
# set defers to the full path.
_READ_HERE = frozenset({"LINEA_DATABASE_URL", "LINEA_DATA_DIR", "LINEA_MIGRATION_DATABASE_URL"})
_PLAIN_SCHEMES = ("postgres://", "postgresql://", "postgresql+psycopg://")
# linea's root options, wherever they stand after the command's name.
_ROOT_OPTIONS = frozenset({"--database-url", "--as", "--debug", "--profile"})
_EMBEDDED_DATABASE, _EMBEDDED_USER = "linea", "postgres"  # linea_cli.db.embedded's
_FISH_ACTION = "_TYPER_COMPLETE_FISH_ACTION"  # get-args: the candidates; is-args: whether there are any


# --- what a shell may be offered ---------------------------------------------------------------

def insertable(value: str | None) -> bool:
    """Whether a value can be offered to a shell at all: printable (spaces aside, no control,
    format or separator characters)."""
    return bool(value) and value.isprintable()  # type: ignore[union-attr]


# linea_cli.output.visible's characters (tests/test_completion.py checks they agree), without
# importing rich.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: str) -> str:
    """`text` safe for a terminal: control characters become backslash escapes (`\\x1b`, `\\n`)."""
    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return _NAMED_ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")

    return _UNSAFE.sub(escape, text)


def shortened(text: str) -> str:
    return text if len(text) <= HELP_LENGTH else text[: HELP_LENGTH - 1] + "…"


def like_escaped(text: str) -> str:
    from linea_cli.db.like import like_escaped as escaped

    return escaped(text)


# --- quoting for bash --------------------------------------------------------------------------

# Characters bash never interprets in an unquoted word (`@`, `:` and `=` only split words for
# readline's completion, which `BashWord` accounts for); anything else ASCII gets a backslash.
_BASH_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")
UNQUOTED, SINGLE, DOUBLE = "", "'", '"'


def bash_quoted(text: str, quote: str = UNQUOTED) -> str:
    """`text` as bash reads it back literally, written where the user's line is in `quote`
    (nothing open, or an open `'` or `"`, which the result closes). `text` is printable."""
    if quote == SINGLE:
        return text.replace("'", "'\\''") + "'"
    if quote == DOUBLE:
        # `!` would expand history even inside double quotes: leave them for it.
        return "".join("\\" + c if c in '$`"\\' else '"\\!"' if c == "!" else c for c in text) + '"'
    return "".join(c if c in _BASH_PLAIN or not c.isascii() else "\\" + c for c in text)


class BashWord:
    """A bash command line up to the cursor: its words as the command will receive them."""

    def __init__(self, line: str) -> None:
        self.words: list[str] = []  # the finished words, unquoted
        self.current = ""  # the word being typed, unquoted
        self.current_raw = ""  # ... as typed
        self.quote = UNQUOTED  # the quote open at the end of the line
        started, i = False, 0
        while i < len(line):
            c, step = line[i], 1
            following = line[i + 1 : i + 2]
            if self.quote == SINGLE:
                self.quote = UNQUOTED if c == "'" else SINGLE
                self.current += "" if c == "'" else c
            elif self.quote == DOUBLE:
                if c == '"':
                    self.quote = UNQUOTED
                elif c == "\\" and following and following in '$`"\\':
                    self.current, step = self.current + following, 2
                else:
                    self.current += c
            elif c in " \t\n":
                if started:
                    self.words.append(self.current)
                self.current, self.current_raw, started = "", "", False
                i += 1
                continue
            elif c == "\\":
                self.current, step = self.current + following, 2
            elif c in "'\"":
                self.quote = c
            else:
                self.current += c
            started = True
            self.current_raw += line[i : i + step]
            i += step


class BashLine:
    """bash's request: the words before the cursor, the word being typed, and what readline will
    replace (`_LINEA_COMP_TEXT`, the end of that word): `kept` is what stays before it (None: the
    word has a space inside, nothing can be inserted safely), `quote` the quote open there."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        line = environ.get("COMP_LINE", "")
        point = int(environ.get("COMP_POINT", len(line)))
        typed = BashWord(line[:point])
        text = environ.get("_LINEA_COMP_TEXT", typed.current_raw)
        self.kept: str | None = None
        self.quote = UNQUOTED
        if typed.current_raw.endswith(text):
            before = BashWord(typed.current_raw[: len(typed.current_raw) - len(text)])
            if not before.words:  # no space inside the current word
                self.kept, self.quote = before.current, before.quote
        self.args, self.incomplete = typed.words[1:], typed.current

    def answer(self, value: str) -> str:
        """What bash inserts for `value` ("" for nothing)."""
        if self.kept is None or not insertable(value) or not value.startswith(self.kept):
            return ""
        rest = value[len(self.kept):]
        return bash_quoted(rest, self.quote) if rest or self.quote else ""


def zsh_answer(value: str, help_text: str) -> str:
    """A `value:help` line for zsh's `_describe` (`:` and `\\` escaped), which quotes what it inserts."""
    value = value.replace("\\", "\\\\").replace(":", "\\:")
    return f"{value}:{help_text}" if help_text else value


def fish_answer(value: str, help_text: str) -> str:
    """A `value<TAB>help` line for fish, which quotes what it inserts. The help is on one line and
    taken as it is (a title such as `[b]x[/b]` is text, not markup)."""
    help_text = re.sub(r"\s", " ", help_text)
    return f"{value}\t{help_text}" if help_text else value


# --- answering before the command tree ---------------------------------------------------------

def answered(environ: Mapping[str, str] | None = None) -> bool:
    """Answer the shell's completion request here when this module can (see the module's text):
    True when the answer is written on stdout, False when the full command tree must answer."""
    environ = os.environ if environ is None else environ
    text = answer(environ)
    if text is None:
        return False
    import sys

    if environ.get("_LINEA_COMPLETE") == "complete_fish" and environ.get(_FISH_ACTION) == "is-args":
        # fish asks whether there are candidates at all (no: it completes file names).
        raise SystemExit(0 if text else 1)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return True


def answer(environ: Mapping[str, str]) -> str | None:
    """The answer to the completion request in `environ`, or None for the full command tree's."""
    shell = environ.get("_LINEA_COMPLETE")
    if shell not in ("complete_bash", "complete_zsh", "complete_fish") or not _simple_settings(environ):
        return None
    if shell == "complete_fish" and environ.get(_FISH_ACTION) not in ("get-args", "is-args"):
        return None
    if shell == "complete_bash":
        if "COMP_LINE" not in environ:  # Typer's script, installed before linea had its own
            return None
        try:
            bash: BashLine | None = BashLine(environ)
        except ValueError:  # a COMP_POINT that is not a number
            return None
        args, incomplete = bash.args, bash.incomplete  # type: ignore[union-attr]
    else:
        bash = None
        typed = environ.get("_TYPER_COMPLETE_ARGS", "")
        if any(c in typed for c in "'\"\\"):  # quoting: Click's splitting, in the full path
            return None
        words = typed.split()
        args, incomplete = (words[1:-1], words[-1]) if len(words) > 1 and not typed[-1:].isspace() else (words[1:], "")
    target = _target(args, incomplete)
    if target is None:
        return None
    kind, url, params = target
    rows = _rows(kind, url, environ, {"prefix": like_escaped(incomplete), "limit": LIMIT, **params})
    # A value starting with `-` would reach the command as an option: not offered. Typer keeps only
    # the candidates that start with exactly what was typed.
    found = [
        (value, visible(shortened(help_text or ""))) for value, help_text in rows
        if insertable(value) and not value.startswith("-") and value.startswith(incomplete)
    ]
    if bash is not None:
        return "\n".join(text for text in (bash.answer(value) for value, _ in found) if text)
    formatted = fish_answer if shell == "complete_fish" else zsh_answer
    return "\n".join(formatted(value, help_text) for value, help_text in found)


def _simple_settings(environ: Mapping[str, str]) -> bool:
    """Whether nothing but what this module reads could choose the database or change the answer."""
    names = {name.upper(): value for name, value in environ.items()}
    if any(name.startswith("LINEA_") and name not in _READ_HERE for name in names):
        return False  # --as / LINEA_ACTOR, a profile, a timeout to validate...
    if names.get("LINEA_DATA_DIR", None) == "" or _user_config().exists():
        return False
    # libpq's own variables, with no linea URL: which database they mean is the full path's to decide.
    return bool(names.get("LINEA_DATABASE_URL")) or not any(name.startswith("PG") for name in names)


def _user_config() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "linea" / "config.toml"


def _target(args: list[str], incomplete: str) -> tuple[str, str | None, dict[str, Any]] | None:
    """(what to complete, the --database-url given, the query's parameters), or None to defer."""
    from linea_cli.completion_index import COMMANDS

    if incomplete.startswith("-"):
        return None
    root = _root_options(args)
    if root is None:
        return None
    url, position = root
    command = COMMANDS.get(" ".join(args[position : position + 2]))
    if command is None or len(args) < position + 2:
        return None
    found = _parameter(command, args[position + 2 :])
    if found is None:
        return None
    kind, values = found
    params: dict[str, Any] = {}
    if kind == "user":
        params["only"] = None
    elif kind == "waitlist_email":
        params["event"] = values.get("event", "").strip()
        if not params["event"]:
            return None
    return kind, url, params


def _root_options(args: list[str]) -> tuple[str | None, int] | None:
    """(--database-url's value, where the group's name stands), or None when another root option
    (--as: the services decide) or an unknown one is given."""
    url: str | None = None
    position = 0
    while position < len(args) and args[position].startswith("-"):
        word = args[position]
        name, equals, value = word.partition("=")
        if name == "--database-url" and equals:
            url, position = value, position + 1
        elif word == "--database-url" and position + 1 < len(args):
            url, position = args[position + 1], position + 2
        elif word == "--debug":
            position += 1
        else:
            return None
    return url, position


def _parameter(command: dict[str, Any], words: list[str]) -> tuple[str, dict[str, str]] | None:
    """What completes the word after `words` (the command's own), and the arguments given so far
    by name; None when that is not a database value, or a word is not one the index knows."""
    arguments: list[list[Any]] = command["arguments"]
    options: dict[str, str | None] = command["options"]
    values: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        name, equals, _ = word.partition("=")
        if name in _ROOT_OPTIONS:  # root options after the command: the full path's
            return None
        if not word.startswith("-"):
            if len(values) >= len(arguments):
                return None
            values[arguments[len(values)][0]] = word
            i += 1
        elif name in options and equals or word in command["flags"]:
            i += 1
        elif word in options:
            if i + 1 == len(words):  # the word being completed is this option's value
                kind = options[word]
                return None if kind is None else (kind, values)
            i += 2
        else:  # `--`, an option added since the index was made
            return None
    if len(values) >= len(arguments) or arguments[len(values)][1] is None:
        return None
    return arguments[len(values)][1], values


_QUERIES = {"event": EVENTS, "user": USERS, "venue": VENUES, "waitlist_email": WAITLIST}


def _rows(kind: str, url: str | None, environ: Mapping[str, str], params: dict[str, Any]) -> list[Any]:
    """The candidates' rows, on one connection; none on any failure."""
    try:
        conninfo = _conninfo(url if url is not None else environ.get("LINEA_DATABASE_URL") or None, environ)
        if conninfo is None:
            return []
        import psycopg

        with psycopg.connect(
            conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS, prepare_threshold=None,
            application_name="linea/completion",
        ) as connection:
            limit_time(connection)
            rows = connection.execute(_QUERIES[kind], params).fetchall()
            connection.rollback()
        return rows
    except Exception:  # noqa: BLE001 - deliberate: a completion that fails completes nothing, silently
        return []


def limit_time(connection: Any) -> None:
    # SET LOCAL-style (third argument true): nothing outlives the transaction behind PgBouncer.
    connection.execute(
        "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
        (STATEMENT_TIMEOUT, STATEMENT_TIMEOUT),
    )


def _conninfo(url: str | None, environ: Mapping[str, str]) -> str | None:
    """What libpq connects to: the linea URL (its scheme as libpq spells it), else the embedded
    server as announced (None: not running, never started to complete a word)."""
    if url is not None:
        raw = url.strip()
        for scheme in _PLAIN_SCHEMES:
            if raw.startswith(scheme):
                return "postgresql://" + raw[len(scheme):]
        return None  # not a URL linea takes: nothing, as `parse_database_url` refuses it
    data_dir = Path(environ["LINEA_DATA_DIR"]) if environ.get("LINEA_DATA_DIR") else _default_data_dir()
    socket_directory = _announced_socket(data_dir / "postgres")
    if socket_directory is None:
        return None
    from psycopg.conninfo import make_conninfo

    return make_conninfo(host=str(socket_directory), user=_EMBEDDED_USER, dbname=_EMBEDDED_DATABASE)


def _default_data_dir() -> Path:
    """linea_cli.config.default_data_dir, without pydantic (tests/test_completion.py checks they agree)."""
    import platformdirs

    own = Path(platformdirs.user_data_dir("linea", appauthor=False))
    if os.geteuid() == 0 and not (own / "postgres" / "PG_VERSION").exists():
        return Path("/var/lib/linea")
    return own


def _announced_socket(pgdata: Path) -> Path | None:
    """The socket directory in `postmaster.pid` when the server said it is ready and only its user
    may enter the directory (linea_cli.db.embedded.announced_url's rule)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if len(lines) < 8 or lines[7].strip() != "ready" or not lines[4].strip():
        return None
    socket_directory = Path(lines[4].strip())
    try:
        found, owner = os.lstat(socket_directory), os.stat(pgdata).st_uid
    except OSError:
        return None
    if not (stat.S_ISDIR(found.st_mode) and not found.st_mode & 0o077 and found.st_uid == owner):
        return None
    return socket_directory
