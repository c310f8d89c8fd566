"""A lost Redis: the callback answers 503 with an empty body, so WeChat retries, records
nothing, and answers again on its own once Redis is back."""

from __future__ import annotations

from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from tests.support.apps import build_app
from tests.support.wechat import FakeWeChat, answering_brand, text_xml
from wechat.models import InboundMessage


def test_the_callback_answers_503_while_redis_is_gone(ctx, own_redis):
    b = answering_brand()
    served = build_app(REDIS_URL=own_redis.url)
    wx = FakeWeChat(served.test_client(), b.slug)
    assert wx.post_aes(text_xml("o-1", "你好", 1)).status_code == 200
    own_redis.stop()
    try:
        r = wx.post_aes(text_xml("o-1", "还在吗", 2))
        assert r.status_code == 503
        assert r.data == b"" and r.headers["Retry-After"]
        assert wx.post_plain(text_xml("o-1", "plain", 3)).status_code == 503
    finally:
        own_redis.start()
    again = wx.post_aes(text_xml("o-1", "还在吗", 2))
    assert again.status_code == 200 and again.data
    with use_brand(b.id):
        db.session.expire_all()
        msg_ids = db.session.scalars(select(InboundMessage.msg_id)).all()
    assert "3" not in msg_ids
