"""CSV import of customer bindings (an operator's decision, e.g. moving from another system).

Columns (any order; the Chinese header or the English one): 会员手机号 ``member_phone`` or
会员卡号 ``card_no`` (one of them), 导购手机号 ``guide_phone`` (an active guide of the brand,
or empty for a store only), 门店编码 ``store_code`` (empty: the guide's store), 原因
``reason``. A row binds the customer to that store and guide whatever the binding rules say
(it is the operator's decision), and records an event with the row's reason.

All or nothing: every row is checked first; if any is wrong nothing is written and each error
is listed with its row number (header = row 1), column and reason, downloadable as a CSV
whose cells never run as formulas. UTF-8 (with or without BOM) or GB18030 files. Small files
run in the request; bigger ones (``GUIDE_IMPORT_INLINE_ROWS``, default 500) are a job whose
progress is kept in Redis under the brand's hash tag.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core import csvimport
from core import redis as core_redis
from core.audit import acting_as
from core.csvimport import ImportFileError, RowError, decode, missing_columns
from core.csvsafe import SafeWriter
from core.db import db
from core.errors import ValidationError
from core.jobs import job
from core.labels import register_labels
from core.tenancy import require_brand_id
from core.validators import is_mobile, normalize_phone
from guide_distribution import binding
from guide_distribution.jobs import actor_args, staff_actor
from members.models import ACTIVE, Member
from org.models import Staff, Store

MAX_ROWS = 50_000
MAX_ERRORS = 1000
PROGRESS_TTL = 7 * 24 * 3600
PROGRESS_EVERY = 200

COLUMNS = {
    "member_phone": ("会员手机号", "member_phone"),
    "card_no": ("会员卡号", "card_no"),
    "guide_phone": ("导购手机号", "guide_phone"),
    "store_code": ("门店编码", "store_code"),
    "reason": ("原因", "reason"),
}


def column_title(name: str) -> str:
    return COLUMNS[name][0] if name in COLUMNS else name


@dataclass
class Result:
    total: int = 0
    bound: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def read_rows(text: str) -> tuple[dict[str, int], list[tuple[int, list[str]]]]:
    """The header's columns and the data rows with their row numbers (header = row 1)."""

    def check(names: dict[str, int]) -> None:
        for one, other in (("member_phone", "card_no"), ("guide_phone", "store_code")):
            if one not in names and other not in names:
                raise missing_columns([f"{column_title(one)} / {column_title(other)}"])

    return csvimport.read_rows(text, COLUMNS, max_rows=MAX_ROWS, check_header=check)


@dataclass
class _Row:
    row: int
    member_id: int
    guide_id: int | None
    store_id: int | None
    reason: str


def _lookups(cells_list: list[dict[str, str]]) -> tuple[dict, dict, dict, dict, set]:
    phones = {normalize_phone(c["member_phone"]) for c in cells_list if c["member_phone"].strip()}
    cards = {c["card_no"].strip() for c in cells_list if c["card_no"].strip()}
    by_phone: dict[str, int] = {}
    by_card: dict[str, int] = {}
    phone_list, card_list = list(phones), list(cards)
    for i in range(0, len(phone_list), 1000):
        by_phone.update(
            db.session.execute(
                select(Member.phone, Member.id).where(
                    Member.phone.in_(phone_list[i : i + 1000]), Member.status == ACTIVE
                )
            ).all()
        )
    for i in range(0, len(card_list), 1000):
        by_card.update(
            db.session.execute(
                select(Member.card_no, Member.id).where(
                    Member.card_no.in_(card_list[i : i + 1000]), Member.status == ACTIVE
                )
            ).all()
        )
    guides = {
        s.phone: s
        for s in db.session.execute(
            select(Staff).where(Staff.role == "guide", Staff.active.is_(True))
        ).scalars()
    }
    stores = dict(db.session.execute(select(Store.code, Store.id)).all())
    staff_phones = set(
        db.session.execute(select(Staff.phone).where(Staff.active.is_(True))).scalars()
    )
    return by_phone, by_card, guides, stores, staff_phones


