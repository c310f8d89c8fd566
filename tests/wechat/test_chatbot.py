"""Keyword replies: exact and contains matches, priority, active window, built-in keywords;
the menu validation and its publication job."""

from __future__ import annotations

import datetime as dt

import pytest

from core.db import db, utcnow
from core.errors import AppError
from core.tenancy import use_brand
from tests import factories
from tests.support.wechat import APPID, FakeWeChat, answering_brand, text_xml
from wechat import chatbot, router

OPENID = "oChat0000000000000000000001"


@pytest.fixture
def brand(ctx):
    b = answering_brand("default answer", greeting="hello")
    with use_brand(b.id):
        yield b


def answer(text: str, now=None) -> str | None:
    settings = chatbot.get_settings()
    snap = chatbot.snapshot(settings.brand_id, settings.rev)
    reply = chatbot.match_keyword(snap, text, now=now)
    return None if reply is None else getattr(reply, "content", None) or reply.title


def test_exact_match_ignores_case_and_surrounding_space(brand):
    factories.keyword("VIP")
    db.session.commit()
    assert answer("  vip ") == "reply to VIP"
    assert answer("vip please") is None


def test_contains_match(brand):
    factories.keyword("积分", match="contains")
    db.session.commit()
    assert answer("我的积分还有多少") == "reply to 积分"
    assert answer("积") is None


def test_higher_priority_contains_rule_wins(brand):
    factories.keyword("会员", match="contains", priority=1, text="low")
    factories.keyword("会员卡", match="contains", priority=9, text="high")
    db.session.commit()
    assert answer("怎么领会员卡") == "high"
    assert answer("会员") == "low"  # exact hit on 会员; 会员卡 does not match the text


def test_equal_priority_prefers_exact_then_the_older_rule(brand):
    factories.keyword("优惠券", match="contains", priority=5, text="contains 优惠券")
    factories.keyword("优惠", match="contains", priority=5, text="contains 优惠 (newer)")
    factories.keyword("领优惠券", match="exact", priority=5, text="exact")
    db.session.commit()
    assert answer("领优惠券") == "exact"
    assert answer("有优惠券吗") == "contains 优惠券"


def test_active_window_and_switch(brand):
    now = utcnow()
    factories.keyword(
        "早鸟", starts_at=now + dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=2)
    )
    factories.keyword("停用", active=False)
    db.session.commit()
    assert answer("早鸟", now=now) is None
    assert answer("早鸟", now=now + dt.timedelta(hours=1)) == "reply to 早鸟"
    assert answer("早鸟", now=now + dt.timedelta(hours=2)) is None  # the end is exclusive
    assert answer("停用") is None


def test_builtin_keyword_beats_contains_rules_but_not_exact_rules(brand):
    def points(ctx):
        return router.TextReply(f"{ctx.openid} 的积分：120")

    router.keyword("积分", points)
    try:
        factories.keyword("积", match="contains", priority=99, text="contains rule")
        db.session.commit()
        ctx = router.Context(
            brand_id=brand.id,
            appid=APPID,
            openid="o1",
            msg_type="text",
            event=None,
            event_key=None,
            create_time=0,
            raw={},
        )
        snap = chatbot.snapshot(brand.id, chatbot.get_settings().rev)
        assert chatbot.match_keyword(snap, "积分", ctx).content == "o1 的积分：120"
        factories.keyword("积分", priority=100, text="brand's own text")
        db.session.commit()
        snap = chatbot.snapshot(brand.id, chatbot.get_settings().rev)
        assert chatbot.match_keyword(snap, "积分", ctx).content == "brand's own text"
    finally:
        router.off(points)


def test_edits_reach_the_callback_at_once(brand, client):
    wx = FakeWeChat(client, brand.slug)

    def content(resp):
        return wx.open_reply(resp).findtext("Content")

    assert content(wx.post_aes(text_xml(OPENID, "营业时间", 1))) == "default answer"
    r = factories.keyword("营业时间", text="10:00-22:00")
    db.session.commit()
    assert content(wx.post_aes(text_xml(OPENID, "营业时间", 2))) == "10:00-22:00"
    chatbot.update_keyword(
        rule=r,
        keyword="营业时间",
        match="exact",
        priority=0,
        reply_type="text",
        text="9:00-21:00",
        title="",
        description="",
        url="",
        picurl="",
        starts_at=None,
        ends_at=None,
        active=True,
    )
    db.session.commit()
    assert content(wx.post_aes(text_xml(OPENID, "营业时间", 3))) == "9:00-21:00"
    chatbot.delete_keyword(rule=r)
    db.session.commit()
    assert content(wx.post_aes(text_xml(OPENID, "营业时间", 4))) == "default answer"


def test_news_rule_reaches_the_member_as_one_article(brand, client):
    factories.keyword(
        "新品",
        title="春季新品",
        description="抢先看",
        url="https://example.com/new",
        picurl="https://example.com/p.jpg",
    )
    db.session.commit()
    wx = FakeWeChat(client, brand.slug)
    reply = wx.open_reply(wx.post_aes(text_xml(OPENID, "新品", 10)))
    assert reply.findtext("MsgType") == "news"
    assert reply.findtext("Articles/item/Title") == "春季新品"
    assert reply.findtext("Articles/item/PicUrl") == "https://example.com/p.jpg"


