"""The import's SQL: a batch of rows is COPYed into a temporary staging table, matched
against ``member`` and ``member_identity`` by index probes, and merged by a few set-based
statements. Existing members are updated and get new identities and tags (ON CONFLICT); the
rest get ids drawn in line order, then are inserted with their identity, tags and tag history
by one statement.

Matching is by phone, else by POS id. An existing member gets the file's non-empty name,
gender and birthday, its phone if it had none, its store if it had none (first touch is
kept); identities and tags are added, never removed. A row whose POS id belongs to a member
with another phone, or that resolves to the same member as an earlier row, is bad.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from sqlalchemy import text

from core.db import utcnow
from members.models import card_no_sql

STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS member_import_stage (
    line integer, phone text, name text, gender text, birthday date, store_id bigint,
    pos_id text, tag_ids bigint[], member_id bigint, new_id bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS member_import_pos (
    line integer, member_id bigint, has_phone boolean
) ON COMMIT DELETE ROWS
"""
COPY_STAGE = (
    "COPY member_import_stage (line, phone, name, gender, birthday, store_id, pos_id, tag_ids)"
    " FROM STDIN"
)
# Matching probes the unique indexes once per staged row, written as LATERAL ... LIMIT 1
# so that the planner cannot turn it into a hash join: while the import grows ``member``
# its statistics lag far behind (autovacuum has not analysed it yet), and a hash join
# would read the whole growing table once per batch and statement.
RESOLVE_PHONE = """
UPDATE member_import_stage s SET member_id = h.id
FROM (
    SELECT s.line, x.id FROM member_import_stage s CROSS JOIN LATERAL (
        SELECT m.id FROM member m WHERE m.brand_id = :b AND m.phone = s.phone LIMIT 1
    ) x WHERE s.phone IS NOT NULL
) h
WHERE s.line = h.line
"""
POS_HITS = """
INSERT INTO member_import_pos (line, member_id, has_phone)
SELECT s.line, x.member_id, x.has_phone FROM member_import_stage s CROSS JOIN LATERAL (
    SELECT i.member_id, m.phone IS NOT NULL AS has_phone
    FROM member_identity i JOIN member m ON m.id = i.member_id
    WHERE i.brand_id = :b AND i.kind = 'pos' AND i.value = s.pos_id LIMIT 1
) x WHERE s.pos_id IS NOT NULL
"""
POS_CONFLICTS = """
DELETE FROM member_import_stage s USING member_import_pos p
WHERE p.line = s.line
  AND ((s.member_id IS NOT NULL AND p.member_id <> s.member_id)
       OR (s.member_id IS NULL AND s.phone IS NOT NULL AND p.has_phone))
RETURNING s.line, s.pos_id
"""
RESOLVE_POS = """
UPDATE member_import_stage s SET member_id = p.member_id
FROM member_import_pos p WHERE s.member_id IS NULL AND p.line = s.line
"""
SAME_MEMBER = """
DELETE FROM member_import_stage s USING (
    SELECT line, first_value(line) OVER (PARTITION BY member_id ORDER BY line) AS first
    FROM member_import_stage WHERE member_id IS NOT NULL
) d
WHERE s.line = d.line AND d.line <> d.first
RETURNING s.line, d.first
"""
MATCHED = "SELECT EXISTS (SELECT 1 FROM member_import_stage WHERE member_id IS NOT NULL)"
# Whether the batch depends on existing members: a row matched one, or its POS id belongs to
# one (a conflict depends on that member's phone, which an earlier batch may have set).
TOUCHES_EXISTING = (
    "SELECT EXISTS (SELECT 1 FROM member_import_stage WHERE member_id IS NOT NULL)"
    " OR EXISTS (SELECT 1 FROM member_import_pos)"
)
RESTAGE = "TRUNCATE member_import_stage, member_import_pos"
UPDATE_EXISTING = """
UPDATE member m SET
    name = CASE WHEN s.name <> '' THEN s.name ELSE m.name END,
    gender = CASE WHEN s.gender <> '' THEN s.gender ELSE m.gender END,
    birthday = COALESCE(s.birthday, m.birthday),
    phone = COALESCE(m.phone, s.phone),
    store_id = COALESCE(m.store_id, s.store_id),
    updated_at = :now
FROM member_import_stage s
WHERE s.member_id IS NOT NULL AND m.id = s.member_id AND m.brand_id = :b AND (
    (s.name <> '' AND s.name IS DISTINCT FROM m.name)
    OR (s.gender <> '' AND s.gender IS DISTINCT FROM m.gender)
    OR (s.birthday IS NOT NULL AND s.birthday IS DISTINCT FROM m.birthday)
    OR (m.phone IS NULL AND s.phone IS NOT NULL)
    OR (m.store_id IS NULL AND s.store_id IS NOT NULL))
RETURNING m.id
"""
INSERT_IDENTITIES = """
INSERT INTO member_identity (brand_id, member_id, kind, value, created_at)
SELECT :b, s.member_id, 'pos', s.pos_id, :now
FROM member_import_stage s WHERE s.pos_id IS NOT NULL AND s.member_id IS NOT NULL
ON CONFLICT (brand_id, kind, value) DO NOTHING
RETURNING member_id
"""
INSERT_TAGS = """
WITH tg AS (
    INSERT INTO member_tag (brand_id, member_id, tag_id, source, created_at)
    SELECT :b, s.member_id, t.tag_id, 'import', :now
    FROM member_import_stage s CROSS JOIN LATERAL unnest(s.tag_ids) AS t(tag_id)
    WHERE s.tag_ids IS NOT NULL AND s.member_id IS NOT NULL
    ON CONFLICT (member_id, tag_id) DO NOTHING
    RETURNING member_id, tag_id
), th AS (
    INSERT INTO tag_history (brand_id, member_id, tag_id, action, source, reason, created_at)
    SELECT :b, member_id, tag_id, 'added', 'import', :reason, :now FROM tg
)
SELECT DISTINCT member_id FROM tg
"""
# The rows left unmatched are new members. Their ids are drawn first, in line order (the
# staging table is scanned in the order it was COPYed), by a statement of its own: batches
# merge in parallel on two connections, and each draws its ids only after the batch before
# it has drawn, so that ids (and card numbers) follow the lines of the file across batches.
# The sequence is named by its oid, looked up once per import (by name it cost a catalog
# lookup for every row).
DRAW_IDS = (
    "UPDATE member_import_stage SET new_id = nextval({seq}::regclass) WHERE member_id IS NULL"
)
# Then one statement inserts the members with their identity, tags and tag history. The
# foreign keys of identities and tags are checked at the end of the statement, when the
# members exist.
# No ON CONFLICT: the POS ids were looked up just before (RESOLVE_POS) and are unique
# within the file, and a new member has no tags yet (a row's repeated tags were dropped by
# the validator); a concurrent writer taking one of the POS ids in between fails the
# batch, and re-running the file completes it. Phones and POS ids are unique within the
# file (the validator), so two batches merging at the same time never insert the same one.
INSERT_NEW = """
WITH n AS MATERIALIZED (
    SELECT s.new_id AS id, s.phone, s.name, s.gender, s.birthday, s.store_id, s.pos_id,
           s.tag_ids
    FROM member_import_stage s WHERE s.new_id IS NOT NULL
), m AS (
    INSERT INTO member (id, brand_id, phone, card_no, name, gender, birthday, store_id,
                        source, status, created_at, updated_at)
    SELECT n.id, :b, n.phone, {card_no}, n.name, n.gender, n.birthday, n.store_id,
           'import', 'active', :now, :now
    FROM n
), i AS (
    INSERT INTO member_identity (brand_id, member_id, kind, value, created_at)
    SELECT :b, n.id, 'pos', n.pos_id, :now FROM n WHERE n.pos_id IS NOT NULL
), t AS MATERIALIZED (
    SELECT n.id AS member_id, t.tag_id
    FROM n CROSS JOIN LATERAL unnest(n.tag_ids) AS t(tag_id) WHERE n.tag_ids IS NOT NULL
), tg AS (
    INSERT INTO member_tag (brand_id, member_id, tag_id, source, created_at)
    SELECT :b, member_id, tag_id, 'import', :now FROM t
), th AS (
    INSERT INTO tag_history (brand_id, member_id, tag_id, action, source, reason, created_at)
    SELECT :b, member_id, tag_id, 'added', 'import', :reason, :now FROM t
)
SELECT count(*) FROM n
""".replace("{card_no}", card_no_sql("n.id"))
MEMBER_SEQ = "SELECT pg_get_serial_sequence('member', 'id')::regclass::oid"
# The trigram GIN indexes of ``member`` take new entries into a pending list that is merged
# into the index whenever it passes gin_pending_list_limit (4 MB by default); a batch lets
# it grow to 16 MB (fewer, larger merges) and merges the rest before it commits, so that
# searches never scan a long pending list. Merging on demand needs the owner of the
# indexes (as VACUUM does); an import run by another role keeps the default limit.
TRGM_INDEXES = ("ix_member_name_trgm", "ix_member_phone_trgm")
GIN_PENDING = "SET LOCAL gin_pending_list_limit = '16MB'"
GIN_OWNED = """
SELECT count(*) = :n FROM pg_class
WHERE oid = ANY (CAST(:names AS regclass[])) AND pg_has_role(relowner, 'USAGE')
"""
GIN_MERGE = "SELECT " + ", ".join(
    f"gin_clean_pending_list('{name}'::regclass)" for name in TRGM_INDEXES
)
# Per batch transaction: a lost commit after a crash is redone by re-running the file (it
# is idempotent), so the import does not wait for each WAL flush; JIT compilation costs
# more than it saves on these statements.
BATCH_SETTINGS = (
    "SET LOCAL synchronous_commit = off",
    "SET LOCAL random_page_cost = 1.1",
    "SET LOCAL jit = off",
    "SET LOCAL work_mem = '64MB'",
)


