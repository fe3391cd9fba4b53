"""What the database refused, in words: a missing privilege (exit 6), a violated constraint (exit 4).

The error boundary (`linea_cli.cli`) calls these once for every command: a role that may only
SELECT running `events create`, or a duplicate no service expected, is one line naming the
privilege and the table, or the constraint's meaning, instead of an internal error.

The server's own words come from psycopg's diagnostics (`diag.message_primary`,
`diag.constraint_name`, `diag.table_name`, `diag.column_name`), never from the SQL, which may
quote data.
"""

from __future__ import annotations

import re
from typing import Any

from linea_cli.errors import Conflict, PermissionDenied

# --- privileges -------------------------------------------------------------------------------

_DENIED = re.compile(r"permission denied for (?P<kind>[a-z ]+?) (?P<name>\S+)$")
_MUST_OWN = re.compile(r"must be owner of (?P<kind>[a-z ]+?) (?P<name>\S+)$")
_TABLE_KINDS = frozenset({"table", "view", "materialized view", "relation", "foreign table"})
_WRITES = (("INSERT", r"INSERT\s+INTO"), ("UPDATE", r"UPDATE"), ("DELETE", r"DELETE\s+FROM"), ("TRUNCATE", r"TRUNCATE(?:\s+TABLE)?"))

ROLES_HINT = "grant it to the role, or connect as a role that has it (`linea db roles --sql` prints least-privilege roles)"


def privilege_refusal(error: Any, statement: str | None, role: str | None) -> PermissionDenied:
    """`error` (SQLSTATE 42501) as one line: which privilege on which object the role lacks.

    The privilege is derived from the statement only for what reads or writes rows (SELECT,
    INSERT, UPDATE, DELETE, TRUNCATE, COPY, and SELECT ... FOR UPDATE). A schema change or a GRANT
    refused on a table is said in words (`may not create a trigger on table audit_logs`); any other
    statement, or one linea cannot see, in the server's own words with the role named.
    """
    primary = _primary(error)
    who = f"role {role!r}" if role else "the database role"
    owned = _MUST_OWN.search(primary)
    refused = owned or _DENIED.search(primary)
    if refused is None:  # the server's (or a trigger's) own words: "audit_logs is append-only: DELETE is not allowed"
        hint = getattr(getattr(error, "diag", None), "message_hint", None)
        return PermissionDenied(f"{who} may not do this: {primary}; its transaction was rolled back", hint=hint)
    kind, name = refused["kind"], refused["name"]
    command = _single_statement(statement or "")
    action = _action(command, kind, name, owned=owned is not None) if command is not None else None
    if command is not None and not owned and _DML.match(command):
        message = f"{who} lacks the {_privilege(kind, name, command)} privilege on {kind} {name} ({primary})"
    elif action is not None:
        words, needs = action
        message = f"{who} may not {words} {kind} {name}: {needs} ({primary})"
    elif owned:
        message = f"{who} may not change {kind} {name}: {_OWNER} ({primary})"
    else:
        message = f"{who} may not do this: {primary}"
    return PermissionDenied(f"{message}; its transaction was rolled back", hint=ROLES_HINT)


