"""The newest migration's id, known without loading Alembic.

Every command checks the database against it; reading the scripts through Alembic for that
cost a third of a second per command. tests/test_schema.py fails when a new migration is added
and this is not updated.
"""

HEAD_REVISION = "b3e9d4c2a610"
