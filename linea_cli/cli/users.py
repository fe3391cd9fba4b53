"""`linea users ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Manage users, and answer data-protection requests.", no_args_is_help=True)
