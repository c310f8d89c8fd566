"""Console pages of commission (brand admins): rules and the monthly tier plan, the
commission settings, statements, payouts waiting for approval and the payroll export."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.auth import roles_required
from core.console import form_error, nav_item, save_form
from core.db import db
from core.errors import AppError
from core.formfields import fen_to_yuan
from core.paging import newest_first, page_from_request
from guide_distribution import commission
from guide_distribution import payouts as payout_service
from guide_distribution import settings as dist_settings
from guide_distribution.forms_commission import CommissionSettingsForm, RuleForm, TierForm
from guide_distribution.models.commission import (
    P_APPROVED,
    CommissionStatement,
    Payout,
    PayoutEvent,
)
from members.forms import EmptyForm
from org.models import Staff

bp = Blueprint("guide_commission_console", __name__, url_prefix="/console/distribution")
ADMIN = ("brand_admin",)
nav_item(
    "guide_commission_console.rules",
    _l("Commission rules"),
    group="distribution",
    roles=ADMIN,
    order=40,
)
nav_item(
    "guide_commission_console.payouts",
    _l("Commission payouts"),
    group="distribution",
    roles=ADMIN,
    order=41,
)
nav_item(
    "guide_commission_console.statements",
    _l("Commission statements"),
    group="distribution",
    roles=ADMIN,
    order=42,
)
nav_item(
    "guide_commission_console.settings",
    _l("Commission settings"),
    group="distribution",
    roles=ADMIN,
    order=43,
)


def _render_rules(rule_form, tier_form, status=200):
    return render_template(
        "guide_distribution/console/commission_rules.html",
        rules=commission.list_rules(),
        tiers=commission.list_tiers(),
        rule_form=rule_form,
        tier_form=tier_form,
        form=EmptyForm(),
        percent=commission.percent_text,
        yuan=fen_to_yuan,
    ), status


@bp.get("/commission")
@roles_required(*ADMIN)
def rules():
    return _render_rules(RuleForm(prefix="rule"), TierForm(prefix="tier"))


@bp.post("/commission/rules")
@roles_required(*ADMIN)
def add_rule():
    form = RuleForm(prefix="rule")
    if not form.validate_on_submit():
        return _render_rules(form, TierForm(prefix="tier"), 400)
    try:
        rate = 0
        if form.kind.data != "sku_fixed":
            rate = commission.rate_bp_from_percent(form.rate.data or "", "rate")
        elif not (form.amount.data or "").strip():
            raise commission.ValidationError(_l("Enter an amount."), field="amount")
        commission.save_rule(
            kind=form.kind.data, target=form.target.data, rate_bp=rate, amount_fen=form.amount.fen
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        form_error(form, exc)
        return _render_rules(form, TierForm(prefix="tier"), exc.status)
    flash(_l("Saved."), "success")
    return redirect(url_for("guide_commission_console.rules"))


@bp.post("/commission/rules/<int:rule_id>/delete")
@roles_required(*ADMIN)
def delete_rule(rule_id: int):
    if EmptyForm().validate_on_submit():
        commission.delete_rule(rule_id)
        db.session.commit()
        flash(_l("Deleted."), "success")
    return redirect(url_for("guide_commission_console.rules"))


@bp.post("/commission/tiers")
@roles_required(*ADMIN)
def add_tier():
    form = TierForm(prefix="tier")
    if not form.validate_on_submit():
        return _render_rules(RuleForm(prefix="rule"), form, 400)
    try:
        commission.save_tier(
            name=form.name.data,
            target_fen=form.target.fen,
            rate_bp=commission.rate_bp_from_percent(form.rate.data or "", "rate"),
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        form_error(form, exc)
        return _render_rules(RuleForm(prefix="rule"), form, exc.status)
    flash(_l("Saved."), "success")
    return redirect(url_for("guide_commission_console.rules"))


@bp.post("/commission/tiers/<int:tier_id>/delete")
@roles_required(*ADMIN)
def delete_tier(tier_id: int):
    if EmptyForm().validate_on_submit():
        commission.delete_tier(tier_id)
        db.session.commit()
        flash(_l("Deleted."), "success")
    return redirect(url_for("guide_commission_console.rules"))


@bp.route("/commission/settings", methods=["GET", "POST"])
@roles_required(*ADMIN)
def settings():
    current = dist_settings.get_settings()
    form = CommissionSettingsForm(obj=current if request.method == "GET" else None)
    if request.method == "GET":
        form.default_rate.data = commission.percent_text(current.default_rate_bp)
        form.payout_min.data = fen_to_yuan(current.payout_min_fen)
        form.approval_over.data = fen_to_yuan(current.approval_over_fen)
    done = save_form(
        form,
        lambda: dist_settings.update_settings(
            default_rate_bp=commission.rate_bp_from_percent(form.default_rate.data, "default_rate"),
            commission_on_promotions=bool(form.commission_on_promotions.data),
            settle_after_days=form.settle_after_days.data,
            payout_min_fen=form.payout_min.fen,
            approval_over_fen=form.approval_over.fen,
        ),
        saved=_l("Saved."),
        then=lambda _row: url_for("guide_commission_console.settings"),
    )
    if done.response:
        return done.response
    return render_template("guide_distribution/console/settings.html", form=form), done.status


def _names(ids) -> dict[int, str]:
    ids = set(ids)
    if not ids:
        return {}
    return dict(db.session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids))).all())


@bp.get("/payouts")
@roles_required(*ADMIN)
def payouts():
    state = request.args.get("state") or ""
    stmt = select(Payout)
    if state in (
        "approval",
        "approved",
        "transferring",
        "wait_confirm",
        "paid",
        "failed",
        "refused",
    ):
        stmt = stmt.where(Payout.state == state)
    page = page_from_request(stmt, order=newest_first(Payout.id), per_page=30)
    events = {}
    ids = [p.id for p in page.items]
    if ids:
        for ev in db.session.execute(
            select(PayoutEvent).where(PayoutEvent.payout_id.in_(ids)).order_by(PayoutEvent.id)
        ).scalars():
            events.setdefault(ev.payout_id, []).append(ev)
    return render_template(
        "guide_distribution/console/payouts.html",
        page=page,
        state=state,
        names=_names(p.guide_id for p in page.items),
        events=events,
        form=EmptyForm(),
        yuan=fen_to_yuan,
        payroll_waiting=db.session.execute(
            select(Payout.id).where(Payout.state == P_APPROVED, Payout.method == "payroll").limit(1)
        ).scalar()
        is not None,
    )


@bp.post("/payouts/<int:payout_id>/approve")
@roles_required(*ADMIN)
def approve(payout_id: int):
    payout_service.get_payout(payout_id)  # another brand's payout: 404
    if EmptyForm().validate_on_submit():
        try:
            payout = payout_service.approve(payout_id)
            payout_service.send_when_ready(payout)
            db.session.commit()
            flash(_l("Approved."), "success")
        except AppError as exc:
            db.session.rollback()
            flash(exc.message, "error")
    return redirect(url_for("guide_commission_console.payouts"))


@bp.post("/payouts/<int:payout_id>/refuse")
@roles_required(*ADMIN)
def refuse(payout_id: int):
    payout_service.get_payout(payout_id)  # another brand's payout: 404
    if EmptyForm().validate_on_submit():
        try:
            payout_service.refuse(payout_id, reason=(request.form.get("reason") or "")[:200])
            db.session.commit()
            flash(_l("Refused; the amount went back to the guide."), "success")
        except AppError as exc:
            db.session.rollback()
            flash(exc.message, "error")
    return redirect(url_for("guide_commission_console.payouts"))


@bp.post("/payouts/payroll.csv")
@roles_required(*ADMIN)
def export_payroll():
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("guide_commission_console.payouts"))
    body, n = payout_service.export_payroll()
    db.session.commit()
    stamp = dt.datetime.now().strftime("%Y%m%d%H%M")
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=payroll-{stamp}.csv"},
    )


@bp.get("/statements")
@roles_required(*ADMIN)
def statements():
    stmt = select(CommissionStatement)
    page = page_from_request(stmt, order=newest_first(CommissionStatement.id), per_page=50)
    return render_template(
        "guide_distribution/console/statements.html",
        page=page,
        names=_names(s.guide_id for s in page.items),
        yuan=fen_to_yuan,
    )
