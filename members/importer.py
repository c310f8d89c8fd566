"""Import of existing members from a POS/CRM CSV export (PostgreSQL).

File format: a header row, then one member per row. Columns (any order; English or the
Chinese header in brackets; unknown columns are ignored):

* ``phone`` (手机号): mainland mobile, ``+86`` / spaces / dashes allowed;
* ``name`` (姓名), at most 80 characters;
* ``gender`` (性别): ``m``/``f``, ``male``/``female``, ``男``/``女``, ``1``/``2`` or empty;
* ``birthday`` (生日): ``YYYY-MM-DD``, ``YYYY/MM/DD`` or ``YYYYMMDD``, or empty;
* ``store_code`` (门店编码): the code of one of the brand's stores, or empty;
* ``pos_id`` (POS会员号): the POS member id, attached as a ``pos`` identity;
* ``tags`` (标签): codes or names of tags of the brand's library, separated by ``|``.

A row needs a phone or a POS id. Encoding: UTF-8 with or without BOM, else GB18030 (a
superset of GBK); a file that is neither is refused as a whole.

Matching: by phone, else by POS id. An existing member gets the file's non-empty name,
gender and birthday, its phone if it had none, its store if it had none (first touch is
kept); identities and tags are added, never removed. A row is bad (reported with its line
number and reason, never imported) when a field is invalid, a store code or tag unknown,
the phone or POS id repeats an earlier line, or its POS id belongs to a member with
another phone. Re-running a file changes nothing: every row counts as unchanged.

How: the file is streamed and validated in Python (phones and POS ids already seen are kept
in compact int sets, not Python sets: bounded memory); each batch of valid rows is COPYed
into a temporary staging table, matched against ``member`` and ``member_identity`` by
index probes, and merged by a few set-based statements: existing members are updated and
get new identities and tags (ON CONFLICT), the rest are inserted with their identity, tags
and tag history by one statement. Parsing the next batch overlaps the merge of the previous
one. Each batch commits on the import's own connection (without waiting for the WAL flush:
a lost batch is redone by a re-run), and the ``member_import`` row is updated with it, so a
page can show progress while the import runs.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import os
import queue
import re
import threading
from array import array
from collections.abc import Callable, Iterator

from sqlalchemy import select, text, update

from core.db import db, utcnow
from core.errors import ValidationError
from core.validators import PHONE_RE, normalize_phone
from members.models import MemberImport, card_no_sql
from members.models_tags import TagDefinition
from org.models import Store

BATCH = 100_000
MAX_ERRORS = 1000
CHUNK = 1 << 20

HEADERS = {
    "phone": ("phone", "mobile", "手机号", "手机", "手机号码"),
    "name": ("name", "姓名"),
    "gender": ("gender", "sex", "性别"),
    "birthday": ("birthday", "birth_date", "生日", "出生日期"),
    "store_code": ("store_code", "store", "门店编码", "门店代码", "门店"),
    "pos_id": ("pos_id", "pos_member_id", "member_no", "pos会员号", "会员编号", "会员号"),
    "tags": ("tags", "标签"),
}
GENDERS = {
    "": "",
    "m": "m",
    "male": "m",
    "男": "m",
    "1": "m",
    "f": "f",
    "female": "f",
    "女": "f",
    "2": "f",
}
_DATE_RE = re.compile(r"^(\d{4})[-/]?(\d{1,2})[-/]?(\d{1,2})$")
_TAG_SPLIT = re.compile(r"[|;；]")
_ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
MIN_BIRTHDAY = dt.date(1900, 1, 1)

ProgressFn = Callable[[MemberImport], None]


class ImportError_(ValidationError):  # noqa: N801 - not the builtin
    """The file as a whole cannot be imported (encoding, header)."""


def sniff(path: str) -> tuple[str, int]:
    """The file's encoding ("utf-8-sig" or "gb18030") and its number of lines.

    Reads the file once in chunks (bounded memory): strict UTF-8 first, GB18030 after.
    """
    errors = {}
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        lines = 0
        offset = 0
        try:
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    decoder.decode(chunk)
                    lines += chunk.count(b"\n")
                    offset += len(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            errors[encoding] = offset + exc.start
            continue
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 1))
            if f.read(1) not in (b"\n", b""):
                lines += 1
        return encoding, lines
    raise ImportError_(
        f"the file is neither UTF-8 nor GBK/GB18030 (bad byte near offset {errors['gb18030']})",
        field="file",
    )


def _columns(header: list[str]) -> dict[str, int]:
    names = [h.strip().lower().lstrip("\ufeff") for h in header]
    found = {}
    for field, aliases in HEADERS.items():
        for i, name in enumerate(names):
            if name in aliases:
                found[field] = i
                break
    if "phone" not in found and "pos_id" not in found:
        raise ImportError_("the header needs a phone or a pos_id column", field="file")
    return found


class _IntSet:
    """An insert-only set of 64-bit ints in one flat array: 16 bytes an entry, not ~70.

    A million phones and a million POS ids would take about 200 MB as Python sets; here
    they take about 64 MB (the open addressing costs a little CPU, and parsing is not the
    bottleneck of the import).
    """

    __slots__ = ("_a", "_mask", "_n")

    def __init__(self) -> None:
        self._a = array("q", bytes(8 * 1024))
        self._mask = 1023
        self._n = 0

    def _slot(self, k: int) -> int:
        a, mask = self._a, self._mask
        i = ((k * 0x9E3779B97F4A7C15) >> 17) & mask
        while True:
            v = a[i]
            if v == k or v == 0:
                return i
            i = (i + 1) & mask

    def __contains__(self, k: int) -> bool:
        k = k or 1  # 0 marks an empty slot
        return self._a[self._slot(k)] == k

    def add(self, k: int) -> None:
        k = k or 1
        i = self._slot(k)
        if self._a[i] == k:
            return
        self._a[i] = k
        self._n += 1
        if self._n * 2 > self._mask:
            old = self._a
            self._a = array("q", bytes(16 * len(old)))
            self._mask = 2 * len(old) - 1
            for v in old:
                if v:
                    self._a[self._slot(v)] = v


class _Repeated(ValueError):
    """A phone or POS id already claimed by an earlier valid line."""

    def __init__(self, key: tuple[str, int], template: str):
        super().__init__(template.format(first="an earlier line"))
        self.key, self.template = key, template


class _Validator:
    """Turns CSV rows into staging lines, remembering phones and POS ids already seen.

    Written for speed (it runs a million times): the common shapes (a plain 11-digit phone,
    an ISO date, a known tag list) take a fast path and the rest a careful one.
    """

    def __init__(
        self,
        stores: dict[str, int],
        tags: dict[str, int],
        today: dt.date,
        cols: dict[str, int],
        watch: set[tuple[str, int]] | None = None,
    ):
        self.stores = {code: str(sid) for code, sid in stores.items()}
        self.tags = tags
        self.today = today.isoformat()
        self.idx = tuple(cols.get(k) for k in HEADERS)
        self.width = max(i for i in self.idx if i is not None) + 1
        # Phones as ints and POS ids as 64-bit hashes, not strings and not dicts to line
        # numbers. The first line of a repeated value is found afterwards by a second pass
        # that only watches the repeated values (see ``_name_first_lines``).
        self.phones = _IntSet()
        self.pos_ids = _IntSet()
        self.watch = watch
        self.claims: dict[tuple[str, int], int] = {}
        self._tag_cache: dict[str, str] = {}

    def _fields(self, row: list[str]) -> list[str]:
        if len(row) < self.width:
            row = row + [""] * (self.width - len(row))
        return [row[i].strip() if i is not None else "" for i in self.idx]

    def _tags(self, raw: str) -> str:
        cached = self._tag_cache.get(raw)
        if cached is not None:
            return cached
        ids: list[int] = []
        for t in _TAG_SPLIT.split(raw):
            t = t.strip()
            if not t:
                continue
            tid = self.tags.get(t.lower())
            if tid is None:
                raise ValueError(f"unknown tag {t!r}")
            if tid not in ids:
                ids.append(tid)
        out = "{" + ",".join(map(str, ids)) + "}" if ids else "\\N"
        if len(self._tag_cache) < 10_000:
            self._tag_cache[raw] = out
        return out

    def _birthday(self, value: str) -> str:
        if len(value) == 10 and value[4] == "-" and value[7] == "-":
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"invalid birthday {value!r}") from None
            if not "1900-01-01" <= value <= self.today:
                raise ValueError(f"invalid birthday {value!r}")
            return value
        m = _DATE_RE.match(value)
        try:
            day = dt.date(int(m[1]), int(m[2]), int(m[3])) if m else None
        except ValueError:
            day = None
        if day is None or not MIN_BIRTHDAY.isoformat() <= day.isoformat() <= self.today:
            raise ValueError(f"invalid birthday {value!r}")
        return day.isoformat()

    def _claim(self, key: tuple[str, int], line: int) -> None:
        if self.watch is not None and key in self.watch and key not in self.claims:
            self.claims[key] = line

    def row(self, line: int, row: list[str]) -> str:
        """A COPY text line for a valid row; raises ValueError(reason) for a bad one."""
        phone, name, gender, birthday, store_code, pos_id, raw_tags = self._fields(row)
        if phone:
            if not (len(phone) == 11 and phone.isdigit()):
                phone = normalize_phone(phone)
            if not PHONE_RE.match(phone):
                raise ValueError(f"invalid phone number {phone!r}")
        if len(pos_id) > 128:
            raise ValueError("POS id longer than 128 characters")
        if not phone and not pos_id:
            raise ValueError("neither phone nor POS id")
        if len(name) > 80:
            raise ValueError("name longer than 80 characters")
        g = GENDERS.get(gender)
        if g is None:
            g = GENDERS.get(gender.lower())
            if g is None:
                raise ValueError(f"unknown gender {gender!r}")
        birthday = self._birthday(birthday) if birthday else "\\N"
        store_id = "\\N"
        if store_code:
            store_id = self.stores.get(store_code) or self.stores.get(store_code.upper())
            if store_id is None:
                raise ValueError(f"unknown store code {store_code!r}")
        tag_ids = self._tags(raw_tags) if raw_tags else "\\N"
        # Duplicates last: a row that is bad for another reason does not claim its phone.
        key = int(phone) if phone else None
        if key is not None and key in self.phones:
            raise _Repeated(("phone", key), "phone repeats line {first}")
        if pos_id:
            h = hash(pos_id)
            if h in self.pos_ids:
                raise _Repeated(("pos", h), "POS id repeats line {first}")
            self.pos_ids.add(h)
            self._claim(("pos", h), line)
        if key is not None:
            self.phones.add(key)
            self._claim(("phone", key), line)
        return "\t".join(
            (
                str(line),
                phone or "\\N",
                name.translate(_ESC),
                g,
                birthday,
                store_id,
                pos_id.translate(_ESC) if pos_id else "\\N",
                tag_ids,
            )
        )


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
# The rows left unmatched are new members, inserted with their identity, tags and tag
# history by one statement: ids are drawn once into a materialized CTE (cheaper than writing
# them back into the staging table), and the inserts read it. The sequence is named by its
# oid, looked up once per import (by name it cost a catalog lookup for every row). The
# foreign keys of identities and tags are checked at the end of the statement, when the
# members exist.
# No ON CONFLICT: the POS ids were looked up just before (RESOLVE_POS) and are unique
# within the file, and a new member has no tags yet (a row's repeated tags were dropped by
# the validator); a concurrent writer taking one of the POS ids in between fails the
# batch, and re-running the file completes it.
INSERT_NEW = """
WITH n AS MATERIALIZED (
    SELECT nextval({seq}::regclass) AS id, s.phone, s.name, s.gender,
           s.birthday, s.store_id, s.pos_id, s.tag_ids
    FROM member_import_stage s WHERE s.member_id IS NULL
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
# Per batch transaction: a lost commit after a crash is redone by re-running the file (it
# is idempotent), so the import does not wait for each WAL flush; JIT compilation costs
# more than it saves on these statements.
BATCH_SETTINGS = (
    "SET LOCAL synchronous_commit = off",
    "SET LOCAL random_page_cost = 1.1",
    "SET LOCAL jit = off",
    "SET LOCAL work_mem = '64MB'",
)


def create_import(*, filename: str, path: str, created_by: int | None = None) -> MemberImport:
    """Record an import of an uploaded file (the caller commits, then runs or enqueues it)."""
    row = MemberImport(
        filename=os.path.basename(filename)[:255],
        path=path,
        status="pending",
        created_by=created_by,
    )
    db.session.add(row)
    db.session.flush()
    return row


def _reference_data(brand_id: int) -> tuple[dict[str, int], dict[str, int]]:
    stores = {
        code.upper(): sid
        for sid, code in db.session.execute(
            select(Store.id, Store.code)
            .where(Store.brand_id == brand_id)
            .execution_options(all_brands=True)
        )
    }
    tags: dict[str, int] = {}
    for tid, code, name in db.session.execute(
        select(TagDefinition.id, TagDefinition.code, TagDefinition.name)
        .where(TagDefinition.brand_id == brand_id, TagDefinition.active.is_(True))
        .execution_options(all_brands=True)
    ):
        tags.setdefault(name.lower(), tid)
        tags[code.lower()] = tid
    return stores, tags


def _batches(
    reader, validator: _Validator, size: int
) -> Iterator[tuple[bytes, int, list[dict], int]]:
    """(COPY data, valid rows, bad rows, rows read) per batch of ``size`` valid rows.

    The COPY data is encoded at once: UTF-8 bytes take half the memory of the list of
    (mostly CJK, so two bytes a character) strings, which is dropped.
    """
    good: list[str] = []
    bad: list[dict] = []
    read = 0
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        read += 1
        try:
            good.append(validator.row(line, row))
        except _Repeated as exc:
            bad.append({"line": line, "reason": str(exc), "repeats": exc})
        except ValueError as exc:
            bad.append({"line": line, "reason": str(exc)})
        if len(good) >= size:
            n = len(good)
            yield _encode(good), n, bad, read
            good, bad, read = [], [], 0
    if good or bad or read:
        n = len(good)
        yield _encode(good), n, bad, read


def _encode(lines: list[str]) -> bytes:
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    lines.clear()
    return data


def _apply(
    conn, brand_id: int, import_id: int, data: bytes, rows: int, insert_new: str
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
    new = conn.execute(text(insert_new), p).scalar_one()
    return new, len(changed), bad


def run_import(
    *, import_id: int, batch_size: int = BATCH, on_progress: ProgressFn | None = None
) -> MemberImport:
    """Run a recorded import to the end, committing after each batch on its own connection.

    The ``member_import`` row must be committed before (its progress is written by another
    connection). Returns the row, reloaded, with status ``done`` or ``failed``.
    """
    imp = db.session.execute(
        select(MemberImport).where(MemberImport.id == import_id).execution_options(all_brands=True)
    ).scalar_one()
    if imp.status == "done":
        return imp
    brand_id, path = imp.brand_id, imp.path
    stores, tags = _reference_data(brand_id)
    db.session.rollback()  # nothing of ours stays open while the import runs
    state = {"processed": 0, "inserted": 0, "updated": 0, "unchanged": 0, "bad": 0}
    errors: list[dict] = []

    with db.engine.connect() as conn:

        def save(status: str, **extra) -> None:
            conn.execute(
                update(MemberImport.__table__)
                .where(MemberImport.__table__.c.id == import_id)
                .values(status=status, errors=list(errors), **state, **extra)
            )
            conn.commit()
            if on_progress is not None:
                on_progress(_snapshot(imp, status, state, extra))

        try:
            encoding, lines = sniff(path)
            conn.execute(text(STAGE_DDL))
            seq = conn.execute(text(MEMBER_SEQ)).scalar_one()
            insert_new = INSERT_NEW.replace("{seq}", str(int(seq)))
            save("running", encoding=encoding, total_rows=max(0, lines - 1), started_at=utcnow())
            repeats: list[tuple[dict, _Repeated]] = []
            today = utcnow().date()
            with open(path, encoding=encoding, newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header is None:
                    raise ImportError_("the file is empty", field="file")
                cols = _columns(header)
                validator = _Validator(stores, tags, today, cols)

                def merge_batch(batch: tuple[list[str], list[dict], int]) -> None:
                    data, good, bad, read = batch
                    inserted, updated, db_bad = _apply(
                        conn, brand_id, import_id, data, good, insert_new
                    )
                    bad = sorted(bad + db_bad, key=lambda b: b["line"])
                    state["processed"] += read
                    state["inserted"] += inserted
                    state["updated"] += updated
                    state["bad"] += len(bad)
                    state["unchanged"] += good - len(db_bad) - inserted - updated
                    for entry in bad[: max(0, MAX_ERRORS - len(errors))]:
                        if "repeats" in entry:
                            repeats.append((entry, entry.pop("repeats")))
                        errors.append(entry)
                    save("running")

                _pipelined(_batches(reader, validator, batch_size), merge_batch)
                del validator
            if repeats:
                _name_first_lines(path, encoding, stores, tags, today, cols, repeats)
            save("done", finished_at=utcnow())
        except (ValidationError, UnicodeDecodeError, csv.Error, OSError) as exc:
            conn.rollback()
            message = exc.message if isinstance(exc, ValidationError) else str(exc)
            save("failed", message=message[:2000], finished_at=utcnow())
        except Exception as exc:
            # Unexpected (the database went away...): visible as failed, then raised so a
            # job retries. Batches already committed stay; a re-run skips them as unchanged.
            conn.rollback()
            save("failed", message=f"{type(exc).__name__}: {exc}"[:2000], finished_at=utcnow())
            raise
    db.session.expire_all()
    return db.session.execute(
        select(MemberImport).where(MemberImport.id == import_id).execution_options(all_brands=True)
    ).scalar_one()


def _name_first_lines(path, encoding, stores, tags, today, cols, repeats) -> None:
    """Second pass for repeated phones / POS ids: which earlier line claimed each one."""
    watcher = _Validator(stores, tags, today, cols, watch={exc.key for _, exc in repeats})
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            try:
                watcher.row(reader.line_num, row)
            except ValueError:
                pass
    for entry, exc in repeats:
        entry["reason"] = exc.template.format(first=watcher.claims.get(exc.key, "?"))


def _pipelined(batches: Iterator, consume: Callable) -> None:
    """Parse the next batch in this thread while another merges the previous one.

    PostgreSQL works in its own process, so the two overlap; the queue holds at most one
    batch, which keeps memory bounded (parsing is several times faster than merging).
    """
    q: queue.Queue = queue.Queue(maxsize=1)
    failures: list[BaseException] = []

    def work() -> None:
        while (item := q.get()) is not None:
            if failures:
                continue  # drain so that the producer never blocks
            try:
                consume(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failures.append(exc)

    worker = threading.Thread(target=work, name="member-import-merge", daemon=True)
    worker.start()
    try:
        for item in batches:
            if failures:
                break
            q.put(item)
    finally:
        q.put(None)
        worker.join()
    if failures:
        raise failures[0]


def _snapshot(imp: MemberImport, status: str, state: dict, extra: dict) -> MemberImport:
    """A detached copy of the import row with the latest figures, for progress callbacks."""
    snap = MemberImport(
        id=imp.id, filename=imp.filename, status=status, total_rows=imp.total_rows, **state
    )
    if "total_rows" in extra:
        imp.total_rows = extra["total_rows"]
    snap.total_rows = imp.total_rows
    return snap


def import_file(
    *,
    path: str,
    filename: str | None = None,
    batch_size: int = BATCH,
    on_progress: ProgressFn | None = None,
    created_by: int | None = None,
) -> MemberImport:
    """Record and run an import of a local file in the current brand (commits: CLI and jobs)."""
    imp = create_import(filename=filename or path, path=path, created_by=created_by)
    db.session.commit()
    return run_import(import_id=imp.id, batch_size=batch_size, on_progress=on_progress)


def read_text(data: bytes) -> str:
    """Decode a small upload the way the import does (UTF-8 / BOM, else GB18030)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")
