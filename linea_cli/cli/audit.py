"""`linea audit ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Read and export the audit log.", no_args_is_help=True)
