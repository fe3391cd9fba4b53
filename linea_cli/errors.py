"""The one exception hierarchy linea raises, each kind with its exit code.

Services raise these with messages written for the user; `linea_cli.cli` is the single place that
turns them into one line on stderr and the exit code documented in the README.
"""

from __future__ import annotations

import re

# Exit codes. 2 is Click's own usage error; 130/143/141 are what a shell reports for a process
# ended by SIGINT/SIGTERM/SIGPIPE (128 + the signal), so scripts see linea as they see `yes | head`.
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNAVAILABLE = 5
EXIT_DENIED = 6
# `users verify-erased` (and `users anonymize`, which runs it) found what identified a person.
EXIT_TRACES_REMAIN = 7
# ... or could not see every row of some table (row-level security, a foreign table, no SELECT
# privilege, a lock it could not get without making the platform wait). Traces found win (7).
EXIT_NOT_VERIFIED = 8
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
# stdout (or a FIFO given to -o) was closed by its reader (`linea ... | head -1`): linea stops
# quietly, as Unix tools do. Python ignores SIGPIPE, so this is chosen, not the signal's doing.
EXIT_BROKEN_PIPE = 141

# What each code means, for `linea --help` (README.md's table says the same at more length).
EXIT_CODE_MEANINGS: tuple[tuple[str, str], ...] = (
    ("0", "success"),
    ("1", "invalid input; an output file that cannot be written"),
    ("2", "usage error (unknown command, option or field; missing argument)"),
    ("3", "not found; the embedded server is not running (db server status)"),
    ("4", "conflict: a duplicate, a change the current state does not allow, a constraint violated"),
    ("5", "database unavailable, too old, or not migrated"),
    ("6", "permission denied (by linea's rules, or a privilege the database role lacks)"),
    ("7", "an erased person's traces remain (users verify-erased, users anonymize)"),
    ("8", "the erasure could not be verified: some table could not be fully searched"),
    ("70", "internal error (a bug: run again with --debug and report it)"),
    ("130 / 143", "interrupted by SIGINT / SIGTERM; nothing uncommitted was kept"),
    ("141", "stdout was closed by its reader"),
)

# A value echoed in a message is cut to this many characters: a hostile 200,000-character argument
# must not turn one error line into a page (or the terminal into a pager).
SHOWN_LENGTH = 200


def shown(value: object, *, limit: int = SHOWN_LENGTH) -> str:
    """`value` as a message quotes it (like `repr`), cut to `limit` characters with an ellipsis."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(value)
    return repr(text[:limit] + "…") + f" ({len(text):,} characters)"


def first_line(exc: BaseException, *, default: str | None = None) -> str:
    """The first line of a driver's message (SQLAlchemy's wrapped `orig`, else `exc` itself):
    the server's own words, without its DETAIL/HINT lines; `default` (else the exception's type
    name) when it said nothing."""
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return lines[0] if lines else (default if default is not None else type(original).__name__)


def cut(text: str, *, limit: int) -> str:
    """`text` cut to `limit` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


# A parameter named in a message (`pass force to publish it anyway`): services and the data
# layer speak of their parameters, never of command-line options. The command line's error
# boundary names each as its option (`--force`, `--as`); a program calling the library reads the
# parameter (`force=True`). Marked with shift-out/shift-in, which a quoted value (`shown`) never
# holds raw.
_PARAMETER = re.compile("\x0e([a-z_]+)(?:\x0f([^\x0e]*))?\x0e")


def parameter(name: str, *, value: object = None) -> str:
    """`name` (a parameter of the call that failed) in a message; `value`, when given, is what a
    program passes to get what the message suggests (`parameter("force", value=True)`)."""
    return f"\x0e{name}" + (f"\x0f{value!r}" if value is not None else "") + "\x0e"


def for_library(text: str) -> str:
    """`text` with each parameter as a program calling the library names it: `force=True`, `slug`."""
    return _PARAMETER.sub(lambda m: m[1] + (f"={m[2]}" if m[2] is not None else ""), text)


def with_options(text: str, option: object) -> str:
    """`text` with each parameter named by `option(name)` (the command line's `--force`)."""
    return _PARAMETER.sub(lambda m: option(m[1]), text)  # type: ignore[operator]


class LineaError(Exception):
    """An error the user can act on: `message` is its one line, `details` lines that follow it
    (the rows an import rejected, say). The boundary escapes control characters in all of them,
    so messages may quote data as it is.

    Parameters named in the message and hint are marked (`parameter`): `message` and `hint` (and
    `str()`) name them as a program calling the library does, `marked_message`/`marked_hint` keep
    the marks for the command line's boundary, which names them as options."""

    exit_code = EXIT_INVALID

    def __init__(self, message: str, *, hint: str | None = None, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.marked_message = message
        self.marked_hint = hint
        self.details = details

    @property
    def message(self) -> str:
        return for_library(self.marked_message)

    @message.setter
    def message(self, text: str) -> None:
        self.marked_message = text

    @property
    def hint(self) -> str | None:
        return None if self.marked_hint is None else for_library(self.marked_hint)

    @hint.setter
    def hint(self, text: str | None) -> None:
        self.marked_hint = text

    def __str__(self) -> str:
        return self.message


class InvalidInput(LineaError):
    exit_code = EXIT_INVALID


class UsageProblem(LineaError):
    """A command line that cannot mean anything (an unknown --fields name): exit 2, like Click's own."""

    exit_code = EXIT_USAGE


class WriteFailed(LineaError):
    """An output file that cannot be written: a directory, no space left, no permission."""

    exit_code = EXIT_INVALID


class NotFound(LineaError):
    exit_code = EXIT_NOT_FOUND


class Conflict(LineaError):
    """A duplicate, or a change the current state does not allow."""

    exit_code = EXIT_CONFLICT


class DatabaseUnavailable(LineaError):
    """The database cannot be reached, is too old, or is not migrated."""

    exit_code = EXIT_UNAVAILABLE


class PermissionDenied(LineaError):
    exit_code = EXIT_DENIED


class TracesRemain(LineaError):
    """What identified an erased person is still in the database; `details` name table, column and row."""

    exit_code = EXIT_TRACES_REMAIN


class NotVerified(LineaError):
    """No trace was found, but some table could not be fully searched; `details` say which and why."""

    exit_code = EXIT_NOT_VERIFIED


class Interrupted(LineaError):
    """Ctrl-C (SIGINT) ended the command; whatever was not committed rolled back."""

    exit_code = EXIT_INTERRUPTED


class Terminated(LineaError):
    """SIGTERM (a cron timeout, `systemctl stop`) ended the command, as Ctrl-C would."""

    exit_code = EXIT_TERMINATED


class InternalError(LineaError):
    """Anything linea did not expect: a bug, reported as one line with the way to learn more."""

    exit_code = EXIT_INTERNAL
