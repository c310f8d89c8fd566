"""Game draws in the mini-program API (``POST /api/mp/<brand_slug>/games/<id>/draws``,
documented in ``/api/mp/openapi.json``). The usual request is answered by ``games.front``
ahead of Flask's pipeline; this route answers the rest (and is the one documented). The
member pages' own JSON endpoints use the same services."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, request
from pydantic import BaseModel, ConfigDict, Field

from core.api import api_operation
from core.db import db
from games import services
from games.models import PENDING_GRANT
from members import api as mp

bp = mp.mp_blueprint(Blueprint("games_mp", __name__, url_prefix="/api/mp/<brand_slug>"))
PREFIX = mp.PREFIX


class DrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_key: str = Field(
        min_length=1, max_length=100, description="Unique per play: a replay answers the same draw"
    )


class DrawOut(BaseModel):
    draw_id: int
    won: bool
    prize_id: int | None = Field(description="None: thanks for playing")
    slot_prize_id: int | None = Field(description="The prize the wheel or card shows")
    prize_name: str
    kind: str = Field(description="coupon, points, gift or none")
    status: str = Field(description="granted, pending_grant, awaiting_address or lost")
    paid_with: str = Field(description="free, extra or points")
    points_spent: int
    created_at: dt.datetime


def draw_out(draw) -> DrawOut:
    return DrawOut(
        draw_id=draw.id,
        won=draw.prize_id is not None,
        prize_id=draw.prize_id,
        slot_prize_id=draw.slot_prize_id,
        prize_name=draw.prize_name,
        kind=draw.prize_kind,
        status=draw.status,
        paid_with=draw.paid_with,
        points_spent=draw.points_spent,
        created_at=draw.created_at,
    )


@bp.post("/games/<int:campaign_id>/draws")
@api_operation(
    "mp", "post", f"{PREFIX}/games/{{campaign_id}}/draws",
    summary="Play once (wheel, scratch card, nine-grid); a free play's prize is granted within"
    " seconds (pending_grant), a paid play's at once",
    body=DrawIn, response=DrawOut, errors=(403, 409, 429),
)  # fmt: skip
def play(campaign_id: int, body: DrawIn):
    member_id = mp.current_member().id
    draw = services.play(
        campaign_id=campaign_id,
        member_id=member_id,
        request_key=body.request_key,
        ip=request.remote_addr,
        grant=True,
    )
    if draw.status == PENDING_GRANT:  # a replay of a draw left pending: grant it now
        draw = services.grant_draw(draw_id=draw.id)
    out = draw_out(draw)  # read before the commit expires the draw (no reload)
    db.session.commit()
    return out


def init_app(app: Flask) -> None:
    mp.init_app(app, bp)
