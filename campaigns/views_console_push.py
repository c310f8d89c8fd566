"""Console pages of push campaigns: the list, a new campaign, its detail (live progress, the
funnel, breakdowns and the holdout comparison), pause / resume / cancel, the CSV export and
the brand's push rules."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from campaigns import analytics, fanout, push
from campaigns.forms_push import (
    CHANNEL_LABELS,
    SCHEDULE_LABELS,
    ActionForm,
    CampaignForm,
    SettingsForm,
)
from campaigns.models import Campaign, Segment
from campaigns.models.push import ACTIVE_STATUSES, AT, SCHEDULED
from core import exports, exports_view
from core.auth import roles_required
from core.console import form_error, nav_item, save_form
from core.db import db
from core.errors import AppError
from core.paging import newest_first, page_from_request
from core.tenancy import get_or_404
from coupons.models import THIRD_PARTY, CouponTemplate
from org.models import Brand

bp = Blueprint("campaigns_push", __name__, url_prefix="/console/campaigns/push")
ADMIN = ("brand_admin",)
MANAGERS = ("brand_admin", "store_manager")
PER_PAGE = 30
nav_item(
    "campaigns_push.campaigns", _l("Push campaigns"), group="marketing", roles=MANAGERS, order=72
)
nav_item("campaigns_push.settings", _l("Push rules"), group="marketing", roles=ADMIN, order=78)

STATUS_LABELS = {
    "draft": _l("Draft"),
    "scheduled": _l("Waiting to send"),
    "preparing": _l("Preparing"),
    "running": _l("Sending"),
    "paused": _l("Paused"),
    "completed": _l("Completed"),
    "cancelled": _l("Cancelled"),
}


@bp.app_template_global("campaign_status_label")
def campaign_status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


@bp.app_template_global("campaign_channel_label")
def campaign_channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, channel)


@bp.app_template_global("campaign_schedule_label")
def campaign_schedule_label(schedule: str) -> str:
    return SCHEDULE_LABELS.get(schedule, schedule)


def _my_store() -> int | None:
    """A store manager's store (their campaigns reach it only); None for a brand admin."""
    return current_user.store_id if current_user.role == "store_manager" else None


def _campaign(campaign_id: int) -> Campaign:
    campaign = get_or_404(Campaign, campaign_id)
    store = _my_store()
    if store is not None and campaign.store_id != store:
        abort(404)
    return campaign


def _tz():
    return db.session.get(Brand, current_user.brand_id).tz


@bp.get("/")
@roles_required(*MANAGERS)
def campaigns():
    q = select(Campaign).where(Campaign.parent_id.is_(None))
    store = _my_store()
    if store is not None:
        q = q.where(Campaign.store_id == store)
    page = page_from_request(q, order=newest_first(Campaign.id), per_page=PER_PAGE)
    return render_template("campaigns/console/push_list.html", page=page)


def _choices(form: CampaignForm) -> None:
    store = _my_store()
    segs = select(Segment.id, Segment.name).order_by(Segment.name)
    if store is not None:
        segs = segs.where((Segment.store_id.is_(None)) | (Segment.store_id == store))
    form.segment_id.choices = [(0, _("Choose a segment"))] + [
        (i, n) for i, n in db.session.execute(segs).all()
    ]
    tpls = db.session.execute(
        select(CouponTemplate.id, CouponTemplate.name)
        .where(CouponTemplate.active.is_(True), CouponTemplate.kind != THIRD_PARTY)
        .order_by(CouponTemplate.name)
    ).all()
    form.coupon_template_id.choices = [(0, _("No coupon"))] + [(i, n) for i, n in tpls]


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def new():
    form = CampaignForm()
    _choices(form)
    if request.method == "GET" and request.args.get("segment_id", "").isdigit():
        form.segment_id.data = int(request.args["segment_id"])
    tz = _tz()

    def save():
        return push.create_campaign(
            **form.values(tz), store_id=_my_store(), created_by=current_user.id
        )

    done = save_form(
        form,
        save,
        saved=_l("Campaign saved."),
        then=lambda c: url_for(".detail", campaign_id=c.id),
    )
    if done.response:
        return done.response
    return render_template("campaigns/console/push_form.html", form=form), done.status


