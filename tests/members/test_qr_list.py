"""The QR code list at scale: keyset pages, kind filter and search, labels joined in one
statement, and per-code counters kept exact by the events (concurrency on PostgreSQL)."""

from __future__ import annotations

import importlib.util
import pathlib
import re

from sqlalchemy import event, func, select, text, update

from core.db import db
from core.tenancy import use_brand
from members.activation import qrcodes
from members.models import (
    EV_ACTIVATION,
    EV_FOLLOW,
    EV_SCAN,
    QR_GUIDE,
    QR_STORE,
    MemberQrCode,
    MemberQrEvent,
)
from tests import factories as f
from tests.support import pager
from tests.support.concurrency import run_concurrently
from tests.support.exports import run_export_jobs

URL = "/console/members/qrcodes"
N_STORES = 55


def _code(brand, kind, store, staff=None) -> MemberQrCode:
    """A code stored as the gateway would have made it (no WeChat call needed here)."""
    with use_brand(brand.id):
        scene = f"g:{staff.id}" if kind == QR_GUIDE else f"s:{store.code}"
        qr = MemberQrCode(
            brand_id=brand.id,
            kind=kind,
            store_id=store.id if store else None,
            staff_id=staff.id if staff else None,
            scene=scene,
            ticket=f"t-{scene}",
            url=f"https://example.invalid/{scene}",
        )
        db.session.add(qr)
        db.session.commit()
        return qr


def _world(brand):
    stores = [f.store(brand, code=f"Q{i:03d}", name=f"门店{i:03d}") for i in range(N_STORES)]
    guides = [f.staff(brand, "guide", stores[0]) for _ in range(3)]
    for s in stores:
        _code(brand, QR_STORE, s)
    for g in guides:
        _code(brand, QR_GUIDE, stores[0], g)
    return stores, guides


def _scenes(html: str) -> list[str]:
    return re.findall(r'data-scene="([^"]+)"', html)


def _statements(app, client, url: str) -> tuple[int, str]:
    """How many SQL statements one page view sends, and the page."""
    seen = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", grab)
    try:
        r = client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    assert r.status_code == 200
    return len(seen), r.get_data(as_text=True)


def test_the_list_pages_filters_and_searches(app, ctx, client):
    brand = f.brand()
    stores, guides = _world(brand)
    f.login(client, brand, f.staff(brand, "brand_admin"))
    pages = pager.walk(client, URL)
    assert [len(_scenes(p)) for p in pages] == [50, N_STORES + 3 - 50]
    every = [s for p in pages for s in _scenes(p)]
    assert every == [f"s:{s.code}" for s in stores] + [f"g:{g.id}" for g in guides]
    assert "门店000" in pages[0] and guides[0].name not in pages[0]
    back = pager.link(pages[1], "newer")
    assert _scenes(client.get(back).get_data(as_text=True)) == every[:50]

    html = client.get(URL + "?kind=guide").get_data(as_text=True)
    assert _scenes(html) == [f"g:{g.id}" for g in guides]
    assert "门店000" in html  # a guide's store is shown beside the guide
    html = client.get(URL, query_string={"q": guides[1].name}).get_data(as_text=True)
    assert _scenes(html) == [f"g:{guides[1].id}"]
    html = client.get(URL, query_string={"q": "门店054"}).get_data(as_text=True)
    assert _scenes(html) == ["s:Q054"]
    html = client.get(URL, query_string={"q": "q000", "kind": "store"}).get_data(as_text=True)
    assert _scenes(html) == ["s:Q000"]
    html = client.get(URL, query_string={"q": "%"}).get_data(as_text=True)
    assert _scenes(html) == [] and "没有符合条件的二维码" in html
    # an unknown kind or a junk cursor is the whole list's first page
    html = client.get(URL, query_string={"kind": "x", "after": "abc"}).get_data(as_text=True)
    assert _scenes(html) == every[:50]


def test_a_store_manager_pages_their_store_only(app, ctx, client):
    brand = f.brand()
    stores, guides = _world(brand)
    f.login(client, brand, f.staff(brand, "store_manager", stores[0]))
    html = client.get(URL).get_data(as_text=True)
    assert _scenes(html) == ["s:Q000"] + [f"g:{g.id}" for g in guides]
    assert _scenes(client.get(URL, query_string={"q": "门店054"}).get_data(as_text=True)) == []
    with use_brand(brand.id):
        other = qrcodes.qr_by_scene("s:Q054")
    # another store's code as a cursor gives nothing of that store
    html = client.get(URL, query_string={"after": other.id}).get_data(as_text=True)
    assert "s:Q054" not in html


def test_a_page_costs_the_same_statements_for_3_or_50_codes(app, ctx, client):
    brand = f.brand()
    _world(brand)
    f.login(client, brand, f.staff(brand, "brand_admin"))
    client.get(URL)  # warm the session's caches
    few, html = _statements(app, client, URL + "?kind=guide")
    assert len(_scenes(html)) == 3
    many, html = _statements(app, client, URL)
    assert len(_scenes(html)) == 50
    assert many == few


