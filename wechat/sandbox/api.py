"""The fake WeChat API: the blueprint, its checks and the official-account endpoints.

Every endpoint answers like api.weixin.qq.com: HTTP 200 with ``{"errcode", "errmsg"}`` on
error. Before any handler runs, the call is counted, an injected fault is applied (an
errcode, a delay or a dropped connection) and the access_token is checked.
"""

from __future__ import annotations

import io
import secrets
import socket
import time
from urllib.parse import quote

import qrcode
from flask import Blueprint, Response, jsonify, request, url_for

from wechat import notice
from wechat.sandbox import accounts, push, store, templates

bp = Blueprint("wechat_sandbox_api", __name__, url_prefix="/sandbox/wechat")

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40016: "invalid button size",
    40017: "invalid button type",
    40029: "invalid code",
    40037: "invalid template_id",
    40097: "invalid args",
    40125: "invalid appsecret",
    40163: "code been used",
    40169: "invalid length for scene, or the data is not json string",
    41001: "access_token missing",
    41030: "invalid page",
    42001: "access_token expired",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    47003: "argument invalid!",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    46003: "menu no exist",
    48001: "api unauthorized",
    40056: "invalid serial code",
    40073: "invalid card id",
}

# Endpoints that authenticate with appid/secret (or nothing) instead of an access_token.
NO_TOKEN_PREFIXES = (
    "/cgi-bin/token",
    "/cgi-bin/stable_token",
    "/cgi-bin/showqrcode",
    "/sns/",
    "/connect/",
    "/pay/",
    "/q/",
)


def err(errcode: int, errmsg: str | None = None) -> Response:
    return jsonify(errcode=errcode, errmsg=errmsg or ERRMSG.get(errcode, "error"))


def ok(**fields: object) -> Response:
    return jsonify(errcode=0, errmsg="ok", **fields)


def endpoint_path() -> str:
    """The path below the sandbox prefix, e.g. ``/cgi-bin/user/info`` (the fault key)."""
    return request.path[len(bp.url_prefix) :] or "/"


def body_json() -> dict:
    data = request.get_json(force=True, silent=True)
    return data if isinstance(data, dict) else {}


def _drop_connection() -> None:
    sock = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


@bp.before_request
def _checks():
    path = endpoint_path()
    if path.startswith("/_sandbox/"):
        return None
    fault = store.count_call_and_take_fault(path)
    if fault:
        if fault.get("delay"):
            time.sleep(float(fault["delay"]))
        if fault.get("drop"):
            _drop_connection()
            return Response(status=500)
        if fault.get("errcode") is not None:
            if path.startswith("/pay/"):
                from wechat.sandbox.pay import fault_response

                return fault_response(fault["errcode"])
            return err(int(fault["errcode"]))
    if path.startswith(NO_TOKEN_PREFIXES):
        return None
    code, appid = store.check_token(request.args.get("access_token"))
    if code:
        return err(code)
    request.environ["sandbox.appid"] = appid
    return None


def current_appid() -> str:
    return request.environ["sandbox.appid"]


def _bad_credentials(appid: str | None, secret: str | None) -> int:
    account = accounts.get_account(appid)
    if account is None:
        return 40013
    if not secret or not secrets.compare_digest(account["secret"] or "", secret):
        return 40125
    return 0


# --- access token ---------------------------------------------------------------------------


@bp.get("/cgi-bin/token")
def token():
    if request.args.get("grant_type") != "client_credential":
        return err(40002)
    appid = request.args.get("appid")
    code = _bad_credentials(appid, request.args.get("secret"))
    if code:
        return err(code)
    return jsonify(access_token=store.issue_token(appid), expires_in=7200)


@bp.post("/cgi-bin/stable_token")
def stable_token():
    data = body_json()
    if data.get("grant_type") != "client_credential":
        return err(40002)
    appid = data.get("appid")
    code = _bad_credentials(appid, data.get("secret"))
    if code:
        return err(code)
    current = store.current_token(appid)
    if current and not data.get("force_refresh"):
        valid, _ = store.check_token(current)
        if valid == 0:
            ttl = int(store.token_expires_at(current) - time.time())
            return jsonify(access_token=current, expires_in=ttl)
    return jsonify(access_token=store.issue_token(appid), expires_in=7200)


# --- QR codes -------------------------------------------------------------------------------