@bp.get("/<int:campaign_id>")
@roles_required(*MANAGERS)
def detail(campaign_id: int):
    campaign = _campaign(campaign_id)
    rep = analytics.report(campaign)
    by = {dim: analytics.breakdown(campaign, dim) for dim in ("store", "city", "tier")}
    runs = (
        db.session.execute(
            select(Campaign)
            .where(Campaign.parent_id == campaign.id)
            .order_by(Campaign.id.desc())
            .limit(24)
        )
        .scalars()
        .all()
    )
    seg = db.session.get(Segment, campaign.segment_id) if campaign.segment_id else None
    tpl = (
        db.session.get(CouponTemplate, campaign.coupon_template_id)
        if campaign.coupon_template_id
        else None
    )
    return render_template(
        "campaigns/console/push_detail.html",
        campaign=campaign,
        segment=seg,
        coupon=tpl,
        rep=rep,
        progress=analytics.progress(campaign),
        by=by,
        runs=runs,
        funnel_chart=analytics.funnel_chart(rep),
        store_chart=analytics.breakdown_chart(by["store"]) if by["store"] else None,
        # scheduled for a time: the page follows it, as it starts, sends and completes
        live=campaign.status in ACTIVE_STATUSES
        or (campaign.status == SCHEDULED and campaign.schedule == AT),
        action_form=ActionForm(),
        labels=analytics.FUNNEL_LABELS,
        recent=exports_view.recent_items(kind=analytics.EXPORT_KIND),
    )


@bp.get("/<int:campaign_id>/progress")
@roles_required(*MANAGERS)
def progress(campaign_id: int):
    return jsonify(analytics.progress(_campaign(campaign_id)))


def _act(campaign_id: int, action, message):
    campaign = _campaign(campaign_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        action(campaign_id=campaign.id)
        db.session.commit()
        flash(message, "success")
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for(".detail", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/pause")
@roles_required(*MANAGERS)
def pause(campaign_id: int):
    return _act(campaign_id, push.pause, _l("Campaign paused."))


@bp.post("/<int:campaign_id>/resume")
@roles_required(*MANAGERS)
def resume(campaign_id: int):
    return _act(campaign_id, push.resume, _l("Campaign resumed."))


@bp.post("/<int:campaign_id>/cancel")
@roles_required(*MANAGERS)
def cancel(campaign_id: int):
    return _act(campaign_id, push.cancel, _l("Campaign cancelled."))


@bp.post("/<int:campaign_id>/export")
@roles_required(*MANAGERS)
def export(campaign_id: int):
    campaign = _campaign(campaign_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        exports.request_export(
            kind=analytics.EXPORT_KIND,
            params={"campaign_id": campaign.id},
            requested_by=current_user.get_id(),
            requested_by_label=current_user.name,
            filename=f"campaign-{campaign.id}.csv",
        )
        db.session.commit()
        flash(_l("The export is being prepared; it appears below when ready."), "success")
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for(".detail", campaign_id=campaign.id))


@bp.route("/settings", methods=["GET", "POST"])
@roles_required(*ADMIN)
def settings():
    rules = fanout.settings()
    form = SettingsForm(obj=rules)
    done = save_form(
        form,
        lambda: push.save_settings(
            per_day=form.per_day.data,
            per_week=form.per_week.data,
            quiet_start=form.quiet_start.data,
            quiet_end=form.quiet_end.data,
            rate_per_second=form.rate_per_second.data,
            coupon_notice_template_id=form.coupon_notice_template_id.data or "",
        ),
        saved=_l("Saved."),
        then=lambda _r: url_for(".settings"),
    )
    if done.response:
        return done.response
    return render_template("campaigns/console/push_settings.html", form=form), done.status


__all__ = ["bp", "form_error"]
