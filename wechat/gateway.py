"""The only way out to the WeChat API: one function per call, each taking ``brand_id`` first.

Every call uses the brand's credentials, a timeout (WECHAT_TIMEOUT), the access token shared
through Redis, and one refresh-and-retry after 40001/40014/42001. Errors:
``RetryableError`` (-1, 45009, 45011, timeouts, dropped connections: a job raising it is
retried later), ``OAuthCodeError`` (40029/40163), ``WeChatAPIError`` for any other errcode,
``NotConfigured`` when the brand lacks credentials. ``call_stats`` feeds the console.
"""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any
from urllib.parse import quote

import requests
from flask import current_app
from wechatpy.oauth import WeChatOAuth

from wechat import brand_cache, inprocess
from wechat.client import (
    NotConfigured,
    OAuthCodeError,
    RetryableError,
    WeChatAPIError,
    WeChatError,
    api_base,
    call,
    call_stats,
    is_real_wechat,
    key,
    load_brand,
    locked_value,
    timeout,
    transport,
)
from wechat.pay import (
    PayError,
    PayState,
    RefundState,
    pay_close,
    pay_jsapi_prepay,
    pay_query,
    pay_refund,
    pay_refund_query,
)
from wechat.pay_bill import pay_trade_bill
from wechat.pay_notify import PayNotice, PayNotifyError, pay_notify_answer, pay_parse_notify
from wechat.pooled import PooledGetter

__all__ = [
    "NotConfigured",
    "OAuthCodeError",
    "PayError",
    "PayNotice",
    "PayNotifyError",
    "PayState",
    "RefundState",
    "RetryableError",
    "WeChatAPIError",
    "WeChatError",
    "activate_member_card",
    "authorize_url",
    "call_stats",
    "create_member_card",
    "create_menu",
    "create_qrcode",
    "decrypt_card_code",
    "delete_menu",
    "fetch_oauth_user",
    "get_activate_info",
    "get_card_code",
    "get_menu",
    "get_phone_number",
    "get_user_info",
    "get_wxacode_unlimited",
    "jscode2session",
    "jsapi_signature",
    "pay_close",
    "pay_jsapi_prepay",
    "pay_notify_answer",
    "pay_parse_notify",
    "pay_query",
    "pay_refund",
    "pay_refund_query",
    "pay_trade_bill",
    "qrcode_image_url",
    "send_customer_message",
    "send_mass_text",
    "send_subscribe_message",
    "send_template",
    "update_member_card_user",
]

MAX_TEMP_QR_SECONDS = 2_592_000


# --- QR codes ---------------------------------------------------------------------------------


def create_qrcode(
    brand_id: int, scene: str, *, permanent: bool, expire_seconds: int | None = None
) -> dict:
    """A parametric QR code with a string scene: ``{ticket, url, expire_seconds}``."""
    if not isinstance(scene, str) or not 1 <= len(scene) <= 64:
        raise ValueError("a QR scene is a string of 1-64 characters")
    data: dict[str, Any] = {
        "action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": scene}},
    }
    if not permanent:
        data["expire_seconds"] = min(
            int(expire_seconds or MAX_TEMP_QR_SECONDS), MAX_TEMP_QR_SECONDS
        )
    result = call(brand_id, "qrcode.create", lambda c: c.post("qrcode/create", data=data))
    return {
        "ticket": result["ticket"],
        "url": result.get("url"),
        "expire_seconds": result.get("expire_seconds"),
    }


def qrcode_image_url(ticket: str) -> str:
    """Where the QR image of ``ticket`` is served (WeChat's showqrcode, or the sandbox's)."""
    host = "https://mp.weixin.qq.com" if is_real_wechat() else api_base()
    return f"{host}/cgi-bin/showqrcode?ticket={quote(ticket, safe='')}"


# --- users and messages -----------------------------------------------------------------------


def get_user_info(brand_id: int, openid: str) -> dict:
    """A follower's info (``subscribe`` 0 when they do not follow)."""
    return call(brand_id, "user.info", lambda c: c.user.get(openid))


