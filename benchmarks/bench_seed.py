"""`linea db seed` speed: 1,000,000 waitlist entries must seed in well under a minute."""

from __future__ import annotations

from benchlib import markdown_table, run_linea, throwaway_database


def main() -> None:
    plans = [
        ("demo", ["--users", "50", "--venues", "10", "--events", "40", "--waitlist", "500", "--sessions", "50"]),
        ("1M waitlist", ["--users", "10000", "--venues", "200", "--events", "2000", "--waitlist", "1000000",
                         "--sessions", "10000"]),
    ]
    rows = []
    for name, options in plans:
        with throwaway_database() as url:
            timing = run_linea(url, "db", "seed", *options, "--json")
            waitlist = int(options[options.index("--waitlist") + 1])
            rows.append([name, " ".join(options), f"{timing.seconds:.1f} s", f"{waitlist / timing.seconds:,.0f}",
                         f"{timing.peak_rss_mb:.0f} MB"])
    print("## Seed\n")
    print(markdown_table(["plan", "options", "wall time", "waitlist rows/s", "peak RSS of linea"], rows))


if __name__ == "__main__":
    main()
