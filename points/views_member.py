"""The member center's points page: balance, pending points, history with reasons, and
what expires when."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_babel import lazy_gettext as _l

from members import session as member_session
from members.center import member_blueprint, register_center_slot
from points import queries

bp = member_blueprint(Blueprint("points_member", __name__, url_prefix="/m/<brand_slug>"))

# Reasons the system writes are codes: the line's kind already says them, or a word does.
_REASON_WORDS = {"mall": _l("Points mall")}
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


@bp.get("/points")
def my_points():
    member_id = member_session.current_member_id()
    if member_id is None:
        abort(401)
    return render_template(
        "points/member/points.html",
        balance=queries.balance(member_id),
        history=queries.history(
            member_id,
            after=request.args.get("after"),
            before=request.args.get("before"),
            count=False,
        ),
        expiring=queries.expiring_soon(member_id),
    )


def init_app(app) -> None:
    app.register_blueprint(bp)
    register_center_slot(
        "points",
        _l("My points"),
        "points_member.my_points",
        order=10,
        figure=lambda member_id: queries.balance(member_id).balance,
        figure_label=_l("Points"),
    )
