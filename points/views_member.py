"""The member center's points page: balance, pending points, history with reasons, and
what expires when."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request
from flask_babel import lazy_gettext as _l

from members import session as member_session
from members.center import member_blueprint, register_center_slot
from points import queries

bp = member_blueprint(Blueprint("points_member", __name__, url_prefix="/m/<brand_slug>"))

# Reasons the system writes are codes: the line's kind already says them, or a word does.
_REASON_WORDS = {"mall": _l("Points mall"), "shop": _l("Online shop")}
_SYSTEM_REASONS = {"purchase", "refund", "welcome", "release", "expire", "merge", "demo"}


def member_reason(line) -> str:
    """What a history line tells the member beside its kind: never a code. An operator's
    adjustment shows its member-facing reason; the internal note (``note``) never shows."""
    reason = (line.reason or "").strip()
    if reason in _REASON_WORDS:
        return str(_REASON_WORDS[reason])
    if not reason or reason in _SYSTEM_REASONS:
        return ""
    return reason


@bp.context_processor
def _member_helpers():
    return {"member_reason": member_reason}


HISTORY_PAGE = 20
EXPIRY_MONTHS = 6


@bp.get("/points")
def my_points():
    member_id = member_session.current_member_id()
    if member_id is None:
        abort(401)
    # Keyset pages (``?before=<entry id>``): no count and no offset over a long history.
    before = request.args.get("before", type=int)
    if before is not None and before <= 0:
        abort(400)
    lines = queries.history_before(member_id, before_id=before, limit=HISTORY_PAGE + 1)
    return render_template(
        "points/member/points.html",
        balance=queries.balance(member_id),
        history=lines[:HISTORY_PAGE],
        older=lines[HISTORY_PAGE - 1].id if len(lines) > HISTORY_PAGE else None,
        newest=before is not None,
        expiring=queries.expiring_by_month(member_id, tz=g.brand_tz, months=EXPIRY_MONTHS),
    )


def init_app(app) -> None:
    app.register_blueprint(bp)
    register_center_slot(
        "points",
        _l("My points"),
        "points_member.my_points",
        order=10,
        figure=queries.AVAILABLE_POINTS,
        figure_label=_l("Points"),
    )
