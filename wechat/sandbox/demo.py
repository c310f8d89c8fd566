"""Demo step of the sandbox: where to find the phone simulator."""

from __future__ import annotations

from core.cli import demo_step
from org import services as org_services
from org.models import Brand
from wechat.sandbox import paystore, store

DEMO_SLUG = "demo"
DEMO_MCH_ID = "1900000100"
# The demo merchant only ever talks to the sandbox.
DEMO_APIV3_KEY = "demoAPIv3key00000000000000000001"


@demo_step(90)
def demo_phone() -> list[str]:
    """Print the simulator's URL (the demo brand's account is already known to the sandbox)."""
    return [
        "Phone simulator: http://127.0.0.1:5000/sandbox/phone",
        "  pick a consumer, scan a store's QR code, chat with the demo brand and tap its menu",
    ]


@demo_step(22)
def demo_pay() -> list[str]:
    """WeChat Pay merchant settings for the demo brand, known to the sandbox (idempotent:
    a merchant key is made once; the sandbox's WeChat Pay public key is re-registered when
    the sandbox store made a new one)."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return ["wechat pay: no demo brand, skipped"]
    changes: dict[str, str] = {}
    if not (brand.pay_private_key and brand.pay_cert_serial_no):
        keys = paystore.new_merchant_keys()
        changes.update(
            pay_private_key=keys["private_key"], pay_cert_serial_no=keys["cert_serial_no"]
        )
    platform = paystore.platform_public_key()
    if brand.pay_public_key_id != platform["public_key_id"]:
        changes.update(
            pay_public_key=platform["public_key"], pay_public_key_id=platform["public_key_id"]
        )
    if not brand.mch_id or not brand.pay_apiv3_key:
        changes.update(mch_id=DEMO_MCH_ID, pay_apiv3_key=DEMO_APIV3_KEY)
    if changes:
        org_services.update_brand_credentials(brand=brand, **changes)
    paystore.register_merchant(
        brand.mch_id,
        apiv3_key=brand.pay_apiv3_key,
        cert_serial_no=brand.pay_cert_serial_no,
        merchant_public_key=paystore.public_key_of(brand.pay_private_key),
        appids=[brand.appid or "", brand.mp_appid or ""],
    )
    return [f"WeChat Pay (sandbox) merchant {brand.mch_id} for the demo brand, APIv3"]


def demo_member_openid(appid: str | None, number: int, nickname: str) -> str:
    """A demo member as a consumer of the sandbox who follows the brand's account, so the
    messages sent to them arrive in the phone simulator."""
    consumer = store.ensure_consumer(f"demo-member-{number:04d}", nickname)
    if not appid:
        return f"odemo-member-{number:04d}"
    openid = store.openid_for(appid, consumer["uid"])
    store.set_following(appid, openid, True)
    return openid
