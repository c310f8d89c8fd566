"""Reading an import file: encoding, header, and each row checked and turned into a line of
PostgreSQL's COPY text format.

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
superset of GBK); a file that is neither is refused as a whole. A row is bad (reported with
its line number and reason, never imported) when a field is invalid, a store code or tag
unknown, or the phone or POS id repeats an earlier line; phones and POS ids already seen
are kept in compact int sets, not Python sets, so memory stays bounded.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import os
import re
from array import array
from collections.abc import Iterator

from core.errors import ValidationError
from core.validators import PHONE_RE, normalize_phone

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


def columns(header: list[str]) -> dict[str, int]:
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


class IntSet:
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


class Repeated(ValueError):
    """A phone or POS id already claimed by an earlier valid line."""

    def __init__(self, key: tuple[str, int], template: str):
        super().__init__(template.format(first="an earlier line"))
        self.key, self.template = key, template


class RowValidator:
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
        # that only watches the repeated values (see ``name_first_lines``).
        self.phones = IntSet()
        self.pos_ids = IntSet()
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
            raise Repeated(("phone", key), "phone repeats line {first}")
        if pos_id:
            h = hash(pos_id)
            if h in self.pos_ids:
                raise Repeated(("pos", h), "POS id repeats line {first}")
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


def batches(
    reader, validator: RowValidator, size: int
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
        except Repeated as exc:
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


def name_first_lines(path, encoding, stores, tags, today, cols, repeats) -> None:
    """Second pass for repeated phones / POS ids: which earlier line claimed each one."""
    watcher = RowValidator(stores, tags, today, cols, watch={exc.key for _, exc in repeats})
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
