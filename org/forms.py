"""Console forms for brands, stores and staff."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from core.validators import CODE_RE, PHONE_RE, normalize_phone
from org.labels import ROLE

ROLE_LABELS = ROLE  # the table lives in org/labels.py


class StoreForm(FlaskForm):
    code = StringField(
        _l("Store code"),
        validators=[
            DataRequired(),
            Length(max=40),
            Regexp(CODE_RE, message=_l("Letters, digits, - or _ only.")),
        ],
    )
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    city = StringField(_l("City"), validators=[DataRequired(), Length(max=60)])
    region = StringField(_l("Region"), validators=[Optional(), Length(max=60)])
    address = TextAreaField(_l("Address"), validators=[Optional(), Length(max=500)])
    active = BooleanField(_l("Open"), default=True)


class StaffForm(FlaskForm):
    name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=80)])
    phone = StringField(
        _l("Mobile"),
        # typed as people type it (+86, spaces, dashes); stored in its 11-digit form
        filters=[lambda v: normalize_phone(v) if v else v],
        validators=[
            DataRequired(),
            Regexp(PHONE_RE, message=_l("Enter an 11-digit mainland mobile number.")),
        ],
    )
    role = SelectField(_l("Role"), choices=[])
    store_id = SelectField(_l("Store"), coerce=lambda v: int(v) if v else None, choices=[])
    password = PasswordField(_l("Password"), validators=[Optional(), Length(min=8, max=200)])
    active = BooleanField(_l("Active"), default=True)


class BrandForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    timezone = StringField(_l("Time zone"), validators=[DataRequired(), Length(max=64)])
    appid = StringField(_l("Official account AppID"), validators=[Optional(), Length(max=64)])
    secret = PasswordField(_l("AppSecret"), validators=[Optional(), Length(max=128)])
    token = PasswordField(_l("Token"), validators=[Optional(), Length(min=3, max=32)])
    aes_key = PasswordField(_l("EncodingAESKey"), validators=[Optional(), Length(min=43, max=43)])
    message_mode = SelectField(
        _l("Message encryption mode"),
        choices=[
            ("safe", _l("Safe mode (recommended): encrypted messages only")),
            ("compatible", _l("Compatible mode: plaintext and encrypted, while switching")),
            ("plaintext", _l("Plaintext mode: no encryption")),
        ],
        # left out of a post: the mode stays; any other value is refused by the service
        validate_choice=False,
    )
    mp_appid = StringField(_l("Mini-program AppID"), validators=[Optional(), Length(max=64)])
    mp_secret = PasswordField(
        _l("Mini-program AppSecret"), validators=[Optional(), Length(max=128)]
    )
    mch_id = StringField(_l("WeChat Pay merchant ID"), validators=[Optional(), Length(max=32)])
    pay_apiv3_key = PasswordField(
        _l("APIv3 key"), validators=[Optional(), Length(max=64)], render_kw={"autocomplete": "off"}
    )
    pay_private_key = TextAreaField(
        _l("Merchant API certificate private key (apiclient_key.pem)"),
        validators=[Optional(), Length(max=8000)],
        render_kw={"rows": 4, "autocomplete": "off", "spellcheck": "false"},
    )
    pay_cert_serial_no = StringField(
        _l("Merchant API certificate serial number"), validators=[Optional(), Length(max=64)]
    )
    pay_public_key = TextAreaField(
        _l("WeChat Pay public key (pub_key.pem)"),
        validators=[Optional(), Length(max=8000)],
        render_kw={"rows": 4, "spellcheck": "false"},
    )
    pay_public_key_id = StringField(
        _l("WeChat Pay public key ID"), validators=[Optional(), Length(max=64)]
    )


class EmptyForm(FlaskForm):
    """A form with only the CSRF token (buttons that post)."""
