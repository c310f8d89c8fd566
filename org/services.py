"""Operations on brands, stores and staff, and ``list_stores`` (the one way any package lists
a brand's stores). Services flush; the caller commits."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask_babel import lazy_gettext as _l

from core.db import db
from core.errors import Conflict, NotFound, ValidationError
from core.validators import CODE_RE, SLUG_RE, is_mobile, is_timezone, normalize_phone
from org import queries
from org.models import MESSAGE_MODES, ROLES, Brand, Staff, Store

MIN_PASSWORD = 8


def _check_aes_key(value: str | None, field: str) -> None:
    if not value:
        return
    try:
        raw = base64.b64decode(value + "=", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(value) != 43 or len(raw) != 32:
        raise ValidationError(_l("EncodingAESKey must be 43 characters of base64"), field=field)


def create_brand(
    *,
    slug: str,
    name: str,
    appid: str | None = None,
    secret: str | None = None,
    token: str | None = None,
    aes_key: str | None = None,
    mp_appid: str | None = None,
    mp_secret: str | None = None,
    timezone: str = "Asia/Shanghai",
    message_mode: str | None = None,
) -> Brand:
    """Create a brand (tenant); its message mode is safe when it has an EncodingAESKey."""
    slug = (slug or "").strip().lower()
    if not SLUG_RE.match(slug):
        raise ValidationError(_l("slug: 2-40 lowercase letters, digits or dashes"), field="slug")
    if not (name or "").strip():
        raise ValidationError(_l("name is required"), field="name")
    if not is_timezone(timezone):
        raise ValidationError(_l("unknown time zone"), field="timezone")
    _check_aes_key(aes_key, "aes_key")
    message_mode = message_mode or ("safe" if aes_key else "plaintext")
    _check_message_mode(message_mode, aes_key)
    if Brand.by_slug(slug) is not None:
        raise Conflict(_l("a brand with this slug exists"), field="slug")
    brand = Brand(
        slug=slug,
        name=name.strip(),
        appid=appid or None,
        secret=secret or None,
        token=token or None,
        aes_key=aes_key or None,
        mp_appid=mp_appid or None,
        mp_secret=mp_secret or None,
        timezone=timezone,
        message_mode=message_mode,
        settings={},
    )
    db.session.add(brand)
    db.session.flush()
    return brand


def update_brand_credentials(*, brand: Brand, **changes: str | None) -> Brand:
    """Change WeChat credentials; a new EncodingAESKey keeps the old one as the previous key."""
    allowed = {
        "name",
        "appid",
        "secret",
        "token",
        "aes_key",
        "mp_appid",
        "mp_secret",
        "timezone",
        "mch_id",
        "pay_apiv3_key",
        "pay_private_key",
        "pay_cert_serial_no",
        "pay_public_key",
        "pay_public_key_id",
        "message_mode",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError("unknown fields: " + ", ".join(sorted(unknown)))
    if "aes_key" in changes and changes["aes_key"]:
        _check_aes_key(changes["aes_key"], "aes_key")
        if brand.aes_key and changes["aes_key"] != brand.aes_key:
            brand.previous_aes_key = brand.aes_key
    if changes.get("message_mode"):
        _check_message_mode(changes["message_mode"], changes.get("aes_key") or brand.aes_key)
    if "timezone" in changes and not is_timezone(changes["timezone"] or ""):
        raise ValidationError(_l("unknown time zone"), field="timezone")
    changes = _check_pay_settings(changes)
    for key, value in changes.items():
        if value is None or value == "":
            continue  # blank secret fields in a form mean "keep the current value"
        setattr(brand, key, value)
    db.session.flush()
    return brand


MCH_ID_RE = re.compile(r"^[0-9]{8,32}$")
SERIAL_RE = re.compile(r"^[0-9A-Fa-f]{8,64}$")
PUBLIC_KEY_ID_RE = re.compile(r"^PUB_KEY_ID_[0-9A-Za-z_]{1,53}$")


def _pem(value: str) -> str:
    return "\n".join(line.strip() for line in value.strip().splitlines()) + "\n"


def _check_pay_settings(changes: dict) -> dict:
    """Validate the WeChat Pay merchant settings among ``changes`` (cleaned copies back)."""
    out = dict(changes)
    for name in ("mch_id", "pay_apiv3_key", "pay_cert_serial_no", "pay_public_key_id"):
        if out.get(name):
            out[name] = out[name].strip()
    if out.get("mch_id") and not MCH_ID_RE.match(out["mch_id"]):
        raise ValidationError(_l("merchant ID: 8-32 digits"), field="mch_id")
    key = out.get("pay_apiv3_key")
    if key and (len(key) != 32 or not key.isascii() or not key.isprintable()):
        raise ValidationError(_l("the APIv3 key is 32 characters"), field="pay_apiv3_key")
    if out.get("pay_cert_serial_no") and not SERIAL_RE.match(out["pay_cert_serial_no"]):
        raise ValidationError(
            _l("the certificate serial number is 8-64 hexadecimal digits"),
            field="pay_cert_serial_no",
        )
    if out.get("pay_public_key_id") and not PUBLIC_KEY_ID_RE.match(out["pay_public_key_id"]):
        raise ValidationError(
            _l("the WeChat Pay public key ID starts with PUB_KEY_ID_"), field="pay_public_key_id"
        )
    if out.get("pay_private_key"):
        out["pay_private_key"] = _pem(out["pay_private_key"])
        try:
            private = serialization.load_pem_private_key(
                out["pay_private_key"].encode(), password=None
            )
        except (ValueError, TypeError):
            private = None
        if not isinstance(private, rsa.RSAPrivateKey) or private.key_size < 2048:
            raise ValidationError(
                _l("the merchant private key must be an RSA private key in PEM form"),
                field="pay_private_key",
            )
    if out.get("pay_public_key"):
        out["pay_public_key"] = _pem(out["pay_public_key"])
        try:
            public = serialization.load_pem_public_key(out["pay_public_key"].encode())
        except (ValueError, TypeError):
            public = None
        if not isinstance(public, rsa.RSAPublicKey) or public.key_size < 2048:
            raise ValidationError(
                _l("the WeChat Pay public key must be an RSA public key in PEM form"),
                field="pay_public_key",
            )
    return out


def _check_message_mode(mode: str, aes_key: str | None) -> None:
    if mode not in MESSAGE_MODES:
        raise ValidationError(_l("unknown message mode"), field="message_mode")
    if mode != "plaintext" and not aes_key:
        raise ValidationError(
            _l("compatible and safe mode need the EncodingAESKey"), field="message_mode"
        )


def _store_fields(code: str, name: str, city: str) -> tuple[str, str, str]:
    code, name, city = (code or "").strip(), (name or "").strip(), (city or "").strip()
    if not CODE_RE.match(code):
        raise ValidationError(_l("store code: 1-40 letters, digits, - or _"), field="code")
    if not name:
        raise ValidationError(_l("store name is required"), field="name")
    if not city:
        raise ValidationError(_l("city is required"), field="city")
    return code, name, city


def create_store(*, code: str, name: str, city: str, region: str = "", address: str = "") -> Store:
    """Create a store in the current brand."""
    code, name, city = _store_fields(code, name, city)
    if Store.by_code(code) is not None:
        raise Conflict(_l("a store with this code exists"), field="code")
    store = Store(
        code=code,
        name=name,
        city=city,
        region=(region or "").strip(),
        address=(address or "").strip(),
    )
    db.session.add(store)
    db.session.flush()
    return store


def update_store(
    *,
    store: Store,
    code: str,
    name: str,
    city: str,
    region: str = "",
    address: str = "",
    active: bool = True,
) -> Store:
    """Change a store's details."""
    code, name, city = _store_fields(code, name, city)
    other = Store.by_code(code)
    if other is not None and other.id != store.id:
        raise Conflict(_l("a store with this code exists"), field="code")
    store.code, store.name, store.city = code, name, city
    store.region, store.address, store.active = (
        (region or "").strip(),
        (address or "").strip(),
        active,
    )
    db.session.flush()
    return store


