"""`linea waitlist ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Manage event waitlists: add, promote, import and export.", no_args_is_help=True)
