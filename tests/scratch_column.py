"""linea with one more field, declared the way a new column is: `python -m tests.scratch_column ARGS`.

A test-only declaration proving that one `Field` is all the code a new nullable `events` column
needs: the column is added to the model here (a real one is a line in db/models.py, with its
migration and the reference DDL) and to `linea_cli.fields.EVENTS` before any command or service
is imported; the database must have it (`ALTER TABLE events ADD COLUMN scratch_note text`).
It runs in a process of its own, so no other test sees the changed model.
"""

from __future__ import annotations

import sqlalchemy as sa
from pydantic.fields import FieldInfo

from linea_cli import fields
from linea_cli.db.models import Event

FIELD = fields.Field(
    "scratch_note", editable=True, clearable=True, personal=True, list_at=110, wide=True, metavar="TEXT",
    help="A note.",
)


def declare() -> None:
    column = sa.Column("scratch_note", sa.Text, nullable=True)
    Event.__table__.append_column(column)
    Event.__mapper__.add_property("scratch_note", column)
    Event.model_fields["scratch_note"] = FieldInfo(annotation=str | None, default=None)  # what `scratch_note: str | None = None` makes
    fields.EVENTS = (*fields.EVENTS, FIELD)


if __name__ == "__main__":
    declare()
    from linea_cli.cli import main

    main()
