"""Console pages: earning and expiry rules, bonus campaigns, a member's points, reports."""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm

from core import charts
from core.auth import roles_required
from core.console import nav_item, save_form
from core.db import db
from core.formfields import fen_to_yuan, permille_to_times
from core.labels import label
from core.tenancy import get_or_404
from members.models import Member
from members.privacy import access
from org.services import list_stores
from points import queries, reports, services
from points.forms import POLICY_LABELS, AdjustForm, CampaignForm, SettingsForm
from points.membership import find_member
from points.models import PointsCampaign

bp = Blueprint("points", __name__, url_prefix="/console/points")


@bp.app_template_global("points_kind_label")
def points_kind_label(kind: str) -> str:
    return label(kind, "points_kind")


@bp.route("/settings", methods=["GET", "POST"])
@roles_required("brand_admin")
def settings():
    current = services.get_settings()
    form = SettingsForm(obj=current if request.method == "GET" else None)
    if request.method == "GET":
        form.earn_rate.data = permille_to_times(current.earn_permille)
        form.exchange_yuan.data = fen_to_yuan(current.exchange_fen)
    done = save_form(
        form,
        lambda: services.update_settings(
            earn_permille=form.earn_rate.permille,
            pending_days=form.pending_days.data,
            expiry_policy=form.expiry_policy.data,
            expiry_months=form.expiry_months.data,
            points_day=form.points_day.data,
            remind_days=form.remind_days.data,
            daily_cap=form.daily_cap.data,
            exchange_points=form.exchange_points.data,
            exchange_fen=form.exchange_yuan.fen,
            welcome_points=form.welcome_points.data,
            change_template_id=form.change_template_id.data or "",
            expiring_template_id=form.expiring_template_id.data or "",
        ),
        saved=_l("Saved."),
        then=lambda _settings: url_for("points.settings"),
    )
    if done.response:
        return done.response
    return render_template(
        "points/console/settings.html", form=form, policies=POLICY_LABELS
    ), done.status


@bp.get("/campaigns")
@roles_required("brand_admin")
def campaigns():
    return render_template(
        "points/console/campaigns.html",
        campaigns=queries.campaigns(),
        stores={s.id: s for s in list_stores()},
    )


@bp.route("/campaigns/new", methods=["GET", "POST"])
@bp.route("/campaigns/<int:campaign_id>", methods=["GET", "POST"])
@roles_required("brand_admin")
def campaign_form(campaign_id: int | None = None):
    campaign = get_or_404(PointsCampaign, campaign_id) if campaign_id else None
    form = CampaignForm(obj=campaign if request.method == "GET" else None)
    form.store_id.choices = [("", _l("All stores"))] + [
        (s.id, f"{s.code} {s.name}") for s in list_stores()
    ]
    if request.method == "GET" and campaign is not None:
        form.multiplier.data = permille_to_times(campaign.multiplier_permille)
        form.weekdays.data = [d for d in range(7) if campaign.weekdays & (1 << d)]
    done = save_form(
        form,
        lambda: services.save_campaign(
            campaign_id=campaign.id if campaign else None,
            name=form.name.data,
            multiplier_permille=form.multiplier.permille,
            start_date=form.start_date.data,
            end_date=form.end_date.data,
            weekdays=sum(1 << d for d in form.weekdays.data or []),
            store_id=form.store_id.data,
            category=form.category.data,
            active=form.active.data,
        ),
        saved=_l("Saved."),
        then=lambda _campaign: url_for("points.campaigns"),
    )
    if done.response:
        return done.response
    return render_template(
        "points/console/campaign_form.html", form=form, campaign=campaign
    ), done.status


@bp.get("/members")
@roles_required("brand_admin")
def members():
    q = (request.args.get("q") or "").strip()
    if q:
        member = find_member(q)
        if member is not None:
            return redirect(url_for("points.member", member_id=member.id))
        return render_template("points/console/member_search.html", q=q, not_found=True), 404
    return render_template("points/console/member_search.html", q=q, not_found=False)


def _member_page(
    member: Member, form: AdjustForm, status: int = 200, *, full_phone: str | None = None
):
    if not form.key.data or status == 200:
        form.key.data = secrets.token_urlsafe(16)
    return render_template(
        "points/console/member.html",
        member=member,
        form=form,
        phone=full_phone or access.display_phone(staff=current_user, member=member),
        full_phone=full_phone is not None,
        may_reveal=access.may_see_full_phones(staff=current_user) and bool(member.phone),
        reveal_form=FlaskForm(),
        balance=queries.balance(member.id),
        history=queries.history(
            member.id,
            after=request.args.get("after"),
            before=request.args.get("before"),
            with_notes=True,
        ),
        expiring=queries.expiring_soon(member.id),
    ), status


@bp.get("/members/<int:member_id>")
@roles_required("brand_admin")
def member(member_id: int):
    return _member_page(get_or_404(Member, member_id), AdjustForm())


@bp.post("/members/<int:member_id>/phone")
@roles_required("brand_admin")
def reveal_phone(member_id: int):
    """The full phone number, shown once on this page; the view is in the audit log."""
    member = get_or_404(Member, member_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    phone = access.reveal_phone(staff=current_user, member_id=member.id)
    db.session.commit()
    return _member_page(member, AdjustForm(), full_phone=phone)


@bp.post("/members/<int:member_id>/adjust")
@roles_required("brand_admin")
def adjust(member_id: int):
    member = get_or_404(Member, member_id)
    form = AdjustForm()
    done = save_form(
        form,
        lambda: services.adjust(
            member_id=member.id,
            points=form.points.data,
            reason=form.reason.data,
            note=form.note.data or "",
            idempotency_key=f"console:{form.key.data}",
            operator=current_user.display_name,
        ),
        saved=_l("Points adjusted."),
        then=lambda _entry: url_for("points.member", member_id=member.id),
    )
    if done.response:
        return done.response
    return _member_page(member, form, done.status)


@bp.get("/report")
@roles_required("brand_admin")
def report():
    months = request.args.get("months", 12, type=int)
    if months not in (6, 12, 24):
        abort(400)
    liability = reports.liability()
    series = reports.monthly(months=months)
    return render_template(
        "points/console/report.html",
        liability=liability,
        series=series,
        months=months,
        redemption_chart=charts.bars(
            [(m.month.strftime("%Y-%m"), m.redemption_permille / 10) for m in series],
            x=0,
            series=[(1, _("Points use rate"))],
            unit="%",
        ),
        liability_chart=charts.line(
            [(m.month.strftime("%Y-%m"), m.outstanding) for m in series],
            x=0,
            series=[(1, _("Outstanding points"))],
        ),
    )


nav_item("points.members", _l("Points"), group="points", roles=("brand_admin",), order=40)
nav_item("points.report", _l("Points report"), group="points", roles=("brand_admin",), order=44)
nav_item("points.settings", _l("Points rules"), group="points", roles=("brand_admin",), order=41)
nav_item(
    "points.campaigns", _l("Bonus campaigns"), group="marketing", roles=("brand_admin",), order=70
)
