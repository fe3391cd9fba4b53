"""Deterministic fake data for demos and CI, written with set-based SQL (no row-by-row ORM).

Every value is a function of (seed, anchor, row number) through md5, so the same seed and anchor
give the same rows on any server. The anchor (default: today, UTC) places events around "now"
so that demo data always has upcoming and past events; rows are created, updated and deleted
at or before it (only events' dates and sessions' expiry lie after it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlmodel import Session

from linea_cli.errors import Conflict, InvalidInput, parameter
from linea_cli.services import audit_log
from linea_cli.services.actors import Actor, require_admin
from linea_cli.services.audit_log import AuditAction

SEEDED_TABLES = ("users", "venues", "events", "waitlist_entries", "sessions")
# Row numbers are INTEGERs in the SQL below, and a seed is demo or benchmark data: beyond this a
# count is a typo (hours of inserts), refused before anything runs.
MAX_SEED_ROWS = 100_000_000
# Seeded timestamps lie within these spans around the anchor (users signed up 400 days before it,
# events until 250 days after it); every one must stay a date Python can read back (years 1-9999).
SPAN_BEFORE_ANCHOR = timedelta(days=401)
SPAN_AFTER_ANCHOR = timedelta(days=251)


@dataclass(frozen=True)
class SeedPlan:
    users: int = 50
    venues: int = 10
    events: int = 40
    waitlist: int = 500
    sessions: int = 50
    seed: int = 42
    anchor: datetime | None = None


@dataclass(frozen=True)
class SeedResult:
    users: int
    venues: int
    events: int
    waitlist_entries: int
    sessions: int
    skipped: bool = False


def _rand(kind: str, n: str = "n") -> str:
    """A deterministic integer in [0, 2^31) for row `n` of `kind`."""
    return f"(('x' || substr(md5(:seed || ':{kind}:' || {n}), 1, 8))::bit(32)::int & 2147483647)"


def _cuid(kind: str, n: str = "n") -> str:
    """A cuid-shaped id: like real cuids it grows with creation order, so primary keys append."""
    return f"('c' || substr(md5(:seed || ':id:{kind}'), 1, 8) || lpad(to_hex({n}), 16, '0'))"


FIRST_NAMES = "ARRAY['Ada','Ben','Chloé','Dmitri','Elif','Femi','Grace','Hiro','Ines','Jonas','Kemi','Lucía','Mateo','Nora','Omar','Priya','Quinn','Rosa','Sven','Tariq','Uma','Viktor','Wen','Yara','Zoe']"
LAST_NAMES = "ARRAY['Okafor','Schmidt','Dubois','Ivanova','Yılmaz','Adeyemi','Hopper','Tanaka','García','Berg','Rossi','Nakamura','Silva','Kowalski','Haddad','Patel','Murphy','Novak','Larsen','Khan']"
_CITIES = [
    ("Berlin", "DE", 52.52, 13.40), ("Lisbon", "PT", 38.72, -9.14), ("Lagos", "NG", 6.52, 3.38),
    ("Kyoto", "JP", 35.01, 135.77), ("Montréal", "CA", 45.50, -73.57), ("Oslo", "NO", 59.91, 10.75),
    ("Mexico City", "MX", 19.43, -99.13), ("Melbourne", "AU", -37.81, 144.96),
]
CITY_NAMES = "ARRAY[" + ",".join(f"'{c[0]}'" for c in _CITIES) + "]"
CITY_COUNTRIES = "ARRAY[" + ",".join(f"'{c[1]}'" for c in _CITIES) + "]"
CITY_LATS = "ARRAY[" + ",".join(str(c[2]) for c in _CITIES) + "]::float8[]"
CITY_LNGS = "ARRAY[" + ",".join(str(c[3]) for c in _CITIES) + "]::float8[]"
VENUE_KINDS = "ARRAY['Hall','Warehouse','Library','Garden','Theatre','Loft','Pavilion','Studio']"
EVENT_ADJECTIVES = "ARRAY['Summer','Winter','Open','Late-Night','Community','Indie','Annual','Spring']"
EVENT_NOUNS = "ARRAY['Fest','Meetup','Hackathon','Concert','Workshop','Book Fair','Film Night','Conference','Market']"


def _check_plan(plan: SeedPlan) -> None:
    """A plan that cannot be seeded as asked is refused before anything is read or written."""
    for name in ("users", "venues", "events", "waitlist", "sessions"):
        if not 0 <= getattr(plan, name) <= MAX_SEED_ROWS:
            raise InvalidInput(f"{parameter(name)} must be between 0 and {MAX_SEED_ROWS:,}, not {getattr(plan, name):,}")
    _check_anchor(plan.anchor)
    if plan.events and not plan.users:
        raise InvalidInput(f"events need owners: {parameter('users')} must be at least 1 when {parameter('events')} is given")
    if plan.waitlist and not plan.events:
        raise InvalidInput(f"waitlist entries need events: {parameter('events')} must be at least 1 when {parameter('waitlist')} is given")
    if plan.sessions and not plan.users:
        raise InvalidInput(f"sessions need users: {parameter('users')} must be at least 1 when {parameter('sessions')} is given")


def seed_database(
    session: Session,
    *,
    plan: SeedPlan,
    actor: Actor | None,
    append: bool = False,
    if_empty: bool = False,
    on_step: Callable[[str], None] = lambda step: None,
) -> SeedResult:
    require_admin(actor, "seed the database")
    if append and if_empty:  # one adds to data, the other seeds only where there is none
        raise InvalidInput(f"{parameter('append')} and {parameter('if_empty')} exclude each other")
    _check_plan(plan)
    existing = {
        table: session.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{table}")')).scalar_one()
        for table in SEEDED_TABLES
    }
    if any(existing.values()) and not append:
        if if_empty:
            return SeedResult(0, 0, 0, 0, 0, skipped=True)
        populated = ", ".join(table for table, has_rows in existing.items() if has_rows)
        raise Conflict(f"the database already has data ({populated})", hint=f"pass {parameter('append', value=True)} to add seed rows to it")

    anchor = plan.anchor or datetime.utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    offsets = _numbering_offsets(session)
    planned = {"users": plan.users, "venues": plan.venues, "events": plan.events,
               "waitlist_entries": plan.waitlist, "sessions": plan.sessions}
    for table, count in planned.items():
        if offsets[table] + count > MAX_SEED_ROWS:
            option = parameter("waitlist" if table == "waitlist_entries" else table)
            raise InvalidInput(
                f"{option} {count:,}: earlier seeds numbered {offsets[table]:,} {table}, "
                f"and seeded row numbers stop at {MAX_SEED_ROWS:,}"
            )
    # The events this run numbers (see WAITLIST_SQL: its entries go into these only).
    params = {"seed": str(plan.seed), "anchor": anchor,
              "events_first": offsets["events"] + 1, "events_last": offsets["events"] + plan.events}

    def run(step: str, sql: str, start: int, count: int) -> int:
        on_step(step)
        if count == 0:
            return 0
        result = session.execute(text(sql), {**params, "first": start + 1, "last": start + count})
        return result.rowcount

    users = run("users", USERS_SQL, offsets["users"], plan.users)
    venues = run("venues", VENUES_SQL, offsets["venues"], plan.venues)
    events = run("events", EVENTS_SQL, offsets["events"], plan.events)
    with _waitlist_checks_after_rows(session, empty=not existing["waitlist_entries"], rows=plan.waitlist, on_step=on_step):
        waitlist = run("waitlist entries", WAITLIST_SQL, offsets["waitlist_entries"], plan.waitlist)
        run("waitlist places", WAITLIST_CAPACITY_SQL, offsets["waitlist_entries"], plan.waitlist)
    sessions = run("sessions", SESSIONS_SQL, offsets["sessions"], plan.sessions)
    session.flush()
    result = SeedResult(users, venues, events, waitlist, sessions)
    audit_log.record(
        session,
        action=AuditAction.SEED,
        resource="Database",
        resource_id="seed",
        actor=actor,
        details={
            "seed": plan.seed,
            "anchor": anchor,
            "counts": {
                "users": users,
                "venues": venues,
                "events": events,
                "waitlist_entries": waitlist,
                "sessions": sessions,
            },
            # Where the next --append continues numbering (ids, emails and slugs hold the number).
            "numbered_up_to": {table: offsets[table] + planned[table] for table in SEEDED_TABLES},
        },
    )
    return result


# From this many rows into an empty waitlist_entries on, building its secondary indexes and
# checking its foreign keys once, after the rows, beats maintaining them row by row.
BULK_WAITLIST_ROWS = 10_000

# What waitlist_entries has, by its own names and definitions (linea's, the platform's, anyone's):
# the indexes that are neither unique (the insert's ON CONFLICT needs the (email, event_id) one;
# the primary key appends cheaply) nor behind a constraint, and the foreign keys.
_SECONDARY_INDEXES_SQL = """
SELECT x.indexrelid::regclass::text AS name, pg_get_indexdef(x.indexrelid) AS definition
FROM pg_index x
WHERE x.indrelid = 'waitlist_entries'::regclass AND NOT x.indisunique AND x.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
ORDER BY 1
"""
_FOREIGN_KEYS_SQL = """
SELECT quote_ident(conname) AS name, pg_get_constraintdef(oid) AS definition
FROM pg_constraint WHERE conrelid = 'waitlist_entries'::regclass AND contype = 'f'
ORDER BY 1
"""


@contextmanager
def _waitlist_checks_after_rows(
    session: Session, *, empty: bool, rows: int, on_step: Callable[[str], None]
) -> Iterator[None]:
    """Into an empty waitlist_entries, a large seed inserts without the secondary indexes and
    foreign keys, then restores exactly those it found (same names, same definitions): one sorted
    build per index and one join per foreign key instead of a B-tree insert and two lookups per
    row (41 s against 24 s for 1,000,000 rows, benchmarks/README.md). All in the seed's
    transaction: the table is locked meanwhile, and an error or interruption rolls the drops back
    with the rows, so nothing is ever left without its indexes."""
    if not empty or rows < BULK_WAITLIST_ROWS:
        yield
        return
    indexes = session.execute(text(_SECONDARY_INDEXES_SQL)).all()
    foreign_keys = session.execute(text(_FOREIGN_KEYS_SQL)).all()
    for name, _ in foreign_keys:
        session.execute(text(f"ALTER TABLE waitlist_entries DROP CONSTRAINT {name}"))
    for name, _ in indexes:
        session.execute(text(f"DROP INDEX {name}"))
    yield
    on_step("waitlist indexes")
    for _, definition in indexes:
        session.execute(text(definition))
    for name, definition in foreign_keys:
        session.execute(text(f"ALTER TABLE waitlist_entries ADD CONSTRAINT {name} {definition}"))


def _check_anchor(anchor: datetime | None) -> None:
    if anchor is None:
        return
    earliest, latest = datetime.min + SPAN_BEFORE_ANCHOR, datetime.max - SPAN_AFTER_ANCHOR
    if not earliest <= anchor <= latest:
        raise InvalidInput(
            f"{parameter('anchor')} {anchor.date().isoformat()}: seeded dates reach {SPAN_BEFORE_ANCHOR.days} days before and "
            f"{SPAN_AFTER_ANCHOR.days} days after it; choose a date from {earliest.date()} to {latest.date()}"
        )


def _numbering_offsets(session: Session) -> dict[str, int]:
    """The highest row number any earlier seed used per table, so appended rows never collide.

    Read from the SEED audit rows (append-only), not from count(*): a purge or a hand-deleted
    row would make a count reuse numbers that ids and emails still hold.
    """
    offsets = {}
    for table in SEEDED_TABLES:
        recorded = session.execute(
            text(
                "SELECT max((metadata -> 'numbered_up_to' ->> :table)::bigint) FROM audit_logs "
                "WHERE action = 'SEED' AND resource = 'Database'"
            ),
            {"table": table},
        ).scalar_one()
        counted = session.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
        offsets[table] = max(int(recorded or 0), int(counted))
    return offsets


USERS_SQL = f"""
INSERT INTO users (id, email, name, role, created_at, updated_at, deleted_at)
SELECT {_cuid('user')},
       translate(lower(f.first || '.' || f.last), 'éíóúüçñı', 'eiouucni') || n || '@example.org',
       f.first || ' ' || f.last,
       (CASE WHEN n = 1 THEN 'ADMIN' WHEN {_rand('role')} % 100 < 3 THEN 'ADMIN'
             WHEN {_rand('role')} % 100 < 25 THEN 'OWNER' ELSE 'VISITOR' END)::"UserRole",
       :anchor - make_interval(mins => 60 * 24 * 400 - {_rand('ucreated')} % (60 * 24 * 390)),
       :anchor - make_interval(mins => {_rand('uupdated')} % (60 * 24 * 10)),
       CASE WHEN n > 1 AND {_rand('udeleted')} % 100 < 3 THEN :anchor - interval '2 days' END
FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS n
CROSS JOIN LATERAL (
    SELECT ({FIRST_NAMES})[1 + {_rand('first')} % 25] AS first,
           ({LAST_NAMES})[1 + {_rand('last')} % 20] AS last
) AS f
"""

VENUES_SQL = f"""
INSERT INTO venues (id, name, address, city, country, latitude, longitude, website,
                    created_at, updated_at, deleted_at)
SELECT {_cuid('venue')},
       c.city || ' ' || ({VENUE_KINDS})[1 + {_rand('vkind')} % 8] || ' ' || n,
       (1 + {_rand('street')} % 200) || ' Market Street',
       c.city, c.country,
       round((c.lat + ({_rand('vlat')} % 1000 - 500) / 10000.0)::numeric, 5)::float8,
       round((c.lng + ({_rand('vlng')} % 1000 - 500) / 10000.0)::numeric, 5)::float8,
       CASE WHEN {_rand('web')} % 3 > 0 THEN 'https://venue-' || n || '.example.com' END,
       :anchor - interval '300 days', :anchor - interval '30 days',
       CASE WHEN {_rand('vdeleted')} % 100 < 5 THEN :anchor - interval '5 days' END
FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS n
CROSS JOIN LATERAL (
    SELECT ({CITY_NAMES})[i] AS city, ({CITY_COUNTRIES})[i] AS country,
           ({CITY_LATS})[i] AS lat, ({CITY_LNGS})[i] AS lng
    FROM (SELECT 1 + {_rand('city')} % {len(_CITIES)} AS i) AS pick
) AS c
"""

EVENTS_SQL = f"""
WITH owners AS (
    SELECT array_agg(id ORDER BY id) AS ids FROM users
    WHERE role IN ('OWNER', 'ADMIN') AND deleted_at IS NULL
), places AS (
    SELECT array_agg(id ORDER BY id) AS ids, array_agg(latitude ORDER BY id) AS lats,
           array_agg(longitude ORDER BY id) AS lngs
    FROM venues WHERE deleted_at IS NULL
), rows AS (
    SELECT n,
           ({EVENT_ADJECTIVES})[1 + {_rand('adj')} % 8] || ' ' || ({EVENT_NOUNS})[1 + {_rand('noun')} % 9]
             || ' ' || n AS title,
           :anchor + make_interval(days => {_rand('start')} % 400 - 150, hours => 9 + {_rand('hour')} % 12)
             AS start_date,
           {_rand('venue')} AS venue_pick,
           {_rand('owner')} AS owner_pick
    FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS n
)
INSERT INTO events (id, title, slug, description, status, start_date, end_date, capacity, youtube_url,
                    map_lat, map_lng, map_zoom, owner_id, venue_id, created_at, updated_at, deleted_at)
