"""A guest on a member-center page goes to WeChat sign-in and activation and comes back to
the page asked for, as WeChat's own pages do; the mini-program API keeps answering 401 JSON;
``next`` only ever leads to a page of the same brand's member center."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests import factories as f
from tests.support.member_h5 import Phone


def _signin_next(response) -> str | None:
    assert response.status_code in (302, 303), response.status_code
    target = urlsplit(response.headers["Location"])
    assert target.netloc in ("", "localhost")
    assert target.path.endswith("/activate"), target.path
    return parse_qs(target.query).get("next", [None])[0]


@pytest.mark.parametrize(
    "path",
    ["/coupons", "/coupons?tab=used", "/mall", "/points", "/profile", "/privacy"],
)
def test_a_guest_on_a_member_page_is_sent_to_sign_in_with_next(client, brand, path):
    base = f"/m/{brand.slug}"
    r = client.get(base + path)
    assert _signin_next(r) == base + path
    assert urlsplit(r.headers["Location"]).path == f"{base}/activate"


def test_a_form_post_by_a_guest_comes_back_to_the_page_it_was_posted_from(client, brand):
    base = f"/m/{brand.slug}"
    f.sign_in_member(client, brand, None)  # signed in to WeChat, not yet a member
    token = f.csrf(client, f"{base}/activate")
    data = {"csrf_token": token}
    ours = {"Referer": f"http://localhost{base}/coupons"}
    r = client.post(f"{base}/coupons/1/share", data=data, headers=ours)
    assert r.status_code == 303 and _signin_next(r) == f"{base}/coupons"
    theirs = {"Referer": "https://evil.example/m/x"}
    r = client.post(f"{base}/coupons/1/share", data=data, headers=theirs)
    assert _signin_next(r) is None


def test_the_mini_program_api_still_answers_401_json(client, brand):
    for path in ("coupons", "card", "profile"):
        r = client.get(f"/api/mp/{brand.slug}/{path}")
        assert r.status_code == 401, path
        assert r.is_json and r.json["error"]["code"]


def test_after_activation_the_guest_lands_on_the_page_asked_for(wx_client, wx_brand, wx_consumer):
    base = f"/m/{wx_brand.slug}"
    r = wx_client.get(f"{base}/coupons?tab=expired")
    entry = r.headers["Location"]
    assert _signin_next(r) == f"{base}/coupons?tab=expired"
    # The entry remembers where to come back, then sends the guest to WeChat's OAuth.
    assert "/connect/oauth2/authorize" in wx_client.get(entry).headers["Location"]
    phone = Phone(wx_client, wx_brand, wx_consumer)
    signed_in = phone.sign_in()  # not a member yet: the activation page, there and then
    assert signed_in.status_code == 200 and "发送验证码" in signed_in.get_data(as_text=True)
    phone.request_code("13912345670")
    r = phone.activate("13912345670")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"{base}/coupons?tab=expired")
    assert wx_client.get(r.headers["Location"]).status_code == 200


def test_a_known_member_signing_in_again_lands_on_the_page_asked_for(
    wx_client, wx_brand, wx_consumer
):
    base = f"/m/{wx_brand.slug}"
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.sign_in()
    phone.request_code("13912345671")
    phone.activate("13912345671")
    with wx_client.session_transaction() as s:
        s.clear()
    r = wx_client.get(f"{base}/mall")
    wx_client.get(r.headers["Location"])
    r = phone.sign_in()
    assert r.status_code == 302 and r.headers["Location"].endswith(f"{base}/mall")


@pytest.mark.parametrize(
    "bad",
    [
        "https://evil.example/",
        "//evil.example/m/x",
        "/\\evil.example",
        "/m/other-brand/coupons",
        "/console/",
        "javascript:alert(1)",
        "/m/{slug}//evil.example",
        "/m/{slug}/coupons\r\nSet-Cookie: x=1",
        "/m/{slug}x/coupons",
    ],
)
def test_next_never_leaves_the_brand_s_member_center(client, brand, bad):
    base = f"/m/{brand.slug}"
    member = f.member().id
    f.sign_in_member(client, brand, member)
    r = client.get(f"{base}/activate?next=" + quote(bad.format(slug=brand.slug), safe=""))
    assert r.status_code == 302
    assert urlsplit(r.headers["Location"]).path == f"{base}/"  # the card, not ``bad``
    good = client.get(f"{base}/activate?next=" + quote(f"{base}/points", safe=""))
    assert good.headers["Location"].endswith(f"{base}/points")
