"""The member's game pages (H5 in WeChat's browser, phone first) and their JSON endpoints.

Routes (``<slug>`` is the brand's slug; every page is bound to that one brand):

- ``/m/<slug>/games``: the brand's games now open or coming (the member center's slot);
- ``/m/<slug>/games/<id>``: one game (wheel, scratch card, nine-grid or check-in) with the
  member's plays left, the cost of a play and the game itself;
- ``POST /m/<slug>/games/<id>/play`` (JSON ``{"request_key": "..."}``): one play through
  ``games.services.play`` (or ``check_in``); the key is made per tap by the page, and the
  server answers a replayed key with the same draw, so a double tap never plays twice;
- ``/m/<slug>/games/<id>/rules`` and ``/fairness``: public, no sign-in;
- ``/m/<slug>/games/prizes``: "my prizes"; ``/prizes/<draw id>/claim``: a gift's delivery
  address or pick-up store.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo

from flask import Blueprint, abort, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField
from wtforms.validators import Optional

from core import validators
from core.db import db
from core.errors import AppError, ValidationError
from games import member_pages, queries, services
from games.errors import GameError
from games.models import AWAITING_ADDRESS, CHECKIN, PENDING_GRANT, GameCampaign, GameDraw
from games.rules import rules_for
from members import session as member_session
from members.center import member_blueprint, register_center_slot, require_member, signin_url
from points import queries as points_queries

bp = member_blueprint(Blueprint("games_member", __name__, url_prefix="/m/<brand_slug>/games"))

MAX_KEY = 64
log = logging.getLogger(__name__)


def init_app(app) -> None:
    app.register_blueprint(bp)
    register_center_slot("games", _l("Games"), "games_member.games", order=40)


def _tz() -> str:
    return g.get("brand_tz") or "Asia/Shanghai"


def _today() -> dt.date:
    return dt.datetime.now(zoneinfo.ZoneInfo(_tz())).date()


def _urls(draw_id: int | None = None) -> dict[str, str]:
    return {
        "coupons": url_for("coupons_member.my_coupons"),
        "points": url_for("points_member.my_points"),
        "prizes": url_for(".my_prizes"),
        "delivery": url_for(".claim", draw_id=draw_id) if draw_id else "",
    }


def _campaign(campaign_id: int) -> GameCampaign:
    """The brand's campaign as members see it: 404 for another brand's or a draft."""
    return queries.campaign_for_member(campaign_id)


def _plays_left(campaign: GameCampaign, member_id: int) -> int | None:
    if campaign.kind == CHECKIN:
        return None
    left = queries.plays_left(campaign.id, member_id)
    balance = points_queries.balance(member_id).balance if campaign.cost_points else 0
    return member_pages.plays_left_count(campaign, left, balance)


def _plays_left_text(left: int | None) -> str:
    return _("Unlimited") if left is None else str(left)


@bp.get("")
def games():
    rows = member_pages.open_campaigns()
    now = dt.datetime.now(dt.UTC)
    items = [
        {
            "campaign": c,
            "state": member_pages.state_of(c, now),
            "window": member_pages.window_text(c, _tz()),
            "kind": member_pages.GAME_NAMES.get(c.kind, ""),
        }
        for c in rows
    ]
    return render_template("games/member/list.html", items=items)


@bp.get("/<int:campaign_id>")
def game(campaign_id: int):
    campaign = _campaign(campaign_id)
    member_id = require_member()
    state = member_pages.state_of(campaign)
    left = _plays_left(campaign, member_id)
    value, label = member_pages.cost_text(campaign)
    message = member_pages.state_message(campaign, state, _tz())
    can_play = state == member_pages.RUNNING
    if can_play and left == 0:
        message = _("You have no plays left for now.")
        can_play = False
    me = member_session.current_member()
    activate_url = None
    if can_play and (me is None or not me.holds_card or not me.phone):
        # the engine gives "thanks" to members who have not verified their phone
        message = _("Activate your member card (verify your phone) to win prizes.")
        activate_url = url_for("members_activate.start", next=request.path)
    game = {
        "id": campaign.id,
        "kind": campaign.kind,
        "name": campaign.name,
        "window": member_pages.window_text(campaign, _tz()),
        "plays_left_text": _plays_left_text(left),
        "plays_left_label": _("Plays left"),
        "cost_value": value,
        "cost_label": label,
        "points_balance": points_queries.balance(member_id).balance
        if campaign.cost_points
        else None,
        "state": state,
        "state_message": message,
        "can_play": can_play,
        "play_url": url_for(".play", campaign_id=campaign.id),
        "activate_url": activate_url,
    }
    prizes = queries.prizes(campaign.id)
    if campaign.kind == "wheel":
        game["slots"], game["wheel_gradient"] = member_pages.wheel(prizes)
    elif campaign.kind == "grid":
        game["grid"] = member_pages.grid(prizes)
    elif campaign.kind == CHECKIN:
        today = _today()
        done = member_pages.checkin_days(campaign.id, member_id, month=today)
        game["checkin"] = {
            **member_pages.calendar_month(today, done),
            "streak": member_pages.checkin_streak(campaign.id, member_id, today=today),
            "today_done": today in done,
            "ladder": [
                {"day": p.streak_day, "name": p.name}
                for p in sorted(
                    (p for p in prizes if p.streak_day is not None), key=lambda p: p.streak_day
                )
            ],
        }
        game["plays_left_text"] = "0" if game["checkin"]["today_done"] else "1"
        game["plays_left_label"] = _("Check-ins left today")
        if game["checkin"]["today_done"] and can_play:
            game["state_message"] = _("You have checked in today. Come back tomorrow.")
    template = f"games/member/{campaign.kind}.html"
    return render_template(template, game=game, campaign=campaign)


def _grant(draw: GameDraw) -> GameDraw:
    """Give a won coupon or points right after the play's commit. Should this fail, the
    draw stays pending and the periodic recovery job grants it (exactly once)."""
    if draw.status != PENDING_GRANT:
        return draw
    draw_id = draw.id
    try:
        draw = services.grant_draw(draw_id=draw_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("grant of draw %s left to the recovery job", draw_id)
        draw = db.session.get(GameDraw, draw_id)
    return draw


def _friendly(exc: GameError, campaign: GameCampaign, member_id: int) -> str:
    """What the member reads when a play is refused: the page's own words for the usual
    reasons, the engine's message for the rest."""
    code = exc.code
    if code == "limit_reached" and campaign.kind != CHECKIN:
        left = queries.plays_left(campaign.id, member_id)
        if left.allowed_total == 0:
            return _("You have used all your plays in this game.")
        if left.allowed_today == 0:
            return _("You have used today's plays. Come back tomorrow!")
        return _("You have no free plays left today. Come back tomorrow!")
    if code == "no_points":
        return _("Not enough points: a play costs %(n)s points.", n=campaign.cost_points)
    texts = {
        "not_started": _("The game has not started yet."),
        "ended": _("The game has ended. Thank you for taking part."),
        "paused": _("The game is paused. Please come back later."),
        "not_eligible": _("Sorry, this game is not open to your membership."),
        "rate_limited": _("You are going a little fast. Wait a moment and try again."),
        "already_checked_in": _("You have checked in today. Come back tomorrow."),
    }
    return texts.get(code, exc.message)