# What reads or writes rows: the only statements whose refused privilege can be told from the SQL.
_DML = re.compile(r"(?:WITH|SELECT|INSERT|UPDATE|DELETE|MERGE|TRUNCATE|COPY|TABLE|VALUES)\b", re.IGNORECASE)
_OWNER = "must be its owner"
# Other statements, by how they begin: what the role tried, in words, and what that needs.
_ACTIONS: tuple[tuple[str, str, str], ...] = (
    (r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\b", "create a trigger on", "needs the TRIGGER privilege, or to be its owner"),
    (r"CREATE\s+(?:UNIQUE\s+)?INDEX\b", "create an index on", _OWNER),
    (r"CREATE\s+POLICY\b", "create a policy on", _OWNER),
    (r"CREATE\s+(?:OR\s+REPLACE\s+)?RULE\b", "create a rule on", _OWNER),
    (r"ALTER\s+POLICY\b", "alter a policy on", _OWNER),
    (r"DROP\s+TRIGGER\b", "drop a trigger on", _OWNER),
    (r"DROP\s+POLICY\b", "drop a policy on", _OWNER),
    (r"DROP\s+RULE\b", "drop a rule on", _OWNER),
    (r"ALTER\b", "alter", _OWNER),
    (r"DROP\b", "drop", _OWNER),
    (r"GRANT\b", "grant privileges on", "must be its owner, or hold the privileges WITH GRANT OPTION"),
    (r"REVOKE\b", "revoke privileges on", "must be its owner, or hold the privileges WITH GRANT OPTION"),
    (r"COMMENT\s+ON\b", "comment on", _OWNER),
    (r"REFRESH\s+MATERIALIZED\s+VIEW\b", "refresh", _OWNER),
    (r"(?:VACUUM|ANALYZE|CLUSTER|REINDEX)\b", "maintain", _OWNER),
    (r"LOCK\b", "lock", "needs a privilege on it that this lock mode requires"),
)


def _single_statement(statement: str) -> str | None:
    """`statement` without leading comments and blanks, or None when it holds several statements
    (a migration's script, a DO block): which of them was refused is then unknown."""
    text = statement.strip()
    while text.startswith("--") or text.startswith("/*"):
        end = text.find("\n") if text.startswith("--") else text.find("*/")
        text = "" if end < 0 else text[end + (1 if text.startswith("--") else 2):].strip()
    text = text.rstrip(";").strip()
    if not text or ";" in text or re.match(r"DO\b", text, re.IGNORECASE):
        return None
    return text


def _action(command: str, kind: str, name: str, *, owned: bool) -> tuple[str, str] | None:
    """What `command` tried to do to `name`, when `name` is what it acts on; else None (a table it
    only refers to, `REFERENCES users`, or a function or schema it uses). "must be owner of" is
    only ever said of what a statement acts on."""
    for pattern, words, _needs in _ACTIONS if owned else ():
        if re.match(pattern, command, re.IGNORECASE):
            return words, _OWNER
    if owned or kind not in _TABLE_KINDS:
        return None
    granted = re.match(r"(?:GRANT|REVOKE)\b.*?\bON\b(?P<objects>.*?)\b(?:TO|FROM)\b", command, re.IGNORECASE | re.DOTALL)
    if granted:  # the objects between ON and TO (the privileges before them name no table)
        acted_on = granted["objects"]
    else:  # what comes before the tables a statement only refers to or reads
        acted_on = re.split(r"\b(?:REFERENCES|EXECUTE|SELECT|USING|WHERE|AS)\b", command, maxsplit=1, flags=re.IGNORECASE)[0]
    every = re.match(r"\s*ALL\s+(?:TABLES|SEQUENCES)\s+IN\s+SCHEMA\b", acted_on, re.IGNORECASE)
    if not every and not re.search(rf'(?<![\w"])"?{re.escape(name)}"?(?![\w"])', acted_on):
        return None
    for pattern, words, needs in _ACTIONS:
        if re.match(pattern, command, re.IGNORECASE):
            return words, needs
    return None


def _privilege(kind: str, name: str, statement: str) -> str:
    """The privilege a refused statement needed on `name`, from what the statement does to it."""
    if kind in _TABLE_KINDS:
        table = rf'(?:ONLY\s+)?(?:"?\w+"?\.)?"?{re.escape(name)}"?(?![\w"])'
        for verb, pattern in _WRITES:
            if re.search(rf"\b{pattern}\s+{table}", statement, re.IGNORECASE):
                return verb
        if re.search(r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE)|\bFOR\s+KEY\s+SHARE", statement, re.IGNORECASE):
            return "UPDATE"  # locking rows (SELECT ... FOR UPDATE) needs a write privilege
        copy = re.search(rf"\bCOPY\s+{table}.*?\b(FROM|TO)\b", statement, re.IGNORECASE | re.DOTALL)
        if copy:
            return "INSERT" if copy[1].upper() == "FROM" else "SELECT"
        return "SELECT"
    if kind == "sequence":
        return "USAGE"
    if kind == "function" or kind == "procedure":
        return "EXECUTE"
    if kind == "schema":
        return "CREATE" if re.match(r"\s*CREATE\b", statement, re.IGNORECASE) else "USAGE"
    if kind == "database":
        if re.search(r"\bCREATE\s+(?:TEMP|TEMPORARY)\b", statement, re.IGNORECASE):
            return "TEMPORARY"
        return "CREATE" if re.match(r"\s*CREATE\b", statement, re.IGNORECASE) else "CONNECT"
    return "needed"


# --- constraints ------------------------------------------------------------------------------

# The data model's constraints (Prisma's names), in words. A foreign key has two: the row that
# refers to nothing, and the row still referred to.
UNIQUE_MEANINGS: dict[str, str] = {
    "users_pkey": "a user with this id already exists",
    "users_email_key": "a user with this email already exists",
    "events_pkey": "an event with this id already exists",
    "events_slug_key": "an event with this slug already exists",
    "venues_pkey": "a venue with this id already exists",
    "waitlist_entries_pkey": "a waitlist entry with this id already exists",
    "waitlist_entries_email_event_id_key": "this address is already on this event's waitlist",
    "sessions_pkey": "a session with this id already exists",
    "sessions_token_key": "a session with this token already exists",
    "audit_logs_pkey": "an audit entry with this id already exists",
}
# constraint: (the referring row's problem, the referred row's problem)
FOREIGN_KEY_MEANINGS: dict[str, tuple[str, str]] = {
    "events_owner_id_fkey": ("the event's owner is not a user", "the user still owns events"),
    "events_venue_id_fkey": ("the event's venue does not exist", "the venue still has events"),
    "waitlist_entries_event_id_fkey": ("the waitlist entry's event does not exist", "the event still has waitlist entries"),
    "waitlist_entries_user_id_fkey": ("the waitlist entry's user does not exist", "the user still has waitlist entries"),
    "sessions_user_id_fkey": ("the session's user does not exist", "the user still has login sessions"),
    "audit_logs_user_id_fkey": ("the audit entry's user does not exist", "the user still has audit entries"),
}
_UNIQUE, _FOREIGN_KEY, _RESTRICT, _CHECK, _EXCLUSION, _NOT_NULL = "23505", "23503", "23001", "23514", "23P01", "23502"


def constraint_refusal(error: Any) -> Conflict:
    """An integrity violation (SQLSTATE class 23) no service expected, by constraint, in words."""
    diag = getattr(error, "diag", None)
    state = getattr(error, "sqlstate", None) or ""
    constraint = getattr(diag, "constraint_name", None)
    table = getattr(diag, "table_name", None)
    column = getattr(diag, "column_name", None)
    primary = _primary(error)
    hint = None
    if state == _NOT_NULL:
        # Generic on purpose: a column linea knows it always fills; one the platform added
        # without a default is named before the insert (db status / doctor) where linea can.
        message = f"{_where(table, column)} needs a value (NOT NULL) and was given none"
        hint = "`linea db doctor` names columns linea cannot fill"
    elif state in (_FOREIGN_KEY, _RESTRICT) and constraint in FOREIGN_KEY_MEANINGS:
        refers, referred = FOREIGN_KEY_MEANINGS[constraint]
        message = referred if primary.startswith("update or delete") else refers
    elif state == _UNIQUE and constraint in UNIQUE_MEANINGS:
        message = UNIQUE_MEANINGS[constraint]
    else:
        kind = {_UNIQUE: "unique", _FOREIGN_KEY: "foreign key", _RESTRICT: "foreign key", _CHECK: "check", _EXCLUSION: "exclusion"}
        name = f"{kind.get(state, 'integrity')} constraint {constraint}" if constraint else "an integrity constraint"
        message = f"conflicts with {name}" + (f" on {table}" if table else "") + f" ({primary})"
    return Conflict(f"{message}; nothing was changed", hint=hint)


def _where(table: str | None, column: str | None) -> str:
    if table and column:
        return f"{table}.{column}"
    return column or table or "a column"


def _primary(error: Any) -> str:
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(error).strip().splitlines()[0:1]
    return primary if isinstance(primary, str) else (primary[0] if primary else type(error).__name__)