SELECT {_cuid('event')},
       r.title,
       trim(both '-' from lower(regexp_replace(r.title, '[^A-Za-z0-9]+', '-', 'g'))),
       'A ' || lower(r.title) || ' for everyone. Seeded demo data.',
       (CASE
          WHEN r.start_date < :anchor THEN (CASE WHEN {_rand('pstatus')} % 10 = 0 THEN 'CANCELLED' ELSE 'COMPLETED' END)
          ELSE (ARRAY['PUBLISHED','PUBLISHED','PUBLISHED','DRAFT','CANCELLED'])[1 + {_rand('fstatus')} % 5]
        END)::"EventStatus",
       r.start_date,
       CASE WHEN {_rand('hasend')} % 5 > 0 THEN r.start_date + make_interval(hours => 2 + {_rand('len')} % 6) END,
       CASE WHEN {_rand('hascap')} % 5 > 0 THEN 20 + {_rand('cap')} % 480 END,
       CASE WHEN {_rand('yt')} % 3 = 0 THEN 'https://www.youtube.com/watch?v=' || substr(md5(:seed || r.n), 1, 11) END,
       CASE WHEN v.venue_id IS NOT NULL THEN p.lats[v.idx] END,
       CASE WHEN v.venue_id IS NOT NULL THEN p.lngs[v.idx] END,
       CASE WHEN v.venue_id IS NOT NULL THEN 14 END,
       o.ids[1 + r.owner_pick % array_length(o.ids, 1)],
       v.venue_id,
       -- Made 60 days before it starts, edited 30 days before; an event further ahead than that
       -- was made and edited before the anchor all the same: bookkeeping is never in the future.
       LEAST(r.start_date - interval '60 days',
             :anchor - make_interval(mins => 60 * 24 * 30 + {_rand('ecreated')} % (60 * 24 * 60))),
       LEAST(r.start_date - interval '30 days', :anchor - make_interval(mins => {_rand('eupdated')} % (60 * 24 * 30))),
       CASE WHEN {_rand('edeleted')} % 100 < 3 THEN :anchor - interval '1 day' END