@bp.post("/cgi-bin/qrcode/create")
def qrcode_create():
    data = body_json()
    action = data.get("action_name")
    scene = (data.get("action_info") or {}).get("scene") or {}
    if action in ("QR_STR_SCENE", "QR_LIMIT_STR_SCENE"):
        value = scene.get("scene_str")
        if not isinstance(value, str) or not 1 <= len(value) <= 64:
            return err(40097)
    elif action in ("QR_SCENE", "QR_LIMIT_SCENE"):
        value = scene.get("scene_id")
        if not isinstance(value, int) or value <= 0:
            return err(40097)
        value = str(value)
    else:
        return err(40097)
    permanent = action.startswith("QR_LIMIT")
    expire = None if permanent else max(60, min(int(data.get("expire_seconds") or 60), 2592000))
    ticket = "gQ" + secrets.token_urlsafe(36)
    store.save_qrcode(current_appid(), ticket, value, expire)
    url = url_for(".qr_landing", ticket=ticket, _external=True)
    body = {"ticket": ticket, "url": url}
    if expire is not None:
        body["expire_seconds"] = expire
    return jsonify(body)


@bp.get("/cgi-bin/showqrcode")
def showqrcode():
    ticket = request.args.get("ticket", "")
    if store.get_qrcode(ticket) is None:
        return Response("invalid ticket", status=404, mimetype="text/plain")
    url = url_for(".qr_landing", ticket=ticket, _external=True)
    return png_response(url)


@bp.get("/q/<ticket>")
def qr_landing(ticket: str):
    qr = store.get_qrcode(ticket)
    if qr is None:
        return Response("expired", status=404, mimetype="text/plain")
    return jsonify(appid=qr["appid"], scene=qr["scene"], ticket=ticket)


def png_response(data: str) -> Response:
    img = qrcode.make(data)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return Response(buf.getvalue(), mimetype="image/png")


# --- users ----------------------------------------------------------------------------------


@bp.get("/cgi-bin/user/info")
def user_info():
    appid = current_appid()
    openid = request.args.get("openid", "")
    consumer = store.consumer_by_openid(appid, openid)
    if consumer is None:
        return err(40003)
    since = store.followed_at(appid, openid)
    if since is None:
        return jsonify(subscribe=0, openid=openid, unionid=consumer["unionid"])
    return jsonify(
        subscribe=1,
        openid=openid,
        language="zh_CN",
        subscribe_time=since,
        unionid=consumer["unionid"],
        remark="",
        groupid=0,
        tagid_list=[],
        subscribe_scene="ADD_SCENE_QR_CODE",
        qr_scene=0,
        qr_scene_str="",
    )


# --- messages -------------------------------------------------------------------------------


def _recipient(appid: str, openid: str | None) -> int:
    if not openid or store.consumer_by_openid(appid, openid) is None:
        return 40003
    return 0


@bp.post("/cgi-bin/message/template/send")
def template_send():
    appid = current_appid()
    data = body_json()
    openid = data.get("touser")
    code = _recipient(appid, openid)
    if code:
        return err(code)
    if not data.get("template_id"):
        return err(40037)
    if not store.is_following(appid, openid):
        return err(43004)
    client_msg_id = data.get("client_msg_id")
    if client_msg_id:
        earlier = store.get_doc("tmpl_dedupe", appid, f"{openid}:{client_msg_id}")
        if earlier:
            return ok(msgid=earlier["msgid"])
    msgid = store.next_id("tmpl_msgid") + 2_000_000_000
    if client_msg_id:
        store.put_doc("tmpl_dedupe", appid, f"{openid}:{client_msg_id}", {"msgid": msgid})
    store.record_message(
        appid,
        openid,
        {
            "direction": "out",
            "via": "template",
            "msgtype": "template",
            "template_id": data["template_id"],
            # What the member sees since May 2023: no first/remark, values cut at 20.
            "data": notice.as_shown(data.get("data") or {}),
            **templates.layout(appid, data["template_id"]),
            "url": data.get("url"),
            "miniprogram": data.get("miniprogram"),
            "msgid": msgid,
        },
    )
    push.push_event_later(
        appid,
        openid,
        {"MsgType": "event", "Event": "TEMPLATESENDJOBFINISH", "MsgID": msgid, "Status": "success"},
    )
    return ok(msgid=msgid)


