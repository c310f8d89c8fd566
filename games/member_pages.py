"""What the member's game pages show, computed from a campaign (no HTTP here): the slots of
the wheel and the nine-grid, the campaign's state in words, the check-in calendar, the
result of a draw in words, and the delivery details of a physical gift."""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import math
import zoneinfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.db import db, utcnow
from games import draws
from games.models import (
    AWAITING_ADDRESS,
    COUPON,
    ENDED,
    GIFT,
    LIVE,
    NONE,
    PAUSED,
    POINTS,
    GameCampaign,
    GameCheckIn,
    GameDraw,
    GamePrize,
)
from org.models import Store

KIND_LABELS = {
    COUPON: _l("Coupon"),
    POINTS: _l("Points"),
    GIFT: _l("Gift"),
    NONE: _l("Thanks"),
}
GAME_NAMES = {
    "wheel": _l("Lucky wheel"),
    "scratch": _l("Scratch card"),
    "grid": _l("Nine-grid"),
    "checkin": _l("Daily check-in"),
}
# The wheel's sectors alternate two warm colours (three when the count is odd, so that the
# last sector does not touch one of its own colour).
WHEEL_COLOURS = ("#fff3d6", "#ffd27a", "#ffe6a8")
# The nine-grid's cells in the order the highlight runs (clockwise), the centre is the button.
GRID_RUN = (0, 1, 2, 5, 8, 7, 6, 3)

NOT_STARTED, RUNNING, ENDED_STATE, PAUSED_STATE = "not_started", "live", "ended", "paused"


@dataclasses.dataclass(frozen=True)
class Slot:
    """One place on a game board: a prize (``prize_id`` None for "thanks")."""

    prize_id: int | None
    name: str
    kind: str
    angle: float = 0.0
    run: int = 0
    width: int = 76  # a wheel label's width in px: narrower when the sectors are

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS.get(self.kind, ""))


def _local(when: dt.datetime, tz: str) -> dt.datetime:
    return when.astimezone(zoneinfo.ZoneInfo(tz))


def window_text(campaign: GameCampaign, tz: str) -> str:
    """The campaign's time window, e.g. "2026-12-01 10:00 至 2026-12-31 22:00"."""
    fmt = "%Y-%m-%d %H:%M"
    return _(
        "%(start)s to %(end)s",
        start=_local(campaign.starts_at, tz).strftime(fmt),
        end=_local(campaign.ends_at, tz).strftime(fmt),
    )


def state_of(campaign: GameCampaign, now: dt.datetime | None = None) -> str:
    """``live``, ``not_started``, ``paused`` or ``ended`` as a member sees it now."""
    now = now or utcnow()
    if campaign.status == ENDED or now >= campaign.ends_at:
        return ENDED_STATE
    if now < campaign.starts_at:
        return NOT_STARTED
    if campaign.status == PAUSED:
        return PAUSED_STATE
    return RUNNING if campaign.status == LIVE else NOT_STARTED


def state_message(campaign: GameCampaign, state: str, tz: str) -> str:
    if state == NOT_STARTED:
        when = _local(campaign.starts_at, tz).strftime("%Y-%m-%d %H:%M")
        return _("This game has not started yet. It opens at %(when)s.", when=when)
    if state == ENDED_STATE:
        return _("This game has ended. Thank you for taking part.")
    if state == PAUSED_STATE:
        return _("This game is paused for a moment. Please come back later.")
    return ""


def cost_text(campaign: GameCampaign) -> tuple[str, str]:
    """(value, label) of what one play costs."""
    if campaign.kind == "checkin":
        return _("Free"), _("Check in daily")
    if campaign.cost_points:
        if campaign.free_per_day:
            label = _("Points a play (%(n)s free a day)", n=campaign.free_per_day)
        else:
            label = _("Points a play")
        return str(campaign.cost_points), label
    return _("Free"), _("Each play")


