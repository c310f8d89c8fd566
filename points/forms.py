"""Console forms of the points package."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from core.formfields import TimesField, YuanField

POLICY_LABELS = {
    "months": _l("N months after earning"),
    "year_end": _l("At the end of the year"),
    "points_day": _l("On the monthly points day"),
    "never": _l("Never"),
}
WEEKDAYS = [
    (0, _l("Monday")),
    (1, _l("Tuesday")),
    (2, _l("Wednesday")),
    (3, _l("Thursday")),
    (4, _l("Friday")),
    (5, _l("Saturday")),
    (6, _l("Sunday")),
]


def _whole(low: int, high: int):
    return [InputRequired(), NumberRange(min=low, max=high)]


class SettingsForm(FlaskForm):
    earn_rate = TimesField(_l("Points per yuan"), validators=[InputRequired()], high=100_000)
    pending_days = IntegerField(_l("Pending days (return window)"), validators=_whole(0, 90))
    expiry_policy = SelectField(_l("Points expire"), choices=list(POLICY_LABELS.items()))
    expiry_months = IntegerField(_l("Months of validity"), validators=_whole(1, 120))
    points_day = IntegerField(_l("Monthly points day (day of month)"), validators=_whole(1, 28))
    remind_days = IntegerField(_l("Reminder days before expiry"), validators=_whole(0, 60))
    daily_cap = IntegerField(_l("Daily cap per member (0: none)"), validators=_whole(0, 10_000_000))
    exchange_points = IntegerField(_l("Exchange rate: points"), validators=_whole(1, 1_000_000))
    exchange_yuan = YuanField(_l("Exchange rate: worth (yuan)"), validators=[InputRequired()])
    welcome_points = IntegerField(
        _l("Welcome points for new members"), validators=_whole(0, 1_000_000)
    )
    change_template_id = StringField(
        _l("Template id: points changed"), validators=[Optional(), Length(max=64)]
    )
    expiring_template_id = StringField(
        _l("Template id: points expiring"), validators=[Optional(), Length(max=64)]
    )


class CampaignForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    multiplier = TimesField(
        _l("Multiplier (2 = double points)"),
        validators=[InputRequired()],
        low=1001,
        high=100_000,
    )
    start_date = DateField(_l("First day"), validators=[InputRequired()])
    end_date = DateField(_l("Last day"), validators=[InputRequired()])
    weekdays = SelectMultipleField(_l("Only on (none: every day)"), choices=WEEKDAYS, coerce=int)
    store_id = SelectField(_l("Store"), coerce=lambda v: int(v) if v else None, choices=[])
    category = StringField(
        _l("Product category (empty: all)"), validators=[Optional(), Length(max=60)]
    )
    active = BooleanField(_l("Active"), default=True)


class AdjustForm(FlaskForm):
    points = IntegerField(
        _l("Points (negative to deduct)"),
        validators=[InputRequired(), NumberRange(min=-1_000_000, max=1_000_000)],
    )
    reason = TextAreaField(
        _l("Reason shown to the member"), validators=[DataRequired(), Length(max=500)]
    )
    note = TextAreaField(
        _l("Internal note (console only)"), validators=[Optional(), Length(max=500)]
    )
    key = StringField(validators=[DataRequired(), Length(max=80)])
