"""Campaign analytics (reads): the funnel, rates, revenue, breakdowns by store, city and
tier, the comparison with the holdout groups (uplift and incremental ROI), the charts, and
the recipients' CSV export (a job, formula-safe).

Every figure comes from the rollup counters (``campaign_counter``) raised with each state
change, never from counting a campaign's recipients on a page view.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from typing import BinaryIO

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text

from campaigns.models.push import (
    BRAND_HOLDOUT,
    CAMPAIGN_HOLDOUT,
    NO_MESSAGE,
    TARGET,
    Campaign,
    CampaignCounter,
)
from core import charts, exports
from core.csvsafe import SafeWriter
from core.db import db
from core.tenancy import require_brand_id
from org.models import Store

FUNNEL = ("targeted", "sent", "delivered", "opened", "claimed", "redeemed")
FUNNEL_LABELS = {
    "targeted": _l("Targeted"),
    "sent": _l("Sent"),
    "delivered": _l("Delivered"),
    "opened": _l("Opened"),
    "claimed": _l("Claimed"),
    "redeemed": _l("Redeemed"),
}
EXPORT_KIND = "campaign_recipients"


def counters(campaign_id: int, *, dim: str = "") -> dict[tuple[str, str, int], int]:
    """(dim_key, metric, group) -> n of one campaign, for one dimension ("" = overall)."""
    rows = db.session.execute(
        select(
            CampaignCounter.dim_key, CampaignCounter.metric, CampaignCounter.grp, CampaignCounter.n
        )
        .where(CampaignCounter.campaign_id == campaign_id, CampaignCounter.dim == dim)
        .execution_options(all_brands=True)
    ).all()
    return {(k, m, g): int(n) for k, m, g, n in rows}


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else part / whole


@dataclasses.dataclass
class Group:
    """One group's figures: the targets, the campaign's holdout, or the brand's holdout."""

    members: int
    purchased: int
    purchase_fen: int

    @property
    def purchase_rate(self) -> float | None:
        return _rate(self.purchased, self.members)

    @property
    def spend_per_member(self) -> float | None:
        return None if not self.members else self.purchase_fen / self.members


def delivery_applies(campaign: Campaign) -> bool:
    """Whether the campaign sends a message that can be delivered: a coupon-only push puts
    the coupon in the member's account and sends nothing, so it has no delivery figure."""
    return campaign.channel != NO_MESSAGE


@dataclasses.dataclass
class Report:
    # ``delivered`` is None for a coupon-only push (no message to deliver)
    funnel: dict[str, int | None]
    skipped: int
    failed: int
    unfollowed: int
    capped: int
    revenue_fen: int
    discount_fen: int
    target: Group
    holdout: Group
    brand_holdout: Group

    @property
    def redemption_rate(self) -> float | None:
        return _rate(self.funnel["redeemed"], self.funnel["sent"])

    @property
    def uplift(self) -> float | None:
        """Purchase rate of the targets minus that of the holdout (both groups together)."""
        base = self.baseline
        if self.target.purchase_rate is None or base.purchase_rate is None:
            return None
        return self.target.purchase_rate - base.purchase_rate

    @property
    def baseline(self) -> Group:
        h, b = self.holdout, self.brand_holdout
        return Group(
            h.members + b.members, h.purchased + b.purchased, h.purchase_fen + b.purchase_fen
        )

    @property
    def incremental_fen(self) -> int | None:
        """Spend the campaign added: targets' spend per member over the holdout's, times the
        targets."""
        base = self.baseline
        if not self.target.members or not base.members:
            return None
        extra = self.target.purchase_fen / self.target.members - base.purchase_fen / base.members
        return round(extra * self.target.members)

    @property
    def incremental_roi(self) -> float | None:
        """(incremental spend - cost) / cost, the cost being the coupons' discounts."""
        inc = self.incremental_fen
        if inc is None or not self.discount_fen:
            return None
        return (inc - self.discount_fen) / self.discount_fen


def report(campaign: Campaign) -> Report:
    c = counters(campaign.id)

    def n(metric: str, grp: int = TARGET) -> int:
        return c.get(("", metric, grp), 0)

    def group(grp: int) -> Group:
        return Group(n("targeted", grp), n("purchased", grp), n("purchase_fen", grp))

    funnel: dict[str, int | None] = {m: n(m) for m in FUNNEL}
    if not delivery_applies(campaign):
        funnel["delivered"] = None
    return Report(
        funnel=funnel,
        skipped=n("skipped"),
        failed=n("failed"),
        unfollowed=n("unfollowed"),
        capped=n("capped"),
        revenue_fen=n("revenue_fen"),
        discount_fen=n("discount_fen"),
        target=group(TARGET),
        holdout=group(CAMPAIGN_HOLDOUT),
        brand_holdout=group(BRAND_HOLDOUT),
    )


