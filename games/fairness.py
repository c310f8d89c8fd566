"""Provable fairness: recompute every draw of a campaign from its seed and compare.

For each recorded (non-preview) draw: its random number must be HMAC-SHA256(seed,
"campaign_id:draw_id"); the prize it maps to under the weights (or, for a check-in, the
streak day's prize) must be the recorded pick; each recorded refusal must follow the
prize table's fallbacks from the pick to the prize shown; the prize won must be that
prize (thanks: none). Then each prize's counter must equal its winning draws and stay
within its stock. Anyone can run the same recomputation once the seed is revealed
(``flask --app app games verify CAMPAIGN``; the algorithm is in ``games.draws``).
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select

from core.db import db
from games import draws
from games.models import FALLBACK_REASONS, NONE, PAID_CHECKIN, GameCampaign, GameDraw, GamePrize
from games.queries import prizes as campaign_prizes

BATCH = 5000


@dataclasses.dataclass
class Report:
    campaign_id: int
    checked: int = 0
    mismatches: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def check_draw(
    draw: GameDraw, campaign: GameCampaign, pool: list[GamePrize], seed: str
) -> list[str]:
    """What is wrong with one recorded draw (empty: it recomputes exactly)."""
    problems: list[str] = []
    by_id = {p.id: p for p in pool}
    expected = draws.draw_random(seed, campaign.id, draw.id)
    if draw.random_hex != expected:
        problems.append(f"draw {draw.id}: random number differs from HMAC(seed, id)")
        return problems
    if draw.paid_with == PAID_CHECKIN:
        by_day = {p.streak_day: p.id for p in pool if p.streak_day}
        picked = draws.streak_prize(draw.streak or 0, campaign.checkin_cycle, by_day)
    else:
        picked = draws.pick(expected, [draws.Slot(p.id, p.weight) for p in pool])
    if picked != draw.picked_prize_id:
        problems.append(f"draw {draw.id}: picks prize {picked}, recorded {draw.picked_prize_id}")
        return problems
    current = picked
    seen: set[int] = set()
    for hop in draw.fallbacks or []:
        prize_id, reason = hop[0], hop[1]
        if prize_id != current or reason not in FALLBACK_REASONS or prize_id in seen:
            problems.append(f"draw {draw.id}: refusal {hop} does not follow the fallbacks")
            return problems
        seen.add(prize_id)
        current = by_id[prize_id].fallback_prize_id if prize_id in by_id else None
    if current in seen:
        current = None
    if current != draw.slot_prize_id:
        problems.append(f"draw {draw.id}: lands on {current}, recorded {draw.slot_prize_id}")
    won = current if current is not None and by_id.get(current).kind != NONE else None
    if won != draw.prize_id:
        problems.append(f"draw {draw.id}: wins {won}, recorded {draw.prize_id}")
    return problems


def verify(campaign_id: int, *, seed: str | None = None) -> Report:
    """Recompute every draw of the campaign (of the current brand) from ``seed`` (default:
    the campaign's own) and check the prize counters."""
    campaign = db.session.get(GameCampaign, campaign_id)
    seed = seed or campaign.seed
    report = Report(campaign_id=campaign.id)
    pool = campaign_prizes(campaign.id)
    if draws.seed_hash(seed) != campaign.seed_hash:
        report.mismatches.append("the seed does not match the published hash")
        return report
    last = 0
    while True:
        batch = list(
            db.session.scalars(
                select(GameDraw)
                .where(
                    GameDraw.campaign_id == campaign.id,
                    GameDraw.preview.is_(False),
                    GameDraw.id > last,
                )
                .order_by(GameDraw.id)
                .limit(BATCH)
            )
        )
        if not batch:
            break
        for draw in batch:
            report.mismatches.extend(check_draw(draw, campaign, pool, seed))
        report.checked += len(batch)
        last = batch[-1].id
        db.session.expunge_all()
        campaign = db.session.get(GameCampaign, campaign_id)
        pool = campaign_prizes(campaign_id)
    won = dict(
        db.session.execute(
            select(GameDraw.prize_id, func.count())
            .where(
                GameDraw.campaign_id == campaign_id,
                GameDraw.preview.is_(False),
                GameDraw.prize_id.is_not(None),
            )
            .group_by(GameDraw.prize_id)
        ).all()
    )
    for p in pool:
        if p.kind == NONE or p.stock is None:
            continue  # an unlimited prize keeps no counter: its wins are its draws
        if won.get(p.id, 0) != p.awarded:
            report.mismatches.append(
                f"prize {p.id}: counter {p.awarded}, winning draws {won.get(p.id, 0)}"
            )
        if p.stock is not None and p.awarded > p.stock:
            report.mismatches.append(f"prize {p.id}: {p.awarded} won beyond stock {p.stock}")
    return report
