"""Tracking a push after it left: delivery (TEMPLATESENDJOBFINISH), opens (signed links),
claims and redemptions (the coupons' signals), the rollup counters the funnel reads, and
the platform tags (received, opened, redeemed) written back to members for later segments.

Every change is one conditional update of the recipient (``... WHERE delivered_at IS
NULL``) whose returned rows raise the counters in the same transaction: a report delivered
twice, a link opened ten times, count once.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import BigInteger, bindparam, text, update

from campaigns.models.push import CampaignRecipient
from core.db import db, utcnow
from core.redis import get_redis, key
from core.tenancy import require_brand_id, use_brand
from coupons import signals as coupon_signals
from members.tiers_tags import tags as member_tags
from shop import signals as shop_signals
from shop.models import Order
from wechat import router

DIMS = ("", "store", "city", "tier")
NOTE_TTL = 24 * 3600

_BUMP = text(
    "INSERT INTO campaign_counter (campaign_id, dim, dim_key, metric, grp, brand_id, n)"
    " SELECT r.campaign_id, d.dim, d.k, :metric, r.holdout, r.brand_id, sum(r.v)"
    " FROM (SELECT campaign_id, brand_id, holdout, store_id, city, tier_id,"
    "   CASE WHEN :col = 'revenue_fen' THEN revenue_fen"
    "        WHEN :col = 'discount_fen' THEN discount_fen"
    "        WHEN :col = 'purchase_fen' THEN purchase_fen"
    "        WHEN :col = 'amount' THEN CAST(:amount AS bigint) ELSE 1 END AS v"
    "   FROM campaign_recipient WHERE campaign_id = :cid"
    "   AND member_id = ANY(CAST(:ids AS bigint[]))) r,"
    " LATERAL (VALUES ('', ''), ('store', coalesce(r.store_id::text, '')),"
    "   ('city', coalesce(r.city, '')), ('tier', coalesce(r.tier_id::text, ''))) d(dim, k)"
    " GROUP BY r.campaign_id, r.brand_id, d.dim, d.k, r.holdout"
    " ON CONFLICT (campaign_id, dim, dim_key, metric, grp)"
    " DO UPDATE SET n = campaign_counter.n + excluded.n"
).bindparams(bindparam("ids", type_=None), bindparam("cid", type_=BigInteger))


def bump(
    campaign_id: int,
    metric: str,
    member_ids: list[int],
    *,
    value: str | None = None,
    amount: int | None = None,
) -> None:
    """Raise ``metric`` of the campaign by these recipients (or by the sum of their ``value``
    column: revenue_fen, discount_fen, purchase_fen; or by ``amount`` each), overall and by
    store, city and tier."""
    if not member_ids:
        return
    db.session.execute(
        _BUMP,
        {
            "cid": campaign_id,
            "metric": metric,
            "col": "amount" if amount is not None else (value or ""),
            "amount": amount or 0,
            "ids": list(member_ids),
        },
    )


def unbump(campaign_id: int, metric: str, member_ids: list[int], *, value: str | None = None):
    """Lower a metric again (a redemption reversed): the same rows, negated."""
    if not member_ids:
        return
    db.session.execute(
        text(
            "UPDATE campaign_counter c SET n = c.n - s.v FROM ("
            " SELECT d.dim, d.k, r.holdout AS grp, sum(CASE WHEN :col = 'revenue_fen'"
            "  THEN r.revenue_fen WHEN :col = 'discount_fen' THEN r.discount_fen ELSE 1 END) v"
            " FROM campaign_recipient r, LATERAL (VALUES ('', ''),"
            "  ('store', coalesce(r.store_id::text, '')), ('city', coalesce(r.city, '')),"
            "  ('tier', coalesce(r.tier_id::text, ''))) d(dim, k)"
            " WHERE r.campaign_id = (SELECT CAST(:cid AS bigint))"
            " AND r.member_id = ANY(CAST(:ids AS bigint[]))"
            " GROUP BY d.dim, d.k, r.holdout) s"
            " WHERE c.campaign_id = :cid AND c.metric = :metric AND c.dim = s.dim"
            " AND c.dim_key = s.k AND c.grp = s.grp"
        ),
        {"cid": campaign_id, "metric": metric, "col": value or "", "ids": list(member_ids)},
    )


# --- delivery ---------------------------------------------------------------------------


@router.on("event", "templatesendjobfinish", priority=60)
def on_template_finished(ctx: router.Context) -> None:
    """WeChat's report of a template message: delivered (``success``) or not."""
    raw = ctx.raw or {}
    msgid = raw.get("MsgID") or raw.get("MsgId")
    status = str(raw.get("Status") or "")
    try:
        msgid = int(msgid)
    except (TypeError, ValueError):
        return
    if status != "success":
        return
    at = dt.datetime.fromtimestamp(ctx.create_time, dt.UTC)
    # WeChat may report before the send's outcome is committed: the note lets the fan-out
    # apply it right after its commit (noted first, so one of the two always sees the other)
    note_delivery(msgid=msgid, at=at)
    record_delivery(msgid=msgid, at=at)


