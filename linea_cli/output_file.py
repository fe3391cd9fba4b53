"""Where `-o FILE` (and `--errors-file`) write: the one implementation for every command.

- No FILE, `-` or `/dev/stdout`: stdout.
- A regular file, or a new one: written to a temporary `.NAME.*.part` in the same directory and
  renamed over it only when complete, so readers never see half a file and a failure (an error,
  Ctrl-C, a full disk) leaves whatever was there before. An existing file keeps its mode (and,
  when linea may, its owner); a new one gets the mode the umask gives, like `>` in a shell, or
  0600 when the caller says it is private.
- A symbolic link is followed: the temporary file goes beside the file it points to and is
  renamed over that file, so the link stays a link.
- In a shared directory (sticky and world-writable, like /tmp) linea does what the kernel's
  `protected_symlinks` and `protected_regular` do, whatever the sysctl says: it follows no link
  and writes into (or replaces) no file or FIFO that belongs to someone other than the user or
  the directory's owner. A root job writing `-o /tmp/x` never hands its output to another user
  nor replaces the root-only file another user's link points at. The directory is then held
  open and checked again, and the temporary file is made and renamed in it, so a link swapped
  in on the way after the check is never followed.
- Anything else (a FIFO, a terminal, `/dev/null`, `/dev/full`) is written straight into, as a
  shell redirection would: renaming over it would replace a device node with a plain file.
- A directory, an empty name, a missing directory or a name the system refuses is one line and
  exit 1; so is a write that fails (no space left), and nothing partial stays behind.
"""

from __future__ import annotations

import codecs
import io
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, BinaryIO

from linea_cli.errors import InvalidInput, WriteFailed