def run(text: str, *, token: str, on_progress=None) -> Result:
    """Check every row, then write them all (or nothing). Flushes; the caller commits."""
    names, lines = read_rows(text)
    result = Result(total=len(lines))
    cells_list = []
    for number, line in lines:
        cells = {n: (line[idx] if idx < len(line) else "") for n, idx in names.items()}
        for n in COLUMNS:
            cells.setdefault(n, "")
        cells_list.append((number, cells))
    by_phone, by_card, guides, stores, staff_phones = _lookups([c for _n, c in cells_list])
    phone_of = dict(
        db.session.execute(
            select(Member.id, Member.phone).where(
                Member.id.in_(list(by_phone.values()) + list(by_card.values()))
            )
        ).all()
    ) if (by_phone or by_card) else {}  # fmt: skip
    seen: dict[int, int] = {}
    rows: list[_Row] = []
    errors = result.errors
    for i, (number, cells) in enumerate(cells_list):
        before = len(errors)

        def bad(column: str, reason, *, _n=number, _c=cells) -> None:
            errors.append(RowError(_n, column_title(column), str(reason), _c.get(column, "")))

        member_id = None
        raw_phone, card = cells["member_phone"].strip(), cells["card_no"].strip()
        if raw_phone:
            phone = normalize_phone(raw_phone)
            if not is_mobile(phone):
                bad("member_phone", _l("Not a mobile phone number."))
            else:
                member_id = by_phone.get(phone)
                if member_id is None:
                    bad("member_phone", _l("No member has this phone number."))
        elif card:
            member_id = by_card.get(card)
            if member_id is None:
                bad("card_no", _l("No member has this card number."))
        else:
            bad("member_phone", _l("Give the member's phone number or card number."))
        guide = None
        raw_guide = cells["guide_phone"].strip()
        if raw_guide:
            guide = guides.get(normalize_phone(raw_guide))
            if guide is None:
                bad("guide_phone", _l("No active guide has this phone number."))
        store_id = guide.store_id if guide is not None else None
        code = cells["store_code"].strip()
        if code:
            store_id = stores.get(code)
            if store_id is None:
                bad("store_code", _l("No store has this code."))
        if guide is None and not code and not raw_guide:
            bad("guide_phone", _l("Give a guide or a store."))
        if member_id is not None and guide is not None and phone_of.get(member_id) in staff_phones:
            bad("guide_phone", _l("A guide cannot be bound as another guide's customer."))
        reason = cells["reason"].strip()
        if len(reason) > binding.REASON_MAX:
            bad("reason", _l("At most %(n)d characters.", n=binding.REASON_MAX))
        if member_id is not None and member_id in seen:
            bad(
                "member_phone" if raw_phone else "card_no",
                gettext("The same member is on row %(n)d.", n=seen[member_id]),
            )
        if member_id is not None:
            seen.setdefault(member_id, number)
        if len(errors) == before:
            rows.append(_Row(number, member_id, guide.id if guide else None, store_id, reason))
        if on_progress and (i + 1) % PROGRESS_EVERY == 0:
            on_progress("checking", i + 1)
    if errors:
        result.errors = sorted(errors, key=lambda e: e.row)[:MAX_ERRORS]
        return result
    default_reason = gettext("CSV import")
    for i, r in enumerate(rows):
        done = binding.set_binding(
            member_id=r.member_id,
            guide_id=r.guide_id,
            store_id=r.store_id,
            source="import",
            reason=r.reason or default_reason,
        )
        if done is None:
            result.unchanged += 1
        else:
            result.bound += 1
        if on_progress and (i + 1) % PROGRESS_EVERY == 0:
            on_progress("writing", i + 1)
    db.session.flush()
    return result


def export_errors(errors: list[dict]) -> str:
    """The errors as CSV for a spreadsheet (no cell runs as a formula), with a BOM."""
    out = io.StringIO()
    out.write("\ufeff")
    w = SafeWriter(out)
    w.writerow([gettext("Row"), gettext("Column"), gettext("Reason"), gettext("Value")])
    for e in errors:
        w.writerow([e["row"], e["column"], e["reason"], e["value"]])
    return out.getvalue()


def _progress_key(token: str) -> str:
    return core_redis.key(require_brand_id(), "guide-binding-import", token)


def save_progress(token: str, **values) -> None:
    r = core_redis.get_redis()
    key = _progress_key(token)
    pipe = r.pipeline()
    pipe.hset(key, mapping={k: json.dumps(v, ensure_ascii=False) for k, v in values.items()})
    pipe.expire(key, PROGRESS_TTL)
    pipe.execute()


def progress(token: str) -> dict | None:
    """An import's state (status queued/checking/writing/done/failed, total, done, bound,
    unchanged, errors); None for an unknown token."""
    if not token.isalnum() or len(token) > 64:
        return None
    raw = core_redis.get_redis().hgetall(_progress_key(token))
    if not raw:
        return None
    return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}


def _summary(result: Result) -> dict:
    return {
        "total": result.total,
        "bound": result.bound,
        "unchanged": result.unchanged,
        "errors": [e.as_dict() for e in result.errors],
    }


def upload_folder() -> str:
    path = os.path.join(current_app.config["INSTANCE_PATH"], "guide_imports")
    os.makedirs(path, exist_ok=True)
    return path


def start(raw: bytes, *, filename: str) -> tuple[str, Result | None]:
    """Import an uploaded file in this request when small (the caller commits), else queue
    it as a job (the caller commits, which enqueues it)."""
    if not raw:
        raise ImportFileError(_l("The file is empty."), field="file")
    text = decode(raw)
    _names, lines = read_rows(text)
    token = uuid.uuid4().hex
    inline = int(current_app.config.get("GUIDE_IMPORT_INLINE_ROWS") or 500)
    if len(lines) <= inline:
        result = run(text, token=token)
        if result.errors:
            db.session.rollback()
        save_progress(
            token, status="done", filename=filename, done=result.total, **_summary(result)
        )
        return token, result
    path = os.path.join(upload_folder(), f"{require_brand_id()}-{token}.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    save_progress(token, status="queued", filename=filename, total=len(lines), done=0, errors=[])
    import_bindings_job.enqueue(token, path, *actor_args())
    return token, None


register_labels(
    "job", {"guide_distribution.binding_import.import_bindings_job": _l("Import bindings")}
)


@job("low", timeout=3600, retries=0)
def import_bindings_job(
    token: str, path: str, actor_id: int | None = None, actor_label: str = ""
) -> None:
    """Run a queued bindings import; all rows are written in this job's one transaction."""
    state = progress(token) or {}
    if state.get("status") in ("done", "failed"):
        return
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        save_progress(token, status="failed")
        return
    total = state.get("total", 0)

    def report(status: str, done: int) -> None:
        save_progress(token, status=status, total=total, done=done)

    try:
        with acting_as(staff_actor(actor_id, actor_label)):
            result = run(text, token=token, on_progress=report)
    except ValidationError as exc:
        db.session.rollback()
        save_progress(
            token, status="done", errors=[RowError(1, "", exc.message).as_dict()], total=total,
            done=0,
        )  # fmt: skip
        return
    except Exception:
        db.session.rollback()
        save_progress(token, status="failed")
        raise
    if result.errors:
        db.session.rollback()
    save_progress(token, status="done", done=result.total, **_summary(result))
    if not result.errors:
        os.remove(path)
