"""`linea waitlist import` and `export`: CSV dialects, validation, duplicates, round trips, safety."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import string
from pathlib import Path

import pytest

from linea_cli import csvio
from linea_cli.db import copy as db_copy
from tests.factories import make_event, make_user, make_waitlist_entry
from tests.harness import CliRun, Database


def write(path: Path, text: str, encoding: str = "utf-8") -> str:
    path.write_bytes(text.encode(encoding))
    return str(path)


def emails(db: Database, event: dict) -> list[str]:
    return [r.email for r in db.all("SELECT email FROM waitlist_entries WHERE event_id = :e ORDER BY email", e=event["id"])]


def summary(result) -> dict:  # noqa: ANN001
    return result.json


def ten_rows(bad_line: int | None = None) -> str:
    """A header and ten data rows (file lines 2..11); `bad_line` holds an invalid address."""
    lines = ["email,status"]
    for line in range(2, 12):
        lines.append(("not-an-email" if line == bad_line else f"guest{line}@example.com") + ",PENDING")
    return "\n".join(lines) + "\n"


# --- dialects ---------------------------------------------------------------------------------

def test_bom_and_crlf(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    path = write(tmp_path / "bom.csv", "\ufeffEmail,Status\r\nann@example.com,confirmed\r\nbo@example.com,\r\n")
    result = summary(linea("waitlist", "import", event["slug"], path, "--json"))
    assert result["inserted"] == 2 and result["invalid"] == 0
    assert emails(db, event) == ["ann@example.com", "bo@example.com"]
    assert db.scalar("SELECT status::text FROM waitlist_entries WHERE email = 'ann@example.com'") == "CONFIRMED"
    assert db.scalar("SELECT status::text FROM waitlist_entries WHERE email = 'bo@example.com'") == "PENDING"


def test_old_mac_line_endings_are_read(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    text = 'email,name\rann@example.com,"Ann\rLee"\rbo@example.com,Bo\rbad-address,x\r'
    path = write(tmp_path / "mac.csv", text)
    result = linea("waitlist", "import", event["slug"], path, exit_code=1)
    assert "line 5: invalid email 'bad-address'" in result.stderr  # Ann's record spans lines 2-3
    assert summary(linea("waitlist", "import", event["slug"], path, "--skip-invalid", "--json"))["inserted"] == 2
    assert emails(db, event) == ["ann@example.com", "bo@example.com"]
    result = linea("waitlist", "import", event["slug"], "-", "--json", input="email\rcy@example.com\r")
    assert summary(result)["inserted"] == 1


def test_a_stray_carriage_return_is_one_clear_line(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    path = write(tmp_path / "mixed.csv", "email,name\nann@example.com,Ann\rLee\n")
    result = linea("waitlist", "import", event["slug"], path, exit_code=1)
    assert result.stderr == (
        "error: line 2: a carriage return (CR) inside an unquoted field\n"
        "hint: quote that field, or save the file with LF or CRLF line endings\n"
    )


def test_semicolon_and_tab_files(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    path = write(tmp_path / "semi.csv", "name;email\nLee, Ann;ann@example.com\n\"Bo; Jr\";bo@example.com\n")
    result = linea("waitlist", "import", event["slug"], path, "--delimiter", ";", "--json")
    assert summary(result)["inserted"] == 2
    assert "columns separated by" not in result.stderr  # given, not found
    tabbed = write(tmp_path / "tab.tsv", "email\tstatus\ncy@example.com\tCANCELLED\n")
    linea("waitlist", "import", event["slug"], tabbed, "--delimiter", "tab")
    assert emails(db, event) == ["ann@example.com", "bo@example.com", "cy@example.com"]
    # The wrong delimiter: no 'email' column in the header, and the separator it looks like
    wrong = linea("waitlist", "import", event["slug"], path, "-d", ",", exit_code=1)
    assert "no 'email' column" in wrong.stderr
    assert "hint: the columns are separated by ';': use --delimiter ';'" in wrong.stderr
    wrong = linea("waitlist", "import", event["slug"], tabbed, "-d", ",", exit_code=1)
    assert "hint: the columns are separated by tab: use --delimiter tab" in wrong.stderr
    wrong = linea("waitlist", "import", event["slug"], write(tmp_path / "c.csv", "email,status\n"), "-d", ";", exit_code=1)
    assert "use --delimiter ','" in wrong.stderr


def test_the_delimiter_is_found_in_the_header_line(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    # Excel's "CSV" in France: semicolons, commas inside the names.
    semi = write(tmp_path / "semi.csv", "Nom;Email;Statut\nLee, Ann;ann@example.com;\n")
    result = linea("waitlist", "import", event["slug"], semi, "--json")
    assert summary(result)["inserted"] == 1
    assert result.stderr.splitlines()[0] == "columns separated by ';' (found in the header line; --delimiter to choose)"
    tabbed = write(tmp_path / "tab.tsv", "email\tstatus\nbo@example.com\tCANCELLED\n")
    result = linea("waitlist", "import", event["slug"], tabbed, "--json")
    assert "columns separated by tab (found in the header line" in result.stderr
    assert db.scalar("SELECT status::text FROM waitlist_entries WHERE email = 'bo@example.com'") == "CANCELLED"
    # A comma file, and a file of one column, say nothing: that is what CSV means.
    for text in ("email,status\ncy@example.com,\n", "email\ndi@example.com\n"):
        result = linea("waitlist", "import", event["slug"], write(tmp_path / "plain.csv", text), "--json")
        assert summary(result)["inserted"] == 1 and "separated" not in result.stderr
    # Semicolons in a comma file's quoted header do not fool it.
    odd = write(tmp_path / "odd.csv", '"a;b;c",email\n"x;y;z",ed@example.com\n')
    assert summary(linea("waitlist", "import", event["slug"], odd, "--json"))["inserted"] == 1
    assert emails(db, event) == ["ann@example.com", "bo@example.com", "cy@example.com", "di@example.com", "ed@example.com"]


def test_quoted_newline_in_a_name_keeps_line_numbers(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    text = 'email,name\nann@example.com,"Ann\nLee, the second"\nbo@example.com,"Bo ""B"" Smith"\nbad-address,x\n'
    path = write(tmp_path / "quoted.csv", text)
    result = linea("waitlist", "import", event["slug"], path, exit_code=1)
    # The record of Ann spans lines 2-3, so the bad row is on line 5
    assert "line 5:" in result.stderr
    result = linea("waitlist", "import", event["slug"], path, "--skip-invalid", "--json")
    assert summary(result)["inserted"] == 2
    assert emails(db, event) == ["ann@example.com", "bo@example.com"]


def test_blank_lines_and_empty_rows_are_not_records(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    path = write(tmp_path / "blank.csv", "email,status\n\nann@example.com,\n,\n , \nbo@example.com,PENDING\n,,\n\n")
    result = summary(linea("waitlist", "import", event["slug"], path, "--json"))
    assert (result["rows"], result["inserted"], result["invalid"]) == (2, 2, 0)


def test_stdin_and_unknown_columns(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    result = linea("waitlist", "import", event["slug"], "-", "--json", input="EMAIL,Phone,name\nann@example.com,123,Ann\n")
    assert summary(result)["inserted"] == 1
    assert "ignored unknown column(s): Phone" in result.stderr


def test_non_utf8_is_refused_with_the_line(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    path = write(tmp_path / "latin1.csv", "email,name\nann@example.com,Ann\nbo@example.com,Zoë\n", encoding="latin-1")
    result = linea("waitlist", "import", event["slug"], path, exit_code=1)
    assert result.stderr == (
        "error: line 3 is not UTF-8 (byte 18 of the line is b'\\xeb')\n"
        "hint: it reads as windows-1252: 'bo@example.com,Zoë'; use --encoding windows-1252\n"
    )
    assert db.count("waitlist_entries") == 0


def test_excel_csv_of_western_europe_imports_with_its_encoding(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    # Excel's usual "CSV" in France, Germany, Spain: windows-1252, semicolons, CRLF.
    text = "Email;Nom\r\nzoe@example.com;Zoë Müller – “Señora” €\r\nann@example.com;Ann\r\n"
    path = write(tmp_path / "excel-fr.csv", text, encoding="windows-1252")
    result = linea("waitlist", "import", event["slug"], path, exit_code=1)
    assert "line 2 is not UTF-8" in result.stderr and "use --encoding windows-1252" in result.stderr
    result = linea("waitlist", "import", event["slug"], path, "--encoding", "windows-1252", "--json")
    assert summary(result)["inserted"] == 2
    assert "columns separated by ';'" in result.stderr
    assert emails(db, event) == ["ann@example.com", "zoe@example.com"]
    # Cyrillic Windows text is named as such, not as accented Latin letters.
    cyrillic = write(tmp_path / "ru.csv", "email;name\nivan@example.com;Иван Петров\n", encoding="windows-1251")
    result = linea("waitlist", "import", event["slug"], cyrillic, exit_code=1)
    assert "hint: it reads as windows-1251: 'ivan@example.com;Иван Петров'; use --encoding windows-1251" in result.stderr


def first_error(stderr: str) -> str:
    """The error line (off the embedded server, an import into a waitlist with entries first names
    the database it changes)."""
    return next(line for line in stderr.splitlines() if line.startswith("error: "))


def test_any_python_codec_and_its_errors(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    latin = write(tmp_path / "l.csv", "email,name\nann@example.com,Zoë\n", encoding="latin-1")
    assert summary(linea("waitlist", "import", event["slug"], latin, "--encoding", "ISO-8859-1", "--json"))["inserted"] == 1
    # UTF-16 without a byte order mark, when named, and UTF-32.
    utf16 = tmp_path / "le.csv"
    utf16.write_bytes("email\nbo@example.com\n".encode("utf-16-le"))
    assert summary(linea("waitlist", "import", event["slug"], str(utf16), "--encoding", "utf-16-le", "--json"))["inserted"] == 1
    utf32 = tmp_path / "utf32.csv"
    utf32.write_bytes("\ufeffemail\ncy@example.com\n".encode("utf-32"))
    assert summary(linea("waitlist", "import", event["slug"], str(utf32), "--encoding", "utf-32", "--json"))["inserted"] == 1
    # A byte the named encoding does not have: its line. An unknown name: one line, exit 1.
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"email\ndi@example.com\nzed\x81@example.com\n")
    result = linea("waitlist", "import", event["slug"], str(bad), "--encoding", "windows-1252", exit_code=1)
    assert first_error(result.stderr) == "error: line 3 is not windows-1252 (byte 4 of the line is b'\\x81')"
    result = linea("waitlist", "import", event["slug"], latin, "--encoding", "klingon", exit_code=1)
    assert first_error(result.stderr) == "error: unknown encoding 'klingon'"
    result = linea("waitlist", "import", event["slug"], latin, "--encoding", "rot13", exit_code=1)
    assert first_error(result.stderr) == "error: 'rot13' is not a text encoding"
    assert emails(db, event) == ["ann@example.com", "bo@example.com", "cy@example.com"]


def test_header_problems(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    linea("waitlist", "import", event["slug"], write(tmp_path / "empty.csv", ""), exit_code=1)
    linea("waitlist", "import", event["slug"], str(tmp_path / "missing.csv"), exit_code=1)
    result = linea("waitlist", "import", event["slug"], "n" * 300 + ".csv", exit_code=1)
    assert "cannot read" in result.stderr and "File name too long" in result.stderr
    result = linea("waitlist", "import", event["slug"], write(tmp_path / "h.csv", "mail\nann@example.com\n"), exit_code=1)
    assert "no 'email' column" in result.stderr


# --- spreadsheets ---------------------------------------------------------------------------

EXCEL_UNICODE_TEXT = "email\tstatus\tname\r\nzoe@example.com\tCONFIRMED\tZoë Ångström\r\nbad-address\t\tx\r\n"


def test_excel_unicode_text_is_read_as_utf16_and_tab_separated(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    # Excel's "Unicode text": UTF-16 little-endian with a byte order mark, tab-separated, CRLF.
    path = tmp_path / "excel.txt"
    path.write_bytes("\ufeff".encode("utf-16-le") + EXCEL_UNICODE_TEXT.encode("utf-16-le"))
    result = linea("waitlist", "import", event["slug"], str(path), exit_code=1)
    assert "line 3: invalid email 'bad-address'" in result.stderr  # the file's own line numbers
    result = linea("waitlist", "import", event["slug"], str(path), "--skip-invalid", "--json")
    assert (summary(result)["inserted"], summary(result)["invalid"]) == (1, 1)
    assert db.scalar("SELECT status::text FROM waitlist_entries WHERE email = 'zoe@example.com'") == "CONFIRMED"
    # Big-endian works as well, and an explicit --delimiter still decides.
    other = make_event(db)
    big = tmp_path / "big-endian.csv"
    big.write_bytes("\ufeffemail,status\nann@example.com,PENDING\n".encode("utf-16-be"))
    assert summary(linea("waitlist", "import", other["slug"], str(big), "--delimiter", ",", "--json"))["inserted"] == 1


def test_other_unicode_files_are_refused_by_name(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    utf32 = tmp_path / "utf32.txt"
    utf32.write_bytes("\ufeffemail\nann@example.com\n".encode("utf-32-le"))
    result = linea("waitlist", "import", event["slug"], str(utf32), exit_code=1)
    assert "the file is UTF-32" in result.stderr
    broken = tmp_path / "broken.txt"
    broken.write_bytes("\ufeffemail\nann@example.com\n".encode("utf-16-le") + b"\x00")  # an odd byte at the end
    result = linea("waitlist", "import", event["slug"], str(broken), exit_code=1)
    assert "not valid UTF-16" in result.stderr and "Traceback" not in result.stderr
    without_bom = tmp_path / "no-bom.txt"
    without_bom.write_bytes("email\nann@example.com\n".encode("utf-16-le"))
    result = linea("waitlist", "import", event["slug"], str(without_bom), exit_code=1)
    assert "UTF-16 without a byte order mark" in result.stderr
    assert db.count("waitlist_entries") == 0


def test_a_name_column_is_reported_as_not_imported(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    named = write(tmp_path / "named.csv", "email,name\nann@example.com,Ann Lee\nbo@example.com,\ncy@example.com,Cy\n")
    result = linea("waitlist", "import", event["slug"], named)
    assert "warning: the name column is not imported (2 rows have one)" in result.stderr
    # An empty name column loses nothing: nothing to say.
    empty = write(tmp_path / "empty-names.csv", "email,name\ndi@example.com,\n")
    assert "name column" not in linea("waitlist", "import", event["slug"], empty).stderr


def test_export_bom_for_excel_imports_back(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="zoe@example.com", user_id=make_user(db, email="zoe@example.com", name="Zoë")["id"])
    path = tmp_path / "excel.csv"
    linea("waitlist", "export", event["slug"], "-o", str(path), "--bom")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfemail,status,created_at,updated_at,name\r\n") and "Zoë".encode() in data
    assert not linea("waitlist", "export", event["slug"]).stdout.startswith("\ufeff")  # only when asked
    other = make_event(db)
    assert summary(linea("waitlist", "import", other["slug"], str(path), "--json"))["inserted"] == 1
    result = linea("waitlist", "export", event["slug"], "--bom", "--format", "json", exit_code=1)
    assert "--bom is for CSV" in result.stderr


def test_import_from_a_terminal_says_it_waits_for_input(db: Database, database_url, tmp_path: Path) -> None:  # noqa: ANN001
    import os
    import subprocess
    import sys

    from tests.harness import ROOT, plain_url, run_linea_on_terminal

    event = make_event(db)
    env = {"LINEA_DATABASE_URL": plain_url(database_url), "LINEA_DATA_DIR": str(tmp_path), "NO_COLOR": "1", "LINEA_ACTOR": None}
    # Typed ahead: the terminal keeps the lines until linea reads them; Ctrl-D on an empty line ends the input.
    run = run_linea_on_terminal(
        ["waitlist", "import", event["slug"], "-", "--json"], env=env, terminal="stdin", typed=b"email\nann@example.com\n\x04"
    )
    assert run.returncode == 0, run.other
    assert b"end with Ctrl-D" in run.other
    assert db.count("waitlist_entries") == 1
    # Piped input needs no such words.
    piped = subprocess.run(
        [sys.executable, "-m", "linea_cli", "waitlist", "import", event["slug"], "-"],
        env={key: value for key, value in {**os.environ, **env}.items() if value is not None}, cwd=ROOT, input=b"email\nbo@example.com\n", capture_output=True, timeout=120,
    )
    assert piped.returncode == 0 and b"Ctrl-D" not in piped.stderr


# --- validation -------------------------------------------------------------------------------

def test_invalid_line_7_aborts_everything(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    path = write(tmp_path / "ten.csv", ten_rows(bad_line=7))
    result = linea("waitlist", "import", event["slug"], path, exit_code=1)
    assert "line 7:" in result.stderr and "not-an-email" in result.stderr
    assert "nothing was imported" in result.stderr
    assert db.count("waitlist_entries") == 0
    assert db.count("audit_logs") == 0


def test_invalid_line_7_with_skip_invalid_imports_9(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    path = write(tmp_path / "ten.csv", ten_rows(bad_line=7))
    errors = tmp_path / "errors.csv"
    result = linea("waitlist", "import", event["slug"], path, "--skip-invalid", "--errors-file", str(errors), "--json")
    counts = summary(result)
    assert counts["inserted"] == 9 and counts["invalid"] == 1 and counts["rows"] == 10
    assert "line 7:" in result.stderr
    assert db.count("waitlist_entries") == 9
    assert "guest7@example.com" not in emails(db, event)
    rows = list(csv.reader(errors.open(encoding="utf-8")))
    assert rows[0] == ["line", "email", "reason"] and rows[1][:2] == ["7", "not-an-email"]
    [audit] = db.all("SELECT resource, resource_id, metadata FROM audit_logs WHERE action = 'IMPORT'")
    assert audit.resource == "Event" and audit.resource_id == event["id"]
    assert audit.metadata["inserted"] == 9 and audit.metadata["invalid"] == 1
    assert db.count("audit_logs") == 1  # one row for the whole import, not one per entry


def test_every_invalid_row_is_reported(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    rows = ["email,status,created_at"]
    rows += [f"bad{i}," for i in range(25)]
    rows += ["ok@example.com,WAITING,", "ok2@example.com,,yesterday", "ok3@example.com,,2026-01-02T03:04:05+02:00"]
    errors = tmp_path / "errors.csv"
    path = write(tmp_path / "bad.csv", "\n".join(rows) + "\n")
    result = linea("waitlist", "import", event["slug"], path, "--errors-file", str(errors), exit_code=1)
    assert "27 of 28 rows are invalid" in result.stderr
    assert "... and 7 more" in result.stderr
    assert len(list(csv.reader(errors.open(encoding="utf-8")))) == 28  # header + 27
    assert "unknown status 'WAITING'" in errors.read_text(encoding="utf-8")
    assert "invalid created_at 'yesterday'" in errors.read_text(encoding="utf-8")
    assert db.count("waitlist_entries") == 0
    linea("waitlist", "import", event["slug"], path, "--skip-invalid")
    assert emails(db, event) == ["ok3@example.com"]
    assert str(db.scalar("SELECT created_at FROM waitlist_entries")) == "2026-01-02 01:04:05"


# --- duplicates -------------------------------------------------------------------------------

def test_mixed_case_duplicates_in_the_file_and_the_database(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="ann@example.com", status="PENDING")
    text = "email,status\nAnn@Example.COM,CONFIRMED\nbo@example.com,CANCELLED\nBO@EXAMPLE.COM,CONFIRMED\ncy@example.com,\n"
    path = write(tmp_path / "dups.csv", text)
    first = summary(linea("waitlist", "import", event["slug"], path, "--json"))
    assert (first["inserted"], first["updated"], first["skipped"]) == (2, 0, 2)
    assert emails(db, event) == ["ann@example.com", "bo@example.com", "cy@example.com"]
    # skip keeps the existing entry; within the file the first row wins
    assert db.scalar("SELECT status::text FROM waitlist_entries WHERE email = 'ann@example.com'") == "PENDING"
    assert db.scalar("SELECT status::text FROM waitlist_entries WHERE email = 'bo@example.com'") == "CANCELLED"

    again = summary(linea("waitlist", "import", event["slug"], path, "--json"))
    assert (again["inserted"], again["updated"], again["skipped"]) == (0, 0, 4)
    assert db.count("audit_logs", "action = 'IMPORT'") == 1  # nothing changed, nothing to audit

    updated = summary(linea("waitlist", "import", event["slug"], path, "--on-duplicate", "update", "--json"))
    assert (updated["inserted"], updated["updated"], updated["skipped"]) == (0, 1, 3)
    assert db.scalar("SELECT status::text FROM waitlist_entries WHERE email = 'ann@example.com'") == "CONFIRMED"
    assert db.scalar("SELECT status::text FROM waitlist_entries WHERE email = 'cy@example.com'") == "PENDING"
    assert db.count("waitlist_entries") == 3


def test_file_order_is_the_sign_up_order(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db, capacity=2)
    names = ["zed", "amy", "mo", "bea", "kit"] * 1
    path = write(tmp_path / "order.csv", "email\n" + "".join(f"{name}@example.com\n" for name in names))
    linea("waitlist", "import", event["slug"], path)
    listed = linea("waitlist", "list", event["slug"], "--json").json["items"]
    assert [item["email"] for item in listed] == [f"{name}@example.com" for name in names]
    promoted = linea("waitlist", "promote", event["slug"], "--json").json["entries"]
    assert [row["email"] for row in promoted] == ["zed@example.com", "amy@example.com"]


def test_removed_entries_stay_removed_and_users_are_linked(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    user = make_user(db, email="dee@example.com")
    make_waitlist_entry(db, event=event, email="gone@example.com", deleted_at=db.scalar("SELECT now()"))
    path = write(tmp_path / "x.csv", "email,status\ngone@example.com,CONFIRMED\nDee@example.com,\n")
    result = summary(linea("waitlist", "import", event["slug"], path, "--on-duplicate", "update", "--json"))
    assert (result["inserted"], result["updated"], result["skipped"]) == (1, 0, 1)
    assert db.scalar("SELECT deleted_at IS NOT NULL FROM waitlist_entries WHERE email = 'gone@example.com'")
    assert db.scalar("SELECT user_id FROM waitlist_entries WHERE email = 'dee@example.com'") == user["id"]


def test_dry_run_counts_but_writes_nothing(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="ann@example.com")
    path = write(tmp_path / "d.csv", "email\nann@example.com\nbo@example.com\n")
    result = summary(linea("waitlist", "import", event["slug"], path, "--dry-run", "--json"))
    assert (result["inserted"], result["skipped"], result["dry_run"]) == (1, 1, True)
    assert emails(db, event) == ["ann@example.com"]
    assert db.count("audit_logs") == 0


def test_import_permissions(linea: CliRun, db: Database, tmp_path: Path) -> None:
    owner = make_user(db, role="OWNER", email="owner@example.com")
    make_user(db, role="OWNER", email="rival@example.com")
    make_user(db, role="VISITOR", email="visitor@example.com")
    event = make_event(db, owner=owner)
    path = write(tmp_path / "p.csv", "email\nann@example.com\n")
    linea("--as", "rival@example.com", "waitlist", "import", event["slug"], path, exit_code=6)
    linea("--as", "visitor@example.com", "waitlist", "import", event["slug"], path, exit_code=6)
    assert db.count("waitlist_entries") == 0
    linea("--as", "owner@example.com", "waitlist", "import", event["slug"], path)
    assert db.count("waitlist_entries") == 1


# --- export -----------------------------------------------------------------------------------

def test_export_neutralizes_formulas_and_imports_back_unchanged(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    target = make_event(db)
    make_user(db, email="ann@example.com", name="=HYPERLINK(\"http://evil\")")
    make_user(db, email="bo@example.com", name="Bo, \"the\" Second\nline two")
    linea("waitlist", "add", event["slug"], "=1+2@example.com")
    linea("waitlist", "add", event["slug"], "ann@example.com", "--status", "CONFIRMED")
    linea("waitlist", "add", event["slug"], "bo@example.com")
    linea("waitlist", "add", event["slug"], "--", "-minus@example.com")
    linea("waitlist", "add", event["slug"], "'=quoted@example.com")
    linea("waitlist", "cancel", event["slug"], "bo@example.com")
    out = tmp_path / "export.csv"
    result = linea("waitlist", "export", event["slug"], "-o", str(out))
    assert "exported 5 entries" in result.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"email,status,created_at,updated_at,name\r\n")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    by_email = {row["email"]: row for row in rows}
    assert set(by_email) == {"'=1+2@example.com", "ann@example.com", "bo@example.com", "'-minus@example.com",
                             "''=quoted@example.com"}
    assert by_email["ann@example.com"]["name"] == "'=HYPERLINK(\"http://evil\")"
    assert by_email["bo@example.com"]["name"] == "Bo, \"the\" Second\nline two"  # harmless: unchanged
    assert by_email["bo@example.com"]["status"] == "CANCELLED"
    assert by_email["ann@example.com"]["created_at"].endswith("+00:00")

    linea("waitlist", "import", target["slug"], str(out))
    columns = "email, status::text, created_at"
    original = db.all(f"SELECT {columns} FROM waitlist_entries WHERE event_id = :e ORDER BY email", e=event["id"])
    copied = db.all(f"SELECT {columns} FROM waitlist_entries WHERE event_id = :e ORDER BY email", e=target["id"])
    assert copied == original
    assert "=1+2@example.com" in emails(db, target)
    # And the copy exports to the same bytes, apart from updated_at
    again = tmp_path / "again.csv"
    linea("waitlist", "export", target["slug"], "-o", str(again))
    strip = lambda text: [row[:3] + row[4:] for row in csv.reader(io.StringIO(text, newline=""))]  # noqa: E731
    assert strip(again.read_text(encoding="utf-8")) == strip(raw.decode("utf-8"))


def test_copy_and_rendered_csv_neutralize_alike(linea: CliRun, db: Database) -> None:
    # Every column: PostgreSQL writes the CSV (csvio.neutralized_sql); --fields: Python does
    # (csvio.neutralize). One rule, so the cells agree, --raw included.
    event = make_event(db)
    names = ["=1", "+1", "-1", "@x", "\tx", "\rx", "\nx", "'=x", "''+x", "'x", "plain", "x=", "o'brien", " =x",
             "-2482586837789799585", "-3.5", "-1+1", "-3.5)", "-1\n", "'-1", "-.5", "-\u0663"]
    for n, name in enumerate(names):
        user = make_user(db, email=f"u{n}@example.com", name=name)
        make_waitlist_entry(db, event=event, email=user["email"], user_id=user["id"])
    make_waitlist_entry(db, event=event, email="=1+2@example.com")
    every = "email,status,created_at,updated_at,name"
    exported = {}
    for extra in ((), ("--raw",)):
        by_copy = linea("waitlist", "export", event["slug"], *extra).stdout_bytes.decode()
        rendered = linea("waitlist", "export", event["slug"], "--fields", every, *extra).stdout_bytes.decode()
        rows = list(csv.reader(io.StringIO(by_copy, newline="")))
        assert rows == list(csv.reader(io.StringIO(rendered, newline=""))), extra
        exported[extra] = {row[0]: row[4] for row in rows[1:]}
    assert len(exported[()]) == len(names) + 1
    assert exported[()]["u0@example.com"] == "'=1" and exported[()]["'=1+2@example.com"] == ""
    assert exported[()]["u7@example.com"] == "''=x" and exported[()]["u9@example.com"] == "'x"
    # A plain negative number is a number to a spreadsheet: left as it is; anything after it is not.
    assert [exported[()][f"u{n}@example.com"] for n in range(14, 22)] == [
        "-2482586837789799585", "-3.5", "'-1+1", "'-3.5)", "'-1\n", "''-1", "'-.5", "'-\u0663"]
    assert exported[("--raw",)]["u0@example.com"] == "=1" and "=1+2@example.com" in exported[("--raw",)]


def test_export_raw_status_filter_and_stdout(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    make_waitlist_entry(db, event=event, email="=1+2@example.com", status="CONFIRMED")
    make_waitlist_entry(db, event=event, email="p@example.com")
    make_waitlist_entry(db, event=event, email="gone@example.com", deleted_at=db.scalar("SELECT now()"))
    out = linea("waitlist", "export", event["slug"], "--raw").stdout_bytes.decode()
    assert "\r\n=1+2@example.com,CONFIRMED," in out
    assert "gone@example.com" not in out
    confirmed = linea("waitlist", "export", event["slug"], "--status", "confirmed", "-o", "-").stdout_bytes.decode()
    assert confirmed.count("\r\n") == 2 and "'=1+2@example.com" in confirmed


def test_export_json_and_ndjson(linea: CliRun, db: Database) -> None:
    event = make_event(db)
    make_user(db, email="ann@example.com", name="Ann")
    linea("waitlist", "add", event["slug"], "ann@example.com")
    make_waitlist_entry(db, event=event, email="=x@example.com")
    rows = linea("waitlist", "export", event["slug"], "--format", "json").json
    assert [set(row) for row in rows] == [{"email", "status", "created_at", "updated_at", "name"}] * 2
    assert {row["email"] for row in rows} == {"ann@example.com", "=x@example.com"}  # JSON is not a spreadsheet
    assert next(row for row in rows if row["email"] == "ann@example.com")["name"] == "Ann"
    lines = linea("waitlist", "export", event["slug"], "--format", "ndjson").stdout.splitlines()
    assert [json.loads(line)["email"] for line in lines] == [row["email"] for row in rows]


def test_owner_cannot_export_another_owners_waitlist(linea: CliRun, db: Database, tmp_path: Path) -> None:
    owner = make_user(db, role="OWNER", email="owner@example.com")
    make_user(db, role="OWNER", email="rival@example.com")
    event = make_event(db, owner=owner)
    make_waitlist_entry(db, event=event, email="secret@example.com")
    out = tmp_path / "stolen.csv"
    result = linea("--as", "rival@example.com", "waitlist", "export", event["slug"], "-o", str(out), exit_code=6)
    assert "another owner" in result.stderr
    assert not out.exists()
    assert list(tmp_path.glob("*.part")) == [] and list(tmp_path.glob(".stolen*")) == []
    linea("--as", "owner@example.com", "waitlist", "export", event["slug"], "-o", str(out))
    assert "secret@example.com" in out.read_text(encoding="utf-8")


def test_failed_export_leaves_no_file(linea: CliRun, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    event = make_event(db)
    for _ in range(50):
        make_waitlist_entry(db, event=event)
    out = tmp_path / "list.csv"
    out.write_text("the previous export\n")
    real = db_copy.copy_out_csv

    def failing(session, query, params, stream, **_options):  # noqa: ANN001, ANN003, ANN202
        stream.write(b"email,status\r\nhalf")
        raise ConnectionError("server closed the connection")

    monkeypatch.setattr(db_copy, "copy_out_csv", failing)
    linea("waitlist", "export", event["slug"], "-o", str(out), exit_code=70)
    assert out.read_text() == "the previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    monkeypatch.setattr(db_copy, "copy_out_csv", real)
    linea("waitlist", "export", event["slug"], "-o", str(tmp_path / "new.csv"))
    assert len((tmp_path / "new.csv").read_text().splitlines()) == 51
    linea("waitlist", "export", "no-such-event", "-o", str(tmp_path / "nothing.csv"), exit_code=3)
    assert not (tmp_path / "nothing.csv").exists()


# --- the fast email path agrees with email-validator --------------------------------------------

def test_fast_email_path_agrees_with_email_validator() -> None:
    from linea_cli.services.emails import canonical_email, email_problem, fast_canonical_email

    rng = random.Random(4)
    alphabet = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-.@ \"\\"
    samples = [
        "a@b.co", "A.B@Example.COM", "x..y@example.com", ".x@example.com", "x.@example.com", "x@-a.com",
        "x@a-.com", "x@a--b.com", "x@xn--80ak6aa92e.com", "x@example.test", "x@example.local", "x@localhost",
        "x@example.c0m", "x@example.c", "x@" + "a" * 64 + ".com", "x" * 65 + "@example.com", "x@123.com",
        "=1+2@example.com", "'=1@example.com", "a@b@example.com", "", "@example.com", "x@example.com.",
        "x@sub.example.onion", "x@example.arpa", "über@example.com", "x@bücher.de", "x@EXAMPLE.INVALID",
    ]
    for _ in range(3000):
        local = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        domain = ".".join("".join(rng.choice(string.ascii_letters + string.digits + "-") for _ in range(rng.randint(1, 8)))
                          for _ in range(rng.randint(1, 3)))
        samples.append(f"{local}@{domain}")
    accepted = 0
    for sample in samples:
        fast = fast_canonical_email(sample)
        if fast is not None:
            accepted += 1
            assert email_problem(sample) is None, sample
            assert canonical_email(sample) == fast, sample
    assert accepted > 300  # the fast path is really used


def test_internationalized_path_agrees_with_email_validator() -> None:
    from email_validator import EmailNotValidError, validate_email

    from linea_cli.services.emails import check_email, international_canonical_email

    rng = random.Random(6)
    # Accented and non-Latin letters, a combining accent (first or not), NFD forms, spaces and
    # invisible characters email-validator refuses (no-break space, zero-width joiner, a line
    # separator), punctuation and symbols it takes, an upper-case Unicode letter, a digit of another script,
    # letters and symbols beyond the Basic Multilingual Plane, a private-use character it refuses.
    local_alphabet = ("abcxyz019.-_+'=" + "éüßøñçÉÜ" + "\u0301" + "Ωжй中文ß" + "\u00a0\u200d\u2028" + "·€→" + "٣"
                      + "𝒜😀" + "\ue000")
    domains = [
        "example.com", "bücher.de", "BÜCHER.de", "xn--bcher-kva.de", "münchen.example", "例子.中国", "ex ample.com",
        "ü.test", "xn--zz.de", "-bad.de", "a..b.de", "e\u0301xample.de", "ß.de", "日本", "[1.2.3.4]", "é" * 250 + ".de",
        "example.com.", "faß.de", "exämple.c0m",
    ]
    samples = ["zoë@example.com", "Zoë.Müller@Bücher.de", "\u0301x@example.com", "e\u0301@example.com", "a\u00a0b@example.com",
               "ann@@bücher.de", '"zoë"@bücher.de', "Zoë <zoë@bücher.de>", "zoë@", "@bücher.de", "zoë@[1.2.3.4]", "é" * 64 + "@bücher.de"]
    for _ in range(4000):
        local = "".join(rng.choice(local_alphabet) for _ in range(rng.randint(1, 14)))
        samples.append(f"{local}@{rng.choice(domains)}")
    accepted = 0
    for sample in samples:
        exact: dict[str, str | None] = {}
        for text in (sample, sample.strip()):
            try:
                exact[text] = validate_email(text, check_deliverability=False).normalized.lower()
            except EmailNotValidError:
                exact[text] = None
        fast = international_canonical_email(sample)
        if fast is not None:
            accepted += 1
            assert fast == exact[sample], sample
        assert check_email(sample)[0] == exact[sample.strip()], sample  # the import's own entry point (it trims) agrees too
    assert accepted > 800  # the fast path is really used
    # ... and its one expression, made of the characters the character-by-character check took.
    from linea_cli.services import emails

    assert emails._learned_taken >= set("éüßøñçÉÜΩжй中文·€→٣𝒜😀") and emails._learned_marks == {"\u0301"}
    assert emails._learned_address("zoë.ü@bücher.de") is not None and emails._learned_address("\u0301zoë@bücher.de") is None


def test_internationalized_addresses_import_in_their_canonical_form(linea: CliRun, db: Database, tmp_path: Path) -> None:
    event = make_event(db)
    text = ("email\nZoë.Müller@BÜCHER.de\nann@xn--bcher-kva.de\nJose\u0301@example.com\n"
            "zoë.müller@bücher.de\n 李@例子.中国 \nbad\u200d@bücher.de\n")
    result = linea("waitlist", "import", event["slug"], write(tmp_path / "intl.csv", text), "--skip-invalid", "--json")
    assert (summary(result)["inserted"], summary(result)["skipped"], summary(result)["invalid"]) == (4, 1, 1)
    # The domain as IDNA decodes it, the local part in NFC (José), all in lower case.
    assert emails(db, event) == ["ann@bücher.de", "josé@example.com", "zoë.müller@bücher.de", "李@例子.中国"]
    assert "line 7: invalid email 'bad\\u200d@bücher.de'" in result.stderr


def test_neutralize_round_trip() -> None:
    for cell in ["=1+2", "+x", "-x", "@x", "\tx", "\rx", "\nx", "'=x", "''+x", "'x", "x=", "", "plain", "o'brien",
                 "-42", "-3.5", "'-42", "''-3.5", "-1+1"]:
        assert csvio.unneutralize(csvio.neutralize(cell)) == cell
    assert csvio.neutralize("-2482586837789799585") == "-2482586837789799585" and csvio.neutralize("-3.5") == "-3.5"
    assert csvio.neutralize("-1+1") == "'-1+1" and csvio.neutralize("+42") == "'+42"
    assert csvio.neutralize("plain") == "plain" and csvio.neutralize("'x") == "'x"
    assert csvio.neutralize("=1+2") == "'=1+2"


# --- interrupted imports ----------------------------------------------------------------------

@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_import_leaves_the_waitlist_as_before(db: Database, database_url, tmp_path: Path, how: str) -> None:  # noqa: ANN001
    import os
    import signal
    import subprocess
    import sys

    from tests.harness import ROOT, plain_url, wait_until

    event = make_event(db)
    make_waitlist_entry(db, event=event, email="before@example.com")
    env = {**os.environ, "LINEA_DATABASE_URL": plain_url(database_url), "LINEA_DATA_DIR": str(tmp_path), "NO_COLOR": "1",
           "PYTHONFAULTHANDLER": "1"}
    env.pop("LINEA_ACTOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "linea_cli", "waitlist", "import", event["slug"], "-"],
        env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    process.stdin.write(b"email\n" + b"".join(b"row%d@example.com\n" % n for n in range(20000)))
    process.stdin.flush()
    # The COPY then waits for the rest of stdin, which never comes: the signal lands mid-COPY.
    wait_until(
        lambda: db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'COPY linea_waitlist_import%'"
        ),
        what="the import started its COPY",
        processes=[process],
    )
    process.send_signal(signal.SIGINT if how == "SIGINT" else signal.SIGKILL)
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # faulthandler prints where it was stuck
        _, stderr = process.communicate()
        pytest.fail(f"the import did not stop after {how}: {stderr.decode(errors='replace')}")
    assert process.returncode == (130 if how == "SIGINT" else -9), stderr
    if how == "SIGINT":
        assert b"rolled back" in stderr
    # A killed client's backend notices the closed socket a moment later.
    wait_until(
        lambda: not db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%'"
        ),
        what="the import's backend ended",
    )
    assert emails(db, event) == ["before@example.com"]
    assert db.count("audit_logs") == 0


def test_progress_bar_only_on_a_terminal_for_large_files(db: Database, database_url, tmp_path: Path) -> None:  # noqa: ANN001
    import os
    import subprocess
    import sys

    from tests.harness import ROOT, plain_url, run_linea_on_terminal

    event = make_event(db)
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email\n")
        n = 0
        while handle.tell() <= 4 * 1024 * 1024:  # "files over 4 MB" (README)
            handle.write(f"someone.with.a.longer.address.{n}@example.com\n")
            n += 1
    env = {**os.environ, "LINEA_DATABASE_URL": plain_url(database_url), "LINEA_DATA_DIR": str(tmp_path)}
    env.pop("LINEA_ACTOR", None)
    env.pop("NO_COLOR", None)
    command = [sys.executable, "-m", "linea_cli", "waitlist", "import", event["slug"], str(path), "--json"]

    run = run_linea_on_terminal(command[3:], env=env, terminal="stderr")
    terminal, stdout = run.terminal, run.other
    assert run.returncode == 0, terminal
    assert json.loads(stdout)["inserted"] == n  # stdout stays pure data
    assert b"reading" in terminal and b"MB" in terminal
    # The time left, as rich estimates it from the bytes so far ("-:--:--" before it can).
    assert re.search(rb"eta (-:--:--|\d+:\d\d:\d\d)", re.sub(rb"\x1b\[[0-9;]*m", b"", terminal)), terminal

    db.execute("DELETE FROM waitlist_entries")
    piped = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=120)
    assert piped.returncode == 0
    assert b"reading" not in piped.stderr  # no bar when stderr is not a terminal
