"""Tracked links of pushes: ``/c/t/<token>`` checks the token's signature, records the
recipient's open once, and sends them on to the campaign's link (or their coupons)."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, url_for

from campaigns import tracking
from campaigns.models import Campaign
from core.db import db
from core.tenancy import use_brand
from org.models import Brand

bp = Blueprint("campaigns_track", __name__, url_prefix="/c")


@bp.get("/t/<token>")
def open_link(token: str):
    found = tracking.read_token(token)
    if found is None:
        abort(404)
    brand_id, campaign_id, member_id = found
    with use_brand(brand_id):
        campaign = db.session.get(Campaign, campaign_id)
        brand = db.session.get(Brand, brand_id)
        if campaign is None or brand is None or campaign.brand_id != brand_id:
            abort(404)
        tracking.record_open(campaign_id=campaign.id, member_id=member_id)
        db.session.commit()
        target = campaign.link_url or url_for("coupons_member.my_coupons", brand_slug=brand.slug)
    return redirect(target, code=302)
