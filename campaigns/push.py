"""Push campaigns (writes): create and check a campaign, start it now, at a time or every
month, pause, resume, cancel, and the brand's push rules. Services flush, never commit.

The fan-out itself is in ``campaigns.fanout``; what a campaign may send on which channel is
in ``campaigns.channels``.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text, update

from campaigns import fanout
from campaigns.models.push import (
    AT,
    CANCELLED,
    CHANNELS,
    COMPLETED,
    CUSTOMER_SERVICE,
    DRAFT,
    MASS,
    MONTHLY,
    NO_MESSAGE,
    NOW,
    PAUSED,
    PREPARING,
    RUNNING,
    SCHEDULED,
    SCHEDULES,
    SMS,
    SUBSCRIBE,
    TEMPLATE,
    Campaign,
    CampaignSettings,
)
from core.db import db, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.jobs import enqueue
from core.tenancy import require_brand_id
from core.validators import whole
from coupons.models import THIRD_PARTY, CouponTemplate
from org.models import Brand

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
TITLE_MAX = 20


def _segment(segment_id):
    from campaigns.models import Segment

    if not isinstance(segment_id, int) or isinstance(segment_id, bool):
        raise ValidationError(_l("Choose a segment."), field="segment_id")
    seg = db.session.execute(select(Segment).where(Segment.id == segment_id)).scalar_one_or_none()
    if seg is None:
        raise ValidationError(_l("Choose a segment."), field="segment_id")
    return seg


def _coupon(template_id) -> CouponTemplate | None:
    if template_id in (None, ""):
        return None
    if not isinstance(template_id, int) or isinstance(template_id, bool):
        raise ValidationError(_l("Choose a coupon."), field="coupon_template_id")
    tpl = db.session.execute(
        select(CouponTemplate).where(CouponTemplate.id == template_id)
    ).scalar_one_or_none()
    if tpl is None or not tpl.active:
        raise ValidationError(_l("Choose a coupon that is offered."), field="coupon_template_id")
    if tpl.kind == THIRD_PARTY:
        raise ValidationError(
            _l("Third-party coupons are handed out one by one."), field="coupon_template_id"
        )
    return tpl


def _text(value, field: str, *, max_len: int, required: bool = False) -> str:
    value = (value or "").strip() if isinstance(value, str) or value is None else None
    if value is None:
        raise ValidationError(_l("Enter text."), field=field)
    if required and not value:
        raise ValidationError(_l("This field is required."), field=field)
    if len(value) > max_len:
        raise ValidationError(_l("At most %(n)d characters.", n=max_len), field=field)
    return value


def _check_message(*, channel: str, coupon, wx_template_id: str, title: str, body: str) -> None:
    if channel not in CHANNELS:
        raise ValidationError(_l("Choose a channel."), field="channel")
    if channel == NO_MESSAGE and coupon is None:
        raise ValidationError(_l("Send a coupon, a message, or both."), field="channel")
    if channel == TEMPLATE:
        # A template message is a service notice, never an advert: only "a coupon arrived".
        if coupon is None:
            raise ValidationError(
                _l("A template message may only announce a coupon: choose a coupon."),
                field="coupon_template_id",
            )
        if not wx_template_id:
            raise ValidationError(
                _l("Enter the template message's template id."), field="wx_template_id"
            )
    if channel == SUBSCRIBE:
        if not wx_template_id:
            raise ValidationError(
                _l("Enter the subscribe message's template id."), field="wx_template_id"
            )
        if not title or not body:
            raise ValidationError(_l("Enter a title and a text."), field="title")
        if len(body) > TITLE_MAX:
            raise ValidationError(
                _l("A subscribe message shows at most 20 characters per field."), field="body"
            )
    if channel in (MASS, CUSTOMER_SERVICE, SMS) and not body:
        raise ValidationError(_l("Enter the message text."), field="body")


def _url(value) -> str:
    value = _text(value, "link_url", max_len=500)
    if value and not re.match(r"^https?://[^\s]+$", value):
        raise ValidationError(
            _l("Enter a web address starting with http:// or https://."), field="link_url"
        )
    return value


def _brand_tz() -> zoneinfo.ZoneInfo:
    return db.session.get(Brand, require_brand_id()).tz


def next_monthly(*, day: int, at: str, after: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The first brand-local ``day`` of a month at ``at`` ("10:00") after ``after`` (UTC)."""
    hh, mm = (int(p) for p in at.split(":"))
    local = after.astimezone(tz)
    year, month = local.year, local.month
    for _ in range(3):
        when = dt.datetime(year, month, day, hh, mm, tzinfo=tz)
        if when > local:
            return when.astimezone(dt.UTC)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError("unreachable")