def progress(campaign: Campaign) -> dict:
    """Live progress for the console: recipients done of the targets, chunks done."""
    c = counters(campaign.id)
    targets = c.get(("", "targeted", TARGET), 0)
    done = sum(c.get(("", m, TARGET), 0) for m in ("sent", "skipped", "failed"))
    chunks_done = db.session.execute(
        text("SELECT count(*) FROM campaign_chunk WHERE campaign_id = :c AND state = 'done'"),
        {"c": campaign.id},
    ).scalar_one()
    return {
        "status": campaign.status,
        "targets": targets,
        "done": done,
        "sent": c.get(("", "sent", TARGET), 0),
        "skipped": c.get(("", "skipped", TARGET), 0),
        "failed": c.get(("", "failed", TARGET), 0),
        "percent": 100 if not targets else min(100, round(done * 100 / targets)),
        "chunks_done": int(chunks_done),
        "chunks_total": campaign.chunks_total,
    }


@dataclasses.dataclass
class BreakdownRow:
    name: str
    targeted: int
    sent: int
    opened: int
    redeemed: int
    revenue_fen: int

    @property
    def redemption_rate(self) -> float | None:
        return _rate(self.redeemed, self.sent)


def breakdown(campaign: Campaign, dim: str, *, limit: int = 50) -> list[BreakdownRow]:
    """The targets' funnel by store, city or tier (the largest first)."""
    c = counters(campaign.id, dim=dim)
    keys = {k for (k, _m, g) in c if g == TARGET}
    names = _names(dim, keys)
    rows = [
        BreakdownRow(
            name=names.get(k) or _("Not set"),
            targeted=c.get((k, "targeted", TARGET), 0),
            sent=c.get((k, "sent", TARGET), 0),
            opened=c.get((k, "opened", TARGET), 0),
            redeemed=c.get((k, "redeemed", TARGET), 0),
            revenue_fen=c.get((k, "revenue_fen", TARGET), 0),
        )
        for k in keys
    ]
    rows.sort(key=lambda r: (-r.targeted, r.name))
    return rows[:limit]


def _names(dim: str, keys: set[str]) -> dict[str, str]:
    ids = [int(k) for k in keys if k.isdigit()]
    if dim == "city":
        return {k: k for k in keys if k}
    if dim == "store" and ids:
        rows = db.session.execute(select(Store.id, Store.name).where(Store.id.in_(ids))).all()
        return {str(i): name for i, name in rows}
    if dim == "tier" and ids:
        from members.models import TierLevel

        rows = db.session.execute(
            select(TierLevel.id, TierLevel.name).where(TierLevel.id.in_(ids))
        ).all()
        return {str(i): name for i, name in rows}
    return {}


def funnel_chart(rep: Report) -> dict:
    rows = [
        {"name": str(FUNNEL_LABELS[m]), "n": rep.funnel[m]}
        for m in FUNNEL
        if rep.funnel[m] is not None
    ]
    return charts.bars(rows, x="name", series=[("n", _("Members"))], horizontal=True)


def breakdown_chart(rows: list[BreakdownRow]) -> dict:
    data = [{"name": r.name, "sent": r.sent, "redeemed": r.redeemed} for r in rows[:12]]
    return charts.bars(
        data, x="name", series=[("sent", _("Sent")), ("redeemed", _("Redeemed"))], horizontal=True
    )


def reach_by_day(*, d0: dt.date, d1: dt.date) -> list[dict] | None:
    """The brand dashboard's reach: per brand-local day a campaign started in ``[d0, d1)``,
    its targets' targeted, sent, delivered and opened counters (from the rollups); None when
    the brand has sent no campaign yet. ``reach_targeted`` and ``reach_opened`` count only
    the pushes that send a message (the reach and click rates' base): a coupon-only push
    delivers nothing and adds no ``delivered``."""
    from org.models import Brand

    brand_id = require_brand_id()
    tz = db.session.get(Brand, brand_id).tz
    start = dt.datetime.combine(d0, dt.time(), tz).astimezone(dt.UTC)
    end = dt.datetime.combine(d1, dt.time(), tz).astimezone(dt.UTC)
    rows = db.session.execute(
        text(
            "SELECT c.started_at, c.channel, k.metric, k.n FROM campaign c"
            " JOIN campaign_counter k"
            " ON k.campaign_id = c.id AND k.dim = '' AND k.grp = 0"
            " AND k.metric IN ('targeted', 'sent', 'delivered', 'opened')"
            " WHERE c.brand_id = :b AND c.started_at >= :s AND c.started_at < :e"
        ),
        {"b": brand_id, "s": start, "e": end},
    ).all()
    if not rows:
        return None
    days: dict[dt.date, dict] = {}
    for started, channel, metric, n in rows:
        day = started.astimezone(tz).date()
        entry = days.setdefault(
            day,
            {
                "day": day,
                "targeted": 0,
                "sent": 0,
                "delivered": 0,
                "opened": 0,
                "reach_targeted": 0,
                "reach_opened": 0,
            },
        )
        message = channel != NO_MESSAGE
        if metric == "delivered" and not message:
            continue  # counted as delivered before coupon-only pushes stopped claiming it
        entry[metric] += int(n)
        if message and metric in ("targeted", "opened"):
            entry[f"reach_{metric}"] += int(n)
    return [days[d] for d in sorted(days)]


