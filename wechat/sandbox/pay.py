"""Fake WeChat Pay APIv3 (api.mch.weixin.qq.com), mounted at /sandbox/wechat/pay.

Each request must carry ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=...,
nonce_str=..., signature=..., timestamp=..., serial_no=...`` signed with the merchant's
private key over ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``; it is verified against
the merchant's public key registered in the sandbox (``paystore.register_merchant``).
Every answer is signed with the sandbox's WeChat Pay key (Wechatpay-* headers). Endpoints:
JSAPI prepay, query by out-trade-no, close, refunds and refund query, trade bill and its
download. The phone pays through /_sandbox/pay/v3/jsapi (the page's pay parameters,
paySign checked; ``static/sandbox/wxpay.js`` posts there when WeixinJSBridge is absent);
the control endpoints under /_sandbox/pay/v3/ set delivery modes and inject errors.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import re
import secrets
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Response, jsonify, request

from wechat.sandbox import paynotify, paystore, store
from wechat.sandbox.api import body_json, bp

PREFIX = "/pay"
AUTH_RE = re.compile(r'(\w+)="([^"]*)"')
MAX_AGE = 300
OUT_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")


def _answer(status: int, data: dict | None = None) -> Response:
    body = "" if data is None else json.dumps(data, ensure_ascii=False)
    res = Response(body, status=status)
    if data is not None:
        res.headers["Content-Type"] = "application/json; charset=utf-8"
    res.headers.update(paystore.signed_headers(body))
    return res


def _fail(status: int, code: str, message: str) -> Response:
    return _answer(status, {"code": code, "message": message})


def fault_response(errcode: str | int) -> Response:
    """An injected fault (store.inject_fault on a /pay/ path), as WeChat Pay reports it."""
    code = "SYSTEM_ERROR" if str(errcode) in ("-1", "SYSTEM_ERROR", "SYSTEMERROR") else str(errcode)
    status = 500 if code == "SYSTEM_ERROR" else 429 if code == "FREQUENCY_LIMITED" else 400
    return _fail(status, code, "sandbox fault")


def _authenticate() -> tuple[dict | None, Response | None]:
    """The merchant whose signature this request carries, or the answer refusing it."""
    header = request.headers.get("Authorization", "")
    scheme, _, rest = header.partition(" ")
    if scheme != "WECHATPAY2-SHA256-RSA2048":
        return None, _fail(401, "SIGN_ERROR", "Authorization scheme missing or wrong")
    fields = dict(AUTH_RE.findall(rest))
    merchant = paystore.get_merchant(fields.get("mchid"))
    if merchant is None:
        return None, _fail(400, "MCH_NOT_EXISTS", "merchant does not exist")
    if fields.get("serial_no", "").upper() != merchant["cert_serial_no"]:
        return None, _fail(401, "SIGN_ERROR", "certificate serial_no does not match")
    ts = fields.get("timestamp", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > MAX_AGE:
        return None, _fail(401, "SIGN_ERROR", "timestamp expired")
    path = request.path[len(bp.url_prefix + PREFIX) :]
    if request.query_string:
        path += "?" + request.query_string.decode()
    message = "\n".join(
        [request.method, path, ts, fields.get("nonce_str", ""), request.get_data(as_text=True)]
    )
    try:
        public = serialization.load_pem_public_key(merchant["public_key"].encode())
        public.verify(
            base64.b64decode(fields.get("signature", ""), validate=True),
            (message + "\n").encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except Exception:  # bad base64, a wrong key: the signature does not verify
        return None, _fail(401, "SIGN_ERROR", "signature does not verify")
    if paystore.take_system_error(merchant["mch_id"]):
        return None, _fail(500, "SYSTEM_ERROR", "system error (injected)")
    return merchant, None


def _order_view(order: dict) -> dict:
    view = {
        "appid": order["appid"],
        "mchid": order["mchid"],
        "out_trade_no": order["out_trade_no"],
        "trade_type": order.get("trade_type", "JSAPI"),
        "trade_state": order["trade_state"],
        "trade_state_desc": {
            "NOTPAY": "订单未支付",
            "SUCCESS": "支付成功",
            "CLOSED": "已关闭",
            "REFUND": "转入退款",
        }.get(order["trade_state"], ""),
        "attach": order.get("attach") or "",
        "payer": {"openid": order["openid"]},
        "amount": {"total": order["total"], "currency": "CNY"},
    }
    if order.get("transaction_id"):
        view.update(
            transaction_id=order["transaction_id"],
            bank_type="OTHERS",
            success_time=order["success_time"],
        )
        view["amount"].update(payer_total=order["total"], payer_currency="CNY")
    return view


def _refund_view(refund: dict) -> dict:
    view = {
        "refund_id": refund["refund_id"],
        "out_refund_no": refund["out_refund_no"],
        "transaction_id": refund["transaction_id"],
        "out_trade_no": refund["out_trade_no"],
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": refund["create_time"],
        "status": refund["status"],
        "funds_account": "AVAILABLE",
        "amount": {
            "total": refund["total"],
            "refund": refund["refund"],
            "payer_total": refund["total"],
            "payer_refund": refund["refund"],
            "settlement_refund": refund["refund"],
            "settlement_total": refund["total"],
            "discount_refund": 0,
            "currency": "CNY",
        },
    }
    if refund.get("success_time"):
        view["success_time"] = refund["success_time"]
    return view


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@bp.post(PREFIX + "/v3/pay/transactions/jsapi")
def v3_jsapi():
    merchant, refusal = _authenticate()
    if refusal:
        return refusal
    data = body_json()
    amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
    payer = data.get("payer") if isinstance(data.get("payer"), dict) else {}
    for name in ("appid", "mchid", "description", "out_trade_no", "notify_url"):
        if not isinstance(data.get(name), str) or not data[name]:
            return _fail(400, "PARAM_ERROR", f"{name} is missing")
    if not _positive_int(amount.get("total")):
        return _fail(400, "PARAM_ERROR", "amount.total must be a positive integer")
    if not payer.get("openid"):
        return _fail(400, "PARAM_ERROR", "payer.openid is missing")
    if not OUT_NO_RE.match(data["out_trade_no"]):
        return _fail(400, "PARAM_ERROR", "out_trade_no: 6-32 characters")
    if data["mchid"] != merchant["mch_id"]:
        return _fail(400, "INVALID_REQUEST", "mchid is not the signing merchant")
    if data["appid"] not in merchant["appids"]:
        return _fail(400, "APPID_MCHID_NOT_MATCH", "appid and mchid do not match")
    existing = paystore.get_order(merchant["mch_id"], data["out_trade_no"])
    if existing:
        if existing["trade_state"] in ("SUCCESS", "REFUND"):
            return _fail(400, "ORDERPAID", "该订单已支付")
        if existing["trade_state"] == "CLOSED":
            return _fail(400, "ORDER_CLOSED", "订单已关闭")
        if existing["total"] != amount["total"] or existing["openid"] != payer["openid"]:
            return _fail(403, "OUT_TRADE_NO_USED", "商户订单号重复")
        return _answer(200, {"prepay_id": existing["prepay_id"]})
    prepay_id = "wx" + dt.datetime.now().strftime("%d%H%M%S") + secrets.token_hex(12)
    order = {
        "appid": data["appid"],
        "mchid": merchant["mch_id"],
        "out_trade_no": data["out_trade_no"],
        "description": data["description"],
        "total": amount["total"],
        "openid": payer["openid"],
        "notify_url": data["notify_url"],
        "attach": data.get("attach") or "",
        "time_expire": data.get("time_expire"),
        "trade_type": "JSAPI",
        "prepay_id": prepay_id,
        "trade_state": "NOTPAY",
        "transaction_id": None,
        "success_time": None,
    }
    paystore.put_order(order)
    paystore.remember_prepay(prepay_id, merchant["mch_id"], data["out_trade_no"])
    return _answer(200, {"prepay_id": prepay_id})


@bp.get(PREFIX + "/v3/pay/transactions/out-trade-no/<out_trade_no>")
def v3_query(out_trade_no: str):
    merchant, refusal = _authenticate()
    if refusal:
        return refusal
    if request.args.get("mchid") != merchant["mch_id"]:
        return _fail(400, "PARAM_ERROR", "mchid must be the signing merchant")
    order = paystore.get_order(merchant["mch_id"], out_trade_no)
    if order is None:
        return _fail(404, "ORDER_NOT_EXIST", "订单不存在")
    return _answer(200, _order_view(order))


@bp.post(PREFIX + "/v3/pay/transactions/out-trade-no/<out_trade_no>/close")
def v3_close(out_trade_no: str):
    merchant, refusal = _authenticate()
    if refusal:
        return refusal
    if body_json().get("mchid") != merchant["mch_id"]:
        return _fail(400, "PARAM_ERROR", "mchid must be the signing merchant")
    order = paystore.get_order(merchant["mch_id"], out_trade_no)
    if order is None:
        return _fail(404, "ORDER_NOT_EXIST", "订单不存在")
    if order["trade_state"] in ("SUCCESS", "REFUND"):
        return _fail(400, "ORDERPAID", "订单已支付")
    if order["trade_state"] != "CLOSED":
        order["trade_state"] = "CLOSED"
        paystore.put_order(order)
    return _answer(204)


@bp.post(PREFIX + "/v3/refund/domestic/refunds")
def v3_refund():
    merchant, refusal = _authenticate()
    if refusal:
        return refusal
    data = body_json()
    amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
    out_refund_no = data.get("out_refund_no")
    if not isinstance(out_refund_no, str) or not 1 <= len(out_refund_no) <= 64:
        return _fail(400, "PARAM_ERROR", "out_refund_no is missing")
    if not (_positive_int(amount.get("refund")) and _positive_int(amount.get("total"))):
        return _fail(400, "PARAM_ERROR", "amount.refund and amount.total are positive integers")
    mch_id = merchant["mch_id"]
    order = paystore.get_order(mch_id, str(data.get("out_trade_no") or ""))
    if order is None:
        return _fail(404, "RESOURCE_NOT_EXISTS", "订单不存在")
    if order["trade_state"] not in ("SUCCESS", "REFUND"):
        return _fail(400, "INVALID_REQUEST", "订单未支付")
    if amount["total"] != order["total"]:
        return _fail(400, "INVALID_REQUEST", "订单金额与原订单不一致")
    refund = {
        "mchid": mch_id,
        "out_trade_no": order["out_trade_no"],
        "transaction_id": order["transaction_id"],
        "out_refund_no": out_refund_no,
        "refund_id": "5030" + str(store.next_id("pay3_refund")).rjust(25, "0"),
        "refund": amount["refund"],
        "total": order["total"],
        "reason": data.get("reason") or "",
        "notify_url": data.get("notify_url") or "",
        "status": "PROCESSING",
        "create_time": paystore.now_rfc3339(),
        "success_time": None,
    }
    # One refund decision at a time per order, as WeChat Pay serialises them.
    with paystore.order_lock(mch_id, order["out_trade_no"]):
        existing = paystore.get_refund(mch_id, out_refund_no)
        if existing is None and paystore.funds_short(mch_id):
            return _fail(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")
        if existing is None:
            if not paystore.reserve_refund(
                mch_id, order["out_trade_no"], amount["refund"], order["total"]
            ):
                return _fail(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
            paystore.put_refund(refund)
    if existing is not None:
        same = (existing["out_trade_no"], existing["refund"]) == (
            order["out_trade_no"],
            amount["refund"],
        )
        if not same:
            return _fail(400, "INVALID_REQUEST", "退款单号已用于其他退款")
        return _answer(200, _refund_view(existing))
    paynotify.complete_refund_later(mch_id, out_refund_no, delay=0.2)
    return _answer(200, _refund_view(refund))


@bp.get(PREFIX + "/v3/refund/domestic/refunds/<out_refund_no>")
def v3_refund_query(out_refund_no: str):
    merchant, refusal = _authenticate()
    if refusal:
        return refusal
    refund = paystore.get_refund(merchant["mch_id"], out_refund_no)
    if refund is None:
        return _fail(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return _answer(200, _refund_view(refund))


@bp.get(PREFIX + "/v3/bill/tradebill")
def v3_tradebill():
    merchant, refusal = _authenticate()
    if refusal:
        return refusal
    try:
        day = dt.date.fromisoformat(request.args.get("bill_date", ""))
    except ValueError:
        return _fail(400, "PARAM_ERROR", "bill_date must be YYYY-MM-DD")
    if request.args.get("bill_type", "ALL") != "ALL":
        return _fail(400, "PARAM_ERROR", "the sandbox has bill_type ALL only")
    raw = paystore.trade_bill(merchant["mch_id"], day).encode()
    digest = paystore.sha1_hex(raw)
    if request.args.get("tar_type") == "GZIP":
        raw = gzip.compress(raw)
    token = paystore.keep_bill(raw)
    base = request.host_url.rstrip("/") + bp.url_prefix + PREFIX
    return _answer(
        200,
        {
            "hash_type": "SHA1",
            "hash_value": digest,
            "download_url": f"{base}/v3/billdownload/file?token={token}",
        },
    )


@bp.get(PREFIX + "/v3/billdownload/file")
def v3_billdownload():
    _merchant, refusal = _authenticate()
    if refusal:
        return refusal
    raw = paystore.take_bill(request.args.get("token", ""))
    if raw is None:
        return _fail(400, "INVALID_REQUEST", "the download URL has expired")
    return Response(raw, mimetype="application/octet-stream")


# --- the phone and the controls (not WeChat's API) --------------------------------------------


def _refused(reason: str, status: int = 400):
    return jsonify(err_msg="get_brand_wcpay_request:fail", reason=reason), status


@bp.get("/_sandbox/pay/v3/prepay/<prepay_id>")
def prepay_info(prepay_id: str):
    """What the phone's pay sheet shows: the order's description and amount."""
    order = paystore.order_by_prepay(prepay_id)
    if order is None:
        return jsonify(error="unknown prepay_id"), 404
    return jsonify(
        description=order["description"], total=order["total"], state=order["trade_state"]
    )


@bp.post("/_sandbox/pay/v3/jsapi")
def phone_pays():
    """The consumer confirms the payment sheet opened with the page's pay parameters."""
    params = body_json()
    package = str(params.get("package") or "")
    if not package.startswith("prepay_id="):
        return _refused("package must be prepay_id=...")
    order = paystore.order_by_prepay(package[len("prepay_id=") :])
    if order is None:
        return _refused("unknown prepay_id", 404)
    why = paynotify.verify_pay_sign(order, params)
    if why:
        return _refused(why)
    try:
        result = paynotify.pay_order(order["mchid"], order["out_trade_no"])
    except paynotify.PayRefused as exc:
        return _refused(exc.reason)
    return jsonify(
        err_msg="get_brand_wcpay_request:ok",
        out_trade_no=order["out_trade_no"],
        transaction_id=result["order"]["transaction_id"],
        notifies=result["notifies"],
    )


