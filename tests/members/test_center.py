"""The member center: card, till code, profile, privacy, slots; sessions bound to one brand."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from members import center, tillcode
from members.models import DELETED, Member
from tests import factories as f


@pytest.fixture
def member(world):
    return f.member(phone="13912345678", activated=True, openid="o-test", guide=world.guide)


def test_card_page_shows_card_till_code_store_guide(client, world, member):
    f.sign_in_member(client, world.brand, member.id)
    html = client.get(f"/m/{world.brand.slug}/").get_data(as_text=True)
    assert member.card_no in html and world.store.name in html and world.guide.name in html
    assert "结账时出示此会员码" in html and "我的门店" in html
    code = re.search(r'id="till-code"[^>]*>([^<]+)<', html).group(1)
    with use_brand(world.brand.id):
        assert tillcode.verify_till_code(code) == member.id
    data = client.get(f"/m/{world.brand.slug}/till-code").get_json()
    assert 0 < data["seconds_left"] <= 60
    with use_brand(world.brand.id):
        assert tillcode.verify_till_code(data["code"]) == member.id


def test_nobody_signed_in_goes_to_the_activation(client, world):
    r = client.get(f"/m/{world.brand.slug}/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/activate")
    assert client.get("/m/no-such-brand/").status_code == 404


def test_a_session_is_bound_to_one_brand(client, world, member):
    other = f.brand()
    f.sign_in_member(client, world.brand, member.id)
    assert client.get(f"/m/{world.brand.slug}/").status_code == 200
    assert client.get(f"/m/{other.slug}/").status_code == 302
    # brand A's data copied under brand B's key is still refused (the brand is inside)
    with client.session_transaction() as s:
        s[f"member:{other.id}"] = dict(s[f"member:{world.brand.id}"])
    assert client.get(f"/m/{other.slug}/").status_code == 302


def test_a_tampered_session_cookie_signs_nobody_in(client, world, member):
    f.sign_in_member(client, world.brand, member.id)
    cookie = client.get_cookie("session")
    assert cookie is not None
    payload, _, rest = cookie.value.partition(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + rest
    client.set_cookie("session", forged)
    assert client.get(f"/m/{world.brand.slug}/").status_code == 302


def test_profile_edit_is_validated(client, world, member):
    f.sign_in_member(client, world.brand, member.id)
    url = f"/m/{world.brand.slug}/profile"
    html = client.get(url).get_data(as_text=True)
    assert "个人资料" in html
    bad = [
        {"name": "", "birthday": "", "gender": ""},
        {"name": "林晓", "birthday": "2999-01-01", "gender": "f"},
        {"name": "林晓", "birthday": "not-a-date", "gender": "f"},
        {"name": "林晓", "birthday": "", "gender": "x"},
        {"name": "x" * 41, "birthday": "", "gender": ""},
    ]
    for data in bad:
        r = client.post(url, data={**data, "csrf_token": f.csrf(html)})
        assert r.status_code == 400, data
    r = client.post(
        url,
        data={
            "name": " 林晓 ",
            "birthday": "1992-03-04",
            "gender": "f",
            "csrf_token": f.csrf(html),
        },
    )
    assert r.status_code == 302
    with use_brand(world.brand.id):
        m = db.session.get(Member, member.id)
        db.session.refresh(m)
        assert (m.name, str(m.birthday), m.gender) == ("林晓", "1992-03-04", "f")


def test_download_my_data_and_delete_my_account(client, world, member):
    f.sign_in_member(client, world.brand, member.id)
    base = f"/m/{world.brand.slug}"
    r = client.get(base + "/privacy/data.json")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    data = json.loads(r.get_data(as_text=True))
    assert data["member"]["phone"] == "13912345678"
    html = client.get(base + "/privacy").get_data(as_text=True)
    assert "注销我的账户" in html and "请输入“注销”以确认" in html and "DELETE" not in html
    for wrong in ("no", "DELETE"):
        data = {"confirm": wrong, "csrf_token": f.csrf(html)}
        r = client.post(base + "/privacy/delete", data=data)
        assert r.status_code == 400 and "请输入“注销”以确认" in r.get_data(as_text=True)
    r = client.post(
        base + "/privacy/delete", data={"confirm": " 注销 ", "csrf_token": f.csrf(html)}
    )
    assert r.status_code == 200 and "已注销" in r.get_data(as_text=True)
    db.session.expire_all()
    with use_brand(world.brand.id):
        m = db.session.execute(select(Member).where(Member.id == member.id)).scalar_one()
        assert m.status == DELETED and m.phone is None
    assert client.get(base + "/").status_code == 302


def test_slots_of_other_packages_show_on_the_card(client, world, member):
    center.register_center_slot("privacy-again", "隐私入口", "members_center.privacy_page", 1)
    try:
        f.sign_in_member(client, world.brand, member.id)
        html = client.get(f"/m/{world.brand.slug}/").get_data(as_text=True)
        assert 'data-slot="privacy-again"' in html and "隐私入口" in html
    finally:
        center.CENTER_SLOTS.pop("privacy-again")
