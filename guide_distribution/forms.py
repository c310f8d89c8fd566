"""Forms of the binding console pages and the guide's shop pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import IntegerField, RadioField, StringField, TextAreaField
from wtforms import ValidationError as FormError
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from core.pickers import PickerField
from guide_distribution.binding import REASON_MAX
from guide_distribution.settings import RANGES
from guide_distribution.shops import INTRO_MAX, LINE_MAX


def _whole(field: str, *, required: bool = True):
    low, high = RANGES[field]
    return [InputRequired() if required else Optional(), NumberRange(min=low, max=high)]


class BindingRulesForm(FlaskForm):
    bind_mode = RadioField(
        _l("Who takes a customer"),
        choices=[
            ("first", _l("The first guide, while the customer has none")),
            ("new_only", _l("Only new customers (no member record and no order before)")),
            ("every_scan", _l("Every scan takes the customer over")),
        ],
        validators=[InputRequired()],
    )
    validity = RadioField(
        _l("How long a binding lasts"),
        choices=[("permanent", _l("Until it is changed")), ("days", _l("A number of days"))],
        validators=[InputRequired()],
    )
    validity_days = IntegerField(
        _l("Days a binding lasts"), validators=_whole("validity_days", required=False)
    )
    protection_days = IntegerField(
        _l("Protection period (days, no other guide can take the customer)"),
        validators=_whole("protection_days"),
    )
    link_days = IntegerField(
        _l("Days a share link credits its guide"), validators=_whole("link_days")
    )

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        # Optional() ends the field's own checks on an empty value: the choice needs a number.
        if self.validity.data == "days" and self.validity_days.data is None:
            self.validity_days.errors = [
                *self.validity_days.errors,
                _l("Enter the number of days."),
            ]
            return False
        return ok


class LookupForm(FlaskForm):
    class Meta:
        csrf = False

    member = PickerField(_l("Customer"), kind="members", validators=[Optional()])


class ForceForm(FlaskForm):
    guide = PickerField(_l("New guide"), kind="guides", validators=[DataRequired()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=REASON_MAX)])

    def validate_guide(self, field):
        if len(field.data or []) != 1:
            raise FormError(_l("Pick one guide."))


class HandOverForm(FlaskForm):
    mode = RadioField(
        _l("Give the customers to"),
        choices=[
            ("spread", _l("The store's other guides, evenly")),
            ("named", _l("One guide")),
        ],
        default="spread",
        validators=[InputRequired()],
    )
    to_guide = PickerField(_l("The guide who takes over"), kind="guides", validators=[Optional()])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=REASON_MAX)])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if self.mode.data == "named" and len(self.to_guide.data or []) != 1:
            self.to_guide.errors = [*self.to_guide.errors, _l("Pick one guide.")]
            return False
        return ok


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired()])


class ProfileForm(FlaskForm):
    intro = TextAreaField(_l("About me"), validators=[Length(max=INTRO_MAX)])
    photo = FileField(_l("My photo"))


class ItemForm(FlaskForm):
    line = StringField(_l("A line about it"), validators=[Length(max=LINE_MAX)])


class EmptyForm(FlaskForm):
    pass
