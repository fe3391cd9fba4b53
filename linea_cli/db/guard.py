"""The audit log's append-only guard, and who may reach the platform's tables: what linea
promises about them, how to read whether a database keeps that promise, and the DDL that restores it.

Revision d7ddba488c9c creates two functions in linea's schema and the triggers on `audit_logs`
that call them (the migration explains the rule). A restored archive, or anyone with DDL rights,
can drop, disable or replace them, and grant the platform's tables to PUBLIC: `db doctor` reports
it (FAIL), and `db upgrade` (even at head) and every `db restore` put back what differs, from the
definitions here, never from an archive's copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

from linea_cli.db.catalog import LINEA_SCHEMA, OBJECTS_TABLE, PLATFORM_TABLES, VERSION_TABLE

REVISION = "d7ddba488c9c"  # the revision that made the guard; a database before it has none yet
FUNCTION_BODIES = {
    "audit_logs_append_only": """
    BEGIN
        IF TG_OP = 'UPDATE' AND current_setting('linea.audit_scrub', true) = 'on' THEN
            IF NEW.id IS DISTINCT FROM OLD.id
               OR NEW.action IS DISTINCT FROM OLD.action
               OR NEW.resource IS DISTINCT FROM OLD.resource
               OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
                RAISE EXCEPTION 'the audit scrub may only clear personal data in audit_logs'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'only the GDPR erasure (linea users anonymize) may scrub personal data';
    END
    """,
    "audit_logs_no_truncate": """
    BEGIN
        RAISE EXCEPTION 'audit_logs is append-only: TRUNCATE is not allowed'
            USING ERRCODE = 'insufficient_privilege';
    END
    """,
}
# trigger name -> (its timing and events, its level, pg_trigger.tgtype: ROW 1, BEFORE 2, DELETE 8,
# UPDATE 16, TRUNCATE 32)
TRIGGERS = {
    "audit_logs_append_only": ("BEFORE UPDATE OR DELETE", "FOR EACH ROW", 1 | 2 | 8 | 16),
    "audit_logs_no_truncate": ("BEFORE TRUNCATE", "FOR EACH STATEMENT", 2 | 32),
}
# Tables no role but their owner (and roles granted to explicitly) may touch: PUBLIC never.
PRIVATE_TABLES = (*(f"public.{table}" for table in PLATFORM_TABLES), OBJECTS_TABLE, f"{LINEA_SCHEMA}.{VERSION_TABLE}")


def create_function(name: str, *, replace: bool = False) -> str:
    return (
        f"\n    CREATE {'OR REPLACE ' if replace else ''}FUNCTION linea.{name}() RETURNS trigger LANGUAGE plpgsql "
        f"AS $${FUNCTION_BODIES[name]}$$"
    )


def create_trigger(name: str, *, replace: bool = False) -> str:
    events, level, _ = TRIGGERS[name]
    return (
        f'\n    CREATE {"OR REPLACE " if replace else ""}TRIGGER "{name}" {events} ON public."audit_logs"\n'
        f"        {level} EXECUTE FUNCTION linea.{name}()"
    )


@dataclass
class GuardState:
    """What differs from linea's promise: {name: why} for functions and triggers, {table: privileges} for PUBLIC."""

    functions: dict[str, str] = field(default_factory=dict)
    triggers: dict[str, str] = field(default_factory=dict)
    public: dict[str, list[str]] = field(default_factory=dict)

    @property
    def guard_problems(self) -> list[str]:
        return [f"function linea.{name} {why}" for name, why in self.functions.items()] + [
            f"trigger {name} on audit_logs {why}" for name, why in self.triggers.items()
        ]


