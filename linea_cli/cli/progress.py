"""Progress on a terminal's stderr, in one place: a bar for bytes, a line per batch.

Only on a terminal: a pipe, a file or cron gets nothing, and stdout (the data) is never touched.
Rich is imported only when a bar is shown.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class ByteProgress:
    """A bar counting bytes: `advance(done)` as they go, `phase(name)` for an open-ended step after."""

    def __init__(self, progress: Any, task: Any) -> None:  # rich's Progress and task id, imported lazily
        self.progress, self.task = progress, task

    def advance(self, done: int) -> None:
        self.progress.update(self.task, completed=done)

    def phase(self, name: str) -> None:
        self.progress.update(self.task, description=name, total=None)


@contextmanager
def byte_progress(what: str, *, total: int | None = None, show: bool = True) -> Iterator[ByteProgress | None]:
    """A transient bar named `what` on a terminal's stderr, of `total` bytes and the time left when
    known (else a spinner and the bytes so far); None when it is not shown (`show` false, or no terminal)."""
    if not show or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        FileSizeColumn,
        Progress,
        SpinnerColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from linea_cli.output import error_console

    # With a total, the time left as the bytes so far predict it ("eta -:--:--" until they do, and
    # in an open-ended phase after them).
    columns = (
        ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
         "eta", TimeRemainingColumn())
        if total is not None
        else (SpinnerColumn(), "[progress.description]{task.description}", FileSizeColumn(), TransferSpeedColumn())
    )
    with Progress(*columns, TimeElapsedColumn(), console=error_console(), transient=True) as progress:
        yield ByteProgress(progress, progress.add_task(what, total=total))


def batch_progress(verb: str, *, quiet: bool) -> Callable[[int], None]:
    """For a job of many batches: "<verb> N so far..." after each one on a terminal, else nothing."""
    if quiet or not sys.stderr.isatty():
        return lambda done: None
    from linea_cli.output import say

    return lambda done: say(f"{verb} {done} so far...")