def test_the_posters_zip_loads_the_stores_at_once(app, ctx, client):
    brand = f.brand()
    _world(brand)
    f.login(client, brand, f.staff(brand, "brand_admin"))
    token = f.csrf_token(client, URL)
    assert client.post(URL + "/posters.zip", data={"csrf_token": token}).status_code == 302
    seen = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", grab)
    try:
        assert run_export_jobs() == ["done"]
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    store_reads = [s for s in seen if re.search(r"FROM store\b", s)]
    assert len(store_reads) <= 2, store_reads  # not one per store


def _events(brand_id: int, qr_id: int) -> dict[str, int]:
    with use_brand(brand_id):
        rows = db.session.execute(
            select(MemberQrEvent.kind, func.count())
            .where(MemberQrEvent.qr_id == qr_id)
            .group_by(MemberQrEvent.kind)
        ).all()
    return dict(rows)


def test_counters_stay_exact_under_concurrent_events(app, ctx):
    brand = f.brand()
    store = f.store(brand, code="C001", name="并发店")
    qr = _code(brand, QR_STORE, store)
    kinds = [EV_SCAN, EV_FOLLOW, EV_ACTIVATION, EV_SCAN]
    n = 24

    def fn(i):
        if i % 8 == 7:
            return qrcodes.rebuild_stats()  # a recount while events come in stays exact
        code = db.session.get(MemberQrCode, qr.id)
        return qrcodes.record_event(qr=code, kind=kinds[i % 4], openid=f"o{i}")

    results = run_concurrently(app, brand.id, n, fn)
    assert all(r[0] == "ok" for r in results), results
    events = _events(brand.id, qr.id)
    recorded = n - n // 8
    assert sum(events.values()) == recorded
    with use_brand(brand.id):
        db.session.expire_all()
        got = qrcodes.stats(qr_ids=[qr.id])[qr.id]
        assert got == {
            "scans": events.get(EV_SCAN, 0) + events.get(EV_FOLLOW, 0),
            "follows": events.get(EV_FOLLOW, 0),
            "activations": events.get(EV_ACTIVATION, 0),
        }
        assert got["scans"] + got["activations"] == recorded
        assert qrcodes.rebuild_stats() == 0


def test_a_rolled_back_event_counts_nothing(app, ctx):
    brand = f.brand()
    qr = _code(brand, QR_STORE, f.store(brand))
    with use_brand(brand.id):
        qrcodes.record_event(qr=qr, kind=EV_SCAN, openid="o1")
        assert qr.scans == 1
        db.session.rollback()
        assert qrcodes.stats(qr_ids=[qr.id])[qr.id]["scans"] == 0


def test_rebuild_recounts_the_counters_and_is_idempotent(app, ctx):
    brand = f.brand()
    other = f.brand()
    qr = _code(brand, QR_STORE, f.store(brand))
    idle = _code(brand, QR_STORE, f.store(brand))
    theirs = _code(other, QR_STORE, f.store(other))
    with use_brand(brand.id):
        for kind in (EV_FOLLOW, EV_SCAN, EV_SCAN, EV_ACTIVATION):
            qrcodes.record_event(qr=qr, kind=kind, openid="o1")
        db.session.commit()
        assert qrcodes.rebuild_stats() == 0
        db.session.execute(update(MemberQrCode).values(scans=99, follows=7, activations=5))
        db.session.commit()
    with use_brand(other.id):
        db.session.execute(update(MemberQrCode).values(scans=42))
        db.session.commit()
    with use_brand(brand.id):
        assert qrcodes.rebuild_stats() == 2
        db.session.commit()
        assert qrcodes.stats(qr_ids=[qr.id, idle.id]) == {
            qr.id: {"scans": 3, "follows": 1, "activations": 1},
            idle.id: {"scans": 0, "follows": 0, "activations": 0},
        }
        assert qrcodes.rebuild_stats() == 0
    with use_brand(other.id):
        # another brand's counters are not this brand's recount's business
        assert qrcodes.stats(qr_ids=[theirs.id])[theirs.id]["scans"] == 42


def test_the_migration_backfills_the_counters_from_the_events(app, ctx):
    path = pathlib.Path(__file__).parents[2] / "migrations/versions/0008_qr_scan_counts.py"
    spec = importlib.util.spec_from_file_location("qr_scan_counts", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    brand = f.brand()
    qr = _code(brand, QR_STORE, f.store(brand))
    with use_brand(brand.id):
        for kind in (EV_FOLLOW, EV_SCAN, EV_ACTIVATION):
            qrcodes.record_event(qr=qr, kind=kind, openid="o1")
        db.session.execute(update(MemberQrCode).values(scans=0, follows=0, activations=0))
        db.session.commit()
        db.session.execute(text(migration.BACKFILL))
        db.session.commit()
        assert qrcodes.stats(qr_ids=[qr.id])[qr.id] == {
            "scans": 2,
            "follows": 1,
            "activations": 1,
        }
        assert qrcodes.rebuild_stats() == 0
