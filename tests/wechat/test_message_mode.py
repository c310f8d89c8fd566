"""A brand's message mode decides what the callback accepts: in safe mode a plaintext post,
which the URL signature does not cover, is refused before anything is recorded."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from org import services as org
from tests import factories
from tests.support.wechat import AES_KEY, APPID, TOKEN, FakeWeChat, event_xml, text_xml
from wechat.models import InboundMessage


def _brand(mode: str):
    aes = AES_KEY if mode != "plaintext" else None
    return factories.brand(appid=APPID, token=TOKEN, aes_key=aes, message_mode=mode)


def _inbound(b) -> int:
    with use_brand(b.id):
        return db.session.scalar(select(func.count()).select_from(InboundMessage))


def test_safe_mode_refuses_a_plaintext_post_with_a_valid_signature(client, ctx):
    b = _brand("safe")
    wx = FakeWeChat(client, b.slug)
    forged = event_xml("o-attacker", "subscribe", "qrscene_s:SH002")
    r = wx.post_plain(forged)
    assert r.status_code == 403
    assert _inbound(b) == 0
    # WeChat's own encrypted delivery is answered
    assert wx.post_aes(text_xml("o-member", "你好", 101)).status_code == 200


def test_compatible_mode_takes_both_and_plaintext_mode_only_plaintext(client, ctx):
    both = _brand("compatible")
    wx = FakeWeChat(client, both.slug)
    assert wx.post_plain(text_xml("o-1", "a", 102)).status_code == 200
    assert wx.post_aes(text_xml("o-1", "b", 103)).status_code == 200
    plain_only = _brand("plaintext")
    wx = FakeWeChat(client, plain_only.slug)
    assert wx.post_plain(text_xml("o-2", "a", 104)).status_code == 200
    assert wx.post_aes(text_xml("o-2", "b", 105)).status_code == 403


def test_a_mode_change_applies_at_once(client, ctx):
    b = _brand("compatible")
    wx = FakeWeChat(client, b.slug)
    assert wx.post_plain(text_xml("o-1", "a", 106)).status_code == 200
    with use_brand(b.id):
        org.update_brand_credentials(brand=b, message_mode="safe")
        db.session.commit()
    assert wx.post_plain(text_xml("o-1", "b", 107)).status_code == 403


def test_a_brand_without_an_aes_key_cannot_claim_safe_mode(ctx):
    import pytest

    from core.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        factories.brand(appid=APPID, token=TOKEN, message_mode="safe")
    assert err.value.field == "message_mode"
    db.session.rollback()
    assert factories.brand(appid=APPID + "x", token=TOKEN).message_mode == "plaintext"