def send_template(
    brand_id: int,
    openid: str,
    template_id: str,
    data: dict,
    *,
    url: str | None = None,
    miniprogram: dict | None = None,
    client_msg_id: str | None = None,
) -> int:
    """Send a template (service) message; returns WeChat's msgid."""
    body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
    if url:
        body["url"] = url
    if miniprogram:
        body["miniprogram"] = miniprogram
    if client_msg_id:
        # Missing in wechatpy 1.8.18: WeChat drops a second send with the same id.
        body["client_msg_id"] = client_msg_id
    result = call(
        brand_id, "message.template", lambda c: c.post("message/template/send", data=body)
    )
    return int(result["msgid"])


def send_subscribe_message(
    brand_id: int,
    openid: str,
    template_id: str,
    data: dict,
    *,
    page: str | None = None,
    mini_program: bool = True,
    miniprogram: dict | None = None,
) -> int | None:
    """Send a one-time subscribe message (mini-program, or official account's bizsend)."""
    body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
    if page:
        body["page"] = page
    if miniprogram:
        body["miniprogram"] = miniprogram
    endpoint = "message/subscribe/send" if mini_program else "message/subscribe/bizsend"
    result = call(
        brand_id,
        "message.subscribe",
        lambda c: c.post(endpoint, data=body),
        mini_program=mini_program,
    )
    return result.get("msgid")


def send_customer_message(brand_id: int, openid: str, message: dict) -> None:
    """Send a customer-service message; ``message`` is WeChat's body without ``touser``."""
    body = {"touser": openid, **message}
    call(brand_id, "message.custom", lambda c: c.post("message/custom/send", data=body))


def send_mass_text(brand_id: int, openids: list[str], content: str) -> int:
    """The official account's mass message (群发) of ``content`` to these followers by openid
    list; returns WeChat's msg_id. A service account may reach each follower 4 times a
    natural month this way (the caller counts that)."""
    body = {"touser": list(openids), "msgtype": "text", "text": {"content": content}}
    result = call(brand_id, "message.mass", lambda c: c.post("message/mass/send", data=body))
    return int(result.get("msg_id") or 0)


# --- menu -------------------------------------------------------------------------------------


def create_menu(brand_id: int, menu: dict) -> None:
    """Publish the custom menu (``{"button": [...]}``)."""
    call(brand_id, "menu.create", lambda c: c.post("menu/create", data=menu))


def get_menu(brand_id: int) -> dict | None:
    """The published menu, or None when there is none (46003)."""
    try:
        return call(brand_id, "menu.get", lambda c: c.get("menu/get")).get("menu")
    except WeChatAPIError as exc:
        if exc.errcode == 46003:
            return None
        raise


def delete_menu(brand_id: int) -> None:
    call(brand_id, "menu.delete", lambda c: c.get("menu/delete"))


# --- member cards -----------------------------------------------------------------------------


def create_member_card(brand_id: int, card: dict) -> str:
    """Create a member card from WeChat's ``card`` object; returns its card_id."""
    return call(brand_id, "card.create", lambda c: c.card.create({"card": card}))


def activate_member_card(
    brand_id: int, *, code: str, card_id: str, membership_number: str, **fields: Any
) -> None:
    """Activate a member card (init_bonus, init_balance ... in ``fields``)."""
    call(
        brand_id,
        "card.activate",
        lambda c: c.card.activate_membercard(membership_number, code, card_id=card_id, **fields),
    )


def get_activate_info(brand_id: int, activate_ticket: str) -> dict:
    """What the member typed into the activation form (activatetempinfo)."""
    return call(
        brand_id, "card.activatetempinfo", lambda c: c.card.get_activate_info(activate_ticket)
    )


def get_member_card_user(brand_id: int, *, card_id: str, code: str) -> dict:
    """The holder of a member card code: openid, whether activated, and what they typed into
    WeChat's activation form (``user_info.common_field_list``; card/membercard/userinfo/get)."""
    return call(brand_id, "card.userinfo", lambda c: c.card.get_membercard_user_info(card_id, code))


