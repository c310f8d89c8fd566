"""Template and subscribe messages as WeChat shows them since May 2023: no first/remark, each
keyword value cut at 20 characters, over-long subscribe values refused (47003)."""

from __future__ import annotations

import pytest

from wechat import gateway, notice
from wechat.sandbox import store, templates


def test_values_are_cut_where_wechat_cuts_them():
    assert notice.shown("5元现金券") == "5元现金券"
    long = "会员专享" * 6  # 24 characters
    assert notice.shown(long) == long[:20] + "…"
    # A run of digits or Latin letters counts as one character.
    assert notice.shown("订单 " + "A1" * 30) == "订单 " + "A1" * 30
    assert notice.shown("积分到账🎉") == "积分到账"
    assert notice.keywords("+300", 300) == {
        "keyword1": {"value": "+300"},
        "keyword2": {"value": "300"},
    }


def test_the_sandbox_shows_a_template_message_as_wechat_does(wx_brand, wx_consumer):
    gateway.send_template(
        wx_brand.id,
        wx_consumer["openid"],
        "demo-points-changed",
        {
            "first": {"value": "您的积分有变动"},
            "keyword1": {"value": "+300", "color": "#ff0000"},
            "keyword2": {"value": "这是一段超过二十个字的说明，会员在微信里只能看到前二十个字"},
            "remark": {"value": "感谢您的支持"},
        },
    )
    [shown] = store.messages(wx_brand.appid, wx_consumer["openid"])
    assert set(shown["data"]) == {"keyword1", "keyword2"}
    assert shown["data"]["keyword1"] == {"value": "+300"}
    assert shown["data"]["keyword2"]["value"] == "这是一段超过二十个字的说明，会员在微信里…"
    assert shown["title"] == "积分变动提醒"
    assert shown["labels"]["keyword1"] == "变动积分"


def test_a_template_added_to_the_account_has_its_title(wx_brand, wx_consumer):
    templates.add_template(wx_brand.appid, "TPL9", title="订单发货", labels=["订单号", "快递"])
    gateway.send_template(wx_brand.id, wx_consumer["openid"], "TPL9", {})
    [shown] = store.messages(wx_brand.appid, wx_consumer["openid"])
    assert shown["title"] == "订单发货" and shown["labels"] == {
        "keyword1": "订单号",
        "keyword2": "快递",
    }


def test_an_over_long_subscribe_value_is_refused(wx_brand, wx_consumer):
    store.grant_subscription(wx_brand.mp_appid, wx_consumer["mp_openid"], "SUB1")
    with pytest.raises(gateway.WeChatAPIError) as raised:
        gateway.send_subscribe_message(
            wx_brand.id, wx_consumer["mp_openid"], "SUB1", {"thing1": {"value": "新" * 21}}
        )
    assert raised.value.errcode == 47003
    assert "thing1" in str(raised.value)
    # Refused, not spent: the one-time subscription is still there.
    gateway.send_subscribe_message(
        wx_brand.id, wx_consumer["mp_openid"], "SUB1", {"thing1": {"value": "新" * 20}}
    )
    [sub] = store.messages(wx_brand.mp_appid, wx_consumer["mp_openid"])
    assert sub["data"]["thing1"]["value"] == "新" * 20
