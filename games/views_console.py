"""Console pages of games: the list, create and edit (with the prize table), the campaign's
page (live figures, chart over time, flagged bursts, recent draws), preview, start, pause,
end."""

from __future__ import annotations

import functools
import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from core import charts
from core.auth import roles_required
from core.console import form_error, nav_item
from core.db import db
from core.errors import AppError
from core.labels import label
from core.pickers import PickerField
from coupons.issuance import brand_tz
from coupons.models import CouponTemplate
from games import queries, rules, services
from games.forms import CampaignForm
from games.models import CHECKIN, KINDS

bp = Blueprint("games_console", __name__, url_prefix="/console/games")
ADMIN = ("brand_admin",)
nav_item("games_console.campaigns", _l("Game campaigns"), group="games", roles=ADMIN, order=90)


class ActionForm(FlaskForm):
    """Start, pause or end (the CSRF token only)."""


class PreviewForm(FlaskForm):
    member_id = PickerField(_l("Test member"), kind="members")


for _name, _kind in (
    ("game_kind_label", "game_kind"),
    ("game_status_label", "game_status"),
    ("game_prize_kind_label", "game_prize_kind"),
    ("game_draw_status_label", "game_draw_status"),
    ("game_fallback_label", "game_fallback"),
    ("game_paid_label", "game_paid_with"),
):
    bp.add_app_template_global(functools.partial(label, kind=_kind), _name)


@bp.get("")
@roles_required(*ADMIN)
def campaigns():
    return render_template(
        "games/console/campaigns.html", campaigns=queries.list_campaigns(), kinds=KINDS
    )


def _templates() -> list[tuple[int, str]]:
    return [
        (t.id, t.name)
        for t in db.session.scalars(
            select(CouponTemplate)
            .where(CouponTemplate.active.is_(True))
            .order_by(CouponTemplate.id)
        )
    ]


def _prize_error(form: CampaignForm, exc: AppError) -> bool:
    """Put a prize line's error on that line's field ("prizes-<n>-<field>", n among the filled
    lines); True when it found one."""
    parts = (exc.field or "").split("-")
    if len(parts) != 3 or parts[0] != "prizes" or not parts[1].isdigit():
        return False
    lines = form.filled_lines()
    n = int(parts[1])
    if n >= len(lines):
        return False
    name = {"value_fen": "value"}.get(parts[2], parts[2])
    field = getattr(form.prizes[lines[n]].form, name, None)
    if field is None:
        return False
    field.errors = list(field.errors) + [exc.message]
    return True


@bp.route("/new", methods=["GET", "POST"])
@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
@roles_required(*ADMIN)
def edit(campaign_id: int | None = None):
    campaign = queries.campaign_or_404(campaign_id) if campaign_id else None
    form = CampaignForm(obj=campaign)
    form.set_choices(_templates())
    tz = brand_tz()
    if request.method == "GET":
        if campaign is not None:
            form.fill(campaign, queries.prizes(campaign.id), tz)
        elif request.args.get("kind") in KINDS:
            form.kind.data = request.args["kind"]
    status = 200
    if form.validate_on_submit():
        try:
            if campaign is None:
                saved = services.create_campaign(
                    kind=form.kind.data,
                    values=form.values(tz),
                    prizes=form.prize_rows(),
                    created_by=getattr(current_user, "name", "") or "",
                )
            else:
                saved = services.update_campaign(
                    campaign_id=campaign.id, values=form.values(tz), prizes=form.prize_rows()
                )
            db.session.commit()
        except AppError as exc:
            db.session.rollback()
            if not _prize_error(form, exc):
                form_error(form, exc)
            status = exc.status
        else:
            flash(_("Saved."), "success")
            return redirect(url_for(".campaign", campaign_id=saved.id))
    elif request.method == "POST":
        status = 400
    return render_template(
        "games/console/campaign_form.html", form=form, campaign=campaign, checkin=CHECKIN
    ), status


@bp.get("/<int:campaign_id>")
@roles_required(*ADMIN)
def campaign(campaign_id: int):
    c = queries.campaign_or_404(campaign_id)
    figures = queries.figures(c)
    tz = brand_tz()
    hours = queries.hourly(c.id)
    chart = charts.line(
        [(h.hour.astimezone(tz).strftime("%m-%d %H:00"), h.plays, h.wins) for h in hours],
        x=0,
        series=[(1, _("Plays")), (2, _("Prizes won"))],
    )
    return render_template(
        "games/console/campaign.html",
        c=c,
        figures=figures,
        game_chart=chart if hours else None,
        flags=queries.flags(c.id),
        draws=queries.recent_draws(c.id),
        rules=rules.rules_for(c),
        action_form=ActionForm(),
        preview_form=PreviewForm(),
        prize_names={p.id: p.name for p in figures.prizes},
    )


def _act(campaign_id: int, action, done_message):
    queries.campaign_or_404(campaign_id)
    form = ActionForm()
    if form.validate_on_submit():
        try:
            action()
            db.session.commit()
            flash(done_message, "success")
        except AppError as exc:
            db.session.rollback()
            flash(exc.message, "error")
    return redirect(url_for(".campaign", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/start")
@roles_required(*ADMIN)
def start(campaign_id: int):
    return _act(
        campaign_id, lambda: services.start_campaign(campaign_id=campaign_id), _l("Game started.")
    )


@bp.post("/<int:campaign_id>/pause")
@roles_required(*ADMIN)
def pause(campaign_id: int):
    return _act(
        campaign_id, lambda: services.pause_campaign(campaign_id=campaign_id), _l("Game paused.")
    )


@bp.post("/<int:campaign_id>/end")
@roles_required(*ADMIN)
def end(campaign_id: int):
    return _act(
        campaign_id, lambda: services.end_campaign(campaign_id=campaign_id), _l("Game ended.")
    )


@bp.post("/<int:campaign_id>/preview")
@roles_required(*ADMIN)
def preview(campaign_id: int):
    c = queries.campaign_or_404(campaign_id)
    form = PreviewForm()
    if not form.validate_on_submit() or not form.member_id.data:
        flash(_("Pick a test member."), "error")
        return redirect(url_for(".campaign", campaign_id=c.id))
    try:
        if c.kind == CHECKIN:
            raise AppError(_l("A check-in has no draw to preview."))
        draw = services.play(
            campaign_id=c.id,
            member_id=form.member_id.data[0],
            request_key=uuid.uuid4().hex,
            ip=None,
            preview=True,
        )
        db.session.commit()
        flash(_("Preview draw: %(prize)s", prize=draw.prize_name or _("No prize")), "success")
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for(".campaign", campaign_id=c.id))