def read_state(connection: Connection, *, guarded: bool) -> GuardState:
    """How the database differs from linea's promise; `guarded`: its revision includes the guard
    (an older one, or a platform database not adopted yet, is only checked for PUBLIC grants)."""
    state = GuardState()
    state.public = public_privileges(connection)
    if not guarded or not connection.execute(text("SELECT to_regclass('public.audit_logs') IS NOT NULL")).scalar():
        return state
    functions = {
        name: (source, definer, config)
        for name, source, definer, config in connection.execute(
            text(
                "SELECT p.proname, p.prosrc, p.prosecdef, p.proconfig IS NOT NULL FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'linea' AND p.proname = ANY(:names) AND p.pronargs = 0"
            ),
            {"names": list(FUNCTION_BODIES)},
        )
    }
    for name, body in FUNCTION_BODIES.items():
        found = functions.get(name)
        if found is None:
            state.functions[name] = "is missing"
        elif found[0] != body or found[1] or found[2]:
            state.functions[name] = "differs from linea's"
    triggers = {
        name: (tgtype, enabled, function, qualified)
        for name, tgtype, enabled, function, qualified in connection.execute(
            text(
                "SELECT t.tgname, t.tgtype, t.tgenabled, f.nspname || '.' || p.proname, "
                "t.tgqual IS NOT NULL OR t.tgnargs > 0 OR t.tgattr::text <> '' "
                "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace f ON f.oid = p.pronamespace "
                "WHERE t.tgrelid = 'public.audit_logs'::regclass AND NOT t.tgisinternal AND t.tgname = ANY(:names)"
            ),
            {"names": list(TRIGGERS)},
        )
    }
    for name, (_, _, tgtype) in TRIGGERS.items():
        found = triggers.get(name)
        if found is None:
            state.triggers[name] = "is missing"
        elif found[1] == "D":
            state.triggers[name] = "is disabled"
        elif found[0] != tgtype or found[2] != f"linea.{name}" or found[3] or found[1] == "R":
            state.triggers[name] = "differs from linea's"
    return state


def public_privileges(connection: Connection) -> dict[str, list[str]]:
    """{table: privileges} PUBLIC holds on linea's private tables, on the table or any column."""
    rows = connection.execute(
        text(
            "SELECT c.oid::regclass::text, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a "
            "WHERE c.oid = ANY(CAST(:tables AS regclass[])) AND a.grantee = 0 "
            "UNION SELECT c.oid::regclass::text, a.privilege_type || ' (' || att.attname || ')' "
            "FROM pg_class c JOIN pg_attribute att ON att.attrelid = c.oid, aclexplode(att.attacl) a "
            "WHERE c.oid = ANY(CAST(:tables AS regclass[])) AND a.grantee = 0 ORDER BY 1, 2"
        ),
        {"tables": [table for table in PRIVATE_TABLES if _exists(connection, table)]},
    )
    found: dict[str, list[str]] = {}
    for table, privilege in rows:
        found.setdefault(table, []).append(privilege)
    return found


def _exists(connection: Connection, table: str) -> bool:
    return bool(connection.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar())


def repairs(state: GuardState) -> list[str]:
    """The statements that give the database back what `state` says differs (none when nothing does)."""
    statements = [f"CREATE SCHEMA IF NOT EXISTS {LINEA_SCHEMA}"] if state.functions else []  # an older layout has none
    statements += [create_function(name, replace=True) for name in state.functions]
    statements += [create_trigger(name, replace=True) for name in state.triggers]
    statements += [f"REVOKE ALL ON TABLE {table} FROM PUBLIC" for table in state.public]
    return statements


# How a repair tells what it found, once repaired.
_WAS = {"is missing": "was missing", "is disabled": "was disabled", "differs from linea's": "differed from linea's"}


def described(state: GuardState) -> tuple[list[str], list[str]]:
    """What `repairs(state)` repairs, in words, one item each: (the append-only guard's functions
    and triggers, as they were: "trigger audit_logs_append_only on audit_logs was missing"; PUBLIC's
    privileges revoked)."""
    recreated = [f"function linea.{name} {_WAS[why]}" for name, why in state.functions.items()] + [
        f"trigger {name} on audit_logs {_WAS[why]}" for name, why in state.triggers.items()
    ]
    revoked = [f"PUBLIC's {', '.join(privileges)} on {table} revoked" for table, privileges in state.public.items()]
    return recreated, revoked


def only_missing(state: GuardState) -> bool:
    """Whether the guard was simply absent (as after every restore, which never takes it from an
    archive), rather than changed."""
    return all(why == "is missing" for why in (*state.functions.values(), *state.triggers.values()))
