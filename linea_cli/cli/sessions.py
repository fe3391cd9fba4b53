"""`linea sessions ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="List, revoke and purge login sessions.", no_args_is_help=True)
