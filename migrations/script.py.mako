"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from collections.abc import Sequence

from alembic import op

from linea_cli.db import ddl
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ddl.begin()  # this migration's lock_timeout; plan DDL with ddl.plan_index/ddl.apply (see linea_cli/db/ddl.py)
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ddl.begin()
    ${downgrades if downgrades else "pass"}
