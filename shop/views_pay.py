"""WeChat Pay's notify: ``POST /pay/notify/<brand_slug>`` (no CSRF: WeChat signs it).

The gateway verifies and decrypts it (``pay_parse_notify``); a payment notify goes to
``payments.mark_paid``, a refund notify to ``shop.refunds.on_refund_notify``. Every notify is
logged in ``PayNotifyLog`` with what was done. The answer is WeChat's
(``pay_notify_answer``): success for an applied or duplicate payment, a 4xx for a refused
one (nothing changed), never a 500: an unexpected failure answers 503 so WeChat retries.
"""

from __future__ import annotations

import logging

from flask import Blueprint, request

from core.db import db
from core.tenancy import use_brand
from org.models import Brand
from shop.models import PayNotifyLog
from shop.payments import PaymentRefused, mark_paid

log = logging.getLogger(__name__)
bp = Blueprint("shop_pay", __name__)
MAX_BODY = 64 * 1024
SUCCESS = "SUCCESS"


def _gateway():
    from wechat import gateway

    return gateway


def _answer(ok: bool, message: str = "", status: int | None = None):
    body, code = _gateway().pay_notify_answer(ok, message)
    if not ok and status is not None:
        code = status
    return body, code


def _log(kind: str, out_trade_no: str | None, reference: str | None, outcome: str) -> None:
    db.session.add(
        PayNotifyLog(
            kind=(kind or "unknown")[:12],
            out_trade_no=(out_trade_no or None) and out_trade_no[:32],
            reference=(reference or None) and reference[:64],
            outcome=outcome[:24],
        )
    )


def _refund_handler():
    try:
        from shop import refunds
    except ImportError:
        return None
    return getattr(refunds, "on_refund_notify", None)


def handle(brand: Brand, headers: dict, body: bytes):
    """Parse, apply and log one notify in the current brand; answers (body, status)."""
    gateway = _gateway()
    try:
        notice = gateway.pay_parse_notify(brand.id, headers, body)
    except gateway.PayNotifyError as exc:
        reason = str(getattr(exc, "reason", "") or exc)
        _log("unknown", None, None, f"refused:{reason}")
        db.session.commit()
        return _answer(False, reason, 400)
    kind = getattr(notice, "kind", "transaction")
    if kind == "refund":
        handler = _refund_handler()
        if handler is None:
            _log("refund", notice.out_trade_no, notice.refund_id, "refused:no_handler")
            db.session.commit()
            return _answer(False, "refunds not handled", 404)
        outcome = handler(notice)
        db.session.commit()
        if outcome in ("applied", "duplicate"):
            return _answer(True)
        return _answer(False, outcome.removeprefix("refused:"), 400)
    if notice.trade_state != SUCCESS:
        _log(
            "transaction",
            notice.out_trade_no,
            notice.transaction_id,
            f"ignored:{notice.trade_state}",
        )
        db.session.commit()
        return _answer(True)
    try:
        with db.session.begin_nested():
            outcome = mark_paid(
                out_trade_no=notice.out_trade_no,
                transaction_id=notice.transaction_id,
                amount_fen=notice.amount_total,
                via="notify",
                paid_at=getattr(notice, "success_time", None),
            )
    except PaymentRefused as exc:
        _log("transaction", notice.out_trade_no, notice.transaction_id, f"refused:{exc.reason}")
        db.session.commit()
        return _answer(False, exc.reason, 400)
    _log("transaction", notice.out_trade_no, notice.transaction_id, outcome)
    db.session.commit()
    return _answer(True)


@bp.post("/pay/notify/<brand_slug>")
def notify(brand_slug: str):
    body = request.get_data(cache=False)[: MAX_BODY + 1]
    try:
        brand = Brand.by_slug(brand_slug)
        if brand is None or len(body) > MAX_BODY:
            return _answer(
                False,
                "unknown brand" if brand is None else "too large",
                404 if brand is None else 413,
            )
        with use_brand(brand.id):
            return handle(brand, dict(request.headers), body)
    except Exception:
        db.session.rollback()
        log.exception("pay notify for %s failed", brand_slug)
        try:
            return _answer(False, "retry", 503)
        except Exception:
            return {"code": "FAIL", "message": "retry"}, 503