@bp.get("/_sandbox/pay/v3/platform-key")
def platform_key():
    """The sandbox's WeChat Pay public key and its id, for a brand's merchant settings."""
    return jsonify(paystore.platform_public_key())


@bp.post("/_sandbox/pay/v3/pay")
def control_pay():
    """Pay an order directly (benchmarks, tests): ``{mch_id, out_trade_no}``."""
    data = body_json()
    try:
        result = paynotify.pay_order(str(data.get("mch_id", "")), str(data.get("out_trade_no", "")))
    except LookupError as exc:
        return jsonify(error=str(exc)), 404
    except paynotify.PayRefused as exc:
        return jsonify(error=exc.reason), 409
    return jsonify(transaction_id=result["order"]["transaction_id"], notifies=result["notifies"])


@bp.post("/_sandbox/pay/v3/control")
def control():
    """Delivery mode (``mode``, ``delay``, ``amount``, for the merchant or ``out_trade_no``),
    ``system_errors`` (the next N calls answer SYSTEM_ERROR), ``hold_refunds``, ``reset``."""
    data = body_json()
    mch_id = str(data.get("mch_id") or "")
    if paystore.get_merchant(mch_id) is None:
        return jsonify(error="unknown mch_id"), 404
    try:
        if data.get("reset"):
            paystore.clear_controls(mch_id)
            paystore.hold_refunds(mch_id, False)
        if data.get("mode"):
            amount = data.get("amount")
            if amount is not None and not _positive_int(amount):
                raise ValueError("amount is a positive integer of fen")
            paystore.set_delivery(
                mch_id,
                str(data["mode"]),
                out_trade_no=data.get("out_trade_no") or None,
                delay=float(data.get("delay") or 0),
                amount=amount,
            )
        if data.get("system_errors"):
            times = int(data["system_errors"])
            if not 1 <= times <= 1000:
                raise ValueError("system_errors: 1-1000")
            paystore.inject_system_error(mch_id, times)
        if "hold_refunds" in data:
            paystore.hold_refunds(mch_id, bool(data["hold_refunds"]))
    except (TypeError, ValueError) as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(ok=True)


