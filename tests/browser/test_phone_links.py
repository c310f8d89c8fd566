"""Links in the phone open inside it as the chosen consumer, and pushed messages appear."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from core.db import db
from core.jobs import relay_committed
from core.tenancy import use_brand
from tests import factories as f
from wechat import chatbot
from wechat.sandbox import store

APPID, SECRET = "wxlinks000000001", "links-secret-0001"


def _authorize_url(base: str) -> str:
    """A page of the app that needs to know the WeChat user: it starts with OAuth."""
    return (
        f"{base}/sandbox/wechat/connect/oauth2/authorize?"
        + urlencode(
            {
                "appid": APPID,
                "redirect_uri": f"{base}/healthz",
                "response_type": "code",
                "scope": "snsapi_base",
                "state": "s1",
            }
        )
        + "#wechat_redirect"
    )


@pytest.fixture
def brand(live_server):
    with live_server.app.app_context():
        b = f.brand(
            slug="links",
            name="链接品牌",
            appid=APPID,
            secret=SECRET,
            token="linkstoken",
            aes_key="ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut",
        )
        url = _authorize_url(live_server.url)
        with use_brand(b.id):
            chatbot.save_replies(greeting="欢迎！", default_reply="")
            f.keyword("会员中心", title="进入会员中心", description="查看积分和优惠券", url=url)
            chatbot.save_menu(menu={"button": [{"type": "view", "name": "我的", "url": url}]})
            chatbot.publish_menu(brand_id=b.id)
            db.session.commit()
            relay_committed()
        yield b
        db.session.remove()


def _start(page, nickname: str) -> str:
    page.goto("/sandbox/phone?brand=links")
    page.fill("#nickname", nickname)
    with page.expect_navigation():  # the new consumer's page, not the old one
        page.click("#create-consumer")
    page.click("#follow-button")
    expect(page.locator(".msg.out .bubble").first).to_have_text("欢迎！")
    return page.locator("#consumer-select").input_value()


def _frame_url(page) -> str:
    return page.locator("#browser-frame").element_handle().content_frame().url


def _openid_behind(live_server, frame_url: str) -> str:
    """Redeem the OAuth code the app received, as the app's server would."""
    query = parse_qs(urlsplit(frame_url).query)
    assert query["state"] == ["s1"]
    r = requests.get(
        f"{live_server.url}/sandbox/wechat/sns/oauth2/access_token",
        params={
            "appid": APPID,
            "secret": SECRET,
            "code": query["code"][0],
            "grant_type": "authorization_code",
        },
    )
    return r.json()["openid"]


def test_news_reply_link_opens_in_the_phone_as_the_consumer(page, live_server, brand):
    uid = _start(page, "阿花")
    page.click("#mode-toggle")
    page.fill("#message-input", "会员中心")
    page.press("#message-input", "Enter")
    card = page.locator(".msg.out .card")
    expect(card).to_contain_text("进入会员中心")
    expect(card).to_contain_text("查看积分和优惠券")
    card.click()

    expect(page.locator("#browser")).to_be_visible()
    frame = page.frame_locator("#browser-frame")
    expect(frame.locator("body")).to_contain_text('"status"')  # /healthz answered
    frame_url = _frame_url(page)
    assert frame_url.startswith(f"{live_server.url}/healthz?")
    with live_server.app.app_context():
        assert _openid_behind(live_server, frame_url) == store.openid_for(APPID, uid)

    page.click("#browser-close")
    expect(page.locator("#browser")).to_be_hidden()


def test_view_menu_item_opens_its_page_and_reports_the_view(page, live_server, brand):
    uid = _start(page, "阿草")
    page.locator("#menubar").get_by_role("button", name="我的").click()
    expect(page.locator("#browser")).to_be_visible()
    expect(page.frame_locator("#browser-frame").locator("body")).to_contain_text('"status"')
    with live_server.app.app_context():
        assert _openid_behind(live_server, _frame_url(page)) == store.openid_for(APPID, uid)
    expect(page.locator(".chat .system").last).to_contain_text("/sandbox/wechat/connect/oauth2")
    with live_server.app.app_context():
        chat = store.messages(APPID, store.openid_for(APPID, uid))
    assert chat[-1]["event"] == "VIEW" and chat[-1]["eventKey"] == _authorize_url(live_server.url)


def test_pushed_message_appears_without_reloading(page, live_server, brand):
    uid = _start(page, "阿树")
    base = f"{live_server.url}/sandbox/wechat"
    token = requests.get(
        f"{base}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
    ).json()
    with live_server.app.app_context():
        openid = store.openid_for(APPID, uid)
    r = requests.post(
        f"{base}/cgi-bin/message/custom/send",
        params={"access_token": token["access_token"]},
        json={"touser": openid, "msgtype": "text", "text": {"content": "您的积分已到账"}},
    )
    assert r.json()["errcode"] == 0
    expect(page.locator(".msg.out .bubble").last).to_contain_text("您的积分已到账")