FROM rows r CROSS JOIN owners o CROSS JOIN places p
CROSS JOIN LATERAL (
    SELECT CASE WHEN p.ids IS NULL OR r.venue_pick % 5 = 0 THEN NULL
                ELSE 1 + r.venue_pick % array_length(p.ids, 1) END AS idx
) AS vi
CROSS JOIN LATERAL (SELECT p.ids[vi.idx] AS venue_id, vi.idx AS idx) AS v
"""

def _part(hash_column: str, index: int) -> str:
    """The index-th 31-bit integer (0-3) of an md5 hex digest computed once per row."""
    return f"(('x' || substr({hash_column}, {8 * index + 1}, 8))::bit(32)::int & 2147483647)"


# Events and people are picked by joining on a row number, not by subscripting an array_agg:
# subscripting a large array of text walks it element by element, once per generated row.
#
# The entries go into the events this same run seeds (numbered events_first..events_last; a first
# seed's events are all the events), never into one that was there before (issue 18). Each
# entry's foreign key check locks its event row (FOR KEY SHARE) until the seed commits; on an
# existing event, which the platform updates at every sign-up, each of those updates then makes a
# multixact the long transaction keeps alive, and the checks and the platform's statements walk
# an ever longer chain of row versions: a 1,000,000-entry `--append` beside three sign-up writers
# took 239 s against 50 s alone (benchmarks/README.md). The seed's own events are invisible to the
# platform until the seed commits: nobody else updates them, and their locks cost nothing.
WAITLIST_SQL = f"""
WITH ev AS (
    SELECT id, row_number() OVER (ORDER BY id) AS rn FROM events
    WHERE deleted_at IS NULL
      AND id COLLATE "C" BETWEEN {_cuid('event', 'CAST(:events_first AS int)')}
                             AND {_cuid('event', 'CAST(:events_last AS int)')}
), pp AS (
    SELECT id, email, row_number() OVER (ORDER BY id) AS rn FROM users WHERE deleted_at IS NULL
), totals AS (
    SELECT (SELECT count(*) FROM ev) AS events, (SELECT count(*) FROM pp) AS people
), picks AS (
    SELECT n, h, l.linked,
           CASE WHEN l.linked THEN 1 + l.k % t.people END AS person_rn,
           CASE WHEN l.linked THEN 1 + (l.k / t.people + l.k) % t.events
                ELSE 1 + {_part('h', 0)} % t.events END AS event_rn
    FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS n
    CROSS JOIN totals t
    CROSS JOIN LATERAL (SELECT md5(:seed || ':wait:' || n) AS h) AS hashed
    CROSS JOIN LATERAL (SELECT t.people > 0 AND n % 5 = 0 AS linked, n / 5 AS k) AS l
    WHERE t.events > 0
)
INSERT INTO waitlist_entries (id, email, event_id, user_id, status, created_at, updated_at, deleted_at)
SELECT {_cuid('wait', 'x.n')},
       coalesce(pp.email, 'guest' || x.n || '@example.net'),
       ev.id,
       pp.id,
       (CASE WHEN {_part('x.h', 1)} % 10 < 7 THEN 'PENDING' WHEN {_part('x.h', 1)} % 10 < 9 THEN 'CONFIRMED'
             ELSE 'CANCELLED' END)::"WaitlistStatus",
       :anchor - make_interval(mins => {_part('x.h', 2)} % (60 * 24 * 90)),
       :anchor - make_interval(mins => LEAST({_part('x.h', 2)} % (60 * 24 * 90), {_part('x.h', 3)} % (60 * 24 * 5))),
       CASE WHEN {_part('x.h', 2)} % 100 < 2 THEN :anchor - interval '1 day' END