@bp.post("/_sandbox/pay/v3/redeliver")
def control_redeliver():
    """Post a paid order's notify again: ``{mch_id, out_trade_no, times}``; or ``held``:
    post what an out-of-order delivery holds back."""
    data = body_json()
    mch_id, out_trade_no = str(data.get("mch_id", "")), str(data.get("out_trade_no", ""))
    try:
        times = int(data.get("times") or 1)
        if not 1 <= times <= 20:
            raise ValueError
    except (TypeError, ValueError):
        return jsonify(error="times: 1-20"), 400
    if data.get("held"):
        return jsonify(notifies=paynotify.release_held(mch_id, out_trade_no))
    try:
        return jsonify(notifies=paynotify.redeliver(mch_id, out_trade_no, times=times))
    except LookupError as exc:
        return jsonify(error=str(exc)), 404


@bp.post("/_sandbox/pay/v3/refunds/<out_refund_no>/complete")
def control_complete_refund(out_refund_no: str):
    """Finish a held refund: ``{mch_id, status}`` (SUCCESS, ABNORMAL or CLOSED)."""
    data = body_json()
    status = str(data.get("status") or "SUCCESS")
    if status not in ("SUCCESS", "ABNORMAL", "CLOSED"):
        return jsonify(error="status: SUCCESS, ABNORMAL or CLOSED"), 400
    try:
        refund = paynotify.complete_refund(str(data.get("mch_id", "")), out_refund_no, status)
    except LookupError as exc:
        return jsonify(error=str(exc)), 404
    return jsonify(status=refund["status"])