class Alone:
    """The order of a batch merged alone (nothing else runs): it never waits."""

    def earlier_committed(self) -> bool:
        return True

    def wait_earlier_committed(self) -> None:
        return None

    def drawing(self) -> AbstractContextManager:
        return nullcontext()


def apply_batch(
    conn,
    brand_id: int,
    import_id: int,
    data: bytes,
    rows: int,
    prepared: Prepared,
    order=None,
) -> tuple[int, int, list[dict]]:
    """Merge one batch of ``rows`` COPY lines; returns (inserted, updated, bad rows found).

    ``prepared`` comes from ``prepare``. ``order`` is where a batch merged in parallel with
    others waits for the earlier ones (``members.imports.run``; ``Alone()`` by default):

    * a batch whose rows all are new members only waits, before drawing their ids, until
      the batch before it has drawn (ids follow the lines of the file). Its phones and POS
      ids are unique within the file, so no other batch of the import touches its rows;
    * a batch with rows that match existing members (or whose POS ids do) waits until every
      earlier batch has committed, and matches again if one committed after its matching
      began: it sees, and updates, those members exactly as one batch after the other would.

    Until it waits, a batch has only read shared tables, so it holds no lock that an earlier
    batch could wait for.
    """
    order = order or Alone()
    bad: list[dict] = []
    if not rows:
        return 0, 0, bad
    for setting in BATCH_SETTINGS:
        conn.execute(text(setting))
    saw_earlier = order.earlier_committed()
    bad = _stage_and_match(conn, brand_id, data)
    if conn.execute(text(TOUCHES_EXISTING)).scalar():
        order.wait_earlier_committed()
        if not saw_earlier:
            conn.execute(text(RESTAGE))
            bad = _stage_and_match(conn, brand_id, data)
    if prepared.gin_merge:
        conn.execute(text(GIN_PENDING))
    with order.drawing():
        conn.execute(text(prepared.draw_ids))
    p = {"b": brand_id, "now": utcnow(), "reason": f"import #{import_id}"}
    changed: set[int] = set()
    if conn.execute(text(MATCHED)).scalar():
        changed.update(conn.execute(text(UPDATE_EXISTING), p).scalars())
        changed.update(conn.execute(text(INSERT_IDENTITIES), p).scalars())
        changed.update(conn.execute(text(INSERT_TAGS), p).scalars())
    new = conn.execute(text(INSERT_NEW), p).scalar_one()
    if prepared.gin_merge:
        conn.execute(text(GIN_MERGE))
    return new, len(changed), bad


