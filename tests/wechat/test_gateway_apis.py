"""Each gateway function against the live sandbox, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import io
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import xmltodict
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from PIL import Image

from wechat import gateway
from wechat.sandbox import accounts, api_mp, oauth, store


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _decrypt(aes_key: str, encrypted: str) -> tuple[str, str]:
    """WeChat's message decryption written out from the protocol: (xml, appid)."""
    key = base64.b64decode(aes_key + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    plain = plain[: -plain[-1]]
    length = int.from_bytes(plain[16:20], "big")
    return plain[20 : 20 + length].decode(), plain[20 + length :].decode()


def test_qrcode_create_returns_a_ticket_whose_image_is_a_png(wx_brand):
    qr = gateway.create_qrcode(wx_brand.id, "store:SH001", permanent=False, expire_seconds=600)
    assert qr["expire_seconds"] == 600
    assert store.get_qrcode(qr["ticket"])["scene"] == "store:SH001"

    res = requests.get(gateway.qrcode_image_url(qr["ticket"]), timeout=5)

    assert res.status_code == 200
    assert res.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(res.content))
    assert image.format == "PNG" and image.size[0] > 100


def test_permanent_qrcode_and_scene_length(wx_brand):
    qr = gateway.create_qrcode(wx_brand.id, "g" * 64, permanent=True)
    assert qr["expire_seconds"] is None
    assert store.get_qrcode(qr["ticket"])["permanent"] is True
    with pytest.raises(ValueError):
        gateway.create_qrcode(wx_brand.id, "g" * 65, permanent=True)
    with pytest.raises(ValueError):
        gateway.create_qrcode(wx_brand.id, "", permanent=False)


def test_user_info_of_a_follower_and_of_someone_who_left(wx_brand, wx_consumer):
    info = gateway.get_user_info(wx_brand.id, wx_consumer["openid"])
    assert info["subscribe"] == 1 and info["unionid"] == wx_consumer["unionid"]
    store.set_following(wx_brand.appid, wx_consumer["openid"], False)
    assert gateway.get_user_info(wx_brand.id, wx_consumer["openid"])["subscribe"] == 0


def test_template_send_is_reported_back_by_a_signed_encrypted_templatesendjobfinish(
    wx_brand, wx_consumer, recorder
):
    accounts.update_account(wx_brand.appid, callback_url=recorder.url + "/wechat/cb")

    msgid = gateway.send_template(
        wx_brand.id,
        wx_consumer["openid"],
        "TPL_POINTS",
        {"first": {"value": "积分到账"}, "keyword1": {"value": "100"}},
        url="https://example.test/points",
        client_msg_id="points-42",
    )

    [post] = recorder.wait(1)
    args = post["args"]
    assert args["signature"] == _sha1(wx_brand.token, args["timestamp"], args["nonce"])
    encrypted = xmltodict.parse(post["body"])["xml"]["Encrypt"]
    assert args["msg_signature"] == _sha1(
        wx_brand.token, args["timestamp"], args["nonce"], encrypted
    )
    assert args["encrypt_type"] == "aes" and args["openid"] == wx_consumer["openid"]
    xml, appid = _decrypt(wx_brand.aes_key, encrypted)
    event = xmltodict.parse(xml)["xml"]
    assert appid == wx_brand.appid
    assert event["Event"] == "TEMPLATESENDJOBFINISH"
    assert event["FromUserName"] == wx_consumer["openid"]
    assert int(event["MsgID"]) == msgid and event["Status"] == "success"
    [shown] = store.messages(wx_brand.appid, wx_consumer["openid"])
    assert shown["via"] == "template" and shown["data"]["keyword1"]["value"] == "100"

    # The same client_msg_id again: WeChat sends nothing new.
    again = gateway.send_template(
        wx_brand.id, wx_consumer["openid"], "TPL_POINTS", {}, client_msg_id="points-42"
    )
    assert again == msgid
    assert len(store.messages(wx_brand.appid, wx_consumer["openid"])) == 1


def test_template_to_someone_not_following_is_43004(wx_brand, wx_consumer):
    store.set_following(wx_brand.appid, wx_consumer["openid"], False)
    with pytest.raises(gateway.WeChatAPIError) as raised:
        gateway.send_template(wx_brand.id, wx_consumer["openid"], "TPL", {})
    assert raised.value.errcode == 43004


def test_customer_and_subscribe_messages_land_in_the_chat(wx_brand, wx_consumer):
    gateway.send_customer_message(
        wx_brand.id, wx_consumer["openid"], {"msgtype": "text", "text": {"content": "在的"}}
    )
    with pytest.raises(gateway.WeChatAPIError) as raised:
        gateway.send_subscribe_message(
            wx_brand.id, wx_consumer["mp_openid"], "SUB1", {"thing1": {"value": "新品"}}
        )
    assert raised.value.errcode == 43101
    store.grant_subscription(wx_brand.mp_appid, wx_consumer["mp_openid"], "SUB1")
    gateway.send_subscribe_message(
        wx_brand.id,
        wx_consumer["mp_openid"],
        "SUB1",
        {"thing1": {"value": "新品"}},
        page="pages/index/index",
    )

    [cs] = store.messages(wx_brand.appid, wx_consumer["openid"])
    assert (cs["direction"], cs["via"], cs["content"]) == ("out", "customer_service", "在的")
    [sub] = store.messages(wx_brand.mp_appid, wx_consumer["mp_openid"])
    assert sub["via"] == "subscribe" and sub["page"] == "pages/index/index"
    with pytest.raises(gateway.WeChatAPIError):
        gateway.send_subscribe_message(wx_brand.id, wx_consumer["mp_openid"], "SUB1", {})