STDOUT_NAMES = frozenset({"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})
_BUFFER_SIZE = 1 << 20


def writes_to_stdout(path: str | None) -> bool:
    return path is None or path in STDOUT_NAMES


@contextmanager
def output_file(
    path: str | None, *, option: str = "--output", keep_on: tuple[type[BaseException], ...] = (), private: bool = False
) -> Iterator[BinaryIO]:
    """Bytes to `path` as described above; on an exception in `keep_on` the file is still completed
    (the errors file of an import that was refused is the report of that refusal). A `private`
    new file (a backup, a person's whole data) is mode 0600 whatever the umask: an admin's umask
    of 022 would otherwise let every local user read session tokens and addresses."""
    if writes_to_stdout(path):
        sys.stdout.flush()  # whatever was printed before comes first
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    assert path is not None
    if not path:
        raise InvalidInput(f"{option} needs a file name, not an empty one")
    try:
        target = _resolved(path, option)
        existing = os.stat(target)
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise _failure(path, exc) from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise InvalidInput(f"{option} {_shown(path)} is a directory: name the file to write")
    if existing is not None and (stat.S_ISREG(existing.st_mode) or stat.S_ISFIFO(existing.st_mode)):
        _refuse_other_users(path, option, target, existing.st_uid, "a file")
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with _straight(path, target) as out:
            yield out
        return
    directory, name = os.path.split(target)
    folder = _pinned_directory(path, option, directory)
    try:
        fd, temporary = _temporary_beside(path, folder, name, existing, private=private)
        out = _Writer(fd, path)
        try:
            try:
                yield out
            except keep_on:
                _finish(out, folder, temporary, name)
                raise
            _finish(out, folder, temporary, name)
        except BaseException:
            _discard(out, temporary, folder)
            raise
    finally:
        os.close(folder.fd)


def text_writer(out: BinaryIO) -> IO[str]:
    """A UTF-8 text view of `out` that leaves `out` open (for rendering JSON or CSV into it)."""
    return codecs.getwriter("utf-8")(out)  # type: ignore[return-value]


class _Writer(io.BufferedWriter):
    """A buffered file whose write errors (no space left, quota) are one line for the user.

    A closed pipe stays a BrokenPipeError: the error boundary ends quietly on it, as for stdout.
    """

    def __init__(self, fd: int, shown: str) -> None:
        super().__init__(io.FileIO(fd, "wb", closefd=True), buffer_size=_BUFFER_SIZE)
        self.shown = shown

    def write(self, data: bytes) -> int:  # type: ignore[override]
        try:
            return super().write(data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _failure(self.shown, exc) from None

    def flush(self) -> None:
        try:
            super().flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _failure(self.shown, exc) from None


@contextmanager
def _straight(path: str, target: str) -> Iterator[BinaryIO]:
    """Write into a FIFO or a device as it is (opening a FIFO waits for its reader, as `>` does)."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise _failure(path, exc) from None
    out = _Writer(fd, path)
    try:
        yield out
        out.flush()
    except BaseException:
        _discard(out, None)
        raise
    out.close()


# As the kernel counts them (MAXSYMLINKS): a loop of links is an error, not a hang.
_MAX_LINKS = 40


def _resolved(path: str, option: str) -> str:
    """`os.path.realpath(path)`, except that a link in a shared directory that belongs to someone
    other than the user or the directory's owner is refused rather than followed."""
    current = "/" if path.startswith("/") else os.getcwd()
    pending = path.split("/")
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            found = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            current = candidate  # opening it says what is wrong, as realpath leaves it
            continue
        if not stat.S_ISLNK(found.st_mode):
            current = candidate
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(40, "Too many levels of symbolic links")
        _refuse_other_users(path, option, candidate, found.st_uid, "a symbolic link")
        link = os.readlink(candidate)
        if link.startswith("/"):
            current = "/"
        pending[:0] = link.split("/")
    return current


def _refuse_other_users(path: str, option: str, found: str, owner: int, kind: str) -> None:
    """One line when `found` (in a sticky, world-writable directory) is another user's."""
    directory = os.path.dirname(found) or "/"
    try:
        shared = os.stat(directory)
    except OSError:
        return  # nothing to protect: opening it fails with its own message
    mode = shared.st_mode
    if not (mode & stat.S_ISVTX and mode & stat.S_IWOTH):
        return
    if owner in (os.geteuid(), shared.st_uid):
        return
    raise WriteFailed(
        f"refusing to write {option} {_shown(path)}: {_shown(found)} is {kind} of uid {owner} in the shared "
        f"directory {_shown(directory)} (sticky, writable by anyone)"
    )


class _Directory:
    """The directory the file goes in, open: the temporary file is made and renamed in it even if
    a name on the way to it is swapped for a link in the meantime."""

    def __init__(self, fd: int, shown: str) -> None:
        self.fd = fd
        self.shown = shown


def _pinned_directory(path: str, option: str, directory: str) -> _Directory:
    """`directory` opened, then checked once more: the path, resolved again with the same rules
    (`_resolved`), must still name the directory that was opened, so a link another user put on
    the way between the first check and the opening is either refused or never reached."""
    try:
        fd = os.open(directory, getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise WriteFailed(f"cannot write {_shown(path)}: directory {_shown(directory)} does not exist") from None
    except OSError as exc:
        raise WriteFailed(f"cannot write {_shown(path)}: cannot create a file in {_shown(directory)}: {_reason(exc)}") from None
    try:
        opened, named = os.fstat(fd), os.stat(os.path.dirname(_resolved(path, option)))
        if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
            raise WriteFailed(f"cannot write {_shown(path)}: its directory {_shown(directory)} changed while it was opened")
    except OSError as exc:
        os.close(fd)
        raise _failure(path, exc) from None
    except BaseException:
        os.close(fd)
        raise
    return _Directory(fd, directory)


def _temporary_beside(
    path: str, folder: _Directory, name: str, existing: os.stat_result | None, *, private: bool
) -> tuple[int, str]:
    # Mode 0666 lets the umask decide for a new file; an existing file's mode is copied below.
    mode = 0o666 if existing is None and not private else 0o600
    while True:
        temporary = f".{name[:100]}.{secrets.token_hex(4)}.part"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode, dir_fd=folder.fd)
            break
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise WriteFailed(f"cannot write {_shown(path)}: directory {_shown(folder.shown)} does not exist") from None
        except OSError as exc:
            raise WriteFailed(
                f"cannot write {_shown(path)}: cannot create a file in {_shown(folder.shown)}: {_reason(exc)}"
            ) from None
    if existing is not None:
        try:
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
            if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fd, existing.st_uid, existing.st_gid)
                except PermissionError:  # only root gives a file away; the mode is what matters
                    pass
        except BaseException:
            os.close(fd)
            os.unlink(temporary, dir_fd=folder.fd)
            raise
    return fd, temporary


def _finish(out: _Writer, folder: _Directory, temporary: str, name: str) -> None:
    out.flush()
    try:
        os.fsync(out.fileno())
    except OSError as exc:
        raise _failure(out.shown, exc) from None
    out.close()
    try:
        os.replace(temporary, name, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
    except OSError as exc:
        raise _failure(out.shown, exc) from None


def _discard(out: _Writer, temporary: str | None, folder: _Directory | None = None) -> None:
    try:
        out.raw.close()  # not out.close(): that would flush, and fail again on a full disk
    except OSError:
        pass
    if temporary is not None and folder is not None:
        try:
            os.unlink(temporary, dir_fd=folder.fd)
        except FileNotFoundError:
            pass


def _failure(path: str, exc: OSError) -> WriteFailed:
    return write_failed(exc, _shown(path))


def write_failed(exc: OSError, what: str = "the output") -> WriteFailed:
    """The one-line error for a write that failed (also for stdout, e.g. `linea ... > /dev/full`)."""
    return WriteFailed(f"cannot write {what}: {_reason(exc)}")


def _reason(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return reason[:1].lower() + reason[1:]


def _shown(path: str) -> str:
    """The path in a message: a very long one is cut, so that the message stays one line."""
    return path if len(path) <= 200 else path[:120] + f"... ({len(path)} characters)"
