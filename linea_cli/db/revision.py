"""The newest migration's id, known without loading Alembic.

Every command checks the database against it; reading the scripts through Alembic for that
cost a third of a second per command. tests/test_schema.py fails when a new migration is added
and this is not updated.
"""

HEAD_REVISION = "b3e9d4c2a610"

# Where linea's version table is read, in this order: its own schema, or (before the move) public.
# Read through SQLAlchemy by db/catalog.py and through psycopg by db/direct.py.
VERSION_TABLES = ("linea.alembic_version", "public.alembic_version")
