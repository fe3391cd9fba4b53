"""`-o FILE` (and `--errors-file`): links followed, FIFOs and devices written into, modes kept,
stdout by name, bad names refused in one line, never a partial or temporary file left behind."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from tests.factories import make_audit_row, make_event, make_user, make_waitlist_entry
from tests.harness import CliRun, Database

PERSON = "ann@example.com"


@pytest.fixture
def fest(db: Database) -> dict:
    make_user(db, email=PERSON, name="Ann")
    event = make_event(db, slug="fest")
    make_waitlist_entry(db, event=event, email=PERSON)
    make_waitlist_entry(db, event=event, email="bo@example.com")
    make_audit_row(db, metadata={"n": 1})
    return event


def every_file_writer(target: str, bad_csv: Path) -> list[list[str]]:
    """Each command that writes a file, writing to `target`."""
    return [
        ["waitlist", "export", "fest", "-o", target],
        ["waitlist", "export", "fest", "--format", "json", "--output", target],
        ["users", "export", PERSON, "-o", target],
        ["audit", "export", "-o", target],
        ["waitlist", "import", "fest", str(bad_csv), "--skip-invalid", "--errors-file", target],
    ]


@pytest.fixture
def bad_csv(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "bad.csv"
    path.parent.mkdir()
    path.write_text("email\nnot-an-email\ncy@example.com\n", encoding="utf-8")
    return path


def leftovers(*directories: Path) -> list[str]:
    return [p.name for d in directories for p in d.iterdir() if p.name.endswith(".part")]


def test_a_symlink_is_followed_and_the_target_keeps_its_mode(linea: CliRun, fest: dict, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    target = real / "list.csv"
    target.write_text("previous\n")
    target.chmod(0o640)
    link = tmp_path / "list.csv"
    link.symlink_to(target)
    linea("waitlist", "export", "fest", "-o", str(link))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes().startswith(b"email,status,created_at,updated_at,name\r\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert leftovers(tmp_path, real) == []


def test_an_overwritten_file_keeps_its_mode_and_a_new_one_follows_the_umask(linea: CliRun, fest: dict, tmp_path: Path) -> None:
    existing = tmp_path / "existing.json"
    existing.write_text("{}")
    existing.chmod(0o644)
    linea("users", "export", PERSON, "-o", str(existing))
    assert json.loads(existing.read_text())["subject"]["email"] == PERSON
    assert stat.S_IMODE(existing.stat().st_mode) == 0o644
    previous = os.umask(0o027)
    try:
        linea("waitlist", "export", fest["slug"], "-o", str(tmp_path / "new.csv"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_a_new_backup_or_export_of_everyones_or_a_persons_data_is_private_whatever_the_umask(
    linea: CliRun, fest: dict, tmp_path: Path
) -> None:
    # A backup holds every session token, an export a person's whole data or the whole audit log:
    # an admin's usual umask (022) must not leave them readable by every local user.
    previous = os.umask(0o022)
    try:
        linea("db", "backup", "-o", str(tmp_path / "all.dump"))
        linea("users", "export", PERSON, "-o", str(tmp_path / "person.json"))
        linea("audit", "export", "-o", str(tmp_path / "audit.ndjson"))
    finally:
        os.umask(previous)
    for name in ("all.dump", "person.json", "audit.ndjson"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_a_fifo_is_written_through_not_replaced(linea: CliRun, fest: dict, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    try:
        linea("waitlist", "export", "fest", "-o", str(fifo))
    finally:
        if reader.is_alive() and not received:  # linea never opened it: let the reader see an end
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join()
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert received[0].startswith(b"email,status,created_at,updated_at,name\r\n") and received[0].count(b"\r\n") == 3


@pytest.mark.parametrize("name", ["-", "/dev/stdout"])
def test_dash_and_dev_stdout_write_to_stdout(linea: CliRun, fest: dict, name: str) -> None:
    result = linea("waitlist", "export", "fest", "-o", name)
    assert result.stdout_bytes.startswith(b"email,status,created_at,updated_at,name\r\n")
    assert "exported" not in result.stderr
    assert linea("users", "export", PERSON, "-o", name).json["subject"]["email"] == PERSON
    assert len(linea("audit", "export", "-o", name).stdout.splitlines()) >= 2


def option_of(args: list[str]) -> str:
    return "--errors-file" if "--errors-file" in args else "--output"


def test_a_directory_is_refused_by_every_command(linea: CliRun, db: Database, fest: dict, tmp_path: Path, bad_csv: Path) -> None:
    for args in every_file_writer(str(tmp_path), bad_csv):
        result = linea(*args, exit_code=1)
        assert result.stderr == f"error: {option_of(args)} {tmp_path} is a directory: name the file to write\n", args
    assert leftovers(tmp_path) == []
    assert db.count("audit_logs") == 1 and db.count("waitlist_entries") == 2  # nothing exported or imported


def test_an_empty_or_impossible_name_is_one_line_and_exit_1(linea: CliRun, fest: dict, tmp_path: Path, bad_csv: Path) -> None:
    for args in every_file_writer("", bad_csv):
        result = linea(*args, exit_code=1)
        assert result.stderr == f"error: {option_of(args)} needs a file name, not an empty one\n", args
    long_name = str(tmp_path / ("x" * 10_000))
    for args in every_file_writer(long_name, bad_csv):
        result = linea(*args, exit_code=1)
        assert result.stderr.count("\n") == 1 and "file name too long" in result.stderr, args
    result = linea("waitlist", "export", "fest", "-o", str(tmp_path / "missing" / "list.csv"), exit_code=1)
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr
    assert leftovers(tmp_path) == []


def test_a_full_device_is_one_line_and_stays_a_device(linea: CliRun, db: Database, fest: dict, bad_csv: Path) -> None:
    # As root, renaming over /dev/full used to replace the device with a regular file.
    for args in every_file_writer("/dev/full", bad_csv):
        result = linea(*args, exit_code=1)
        # Off the embedded server, an import into a waitlist with entries first names the database.
        errors = "".join(line for line in result.stderr.splitlines(True) if not line.startswith("import into the waitlist of "))
        assert errors == "error: cannot write /dev/full: no space left on device\n", args
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert leftovers(Path("/dev")) == []
    # The failed write rolled back what the command did: no EXPORT or IMPORT row, no entry imported.
    assert db.count("audit_logs") == 1 and db.count("waitlist_entries") == 2


def test_a_failed_command_leaves_no_errors_file(linea: CliRun, fest: dict, tmp_path: Path, bad_csv: Path) -> None:
    errors = tmp_path / "errors.csv"
    linea("waitlist", "import", "fest", str(tmp_path / "no-such.csv"), "--errors-file", str(errors), exit_code=1)
    linea("waitlist", "import", "no-such-event", str(bad_csv), "--skip-invalid", "--errors-file", str(errors), exit_code=3)
    assert not errors.exists() and leftovers(tmp_path) == []
    linea("waitlist", "import", "fest", str(bad_csv), "--skip-invalid", "--errors-file", str(errors))
    assert errors.read_bytes().startswith(b"line,email,reason\r\n2,not-an-email,")


# --- shared directories (sticky and world-writable, like /tmp), as root ------------------------

OTHER_UID = 65534  # nobody: a real user that is neither root nor the shared directory's owner

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: files are chowned to another user")


def a_file(path: Path, text: str, mode: int, owner: int | None = None) -> Path:
    """`path` holding `text` with `mode`, owned by `owner` (default: the user running the tests)."""
    path.write_text(text)
    path.chmod(mode)
    if owner is not None:
        os.chown(path, owner, owner)
    return path


def plant_link(link: Path, target: Path) -> None:
    """A symbolic link made by the other user."""
    link.symlink_to(target)
    os.lchown(link, OTHER_UID, OTHER_UID)


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A directory like /tmp: owned by root, mode 1777."""
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o1777)
    return directory