MENU = {
    "button": [
        {"type": "click", "name": "积分", "key": "POINTS"},
        {
            "name": "更多",
            "sub_button": [{"type": "view", "name": "会员中心", "url": "https://example.test/m"}],
        },
    ]
}


def test_menu_create_get_delete(wx_brand):
    assert gateway.get_menu(wx_brand.id) is None
    gateway.create_menu(wx_brand.id, MENU)
    assert gateway.get_menu(wx_brand.id) == MENU
    assert store.get_menu(wx_brand.appid) == MENU
    gateway.delete_menu(wx_brand.id)
    assert gateway.get_menu(wx_brand.id) is None


def test_a_bad_menu_is_refused(wx_brand):
    with pytest.raises(gateway.WeChatAPIError) as raised:
        gateway.create_menu(wx_brand.id, {"button": [{"type": "click", "name": "x"}]})
    assert raised.value.errcode == 40017


def test_member_card_lifecycle(wx_brand, wx_consumer):
    card_id = gateway.create_member_card(
        wx_brand.id,
        {
            "card_type": "MEMBER_CARD",
            "member_card": {"base_info": {"title": "会员卡"}, "supply_bonus": True},
        },
    )
    code = api_mp.give_card(wx_brand.appid, wx_consumer["openid"], card_id)
    ticket = api_mp.submit_activate_form(
        wx_brand.appid, wx_consumer["openid"], card_id, {"mobile": "13900001111"}
    )

    info = gateway.get_activate_info(wx_brand.id, ticket)
    assert {"name": "USER_FORM_INFO_FLAG_MOBILE", "value": "13900001111"} in info[
        "common_field_list"
    ]
    gateway.activate_member_card(
        wx_brand.id, code=code, card_id=card_id, membership_number="M0001", init_bonus=10
    )
    result = gateway.update_member_card_user(
        wx_brand.id, code=code, card_id=card_id, add_bonus=90, record_bonus="消费积分"
    )
    assert result["result_bonus"] == 100 and result["openid"] == wx_consumer["openid"]
    assert gateway.get_card_code(wx_brand.id, code)["openid"] == wx_consumer["openid"]
    assert gateway.decrypt_card_code(wx_brand.id, api_mp.encrypt_code(code)) == code
    with pytest.raises(gateway.WeChatAPIError) as raised:
        gateway.get_card_code(wx_brand.id, "999")
    assert raised.value.errcode == 40056


def test_jscode2session_and_phone_number_round_trip(wx_brand, wx_consumer):
    code = api_mp.issue_js_code(wx_brand.mp_appid, wx_consumer["uid"])

    session = gateway.jscode2session(wx_brand.id, code)

    assert session["openid"] == wx_consumer["mp_openid"]
    assert session["unionid"] == wx_consumer["unionid"]
    assert len(base64.b64decode(session["session_key"])) == 16
    with pytest.raises(gateway.OAuthCodeError) as raised:
        gateway.jscode2session(wx_brand.id, code)
    assert raised.value.errcode == 40163

    phone_code = api_mp.issue_phone_code(wx_brand.mp_appid, wx_consumer["uid"], "13812345678")
    phone = gateway.get_phone_number(wx_brand.id, phone_code)
    assert phone["purePhoneNumber"] == "13812345678" and phone["countryCode"] == "86"
    assert phone["watermark"]["appid"] == wx_brand.mp_appid
    with pytest.raises(gateway.OAuthCodeError):
        gateway.get_phone_number(wx_brand.id, phone_code)


def test_wxacode_is_a_png_and_scene_is_limited_to_32(wx_brand):
    png = gateway.get_wxacode_unlimited(wx_brand.id, "g=12&s=SH001", page="pages/index/index")
    assert Image.open(io.BytesIO(png)).format == "PNG"
    with pytest.raises(gateway.WeChatAPIError) as raised:
        gateway.get_wxacode_unlimited(wx_brand.id, "x" * 33)
    assert raised.value.errcode == 40169
    with pytest.raises(gateway.WeChatAPIError) as raised:
        gateway.get_wxacode_unlimited(wx_brand.id, "ok", page="/pages/index/index")
    assert raised.value.errcode == 41030