def slots(prizes: list[GamePrize]) -> list[Slot]:
    """The prizes in board order, with a "thanks" slot when the pool has none (a member who
    may not win anything of value lands there)."""
    chance = [p for p in prizes if p.streak_day is None]
    out = [Slot(p.id, p.name, p.kind) for p in sorted(chance, key=lambda p: p.position)]
    if not any(s.kind == NONE for s in out):
        out.append(Slot(None, _("Thanks for playing"), NONE))
    return out


def wheel(prizes: list[GamePrize]) -> tuple[list[Slot], str]:
    """The wheel's sectors (clockwise from the top, each label turned to its middle) and the
    conic gradient that paints them."""
    board = slots(prizes)
    step = 360 / len(board)
    colours = list(WHEEL_COLOURS[:2]) * len(board)
    if len(board) % 2 and len(board) > 1:
        colours[len(board) - 1] = WHEEL_COLOURS[2]
    parts = [f"{colours[i]} {i * step:.3f}deg {(i + 1) * step:.3f}deg" for i in range(len(board))]
    # the arc of a sector where its label sits (about 105 px from the centre)
    width = max(40, min(76, int(2 * math.pi * 105 / len(board)) - 4))
    sectors = [
        dataclasses.replace(s, angle=round(i * step + step / 2, 3), width=width)
        for i, s in enumerate(board)
    ]
    return sectors, "conic-gradient(from 0deg, " + ", ".join(parts) + ")"


def grid(prizes: list[GamePrize]) -> list[Slot | None]:
    """Nine places: eight prizes round the button in the middle (the pool repeated when it
    has fewer than eight, its first eight when more)."""
    board = slots(prizes)
    cells: list[Slot | None] = [None] * 9
    for run, place in enumerate(GRID_RUN):
        cells[place] = dataclasses.replace(board[run % len(board)], run=run)
    return cells


def drawn_slot_id(draw) -> int | None:
    """The prize the board stops on: the one shown for the draw (``slot_prize_id``) when the
    engine records one, else the prize won."""
    shown = getattr(draw, "slot_prize_id", None)
    if shown is not None and draw.prize_id is None:
        return shown
    return draw.prize_id


# --- check-in -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Day:
    n: int
    iso: str
    done: bool
    today: bool


