"""Bad input on the activation path: phones, SMS codes, OAuth codes, snapshot users, consent."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from members.activation import sms
from members.models import Member
from tests import factories as f
from tests.support.member_h5 import Phone
from wechat.sandbox import store


def _members(brand) -> int:
    with use_brand(brand.id):
        return db.session.scalar(select(func.count()).select_from(Member))


def test_invalid_phone_numbers_are_refused_and_nothing_is_sent(wx_client, wx_brand, wx_consumer):
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.sign_in()
    for bad in ("12345678901", "1391234567", "abc", "+1 415 555 0100", "139123456789"):
        r = phone.request_code(bad)
        assert r.status_code == 400, bad
        assert 'role="alert"' in r.get_data(as_text=True)
    assert store_empty(wx_client)


def store_empty(_client) -> bool:
    from core.redis import get_redis

    return not get_redis().keys("*sandbox*sms*")


def test_wrong_codes_are_limited_and_a_code_is_single_use(wx_app, wx_brand, wx_consumer):
    first = Phone(wx_app.test_client(), wx_brand, wx_consumer)
    first.sign_in()
    first.request_code("13912345678")
    good = sms.sandbox_last("13912345678")["code"]
    wrong = "000000" if good != "000000" else "111111"
    r = first.activate("13912345678", code=wrong)
    assert r.status_code == 400 and "验证码错误" in r.get_data(as_text=True)
    assert first.activate("13912345678", code="12ab").status_code == 400
    r = first.activate("13912345678", code=good, consent="")
    assert r.status_code == 400 and "隐私条款" in r.get_data(as_text=True)
    assert _members(wx_brand) == 0
    assert first.activate("13912345678", code=good).status_code == 302
    # the same code again, from another browser of another consumer: used up
    other = store.create_consumer("小张")
    other["openid"] = store.openid_for(wx_brand.appid, other["uid"])
    second = Phone(wx_app.test_client(), wx_brand, other)
    second.sign_in()
    r = second.activate("13912345678", code=good)
    assert r.status_code == 400 and "已过期或已使用" in r.get_data(as_text=True)
    assert _members(wx_brand) == 1


def test_five_wrong_codes_burn_the_code(wx_client, wx_brand, wx_consumer):
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.sign_in()
    phone.request_code("13912345678")
    good = sms.sandbox_last("13912345678")["code"]
    wrong = "000000" if good != "000000" else "111111"
    statuses = [phone.activate("13912345678", code=wrong).status_code for _ in range(5)]
    assert statuses == [400, 400, 400, 400, 429]
    assert phone.activate("13912345678", code=good).status_code == 400
    assert _members(wx_brand) == 0


def test_sending_codes_is_rate_limited_per_phone(wx_client, wx_brand, wx_consumer):
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.sign_in()
    assert phone.request_code("13912345678").status_code == 200
    r = phone.request_code("13912345678")
    assert r.status_code == 429 and "过于频繁" in r.get_data(as_text=True)


def test_used_and_invalid_oauth_codes_get_a_clear_page(wx_app, wx_brand, wx_consumer):
    client = wx_app.test_client()
    phone = Phone(client, wx_brand, wx_consumer)
    code, state = phone.oauth_code()
    assert client.get(f"{phone.base}/activate/oauth?code={code}&state={state}").status_code == 200
    again = Phone(wx_app.test_client(), wx_brand, wx_consumer)
    _unused, state2 = again.oauth_code()
    r = again.client.get(f"{phone.base}/activate/oauth?code={code}&state={state2}")
    assert r.status_code == 400 and "已被使用或已过期" in r.get_data(as_text=True)
    _unused, state3 = again.oauth_code()
    r = again.client.get(f"{phone.base}/activate/oauth?code=forged-code&state={state3}")
    assert r.status_code == 400 and "重试" in r.get_data(as_text=True)
    # a forged state (login CSRF) is refused before the code is even used
    fresh, _state = again.oauth_code()
    r = again.client.get(f"{phone.base}/activate/oauth?code={fresh}&state=forged")
    assert r.status_code == 400


def test_a_snapshot_page_user_is_refused(wx_client, wx_brand, wx_consumer):
    phone = Phone(wx_client, wx_brand, wx_consumer)
    r = phone.sign_in(snapshot=True)
    assert r.status_code == 403 and "快照" in r.get_data(as_text=True)
    r = wx_client.get(phone.base + "/activate")
    assert r.status_code == 302 and "oauth2/authorize" in r.headers["Location"]
    html = wx_client.get(f"/m/{wx_brand.slug}/activate/terms").get_data(as_text=True)
    token = f.csrf(html) if "csrf_token" in html else ""
    r = wx_client.post(
        phone.base + "/activate/code", data={"phone": "13912345678", "csrf_token": token}
    )
    assert r.status_code in (302, 400) and sms.sandbox_last("13912345678") is None