# --- merchant transfers (商家转账): the bill waits for the receiver's confirmation ---------------

TRANSFER_SCENES = {"1005": ("岗位类型", "报酬说明")}  # 佣金报酬 and its required report lines
OUT_BILL_NO_RE = re.compile(r"^[0-9A-Za-z]{5,32}$")


def _transfer_view(bill: dict) -> dict:
    view = {
        "mch_id": bill["mchid"],
        "out_bill_no": bill["out_bill_no"],
        "transfer_bill_no": bill["transfer_bill_no"],
        "appid": bill["appid"],
        "state": bill["state"],
        "transfer_amount": bill["transfer_amount"],
        "transfer_remark": bill["transfer_remark"],
        "openid": bill["openid"],
        "create_time": bill["create_time"],
        "update_time": bill.get("update_time") or bill["create_time"],
    }
    if bill["state"] == "WAIT_USER_CONFIRM":
        view["package_info"] = bill["package_info"]
    if bill.get("fail_reason"):
        view["fail_reason"] = bill["fail_reason"]
    return view


@bp.post(PREFIX + "/v3/fund-app/mch-transfer/transfer-bills")
def v3_transfer_bills():
    merchant, refusal = _authenticate()
    if refusal:
        return refusal
    data = body_json()
    out_bill_no = data.get("out_bill_no")
    if not isinstance(out_bill_no, str) or not OUT_BILL_NO_RE.match(out_bill_no):
        return _fail(400, "PARAM_ERROR", "商户单号格式错误")
    if not _positive_int(data.get("transfer_amount")):
        return _fail(400, "PARAM_ERROR", "转账金额错误")
    for field in ("appid", "openid", "transfer_remark", "transfer_scene_id"):
        if not isinstance(data.get(field), str) or not data.get(field):
            return _fail(400, "PARAM_ERROR", f"{field} 不能为空")
    required = TRANSFER_SCENES.get(data["transfer_scene_id"])
    if required is None:
        return _fail(400, "INVALID_REQUEST", "转账场景未开通")
    infos = data.get("transfer_scene_report_infos")
    types = {
        i.get("info_type")
        for i in (infos if isinstance(infos, list) else [])
        if isinstance(i, dict) and i.get("info_content")
    }
    if not set(required) <= types:
        return _fail(400, "PARAM_ERROR", "未传入完整且对应的转账场景报备信息,请根据接口文档检查")
    if data.get("user_recv_perception") not in (None, "劳务报酬", "报酬"):
        return _fail(400, "INVALID_REQUEST", "暂不支持展示当前传入的用户收款感知")
    mch_id = merchant["mch_id"]
    with paystore.order_lock(mch_id, "bill:" + out_bill_no):
        bill = store.get_doc("pay3_transfer", mch_id, out_bill_no)
        if bill is not None:
            if (bill["openid"], bill["transfer_amount"]) != (
                data["openid"],
                data["transfer_amount"],
            ):
                return _fail(400, "INVALID_REQUEST", "商户单号已用于其他转账")
            return _answer(200, _transfer_view(bill))
        bill = {
            "mchid": mch_id,
            "appid": data["appid"],
            "out_bill_no": out_bill_no,
            "transfer_bill_no": "1330" + str(store.next_id("pay3_transfer")).rjust(36, "0"),
            "openid": data["openid"],
            "transfer_amount": data["transfer_amount"],
            "transfer_remark": data["transfer_remark"][:32],
            "notify_url": data.get("notify_url") or "",
            "state": "WAIT_USER_CONFIRM",
            "package_info": "ABBQO+oYAAABAAAAAAB" + secrets.token_hex(16),
            "create_time": paystore.now_rfc3339(),
        }
        store.put_doc("pay3_transfer", mch_id, out_bill_no, bill)
        store.put_doc(
            "pay3_transfer_pkg",
            "all",
            bill["package_info"],
            {"mch_id": mch_id, "out_bill_no": out_bill_no},
        )
    return _answer(200, _transfer_view(bill))