def calendar_month(today: dt.date, done: set[dt.date]) -> dict:
    """The month of ``today`` as weeks (Monday first) of ``Day`` or None."""
    weeks = []
    for week in calendar.Calendar(firstweekday=0).monthdatescalendar(today.year, today.month):
        weeks.append(
            [
                Day(d.day, d.isoformat(), d in done, d == today) if d.month == today.month else None
                for d in week
            ]
        )
    return {
        "month_title": _("%(y)s-%(m)02d", y=today.year, m=today.month),
        "weekdays": [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")],
        "weeks": weeks,
    }


# --- a draw in words ----------------------------------------------------------------------


def result(draw, *, urls: dict[str, str]) -> dict:
    """What the result dialog says about a draw (title, prize, what happens next, a link)."""
    out = {
        "id": draw.id,
        "prize_id": drawn_slot_id(draw),
        "won": draw.prize_id is not None,
        "prize_name": draw.prize_name if draw.prize_id is not None else "",
        "kind": draw.prize_kind if draw.prize_id is not None else NONE,
        "status": draw.status,
        "title": _("Congratulations!") if draw.prize_id is not None else _("Thanks for playing"),
        "message": "",
        "action_url": "",
        "action_label": "",
    }
    kind = out["kind"]
    if kind == COUPON:
        out.update(
            message=_("The coupon is in your coupons."),
            action_url=urls["coupons"],
            action_label=_("My coupons"),
        )
    elif kind == POINTS:
        out.update(
            message=_("The points are in your account."),
            action_url=urls["points"],
            action_label=_("My points"),
        )
    elif kind == GIFT:
        out.update(
            message=_("Tell us where to send it, or pick it up in a store."),
            action_url=urls["delivery"] if draw.status == AWAITING_ADDRESS else urls["prizes"],
            action_label=_("Claim the gift") if draw.status == AWAITING_ADDRESS else _("My prizes"),
        )
    else:
        out.update(message=_("Not this time. Better luck next play!"))
    return out


# --- fairness -----------------------------------------------------------------------------

SAMPLE_SEED = "sample-seed-for-the-explanation"


def fairness_example(campaign: GameCampaign, prizes: list[GamePrize], first_draw=None) -> dict:
    """The prize table with each prize's range of ``x``, and one draw worked through by the
    engine's own functions: the campaign's first draw once its seed is revealed, else draw 1
    under a sample seed."""
    chance = sorted((p for p in prizes if p.streak_day is None), key=lambda p: p.position)
    total = sum(p.weight for p in chance)
    table, low = [], 0
    for p in chance:
        table.append(
            {
                "id": p.id,
                "name": p.name,
                "weight": p.weight,
                "low": low if p.weight else "",
                "high": low + p.weight - 1 if p.weight else "",
                "chance": f"{p.weight * 100 / total:.2f}%" if total else "",
            }
        )
        low += p.weight
    out = {"table": table, "total": total, "random_hex": "", "real": False}
    if campaign.kind == "checkin" or not total:
        return out
    real = campaign.status == ENDED and bool(campaign.seed) and first_draw is not None
    seed = campaign.seed if real else SAMPLE_SEED
    draw_id = first_draw.id if real else 1
    random_hex = draws.draw_random(seed, campaign.id, draw_id)
    picked = draws.pick(random_hex, [draws.Slot(p.id, p.weight) for p in chance])
    names = {p.id: p.name for p in chance}
    r = int(random_hex[:16], 16)
    out.update(
        real=real,
        seed=seed,
        message=f"{campaign.id}:{draw_id}",
        random_hex=random_hex,
        r=r,
        x=(r * total) >> 64,
        prize_name=names.get(picked, _("Thanks for playing")),
        picked_prize_id=picked,
    )
    if real:
        from games.fairness import check_draw

        out["verified"] = not check_draw(first_draw, campaign, prizes, seed)
        out["recorded_name"] = first_draw.prize_name or _("Thanks for playing")
        out["fallback_note"] = (
            _("replaced by its fallback: %(why)s", why=_fallback_reason(first_draw.fallbacks))
            if first_draw.fallbacks
            else ""
        )
    return out


_REASONS = {
    "stock": _l("out of stock"),
    "daily_cap": _l("today's cap reached"),
    "budget": _l("budget spent"),
    "win_limit": _l("win limit reached"),
    "not_activated": _l("member card not activated"),
}


def _fallback_reason(fallbacks) -> str:
    reasons = [str(_REASONS.get(f[1], "")) for f in fallbacks or () if len(f) > 1]
    return "、".join(r for r in reasons if r)


# --- reads the pages need -----------------------------------------------------------------


def campaign_prizes(campaign_id: int) -> list[GamePrize]:
    """The campaign's prizes in board order."""
    return list(
        db.session.scalars(
            select(GamePrize)
            .where(GamePrize.campaign_id == campaign_id)
            .order_by(GamePrize.position, GamePrize.id)
        )
    )


def open_campaigns(now: dt.datetime | None = None) -> list[GameCampaign]:
    """The brand's games a member may open: live or paused, not yet over."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(GameCampaign)
            .where(GameCampaign.status.in_((LIVE, PAUSED)), GameCampaign.ends_at > now)
            .order_by(GameCampaign.starts_at, GameCampaign.id)
            .limit(50)
        )
    )


def checkin_days(campaign_id: int, member_id: int, month: dt.date) -> set[dt.date]:
    """The days of ``month`` the member checked in."""
    first = month.replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return set(
        db.session.scalars(
            select(GameCheckIn.day).where(
                GameCheckIn.campaign_id == campaign_id,
                GameCheckIn.member_id == member_id,
                GameCheckIn.day.between(first, last),
            )
        )
    )


def checkin_streak(campaign_id: int, member_id: int, today: dt.date) -> int:
    """The member's running streak: the last check-in's streak when it was today or
    yesterday, else 0."""
    row = db.session.execute(
        select(GameCheckIn.day, GameCheckIn.streak)
        .where(GameCheckIn.campaign_id == campaign_id, GameCheckIn.member_id == member_id)
        .order_by(GameCheckIn.day.desc())
        .limit(1)
    ).first()
    if row is None or row.day < today - dt.timedelta(days=1):
        return 0
    return row.streak


def first_draw(campaign_id: int) -> GameDraw | None:
    """The campaign's first recorded (not preview) draw."""
    return db.session.scalars(
        select(GameDraw)
        .where(GameDraw.campaign_id == campaign_id, GameDraw.preview.is_(False))
        .order_by(GameDraw.id)
        .limit(1)
    ).first()


def member_draw(draw_id: int, member_id: int) -> GameDraw | None:
    """One of the member's own draws (None for anyone else's)."""
    return db.session.scalars(
        select(GameDraw).where(
            GameDraw.id == draw_id, GameDraw.member_id == member_id, GameDraw.preview.is_(False)
        )
    ).first()


def pickup_stores(campaign: GameCampaign) -> list[Store]:
    """The active stores where the campaign's gifts may be picked up."""
    ids = [i for i in campaign.pickup_store_ids or () if isinstance(i, int)]
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(Store).where(Store.id.in_(ids), Store.active.is_(True)).order_by(Store.name)
        )
    )


