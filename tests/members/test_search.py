"""Member search: each shape of query is served by an index of ``member`` (proved with
EXPLAIN on a few thousand generated rows), finds the right members, treats LIKE wildcards as
text and never finds another brand's members."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, text

from core.db import db
from core.tenancy import use_brand
from members import queries
from members.models import Member
from tests import factories as f
from tests.support import bulk

# Diverse names and phones, as a real brand has (the planner prices a trigram by how many
# rows hold it: one phone prefix on every row would make every phone trigram look common).
NAMES = (
    "(ARRAY['王','李','张','刘','陈','杨','赵','黄'])[1 + g % 8]"
    " || (ARRAY['小明','伟','芳','娜','秀英','敏','静','丽','强','磊'])[1 + g / 8 % 10]"
    " || chr(19968 + (g * 7) % 20000)"
)
PHONES = "'13' || lpad(((g::bigint + :offset) * 2654435761 % 1000000000)::text, 9, '0')"


def plan_of(stmt) -> str:
    """The plan PostgreSQL chooses for ``stmt`` exactly as the app sends it (brand scope and
    bound values included)."""
    seen = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    conn = db.session.connection()
    event.listen(conn, "before_cursor_execute", grab)
    try:
        db.session.execute(stmt).all()
    finally:
        event.remove(conn, "before_cursor_execute", grab)
    statement, params = seen[-1]
    return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params).all())


@pytest.fixture
def many(world):
    """4,000 members in the brand and 2,000 in another, same name shapes in both."""
    other = f.brand()
    bulk.members(world.brand.id, 4000, name=NAMES, phone=PHONES)
    bulk.members(other.id, 2000, name=NAMES, phone=PHONES, offset=50_000)
    return (
        db.session.execute(
            select(Member).where(Member.brand_id == world.brand.id).order_by(Member.id).offset(99)
        )
        .scalars()
        .first()
    )


def _only_bitmaps() -> None:
    # On a few thousand rows, reading the whole table (or walking the primary key backwards
    # until a page is full) honestly is the cheapest plan, so the planner's choice here says
    # nothing about a brand of a million. These two switches take those plans away and leave
    # bitmap scans only; they cannot make an index serve a condition it cannot serve: such a
    # condition still ends in a scan of the table or of the whole brand, which the test fails.
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    db.session.execute(text("SET LOCAL enable_indexscan = off"))


def _assert_served(plan: str, *indexes: str) -> None:
    assert "Seq Scan" not in plan, plan
    assert "uq_member_brand_id_id" not in plan, plan  # the whole brand, filtered row by row
    assert "pk_member" not in plan, plan
    assert any(ix in plan for ix in indexes), plan


# The index each shape of query must be served by.
SERVED_BY = {
    "full phone": ("uq_member_brand_id_phone",),
    "phone typed with +86": ("uq_member_brand_id_phone",),
    "card number": ("uq_member_brand_id_card_no",),
    "phone fragment": ("ix_member_phone_trgm",),
    "last four digits": ("ix_member_phone_trgm",),
    "name, three characters": ("ix_member_name_trgm",),
    "name with a wildcard": ("ix_member_name_trgm",),
    "name, two characters": ("ix_member_brand_name_prefix",),
    # One character: the prefix btree or the trigram index (both serve 'x%'), whichever the
    # planner prices lower.
    "name, one character": ("ix_member_brand_name_prefix", "ix_member_name_trgm"),
}


def test_every_kind_of_query_is_served_by_an_index(world, many):
    m = many
    queries_of = {
        "full phone": m.phone,
        "phone typed with +86": f"+86 {m.phone[:3]}-{m.phone[3:7]}-{m.phone[7:]}",
        "card number": m.card_no,
        "phone fragment": m.phone[3:9],
        "last four digits": m.phone[-4:],
        "name, three characters": m.name,
        "name with a wildcard": f"{m.name[:2]}%",
        "name, two characters": m.name[:2],
        "name, one character": m.name[:1],
    }
    assert set(queries_of) == set(SERVED_BY)
    _only_bitmaps()
    for kind, q in queries_of.items():
        for stmt in (
            queries.search_members(staff=world.admin, q=q).limit(21),
            queries.search_customers(staff=world.admin, q=q).limit(21),
        ):
            try:
                _assert_served(plan_of(stmt), *SERVED_BY[kind])
            except AssertionError as exc:
                raise AssertionError(f"{kind} ({q!r}):\n{exc}") from None


def test_a_two_character_fragment_anywhere_would_not_be_served(world, many):
    """The check above can fail: ``name ILIKE '%xy%'`` (what the search did before) has no
    trigram to look up, and no index serves it."""
    _only_bitmaps()
    stmt = (
        select(Member)
        .where(Member.name.ilike(f"%{many.name[:2]}%") | (Member.card_no == many.name[:2]))
        .limit(21)
    )
    with pytest.raises(AssertionError):
        _assert_served(plan_of(stmt), "ix_member_name_trgm", "ix_member_brand_name_prefix")


def _cards(staff, q: str, *, customers: bool = False) -> set[str]:
    fn = queries.search_customers if customers else queries.search_members
    return {m.card_no for m in db.session.execute(fn(staff=staff, q=q)).scalars()}


@pytest.fixture
def named(world):
    w = world
    people = {
        "lin": f.member(phone="13900001234", name="林晓明"),
        "lin2": f.member(phone="13911112222", name="林晓"),
        "wang": f.member(phone="13800005678", name="王芳"),
        "pct": f.member(phone="13700000001", name="50%折扣"),
        "under": f.member(phone="13700000002", name="a_b"),
        "plain": f.member(phone="13700000003", name="axb"),
        "slash": f.member(phone="13700000004", name="a\\b"),
        "guided": f.member(phone="13600009999", activated=True, guide=w.guide, name="顾客甲"),
    }
    other = f.brand()
    with use_brand(other.id):
        # Same phones and names in another brand: never found.
        f.member(phone="13900001234", name="林晓明")
        f.member(phone="13800005678", name="王芳")
    return people


def test_each_kind_of_query_finds_the_right_members(world, named):
    p, admin = named, world.admin
    card = {k: m.card_no for k, m in p.items()}
    assert _cards(admin, "13900001234") == {card["lin"]}
    assert _cards(admin, "+86 139 0000 1234") == {card["lin"]}
    assert _cards(admin, "１３９００００１２３４") == {card["lin"]}  # full-width digits
    assert _cards(admin, card["wang"]) == {card["wang"]}
    assert _cards(admin, "0000") == set(card.values()) - {card["lin2"]}
    assert _cards(admin, "1234") == {card["lin"]}
    assert _cards(admin, "139") == {card["lin"], card["lin2"]}
    assert _cards(admin, "林晓明") == {card["lin"]}
    assert _cards(admin, "晓明") == set()  # two characters: the start of a name only
    assert _cards(admin, "林晓") == {card["lin"], card["lin2"]}
    assert _cards(admin, "林") == {card["lin"], card["lin2"]}
    assert _cards(admin, "王") == {card["wang"]}
    assert _cards(admin, "12") == set()  # two digits: neither a phone fragment nor a name
    assert _cards(admin, "  林晓明  ") == {card["lin"]}
    assert _cards(admin, "") == set(card.values())


def test_like_wildcards_in_the_query_are_plain_text(world, named):
    p, admin = named, world.admin
    assert _cards(admin, "a_b") == {p["under"].card_no}  # not "axb"
    assert _cards(admin, "%") == set()  # not everyone
    assert _cards(admin, "_") == set()
    assert _cards(admin, "%折扣") == {p["pct"].card_no}
    assert _cards(admin, "0%折") == {p["pct"].card_no}
    assert _cards(admin, "a\\b") == {p["slash"].card_no}
    assert _cards(admin, "a\\") == {p["slash"].card_no}
    assert _cards(admin, "%%%") == set()


def test_scopes_hold_in_the_search(world, named):
    p = named
    # A guide's search finds only the guide's customers, by any kind of query.
    assert _cards(world.guide, "13600009999", customers=True) == {p["guided"].card_no}
    assert _cards(world.guide, "9999", customers=True) == {p["guided"].card_no}
    assert _cards(world.guide, "13900001234", customers=True) == set()
    assert _cards(world.guide, "林晓", customers=True) == set()
    assert _cards(world.guide2, "顾客甲", customers=True) == set()
    # The guided customer belongs to the guide's store; the plain records to none.
    assert _cards(world.manager, "139") == set()
    assert _cards(world.manager, "顾客甲") == {p["guided"].card_no}


def test_the_console_search_box_uses_it(client, world, named):
    p = named
    f.login(client, world.brand, world.admin)
    html = client.get("/console/members?q=a_b").get_data(as_text=True)
    assert p["under"].card_no in html and p["plain"].card_no not in html
    html = client.get("/console/members?q=%2B86%20139-0000-1234").get_data(as_text=True)
    assert p["lin"].card_no in html and p["lin2"].card_no not in html
    f.login(client, world.brand, world.guide)
    html = client.get("/console/workbench?q=9999").get_data(as_text=True)
    assert p["guided"].card_no in html