@bp.get(PREFIX + "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/<out_bill_no>")
def v3_transfer_query(out_bill_no: str):
    merchant, refusal = _authenticate()
    if refusal:
        return refusal
    bill = store.get_doc("pay3_transfer", merchant["mch_id"], out_bill_no)
    if bill is None:
        return _fail(404, "NOT_FOUND", "记录不存在")
    return _answer(200, _transfer_view(bill))


def finish_transfer(mch_id: str, out_bill_no: str, state: str, reason: str = "") -> dict | None:
    """The receiver confirmed (SUCCESS) or the bill failed (FAIL); None if unknown."""
    with paystore.order_lock(mch_id, "bill:" + out_bill_no):
        bill = store.get_doc("pay3_transfer", mch_id, out_bill_no)
        if bill is None:
            return None
        if bill["state"] == "WAIT_USER_CONFIRM":
            bill.update(state=state, update_time=paystore.now_rfc3339())
            if reason:
                bill["fail_reason"] = reason
            store.put_doc("pay3_transfer", mch_id, out_bill_no, bill)
    return bill


@bp.post("/_sandbox/pay/v3/transfer/confirm")
def phone_confirms_transfer():
    """The receiver confirms a transfer in WeChat (``requestMerchantTransfer``): the page's
    ``mchId``, ``appId`` and ``package``."""
    params = body_json()
    ref = store.get_doc("pay3_transfer_pkg", "all", str(params.get("package") or ""))
    if ref is None or ref["mch_id"] != str(params.get("mchId") or ""):
        return jsonify(err_msg="requestMerchantTransfer:fail", reason="unknown package"), 404
    bill = finish_transfer(ref["mch_id"], ref["out_bill_no"], "SUCCESS")
    if bill is None or bill["state"] != "SUCCESS":
        return jsonify(err_msg="requestMerchantTransfer:fail", reason="bill is not waiting"), 409
    return jsonify(err_msg="requestMerchantTransfer:ok", out_bill_no=bill["out_bill_no"])


@bp.post("/_sandbox/pay/v3/transfer/<out_bill_no>/fail")
def control_fail_transfer(out_bill_no: str):
    """Fail a waiting transfer (tests): ``{mch_id, reason}``."""
    data = body_json()
    bill = finish_transfer(
        str(data.get("mch_id", "")),
        out_bill_no,
        "FAIL",
        str(data.get("reason") or "PAYEE_ACCOUNT_ABNORMAL"),
    )
    if bill is None:
        return jsonify(error="unknown bill"), 404
    return jsonify(state=bill["state"])


@bp.after_request
def _phone_cors(response: Response) -> Response:
    # The pay shim on a member page may be served from another origin than the sandbox.
    if "/_sandbox/pay/v3/" in request.path:
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response
