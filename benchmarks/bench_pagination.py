"""`linea events list` keyset pagination: a page deep in the list must cost what page 1 costs.

Seeds a throwaway embedded server with `linea db seed --events 520000` (about 505,000 of them not
deleted), then times one page of 50 at the start of the list and page 10,000 (rows 499,951 to
500,000, reached with the cursor the previous page would print), three ways:
`linea events list` as a real process (wall time, mostly Python start-up), the service call
in-process (the query itself), and, for contrast, the same page fetched with OFFSET.
"""

from __future__ import annotations

import statistics
import time

from benchlib import markdown_table, run_linea, throwaway_database

EVENTS = 520_000
DEEP_PAGE = 10_000
LIMIT = 50
REPEATS = 15


def median_ms(action, repeats: int = REPEATS) -> float:  # noqa: ANN001 - any zero-argument callable
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    import sqlalchemy as sa
    from sqlmodel import Session

    import linea_cli
    from linea_cli.db.models import Event
    from linea_cli.services.events import EventFilter, list_events
    from linea_cli.services.pagination import encode_cursor

    with throwaway_database() as url:
        seeding = run_linea(url, "db", "seed", "--users", "5000", "--venues", "200", "--events", str(EVENTS),
                            "--waitlist", "0", "--sessions", "0")
        database = linea_cli.open_database(url, name="bench")
        events = Event.__table__
        visible = events.c.deleted_at.is_(None)
        with Session(database.engine) as session:
            session.execute(sa.text("ANALYZE"))
            total = session.execute(sa.select(sa.func.count()).where(visible)).scalar_one()
            # The cursor page DEEP_PAGE - 1 would print: the sort key of its last row (built outside the timing).
            deep_offset = (DEEP_PAGE - 1) * LIMIT
            last = session.execute(
                sa.select(events.c.start_date, events.c.id).where(visible)
                .order_by(events.c.start_date, events.c.id).offset(deep_offset - 1).limit(1)
            ).one()
            deep_cursor = encode_cursor("events", [last.start_date, last.id])

            def service_page(after: str | None) -> float:
                return median_ms(lambda: list_events(session, filters=EventFilter(), limit=LIMIT, after=after))

            def offset_page(offset: int) -> float:
                query = (sa.select(events.c.id, events.c.slug).where(visible)
                         .order_by(events.c.start_date, events.c.id).offset(offset).limit(LIMIT))
                return median_ms(lambda: session.execute(query).all())

            first_page = list_events(session, filters=EventFilter(), limit=LIMIT, after=None)
            deep_page = list_events(session, filters=EventFilter(), limit=LIMIT, after=deep_cursor)
            assert len(first_page.items) == LIMIT and len(deep_page.items) == LIMIT
            offset_ids = [row.id for row in session.execute(
                sa.select(events.c.id).where(visible).order_by(events.c.start_date, events.c.id)
                .offset(deep_offset).limit(LIMIT))]
            assert [item["id"] for item in deep_page.items] == offset_ids, "the cursor page is not page DEEP_PAGE"
            rows = []
            for name, cursor, offset in (("page 1", None, 0), (f"page {DEEP_PAGE:,}", deep_cursor, deep_offset)):
                cli = statistics.median(
                    run_linea(url, "events", "list", "--limit", str(LIMIT), "--json",
                              *(["--after", cursor] if cursor else [])).seconds * 1000
                    for _ in range(3)
                )
                rows.append([name, f"{cli:.0f} ms", f"{service_page(cursor):.1f} ms", f"{offset_page(offset):.1f} ms"])
            plan = explain_deep_page(database.engine, session, deep_cursor)
        database.close()
    print("## Event pagination\n")
    print(f"{total:,} visible events (seeded in {seeding.seconds:.1f} s), pages of {LIMIT}, median of "
          f"{REPEATS} in-process runs and 3 process runs.\n")
    print(markdown_table(["page", "`linea events list` (process)", "keyset query (in-process)", "OFFSET query, same page"],
                         rows))
    print("\nPlan of the deep page (EXPLAIN ANALYZE):\n\n```\n" + plan + "\n```")


def explain_deep_page(engine, session, cursor: str) -> str:  # noqa: ANN001
    """EXPLAIN ANALYZE of exactly the statement `list_events` sends for the deep page."""
    import sqlalchemy as sa

    from linea_cli.services.events import EventFilter, list_events

    captured: list[tuple[str, object]] = []

    def capture(conn, cursor_, statement, parameters, context, executemany) -> None:  # noqa: ANN001 - SQLAlchemy's event signature
        captured.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    list_events(session, filters=EventFilter(), limit=LIMIT, after=cursor)
    sa.event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = captured[-1]
    rows = session.connection().exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters).all()
    return "\n".join(row[0] for row in rows)


if __name__ == "__main__":
    main()
