"""Brand settings: the message mode operators choose to match their official account."""

from __future__ import annotations

from core.db import db
from org.models import Brand
from tests import factories as f

AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def test_the_message_mode_is_chosen_in_the_console_and_checked(client, ctx):
    b = f.brand(appid="wx0123456789abcdef", token="tok123")
    admin = f.staff(b)
    f.login(client, b, admin)
    page = client.get("/console/brand").get_data(as_text=True)
    assert "消息加解密方式" in page and "安全模式（推荐）" in page
    token = f.csrf(client, "/console/brand")
    base = {"name": b.name, "timezone": "Asia/Shanghai", "csrf_token": token}
    # safe mode without an EncodingAESKey is refused, on that field
    r = client.post("/console/brand", data={**base, "message_mode": "safe"})
    assert r.status_code == 400 and "需要先填写 EncodingAESKey" in r.get_data(as_text=True)
    r = client.post("/console/brand", data={**base, "message_mode": "nonsense"})
    assert r.status_code == 400
    db.session.expire_all()
    assert db.session.get(Brand, b.id).message_mode == "plaintext"
    r = client.post("/console/brand", data={**base, "aes_key": AES, "message_mode": "safe"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Brand, b.id).message_mode == "safe"
    # a post without the field keeps the mode
    assert client.post("/console/brand", data=base).status_code == 302
    db.session.expire_all()
    assert db.session.get(Brand, b.id).message_mode == "safe"


def test_a_staff_phone_may_be_typed_with_spaces_and_a_country_code(client, ctx):
    b = f.brand()
    admin = f.staff(b)
    shop = f.store(b)
    f.login(client, b, admin)
    token = f.csrf(client, "/console/staff/new")
    r = client.post(
        "/console/staff/new",
        data={
            "name": "小李",
            "phone": "+86 138 0000 0299",
            "role": "guide",
            "store_id": shop.id,
            "password": "guide-pass-99",
            "csrf_token": token,
        },
    )
    assert r.status_code == 302
    assert "13800000299" in client.get("/console/staff").get_data(as_text=True)


def _pem_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_wechat_pay_merchant_settings_are_checked_and_kept_secret(client, ctx):
    from sqlalchemy import text

    b = f.brand(appid="wx0123456789abcdef")
    admin = f.staff(b)
    f.login(client, b, admin)
    page = client.get("/console/brand").get_data(as_text=True)
    assert "微信支付商户号" in page and "APIv3 密钥" in page and "微信支付公钥 ID" in page
    token = f.csrf(client, "/console/brand")
    private, public = _pem_pair()
    good = {
        "name": b.name,
        "timezone": "Asia/Shanghai",
        "csrf_token": token,
        "mch_id": "1900000109",
        "pay_apiv3_key": "0123456789abcdefghijklmnopqrstuv",
        "pay_private_key": private,
        "pay_cert_serial_no": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "pay_public_key": public,
        "pay_public_key_id": "PUB_KEY_ID_0114232204962025012300123400001234",
    }
    refusals = {
        "mch_id": ("19000x0109", "商户号为 8-32 位数字"),
        "pay_apiv3_key": ("tooshort", "APIv3 密钥应为 32 个字符"),
        "pay_private_key": ("-----BEGIN PRIVATE KEY-----\nnope\n", "商户私钥须为 PEM 格式"),
        "pay_public_key": (private, "微信支付公钥须为 PEM 格式"),
        "pay_cert_serial_no": ("not-hex!", "证书序列号应为"),
        "pay_public_key_id": ("KEY_1234", "以 PUB_KEY_ID_ 开头"),
    }
    for name, (value, message) in refusals.items():
        r = client.post("/console/brand", data={**good, name: value})
        assert r.status_code == 400, name
        assert message in r.get_data(as_text=True), name
        # The refused page does not echo the private key back.
        assert private.splitlines()[1] not in r.get_data(as_text=True), name
        db.session.expire_all()
        assert db.session.get(Brand, b.id).mch_id is None, name  # nothing saved

    assert client.post("/console/brand", data=good).status_code == 302
    db.session.expire_all()
    saved = db.session.get(Brand, b.id)
    assert saved.pay_private_key.strip() == private.strip()
    assert saved.pay_apiv3_key == good["pay_apiv3_key"]
    raw = db.session.execute(
        text("SELECT pay_apiv3_key, pay_private_key FROM brand WHERE id = :id"), {"id": b.id}
    ).one()
    assert good["pay_apiv3_key"] not in raw[0] and "PRIVATE KEY" not in raw[1]
    # The page never shows the secrets back; empty secret fields keep them.
    page = client.get("/console/brand").get_data(as_text=True)
    assert good["pay_apiv3_key"] not in page and private.splitlines()[1] not in page
    assert (
        client.post(
            "/console/brand", data={**good, "pay_apiv3_key": "", "pay_private_key": ""}
        ).status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(Brand, b.id).pay_apiv3_key == good["pay_apiv3_key"]