def update_member_card_user(brand_id: int, *, code: str, card_id: str, **fields: Any) -> dict:
    """Update bonus/balance (with record_bonus etc.); returns result_bonus, result_balance."""
    return call(
        brand_id, "card.updateuser", lambda c: c.card.update_membercard(code, card_id, **fields)
    )


def get_card_code(brand_id: int, code: str, *, card_id: str | None = None) -> dict:
    """A card code's status and owner openid."""
    return call(
        brand_id,
        "card.code.get",
        lambda c: c.card.get_code(code, card_id=card_id, check_consume=False),
    )


def decrypt_card_code(brand_id: int, encrypt_code: str) -> str:
    """The real code behind an encrypt_code from a card page URL."""
    return call(brand_id, "card.code.decrypt", lambda c: c.card.decrypt_code(encrypt_code))


# --- mini-program -----------------------------------------------------------------------------


def jscode2session(brand_id: int, js_code: str) -> dict:
    """Exchange wx.login()'s code: ``{openid, session_key, unionid?}``."""

    def send(c):
        # Passing access_token=None keeps wechatpy from fetching a token this API ignores.
        return c.wxa._get(
            "sns/jscode2session",
            params={
                "appid": c.appid,
                "secret": c.secret,
                "js_code": js_code,
                "grant_type": "authorization_code",
                "access_token": None,
            },
        )

    result = call(brand_id, "wxa.jscode2session", send, mini_program=True, needs_token=False)
    return {k: result[k] for k in ("openid", "session_key", "unionid") if result.get(k)}


def get_phone_number(brand_id: int, code: str) -> dict:
    """The phone number the member shared (phone_info: phoneNumber, purePhoneNumber ...)."""
    result = call(
        brand_id,
        "wxa.getuserphonenumber",
        lambda c: c.wxa._post("wxa/business/getuserphonenumber", data={"code": code}),
        mini_program=True,
    )
    return result["phone_info"]


def get_wxacode_unlimited(brand_id: int, scene: str, page: str | None = None) -> bytes:
    """A mini-program code (PNG bytes); ``scene`` is at most 32 characters."""
    if not isinstance(scene, str) or not 1 <= len(scene) <= 32:
        raise WeChatAPIError(40169, "invalid length for scene")
    res = call(
        brand_id,
        "wxa.getwxacodeunlimit",
        lambda c: c.wxa.get_wxa_code_unlimited(scene, page=page),
        mini_program=True,
    )
    if not isinstance(res, requests.Response):
        raise WeChatAPIError(None, "no image in the answer")
    return res.content


# --- web OAuth --------------------------------------------------------------------------------


class _OAuth(WeChatOAuth):
    """WeChatOAuth aimed at WECHAT_API_BASE, with a timeout (it has none of its own); the
    gateway's own calls (code exchange, user info) go through ``pooled``."""

    def __init__(
        self, appid: str, secret: str, redirect_uri: str = "", scope: str = "", state: str = ""
    ):
        super().__init__(appid, secret, redirect_uri, scope or "snsapi_base", state)
        base = api_base()
        self.API_BASE_URL = base + "/"
        self.OAUTH_BASE_URL = (
            "https://open.weixin.qq.com/connect/" if is_real_wechat() else base + "/connect/"
        )
        inprocess.aim(self._http, base)
        app = current_app._get_current_object() if inprocess.enabled() else None  # noqa: SLF001
        self.pooled = PooledGetter(base, wsgi_app=app.wsgi_app if app is not None else None)

    def _request(self, method, url_or_endpoint, **kwargs):
        kwargs.setdefault("timeout", timeout())
        return super()._request(method, url_or_endpoint, **kwargs)


def _oauth(brand_id: int, **kwargs: str) -> _OAuth:
    # A member page's request found its brand in the cache: no ORM load, no decryption.
    brand = brand_cache.cached(brand_id) or load_brand(brand_id)
    if not brand.appid or not brand.secret:
        raise NotConfigured(f"brand {brand_id} has no official account appid/secret")
    return _OAuth(brand.appid, brand.secret, **kwargs)


