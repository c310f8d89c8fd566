"""Factories for test data, made through the packages' services, and the helpers that sign
people in: ``login`` (staff, the console's form), ``sign_in_member`` (the member center's
session) and ``csrf`` (a form's token).

Everything but ``keyword`` commits, so a test's requests see the data.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

from core.db import db
from core.tenancy import use_brand
from coupons import services as coupons
from coupons.models import CouponTemplate, MallItem
from members.activation import activate_member
from members.identities import create_member_row
from members.models import Member
from org import services as org
from org.models import Brand, Staff, Store
from wechat import chatbot
from wechat.models import KeywordReply

PASSWORD = "correct-horse-9"
CONSENT = "2026-01"
_seq = itertools.count(1)


def brand(slug: str | None = None, **kw) -> Brand:
    n = next(_seq)
    b = org.create_brand(slug=slug or f"brand{n}", name=kw.pop("name", f"Brand {n}"), **kw)
    db.session.commit()
    return b


def store(b: Brand, code: str | None = None, **kw) -> Store:
    n = next(_seq)
    with use_brand(b.id):
        s = org.create_store(
            code=code or f"S{n:03d}",
            name=kw.get("name", f"Store {n}"),
            city=kw.get("city", "上海"),
            region=kw.get("region", "华东"),
        )
        db.session.commit()
    return s


def staff(
    b: Brand,
    role: str = "brand_admin",
    store: Store | None = None,
    phone: str | None = None,
    password: str = PASSWORD,
) -> Staff:
    n = next(_seq)
    with use_brand(b.id):
        s = org.create_staff(
            name=f"{role} {n}",
            phone=phone or f"139{n:08d}",
            role=role,
            store_id=store.id if store else None,
            password=password,
        )
        db.session.commit()
    return s


def member(
    *,
    phone: str | None = None,
    name: str = "",
    activated: bool = False,
    guide: Staff | None = None,
    store: Store | None = None,
    openid: str | None = None,
    now: dt.datetime | None = None,
) -> Member:
    """A member of the current brand: a plain record (as the console or an import makes it)
    by default; ``activated``: through the card activation (consent given, the guide, store
    and official-account ``openid`` recorded, ``now`` its time)."""
    phone = phone or f"136{next(_seq):08d}"
    if activated:
        m, _ = activate_member(
            phone=phone,
            oa_openid=openid,
            guide_id=guide.id if guide else None,
            store_id=store.id if store else None,
            source="oa",
            consent_version=CONSENT,
            now=now,
        )
        if name:
            m.name = name
        member_id = m.id
    else:
        assert (guide, store, openid, now) == (None,) * 4, "only an activation records these"
        member_id, _ = create_member_row(phone=phone, source="console", name=name)
    db.session.commit()
    return db.session.get(Member, member_id)


def keyword(keyword: str = "hello", **fields) -> KeywordReply:
    """A keyword reply of the current brand through ``wechat.chatbot``, flushed, not committed:
    exact match, priority 0, active, no window, answering ``reply to <keyword>``; given a
    ``title`` (``description``, ``url``, ``picurl``), an article."""
    values = dict(
        match="exact",
        priority=0,
        reply_type="news" if fields.get("title") else "text",
        text=f"reply to {keyword}",
        title="",
        description="",
        url="",
        picurl="",
        starts_at=None,
        ends_at=None,
        active=True,
    )
    values.update(fields)
    return chatbot.create_keyword(keyword=keyword, **values)


def coupon_template(**kw) -> CouponTemplate:
    """A coupon template of the current brand (5 yuan off, valid for 30 days)."""
    now = dt.datetime.now(dt.UTC)
    values = dict(
        name="5元现金券",
        kind="cash",
        value_fen=500,
        threshold_fen=0,
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=30),
    )
    values.update(kw)
    tpl = coupons.create_template(**values)
    db.session.commit()
    return tpl


def mall_item(tpl: CouponTemplate, **kw) -> MallItem:
    """A points-mall item for the template (100 points)."""
    values = dict(template_id=tpl.id, title="100积分换5元券", price_points=100)
    values.update(kw)
    item = coupons.create_mall_item(**values)
    db.session.commit()
    return item


def login(client, b: Brand, person: Staff, password: str = PASSWORD):
    """Log a staff member into the console through the real login form."""
    return client.post(
        "/console/login",
        data={
            "brand": b.slug,
            "account": person.phone,
            "password": password,
            "csrf_token": csrf(client, "/console/login"),
        },
    )


def sign_in_member(client, b: Brand, member_id: int | None, *, openid: str | None = "o-test"):
    """Sign a WeChat user (and their member, if any) in to the brand's member center: what
    ``members.session.login`` leaves in the signed session cookie after the OAuth."""
    with client.session_transaction() as s:
        s[f"member:{b.id}"] = {"b": b.id, "o": openid, "u": None, "m": member_id}


_CSRF = (
    re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"'),
    re.compile(r'name="csrf_token" value="([^"]+)"'),
    re.compile(r'name="csrf-token" content="([^"]+)"'),  # the <meta> of script-driven pages
)


def csrf(page, url: str | None = None) -> str:
    """The CSRF token in ``page`` (HTML); or, given a client and a ``url``, on the page the
    client gets there."""
    if url is not None:
        page = page.get(url).get_data(as_text=True)
    for pattern in _CSRF:
        if m := pattern.search(page):
            return m.group(1)
    raise AssertionError(f"no CSRF token on {url or 'the page'}: {page[:300]}")


csrf_token = csrf  # the name in test files written before csrf() read tokens from HTML