def list_stores(*, active_only: bool = False, store_id: int | None = None) -> list[Store]:
    """The current brand's stores by code (a brand has hundreds, not millions)."""
    stmt = queries.search_stores(store_id=store_id)
    if active_only:
        stmt = stmt.where(Store.active.is_(True))
    return list(db.session.execute(stmt).scalars())


def _staff_fields(name: str, phone: str, role: str, store_id: int | None) -> tuple:
    name = (name or "").strip()
    phone = normalize_phone(phone)
    if not name:
        raise ValidationError(_l("name is required"), field="name")
    if not is_mobile(phone):
        raise ValidationError(_l("not a valid mobile number"), field="phone")
    if role not in ROLES:
        raise ValidationError(_l("unknown role"), field="role")
    if role in ("store_manager", "guide") and store_id is None:
        raise ValidationError(_l("store managers and guides belong to a store"), field="store_id")
    if store_id is not None and db.session.get(Store, store_id) is None:
        raise NotFound(_l("no such store"), field="store_id")
    if role == "brand_admin":
        store_id = None
    return name, phone, role, store_id


def create_staff(
    *, name: str, phone: str, role: str, password: str, store_id: int | None = None
) -> Staff:
    """Add a staff member to the current brand."""
    name, phone, role, store_id = _staff_fields(name, phone, role, store_id)
    if not password:
        raise ValidationError(_l("A password is required."), field="password")
    if len(password) < MIN_PASSWORD:
        raise ValidationError(
            _l("Password: at least %(n)d characters.", n=MIN_PASSWORD), field="password"
        )
    if Staff.by_phone(phone) is not None:
        raise Conflict(_l("a staff member with this phone exists"), field="phone")
    staff = Staff(name=name, phone=phone, role=role, store_id=store_id)
    staff.set_password(password)
    db.session.add(staff)
    db.session.flush()
    return staff


def update_staff(
    *,
    staff: Staff,
    name: str,
    phone: str,
    role: str,
    store_id: int | None,
    active: bool,
    password: str | None = None,
) -> Staff:
    """Change a staff member; an empty password keeps the current one."""
    name, phone, role, store_id = _staff_fields(name, phone, role, store_id)
    other = Staff.by_phone(phone)
    if other is not None and other.id != staff.id:
        raise Conflict(_l("a staff member with this phone exists"), field="phone")
    if password:
        if len(password) < MIN_PASSWORD:
            raise ValidationError(
                _l("Password: at least %(n)d characters.", n=MIN_PASSWORD), field="password"
            )
        staff.set_password(password)
    staff.name, staff.phone, staff.role, staff.store_id, staff.active = (
        name,
        phone,
        role,
        store_id,
        active,
    )
    db.session.flush()
    return staff
