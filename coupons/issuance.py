"""Issuing coupons: one to a member (claims, mall, welcome, games), or in bulk to a list or
segment with one set-based ``INSERT ... SELECT``.

Stock is taken with one conditional ``UPDATE ... SET issued = issued + n WHERE issued + n <=
stock`` and recorded in the stock ledger in the same transaction; limits per member and per
local day with one conditional upsert each. Every issuance has an idempotency key.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from core.db import db, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.paging import CAP, CappedCount
from core.tenancy import require_brand_id
from coupons import codes
from coupons.errors import LimitReached, SoldOut
from coupons.models import (
    AVAILABLE,
    SOURCES,
    THIRD_PARTY,
    Coupon,
    CouponCounter,
    CouponStockEntry,
    CouponTemplate,
    IssueBatch,
    PartnerCode,
)
from members.models import ACTIVE, Member
from org.models import Brand

MAX_KEY = 200


def brand_tz() -> zoneinfo.ZoneInfo:
    """The current brand's time zone."""
    brand = db.session.get(Brand, require_brand_id())
    return brand.tz


def local_day(when: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.date:
    return when.astimezone(tz).date()


def check_key(key) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
        raise ValidationError(
            _l("An idempotency key of 1-200 characters is required."), field="key"
        )
    return key


def get_template(template_id: int) -> CouponTemplate:
    """A template of the current brand, or NotFound."""
    tpl = db.session.execute(
        select(CouponTemplate).where(CouponTemplate.id == template_id)
    ).scalar_one_or_none()
    if tpl is None:
        raise NotFound(_l("No such coupon."), field="template_id")
    return tpl


def validity(
    tpl: CouponTemplate, *, issued_at: dt.datetime, tz: zoneinfo.ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    """(valid_from, valid_until) of a coupon issued now.

    "N days after issue" counts the day of issue as day 1 and ends at local midnight, the way
    a customer reads "valid for 7 days".
    """
    if tpl.valid_days:
        start_day = local_day(issued_at, tz)
        end = dt.datetime.combine(start_day + dt.timedelta(days=tpl.valid_days), dt.time(), tz)
        return issued_at, end.astimezone(dt.UTC)
    return tpl.valid_from or issued_at, tpl.valid_until  # type: ignore[return-value]


def _check_issuable(tpl: CouponTemplate, now: dt.datetime) -> None:
    if not tpl.active:
        raise SoldOut(_l("This coupon is no longer offered."))
    if not tpl.valid_days and (tpl.valid_until is None or tpl.valid_until <= now):
        raise SoldOut(_l("This coupon is no longer offered."))


def _bump_counter(template_id: int, member_id: int, period: str, limit: int) -> None:
    """Count one more coupon in this period, or LimitReached (one atomic upsert)."""
    stmt = pg_insert(CouponCounter).values(
        brand_id=require_brand_id(),
        template_id=template_id,
        member_id=member_id,
        period=period,
        n=1,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["brand_id", "template_id", "member_id", "period"],
        set_={"n": CouponCounter.n + 1},
        where=CouponCounter.n < limit,
    ).returning(CouponCounter.n)
    if db.session.execute(stmt).scalar() is None:
        raise LimitReached(_l("You already have as many of these coupons as allowed."))


def check_limits(tpl: CouponTemplate, member_id: int, day: dt.date) -> None:
    """Count a coupon against the member's overall and daily limits of the template."""
    if tpl.per_member_limit:
        _bump_counter(tpl.id, member_id, "all", tpl.per_member_limit)
    if tpl.per_day_limit:
        _bump_counter(tpl.id, member_id, day.isoformat(), tpl.per_day_limit)


def take_stock(tpl_id: int, n: int, *, reason: str, key: str) -> None:
    """Take ``n`` from the template's stock and record it, or SoldOut."""
    got = db.session.execute(
        update(CouponTemplate)
        .where(
            CouponTemplate.id == tpl_id,
            (CouponTemplate.stock.is_(None)) | (CouponTemplate.issued + n <= CouponTemplate.stock),
        )
        .values(issued=CouponTemplate.issued + n)
        .returning(CouponTemplate.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if got is None:
        raise SoldOut(_l("Sorry, this coupon is all gone."))
    db.session.execute(
        insert(CouponStockEntry).values(
            brand_id=require_brand_id(),
            template_id=tpl_id,
            delta_issued=n,
            reason=reason,
            idempotency_key=key,
            created_at=utcnow(),
        )
    )


def coupon_by_key(key: str) -> Coupon | None:
    return db.session.execute(
        select(Coupon).where(Coupon.idempotency_key == key)
    ).scalar_one_or_none()


def _replay(existing: Coupon, template_id: int, member_id: int) -> Coupon:
    if existing.template_id != template_id or existing.member_id != member_id:
        raise Conflict(_l("This idempotency key was already used for another coupon."), field="key")
    return existing


def issue(
    *,
    template_id: int,
    member_id: int,
    source: str,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> Coupon:
    """Give one coupon to a member: limits, stock, code (and a partner code), in a savepoint."""
    key = check_key(idempotency_key)
    if source not in SOURCES:
        raise ValidationError(_l("Unknown source."), field="source")
    now = now or utcnow()
    existing = coupon_by_key(key)
    if existing is not None:
        return _replay(existing, template_id, member_id)
    try:
        with db.session.begin_nested():
            return _issue_one(template_id, member_id, source, key, now)
    except IntegrityError:
        existing = coupon_by_key(key)
        if existing is None:
            raise
        return _replay(existing, template_id, member_id)


def _issue_one(template_id: int, member_id: int, source: str, key: str, now) -> Coupon:
    tpl = get_template(template_id)
    _check_issuable(tpl, now)
    member = db.session.execute(select(Member).where(Member.id == member_id)).scalar_one_or_none()
    if member is None or member.status != ACTIVE:
        raise NotFound(_l("Unknown member."), field="member_id")
    tz = brand_tz()
    day = local_day(now, tz)
    check_limits(tpl, member_id, day)
    take_stock(tpl.id, 1, reason=source, key=f"issue:{key}")
    valid_from, valid_until = validity(tpl, issued_at=now, tz=tz)
    coupon = Coupon(
        template_id=tpl.id,
        member_id=member_id,
        code=codes.new_code(),
        status=AVAILABLE,
        source=source,
        idempotency_key=key,
        issued_at=now,
        issued_day=day,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    db.session.add(coupon)
    db.session.flush()
    if tpl.kind == THIRD_PARTY:
        coupon.partner_code = _assign_partner_code(tpl.id, coupon.id, now)
        db.session.flush()
    return coupon


def _assign_partner_code(template_id: int, coupon_id: int, now) -> str:
    """Hand out one free partner code; SKIP LOCKED lets concurrent claims take different ones."""
    row = db.session.execute(
        text(
            "UPDATE coupon_partner_code SET coupon_id = :cid, assigned_at = :now"
            " WHERE id = (SELECT id FROM coupon_partner_code WHERE brand_id = :b"
            " AND template_id = :t AND coupon_id IS NULL ORDER BY id LIMIT 1"
            " FOR UPDATE SKIP LOCKED) RETURNING code"
        ),
        {"cid": coupon_id, "now": now, "b": require_brand_id(), "t": template_id},
    ).scalar()
    if row is None:  # stock counts imported codes, so this means they ran out
        raise SoldOut(_l("Sorry, this coupon is all gone."))
    return row


def import_partner_codes(*, template_id: int, lines: list[str], idempotency_key: str) -> int:
    """Add a partner's codes (one per line; duplicates ignored) and raise the stock by as many."""
    key = check_key(idempotency_key)
    tpl = get_template(template_id)
    if tpl.kind != THIRD_PARTY:
        raise ValidationError(_l("Only third-party coupons take imported codes."), field="file")
    clean = sorted({c.strip() for c in lines if c.strip()})
    if not clean:
        raise ValidationError(_l("The file holds no codes."), field="file")
    if any(len(c) > 120 for c in clean):
        raise ValidationError(_l("A code is longer than 120 characters."), field="file")
    done = db.session.execute(
        select(CouponStockEntry.id).where(CouponStockEntry.idempotency_key == f"import:{key}")
    ).scalar()
    if done is not None:
        return 0
    bid = require_brand_id()
    added = db.session.execute(
        pg_insert(PartnerCode)
        .values([{"brand_id": bid, "template_id": tpl.id, "code": c} for c in clean])
        .on_conflict_do_nothing()
        .returning(PartnerCode.id)
    ).all()
    n = len(added)
    db.session.execute(
        update(CouponTemplate)
        .where(CouponTemplate.id == tpl.id)
        .values(stock=func.coalesce(CouponTemplate.stock, 0) + n)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        insert(CouponStockEntry).values(
            brand_id=bid,
            template_id=tpl.id,
            delta_stock=n,
            reason="import",
            idempotency_key=f"import:{key}",
            created_at=utcnow(),
        )
    )
    db.session.refresh(tpl)
    return n


# --- bulk ------------------------------------------------------------------------------------


def _target_sql(target: dict) -> tuple[str, dict]:
    """WHERE clause (on member alias m) and params choosing the members of a target."""
    where = ["m.brand_id = :b", "m.status = 'active'"]
    params: dict = {}
    if target.get("member_ids") is not None:
        ids = [int(i) for i in target["member_ids"]]
        where.append("m.id = ANY(:ids)")
        params["ids"] = ids
    if target.get("tier_ids"):
        where.append("m.tier_id = ANY(:tiers)")
        params["tiers"] = [int(i) for i in target["tier_ids"]]
    if target.get("store_ids"):
        where.append("m.store_id = ANY(:stores)")
        params["stores"] = [int(i) for i in target["store_ids"]]
    if target.get("tag_ids"):
        where.append(
            "EXISTS (SELECT 1 FROM member_tag t WHERE t.member_id = m.id AND t.tag_id = ANY(:tags))"
        )
        params["tags"] = [int(i) for i in target["tag_ids"]]
    return " AND ".join(where), params


def count_target(*, target: dict) -> CappedCount:
    """How many active members a target reaches (the console's preview), counted up to
    ``core.paging.CAP`` and shown as "1,000+" beyond: a preview never counts a whole brand."""
    where, params = _target_sql(target)
    n = db.session.execute(
        text(
            f"SELECT count(*) FROM (SELECT 1 FROM member m WHERE {where} LIMIT :cap) s"  # noqa: S608 - fixed clauses
        ),
        {"b": require_brand_id(), "cap": CAP + 1, **params},
    ).scalar_one()
    return CappedCount(n=min(n, CAP), more=n > CAP)


def bulk_issue(
    *, template_id: int, target: dict, idempotency_key: str, now: dt.datetime | None = None
) -> IssueBatch:
    """Issue one coupon to every member of the target, all or none, in one statement.

    ``target``: {"member_ids": [...]} for a list, or a segment {"tier_ids", "store_ids",
    "tag_ids"} (empty: every active member). Limits per member do not apply to pushes.
    """
    key = check_key(idempotency_key)
    now = now or utcnow()
    bid = require_brand_id()
    batch = db.session.execute(
        select(IssueBatch).where(IssueBatch.idempotency_key == key)
    ).scalar_one_or_none()
    if batch is not None:
        return batch
    tpl = db.session.execute(
        select(CouponTemplate).where(CouponTemplate.id == template_id).with_for_update()
    ).scalar_one_or_none()
    if tpl is None:
        raise NotFound(_l("No such coupon."), field="template_id")
    if tpl.kind == THIRD_PARTY:
        raise ValidationError(_l("Third-party coupons are handed out one by one."))
    _check_issuable(tpl, now)
    batch = IssueBatch(template_id=tpl.id, target=target, idempotency_key=key, created_at=now)
    db.session.add(batch)
    db.session.flush()
    tz = brand_tz()
    valid_from, valid_until = validity(tpl, issued_at=now, tz=tz)
    where, params = _target_sql(target)
    member_ids = (
        db.session.execute(
            text(f"SELECT m.id FROM member m WHERE {where}"),  # noqa: S608 - fixed clauses
            {"b": bid, **params},
        )
        .scalars()
        .all()
    )
    n = len(member_ids)
    with db.session.begin_nested():
        if n:
            take_stock(tpl.id, n, reason="bulk", key=f"bulk:{key}")
            _copy_coupons(
                member_ids,
                fixed=(
                    f"\tavailable\tbulk\t{now.isoformat()}\t{local_day(now, tz).isoformat()}"
                    f"\t{valid_from.isoformat()}\t{valid_until.isoformat()}\t{batch.id}\n"
                ),
                prefix=f"{bid}\t{tpl.id}\t",
            )
    batch.requested = n
    batch.issued = n
    batch.status = "done"
    batch.finished_at = utcnow()
    db.session.flush()
    return batch


COPY_CHUNK = 50_000


def _copy_coupons(member_ids: list[int], *, fixed: str, prefix: str) -> None:
    """Stream the rows into ``coupon`` with COPY on the session's own connection (and so in
    its transaction): codes are made in chunks while PostgreSQL writes the previous ones."""
    conn = db.session.connection().connection.driver_connection
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY coupon (brand_id, template_id, member_id, code, status, source, issued_at,"
            " issued_day, valid_from, valid_until, batch_id) FROM STDIN"
        ) as copy,
    ):
        for start in range(0, len(member_ids), COPY_CHUNK):
            ids = member_ids[start : start + COPY_CHUNK]
            made = codes.bulk_codes(len(ids))
            copy.write(
                "".join(
                    f"{prefix}{mid}\t{code}{fixed}" for mid, code in zip(ids, made, strict=True)
                )
            )


def issue_many(
    *,
    template_id: int,
    member_keys: dict[int, str],
    source: str,
    now: dt.datetime | None = None,
) -> dict[int, int]:
    """Give one coupon to each member of ``member_keys`` (member id -> idempotency key) in a
    few set-based statements; a key used before returns its coupon instead of a new one.

    For pushes: the per-member limits do not apply, the stock is taken once for the new
    coupons. Returns member id -> coupon id for every member asked for.
    """
    if source not in SOURCES:
        raise ValidationError(_l("Unknown source."), field="source")
    for k in member_keys.values():
        check_key(k)
    if not member_keys:
        return {}
    now = now or utcnow()
    bid = require_brand_id()
    by_key = {k: m for m, k in member_keys.items()}
    found = dict(
        db.session.execute(
            select(Coupon.idempotency_key, Coupon.id).where(
                Coupon.idempotency_key.in_(list(by_key))
            )
        ).all()
    )
    out = {by_key[k]: cid for k, cid in found.items()}
    new = sorted((m, k) for m, k in member_keys.items() if k not in found)
    if not new:
        return out
    tpl = get_template(template_id)
    if tpl.kind == THIRD_PARTY:
        raise ValidationError(_l("Third-party coupons are handed out one by one."))
    _check_issuable(tpl, now)
    tz = brand_tz()
    valid_from, valid_until = validity(tpl, issued_at=now, tz=tz)
    day = local_day(now, tz)
    with db.session.begin_nested():
        take_stock(tpl.id, len(new), reason=source, key=f"many:{new[0][1]}"[:MAX_KEY])
        made = codes.bulk_codes(len(new))
        rows = db.session.execute(
            insert(Coupon)
            .values(
                [
                    {
                        "brand_id": bid,
                        "template_id": tpl.id,
                        "member_id": m,
                        "code": code,
                        "status": AVAILABLE,
                        "source": source,
                        "idempotency_key": k,
                        "issued_at": now,
                        "issued_day": day,
                        "valid_from": valid_from,
                        "valid_until": valid_until,
                    }
                    for (m, k), code in zip(new, made, strict=True)
                ]
            )
            .returning(Coupon.member_id, Coupon.id)
        ).all()
    out.update(dict(rows))
    return out
