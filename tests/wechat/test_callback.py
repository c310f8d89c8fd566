"""The official-account callback: signatures, plaintext / compatible / AES modes, events,
retries and key rotation."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: N817

import pytest
from sqlalchemy import func, select

from core.db import db
from core.redis import get_redis
from core.tenancy import use_brand
from tests import factories
from tests.support.wechat import (
    AES_KEY,
    APPID,
    OA_ID,
    OLD_AES_KEY,
    FakeWeChat,
    answering_brand,
    event_xml,
    text_xml,
)
from wechat import inbound, router
from wechat.models import InboundMessage

OPENID = "oUser000000000000000000000001"


@pytest.fixture
def brand(ctx):
    b = answering_brand("收到，稍后回复您。", greeting="欢迎关注！")
    with use_brand(b.id):
        factories.keyword("会员", text="回复手机号即可入会")
        factories.keyword(
            "MENU_STORES",
            title="门店列表",
            description="离你最近的门店",
            url="https://example.com/stores",
        )
        db.session.commit()
    return b


@pytest.fixture
def wx(client, brand):
    return FakeWeChat(client, brand.slug)


@pytest.fixture
def seen():
    """Contexts the router handed to a test handler registered for every message."""
    calls: list[router.Context] = []

    def record(ctx):
        calls.append(ctx)
        return None

    router.on("*", priority=1)(record)
    yield calls
    router.off(record)


def flush_inbound() -> None:
    """Move the records buffered in Redis into the table, as the periodic job does."""
    db.session.rollback()
    inbound.flush_inbound()
    db.session.commit()


def rows(brand_id: int) -> list[InboundMessage]:
    flush_inbound()
    return list(
        db.session.execute(
            select(InboundMessage)
            .where(InboundMessage.brand_id == brand_id)
            .order_by(InboundMessage.id)
            .execution_options(all_brands=True)
        ).scalars()
    )


def reply_of(response) -> ET.Element:
    assert response.status_code == 200, response.data
    return ET.fromstring(response.data)


def test_echostr_is_returned_unchanged(wx):
    resp = wx.echo("1234567890abc_é")
    assert resp.status_code == 200
    assert resp.get_data(as_text=True) == "1234567890abc_é"


def test_echostr_with_bad_signature_is_refused(wx):
    resp = wx.echo("42", signature="0" * 40)
    assert resp.status_code == 403
    assert b"42" not in resp.data


def test_unknown_brand_is_404(client):
    assert FakeWeChat(client, "no-such-brand").echo("x").status_code == 404


def test_plaintext_text_gets_its_keyword_reply(wx, brand, seen):
    reply = reply_of(wx.post_plain(text_xml(OPENID, "会员", 1001)))
    assert reply.findtext("MsgType") == "text"
    assert reply.findtext("Content") == "回复手机号即可入会"
    assert reply.findtext("ToUserName") == OPENID
    assert reply.findtext("FromUserName") == OA_ID
    [row] = rows(brand.id)
    assert (row.openid, row.msg_type, row.msg_id) == (OPENID, "text", "1001")
    assert seen[0].content == "会员" and seen[0].brand_id == brand.id


def test_plaintext_unmatched_text_gets_the_default_reply(wx):
    reply = reply_of(wx.post_plain(text_xml(OPENID, "随便说点什么", 1002)))
    assert reply.findtext("Content") == "收到，稍后回复您。"


def test_aes_text_reply_is_encrypted_and_opens_with_an_independent_decryptor(wx, brand):
    resp = wx.post_aes(text_xml(OPENID, "会员", 2001))
    assert resp.status_code == 200
    envelope = ET.fromstring(resp.data)
    assert envelope.find("Content") is None  # nothing in clear text
    reply = wx.open_reply(resp)
    assert reply.findtext("Content") == "回复手机号即可入会"
    assert reply.findtext("ToUserName") == OPENID
    assert rows(brand.id)[0].msg_id == "2001"


def test_compatible_mode_uses_the_ciphertext_and_encrypts_the_reply(wx, brand):
    resp = wx.post_aes(text_xml(OPENID, "会员", 2002), compatible=True)
    assert wx.open_reply(resp).findtext("Content") == "回复手机号即可入会"
    assert len(rows(brand.id)) == 1


def test_compatible_mode_trusts_the_ciphertext_not_the_clear_copy(wx, brand):
    encrypted = FakeWeChat(wx.client, brand.slug)
    from tests.support.wechat import aes_encrypt

    enc = aes_encrypt(text_xml(OPENID, "会员", 2003).encode(), AES_KEY, APPID)
    resp = encrypted.post_aes(
        text_xml(OPENID, "forged clear text", 2003), compatible=True, encrypt=enc
    )
    assert wx.open_reply(resp).findtext("Content") == "回复手机号即可入会"


def test_message_encrypted_with_the_previous_key_is_accepted(client, ctx):
    from org import services as org

    b = answering_brand("默认回复", aes_key=OLD_AES_KEY)
    org.update_brand_credentials(brand=b, aes_key=AES_KEY)  # rotation keeps the old key
    db.session.commit()
    assert b.previous_aes_key == OLD_AES_KEY
    wx = FakeWeChat(client, b.slug)
    old = wx.post_aes(text_xml(OPENID, "你好", 3001), aes_key=OLD_AES_KEY)
    assert wx.open_reply(old, aes_key=OLD_AES_KEY).findtext("Content") == "默认回复"
    new = wx.post_aes(text_xml(OPENID, "你好", 3002), aes_key=AES_KEY)
    assert wx.open_reply(new, aes_key=AES_KEY).findtext("Content") == "默认回复"
    assert [r.msg_id for r in rows(b.id)] == ["3001", "3002"]


def test_subscribe_with_qrscene_gives_the_scene_and_the_greeting(wx, brand, seen):
    resp = wx.post_aes(
        event_xml(
            OPENID,
            "subscribe",
            "qrscene_store:SH001",
            extra="<Ticket><![CDATA[gQH47joAAAAA]]></Ticket>",
        )
    )
    assert wx.open_reply(resp).findtext("Content") == "欢迎关注！"
    ctx = seen[0]
    assert (ctx.event, ctx.scene, ctx.event_key) == (
        "subscribe",
        "store:SH001",
        "qrscene_store:SH001",
    )
    assert ctx.wechatpy_message().scene_id == "store:SH001"
    [row] = rows(brand.id)
    assert (row.msg_type, row.event, row.event_key) == ("event", "subscribe", "qrscene_store:SH001")


def test_plain_subscribe_has_no_scene(wx, seen):
    reply = reply_of(wx.post_plain(event_xml(OPENID, "subscribe")))
    assert reply.findtext("Content") == "欢迎关注！"
    assert seen[0].scene is None


def test_scan_gives_the_scene_and_no_greeting(wx, brand, seen):
    resp = wx.post_plain(
        event_xml(OPENID, "SCAN", "guide:42", extra="<Ticket><![CDATA[t]]></Ticket>")
    )
    assert resp.status_code == 200 and resp.data == b"success"
    assert (seen[0].event, seen[0].scene) == ("SCAN", "guide:42")
    assert rows(brand.id)[0].event == "SCAN"


def test_domain_handler_reply_wins_over_the_greeting_and_both_run(wx, brand):
    ran = []

    def welcome_member(ctx):
        ran.append("members")
        return router.TextReply(f"欢迎来到门店 {ctx.scene}")

    def greeting_spy(ctx):
        ran.append("spy")
        return router.TextReply("never shown")

    router.on("event", "subscribe")(welcome_member)
    router.on("event", "subscribe", priority=router.CHATBOT + 1)(greeting_spy)
    try:
        reply = reply_of(wx.post_plain(event_xml(OPENID, "subscribe", "qrscene_SH002")))
    finally:
        router.off(welcome_member)
        router.off(greeting_spy)
    assert reply.findtext("Content") == "欢迎来到门店 SH002"
    assert ran == ["members", "spy"]


def test_click_answers_with_the_keyword_reply_of_its_key(wx, brand):
    resp = wx.post_aes(event_xml(OPENID, "CLICK", "MENU_STORES"))
    reply = wx.open_reply(resp)
    assert reply.findtext("MsgType") == "news"
    assert reply.findtext("ArticleCount") == "1"
    assert reply.findtext("Articles/item/Title") == "门店列表"
    assert reply.findtext("Articles/item/Url") == "https://example.com/stores"
    assert rows(brand.id)[0].event_key == "MENU_STORES"


def test_click_with_an_unknown_key_gets_success(wx, brand):
    resp = wx.post_plain(event_xml(OPENID, "CLICK", "NOTHING_HERE"))
    assert resp.data == b"success"
    assert len(rows(brand.id)) == 1


def test_view_is_recorded(wx, brand):
    resp = wx.post_plain(
        event_xml(OPENID, "VIEW", "https://example.com/member", extra="<MenuId>412</MenuId>")
    )
    assert resp.data == b"success"
    [row] = rows(brand.id)
    assert (row.event, row.event_key) == ("VIEW", "https://example.com/member")


def test_card_event_is_recorded_and_its_dedupe_key_kept_a_day(wx, brand, seen):
    xml = event_xml(
        OPENID,
        "user_get_card",
        extra=(
            "<CardId><![CDATA[pFS7Fjg8kV1IdDz01r4SQwMkuCKc]]></CardId><IsGiveByFriend>0"
            "</IsGiveByFriend><UserCardCode><![CDATA[226009850808]]></UserCardCode>"
            "<OuterStr><![CDATA[store_SH001]]></OuterStr>"
        ),
        create_time=1700000000,
    )
    assert wx.post_aes(xml).data == b"success"
    assert seen[0].raw["UserCardCode"] == "226009850808"
    assert rows(brand.id)[0].event == "user_get_card"
    redis = get_redis()
    [dedupe] = redis.keys(f"*{{b{brand.id}}}:wx-in:ev:{OPENID}:*")
    assert redis.ttl(dedupe) > 24 * 3600


def test_bad_signature_is_403_and_nothing_is_stored(wx, brand, seen):
    resp = wx.post_plain(text_xml(OPENID, "会员", 4001), signature="f" * 40)
    assert resp.status_code == 403
    resp = wx.post_aes(text_xml(OPENID, "会员", 4002), msg_signature="e" * 40)
    assert resp.status_code == 403
    assert rows(brand.id) == [] and seen == []
    assert get_redis().keys(f"*{{b{brand.id}}}:wx-in:msg:400?") == []


@pytest.mark.parametrize("mode", ["plain", "aes"])
def test_the_same_message_three_times_has_one_effect(wx, brand, mode):
    effects = []

    def count(ctx):
        effects.append(ctx.msg_id)

    router.on("text")(count)
    try:
        xml = text_xml(OPENID, "会员", 5001)
        post = wx.post_plain if mode == "plain" else wx.post_aes
        responses = [post(xml) for _ in range(3)]
    finally:
        router.off(count)
    contents = [
        reply_of(r).findtext("Content") if mode == "plain" else wx.open_reply(r).findtext("Content")
        for r in responses
    ]
    assert contents == ["回复手机号即可入会"] * 3  # the retry gets the same answer...
    assert effects == ["5001"]  # ...but the handlers ran once
    assert len(rows(brand.id)) == 1


def test_same_event_three_times_has_one_effect(wx, brand, seen):
    xml = event_xml(OPENID, "subscribe", "qrscene_SH001", create_time=1700000123)
    answers = [wx.post_plain(xml) for _ in range(3)]
    assert {reply_of(a).findtext("Content") for a in answers} == {"欢迎关注！"}
    assert len(seen) == 1 and len(rows(brand.id)) == 1
    # a different event in the same second from the same member is not a retry
    wx.post_plain(event_xml(OPENID, "VIEW", "https://x.example/", create_time=1700000123))
    assert len(rows(brand.id)) == 2


def test_a_failing_handler_lets_the_retry_try_again(wx, brand, app):
    def broken(ctx):
        raise RuntimeError("database went away")

    router.on("text")(broken)
    try:
        app.config["PROPAGATE_EXCEPTIONS"] = False
        first = wx.post_plain(text_xml(OPENID, "会员", 6001))
    finally:
        router.off(broken)
        app.config["PROPAGATE_EXCEPTIONS"] = None
    assert first.status_code == 500  # WeChat retries
    assert rows(brand.id) == []
    retry = wx.post_plain(text_xml(OPENID, "会员", 6001))
    assert reply_of(retry).findtext("Content") == "回复手机号即可入会"
    assert len(rows(brand.id)) == 1


def test_cdata_terminator_in_member_text_cannot_inject_elements(wx):
    def echo(ctx):
        return router.TextReply(f"你说：{ctx.content}")

    attack = "x]]></Content><MsgType><![CDATA[news]]></MsgType><Content><![CDATA[y"
    router.on("text", priority=1)(echo)
    try:
        resp = wx.post_plain(text_xml(OPENID, attack.replace("]]>", "]]]]><![CDATA[>"), 7001))
    finally:
        router.off(echo)
    reply = reply_of(resp)
    assert reply.findtext("Content") == f"你说：{attack}"
    assert [e.text for e in reply.iter("MsgType")] == ["text"]


def test_cdata_terminator_in_a_configured_reply_is_escaped(wx, brand):
    with use_brand(brand.id):
        factories.keyword("code", text="a]]>b<c>&d")
        db.session.commit()
    reply = wx.open_reply(wx.post_aes(text_xml(OPENID, "code", 7002)))
    assert reply.findtext("Content") == "a]]>b<c>&d"


def test_inbound_rows_count_only_handled_messages(wx, brand):
    for i in range(3):
        wx.post_plain(text_xml(OPENID, f"msg {i}", 8000 + i))
    flush_inbound()
    assert (
        db.session.execute(
            select(func.count()).select_from(InboundMessage).execution_options(all_brands=True)
        ).scalar()
        == 3
    )


def test_slow_answer_goes_out_as_a_customer_service_message(wx_client, wx_brand, wx_consumer):
    from core.jobs import OutboxJob, run_outbox_job
    from wechat.sandbox import store

    def slow(ctx):
        ctx.reply_later({"msgtype": "text", "text": {"content": "查询结果：3 张优惠券"}})

    wx = FakeWeChat(
        wx_client,
        wx_brand.slug,
        token=wx_brand.token,
        aes_key=wx_brand.aes_key,
        appid=wx_brand.appid,
    )
    router.on("text", priority=1)(slow)
    try:
        resp = wx.post_aes(text_xml(wx_consumer["openid"], "我的券", 9001))
    finally:
        router.off(slow)
    assert resp.data == b"success"  # answered at once; the message follows from a job
    job = db.session.execute(
        select(OutboxJob).where(OutboxJob.func == "wechat.jobs.send_customer_message")
    ).scalar_one()
    assert run_outbox_job(job.id) == "done"
    sent = [
        m
        for m in store.messages(wx_brand.appid, wx_consumer["openid"])
        if m.get("direction") == "out"
    ]
    assert any("3 张优惠券" in str(m) for m in sent)
