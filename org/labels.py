"""Chinese names of the org package's codes (core.labels): staff roles, and the names the
audit log gives brands, stores and staff and their fields."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.labels import register_labels

ROLE = {
    "brand_admin": _l("Brand admin"),
    "store_manager": _l("Store manager"),
    "guide": _l("Guide"),
}

register_labels("staff_role", ROLE)
register_labels("audit_object", {"brand": _l("Brand"), "store": _l("Store"), "staff": _l("Staff")})
register_labels(
    "audit_field",
    {
        "brand.slug": _l("Brand code"),
        "brand.timezone": _l("Time zone"),
        "brand.appid": _l("AppID"),
        "brand.secret": _l("AppSecret"),
        "brand.message_mode": _l("Message encryption"),
        "staff.store_id": _l("Store"),
        "staff.password_hash": _l("Password"),
        "store.lat": _l("Latitude"),
        "store.lng": _l("Longitude"),
    },
)