def _stage_and_match(conn, brand_id: int, data: bytes) -> list[dict]:
    """COPY the batch into the staging table and match it; returns the bad rows found."""
    bad: list[dict] = []
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(COPY_STAGE) as copy:
        copy.write(data)
    conn.execute(text("ANALYZE member_import_stage"))
    params = {"b": brand_id}
    conn.execute(text(RESOLVE_PHONE), params)
    conn.execute(text(POS_HITS), params)
    for line, pos_id in conn.execute(text(POS_CONFLICTS), params):
        bad.append(
            {"line": line, "reason": f"POS id {pos_id!r} belongs to a member with another phone"}
        )
    conn.execute(text(RESOLVE_POS), params)
    for line, first in conn.execute(text(SAME_MEMBER)):
        bad.append({"line": line, "reason": f"same member as line {first}"})
    return bad


@dataclass(frozen=True)
class Prepared:
    """A connection ready to merge batches: the statement drawing new members' ids (bound to
    the member sequence), and whether batches merge the trigram indexes' pending lists."""

    draw_ids: str
    gin_merge: bool


def prepare(conn) -> Prepared:
    """Create the staging tables on a connection of the import. The member sequence is
    looked up once (by name it cost a catalog lookup for every row)."""
    conn.execute(text(STAGE_DDL))
    seq = conn.execute(text(MEMBER_SEQ)).scalar_one()
    owned = conn.execute(
        text(GIN_OWNED), {"n": len(TRGM_INDEXES), "names": list(TRGM_INDEXES)}
    ).scalar_one()
    return Prepared(DRAW_IDS.replace("{seq}", str(int(seq))), bool(owned))