# --- the CSV export -------------------------------------------------------------------------

GROUP_LABELS = {
    TARGET: _l("Target group"),
    CAMPAIGN_HOLDOUT: _l("Holdout"),
    BRAND_HOLDOUT: _l("Brand holdout"),
}
STATE_LABELS = {
    "pending": _l("Waiting"),
    "sending": _l("Sending"),
    "sent": _l("Sent"),
    "failed": _l("Failed"),
    "skipped": _l("Skipped"),
    "held": _l("Held out"),
}
REASON_LABELS = {
    "capped": _l("Frequency cap"),
    "unfollowed": _l("Unfollowed"),
    "no_openid": _l("Not following"),
    "no_opt_in": _l("No subscription"),
    "mass_single": _l("A mass message needs two followers or more"),
    "no_window": _l("Outside the 48-hour window"),
    "no_phone": _l("No phone number"),
    "cancelled": _l("Cancelled"),
    "sold_out": _l("Coupon sold out"),
}


def write_recipients_csv(export: exports.ExportFile, out: BinaryIO, progress) -> int:
    """The export job's writer: one row per recipient (UTF-8 with a BOM for Excel)."""
    campaign_id = int((export.params or {}).get("campaign_id") or 0)
    campaign = db.session.execute(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.brand_id == export.brand_id)
    ).scalar_one_or_none()
    if campaign is None:
        raise LookupError("no such campaign")
    progress(0, campaign.targeted)
    head = io.StringIO()
    SafeWriter(head, lineterminator="\n").writerow(
        [
            _("Card number"),
            _("Group"),
            _("State"),
            _("Reason"),
            _("Store"),
            _("City"),
            _("Sent at"),
            _("Delivered"),
            _("Opened"),
            _("Claimed"),
            _("Redeemed"),
            _("Order amount (yuan)"),
        ]
    )
    out.write(("\ufeff" + head.getvalue()).encode("utf-8"))
    stores = dict(db.session.execute(select(Store.id, Store.name)).all())
    tz = campaign_tz(campaign)
    delivery = delivery_applies(campaign)
    rows = 0
    last = 0
    while True:
        batch = db.session.execute(
            text(
                "SELECT r.member_id, m.card_no, r.holdout, r.state, r.skip_reason, r.store_id,"
                " r.city, r.sent_at, r.delivered_at, r.opened_at, r.claimed_at, r.redeemed_at,"
                " r.revenue_fen FROM campaign_recipient r JOIN member m ON m.id = r.member_id"
                " WHERE r.campaign_id = :c AND r.member_id > :last ORDER BY r.member_id"
                " LIMIT 5000"
            ),
            {"c": campaign.id, "last": last},
        ).all()
        if not batch:
            break
        buf = io.StringIO()
        w = SafeWriter(buf, lineterminator="\n")
        yes, no = _("Yes"), _("No")
        for r in batch:
            w.writerow(
                [
                    r.card_no,
                    str(GROUP_LABELS.get(r.holdout, "")),
                    str(STATE_LABELS.get(r.state, r.state)),
                    str(REASON_LABELS.get(r.skip_reason, r.skip_reason or "")),
                    stores.get(r.store_id, ""),
                    r.city or "",
                    r.sent_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if r.sent_at else "",
                    (yes if r.delivered_at else no) if delivery else "—",
                    yes if r.opened_at else no,
                    yes if r.claimed_at else no,
                    yes if r.redeemed_at else no,
                    f"{r.revenue_fen / 100:.2f}" if r.redeemed_at else "",
                ]
            )
        out.write(buf.getvalue().encode("utf-8"))
        rows += len(batch)
        last = batch[-1].member_id
        progress(rows)
    return rows


def campaign_tz(campaign: Campaign):
    from org.models import Brand

    return db.session.get(Brand, campaign.brand_id).tz


exports.register_export(EXPORT_KIND, label=_l("Campaign recipients"), write=write_recipients_csv)
