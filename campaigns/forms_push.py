"""Console forms of push campaigns."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from campaigns.models.push import CHANNELS, SCHEDULES

CHANNEL_LABELS = {
    "template": _l("Service notice (template message, coupon only)"),
    "subscribe": _l("Subscribe message (members who opted in)"),
    "mass": _l("Official account mass message (4 a month)"),
    "customer_service": _l("Customer-service message (within 48 hours)"),
    "sms": _l("SMS (08:00-21:00, with opt-out line)"),
    "none": _l("No message (coupon only)"),
}
SCHEDULE_LABELS = {
    "now": _l("Now"),
    "at": _l("At a time"),
    "monthly": _l("Every month"),
}


class CampaignForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=60)])
    segment_id = SelectField(_l("Target segment"), coerce=int, validators=[DataRequired()])
    coupon_template_id = SelectField(_l("Coupon"), coerce=int, default=0)
    channel = SelectField(_l("Channel"), choices=[(c, CHANNEL_LABELS[c]) for c in CHANNELS])
    wx_template_id = StringField(
        _l("WeChat template id (template or subscribe message)"),
        validators=[Optional(), Length(max=128)],
    )
    title = StringField(
        _l("Title (at most 20 characters)"), validators=[Optional(), Length(max=20)]
    )
    body = TextAreaField(_l("Message text"), validators=[Optional(), Length(max=300)])
    link_url = StringField(_l("Link (optional)"), validators=[Optional(), Length(max=500)])
    schedule = SelectField(_l("When"), choices=[(s, SCHEDULE_LABELS[s]) for s in SCHEDULES])
    scheduled_at = DateTimeLocalField(_l("Send at"), validators=[Optional()])
    monthly_day = IntegerField(
        _l("Day of the month (1-28)"), validators=[Optional(), NumberRange(1, 28)]
    )
    monthly_time = StringField(
        _l("Time of day (e.g. 10:00)"), validators=[Optional(), Length(max=5)]
    )
    holdout_pct = IntegerField(
        _l("Holdout share (percent)"), default=5, validators=[NumberRange(0, 50)]
    )

    def values(self, tz: zoneinfo.ZoneInfo) -> dict:
        at = self.scheduled_at.data
        return {
            "name": self.name.data,
            "segment_id": self.segment_id.data,
            "coupon_template_id": self.coupon_template_id.data or None,
            "channel": self.channel.data,
            "wx_template_id": self.wx_template_id.data or "",
            "title": self.title.data or "",
            "body": self.body.data or "",
            "link_url": self.link_url.data or "",
            "schedule": self.schedule.data,
            "scheduled_at": at.replace(tzinfo=tz).astimezone(dt.UTC) if at else None,
            "monthly_day": self.monthly_day.data,
            "monthly_time": (self.monthly_time.data or "").strip() or None,
            "holdout_pct": self.holdout_pct.data if self.holdout_pct.data is not None else 5,
        }


class SettingsForm(FlaskForm):
    per_day = IntegerField(_l("At most per member per day"), validators=[NumberRange(1, 10)])
    per_week = IntegerField(_l("At most per member per week"), validators=[NumberRange(1, 50)])
    quiet_start = IntegerField(_l("Quiet hours from (hour)"), validators=[NumberRange(0, 23)])
    quiet_end = IntegerField(_l("Quiet hours until (hour)"), validators=[NumberRange(0, 23)])
    rate_per_second = IntegerField(
        _l("Sends per second at most"), validators=[NumberRange(1, 5000)]
    )
    coupon_notice_template_id = StringField(
        _l('Template id of the "coupon arrived" notice'), validators=[Optional(), Length(max=128)]
    )


class ActionForm(FlaskForm):
    """Pause, resume, cancel, export: a button with the CSRF token."""