def _authorize(brand, redirect_uri: str, scope: str, **extra: str) -> str:
    """Follow the authorize URL like a browser would, as consumer extra['uid']; the code."""
    url = gateway.authorize_url(brand.id, redirect_uri, scope, "st-1")
    assert url.endswith("#wechat_redirect")
    res = requests.get(url.split("#")[0], params=extra, allow_redirects=False, timeout=5)
    assert res.status_code == 302
    back = urlsplit(res.headers["Location"])
    assert back.netloc == "member.example.test"
    query = parse_qs(back.query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


def test_oauth_code_gives_the_member_once(wx_brand, wx_consumer):
    code = _authorize(
        wx_brand, "https://member.example.test/m?x=1", "snsapi_userinfo", uid=wx_consumer["uid"]
    )

    user = gateway.fetch_oauth_user(wx_brand.id, code)

    assert user["openid"] == wx_consumer["openid"]
    assert user["unionid"] == wx_consumer["unionid"]
    assert user["is_snapshotuser"] is False
    assert user["nickname"] == "小王"
    with pytest.raises(gateway.OAuthCodeError) as used:
        gateway.fetch_oauth_user(wx_brand.id, code)
    assert used.value.errcode == 40163
    with pytest.raises(gateway.OAuthCodeError) as unknown:
        gateway.fetch_oauth_user(wx_brand.id, "no-such-code")
    assert unknown.value.errcode == 40029


def test_oauth_snapshot_user_is_flagged(wx_brand, wx_consumer):
    code = _authorize(
        wx_brand,
        "https://member.example.test/m",
        "snsapi_base",
        uid=wx_consumer["uid"],
        snapshot="1",
    )
    user = gateway.fetch_oauth_user(wx_brand.id, code)
    assert user["is_snapshotuser"] is True
    assert user["openid"] != wx_consumer["openid"]
    assert "unionid" not in user


def test_oauth_authorize_page_lists_consumers(wx_brand, wx_consumer):
    url = gateway.authorize_url(wx_brand.id, "https://member.example.test/m", "snsapi_base")
    page = requests.get(url.split("#")[0], timeout=5)
    assert page.status_code == 200
    assert "小王" in page.text
    assert "微信授权登录" in page.text and "以下列身份继续" in page.text
    code = oauth.authorize_code(wx_brand.appid, wx_consumer["uid"], "snsapi_base")
    assert gateway.fetch_oauth_user(wx_brand.id, code)["openid"] == wx_consumer["openid"]


ACCESS_TOKEN = "/sns/oauth2/access_token"


def test_oauth_code_exchange_timeout_and_dropped_connection_are_retryable(
    wx_app, wx_brand, wx_consumer, monkeypatch
):
    monkeypatch.setitem(wx_app.config, "WECHAT_TIMEOUT", 0.5)
    store.inject_fault(ACCESS_TOKEN, delay=3)
    started = time.monotonic()
    with pytest.raises(gateway.RetryableError) as hung:
        gateway.fetch_oauth_user(
            wx_brand.id, oauth.authorize_code(wx_brand.appid, wx_consumer["uid"], "snsapi_base")
        )
    assert time.monotonic() - started < 2
    assert hung.value.errcode is None and "timed out" in str(hung.value)
    code = oauth.authorize_code(wx_brand.appid, wx_consumer["uid"], "snsapi_base")
    store.inject_fault(ACCESS_TOKEN, drop=True)
    with pytest.raises(gateway.RetryableError) as dropped:
        gateway.fetch_oauth_user(wx_brand.id, code)
    assert "network error" in str(dropped.value)
    errors = gateway.call_stats(wx_brand.id)["by_api"]["sns.oauth2"]["errors"]
    assert errors == {"timeout": 1, "network": 1}
    # Nothing is left broken: the code the dropped call did not redeem still gives the member.
    assert gateway.fetch_oauth_user(wx_brand.id, code)["openid"] == wx_consumer["openid"]


def test_oauth_code_exchange_with_wechat_unreachable_is_a_network_error(
    wx_app, wx_brand, monkeypatch
):
    monkeypatch.setitem(wx_app.config, "WECHAT_API_BASE", "http://127.0.0.1:9/sandbox/wechat")
    with pytest.raises(gateway.RetryableError) as raised:
        gateway.fetch_oauth_user(wx_brand.id, "any-code")
    assert raised.value.errcode is None and "network error" in str(raised.value)
    assert gateway.call_stats(wx_brand.id)["by_api"]["sns.oauth2"]["errors"] == {"network": 1}


def test_jsapi_signature_matches_the_js_sdk_algorithm_and_the_ticket_is_cached(wx_brand):
    first = gateway.jsapi_signature(wx_brand.id, "https://m.example.test/p?a=1#frag")
    second = gateway.jsapi_signature(wx_brand.id, "https://m.example.test/p?a=1")

    ticket = store.get_doc("ticket", wx_brand.appid, "jsapi")["ticket"]
    raw = (
        f"jsapi_ticket={ticket}&noncestr={first['nonceStr']}&timestamp={first['timestamp']}"
        "&url=https://m.example.test/p?a=1"
    )
    assert first["signature"] == hashlib.sha1(raw.encode()).hexdigest()
    assert first["appId"] == wx_brand.appid
    assert second["nonceStr"] != first["nonceStr"]
    assert store.calls("/cgi-bin/ticket/getticket") == 1
