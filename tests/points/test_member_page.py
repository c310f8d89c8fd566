"""The member center's points page: balance, pending, history with reasons, expiries."""

from __future__ import annotations

import datetime as dt
import re

from core.db import utcnow
from points import services
from points.expiry import release_due
from tests import factories


def test_member_sees_balance_pending_history_and_expiry(app, brand, member):
    now = utcnow()
    services.earn_for_purchase(
        member_id=member,
        amount_fen=20_000,
        occurred_at=now - dt.timedelta(days=10),
        idempotency_key="o-1",
        now=now - dt.timedelta(days=10),
    )
    release_due(now=now)
    services.earn_for_purchase(
        member_id=member, amount_fen=5_000, occurred_at=now, idempotency_key="o-2", now=now
    )
    services.spend(
        member_id=member, points=30, reason="积分商城兑换", idempotency_key="s-1", now=now
    )
    from core.db import db

    db.session.commit()
    other = factories.member().id
    client = app.test_client()
    assert client.get(f"/m/{brand.slug}/points").status_code == 302  # to sign in
    factories.sign_in_member(client, brand, member)
    page = client.get(f"/m/{brand.slug}/points").get_data(as_text=True)
    assert 'data-testid="balance">170<' in page  # 200 earned and released, 30 spent
    assert "50" in page and "积分" in page  # 50 pending from the second purchase
    assert page.count('data-testid="history"') == 4  # earn, release, earn, spend
    assert "积分商城兑换" in page
    assert 'data-testid="expiring"' in page
    # the other member sees their own (empty) account, not this one
    factories.sign_in_member(client, brand, other)
    page = client.get(f"/m/{brand.slug}/points").get_data(as_text=True)
    assert 'data-testid="balance">0<' in page


def test_card_page_links_to_points(app, brand, member):
    client = app.test_client()
    factories.sign_in_member(client, brand, member)
    page = client.get(f"/m/{brand.slug}/").get_data(as_text=True)
    assert f"/m/{brand.slug}/points" in page


def _lot_expiring(member_id: int, points: int, at: dt.datetime, key: str) -> None:
    """A lot of ``points`` that expires at ``at`` (UTC)."""
    from sqlalchemy import text

    from core.db import db

    entry = services.adjust(member_id=member_id, points=points, reason="补发", idempotency_key=key)
    db.session.execute(
        text("UPDATE points_lot SET expires_at = :at WHERE entry_id = :e"),
        {"at": at, "e": entry.id},
    )


def test_future_expiries_are_summed_per_month_of_the_brands_calendar(app, brand, member):
    from core.db import db

    utc = dt.UTC
    # Asia/Shanghai is UTC+8: 15:59 UTC on 31 Jan is still January there, 16:00 is 1 February.
    _lot_expiring(member, 7, dt.datetime(2030, 1, 31, 15, 59, tzinfo=utc), "a")
    _lot_expiring(member, 11, dt.datetime(2030, 1, 31, 16, 0, tzinfo=utc), "b")
    _lot_expiring(member, 13, dt.datetime(2030, 2, 27, 1, 0, tzinfo=utc), "c")
    _lot_expiring(member, 17, dt.datetime(2030, 1, 2, 0, 0, tzinfo=utc), "d")
    # months beyond the first six are summed together
    for i, month in enumerate(range(3, 9)):
        _lot_expiring(member, 100 + i, dt.datetime(2030, month, 15, tzinfo=utc), f"m{month}")
    db.session.commit()
    client = app.test_client()
    factories.sign_in_member(client, brand, member)
    page = client.get(f"/m/{brand.slug}/points").get_data(as_text=True)
    lines = [
        line.split('data-testid="expiring">', 1)[1].split("</div></div>", 1)[0]
        for line in page.split("\n")
        if 'data-testid="expiring"' in line
    ]
    assert len(lines) == 6
    assert "2030年1月" in lines[0] and "24 积分到期" in lines[0]  # 7 + 17
    assert "2030年2月" in lines[1] and "24 积分到期" in lines[1]  # 11 + 13
    assert "2030年3月" in lines[2] and "100 积分到期" in lines[2]
    assert "2030年6月" in lines[5] and "103 积分到期" in lines[5]
    later = page.split('data-testid="expiring-later"', 1)[1].split("</div></div>", 1)[0]
    assert "209 积分到期" in later  # July 104 + August 105


def test_history_pages_by_keyset(app, brand, member):
    from core.db import db

    for i in range(45):
        services.adjust(
            member_id=member, points=i + 1, reason=f"第{i + 1}次", idempotency_key=f"k{i}"
        )
    db.session.commit()
    client = app.test_client()
    factories.sign_in_member(client, brand, member)
    seen, url = [], f"/m/{brand.slug}/points"
    for _ in range(5):
        page = client.get(url).get_data(as_text=True)
        seen += [int(p) for p in re.findall(r"m-points_plus\">\+(\d+)<", page)]
        older = re.search(r'href="([^"]+)" data-testid="older"', page)
        if older is None:
            break
        url = older.group(1).replace("&amp;", "&")
        assert "before=" in url
    assert seen == list(range(45, 0, -1))
    assert 'data-testid="newest"' in page
    assert client.get(f"/m/{brand.slug}/points?before=0").status_code == 400
