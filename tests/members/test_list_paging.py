"""Keyset paging (core.paging) through the console's lists: every row once and in order,
also while rows are added; the way back; bad cursors; the capped total; filters and scopes
kept from page to page."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core.db import db
from core.paging import Key, keyset_page, newest_first, parse_cursor
from members.models import Member
from org.models import Staff
from tests import factories as f
from tests.support import bulk, pager


def ids_on(html: str) -> list[int]:
    """The members listed on a members page, top to bottom."""
    return [int(i) for i in re.findall(r'href="/console/members/(\d+)"', html)]


def brand_ids(brand_id: int) -> list[int]:
    return list(
        db.session.execute(
            select(Member.id)
            .where(Member.brand_id == brand_id)
            .order_by(Member.id.desc())
            .execution_options(all_brands=True)
        ).scalars()
    )


@pytest.fixture
def admin_client(client, world):
    f.login(client, world.brand, world.admin)
    return client


def test_paging_visits_every_member_once_in_order(admin_client, world):
    bulk.members(world.brand.id, 95)
    pages = pager.walk(admin_client, "/console/members")
    assert [len(ids_on(p)) for p in pages] == [20, 20, 20, 20, 15]
    seen = [i for p in pages for i in ids_on(p)]
    assert seen == brand_ids(world.brand.id)
    assert all(pager.total(p) == "共 95 条" for p in pages)
    # And back again, newest page last.
    back = pager.walk(admin_client, pager.link(pages[-1], "newer"), which="newer")
    assert [i for p in reversed(back) for i in ids_on(p)] == seen[:80]
    assert pager.link(pages[0], "newer") is None and pager.link(pages[0], "first") is None
    assert pager.link(pages[2], "first") == "/console/members"


def test_members_added_between_page_loads_neither_repeat_nor_hide_a_row(admin_client, world):
    bulk.members(world.brand.id, 50)
    before = brand_ids(world.brand.id)
    first = admin_client.get("/console/members").get_data(as_text=True)
    # New members arrive (they are newer than everything listed) while the operator reads.
    bulk.members(world.brand.id, 30, phone="'135' || lpad(g::text, 8, '0')")
    rest = pager.walk(admin_client, pager.link(first, "older"))
    seen = ids_on(first) + [i for p in rest for i in ids_on(p)]
    assert seen == before  # each of the original rows exactly once, in order
    # Going back from the second page shows the same first page (the newcomers sit above it,
    # one "previous" away).
    again = admin_client.get(pager.link(rest[0], "newer")).get_data(as_text=True)
    assert ids_on(again) == ids_on(first)
    above = pager.walk(admin_client, pager.link(again, "newer"), which="newer")
    newcomers = [i for p in reversed(above) for i in ids_on(p)]
    assert newcomers == brand_ids(world.brand.id)[:30]
    assert pager.link(above[-1], "newer") is None


def test_after_and_before_round_trip(admin_client, world):
    bulk.members(world.brand.id, 70)
    p1 = admin_client.get("/console/members").get_data(as_text=True)
    p2 = admin_client.get(pager.link(p1, "older")).get_data(as_text=True)
    p3 = admin_client.get(pager.link(p2, "older")).get_data(as_text=True)
    assert ids_on(admin_client.get(pager.link(p3, "newer")).get_data(as_text=True)) == ids_on(p2)
    assert ids_on(admin_client.get(pager.link(p2, "newer")).get_data(as_text=True)) == ids_on(p1)
    last_of_p2 = ids_on(p2)[-1]
    assert ids_on(
        admin_client.get(f"/console/members?before={ids_on(p3)[0]}").get_data(as_text=True)
    ) == ids_on(p2)
    assert ids_on(
        admin_client.get(f"/console/members?after={last_of_p2}").get_data(as_text=True)
    ) == ids_on(p3)


@pytest.mark.parametrize(
    "cursor",
    ["abc", "-5", "1.5", "", "%00", "9" * 19, "9" * 200, "١٢", "1e9", " ", "0x10"],
)
def test_a_bad_cursor_gives_the_first_page(admin_client, world, cursor):
    bulk.members(world.brand.id, 25)
    first = ids_on(admin_client.get("/console/members").get_data(as_text=True))
    for arg in ("after", "before"):
        r = admin_client.get("/console/members", query_string={arg: cursor})
        assert r.status_code == 200
        assert ids_on(r.get_data(as_text=True)) == first


def test_cursor_past_either_end_and_of_another_brand(admin_client, world):
    bulk.members(world.brand.id, 25)
    ids = brand_ids(world.brand.id)
    html = admin_client.get(f"/console/members?after={ids[-1]}").get_data(as_text=True)
    assert ids_on(html) == [] and pager.link(html, "first") == "/console/members"
    html = admin_client.get(f"/console/members?before={ids[0]}").get_data(as_text=True)
    assert ids_on(html) == []
    # An id far beyond any row: the newest rows below it, i.e. the first page's rows.
    html = admin_client.get("/console/members?after=999999999999").get_data(as_text=True)
    assert ids_on(html) == ids[:20]
    # Another brand's row as a cursor shows nothing of that brand.
    other = f.brand()
    bulk.members(other.id, 10, phone="'135' || lpad(g::text, 8, '0')")
    theirs = brand_ids(other.id)
    html = admin_client.get(f"/console/members?after={theirs[0]}").get_data(as_text=True)
    assert not set(ids_on(html)) & set(theirs)
    s = f.store(other, code="THEIRS")
    html = admin_client.get(f"/console/stores?after={s.id}").get_data(as_text=True)
    assert "THEIRS" not in html


def test_the_total_is_capped_past_a_thousand(admin_client, world):
    bulk.members(world.brand.id, 1001)
    html = admin_client.get("/console/members").get_data(as_text=True)
    assert pager.total(html) == "共 1,000+ 条"
    assert len(ids_on(html)) == 20
    # Below the cap the number is exact (a search narrows the list).
    html = admin_client.get("/console/members?q=会员100").get_data(as_text=True)
    assert pager.total(html) == "共 3 条"  # 会员100, 会员1000 and 会员1001
    db.session.execute(
        Member.__table__.delete().where(Member.id.in_(brand_ids(world.brand.id)[:2]))
    )
    db.session.commit()
    html = admin_client.get("/console/members").get_data(as_text=True)
    assert pager.total(html) == "共 999 条"


def test_filters_are_kept_in_the_links(admin_client, world):
    bulk.members(world.brand.id, 30, store_id=world.store.id)
    bulk.members(world.brand.id, 30, store_id=world.store2.id, offset=1000)
    url = f"/console/members?store_id={world.store.id}&q=会员"
    pages = pager.walk(admin_client, url)
    assert len(pages) == 2
    older = pager.link(pages[0], "older")
    assert f"store_id={world.store.id}" in older and "q=" in older
    newer = pager.link(pages[1], "newer")
    assert f"store_id={world.store.id}" in newer and "q=" in newer
    seen = [i for p in pages for i in ids_on(p)]
    in_store = list(
        db.session.execute(
            select(Member.id).where(Member.store_id == world.store.id).order_by(Member.id.desc())
        ).scalars()
    )
    assert seen == in_store


def test_store_manager_and_guide_page_through_their_own_only(client, world):
    w = world
    bulk.members(w.brand.id, 45, store_id=w.store.id, guide_id=w.guide.id)
    bulk.members(w.brand.id, 30, store_id=w.store2.id, offset=1000)
    bulk.members(w.brand.id, 25, store_id=w.store.id, guide_id=w.guide2.id, offset=2000)
    mine = set(db.session.execute(select(Member.id).where(Member.store_id == w.store.id)).scalars())
    guided = set(
        db.session.execute(select(Member.id).where(Member.guide_id == w.guide.id)).scalars()
    )
    f.login(client, w.brand, w.manager)
    pages = pager.walk(client, "/console/members")
    seen = [i for p in pages for i in ids_on(p)]
    assert len(seen) == len(set(seen)) == 70 and set(seen) == mine
    assert pager.total(pages[0]) == "共 70 条"
    f.login(client, w.brand, w.guide)
    pages = pager.walk(client, "/console/workbench")
    seen = [int(i) for p in pages for i in re.findall(r'data-member="(\d+)"', p)]
    assert len(seen) == len(set(seen)) == 45 and set(seen) == guided
    assert pager.total(pages[0]) == "共 45 条"


def test_a_multi_column_order_pages_exactly_both_ways(world):
    """Staff by role, name, id (names repeat): every row once, forwards and backwards."""
    for n in range(23):
        person = f.staff(world.brand, "guide", world.store)
        person.name = "同名" if n % 2 else f"导购{n % 5}"
    db.session.commit()
    order = (Key(Staff.role), Key(Staff.name), Key(Staff.id))
    stmt = select(Staff)
    expected = list(db.session.execute(stmt.order_by(Staff.role, Staff.name, Staff.id)).scalars())
    seen, page = [], keyset_page(stmt, order=order, per_page=4)
    while True:
        seen += page.items
        if not page.has_older:
            break
        page = keyset_page(stmt, order=order, per_page=4, after=page.older)
    assert seen == expected
    back = []
    while True:
        back = page.items + back
        if not page.has_newer:
            break
        page = keyset_page(stmt, order=order, per_page=4, before=page.newer)
    assert back == expected


def test_a_mixed_direction_order_pages_exactly(world):
    """Keyword replies: priority high to low, then oldest first."""
    from wechat.models import KeywordReply

    for n in range(17):
        f.keyword(f"词{n}", priority=n % 3)
    order = (Key(KeywordReply.priority, descending=True), Key(KeywordReply.id))
    stmt = select(KeywordReply)
    expected = list(
        db.session.execute(stmt.order_by(KeywordReply.priority.desc(), KeywordReply.id)).scalars()
    )
    seen, page = [], keyset_page(stmt, order=order, per_page=5)
    while True:
        seen += page.items
        if not page.has_older:
            break
        page = keyset_page(stmt, order=order, per_page=5, after=page.older)
    assert seen == expected
    page = keyset_page(stmt, order=order, per_page=5, before=expected[10].id)
    assert page.items == expected[5:10]


def test_parse_cursor():
    assert parse_cursor("42") == 42
    assert parse_cursor(" 42 ") == 42
    for bad in (None, "", "x", "-1", "4.2", "١٢", "9" * 19):
        assert parse_cursor(bad) is None


def test_every_list_pages_without_offset_or_a_full_count(app, world):
    """The lists answer and page with the pager; no list falls back to page numbers."""
    w = world
    bulk.members(w.brand.id, 3)
    c = app.test_client()
    f.login(c, w.brand, w.admin)
    for url in (
        "/console/members",
        "/console/members/merges",
        "/console/members/imports",
        "/console/audit",
        "/console/jobs",
        "/console/stores",
        "/console/staff",
        "/console/wechat/keywords",
        "/console/coupons/templates",
        "/console/coupons/redemptions",
        f"/console/points/members/{brand_ids(w.brand.id)[0]}",
    ):
        r = c.get(url + "?after=abc&page=2")
        assert r.status_code == 200, url
        html = r.get_data(as_text=True)
        assert 'data-testid="pager"' in html, url
        assert "页，共" not in html and not re.search(r"第 \d+ / \d+ 页", html), url


def test_newest_first_is_by_id():
    (key,) = newest_first(Member.id)
    assert key.descending and key.column is Member.id
