"""Fake mini-program and member-card endpoints, and the codes a consumer's phone obtains.

``issue_js_code`` stands for ``wx.login()`` in the mini-program and ``issue_phone_code`` for
the phone-number button: each returns the single-use code the app then exchanges.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

from flask import jsonify, request

from wechat.sandbox import accounts, store
from wechat.sandbox.api import body_json, bp, current_appid, err, ok, png_response


def _consumer_openid(appid: str, uid: str) -> str:
    if store.get_consumer(uid) is None:
        raise LookupError(f"unknown sandbox consumer {uid}")
    return store.openid_for(appid, uid)


def issue_js_code(appid: str, uid: str) -> str:
    """The code ``wx.login()`` gives the consumer ``uid`` in mini-program ``appid``."""
    openid = _consumer_openid(appid, uid)
    return store.issue_code("jscode", {"appid": appid, "uid": uid, "openid": openid})


def default_phone(uid: str) -> str:
    return "139" + str(int(hashlib.sha256(uid.encode()).hexdigest(), 16))[:8]


def issue_phone_code(appid: str, uid: str, phone: str | None = None) -> str:
    """The code the phone-number button gives when the consumer agrees to share ``phone``."""
    _consumer_openid(appid, uid)
    return store.issue_code("phone", {"appid": appid, "phone": phone or default_phone(uid)})


@bp.get("/sns/jscode2session")
def jscode2session():
    appid = request.args.get("appid")
    account = accounts.get_account(appid)
    if account is None:
        return err(40013)
    if not secrets.compare_digest(account["secret"] or "", request.args.get("secret") or ""):
        return err(40125)
    if request.args.get("grant_type") != "authorization_code":
        return err(40002)
    code, data = store.redeem_code("jscode", request.args.get("js_code"))
    if code:
        return err(code)
    if data["appid"] != appid:
        return err(40029)
    consumer = store.get_consumer(data["uid"]) or {}
    session_key = base64.b64encode(secrets.token_bytes(16)).decode()
    return jsonify(openid=data["openid"], session_key=session_key, unionid=consumer.get("unionid"))


@bp.post("/wxa/business/getuserphonenumber")
def getuserphonenumber():
    code, data = store.redeem_code("phone", body_json().get("code"))
    if code:
        return err(code)
    if data["appid"] != current_appid():
        return err(40029)
    return ok(
        phone_info={
            "phoneNumber": data["phone"],
            "purePhoneNumber": data["phone"],
            "countryCode": "86",
            "watermark": {"timestamp": int(time.time()), "appid": data["appid"]},
        }
    )


@bp.post("/wxa/getwxacodeunlimit")
def getwxacodeunlimit():
    data = body_json()
    scene = data.get("scene")
    if not isinstance(scene, str) or not 1 <= len(scene) <= 32:
        return err(40169)
    page = data.get("page")
    if page is not None and (not isinstance(page, str) or page.startswith("/") or not page):
        return err(41030)
    appid = current_appid()
    store.put_doc("wxacode", appid, scene, {"scene": scene, "page": page})
    return png_response(f"wxacode:{appid}:{page or ''}:{scene}")


# --- member cards ---------------------------------------------------------------------------


@bp.post("/card/create")
def card_create():
    card = body_json().get("card") or {}
    if card.get("card_type") != "MEMBER_CARD" or "member_card" not in card:
        return err(40097)
    card_id = "p" + secrets.token_urlsafe(20)
    store.put_doc("card", current_appid(), card_id, card)
    return ok(card_id=card_id)


def give_card(appid: str, openid: str, card_id: str) -> str:
    """The consumer takes a member card (the caller delivers ``user_get_card``); its code."""
    if store.get_doc("card", appid, card_id) is None:
        raise LookupError(f"unknown card {card_id}")
    code = str(store.next_id("card_code") + 100_000_000_000)
    store.put_doc(
        "card_code",
        appid,
        code,
        {
            "card_id": card_id,
            "openid": openid,
            "bonus": 0,
            "balance": 0,
            "activated": False,
            "membership_number": None,
        },
    )
    return code


def encrypt_code(code: str) -> str:
    """The encrypt_code a card page URL carries for ``code`` (decrypted by card/code/decrypt)."""
    token = secrets.token_urlsafe(24)
    store.put_doc("card_encrypt", "all", token, {"code": code})
    return token


def submit_activate_form(appid: str, openid: str, card_id: str, fields: dict) -> str:
    """The consumer fills the activation form; the activate_ticket WeChat gives the app (the
    form is also what card/membercard/userinfo/get answers for the consumer's card)."""
    ticket = secrets.token_urlsafe(24)
    form = _form_key(card_id, openid)
    store.put_doc("card_form", appid, form, {"fields": fields})
    store.put_doc("card_activate", appid, ticket, {"form": form})
    return ticket


def _form_key(card_id: str, openid: str) -> str:
    return f"{card_id}:{openid}"


_FORM_NAMES = {
    "mobile": "USER_FORM_INFO_FLAG_MOBILE",
    "name": "USER_FORM_INFO_FLAG_NAME",
    "birthday": "USER_FORM_INFO_FLAG_BIRTHDAY",
    "sex": "USER_FORM_INFO_FLAG_SEX",
}


def _form_fields(fields: dict) -> list[dict]:
    return [{"name": _FORM_NAMES.get(k, k), "value": v} for k, v in fields.items()]


def _card_code(appid: str, code: str | None, card_id: str | None) -> dict | None:
    row = store.get_doc("card_code", appid, code or "")
    if row is None or (card_id and row["card_id"] != card_id):
        return None
    return row


@bp.post("/card/membercard/activate")
def card_activate():
    appid = current_appid()
    data = body_json()
    row = _card_code(appid, data.get("code"), data.get("card_id"))
    if row is None:
        return err(40056)
    if not data.get("membership_number"):
        return err(40097)
    row.update(activated=True, membership_number=data["membership_number"])
    row["bonus"] = int(data.get("init_bonus") or row["bonus"])
    row["balance"] = int(data.get("init_balance") or row["balance"])
    store.put_doc("card_code", appid, data["code"], row)
    return ok()


@bp.post("/card/membercard/activatetempinfo/get")
def card_activatetempinfo():
    appid = current_appid()
    ticket = store.get_doc("card_activate", appid, body_json().get("activate_ticket", ""))
    if ticket is None:
        return err(40097)
    form = store.get_doc("card_form", appid, ticket["form"])
    return ok(info={"common_field_list": _form_fields(form["fields"]), "custom_field_list": []})


@bp.post("/card/membercard/userinfo/get")
def card_userinfo():
    appid = current_appid()
    data = body_json()
    row = _card_code(appid, data.get("code"), data.get("card_id"))
    if row is None:
        return err(40056)
    form = store.get_doc("card_form", appid, _form_key(row["card_id"], row["openid"])) or {}
    return ok(
        openid=row["openid"],
        nickname="",
        membership_number=row["membership_number"] or "",
        bonus=row["bonus"],
        balance=row["balance"],
        sex="",
        user_card_status="NORMAL",
        has_active=bool(row["activated"]),
        user_info={
            "common_field_list": _form_fields(form.get("fields") or {}),
            "custom_field_list": [],
        },
    )


@bp.post("/card/membercard/updateuser")
def card_updateuser():
    appid = current_appid()
    data = body_json()
    row = _card_code(appid, data.get("code"), data.get("card_id"))
    if row is None:
        return err(40056)
    if "bonus" in data:
        row["bonus"] = int(data["bonus"])
    elif "add_bonus" in data:
        row["bonus"] += int(data["add_bonus"])
    if "balance" in data:
        row["balance"] = int(data["balance"])
    elif "add_balance" in data:
        row["balance"] += int(data["add_balance"])
    store.put_doc("card_code", appid, data["code"], row)
    if data.get("record_bonus") or data.get("record_balance"):
        store.record_message(
            appid,
            row["openid"],
            {
                "direction": "out",
                "via": "card",
                "msgtype": "card_update",
                "card_id": row["card_id"],
                "bonus": row["bonus"],
                "balance": row["balance"],
                "record_bonus": data.get("record_bonus"),
                "record_balance": data.get("record_balance"),
            },
        )
    return ok(result_bonus=row["bonus"], result_balance=row["balance"], openid=row["openid"])


@bp.post("/card/code/get")
def card_code_get():
    appid = current_appid()
    data = body_json()
    row = _card_code(appid, data.get("code"), data.get("card_id"))
    if row is None:
        return err(40056)
    return ok(
        card={"card_id": row["card_id"], "begin_time": 0, "end_time": 0, "code": data["code"]},
        openid=row["openid"],
        can_consume=True,
        user_card_status="NORMAL",
    )


@bp.post("/card/code/decrypt")
def card_code_decrypt():
    row = store.get_doc("card_encrypt", "all", body_json().get("encrypt_code", ""))
    if row is None:
        return err(40056)
    return ok(code=row["code"])