def assert_every_writer_refuses(linea: CliRun, target: Path, bad_csv: Path, what: str, shared: Path) -> None:
    """Every command writing `target` (`db backup` too) stops with the one line naming `what`."""
    for args in [*every_file_writer(str(target), bad_csv), ["db", "backup", "-o", str(target)]]:
        result = linea(*args, exit_code=1)
        assert result.stderr == (
            f"error: refusing to write {option_of(args)} {target}: {what} "
            f"in the shared directory {shared} (sticky, writable by anyone)\n"
        ), args


@as_root
def test_a_file_another_user_planted_in_a_shared_directory_is_never_written(
    linea: CliRun, db: Database, fest: dict, shared: Path, bad_csv: Path
) -> None:
    planted = a_file(shared / "out", "planted\n", 0o666, OTHER_UID)
    fifo = shared / "pipe"
    os.mkfifo(fifo, 0o666)
    os.chown(fifo, OTHER_UID, OTHER_UID)
    for target in (planted, fifo):
        assert_every_writer_refuses(linea, target, bad_csv, f"{target} is a file of uid {OTHER_UID}", shared)
    assert planted.read_text() == "planted\n" and planted.stat().st_uid == OTHER_UID
    assert stat.S_ISFIFO(fifo.stat().st_mode) and fifo.stat().st_uid == OTHER_UID
    assert leftovers(shared) == []
    assert db.count("audit_logs") == 1 and db.count("waitlist_entries") == 2  # nothing exported or imported


