"""`services.statement_text.mask_statement`: the one masking of the passwords a statement's text
carries, for every form a literal after PASSWORD can take (the commands' tests run it on a server)."""

from __future__ import annotations

import time

import pytest

from linea_cli.services.statement_text import mask_statement


@pytest.mark.parametrize(
    ("statement", "masked"),
    [
        ("ALTER ROLE r PASSWORD 'plainSecret1'", "ALTER ROLE r PASSWORD '***'"),
        ("ALTER ROLE r PASSWORD 'it''sSecret'", "ALTER ROLE r PASSWORD '***'"),
        ("alter role r password E'esc\\'Secret''4'", "alter role r password '***'"),
        ("CREATE ROLE r LOGIN PASSWORD $$dollarSecret2$$", "CREATE ROLE r LOGIN PASSWORD '***'"),
        ("ALTER ROLE r PASSWORD $q$tagSecret5$q$ VALID UNTIL 'infinity'", "ALTER ROLE r PASSWORD '***' VALID UNTIL 'infinity'"),
        ("ALTER ROLE r PASSWORD'nospaceSecret3'", "ALTER ROLE r PASSWORD'***'"),
        ("ALTER ROLE r PASSWORD /*c*/ 'commentSecret6'", "ALTER ROLE r PASSWORD /*c*/ '***'"),
        ("ALTER ROLE r PASSWORD /* a /* nested */ 'x' */'nestedSecret'", "ALTER ROLE r PASSWORD /* a /* nested */ 'x' */'***'"),
        ("ALTER ROLE r PASSWORD -- then\n 'lineSecret'", "ALTER ROLE r PASSWORD -- then\n '***'"),
        ("CREATE ROLE r LOGIN PASSWORD U&'unicodeSecret7'", "CREATE ROLE r LOGIN PASSWORD '***'"),
        ("CREATE ROLE r LOGIN ENCRYPTED PASSWORD u&'d\\0061t' UESCAPE '\\'", "CREATE ROLE r LOGIN ENCRYPTED PASSWORD '***' UESCAPE '\\'"),
        ("ALTER ROLE r PASSWORD 'half'\n  'Secret8'", "ALTER ROLE r PASSWORD '***'"),
        ("ALTER ROLE r PASSWORD 'cutShortSecr", "ALTER ROLE r PASSWORD '***'"),
        ("ALTER ROLE r PASSWORD $x$cutShortSecr", "ALTER ROLE r PASSWORD '***'"),
        ("DO $$BEGIN EXECUTE 'ALTER ROLE r PASSWORD ''doubledSecret'''; END$$", "DO $$BEGIN EXECUTE 'ALTER ROLE r PASSWORD ''***'''; END$$"),
        ("ALTER ROLE r PASSWORD ''; SELECT 'x'", "ALTER ROLE r PASSWORD '***'; SELECT 'x'"),
        ("CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password 'mapSecret')",
         "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password '***')"),
        ("CREATE SUBSCRIPTION s CONNECTION 'host=h password=connSecret dbname=d' PUBLICATION p",
         "CREATE SUBSCRIPTION s CONNECTION 'host=h password=*** dbname=d' PUBLICATION p"),
        ("SELECT dblink('postgresql://u:urlSecret@h/d', 'SELECT 1')", "SELECT dblink('postgresql://u:***@h/d', 'SELECT 1')"),
        # No literal after the word: nothing to mask.
        ("ALTER ROLE r PASSWORD NULL", "ALTER ROLE r PASSWORD NULL"),
        ("SELECT password, 'x' FROM accounts", "SELECT password, 'x' FROM accounts"),
        ('SELECT "password" \'x\'', 'SELECT "password" \'x\''),
        ("SELECT $1", "SELECT $1"),
    ],
)
def test_every_form_of_a_password_literal_is_masked(statement: str, masked: str) -> None:
    assert mask_statement(statement) == masked


def test_no_text_stays_none_and_a_long_hostile_text_takes_linear_time() -> None:
    assert mask_statement(None) is None and mask_statement("") == ""
    for hostile in (
        "password /*" * 20_000, "password '" * 20_000, "password $a$" * 20_000, "password = " * 20_000,
        "password '" + "'\n  '" * 40_000, "password " + "/*" * 40_000, "password -- \n" * 20_000,
    ):
        began = time.monotonic()
        mask_statement(hostile)
        assert time.monotonic() - began < 2