def _subscribe_send(miniprogram: bool):
    appid = current_appid()
    data = body_json()
    openid = data.get("touser")
    code = _recipient(appid, openid)
    if code:
        return err(code)
    template_id = data.get("template_id")
    if not template_id:
        return err(40037)
    too_long = notice.too_long_subscribe_value(data.get("data") or {})
    if too_long:
        return err(47003, f"argument invalid! data.{too_long}.value invalid")
    if not store.take_subscription(appid, openid, template_id):
        return err(43101)
    store.record_message(
        appid,
        openid,
        {
            "direction": "out",
            "via": "subscribe",
            "msgtype": "subscribe",
            "template_id": template_id,
            "data": data.get("data") or {},
            "page": data.get("page"),
            "miniprogram": data.get("miniprogram"),
        },
    )
    return ok(msgid=store.next_id("sub_msgid"))


@bp.post("/cgi-bin/message/subscribe/send")
def subscribe_send():
    return _subscribe_send(True)


@bp.post("/cgi-bin/message/subscribe/bizsend")
def subscribe_bizsend():
    return _subscribe_send(False)


@bp.post("/cgi-bin/message/custom/send")
def custom_send():
    appid = current_appid()
    data = body_json()
    openid = data.get("touser")
    code = _recipient(appid, openid)
    if code:
        return err(code)
    msgtype = data.get("msgtype")
    if not msgtype or msgtype not in data:
        return err(40097)
    payload = data[msgtype]
    record = {"direction": "out", "via": "customer_service", "msgtype": msgtype}
    if msgtype == "text":
        record["content"] = payload.get("content", "")
    elif msgtype == "news":
        record["articles"] = payload.get("articles", [])
    else:
        record[msgtype] = payload
    store.record_message(appid, openid, record)
    return ok()


@bp.post("/cgi-bin/message/mass/send")
def mass_send():
    appid = current_appid()
    data = body_json()
    openids = data.get("touser")
    # WeChat: "OpenID最少2个，最多10000个"
    if not isinstance(openids, list) or not 2 <= len(openids) <= 10000:
        return err(40130, "invalid openid list size, at least two openid")
    if data.get("msgtype") != "text" or not (data.get("text") or {}).get("content"):
        return err(40097)
    msg_id = store.next_id("mass_msgid") + 1_000_000_000
    for openid in openids:
        if store.consumer_by_openid(appid, openid) is None or not store.is_following(appid, openid):
            continue  # WeChat leaves out who does not follow
        store.record_message(
            appid,
            openid,
            {
                "direction": "out",
                "via": "mass",
                "msgtype": "text",
                "content": data["text"]["content"],
                "msg_id": msg_id,
            },
        )
    return ok(msg_id=msg_id)


# --- menu -----------------------------------------------------------------------------------

_BUTTON_KEYS = {
    "click": "key",
    "view": "url",
    "miniprogram": "pagepath",
    "scancode_push": "key",
    "scancode_waitmsg": "key",
    "pic_sysphoto": "key",
    "pic_photo_or_album": "key",
    "pic_weixin": "key",
    "location_select": "key",
    "media_id": "media_id",
    "view_limited": "media_id",
}


def _bad_menu(menu: dict) -> int:
    buttons = menu.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return 40016
    for button in buttons:
        if not isinstance(button, dict) or not button.get("name"):
            return 40016
        subs = button.get("sub_button")
        items = subs if subs else [button]
        if subs is not None and subs and len(subs) > 5:
            return 40016
        for item in items:
            kind = item.get("type")
            if kind not in _BUTTON_KEYS or not item.get(_BUTTON_KEYS[kind]):
                return 40017
            if not item.get("name"):
                return 40016
    return 0


@bp.post("/cgi-bin/menu/create")
def menu_create():
    menu = body_json()
    code = _bad_menu(menu)
    if code:
        return err(code)
    store.put_doc("menu", current_appid(), "current", {"button": menu["button"]})
    return ok()


@bp.get("/cgi-bin/menu/get")
def menu_get():
    menu = store.get_menu(current_appid())
    if menu is None:
        return err(46003)
    return jsonify(menu=menu)


@bp.get("/cgi-bin/menu/delete")
def menu_delete():
    store.del_doc("menu", current_appid(), "current")
    return ok()


# --- JS-SDK ---------------------------------------------------------------------------------


@bp.get("/cgi-bin/ticket/getticket")
def getticket():
    kind = request.args.get("type", "jsapi")
    if kind not in ("jsapi", "wx_card"):
        return err(40097)
    ticket = secrets.token_urlsafe(64)
    store.put_doc("ticket", current_appid(), kind, {"ticket": ticket})
    return ok(ticket=ticket, expires_in=7200)


def qrcode_image_path(ticket: str) -> str:
    return "/cgi-bin/showqrcode?ticket=" + quote(ticket, safe="")
