"""Factories for test data."""

from __future__ import annotations

import itertools

from core.db import db
from core.tenancy import use_brand
from org import services as org
from org.models import Brand, Staff, Store

PASSWORD = "correct-horse-9"
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


def login(client, b: Brand, person: Staff, password: str = PASSWORD):
    """Log a staff member into the console through the real login form."""
    token = csrf_token(client, "/console/login")
    return client.post(
        "/console/login",
        data={
            "brand": b.slug,
            "account": person.phone,
            "password": password,
            "csrf_token": token,
        },
    )


def csrf_token(client, url: str) -> str:
    import re

    html = client.get(url).get_data(as_text=True)
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert m, f"no CSRF token on {url}"
    return m.group(1)
