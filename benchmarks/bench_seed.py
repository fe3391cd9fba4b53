"""`linea db seed` speed: 1,000,000 waitlist entries must seed in under 30 seconds.

Each plan seeds a fresh throwaway server as a real `linea` process. For the 1,000,000-entry plan
the same seed also runs in-process twice more, each on a fresh server, side by side under the same
machine load: once as linea does it (into an empty waitlist, secondary indexes and foreign keys
built after the rows) and once maintaining them row by row, as linea did before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from benchlib import markdown_table, run_linea, throwaway_database

PLANS = [
    ("demo", ["--users", "50", "--venues", "10", "--events", "40", "--waitlist", "500", "--sessions", "50"]),
    ("1M waitlist", ["--users", "10000", "--venues", "200", "--events", "2000", "--waitlist", "1000000",
                     "--sessions", "10000"]),
]


@contextmanager
def bulk_path(enabled: bool) -> Iterator[None]:
    from linea_cli.services import seed

    saved = seed.BULK_WAITLIST_ROWS
    seed.BULK_WAITLIST_ROWS = saved if enabled else 10**12
    try:
        yield
    finally:
        seed.BULK_WAITLIST_ROWS = saved


def seed_in_process(url: str, options: list[str]) -> float:
    import linea_cli
    from linea_cli.services.seed import SeedPlan, seed_database

    counts = {options[i].lstrip("-"): int(options[i + 1]) for i in range(0, len(options), 2)}
    with linea_cli.open_database(url, name="bench") as database:
        started = time.perf_counter()
        with database.unit_of_work() as session:
            seed_database(session, plan=SeedPlan(**counts), actor=None)
        return time.perf_counter() - started


def main() -> None:
    rows = []
    for name, options in PLANS:
        waitlist = int(options[options.index("--waitlist") + 1])
        with throwaway_database() as url:
            timing = run_linea(url, "db", "seed", *options, "--json")
        rows.append([f"{name}: `linea db seed` (process)", " ".join(options), f"{timing.seconds:.1f} s",
                     f"{waitlist / timing.seconds:,.0f}", f"{timing.peak_rss_mb:.0f} MB"])
    options = PLANS[-1][1]
    for label, enabled in (("in-process, indexes and foreign keys after the rows (now)", True),
                           ("in-process, indexes and foreign keys maintained per row (before)", False)):
        with throwaway_database() as url, bulk_path(enabled):
            seconds = seed_in_process(url, options)
        rows.append([f"1M waitlist: {label}", "same", f"{seconds:.1f} s", f"{1_000_000 / seconds:,.0f}", ""])
    print("## Seed\n")
    print(markdown_table(["plan", "options", "wall time", "waitlist rows/s", "peak RSS of linea"], rows))


if __name__ == "__main__":
    main()
