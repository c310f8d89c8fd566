"""The member center's points page: balance, pending, history with reasons, expiries."""

from __future__ import annotations

import datetime as dt

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