@as_root
def test_a_link_another_user_planted_in_a_shared_directory_is_never_followed(
    linea: CliRun, fest: dict, tmp_path: Path, shared: Path, bad_csv: Path
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    secret = a_file(private / "shadow", "root only\n", 0o600)
    link = shared / "backup.dump"
    plant_link(link, secret)
    # A link to a directory, met on the way to the file, counts as much as the last one.
    directory_link = shared / "dir"
    plant_link(directory_link, private)
    for target, found in ((link, link), (directory_link / "shadow", directory_link), (directory_link / "new.csv", directory_link)):
        assert_every_writer_refuses(linea, target, bad_csv, f"{found} is a symbolic link of uid {OTHER_UID}", shared)
    assert secret.read_text() == "root only\n" and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert sorted(p.name for p in private.iterdir()) == ["shadow"]
    assert link.is_symlink() and directory_link.is_symlink()


@as_root
def test_the_users_own_files_and_the_directory_owners_in_a_shared_directory_are_written(
    linea: CliRun, fest: dict, tmp_path: Path, shared: Path
) -> None:
    own = a_file(shared / "own.csv", "previous\n", 0o640)
    linea("waitlist", "export", "fest", "-o", str(own))
    assert own.read_bytes().startswith(b"email,status,") and stat.S_IMODE(own.stat().st_mode) == 0o640
    own_link = shared / "own-link.csv"
    own_link.symlink_to(own)  # root's own link: followed
    linea("users", "export", PERSON, "-o", str(own_link))
    assert own_link.is_symlink() and json.loads(own.read_text())["subject"]["email"] == PERSON
    linea("db", "backup", "-o", str(shared / "new.dump"))
    assert (shared / "new.dump").stat().st_uid == 0
    # The directory's owner's files and links are as trusted as the kernel trusts them.
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    theirs.chmod(0o1777)
    os.chown(theirs, OTHER_UID, OTHER_UID)
    owners = a_file(theirs / "list.csv", "previous\n", 0o644, OTHER_UID)
    linea("waitlist", "export", "fest", "-o", str(owners))
    assert owners.read_bytes().startswith(b"email,status,") and owners.stat().st_uid == OTHER_UID
    assert leftovers(shared, theirs) == []


@as_root
def test_outside_shared_directories_other_users_files_and_links_are_written_as_before(
    linea: CliRun, fest: dict, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir(mode=0o755)
    target = a_file(plain / "list.csv", "previous\n", 0o640, OTHER_UID)
    link = plain / "link.csv"
    plant_link(link, target)
    linea("waitlist", "export", "fest", "-o", str(link))
    assert link.is_symlink() and target.read_bytes().startswith(b"email,status,")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.stat().st_uid == OTHER_UID
