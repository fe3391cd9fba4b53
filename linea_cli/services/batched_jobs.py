"""The one runner of batched jobs: many short transactions, one audit row, Ctrl-C safe.

A job that changes many rows (the session purge, the waitlist retention, what comes next) does
it in batches, each in a transaction of its own, so that no batch holds row locks for long while
the platform keeps writing. What every such job needs, and gets here once:

- each batch runs in its own unit of work, and what it changed is counted as part of its commit
  (`on_commit`: no signal lands between the COMMIT and the count);
- the job's audit row commits with its last batch; a run that changed nothing writes none;
- interrupted (Ctrl-C, SIGTERM, an error) after some batches committed, the run still records
  what they changed, marked `interrupted`, before the error surfaces: committed batches never go
  unaudited.

A job says how to run one batch and how to write its audit row (`BatchedJob`); `run_batches`
does the rest. The job's own rules (who may run it, which rows) stay in its service.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from linea_cli.db.engine import on_commit
from linea_cli.services.actors import Actor, UnitOfWork


@dataclass
class Tally:
    """What a run's committed batches changed, and whether its audit row committed with them."""

    rows: int = 0
    batches: int = 0  # the batches that changed at least one row
    recorded: bool = False

    def with_batch(self, changed: int) -> Tally:
        """The tally once a batch that changed `changed` rows commits (for the audit row it commits with)."""
        return Tally(self.rows + changed, self.batches + (1 if changed else 0))

    def committed(self, changed: int, *, recorded: bool) -> None:
        self.rows += changed
        self.batches += 1 if changed else 0
        self.recorded = recorded and self.rows > 0


class BatchedJob:
    """One job of batches: `batch` and `record` say what it does; `pace` and `retry` are optional."""

    def batch(self, session: Session, actor: Actor | None) -> tuple[int, bool]:
        """Run one batch in the open transaction: (rows changed, whether it was the last)."""
        raise NotImplementedError

    def record(self, session: Session, actor: Actor | None, tally: Tally, *, interrupted: bool) -> None:
        """Write the run's audit row for `tally` (called only when rows changed)."""
        raise NotImplementedError

    def pace(self, seconds: float) -> None:
        """Told how long a committed batch took, before the next one runs (to size it)."""

    def retry(self, error: Exception) -> bool:
        """Whether a batch that failed with `error` (and rolled back) is to run again."""
        return False


def run_batches(
    unit_of_work: UnitOfWork, job: BatchedJob, *, on_batch: Callable[[int], None] = lambda rows: None
) -> Tally:
    """Run `job`'s batches, one unit of work each, until one says it was the last.

    `on_batch(rows so far)` is called after each committed batch but the last (for progress).
    """
    tally = Tally()
    try:
        while True:
            started = time.perf_counter()
            try:
                with unit_of_work() as (session, actor):
                    changed, last = job.batch(session, actor)
                    if last and tally.rows + changed:
                        job.record(session, actor, tally.with_batch(changed), interrupted=False)
                    # Counted in the commit's uninterruptible step, so that an interruption from
                    # here on records exactly what committed.
                    on_commit(session, functools.partial(tally.committed, changed, recorded=last))
            except Exception as error:
                if job.retry(error):
                    continue
                raise
            if last:  # its audit row committed with it
                return tally
            job.pace(time.perf_counter() - started)
            on_batch(tally.rows)
    except BaseException:
        if tally.rows and not tally.recorded:
            # The committed batches must not go unaudited; the original error is what the user sees.
            with contextlib.suppress(Exception), unit_of_work() as (session, actor):
                job.record(session, actor, tally, interrupted=True)
        raise
