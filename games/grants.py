"""Giving a draw's prize: coupons and points through their services with the key
``game-draw:<id>`` (points wins of a batch in one batch credit), exactly once under the
draw's row lock; and a gift's delivery address or pick-up store."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text
from sqlalchemy.orm.attributes import set_committed_value

from core import validators
from core.db import db, utcnow
from core.errors import AppError, Conflict, NotFound, ValidationError
from core.tenancy import require_brand_id
from games.models import (
    AWAITING_ADDRESS,
    GRANT_FAILED,
    GRANTED,
    PENDING_GRANT,
    POINTS,
    GameCampaign,
    GameDraw,
    GamePrize,
)
from org.models import Store

# --- the grant -----------------------------------------------------------------------------


def grant_draw(*, draw_id: int, now: dt.datetime | None = None) -> GameDraw:
    """Give a pending draw's prize (a coupon or points) exactly once: under the draw's row
    lock, through the coupons / points services with the key ``game-draw:<id>``, then
    ``pending_grant`` -> ``granted``. Any other status: nothing to do. A prize the coupons
    service refuses (its template sold out or ended) marks the draw ``grant_failed``."""
    now = now or utcnow()
    draw = db.session.scalars(
        select(GameDraw)
        .where(GameDraw.id == draw_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if draw is None:
        raise NotFound(_l("Unknown draw."), field="draw_id")
    if draw.status != PENDING_GRANT:
        return draw
    prize = db.session.get(GamePrize, draw.prize_id)
    return _grant(draw, prize, _campaign_name(draw.campaign_id), now)


def grant_draws(*, draw_ids: list[int], now: dt.datetime | None = None) -> int:
    """``grant_draw`` of several draws in the current transaction; a draw another
    transaction is granting is skipped (it grants it). Points prizes are granted together
    (one batch credit, then one ``UPDATE`` of their draws); the others each in its own
    savepoint. Answers how many were granted or failed now."""
    now = now or utcnow()
    pending = list(
        db.session.scalars(
            select(GameDraw)
            .where(GameDraw.id.in_(draw_ids), GameDraw.status == PENDING_GRANT)
            .order_by(GameDraw.id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    )
    if not pending:
        return 0
    prizes = {
        p.id: p
        for p in db.session.scalars(
            select(GamePrize).where(GamePrize.id.in_({d.prize_id for d in pending}))
        )
    }
    names = dict(
        db.session.execute(
            select(GameCampaign.id, GameCampaign.name).where(
                GameCampaign.id.in_({d.campaign_id for d in pending})
            )
        ).all()
    )
    wins = [d for d in pending if prizes[d.prize_id].kind == POINTS]
    if wins:
        _grant_points(wins, prizes, names, now)
    for draw in pending:
        if prizes[draw.prize_id].kind != POINTS:
            _grant(draw, prizes[draw.prize_id], names[draw.campaign_id], now)
    return len(pending)


# Each draw granted (its entry) or failed (its error), still pending and held by this
# transaction.
_MARK_GRANTS = text(
    "UPDATE game_draw d SET status = r.status, points_entry_id = r.entry,"
    " grant_error = r.error,"
    " granted_at = CASE WHEN r.status = :granted THEN CAST(:now AS timestamptz)"
    "  ELSE d.granted_at END"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb))"
    "  AS r(id bigint, status varchar, entry bigint, error varchar)"
    " WHERE d.id = r.id AND d.brand_id = :b AND d.status = :pending"
)


def _grant_points(
    draws: list[GameDraw], prizes: dict[int, GamePrize], names: dict[int, str], now
) -> None:
    """Give the points of pending draws held by this transaction in one batch credit (the
    key ``game-draw:<id>``, the campaign's name as the reason, as ``_grant``), then mark
    them with one statement; a credit the points service refuses fails its draw."""
    from points import services as points

    outcome = points.credit_game_wins(
        [
            points.Credit(
                member_id=d.member_id,
                points=prizes[d.prize_id].points,
                key=f"game-draw:{d.id}",
                reason=names[d.campaign_id],
            )
            for d in draws
        ],
        now=now,
    )
    rows = []
    for d in draws:
        result = outcome[f"game-draw:{d.id}"]
        if result.ok:
            status, entry_id, error = GRANTED, result.entry_id, None
        else:
            status, entry_id, error = GRANT_FAILED, None, result.error.message[:200]
        rows.append({"id": d.id, "status": status, "entry": entry_id, "error": error})
    n = db.session.execute(
        _MARK_GRANTS,
        {
            "rows": _json(rows),
            "b": require_brand_id(),
            "granted": GRANTED,
            "pending": PENDING_GRANT,
            "now": now,
        },
    ).rowcount
    if n != len(rows):  # the draws are locked by this transaction: cannot happen
        raise RuntimeError("game draws changed while their points were granted")
    # Keep the loaded rows in step without making the ORM write them again.
    for d, row in zip(draws, rows, strict=True):
        set_committed_value(d, "status", row["status"])
        set_committed_value(d, "points_entry_id", row["entry"])
        set_committed_value(d, "grant_error", row["error"])
        if row["status"] == GRANTED:
            set_committed_value(d, "granted_at", now)


def _grant(draw: GameDraw, prize: GamePrize, reason: str, now: dt.datetime) -> GameDraw:
    """Give the prize of a pending draw held by this transaction (its row just written, or
    locked): a coupon or points through their services with the key ``game-draw:<id>``, in
    a savepoint; a refusal of those services marks the draw ``grant_failed``."""
    key = f"game-draw:{draw.id}"
    try:
        with db.session.begin_nested():
            if prize.kind == POINTS:
                from points import services as points

                credit = points.Credit(
                    member_id=draw.member_id, points=prize.points, key=key, reason=reason
                )
                result = points.credit_game_wins([credit], now=now)[key]
                if not result.ok:
                    raise result.error
                draw.points_entry_id = result.entry_id
            else:
                from coupons import services as coupons

                coupon = coupons.issue(
                    template_id=prize.coupon_template_id,
                    member_id=draw.member_id,
                    source="game",
                    idempotency_key=key,
                    now=now,
                )
                draw.coupon_id = coupon.id
            draw.status = GRANTED
            draw.granted_at = now
            db.session.flush()
    except AppError as exc:
        draw.status = GRANT_FAILED
        draw.grant_error = exc.message[:200]
        db.session.flush()
    return draw


def _campaign_name(campaign_id: int) -> str:
    return db.session.get(GameCampaign, campaign_id).name


def pending_grants(*, older_than: dt.timedelta, limit: int = 500) -> list[int]:
    """Draws of the current brand left ``pending_grant`` for longer than ``older_than``."""
    cutoff = utcnow() - older_than
    return list(
        db.session.scalars(
            select(GameDraw.id)
            .where(GameDraw.status == PENDING_GRANT, GameDraw.created_at < cutoff)
            .order_by(GameDraw.id)
            .limit(limit)
        )
    )


# --- gifts ---------------------------------------------------------------------------------


def submit_gift_address(
    *, draw_id: int, member_id: int, address: dict, now: dt.datetime | None = None
) -> GameDraw:
    """The winner of a physical gift gives a delivery address (name, phone, province, city,
    district, detail) or picks a store (``{"store_id": id}``); the draw becomes granted."""
    now = now or utcnow()
    draw = db.session.get(GameDraw, draw_id) if isinstance(draw_id, int) else None
    if draw is None or draw.brand_id != require_brand_id() or draw.member_id != member_id:
        raise NotFound(_l("Unknown prize."), field="draw_id")
    if draw.status != AWAITING_ADDRESS:
        raise Conflict(_l("This prize has already been claimed."))
    if not isinstance(address, dict):
        raise ValidationError(_l("Give a delivery address or a store."), field="address")
    campaign = db.session.get(GameCampaign, draw.campaign_id)
    if address.get("store_id") is not None:
        store_id = address.get("store_id")
        store = db.session.get(Store, store_id) if isinstance(store_id, int) else None
        if store is None or store.brand_id != draw.brand_id or not store.active:
            raise ValidationError(_l("Choose a store."), field="store_id")
        if campaign.pickup_store_ids and store.id not in campaign.pickup_store_ids:
            raise ValidationError(_l("This store does not hand out the prize."), field="store_id")
        clean = {"store_id": store.id, "store_name": store.name}
    else:
        clean = validators.check_address(address)
    changed = db.session.execute(
        text(
            "UPDATE game_draw SET status = :granted, granted_at = :now,"
            " address = CAST(:addr AS json)"
            " WHERE id = :id AND brand_id = :b AND status = :waiting RETURNING id"
        ),
        {
            "granted": GRANTED,
            "now": now,
            "addr": _json(clean),
            "id": draw.id,
            "b": draw.brand_id,
            "waiting": AWAITING_ADDRESS,
        },
    ).scalar()
    if changed is None:
        raise Conflict(_l("This prize has already been claimed."))
    db.session.refresh(draw)
    return draw


def _json(value: dict | list) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