def create_campaign(
    *,
    name: str,
    segment_id: int,
    coupon_template_id: int | None = None,
    channel: str = TEMPLATE,
    wx_template_id: str = "",
    title: str = "",
    body: str = "",
    link_url: str = "",
    schedule: str = NOW,
    scheduled_at: dt.datetime | None = None,
    monthly_day: int | None = None,
    monthly_time: str | None = None,
    holdout_pct: int = 5,
    store_id: int | None = None,
    created_by: int | None = None,
    now: dt.datetime | None = None,
) -> Campaign:
    """Check and save a campaign; started now or scheduled (the fan-out runs in jobs).

    ``store_id``: the store of a store manager, whose campaigns reach only their store's
    members and may use only their store's (or brand-wide) segments.
    """
    now = now or utcnow()
    name = _text(name, "name", max_len=60, required=True)
    seg = _segment(segment_id)
    if store_id is not None and seg.store_id not in (None, store_id):
        raise ValidationError(_l("Choose a segment."), field="segment_id")
    coupon = _coupon(coupon_template_id)
    wx_template_id = _text(wx_template_id, "wx_template_id", max_len=128)
    if channel == TEMPLATE and not wx_template_id:
        wx_template_id = fanout.settings().coupon_notice_template_id or ""
    title = _text(title, "title", max_len=TITLE_MAX)
    body = _text(body, "body", max_len=300)
    _check_message(
        channel=channel, coupon=coupon, wx_template_id=wx_template_id, title=title, body=body
    )
    holdout_pct = whole(holdout_pct, "holdout_pct", 0, 50)
    if schedule not in SCHEDULES:
        raise ValidationError(_l("Choose when to send."), field="schedule")
    campaign = Campaign(
        name=name,
        segment_id=seg.id,
        store_id=store_id,
        coupon_template_id=coupon.id if coupon else None,
        channel=channel,
        wx_template_id=wx_template_id,
        title=title,
        body=body,
        link_url=_url(link_url),
        schedule=schedule,
        holdout_pct=holdout_pct,
        status=DRAFT,
        created_by=created_by,
        created_at=now,
        options={},
    )
    if schedule == AT:
        if scheduled_at is None or scheduled_at <= now:
            raise ValidationError(_l("Choose a time in the future."), field="scheduled_at")
        campaign.scheduled_at = scheduled_at
        campaign.next_run_at = scheduled_at
        campaign.status = SCHEDULED
    elif schedule == MONTHLY:
        monthly_day = whole(monthly_day, "monthly_day", 1, 28)
        if not isinstance(monthly_time, str) or not _TIME.match(monthly_time):
            raise ValidationError(_l("Enter a time like 10:00."), field="monthly_time")
        campaign.monthly_day = monthly_day
        campaign.monthly_time = monthly_time
        campaign.next_run_at = next_monthly(
            day=monthly_day, at=monthly_time, after=now, tz=_brand_tz()
        )
        campaign.status = SCHEDULED
    db.session.add(campaign)
    db.session.flush()
    if schedule == NOW:
        _start(campaign, now)
    return campaign


def _start(campaign: Campaign, now: dt.datetime) -> None:
    campaign.status = PREPARING
    campaign.started_at = now
    db.session.flush()
    enqueue(
        fanout.prepare_campaign,
        campaign.id,
        dedupe_key=f"campaign-prepare:{campaign.id}:{campaign.resumes}",
    )


