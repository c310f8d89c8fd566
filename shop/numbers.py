"""Order numbers and the references derived from them.

``order_no`` is 18 digits: the brand-local date (YYYYMMDD) and 10 random digits, unique per
brand (the table's constraint; ``new_order_no`` draws again on the rare collision).
``out_trade_no`` = order_no + "P" + attempt, ``out_refund_no`` = order_no + "R" + n, an
after-sale request = order_no + "A" + n.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

from sqlalchemy import select

from core.db import db, utcnow
from core.tenancy import require_brand_id
from wechat import brand_cache

RANDOM_DIGITS = 10
ORDER_NO_RE = re.compile(r"^\d{16,20}$")
TRIES = 8


def local_day(when: dt.datetime | None = None) -> dt.date:
    """The current brand's calendar date of a UTC time (now by default)."""
    return (when or utcnow()).astimezone(brand_cache.tz_of(require_brand_id())).date()


def candidate(day: dt.date) -> str:
    return day.strftime("%Y%m%d") + "".join(
        secrets.choice("0123456789") for _ in range(RANDOM_DIGITS)
    )


def new_order_no(*, now: dt.datetime | None = None) -> str:
    """A fresh order number of the current brand (not yet used by any of its orders)."""
    from shop.models import Order

    day = local_day(now)
    for _ in range(TRIES):
        no = candidate(day)
        taken = db.session.execute(select(Order.id).where(Order.order_no == no)).first()
        if taken is None:
            return no
    raise RuntimeError("no free order number after several draws")


def well_formed(order_no: str | None) -> bool:
    return bool(order_no) and bool(ORDER_NO_RE.match(order_no))


def out_trade_no(order_no: str, attempt: int) -> str:
    return f"{order_no}P{attempt}"


def out_refund_no(order_no: str, n: int) -> str:
    return f"{order_no}R{n}"


def request_no(order_no: str, n: int) -> str:
    return f"{order_no}A{n}"


def order_no_of(reference: str) -> str:
    """The order number inside an out_trade_no / out_refund_no / request number."""
    return re.split(r"[PRA]", reference or "", maxsplit=1)[0]