# --- plays left and my prizes -------------------------------------------------------------


def plays_left_count(campaign: GameCampaign, left, points_balance: int) -> int | None:
    """How many more plays the member has now (None: no limit), from the engine's
    ``queries.plays_left``: the limits' allowance, and what the member can pay for (free
    plays today, earned extra plays, plays their points buy)."""
    caps = [c for c in (left.allowed_today, left.allowed_total) if c is not None]
    cap = min(caps) if caps else None
    if campaign.cost_points == 0 and campaign.free_per_day == 0:
        payable = None  # a free game: only the limits count
    else:
        payable = left.free_today + left.extra
        if left.cost_points:
            payable += max(0, points_balance) // left.cost_points
    found = [n for n in (cap, payable) if n is not None]
    return min(found) if found else None


_STATUS_TEXTS = {
    "granted": _l("Given"),
    "pending_grant": _l("On its way"),
    "awaiting_address": _l("Waiting for your delivery details"),
    "grant_failed": _l("Could not be given; please contact the organiser"),
}


@dataclasses.dataclass(frozen=True)
class PrizeRow:
    id: int
    campaign_name: str
    prize_name: str
    prize_kind: str
    status: str
    status_text: str
    delivery_text: str
    created_at: dt.datetime


def prize_rows(rows: list[GameDraw], tz: str) -> list[PrizeRow]:
    """The member's prizes as "my prizes" shows them."""
    ids = {d.campaign_id for d in rows}
    campaigns = (
        {c.id: c for c in db.session.scalars(select(GameCampaign).where(GameCampaign.id.in_(ids)))}
        if ids
        else {}
    )
    out = []
    for d in rows:
        c = campaigns.get(d.campaign_id)
        status_text = str(_STATUS_TEXTS.get(d.status, ""))
        delivery = ""
        if d.status == AWAITING_ADDRESS and c is not None:
            until = _local(d.created_at + dt.timedelta(days=c.claim_days), tz)
            delivery = _(
                "Claim by %(day)s, or the gift is forfeited.", day=until.strftime("%Y-%m-%d")
            )
        elif d.prize_kind == GIFT and d.address:
            if d.address.get("store_name"):
                status_text = _("Pick up in the store")
                delivery = d.address["store_name"]
            else:
                status_text = _("Delivery details received")
                a = d.address
                delivery = " ".join(
                    x for x in (a.get("name"), a.get("province"), a.get("city"),
                                a.get("district"), a.get("detail")) if x
                )  # fmt: skip
        elif d.status == "granted" and d.prize_kind == COUPON:
            status_text = _("In My coupons")
        elif d.status == "granted" and d.prize_kind == POINTS:
            status_text = _("Added to your points")
        out.append(
            PrizeRow(
                d.id,
                c.name if c else "",
                d.prize_name,
                d.prize_kind,
                d.status,
                status_text,
                delivery,
                d.created_at,
            )  # fmt: skip
        )
    return out
