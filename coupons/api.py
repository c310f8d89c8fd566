"""Coupons and the points mall in the mini-program API (``/api/mp/<brand_slug>/coupons...``,
``.../mall...``, documented in ``/api/mp/openapi.json``): the member's coupons, claiming,
passing one to a friend and taking it, and exchanging points for coupons."""

from __future__ import annotations

from flask import Blueprint, Flask

from core.api import api_operation
from core.db import db
from coupons import claims, queries, services
from coupons.errors import CouponUnavailable
from coupons.models import Coupon, CouponTemplate
from coupons.schemas import (
    ActionRequest,
    CouponList,
    CouponOut,
    CouponsQuery,
    ExchangeOut,
    MallItemOut,
    MallList,
    ShareInfo,
    ShareOut,
    TemplateOut,
)
from members import api as mp
from points import queries as points

bp = mp.mp_blueprint(Blueprint("coupons_mp", __name__, url_prefix="/api/mp/<brand_slug>"))
PREFIX = mp.PREFIX


def _coupon(c: Coupon, t: CouponTemplate) -> CouponOut:
    return CouponOut(
        id=c.id,
        code=c.code,
        status=c.status,
        source=c.source,
        valid_from=c.valid_from,
        valid_until=c.valid_until,
        redeemed_at=c.redeemed_at,
        template=TemplateOut(
            id=t.id,
            name=t.name,
            kind=t.kind,
            description=t.description or "",
            value_fen=t.value_fen,
            threshold_fen=t.threshold_fen,
            percent_off=t.percent_off,
            cap_fen=t.cap_fen,
            gift_name=t.gift_name or "",
            store_ids=[int(s) for s in t.store_ids or ()],
            shareable=t.shareable,
        ),
    )


def _owned(member_id: int, coupon_id: int) -> CouponOut:
    row = queries.member_coupon(member_id=member_id, coupon_id=coupon_id)
    if row is None:
        raise CouponUnavailable()
    return _coupon(*row)


@bp.get("/coupons")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/coupons",
    summary="The member's coupons of one tab, soonest expiry first",
    query=CouponsQuery,
    response=CouponList,
    errors=(403,),
)
def coupons(query: CouponsQuery):
    rows = queries.member_coupons(member_id=mp.current_member().id, tab=query.tab)
    return CouponList(items=[_coupon(c, t) for c, t in rows])


@bp.get("/coupons/<int:coupon_id>")
@api_operation(
    "mp", "get", f"{PREFIX}/coupons/{{coupon_id}}", summary="One of the member's coupons",
    response=CouponOut, errors=(403,),
)  # fmt: skip
def coupon(coupon_id: int):
    return _owned(mp.current_member().id, coupon_id)


@bp.post("/coupons/claim/<int:template_id>")
@api_operation(
    "mp",
    "post",
    f"{PREFIX}/coupons/claim/{{template_id}}",
    summary="Claim a coupon of a template (once per idempotency key)",
    body=ActionRequest,
    response=CouponOut,
    status=201,
    errors=(403, 409),
)
def claim(template_id: int, body: ActionRequest):
    member_id = mp.current_member().id
    c = services.claim(
        template_id=template_id,
        member_id=member_id,
        idempotency_key=f"mp{member_id}:{body.idempotency_key}",
    )
    out = _owned(member_id, c.id)
    db.session.commit()
    return out, 201


@bp.post("/coupons/<int:coupon_id>/share")
@api_operation(
    "mp",
    "post",
    f"{PREFIX}/coupons/{{coupon_id}}/share",
    summary="Offer the coupon to a friend; asking again gives the same token",
    response=ShareOut,
    errors=(403, 409),
)
def share(coupon_id: int):
    s = services.create_share(coupon_id=coupon_id, member_id=mp.current_member().id)
    out = ShareOut(token=s.token, status=s.status)
    db.session.commit()
    return out


@bp.get("/coupons/share/<token>")
@api_operation(
    "mp", "get", f"{PREFIX}/coupons/share/{{token}}", summary="A coupon a friend offers",
    response=ShareInfo, auth=False,
)  # fmt: skip
def share_info(token: str):
    s = claims.share_by_token(token)
    row = queries.member_coupon(member_id=s.sharer_id, coupon_id=s.coupon_id)
    if row is None:
        raise CouponUnavailable()
    c, t = row
    return ShareInfo(status=s.status, coupon_name=t.name, valid_until=c.valid_until)


@bp.post("/coupons/share/<token>/take")
@api_operation(
    "mp",
    "post",
    f"{PREFIX}/coupons/share/{{token}}/take",
    summary="Take a coupon a friend offers (becoming a member if new)",
    response=CouponOut,
    errors=(409,),
)
def take(token: str):
    session = mp.current_session()
    c = services.claim_share(token=token, openid=session["openid"], kind="mp_openid")
    out = _owned(c.member_id, c.id)
    db.session.commit()
    return out


@bp.get("/mall")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/mall",
    summary="The points mall: what this member may exchange, and their balance",
    response=MallList,
    errors=(403,),
)
def mall():
    member_id = mp.current_member().id
    items = [
        MallItemOut(
            id=i.id,
            title=i.title,
            price_points=i.price_points,
            stock_left=None if i.stock is None else max(0, i.stock - i.sold),
            per_member_limit=i.per_member_limit,
            template_id=i.template_id,
        )
        for i in queries.offered_mall_items(member_id=member_id)
    ]
    return MallList(items=items, balance=points.balance(member_id).balance)


@bp.post("/mall/<int:item_id>/exchange")
@api_operation(
    "mp",
    "post",
    f"{PREFIX}/mall/{{item_id}}/exchange",
    summary="Exchange points for the item's coupon (once per idempotency key)",
    body=ActionRequest,
    response=ExchangeOut,
    status=201,
    errors=(403, 409),
)
def exchange(item_id: int, body: ActionRequest):
    member_id = mp.current_member().id
    done = services.exchange(
        item_id=item_id,
        member_id=member_id,
        idempotency_key=f"mp{member_id}:{body.idempotency_key}",
    )
    out = ExchangeOut(
        order_id=done.order_id, coupon_id=done.coupon_id, points=done.points, title=done.title
    )
    db.session.commit()
    return out, 201


def init_app(app: Flask) -> None:
    mp.init_app(app, bp)