def _noted_key() -> str:
    return key(require_brand_id(), "campaign", "delivered")


def note_delivery(*, msgid: int, at: dt.datetime) -> None:
    r = get_redis()
    k = _noted_key()
    with r.pipeline(transaction=False) as pipe:
        pipe.hset(k, str(msgid), int(at.timestamp()))
        pipe.expire(k, NOTE_TTL)
        pipe.execute()


def apply_noted_deliveries(msgids: list[int]) -> int:
    """Mark delivered the recipients of these msgids that WeChat reported early."""
    if not msgids:
        return 0
    r = get_redis()
    k = _noted_key()
    found = r.hmget(k, [str(m) for m in msgids])
    done = 0
    for msgid, at in zip(msgids, found, strict=True):
        if at is None:
            continue
        if record_delivery(msgid=msgid, at=dt.datetime.fromtimestamp(int(at), dt.UTC)):
            done += 1
        r.hdel(k, str(msgid))
    return done


def record_delivery(*, msgid: int, at: dt.datetime) -> bool:
    """Mark the recipient of template message ``msgid`` delivered (once)."""
    row = db.session.execute(
        update(CampaignRecipient)
        .where(
            CampaignRecipient.brand_id == require_brand_id(),
            CampaignRecipient.msgid == msgid,
            CampaignRecipient.delivered_at.is_(None),
        )
        .values(delivered_at=at)
        .returning(CampaignRecipient.campaign_id, CampaignRecipient.member_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    bump(row.campaign_id, "delivered", [row.member_id])
    return True


# --- opens through signed links ---------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="campaign-link")


def link_token(*, brand_id: int, campaign_id: int, member_id: int) -> str:
    """The signed token of one recipient's tracked link (no member data in clear)."""
    return _serializer().dumps([brand_id, campaign_id, member_id])


def read_token(token: str) -> tuple[int, int, int] | None:
    """(brand_id, campaign_id, member_id) of a genuine token, None for a forged one."""
    try:
        value = _serializer().loads(token)
    except BadSignature:
        return None
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) for v in value)):
        return None
    return value[0], value[1], value[2]


