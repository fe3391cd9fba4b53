"""The platform's live traffic, for measuring linea's heavy jobs beside it.

`PlatformLoad(url, event_id=..., user_id=...)` runs N writer threads (default 3), each its own
connection, each doing about `rate` transactions a second (default 45) of what the platform does:

- someone joins the event's waitlist (most transactions): insert a `waitlist_entries` row for the
  event and `UPDATE events SET updated_at = now()` of that event, in one transaction;
- the person `user_id` logs in or acts (one in five): insert a session and an audit row for them;
- a page shows counts (one in ten): count the event's live entries.

Every transaction's latency (from BEGIN to the end of COMMIT) and every failure (deadlock,
serialization, lock timeout, anything) is recorded. The load is bounded: it stops after
`max_seconds` (default 600) or `max_transactions` in all, or when `stop()` is called, whichever
comes first; it only connects to loopback addresses or a Unix socket.

    with PlatformLoad(url, event_id=e, user_id=u) as load:
        ...                      # the job measured beside it
    print(load.report())         # transactions, failures, p50/p99/max latency
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = {"", "localhost", "127.0.0.1", "::1", "[::1]"}


@dataclass
class LoadReport:
    transactions: int
    failures: int
    p50: float
    p99: float
    worst: float
    seconds: float
    errors: list[str] = field(default_factory=list)

    def row(self) -> str:
        return (f"{self.transactions:,} tx, {self.failures} failed, p99 {self.p99 * 1000:.0f} ms, "
                f"max {self.worst * 1000:.0f} ms")


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if "host=" in (parts.query or ""):
        host = parts.query.split("host=", 1)[1].split("&", 1)[0]
        return host.startswith("/") or host.startswith("%2F") or host in LOOPBACK
    return host in LOOPBACK


class PlatformLoad:
    def __init__(
        self,
        url: str,
        *,
        event_id: str,
        user_id: str,
        writers: int = 3,
        rate: float = 45.0,
        max_seconds: float = 600.0,
        max_transactions: int = 200_000,
    ) -> None:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        if not _is_loopback(plain):
            raise ValueError("the platform load only runs against a loopback server")
        self.url, self.event_id, self.user_id = plain, event_id, user_id
        self.writers, self.rate = writers, rate
        self.max_seconds, self.max_transactions = max_seconds, max_transactions
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.latencies: list[tuple[float, float]] = []  # (started, seconds) of each committed transaction
        self.failures: list[tuple[float, str]] = []
        self._inflight: dict[int, float] = {}
        self._started = self._ended = 0.0
        self._marks: list[tuple[float, int, int]] = []

    # --- running ---------------------------------------------------------------------------

    def start(self) -> PlatformLoad:
        import psycopg

        connections = [psycopg.connect(self.url, autocommit=False) for _ in range(self.writers)]
        self._started = time.perf_counter()
        for n, connection in enumerate(connections):
            thread = threading.Thread(target=self._writer, args=(n, connection), daemon=True, name=f"platform-{n}")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._ended = time.perf_counter()

    def __enter__(self) -> PlatformLoad:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def count(self) -> int:
        with self._lock:
            return len(self.latencies) + len(self.failures)

    def settle(self, before: float, timeout: float = 60.0) -> None:
        """Wait until every transaction begun before `before` has ended (committed or failed)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self._lock:
                if not any(started < before for started in self._inflight.values()):
                    return
            time.sleep(0.01)

    def _writer(self, n: int, connection: Any) -> None:
        import psycopg

        pick = random.Random()  # seeded from the OS: ids never repeat between runs
        interval = 1.0 / self.rate
        deadline = self._started + self.max_seconds
        next_at = time.perf_counter()
        sequence = 0
        try:
            while not self._stop.is_set():
                now = time.perf_counter()
                if now >= deadline or self.count() >= self.max_transactions:
                    break
                if now < next_at:
                    self._stop.wait(next_at - now)
                    continue
                next_at += interval
                if next_at < now - 1.0:  # fell far behind (a long wait): do not burst to catch up
                    next_at = now
                sequence += 1
                kind = pick.random()
                started = time.perf_counter()
                with self._lock:
                    self._inflight[n] = started
                try:
                    with connection.transaction():
                        if kind < 0.1:
                            connection.execute(
                                "SELECT count(*) FROM waitlist_entries WHERE event_id = %s AND deleted_at IS NULL",
                                (self.event_id,),
                            ).fetchone()
                        elif kind < 0.3:
                            tag = f"{n}-{sequence}-{pick.getrandbits(40):x}"
                            connection.execute(
                                "INSERT INTO sessions (id, user_id, token, expires_at, created_at, updated_at) "
                                "VALUES (%s, %s, %s, now() + interval '30 days', now(), now())",
                                (f"cpls{tag}", self.user_id, f"token-{tag}"),
                            )
                            connection.execute(
                                "INSERT INTO audit_logs (id, action, resource, resource_id, user_id, ip_address, user_agent, created_at) "
                                "VALUES (%s, 'LOGIN', 'User', %s, %s, '127.0.0.1', 'platform-load', now())",
                                (f"cpla{tag}", self.user_id, self.user_id),
                            )
                        else:
                            tag = f"{n}-{sequence}-{pick.getrandbits(40):x}"
                            connection.execute(
                                "INSERT INTO waitlist_entries (id, email, event_id, status, created_at, updated_at) "
                                "VALUES (%s, %s, %s, 'PENDING', now(), now())",
                                (f"cplw{tag}", f"live.{tag}@platform.example", self.event_id),
                            )
                            connection.execute("UPDATE events SET updated_at = now() WHERE id = %s", (self.event_id,))
                except psycopg.Error as exc:
                    with self._lock:
                        self._inflight.pop(n, None)
                        self.failures.append((started, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))
                    continue
                elapsed = time.perf_counter() - started
                with self._lock:
                    self._inflight.pop(n, None)
                    self.latencies.append((started, elapsed))
        finally:
            connection.close()

    # --- what it saw -----------------------------------------------------------------------

    def report(self, start: float = 0.0, end: float | None = None) -> LoadReport:
        """Transactions that overlapped [start, end] (perf_counter times; all of them by default)."""
        end = float("inf") if end is None else end
        with self._lock:
            latencies = sorted(s for t, s in self.latencies if t <= end and t + s >= start)
            failures = [text for t, text in self.failures if start <= t <= end]
        seconds = (self._ended or time.perf_counter()) - self._started

        def quantile(q: float) -> float:
            if not latencies:
                return 0.0
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

        return LoadReport(
            transactions=len(latencies), failures=len(failures), p50=quantile(0.5), p99=quantile(0.99),
            worst=latencies[-1] if latencies else 0.0, seconds=seconds, errors=failures[:5],
        )


class Window:
    """What the load saw while one job ran: `with Window(load) as w: ...`, then `w.report`
    (every transaction that overlapped the job, including those that waited for it)."""

    def __init__(self, load: PlatformLoad) -> None:
        self.load = load
        self.report: LoadReport | None = None

    def __enter__(self) -> Window:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        end = time.perf_counter()
        self.load.settle(end)
        self.report = self.load.report(self._start, end)
