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
