"""The guide's commission in the workbench (phone-first): pending, frozen, withdrawable,
paid and owed; each line with its order and the rule applied; monthly statements; withdraw,
and confirm a transfer in WeChat (``requestMerchantTransfer``)."""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from core.auth import has_role, roles_required
from core.console import form_error
from core.db import db
from core.errors import AppError
from core.formfields import fen_to_yuan
from core.tenancy import require_brand_id
from guide_distribution import commission, ledger, payouts
from guide_distribution.forms_commission import WithdrawForm
from guide_distribution.models.commission import (
    PAYOUT_OPEN,
    CommissionLine,
    CommissionStatement,
    Payout,
)
from guide_distribution.settings import get_settings
from members.forms import EmptyForm
from org.models import Brand
from shop.models import Order, OrderLine
from wechat.client import WeChatError

bp = Blueprint("guide_workbench_commission", __name__, url_prefix="/console/workbench/commission")
LINES = 50


def _page(form: WithdrawForm, status: int = 200):
    guide_id = current_user.id
    rows = db.session.execute(
        select(CommissionLine, Order.order_no, OrderLine.name)
        .join(Order, Order.id == CommissionLine.order_id)
        .join(OrderLine, OrderLine.id == CommissionLine.order_line_id)
        .where(CommissionLine.guide_id == guide_id)
        .order_by(CommissionLine.id.desc())
        .limit(LINES)
    ).all()
    recent = list(
        db.session.execute(
            select(Payout).where(Payout.guide_id == guide_id).order_by(Payout.id.desc()).limit(20)
        ).scalars()
    )
    statements = list(
        db.session.execute(
            select(CommissionStatement)
            .where(CommissionStatement.guide_id == guide_id)
            .order_by(CommissionStatement.month.desc())
            .limit(12)
        ).scalars()
    )
    if not form.request_key.data:
        form.request_key.data = secrets.token_hex(12)
    brand = db.session.get(Brand, require_brand_id())
    return render_template(
        "guide_distribution/workbench/commission.html",
        bal=ledger.balances(guide_id),
        rows=rows,
        payouts=recent,
        open_states=PAYOUT_OPEN,
        statements=statements,
        form=form,
        check_form=EmptyForm(),
        minimum=get_settings().payout_min_fen,
        yuan=fen_to_yuan,
        percent=commission.percent_text,
        mch_id=brand.mch_id or "",
        appid=brand.appid or brand.mp_appid or "",
    ), status


@bp.get("")
@roles_required("guide")
def index():
    return _page(WithdrawForm())


@bp.post("/withdraw")
@roles_required("guide")
def withdraw():
    form = WithdrawForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        payout = payouts.request(
            guide_id=current_user.id,
            amount_fen=form.amount.fen,
            request_key=f"wb:{current_user.id}:{form.request_key.data}",
        )
        payouts.send_when_ready(payout)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        form_error(form, exc)
        form.request_key.data = ""
        return _page(form, exc.status)
    flash(_l("Your withdrawal was requested."), "success")
    return redirect(url_for("guide_workbench_commission.index"))


@bp.post("/payouts/<int:payout_id>/check")
@roles_required("brand_admin", "store_manager", "guide")
def check(payout_id: int):
    """After the guide confirmed the transfer in WeChat: ask WeChat Pay how it went."""
    payouts.get_payout(payout_id)  # another brand's payout: 404 whoever asks
    if not has_role("guide"):
        abort(403)
    if EmptyForm().validate_on_submit():
        payouts.get_payout(payout_id, guide_id=current_user.id)
        try:
            payouts.query(payout_id)
            db.session.commit()
        except WeChatError:  # WeChat Pay unreachable or refusing: the job asks again later
            db.session.rollback()
            flash(_l("WeChat Pay has not answered yet; the result will show here later."), "error")
    return redirect(url_for("guide_workbench_commission.index"))
