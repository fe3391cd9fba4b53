"""`linea db roles`: create or update the least-privilege roles (linea_cli.db.roles) and audit it."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

from linea_cli.db.engine import Database
from linea_cli.db.roles import RoleNames, RolePlan, plan_roles
from linea_cli.errors import Conflict, parameter
from linea_cli.services import audit_log
from linea_cli.services.actors import Actor

__all__ = ["RoleNames", "RolePlan", "apply_roles", "roles_sql"]


def roles_sql(database: Database, names: RoleNames) -> str:
    """The SQL `apply_roles` would run on `database` now, for review; nothing runs."""
    with database.connect() as connection:
        return plan_roles(connection, names).sql()


def apply_roles(session: Session, *, names: RoleNames, actor: Actor | None) -> RolePlan:
    """Run the plan in the session's transaction, with one GRANT row in the audit log (when the
    database has one): the roles and grants and their record commit together, or neither."""
    connection = session.connection()
    plan = plan_roles(connection, names)
    if plan.mismatches:
        # Someone made (or changed) a role of these names: granting to it would hand linea's grants
        # to a role that can do more (LOGIN SUPERUSER, pg_write_all_data...). Not altered: not ours.
        raise Conflict(
            f"{len(plan.mismatches)} of the roles exist and are not what linea makes; nothing was changed",
            details=tuple(mismatch.line() for mismatch in plan.mismatches),
            hint=f"drop them (DROP OWNED BY ...; DROP ROLE ...), or choose another {parameter('prefix')}",
        )
    for statement in plan.statements:
        connection.exec_driver_sql(statement)
    if session.execute(text("SELECT to_regclass('public.audit_logs') IS NOT NULL")).scalar():
        audit_log.record(
            session, action=audit_log.AuditAction.GRANT, resource="Database", resource_id=plan.database, actor=actor,
            details={"roles": [row["role"] for row in plan.summary()], "tables": plan.tables},
        )
    return plan
