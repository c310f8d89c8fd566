"""Member center pages (H5, phone first): my coupons with their QR, the mall, passing a
coupon to a friend.

Who is signed in comes from the members package's session (``members.session``): the WeChat
OAuth login gives the openid (enough to take a friend's coupon, becoming a member if new),
card activation gives the member.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from core.db import db
from core.errors import AppError
from coupons import claims, queries, services
from coupons.models import Coupon
from members import session as member_session
from members.center import member_blueprint, require_member

bp = member_blueprint(Blueprint("coupons_member", __name__, url_prefix="/m/<brand_slug>"))


class ActionForm(FlaskForm):
    pass


def current_member_id() -> int | None:
    """The member signed in to this brand's member center (members' session), if any."""
    return member_session.current_member_id()


def current_openid() -> str | None:
    """The official-account openid of the WeChat user on this page (from the OAuth login)."""
    return member_session.current_openid()


def _require_member() -> int:
    """The signed-in member; a guest goes to sign in and activate, then back to this page."""
    return require_member()


@bp.get("/coupons")
def my_coupons():
    member_id = _require_member()
    tab = request.args.get("tab", "available")
    if tab not in queries.TABS:
        tab = "available"
    rows = queries.member_coupons(member_id=member_id, tab=tab)
    return render_template(
        "coupons/member/coupons.html",
        rows=rows,
        tab=tab,
        qr=queries.qr_svg,
        form=ActionForm(),
    )


@bp.post("/coupons/<int:coupon_id>/share")
def share(coupon_id: int):
    member_id = _require_member()
    if not ActionForm().validate_on_submit():
        abort(400)
    s = services.create_share(coupon_id=coupon_id, member_id=member_id)
    db.session.commit()
    return render_template("coupons/member/shared.html", share=s)


@bp.route("/coupons/share/<token>", methods=["GET", "POST"])
def take_share(token: str):
    s = claims.share_by_token(token)
    coupon = db.session.get(Coupon, s.coupon_id)
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        openid = current_openid()
        if not openid:
            abort(401)
        try:
            services.claim_share(token=token, openid=openid)
        except AppError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return render_template(
                "coupons/member/take_share.html", share=s, coupon=coupon, form=form
            ), exc.status
        db.session.commit()
        flash(_l("The coupon is yours."), "success")
        return redirect(url_for(".my_coupons"))
    return render_template("coupons/member/take_share.html", share=s, coupon=coupon, form=form)


@bp.get("/mall")
def mall_page():
    member_id = _require_member()
    from points import services as points

    return render_template(
        "coupons/member/mall.html",
        items=queries.offered_mall_items(member_id=member_id),
        balance=points.balance(member_id),
        form=ActionForm(),
        request_key=uuid.uuid4().hex,
    )


@bp.post("/mall/<int:item_id>/exchange")
def exchange(item_id: int):
    member_id = _require_member()
    if not ActionForm().validate_on_submit():
        abort(400)
    key = (request.form.get("request_key") or "")[:64]
    if not key:
        abort(400)
    try:
        done = services.exchange(
            item_id=item_id, member_id=member_id, idempotency_key=f"m{member_id}:{key}"
        )
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".mall_page")), 303
    target = url_for(".my_coupons")  # before the commit expires g.brand (one query less)
    db.session.commit()
    flash(_l("Exchanged: %(title)s", title=done.title), "success")
    return redirect(target), 303


@bp.post("/coupons/claim/<int:template_id>")
def claim(template_id: int):
    member_id = _require_member()
    if not ActionForm().validate_on_submit():
        abort(400)
    key = (request.form.get("request_key") or uuid.uuid4().hex)[:64]
    try:
        services.claim(
            template_id=template_id, member_id=member_id, idempotency_key=f"m{member_id}:{key}"
        )
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".my_coupons")), 303
    db.session.commit()
    flash(_l("Coupon added."), "success")
    return redirect(url_for(".my_coupons")), 303
