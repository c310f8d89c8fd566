"""Coupon jobs: expiry, "expiring soon" reminders, and the welcome coupon.

All periodic jobs are idempotent: they only move rows still in the state they look for.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask_babel import ngettext
from sqlalchemy import select, text

from core.db import db, utcnow
from core.jobs import enqueue, job
from coupons.errors import LimitReached, SoldOut
from coupons.models import CouponSettings, CouponTemplate
from wechat import brand_settings, notice

log = logging.getLogger(__name__)
EXPIRE_BATCH = 50_000


@job("low", timeout=600, retries=3)
def expire_due() -> int:
    """Mark coupons past their validity as expired (all brands, one batch per run)."""
    now = utcnow()
    n = db.session.execute(
        text(
            "UPDATE coupon SET status = 'expired', expired_at = :now WHERE id IN ("
            " SELECT id FROM coupon WHERE status = 'available' AND valid_until <= :now"
            " LIMIT :n FOR UPDATE SKIP LOCKED)"
        ),
        {"now": now, "n": EXPIRE_BATCH},
    ).rowcount
    if n:
        log.info("expired %d coupons", n)
    return n


@job("low", timeout=600, retries=3)
def remind_expiring() -> int:
    """Pick coupons expiring within each brand's reminder window and queue one message per
    member; a coupon is picked once (``reminded_at``)."""
    now = utcnow()
    settings = db.session.execute(
        select(CouponSettings)
        .where(CouponSettings.remind_template_id != "", CouponSettings.remind_days > 0)
        .execution_options(all_brands=True)
    ).scalars()
    queued = 0
    for s in list(settings):
        rows = db.session.execute(
            text(
                "UPDATE coupon SET reminded_at = :now WHERE id IN ("
                " SELECT id FROM coupon WHERE brand_id = :b AND status = 'available'"
                " AND reminded_at IS NULL AND valid_until > :now AND valid_until <= :until"
                " LIMIT 10000 FOR UPDATE SKIP LOCKED) RETURNING member_id, id"
            ),
            {"now": now, "b": s.brand_id, "until": now + dt.timedelta(days=s.remind_days)},
        ).all()
        by_member: dict[int, list[int]] = {}
        for member_id, coupon_id in rows:
            by_member.setdefault(member_id, []).append(coupon_id)
        for member_id, ids in by_member.items():
            enqueue(
                send_reminder,
                member_id,
                sorted(ids),
                brand_id=s.brand_id,
                dedupe_key=f"coupon-remind:{s.brand_id}:{member_id}:{min(ids)}",
            )
            queued += 1
    return queued


@job("default", timeout=60, retries=5)
def send_reminder(member_id: int, coupon_ids: list[int]) -> str:
    """Send one member the "coupons expiring soon" template message."""
    from coupons.models import Coupon
    from members.models import MemberIdentity
    from wechat import gateway

    s = db.session.execute(select(CouponSettings)).scalar_one_or_none()
    if s is None or not s.remind_template_id:
        return "no-template"
    openid = db.session.execute(
        select(MemberIdentity.value)
        .where(MemberIdentity.member_id == member_id, MemberIdentity.kind == "oa_openid")
        .order_by(MemberIdentity.id)
        .limit(1)
    ).scalar()
    if openid is None:
        return "no-openid"
    rows = db.session.execute(
        select(Coupon, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.id.in_(coupon_ids), Coupon.status == "available")
        .order_by(Coupon.valid_until)
    ).all()
    if not rows:
        return "nothing-left"
    first, tpl = rows[0]
    tz = db.session.execute(text("SELECT timezone FROM brand WHERE id = :b"), {"b": s.brand_id})
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz.scalar() or "Asia/Shanghai")
    # WeChat shows only the keywords: the coupon, when it expires, how many are expiring.
    data = notice.keywords(
        tpl.name,
        first.valid_until.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        ngettext("%(num)d coupon", "%(num)d coupons", len(rows)),
    )
    gateway.send_template(
        s.brand_id,
        openid,
        s.remind_template_id,
        data,
        client_msg_id=f"coupon-remind-{member_id}-{min(coupon_ids)}",
    )
    return "sent"


def _welcome_template() -> int | None:
    return db.session.execute(select(CouponSettings.welcome_template_id)).scalar_one_or_none()


brand_settings.watch(CouponSettings)


def welcome_coupon(member_id: int) -> None:
    """Members' welcome-gift hook: the brand's welcome coupon, once per member."""
    from coupons.issuance import issue

    template_id = brand_settings.get("welcome-coupon", _welcome_template)
    if template_id is None:
        return
    try:
        issue(
            template_id=template_id,
            member_id=member_id,
            source="welcome",
            idempotency_key=f"welcome:{member_id}",
        )
    except (SoldOut, LimitReached):
        # A welcome gift that ran out must not stop the member's activation.
        log.info("welcome coupon unavailable for member %s", member_id)
