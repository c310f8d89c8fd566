"""`flask demo` gives the demo brand a working chatbot and menu, idempotently."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from core.jobs import OutboxJob
from core.tenancy import use_brand
from org.cli import DEMO_CREDENTIALS
from org.models import Brand
from tests.support.wechat import FakeWeChat, event_xml, text_xml
from wechat import chatbot
from wechat.models import KeywordReply

OPENID = "oDemo00000000000000000000001"


def test_demo_chatbot_is_idempotent_and_answers(runner, client, ctx):
    for _ in range(2):
        result = runner.invoke(args=["demo"])
        assert result.exit_code == 0, result.output
    assert "WeChat chatbot of the demo brand" in result.output
    brand = Brand.by_slug("demo")
    with use_brand(brand.id):
        assert db.session.execute(select(func.count()).select_from(KeywordReply)).scalar() == 5
        settings = chatbot.get_settings()
        assert settings.greeting and settings.default_reply
        buttons = settings.menu["button"]
        assert any("sub_button" in b for b in buttons)
        kinds = {s["type"] for b in buttons for s in b.get("sub_button", [b])}
        assert kinds == {"click", "view"}
    assert (
        db.session.execute(
            select(func.count())
            .select_from(OutboxJob)
            .where(OutboxJob.func == "wechat.jobs.publish_menu")
        ).scalar()
        >= 1
    )
    wx = FakeWeChat(
        client,
        "demo",
        token=DEMO_CREDENTIALS["token"],
        aes_key=DEMO_CREDENTIALS["aes_key"],
        appid=DEMO_CREDENTIALS["appid"],
    )
    assert "手机号" in wx.open_reply(wx.post_aes(text_xml(OPENID, "我想成为会员", 1))).findtext(
        "Content"
    )
    assert wx.open_reply(wx.post_aes(text_xml(OPENID, "优惠", 2))).findtext("MsgType") == "news"
    assert "杭州湖滨店" in wx.open_reply(
        wx.post_aes(event_xml(OPENID, "CLICK", "MENU_STORES"))
    ).findtext("Content")
    greeting = wx.open_reply(wx.post_aes(event_xml(OPENID, "subscribe", "qrscene_store:SH001")))
    assert "欢迎关注" in greeting.findtext("Content")


def test_every_demo_link_leads_to_a_real_page_and_every_named_item_exists(app, runner, client, ctx):
    import re

    from werkzeug.exceptions import NotFound

    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    public = app.config["PUBLIC_URL"].rstrip("/")
    brand = Brand.by_slug("demo")
    with use_brand(brand.id):
        settings = chatbot.get_settings()
        rules = list(db.session.execute(select(KeywordReply)).scalars())
    items = [i for b in settings.menu["button"] for i in (b.get("sub_button") or [b])]
    links = [i["url"] for i in items if i["type"] == "view"]
    links += [r.url for r in rules if r.reply_type == "news"]
    assert links
    adapter = app.url_map.bind("localhost")
    for link in links:
        assert link.startswith(public + "/"), link
        path = link[len(public) :]
        try:
            endpoint, _ = adapter.match(path)
        except NotFound:
            raise AssertionError(f"demo link {link} leads to no page") from None
        assert endpoint != "static", link
        assert client.get(path).status_code < 400, link

    # 「...」 in a reply names a menu item or a keyword the member can use.
    names = {i["name"] for i in items} | {b["name"] for b in settings.menu["button"]}
    names |= {r.keyword for r in rules}
    texts = [settings.greeting, settings.default_reply] + [r.text for r in rules]
    for text in texts:
        for named in re.findall(r"「([^」]+)」", text or ""):
            assert named in names, f"「{named}」 is neither a menu item nor a keyword: {text}"
