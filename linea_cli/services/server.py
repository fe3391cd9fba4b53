"""The embedded PostgreSQL server as `linea db server` reaches it: whether it runs, start, stop.

linea_cli.db.embedded drives the server; it also starts by itself when a command first needs it.
"""

from __future__ import annotations

from pathlib import Path

from linea_cli.db import embedded
from linea_cli.db.embedded import EmbeddedStatus

__all__ = ["EmbeddedStatus", "start", "status", "stop"]


def status(data_dir: Path) -> EmbeddedStatus:
    """Whether the server of `data_dir` is initialized and running, and where its data lives."""
    return embedded.status(data_dir)


def start(data_dir: Path) -> tuple[Path, bool]:
    """Start the server of `data_dir` unless it runs: its data directory, and whether it was started now."""
    _, started = embedded.ensure_running(data_dir)
    return embedded.pgdata_path(data_dir), started


def stop(data_dir: Path) -> bool:
    """Stop the server of `data_dir`; False when it was not running."""
    return embedded.stop(data_dir)