def run_due(*, campaign_id: int, now: dt.datetime) -> bool:
    """Start a scheduled campaign whose time has come (a monthly one: this month's run)."""
    campaign = db.session.execute(
        select(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == SCHEDULED)
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if campaign is None or campaign.next_run_at is None or campaign.next_run_at > now:
        return False
    if campaign.schedule != MONTHLY:
        campaign.next_run_at = None
        _start(campaign, now)
        return True
    tz = _brand_tz()
    run_key = campaign.next_run_at.astimezone(tz).strftime("%Y-%m")
    exists = db.session.execute(
        select(Campaign.id).where(Campaign.parent_id == campaign.id, Campaign.run_key == run_key)
    ).scalar()
    if exists is None:
        child = Campaign(
            name=f"{campaign.name} {run_key}"[:60],
            segment_id=campaign.segment_id,
            store_id=campaign.store_id,
            coupon_template_id=campaign.coupon_template_id,
            channel=campaign.channel,
            wx_template_id=campaign.wx_template_id,
            title=campaign.title,
            body=campaign.body,
            link_url=campaign.link_url,
            schedule=NOW,
            holdout_pct=campaign.holdout_pct,
            parent_id=campaign.id,
            run_key=run_key,
            created_by=campaign.created_by,
            created_at=now,
            options={},
        )
        db.session.add(child)
        db.session.flush()
        _start(child, now)
    campaign.next_run_at = next_monthly(
        day=campaign.monthly_day, at=campaign.monthly_time, after=campaign.next_run_at, tz=tz
    )
    db.session.flush()
    return True


def _get(campaign_id: int) -> Campaign:
    campaign = db.session.execute(
        select(Campaign).where(Campaign.id == campaign_id).with_for_update()
    ).scalar_one_or_none()
    if campaign is None:
        raise NotFound(_l("No such campaign."))
    return campaign


def pause(*, campaign_id: int) -> Campaign:
    """Stop sending after the batches under way; resumable."""
    campaign = _get(campaign_id)
    if campaign.status not in (RUNNING, PREPARING):
        raise Conflict(_l("Only a campaign being sent can be paused."))
    campaign.status = PAUSED
    db.session.flush()
    return campaign


def resume(*, campaign_id: int) -> Campaign:
    """Go on sending a paused campaign: its unfinished chunks are sent again."""
    campaign = _get(campaign_id)
    if campaign.status != PAUSED:
        raise Conflict(_l("Only a paused campaign can be resumed."))
    campaign.resumes += 1
    if not campaign.chunks_total:
        _start(campaign, utcnow())
        return campaign
    campaign.status = RUNNING
    db.session.execute(
        text(
            "UPDATE campaign_chunk SET state = 'pending', lease_until = NULL, available_at = NULL"
            " WHERE campaign_id = :cid AND state = 'running'"
        ),
        {"cid": campaign.id},
    )
    chunks = db.session.execute(
        text("SELECT no FROM campaign_chunk WHERE campaign_id = :cid AND state <> 'done'"),
        {"cid": campaign.id},
    ).scalars()
    for no in chunks:
        enqueue(
            fanout.send_chunk,
            campaign.id,
            no,
            dedupe_key=f"campaign-chunk:{campaign.id}:{no}:resume{campaign.resumes}",
        )
    db.session.flush()
    return campaign


def cancel(*, campaign_id: int, now: dt.datetime | None = None) -> Campaign:
    """Stop for good: nothing more is sent; members not reached yet are marked skipped."""
    campaign = _get(campaign_id)
    if campaign.status in (COMPLETED, CANCELLED):
        raise Conflict(_l("This campaign has already ended."))
    now = now or utcnow()
    campaign.status = CANCELLED
    campaign.finished_at = now
    campaign.next_run_at = None
    skipped = db.session.execute(
        text(
            "UPDATE campaign_recipient SET state = 'skipped', skip_reason = 'cancelled'"
            " WHERE campaign_id = :cid AND state = 'pending' RETURNING member_id, contact_taken"
        ),
        {"cid": campaign.id},
    ).all()
    from campaigns import tracking

    tracking.bump(campaign.id, "skipped", [r.member_id for r in skipped])
    # a member sent back to ``pending`` by a pause kept the contact counted for them
    fanout.give_back_contacts(
        [r.member_id for r in skipped if r.contact_taken],
        local_day=now.astimezone(_brand_tz()).date(),
        mass=campaign.channel == MASS,
    )
    db.session.execute(
        update(Campaign)
        .where(Campaign.parent_id == campaign.id, Campaign.status == SCHEDULED)
        .values(status=CANCELLED, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    return campaign


def save_settings(
    *,
    per_day: int,
    per_week: int,
    quiet_start: int,
    quiet_end: int,
    rate_per_second: int,
    coupon_notice_template_id: str = "",
) -> CampaignSettings:
    """The brand's push rules: frequency cap, quiet hours, send rate, the notice template."""
    per_day = whole(per_day, "per_day", 1, 10)
    per_week = whole(per_week, "per_week", per_day, 50)
    quiet_start = whole(quiet_start, "quiet_start", 0, 23)
    quiet_end = whole(quiet_end, "quiet_end", 0, 23)
    rate_per_second = whole(rate_per_second, "rate_per_second", 1, 5000)
    row = db.session.execute(select(CampaignSettings)).scalar_one_or_none()
    if row is None:
        row = CampaignSettings()
        db.session.add(row)
    row.per_day, row.per_week = per_day, per_week
    row.quiet_start, row.quiet_end = quiet_start, quiet_end
    row.rate_per_second = rate_per_second
    row.coupon_notice_template_id = _text(
        coupon_notice_template_id, "coupon_notice_template_id", max_len=128
    )
    db.session.flush()
    return row