def record_open(*, campaign_id: int, member_id: int, now: dt.datetime | None = None) -> bool:
    """The recipient opened the campaign's link: counted once, tagged ``campaign_opened``."""
    row = db.session.execute(
        update(CampaignRecipient)
        .where(
            CampaignRecipient.brand_id == require_brand_id(),
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.member_id == member_id,
            CampaignRecipient.opened_at.is_(None),
            CampaignRecipient.state == "sent",
        )
        .values(opened_at=now or utcnow())
        .returning(CampaignRecipient.member_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    bump(campaign_id, "opened", [member_id])
    member_tags.apply_system_tag_many(
        member_ids=[member_id], code="campaign_opened", reason="campaign_opened"
    )
    return True


# --- claims and redemptions -------------------------------------------------------------


def record_claims(campaign_id: int, coupons: dict[int, int], *, now: dt.datetime) -> None:
    """Coupons of the campaign were added to these members' accounts (member -> coupon)."""
    if not coupons:
        return
    ids = list(coupons)
    claimed = (
        db.session.execute(
            text(
                "UPDATE campaign_recipient r SET coupon_id = c.coupon_id, claimed_at = :now"
                " FROM unnest(CAST(:mids AS bigint[]), CAST(:cids AS bigint[]))"
                " AS c(member_id, coupon_id)"
                " WHERE r.campaign_id = (SELECT CAST(:cid AS bigint)) AND r.member_id = c.member_id"
                " AND r.claimed_at IS NULL RETURNING r.member_id"
            ),
            {"now": now, "mids": ids, "cids": [coupons[m] for m in ids], "cid": campaign_id},
        )
        .scalars()
        .all()
    )
    bump(campaign_id, "claimed", claimed)


@coupon_signals.coupon_redeemed.connect
def on_redeemed(brand_id, *, coupon_id, order_amount_fen, discount_fen, **_ignored) -> None:
    """A campaign's coupon was redeemed: attribute the order to the campaign."""
    with use_brand(brand_id):
        row = db.session.execute(
            update(CampaignRecipient)
            .where(
                CampaignRecipient.brand_id == brand_id,
                CampaignRecipient.coupon_id == coupon_id,
                CampaignRecipient.redeemed_at.is_(None),
            )
            .values(redeemed_at=utcnow(), revenue_fen=order_amount_fen, discount_fen=discount_fen)
            .returning(CampaignRecipient.campaign_id, CampaignRecipient.member_id)
            .execution_options(synchronize_session=False)
        ).first()
        if row is None:
            return
        bump(row.campaign_id, "redeemed", [row.member_id])
        bump(row.campaign_id, "revenue_fen", [row.member_id], value="revenue_fen")
        bump(row.campaign_id, "discount_fen", [row.member_id], value="discount_fen")
        member_tags.apply_system_tag_many(
            member_ids=[row.member_id], code="campaign_redeemed", reason="campaign_redeemed"
        )


@coupon_signals.redemption_reversed.connect
def on_reversed(brand_id, *, coupon_id, **_ignored) -> None:
    """A redemption was reversed (refund): the campaign loses the order again."""
    with use_brand(brand_id):
        row = db.session.execute(
            text(
                "SELECT campaign_id, member_id FROM campaign_recipient WHERE brand_id = :b"
                " AND coupon_id = :c AND redeemed_at IS NOT NULL"
            ),
            {"b": brand_id, "c": coupon_id},
        ).first()
        if row is None:
            return
        unbump(row.campaign_id, "redeemed", [row.member_id])
        unbump(row.campaign_id, "revenue_fen", [row.member_id], value="revenue_fen")
        unbump(row.campaign_id, "discount_fen", [row.member_id], value="discount_fen")
        db.session.execute(
            update(CampaignRecipient)
            .where(
                CampaignRecipient.campaign_id == row.campaign_id,
                CampaignRecipient.member_id == row.member_id,
            )
            .values(redeemed_at=None, revenue_fen=0, discount_fen=0)
            .execution_options(synchronize_session=False)
        )


# --- purchases of targets and holdouts (uplift) -----------------------------------------

ATTRIBUTION_DAYS = 14


@shop_signals.order_paid.connect
def on_order_paid(brand_id, *, order_id, member_id, **_ignored) -> None:
    """A member paid an order: it counts for every campaign that targeted or held them out in
    the last ``ATTRIBUTION_DAYS`` days, for the comparison with the holdout group."""
    if member_id is None:
        return
    with use_brand(brand_id):
        order = db.session.get(Order, order_id)  # the paying request has it loaded
        amount = order.pay_fen if order is not None else 0
        if not amount:
            return
        since = utcnow() - dt.timedelta(days=ATTRIBUTION_DAYS)
        params = {"amt": int(amount), "b": brand_id, "m": member_id, "since": since}
        scope = (
            " FROM campaign c WHERE r.brand_id = :b AND r.member_id = :m"
            " AND c.id = r.campaign_id AND c.started_at >= :since"
        )
        first = (
            db.session.execute(
                text(
                    f"UPDATE campaign_recipient r SET purchased = true{scope}"  # noqa: S608
                    " AND NOT r.purchased RETURNING r.campaign_id"
                ),
                params,
            )
            .scalars()
            .all()
        )
        for campaign_id in first:
            bump(campaign_id, "purchased", [member_id])
        every = (
            db.session.execute(
                text(
                    f"UPDATE campaign_recipient r SET purchase_fen = r.purchase_fen + :amt{scope}"  # noqa: S608
                    " RETURNING r.campaign_id"
                ),
                params,
            )
            .scalars()
            .all()
        )
        for campaign_id in every:
            bump(campaign_id, "purchase_fen", [member_id], amount=int(amount))
