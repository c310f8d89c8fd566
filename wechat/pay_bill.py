"""WeChat Pay APIv3's trade bill: applied for, downloaded, checked and parsed."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from decimal import Decimal, InvalidOperation

from wechat.client import RetryableError
from wechat.pay import REAL_PAY_HOST, PayError, pay_api_base, pay_client, send_pay_call

# --- the trade bill ----------------------------------------------------------------------------


def _fen(value: str) -> int:
    try:
        return int((Decimal(value or "0") * 100).to_integral_exact())
    except (InvalidOperation, ArithmeticError) as exc:
        raise PayError("BAD_BILL", f"not an amount: {value!r}") from exc


def parse_trade_bill(text: str) -> list[dict]:
    """Rows of a trade bill (bill_type ALL) in WeChat's CSV: a header line, one line per
    payment or refund with every field prefixed by a backtick, then two summary lines
    (总交易单数 ...). Amounts in yuan become fen."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        return []
    header = [h.strip().lstrip("\ufeff") for h in lines[0].split(",")]
    col = {name: i for i, name in enumerate(header)}
    needed = ("微信订单号", "商户订单号", "交易状态", "退款金额", "商户退款单号")
    if any(name not in col for name in needed):
        raise PayError("BAD_BILL", "the bill's header is not WeChat's")
    amount_col = col.get("订单金额", col.get("应结订单金额"))
    rows = []
    for line in lines[1:]:
        if line.startswith("总交易单数"):
            break
        fields = [f.strip().removeprefix("`") for f in line.split(",")]
        if len(fields) < len(header):
            raise PayError("BAD_BILL", "a bill line has too few fields")

        def get(name: str, fields: list[str] = fields) -> str:
            return fields[col[name]] if name in col else ""

        rows.append(
            {
                "trade_time": get("交易时间"),
                "appid": get("公众账号ID"),
                "out_trade_no": get("商户订单号"),
                "transaction_id": get("微信订单号"),
                "trade_state": get("交易状态"),
                "amount_fen": _fen(fields[amount_col]) if amount_col is not None else 0,
                "refund_fen": _fen(get("退款金额")),
                "out_refund_no": get("商户退款单号"),
                "refund_id": get("微信退款单号"),
                "refund_status": get("退款状态"),
            }
        )
    return rows


def pay_trade_bill(brand_id: int, bill_date: dt.date) -> list[dict]:
    """The merchant's trade bill of one day (China time): applied for, downloaded, checked
    against its SHA1 and parsed (``parse_trade_bill``). No bill for the day: []."""
    client = pay_client(brand_id)
    try:
        data = send_pay_call(
            brand_id,
            "pay.tradebill",
            lambda: client.trade_bill(bill_date.isoformat(), bill_type="ALL", tar_type="GZIP"),
        )
    except PayError as exc:
        if exc.code in ("NO_STATEMENT_EXIST", "STATEMENT_CREATING"):
            if exc.code == "STATEMENT_CREATING":
                raise RetryableError(None, "the bill is being generated") from exc
            return []
        raise
    url = data.get("download_url") or ""
    base = pay_api_base()
    if not url.startswith(base + "/") and not url.startswith(REAL_PAY_HOST + "/"):
        raise PayError("BAD_ANSWER", "the download URL is not WeChat Pay's")
    path = url[len(base) :] if url.startswith(base) else url[len(REAL_PAY_HOST) :]
    raw = send_pay_call(
        brand_id, "pay.billdownload", lambda: client._core.request(path, skip_verify=True)
    )
    if isinstance(raw, dict):
        raise PayError("BAD_BILL", "the bill download answered JSON")
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if str(data.get("hash_type", "SHA1")).upper() == "SHA1" and data.get("hash_value"):
        if hashlib.sha1(raw).hexdigest() != str(data["hash_value"]).lower():  # noqa: S324
            raise PayError("BAD_BILL", "the bill's SHA1 does not match")
    return parse_trade_bill(raw.decode("utf-8-sig"))
