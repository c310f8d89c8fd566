"""Forms of the members pages: the console, the guide workbench and the member center."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from core.errors import AppError
from core.formfields import TimesField, fen_to_yuan, yuan_to_fen
from members import store_locations
from members.labels import TAG_KIND
from members.models import TAG_KINDS

BASIS_LABELS = {"spend": _l("Rolling 12-month spend"), "growth": _l("Rolling 12-month growth")}


class StoreLocationForm(FlaskForm):
    """A store's place on the map: one field taking coordinates as a map's coordinate picker
    gives them (GCJ-02, "经度,纬度" or "纬度,经度"); ``parsed`` holds (lat, lng)."""

    coords = StringField(_l("Coordinates (longitude,latitude)"), validators=[Length(max=80)])
    back = HiddenField()
    parsed: tuple[float, float] | None = None

    def validate_coords(self, field) -> None:
        try:
            self.parsed = store_locations.parse_coordinates(field.data)
        except AppError as exc:
            raise ValidationError(str(exc.message)) from exc


class EmptyForm(FlaskForm):
    """A form with only the CSRF token (buttons)."""


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file."))])


class ExportForm(FlaskForm):
    store_id = SelectField(_l("Store"), coerce=str, validators=[Optional()])
    tier_id = SelectField(_l("Tier"), coerce=str, validators=[Optional()])
    tag_id = SelectField(_l("Tag"), coerce=str, validators=[Optional()])
    full_phones = BooleanField(_l("Include full phone numbers (audited)"))


class TagForm(FlaskForm):
    kind = SelectField(
        _l("Kind"), choices=[(k, TAG_KIND[k]) for k in TAG_KINDS], validators=[DataRequired()]
    )
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=60)])
    code = StringField(_l("Code"), validators=[Optional(), Length(max=40)])
    is_quick = BooleanField(_l("Quick tag (one tap in the guide workbench)"))


class TagEditForm(FlaskForm):
    kind = SelectField(
        _l("Kind"), choices=[(k, TAG_KIND[k]) for k in TAG_KINDS], validators=[DataRequired()]
    )
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=60)])
    is_quick = BooleanField(_l("Quick tag"))
    active = BooleanField(_l("Active"))


class ThresholdField(StringField):
    """A tier threshold as the basis reads it: yuan of spend (held in fen) or growth value."""

    def value(self, basis: str) -> int:
        """The stored threshold: fen for the spend basis, the growth value otherwise."""
        if basis == "spend":
            return yuan_to_fen(self.data)
        text = (self.data or "").strip()
        if not text.isdigit() or int(text) > 10**12:
            raise ValidationError(_l("Enter a whole growth value."))
        return int(text)

    def show(self, stored: int, basis: str) -> None:
        self.data = fen_to_yuan(stored) if basis == "spend" else str(stored)


class LevelForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=40)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=60)])
    rank = IntegerField(_l("Rank"), validators=[InputRequired(), NumberRange(min=0, max=1000)])
    threshold = ThresholdField(
        _l("Threshold (yuan of spend, or growth value)"), validators=[InputRequired()]
    )
    points_multiplier = TimesField(
        _l("Points multiplier (×, 1 = normal)"), default="1", validators=[InputRequired()]
    )
    birthday_gift = StringField(_l("Birthday gift"), validators=[Optional(), Length(max=200)])


class LevelEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=60)])
    threshold = ThresholdField(
        _l("Threshold (yuan of spend, or growth value)"), validators=[InputRequired()]
    )
    points_multiplier = TimesField(_l("Points multiplier (×)"), validators=[InputRequired()])
    birthday_gift = StringField(_l("Birthday gift"), validators=[Optional(), Length(max=200)])
    active = BooleanField(_l("Active"))


class TierSettingsForm(FlaskForm):
    basis = SelectField(
        _l("Levels reached by"), choices=list(BASIS_LABELS.items()), validators=[DataRequired()]
    )
    review_month = IntegerField(
        _l("Review month"), validators=[InputRequired(), NumberRange(min=1, max=12)]
    )
    review_day = IntegerField(
        _l("Review day"), validators=[InputRequired(), NumberRange(min=1, max=28)]
    )
    growth_per_yuan = IntegerField(
        _l("Growth value per yuan spent"),
        validators=[InputRequired(), NumberRange(min=0, max=1000)],
    )


class TillCodeForm(FlaskForm):
    code = StringField(_l("Member code"), validators=[DataRequired(), Length(max=40)])


# --- member center ------------------------------------------------------------------------------


class PhoneForm(FlaskForm):
    phone = StringField(_l("Mobile number"), validators=[DataRequired(), Length(max=20)])


class ActivateForm(FlaskForm):
    phone = StringField(_l("Mobile number"), validators=[DataRequired(), Length(max=20)])
    code = StringField(_l("SMS code"), validators=[DataRequired(), Length(max=6)])
    consent = StringField(_l("I agree to the privacy terms"))


class ProfileForm(FlaskForm):
    name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=40)])
    birthday = DateField(_l("Birthday"), validators=[Optional()])
    gender = RadioField(
        _l("Gender"),
        choices=[("", _l("Not telling")), ("f", _l("Female")), ("m", _l("Male"))],
        default="",
        validators=[Optional()],
    )

    def validate_birthday(self, field):
        if field.data and not dt.date(1900, 1, 1) <= field.data <= dt.date.today():
            raise ValidationError(_l("Please enter a real birthday."))

    def validate_name(self, field):
        field.data = (field.data or "").strip()
        if not field.data or any(ord(c) < 32 for c in field.data):
            raise ValidationError(_l("Please enter your name."))


class DeleteForm(FlaskForm):
    confirm = StringField(_l("Type DELETE to confirm"))