def authorize_url(
    brand_id: int, redirect_uri: str, scope: str = "snsapi_base", state: str = ""
) -> str:
    """Where to send a member's browser to sign in with WeChat."""
    if scope not in ("snsapi_base", "snsapi_userinfo"):
        raise ValueError("scope is snsapi_base or snsapi_userinfo")
    # The URL is made from the client's settings only: a copy of the brand's kept client
    # (sharing its HTTP session, unused here) instead of a new client and session per page.
    oauth = copy.copy(_code_exchanger(brand_id))
    oauth.redirect_uri, oauth.scope, oauth.state = redirect_uri, scope, state
    return oauth.authorize_url


_oauth_clients: dict[tuple, _OAuth] = {}


def _code_exchanger(brand_id: int) -> _OAuth:
    """The brand's OAuth client for code exchanges, kept like ``client_for``'s clients: its
    HTTP session (and connection) is reused instead of made for every sign-in."""
    brand = brand_cache.cached(brand_id) or load_brand(brand_id)
    # in-process clients are bound to one app object (tests build several apps)
    app_id = id(current_app._get_current_object()) if inprocess.enabled() else None  # noqa: SLF001
    cache_key = (brand_id, brand.appid, brand.secret, api_base(), timeout(), app_id)
    oauth = _oauth_clients.get(cache_key)
    if oauth is None:
        oauth = _oauth_clients[cache_key] = _oauth(brand_id)
    return oauth


def fetch_oauth_user(brand_id: int, code: str) -> dict:
    """The member behind an OAuth code: ``{openid, unionid?, is_snapshotuser, scope, ...}``.

    A used code raises ``OAuthCodeError`` (40163), an unknown one too (40029). Reject
    ``is_snapshotuser`` for anything that creates a member: it is a virtual user.
    """
    oauth = _code_exchanger(brand_id)
    token = transport(
        brand_id,
        "sns.oauth2",
        lambda: oauth.pooled.get(
            oauth.API_BASE_URL + "sns/oauth2/access_token",
            {
                "appid": oauth.app_id,
                "secret": oauth.secret,
                "code": code,
                "grant_type": "authorization_code",
            },
            timeout=timeout(),
        ),
    )
    user = {
        "openid": token["openid"],
        "scope": token.get("scope", ""),
        "is_snapshotuser": bool(token.get("is_snapshotuser")),
    }
    if token.get("unionid"):
        user["unionid"] = token["unionid"]
    if "snsapi_userinfo" in user["scope"] and not user["is_snapshotuser"]:
        info = transport(
            brand_id,
            "sns.userinfo",
            lambda: oauth.pooled.get(
                oauth.API_BASE_URL + "sns/userinfo",
                {
                    "access_token": token["access_token"],
                    "openid": token["openid"],
                    "lang": "zh_CN",
                },
                timeout=timeout(),
            ),
        )
        for field in ("nickname", "headimgurl", "sex", "unionid"):
            if info.get(field) is not None:
                user[field] = info[field]
    return user


# --- JS-SDK -----------------------------------------------------------------------------------


def _jsapi_ticket(brand_id: int) -> str:
    brand = load_brand(brand_id)

    def fetch() -> tuple[str, int]:
        result = call(brand_id, "jsapi.ticket", lambda c: c.jsapi.get_ticket("jsapi"))
        return result["ticket"], int(result.get("expires_in", 7200))

    return locked_value(key(brand_id, "wechat", "jsapi_ticket", brand.appid), fetch)


def jsapi_signature(brand_id: int, url: str) -> dict:
    """wx.config parameters for the page at ``url``: {appId, timestamp, nonceStr, signature}."""
    from wechatpy.client.api.jsapi import WeChatJSAPI

    url = url.split("#", 1)[0]
    ticket = _jsapi_ticket(brand_id)
    timestamp = int(time.time())
    nonce = secrets.token_hex(8)
    signature = WeChatJSAPI().get_jsapi_signature(nonce, ticket, timestamp, url)
    return {
        "appId": load_brand(brand_id).appid,
        "timestamp": timestamp,
        "nonceStr": nonce,
        "signature": signature,
    }
