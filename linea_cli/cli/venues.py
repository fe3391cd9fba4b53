"""`linea venues ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="List and manage venues.", no_args_is_help=True)