def _json_error(code: str, message: str, status: int, **extra):
    return jsonify({"error": {"code": code, "message": message, "field": None, **extra}}), status


@bp.post("/<int:campaign_id>/play")
def play(campaign_id: int):
    member_id = member_session.current_member_id()
    if member_id is None:
        return _json_error("signin", _("Sign in to play."), 401, signin_url=signin_url())
    campaign = _campaign(campaign_id)
    body = request.get_json(silent=True)
    key = body.get("request_key") if isinstance(body, dict) else None
    if not isinstance(key, str) or not 8 <= len(key) <= MAX_KEY or not key.isascii():
        return _json_error("invalid", _("This request is not valid. Reload the page."), 400)
    try:
        if campaign.kind == CHECKIN:
            checked = services.check_in(
                campaign_id=campaign.id, member_id=member_id, request_key=key
            )
            draw = checked.draw
        else:
            draw = services.play(
                campaign_id=campaign.id,
                member_id=member_id,
                request_key=key,
                ip=request.remote_addr,
                grant=True,
            )
        db.session.commit()
    except GameError as exc:
        db.session.rollback()
        return _json_error(exc.code, _friendly(exc, campaign, member_id), exc.status)
    draw = _grant(draw)
    left = _plays_left(campaign, member_id)
    out = {
        "draw": member_pages.result(draw, urls=_urls(draw.id)),
        "plays_left": _plays_left_text(left),
        "can_play": left != 0,
    }
    if campaign.kind == CHECKIN:
        out["day"] = checked.day.isoformat()
        out["streak"] = checked.streak
        out["can_play"] = False
        out["plays_left"] = "0"
    return jsonify(out)


