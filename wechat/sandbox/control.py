"""HTTP controls of the sandbox for browsers and benchmarks: faults, counters, codes (WeChat
Pay's controls are in ``wechat.sandbox.pay``).

These stand for what a tester does by hand; they are not part of WeChat's API.
"""

from __future__ import annotations

from flask import jsonify, request

from wechat.sandbox import api_mp, store
from wechat.sandbox.api import body_json, bp


@bp.post("/_sandbox/faults")
def add_fault():
    data = body_json()
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith("/"):
        return jsonify(error="endpoint must be a path like /cgi-bin/token"), 400
    try:
        times = int(data.get("times", 1))
        delay = float(data.get("delay", 0))
        errcode = None if data.get("errcode") is None else int(data["errcode"])
    except (TypeError, ValueError):
        return jsonify(error="times, delay and errcode must be numbers"), 400
    if not 1 <= times <= 1000 or not 0 <= delay <= 120:
        return jsonify(error="times 1-1000, delay 0-120 s"), 400
    store.inject_fault(
        endpoint, errcode=errcode, delay=delay, drop=bool(data.get("drop")), times=times
    )
    return jsonify(ok=True)


@bp.delete("/_sandbox/faults")
def clear_faults():
    store.clear_faults()
    return jsonify(ok=True)


@bp.get("/_sandbox/calls")
def call_count():
    endpoint = request.args.get("endpoint", "")
    return jsonify(endpoint=endpoint, calls=store.calls(endpoint))


@bp.post("/_sandbox/jscode")
def js_code():
    data = body_json()
    try:
        code = api_mp.issue_js_code(str(data.get("appid", "")), str(data.get("uid", "")))
    except LookupError as exc:
        return jsonify(error=str(exc)), 404
    return jsonify(code=code)


@bp.post("/_sandbox/phonecode")
def phone_code():
    data = body_json()
    try:
        code = api_mp.issue_phone_code(
            str(data.get("appid", "")), str(data.get("uid", "")), data.get("phone")
        )
    except LookupError as exc:
        return jsonify(error=str(exc)), 404
    return jsonify(code=code)
