"""The router: registration, order, the first reply winning, and rendering."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: N817

import pytest

from wechat import router


def _ctx(msg_type="event", event="subscribe", **kw):
    return router.Context(
        brand_id=1,
        appid="wx1",
        openid="o1",
        msg_type=msg_type,
        event=event,
        event_key=kw.pop("event_key", None),
        create_time=1,
        raw={},
        **kw,
    )


@pytest.fixture
def registered():
    fns = []

    def register(*args, **kw):
        def deco(fn):
            router.on(*args, **kw)(fn)
            fns.append(fn)
            return fn

        return deco

    yield register
    for fn in fns:
        router.off(fn)


def test_every_handler_runs_in_priority_order_and_the_first_reply_wins(registered):
    ran = []

    @registered("event", "subscribe", priority=200)
    def late(ctx):
        ran.append("late")
        return router.TextReply("late")

    @registered("event", "SUBSCRIBE", priority=50)
    def side_effect(ctx):
        ran.append("side effect")

    @registered("event", "subscribe", priority=60)
    def domain(ctx):
        ran.append("domain")
        return router.TextReply("domain")

    @registered("event")
    def any_event(ctx):
        ran.append("any event")

    @registered("text")
    def text_only(ctx):
        ran.append("text")

    ctx = _ctx()
    reply = router.dispatch(ctx)
    assert reply == router.TextReply("domain") and ctx.reply == reply
    # the chatbot's own greeting handler (priority 1000) ran last and saw the reply taken
    assert ran == ["side effect", "domain", "any event", "late"]


def test_registering_twice_runs_once(registered):
    ran = []

    def once(ctx):
        ran.append(1)

    registered("event", "SCAN")(once)
    registered("event", "SCAN")(once)
    router.dispatch(_ctx(event="SCAN"))
    assert ran == [1]


def test_builtin_keywords_are_case_and_space_insensitive():
    def handler(ctx):
        return None

    router.keyword(" VIP ", handler)
    try:
        assert router.builtin_keyword("vip") is handler
        assert router.builtin_keyword("vip card") is None
    finally:
        router.off(handler)
    assert router.builtin_keyword("vip") is None


def test_rendered_text_reply_escapes_cdata_and_drops_control_characters():
    xml = router.render(
        router.TextReply("a]]>b\x00c\x1f<d>"),
        to_user="o]]>1",
        from_user="gh_1",
        create_time=1700000000,
    )
    doc = ET.fromstring(xml)
    assert doc.findtext("Content") == "a]]>bc<d>"
    assert doc.findtext("ToUserName") == "o]]>1"
    assert doc.findtext("CreateTime") == "1700000000"


def test_rendered_news_reply_has_one_article():
    xml = router.render(
        router.NewsReply("标题]]>", "摘要", "https://e.x/a?b=1&c=2", ""),
        to_user="o1",
        from_user="gh_1",
    )
    doc = ET.fromstring(xml)
    assert doc.findtext("MsgType") == "news" and doc.findtext("ArticleCount") == "1"
    assert len(doc.findall("Articles/item")) == 1
    assert doc.findtext("Articles/item/Title") == "标题]]>"
    assert doc.findtext("Articles/item/Url") == "https://e.x/a?b=1&c=2"


def test_wechatpy_view_of_a_scene_subscribe():
    ctx = _ctx(event_key="qrscene_store:SH001", scene="store:SH001")
    ctx.raw.update(
        {
            "MsgType": "event",
            "Event": "subscribe",
            "EventKey": "qrscene_store:SH001",
            "FromUserName": "o1",
            "ToUserName": "gh",
            "CreateTime": "1",
        }
    )
    msg = ctx.wechatpy_message()
    assert msg.scene_id == "store:SH001" and msg.source == "o1"
    assert ctx.raw["EventKey"] == "qrscene_store:SH001"  # the handlers' raw view is untouched