@pytest.mark.parametrize(
    "fields, field",
    [
        (dict(keyword=" "), "keyword"),
        (dict(keyword="x" * 61), "keyword"),
        (dict(match="regex"), "match"),
        (dict(priority=-1), "priority"),
        (dict(text=""), "text"),
        (dict(text="字" * 700), "text"),
        (dict(reply_type="news", title=""), "title"),
        (dict(reply_type="news", title="t", url="javascript:alert(1)"), "url"),
        (dict(reply_type="news", title="t", url="https://ok.example", picurl="ftp://x"), "picurl"),
    ],
)
def test_bad_keyword_rules_are_refused(brand, fields, field):
    with pytest.raises(AppError) as err:
        factories.keyword(**{"keyword": "k", "text": "t", **fields})
    assert err.value.field == field


def test_window_end_before_start_and_duplicates_are_refused(brand):
    now = utcnow()
    with pytest.raises(AppError) as err:
        factories.keyword("a", starts_at=now, ends_at=now)
    assert err.value.field == "ends_at"
    factories.keyword("Hello")
    with pytest.raises(AppError) as err:
        factories.keyword("hello")
    assert err.value.status == 409


GOOD_MENU = {
    "button": [
        {"type": "click", "name": "今日推荐", "key": "TODAY"},
        {
            "name": "会员",
            "sub_button": [
                {"type": "view", "name": "会员中心", "url": "https://example.com/m"},
                {"type": "click", "name": "积分", "key": "积分"},
            ],
        },
    ]
}


def test_a_valid_menu_is_kept_in_wechat_form(brand):
    assert chatbot.validate_menu(GOOD_MENU) == GOOD_MENU


@pytest.mark.parametrize(
    "menu",
    [
        {},
        {"button": []},
        {"button": [{"type": "click", "name": f"b{i}", "key": "k"} for i in range(4)]},
        {"button": [{"type": "click", "name": "五个汉字啊", "key": "k"}]},  # 15 bytes is fine...
        {"button": [{"type": "click", "name": "六个汉字啊啊", "key": "k"}]},  # ...18 is not
        {"button": [{"name": "g", "sub_button": [{"type": "click", "name": "s", "key": "k"}] * 6}]},
        {"button": [{"type": "click", "name": "x", "key": ""}]},
        {"button": [{"type": "click", "name": "x", "key": "k" * 129}]},
        {"button": [{"type": "view", "name": "x", "url": "example.com"}]},
        {"button": [{"type": "miniprogram", "name": "x"}]},
        {"button": [{"type": "click", "name": "", "key": "k"}]},
        {"button": ["not a dict"]},
    ],
)
def test_menus_breaking_wechat_limits_are_refused(brand, menu):
    name = menu.get("button", [{}])[0] if menu.get("button") else {}
    if isinstance(name, dict) and name.get("name") == "五个汉字啊":
        assert chatbot.validate_menu(menu)["button"][0]["name"] == "五个汉字啊"
        return
    with pytest.raises(AppError):
        chatbot.validate_menu(menu)


# --- publication to WeChat, through the gateway and the sandbox -----------------------------


def _published_menu_job(brand_id):
    from sqlalchemy import select

    from core.jobs import OutboxJob

    return db.session.execute(
        select(OutboxJob).where(
            OutboxJob.func == "wechat.jobs.publish_menu", OutboxJob.brand_id == brand_id
        )
    ).scalar_one()


def test_publishing_the_menu_reaches_the_sandbox(wx_brand):
    from core.jobs import run_outbox_job
    from wechat.models import ChatbotSettings
    from wechat.sandbox import store

    with use_brand(wx_brand.id):
        chatbot.save_menu(menu=GOOD_MENU)
        chatbot.publish_menu(brand_id=wx_brand.id)
        db.session.commit()
    job = _published_menu_job(wx_brand.id)
    assert run_outbox_job(job.id) == "done"
    assert store.get_menu(wx_brand.appid) == GOOD_MENU
    with use_brand(wx_brand.id):
        settings = db.session.execute(db.select(ChatbotSettings)).scalar_one()
        assert settings.menu_status == "published" and settings.menu_published_at is not None


def test_menu_publication_is_retried_when_wechat_is_busy(wx_brand):
    from core.jobs import RETRY, run_outbox_job
    from wechat.sandbox import store

    store.inject_fault("/cgi-bin/menu/create", errcode=-1, times=5)
    with use_brand(wx_brand.id):
        chatbot.save_menu(menu=GOOD_MENU)
        chatbot.publish_menu(brand_id=wx_brand.id)
        db.session.commit()
    job = _published_menu_job(wx_brand.id)
    assert run_outbox_job(job.id) == "error"
    db.session.refresh(job)
    assert job.status == RETRY
    assert store.get_menu(wx_brand.appid) is None