@bp.get("/<int:campaign_id>/rules")
def rules(campaign_id: int):
    campaign = _campaign(campaign_id)
    return render_template(
        "games/member/rules.html",
        campaign=campaign,
        rules=rules_for(campaign),
        window=member_pages.window_text(campaign, _tz()),
    )


@bp.get("/<int:campaign_id>/fairness")
def fairness(campaign_id: int):
    campaign = _campaign(campaign_id)
    revealed = queries.revealed_seed(campaign) is not None
    return render_template(
        "games/member/fairness.html",
        campaign=campaign,
        example=member_pages.fairness_example(
            campaign,
            queries.prizes(campaign.id),
            member_pages.first_draw(campaign.id) if revealed else None,
        ),
        revealed=revealed,
    )


# --- my prizes and a gift's delivery ----------------------------------------------------------


@bp.get("/prizes")
def my_prizes():
    member_id = require_member()
    rows = member_pages.prize_rows(queries.my_prizes(member_id), _tz())
    return render_template(
        "games/member/prizes.html",
        rows=rows,
        awaiting=AWAITING_ADDRESS,
        kind_labels=member_pages.KIND_LABELS,
    )


class ClaimForm(FlaskForm):
    how = RadioField(
        _l("How to receive it"),
        choices=[("delivery", _l("Deliver to my address")), ("pickup", _l("Pick up in a store"))],
        default="delivery",
    )
    name = StringField(_l("Recipient"))
    phone = StringField(_l("Mobile"))
    province = StringField(_l("Province"))
    city = StringField(_l("City"))
    district = StringField(_l("District"))
    detail = StringField(_l("Street address"))
    store_id = SelectField(_l("Store"), coerce=int, validators=[Optional()], validate_choice=False)


@bp.route("/prizes/<int:draw_id>/claim", methods=["GET", "POST"])
def claim(draw_id: int):
    member_id = require_member()
    draw = member_pages.member_draw(draw_id, member_id)
    if draw is None:
        abort(404)
    stores = member_pages.pickup_stores(queries.campaign_for_member(draw.campaign_id))
    form = ClaimForm()
    form.store_id.choices = [(0, _("Choose a store"))] + [(s.id, s.name) for s in stores]
    if not stores:
        form.how.choices = [c for c in form.how.choices if c[0] == "delivery"]
    status = 200
    if draw.status != AWAITING_ADDRESS:
        return render_template("games/member/claim.html", form=form, draw=draw, stores=stores)
    if form.validate_on_submit():
        try:
            address_given = any(
                (getattr(form, f).data or "").strip() for f in validators.ADDRESS_FIELDS
            )
            if form.how.data == "pickup" or (form.store_id.data and not address_given):
                store = next((s for s in stores if s.id == form.store_id.data), None)
                if store is None:
                    raise ValidationError(_("Choose a store for pick-up."), field="store_id")
                services.submit_gift_address(
                    draw_id=draw.id, member_id=member_id, address={"store_id": store.id}
                )
            else:
                address = validators.check_address(
                    {f: getattr(form, f).data for f in validators.ADDRESS_FIELDS}
                )
                services.submit_gift_address(draw_id=draw.id, member_id=member_id, address=address)
            db.session.commit()
            return redirect(url_for(".my_prizes"), 303)
        except AppError as exc:
            db.session.rollback()
            target = getattr(form, exc.field, None) if exc.field else None
            if target is not None:
                target.errors = [*target.errors, exc.message]
            else:
                form.form_errors.append(exc.message)
            status = 400
    elif request.method == "POST":
        status = 400
    return render_template("games/member/claim.html", form=form, draw=draw, stores=stores), status
