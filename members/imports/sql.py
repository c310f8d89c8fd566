"""The import's SQL: a batch of rows is COPYed into a temporary staging table, matched
against ``member`` and ``member_identity`` by index probes, and merged by a few set-based
statements. Existing members are updated and get new identities and tags (ON CONFLICT); the
rest are inserted with their identity, tags and tag history by one statement.

Matching is by phone, else by POS id. An existing member gets the file's non-empty name,
gender and birthday, its phone if it had none, its store if it had none (first touch is
kept); identities and tags are added, never removed. A row whose POS id belongs to a member
with another phone, or that resolves to the same member as an earlier row, is bad.
"""

from __future__ import annotations

import io

from sqlalchemy import text

from core.db import utcnow
from members.models import card_no_for

STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS member_import_stage (
    line integer, phone text, name text, gender text, birthday date, store_id bigint,
    pos_id text, tag_ids bigint[], member_id bigint
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
# The rows left unmatched are new members. Their ids are drawn from the sequence by one
# statement, in line order, and returned with their lines; the rows of member,
# member_identity, member_tag and tag_history are then written by the client from the
# batch's own COPY lines (the staged values, already escaped for COPY) and inserted by
# ``COPY ... FROM STDIN``: COPY inserts many rows per page at a time where INSERT ... SELECT
# inserts row by row, and the foreign keys are still checked by their triggers for every
# row. The sequence is named by its oid, looked up once per import (by name it cost a
# catalog lookup for every row).
# No ON CONFLICT: the POS ids were looked up just before (RESOLVE_POS) and are unique
# within the file, and a new member has no tags yet (a row's repeated tags were dropped by
# the validator); a concurrent writer taking one of the phones or POS ids in between fails
# the batch, and re-running the file completes it.
NEW_IDS = """
COPY (
    SELECT line, nextval({seq}::regclass)
    FROM (SELECT line FROM member_import_stage WHERE member_id IS NULL ORDER BY line) o
) TO STDOUT
"""
COPY_NEW = (
    "COPY member (id, brand_id, phone, card_no, name, gender, birthday, store_id, source,"
    " status, created_at, updated_at) FROM STDIN",
    "COPY member_identity (brand_id, member_id, kind, value, created_at) FROM STDIN",
    "COPY member_tag (brand_id, member_id, tag_id, source, created_at) FROM STDIN",
    "COPY tag_history (brand_id, member_id, tag_id, action, source, reason, created_at) FROM STDIN",
)
MEMBER_SEQ = "SELECT pg_get_serial_sequence('member', 'id')::regclass::oid"
# Per batch transaction: a lost commit after a crash is redone by re-running the file (it
# is idempotent), so the import does not wait for each WAL flush; JIT compilation costs
# more than it saves on these statements.
BATCH_SETTINGS = (
    "SET LOCAL synchronous_commit = off",
    "SET LOCAL random_page_cost = 1.1",
    "SET LOCAL jit = off",
    "SET LOCAL work_mem = '64MB'",
)


def apply_batch(
    conn, brand_id: int, import_id: int, data: bytes, rows: int, new_ids: str
) -> tuple[int, int, list[dict]]:
    """Merge one batch of ``rows`` COPY lines; returns (inserted, updated, bad rows found)."""
    bad: list[dict] = []
    if not rows:
        return 0, 0, bad
    for setting in BATCH_SETTINGS:
        conn.execute(text(setting))
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
    p = {"b": brand_id, "now": utcnow(), "reason": f"import #{import_id}"}
    changed: set[int] = set()
    if conn.execute(text(MATCHED)).scalar():
        changed.update(conn.execute(text(UPDATE_EXISTING), p).scalars())
        changed.update(conn.execute(text(INSERT_IDENTITIES), p).scalars())
        changed.update(conn.execute(text(INSERT_TAGS), p).scalars())
    with raw.cursor() as cur, cur.copy(new_ids) as out:
        ids = b"".join(bytes(chunk) for chunk in out)
    new = ids.count(b"\n")
    if new:
        tables = new_rows(data, ids, brand_id, p["now"], p["reason"])
        with raw.cursor() as cur:
            for statement, rows in zip(COPY_NEW, tables, strict=True):
                if rows:
                    with cur.copy(statement) as copy:
                        copy.write(rows)
    return new, len(changed), bad


def new_rows(data: bytes, ids: bytes, brand_id: int, now, reason: str) -> tuple[bytearray, ...]:
    """The COPY data of the new members, their identities, tags and tag history.

    ``data`` is the batch's staging COPY (line, phone, name, gender, birthday, store_id,
    pos_id, tag_ids; ascending lines), ``ids`` the COPY of (line, new id) of the rows left
    unmatched, in line order. Values are passed on as staged (already escaped for COPY).
    Each table's data grows in one buffer (no list of row objects, no joined copy), which
    keeps the batch's memory to about the size of the rows.
    """
    b = str(brand_id).encode()
    ts = now.isoformat().encode()
    tag_tail = b"\timport\t" + ts + b"\n"
    history_tail = b"\tadded\timport\t" + reason.encode() + b"\t" + ts + b"\n"
    member_tail = b"\timport\tactive\t" + ts + b"\t" + ts + b"\n"
    members, identities, tags, history = bytearray(), bytearray(), bytearray(), bytearray()
    staged = io.BytesIO(data)
    for pair in io.BytesIO(ids):
        line, member_id = pair[:-1].split(b"\t")
        prefix = line + b"\t"
        row = staged.readline()
        while not row.startswith(prefix):
            row = staged.readline()
        _, phone, name, gender, birthday, store_id, pos_id, tag_ids = row[:-1].split(b"\t")
        card = card_no_for(int(member_id)).encode()
        members += b"\t".join((member_id, b, phone, card, name, gender, birthday, store_id))
        members += member_tail
        head = b + b"\t" + member_id + b"\t"
        if pos_id != b"\\N":
            identities += head + b"pos\t" + pos_id + b"\t" + ts + b"\n"
        if tag_ids != b"\\N":
            for tag_id in tag_ids[1:-1].split(b","):
                tags += head + tag_id + tag_tail
                history += head + tag_id + history_tail
    return members, identities, tags, history


def prepare(conn) -> str:
    """Create the staging tables on the import's connection; returns the statement drawing
    the new members' ids, bound to the member sequence (looked up once: by name it cost a
    catalog lookup for every row)."""
    conn.execute(text(STAGE_DDL))
    seq = conn.execute(text(MEMBER_SEQ)).scalar_one()
    return NEW_IDS.replace("{seq}", str(int(seq)))