FROM picks x
JOIN ev ON ev.rn = x.event_rn
LEFT JOIN pp ON pp.rn = x.person_rn
ON CONFLICT (email, event_id) DO NOTHING
"""

# Seeded data keeps the rules the commands enforce: no event has more CONFIRMED entries (not
# removed) than its capacity. The rows just inserted (ids numbered first..last) take the places
# left after any entries already there (none today: they go into this run's events only); those
# past the capacity become PENDING, like people `promote` could not place. Only confirmed rows are
# ranked and only the excess is updated, so the insert above keeps appending in id order at full
# speed.
WAITLIST_CAPACITY_SQL = f"""
WITH seeded AS (
    SELECT {_cuid('wait', 'CAST(:first AS int)')} COLLATE "C" AS first_id,
           {_cuid('wait', 'CAST(:last AS int)')} COLLATE "C" AS last_id
), placed AS (
    SELECT w.id, e.capacity, w.id COLLATE "C" BETWEEN s.first_id AND s.last_id AS is_new,
           row_number() OVER (
               PARTITION BY w.event_id ORDER BY w.id COLLATE "C" BETWEEN s.first_id AND s.last_id, w.id
           ) AS place
    FROM waitlist_entries w
    JOIN events e ON e.id = w.event_id AND e.capacity IS NOT NULL
    CROSS JOIN seeded s
    WHERE w.status = 'CONFIRMED' AND w.deleted_at IS NULL
)
UPDATE waitlist_entries w SET status = 'PENDING'
FROM placed p
WHERE w.id = p.id AND p.is_new AND p.place > p.capacity
"""


SESSIONS_SQL = f"""
WITH pp AS (
    SELECT id, row_number() OVER (ORDER BY id) AS rn FROM users WHERE deleted_at IS NULL
), totals AS (
    SELECT count(*) AS people FROM pp
), picks AS (
    SELECT n, 1 + {_rand('suser')} % t.people AS person_rn
    FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS n CROSS JOIN totals t
    WHERE t.people > 0
)
INSERT INTO sessions (id, user_id, token, expires_at, created_at, updated_at)
SELECT {_cuid('session', 'x.n')},
       pp.id,
       -- linea stores only the SHA-256 of a token; seeded tokens exist nowhere in the clear.
       encode(sha256(convert_to(:seed || ':token:' || x.n, 'UTF8')), 'hex'),
       :anchor + make_interval(hours => {_rand('sexp', 'x.n')} % (24 * 60) - 24 * 20),
       :anchor - interval '20 days', :anchor - interval '20 days'
FROM picks x JOIN pp ON pp.rn = x.person_rn
"""
