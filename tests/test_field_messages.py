"""Services name fields, commands name options: a message about a field names the option typed."""

from __future__ import annotations

from tests.factories import make_event, make_user, make_venue
from tests.harness import CliRun, Database


def test_event_messages_name_the_options(linea: CliRun, db: Database) -> None:
    make_event(db, slug="fest")
    assert linea("events", "update", "fest", "--lat", "91", exit_code=1).stderr == (
        "error: --lat: latitude 91.0 is outside [-90, 90]\n"
    )
    assert linea("events", "update", "fest", "--capacity", "-5", exit_code=1).stderr == (
        "error: --capacity must be between 0 and 2147483647, not -5\n"
    )
    assert linea("events", "update", "fest", "--clear", "title", exit_code=1).stderr == (
        "error: --clear 'title': choose from capacity, description, end, lat, lng, venue, youtube-url, zoom\n"
    )
    # It said "map_zoom is both given and cleared": a column name the user never typed.
    assert linea("events", "update", "fest", "--zoom", "3", "--clear", "zoom", exit_code=1).stderr == (
        "error: --zoom is both given and cleared\n"
    )
    assert linea("events", "list", "--owner", "nobody@example.com", exit_code=3).stderr == (
        "error: no user 'nobody@example.com' (--owner)\n"
    )
    assert linea("events", "list", "--upcoming", "--past", exit_code=1).stderr == (
        "error: --upcoming and --past exclude each other: pass one\n"
    )
    assert linea("events", "create", "--title", "X", "--start", "2031-01-01", exit_code=1).stderr == (
        "error: --owner is required when linea acts as the system (no --as / LINEA_ACTOR)\n"
    )
    assert db.count("audit_logs") == 0


def test_venue_and_user_messages_name_the_options(linea: CliRun, db: Database) -> None:
    venue = make_venue(db)
    make_user(db, email="ann@example.com")
    assert linea("venues", "update", venue["id"], "--lng", "200", exit_code=1).stderr == (
        "error: --lng: longitude 200.0 is outside [-180, 180]\n"
    )
    # It said "latitude is both given and cleared".
    assert linea("venues", "update", venue["id"], "--lat", "1", "--clear", "lat", exit_code=1).stderr == (
        "error: --lat is both given and cleared\n"
    )
    assert linea("users", "update", "ann@example.com", exit_code=1).stderr == (
        "error: nothing to update: pass --name and/or --email\n"
    )
    assert db.count("audit_logs") == 0
