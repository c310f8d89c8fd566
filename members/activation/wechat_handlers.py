"""Router handlers: store and guide QR scans, and the member-card events.

They run inside the callback (5 s budget): a few indexed queries and inserts, no WeChat
call; the card activation itself is a job.
"""

from __future__ import annotations

from flask import current_app, url_for
from flask_babel import gettext as _

from core.db import db
from members.activation import card, qrcodes
from members.activation.services import record_scan
from members.models import EV_FOLLOW, EV_SCAN
from org.models import Brand
from wechat import brand_cache, router

PRIORITY = 50  # before the chatbot's greeting (1000): the activation link is the answer


def _link(brand_id: int, endpoint: str) -> str:
    brand = brand_cache.cached(brand_id) or db.session.get(Brand, brand_id)
    return current_app.config["PUBLIC_URL"] + url_for(endpoint, brand_slug=brand.slug)


@router.on("event", "subscribe", priority=PRIORITY)
@router.on("event", "SCAN", priority=PRIORITY)
def on_qr_scan(ctx: router.Context) -> router.Reply | None:
    """A store or guide code: count it, record a member's touch, answer with the card link."""
    kind = EV_FOLLOW if ctx.event_lower == "subscribe" else EV_SCAN
    qr, member_id = qrcodes.count_scan(scene=ctx.scene, kind=kind, openid=ctx.openid)
    if qr is None:
        return None  # a plain follow, another brand's scene or an unknown one
    if member_id is not None:
        record_scan(
            member_id=member_id,
            store_id=qr.store_id,
            guide_id=qr.staff_id,
            source="oa",
            scene=qr.scene,
        )
        return router.NewsReply(
            title=_("Welcome back! Open your member card"),
            description=_("Your card, points and coupons are one tap away."),
            url=_link(ctx.brand_id, "members_center.card"),
        )
    return router.NewsReply(
        title=_("Activate your member card"),
        description=_("Two taps: confirm your phone number and the card is yours."),
        url=_link(ctx.brand_id, "members_activate.start"),
    )


@router.on("event", "user_get_card", priority=PRIORITY)
def on_user_get_card(ctx: router.Context) -> None:
    """The consumer took the brand's member card: keep its code for the activation job."""
    card_id, code = ctx.raw.get("CardId"), ctx.raw.get("UserCardCode")
    if card_id and code:
        card.record_card_code(openid=ctx.openid, card_id=card_id, code=code)
    return None


@router.on("event", "submit_membercard_user_info", priority=PRIORITY)
def on_card_form(ctx: router.Context) -> None:
    """WeChat's activation form was submitted: activate (from a job) like the H5 page."""
    card_id, code = ctx.raw.get("CardId"), ctx.raw.get("UserCardCode")
    if not (card_id and code):
        return None
    ticket = ctx.raw.get("ActivateTicket")
    if ticket:
        card.native_activate_job.enqueue(
            ctx.openid, card_id, code, ticket, dedupe_key=f"card-form:{ctx.brand_id}:{ticket[:120]}"
        )
    else:
        card.record_card_code(openid=ctx.openid, card_id=card_id, code=code)
        card.native_activate_by_code_job.enqueue(
            ctx.openid, card_id, code, dedupe_key=f"card-form:{ctx.brand_id}:{card_id}:{code}"
        )
    return None
