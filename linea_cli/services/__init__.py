"""The rules. Plain functions that take a database session first and keyword-only values.

They flush, never commit (the command's unit of work commits), raise `linea_cli.errors` kinds,
and neither print nor import Typer or Rich.
"""
