"""The guide's workbench: the home's month header, my orders, customers bound to me,
performance, target and leaderboards, each limited to what the viewer may see; the figures
equal the performance ledger."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from guide_distribution import leaderboard, overview_guides, targets
from guide_distribution.models import PerformanceLine
from shop import numbers
from tests import factories as f
from tests.guide_distribution.workbench_helpers import customer, paid_order


def _ledger_net(guide_id: int) -> int:
    return db.session.execute(
        select(func.coalesce(func.sum(PerformanceLine.amount_fen), 0)).where(
            PerformanceLine.guide_id == guide_id
        )
    ).scalar()


def _setup(shop):
    a = f.staff(shop.brand, role="guide", store=shop.store)
    b = f.staff(shop.brand, role="guide", store=shop.store)
    ca, cb = customer(a), customer(b)
    oa = paid_order(shop, ca)  # 2 x 20.00
    ob1 = paid_order(shop, cb)
    ob2 = paid_order(shop, cb, qty=1)
    return a, b, ca, cb, oa, ob1, ob2


def test_home_shows_the_month_target_and_rank_equal_to_the_ledger(client, shop, fake_pay):
    a, b, ca, _cb, _oa, _ob1, _ob2 = _setup(shop)
    month = targets.month_start(numbers.local_day())
    targets.set_guide_target(guide_id=a.id, month=month, target_fen=10000)
    db.session.commit()
    assert _ledger_net(a.id) == 4000 and _ledger_net(b.id) == 6000

    board = leaderboard.board(month=month, store_id=shop.store.id)
    assert [(e.rank, e.guide_id, e.net_fen, e.orders) for e in board] == [
        (1, b.id, _ledger_net(b.id), 2),
        (2, a.id, _ledger_net(a.id), 1),
    ]

    f.login(client, shop.brand, a)
    html = client.get("/console/workbench/home").get_data(as_text=True)
    assert "¥40.00" in html and "第 2 名" in html and "¥100.00" in html and "40%" in html
    for tile in ("/console/workbench/tasks", "/console/workbench/materials",
                 "/console/workbench/orders", "/console/workbench/leaderboard",
                 "/console/workbench\""):  # fmt: skip
        assert tile in html
    assert 'name="viewport"' in html and "weui" in html

    html = client.get("/console/workbench/leaderboard").get_data(as_text=True)
    assert html.index(b.name) < html.index(a.name) and "¥60.00" in html
    region = client.get("/console/workbench/leaderboard?scope=region").get_data(as_text=True)
    assert b.name in region  # the shop's store is in a region (华东)

    perf = client.get("/console/workbench/performance").get_data(as_text=True)
    assert "¥40.00" in perf and "40%" in perf


def test_orders_and_customers_are_the_viewers_own(client, shop, fake_pay):
    a, b, ca, cb, oa, ob1, ob2 = _setup(shop)
    other_store = f.store(shop.brand)
    manager = f.staff(shop.brand, role="store_manager", store=shop.store)
    far_manager = f.staff(shop.brand, role="store_manager", store=other_store)

    f.login(client, shop.brand, a)
    html = client.get("/console/workbench/orders").get_data(as_text=True)
    assert oa.order_no in html and ob1.order_no not in html and "¥48.00" in html  # with shipping
    html = client.get("/console/workbench/bound").get_data(as_text=True)
    assert ca.card_no not in html  # never the card number, the masked phone
    assert ca.phone[:3] + "****" + ca.phone[-4:] in html and ca.phone not in html
    assert cb.phone[-4:] not in html
    assert "扫导购码" in html and "最近下单" in html

    client.post("/console/logout", data={"csrf_token": f.csrf(client, "/console/workbench/home")})
    f.login(client, shop.brand, manager)
    html = client.get("/console/workbench/orders").get_data(as_text=True)
    assert all(o.order_no in html for o in (oa, ob1, ob2))

    client.post("/console/logout", data={"csrf_token": f.csrf(client, "/console/workbench/home")})
    f.login(client, shop.brand, far_manager)
    html = client.get("/console/workbench/orders").get_data(as_text=True)
    assert not any(o.order_no in html for o in (oa, ob1, ob2))


def test_the_overview_section_reads_the_rollup(shop, fake_pay):
    a, b, *_ = _setup(shop)
    from core import overview

    with use_brand(shop.brand.id):
        period = overview.make_period("7d", now=dt.datetime.now(dt.UTC), tz=shop.brand.tz)
        section = overview_guides.section(period=period, scope=overview.Scope())
    figures = {fig.key: fig.value for fig in section.figures}
    assert figures["guide_orders"] == 3
    assert figures["guide_net_sales"] == (_ledger_net(a.id) + _ledger_net(b.id)) // 100
    # every sale went through a guide; the shop's net sales also hold 3 x 8.00 shipping
    assert figures["guide_share"] == 10000 * 1000 // (10000 + 3 * 800)
    assert overview_guides.top(by="guide", start=period.start, end=period.end) == [
        (b.id, 6000),
        (a.id, 4000),
    ]


def test_a_store_manager_sees_the_stores_figures_and_board(client, shop, fake_pay):
    a, b, *_ = _setup(shop)
    manager = f.staff(shop.brand, role="store_manager", store=shop.store)
    f.login(client, shop.brand, manager)
    perf = client.get("/console/workbench/performance").get_data(as_text=True)
    total = _ledger_net(a.id) + _ledger_net(b.id)
    assert f"¥{total // 100}.00" in perf  # the store's month: both guides
    board = client.get("/console/workbench/leaderboard").get_data(as_text=True)
    assert a.name in board and b.name in board
    html = client.get("/console/workbench/bound").get_data(as_text=True)
    assert html.count('class="wb-item" data-member=') == 2
    # A month that is not a month: 404, not an error page.
    assert client.get("/console/workbench/leaderboard?month=2026-13").status_code == 404
