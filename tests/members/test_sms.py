"""SMS codes: 6 digits, 5 minutes, single use, wrong tries and sending rate-limited."""

from __future__ import annotations

import pytest

from core.errors import RateLimited, ValidationError
from core.redis import get_redis, key
from members.activation import sms


def test_a_code_is_six_digits_expires_in_five_minutes_and_is_single_use(ctx):
    phone = sms.send_code(brand_id=1, phone="+86 139-1234-5678", ip="1.2.3.4", brand_name="B")
    assert phone == "13912345678"
    sent = sms.sandbox_last(phone)
    assert len(sent["code"]) == 6 and sent["code"].isdigit() and sent["code"] in sent["text"]
    ttl = get_redis().ttl(key(1, "sms-code", phone))
    assert 290 <= ttl <= 300
    assert sms.check_code(brand_id=1, phone=phone, code=sent["code"]) == phone
    with pytest.raises(ValidationError):
        sms.check_code(brand_id=1, phone=phone, code=sent["code"])


def test_a_code_of_one_brand_is_useless_for_another(ctx):
    sms.send_code(brand_id=1, phone="13912345678", ip="ip", brand_name="A")
    code = sms.sandbox_last("13912345678")["code"]
    with pytest.raises(ValidationError):
        sms.check_code(brand_id=2, phone="13912345678", code=code)
    assert sms.check_code(brand_id=1, phone="13912345678", code=code)


def test_an_expired_code_is_refused(ctx):
    sms.send_code(brand_id=1, phone="13912345678", ip="ip", brand_name="A")
    code = sms.sandbox_last("13912345678")["code"]
    get_redis().delete(key(1, "sms-code", "13912345678"))  # what the 300 s expiry does
    with pytest.raises(ValidationError):
        sms.check_code(brand_id=1, phone="13912345678", code=code)


def test_sending_is_limited_per_phone_and_per_ip(ctx):
    sms.send_code(brand_id=1, phone="13900000000", ip="9.9.9.9", brand_name="A")
    with pytest.raises(RateLimited):
        sms.send_code(brand_id=1, phone="13900000000", ip="8.8.8.8", brand_name="A")
    for i in range(1, sms.IP_LIMIT[0]):
        sms.send_code(brand_id=1, phone=f"1390000{i:04d}", ip="9.9.9.9", brand_name="A")
    with pytest.raises(RateLimited):
        sms.send_code(brand_id=1, phone="13911110000", ip="9.9.9.9", brand_name="A")


def test_wrong_codes_burn_the_code_after_five_tries(ctx):
    sms.send_code(brand_id=1, phone="13912345678", ip="ip", brand_name="A")
    good = sms.sandbox_last("13912345678")["code"]
    wrong = "000000" if good != "000000" else "111111"
    for _ in range(sms.MAX_WRONG - 1):
        with pytest.raises(ValidationError):
            sms.check_code(brand_id=1, phone="13912345678", code=wrong)
    with pytest.raises(RateLimited):
        sms.check_code(brand_id=1, phone="13912345678", code=wrong)
    with pytest.raises(ValidationError):
        sms.check_code(brand_id=1, phone="13912345678", code=good)


def test_the_sandbox_inbox_shows_the_last_code(client, ctx):
    assert client.get("/sandbox/sms?phone=13912345678").status_code == 404
    sms.send_code(brand_id=1, phone="13912345678", ip="ip", brand_name="A")
    body = client.get("/sandbox/sms?phone=13912345678").get_json()
    assert body["code"] == sms.sandbox_last("13912345678")["code"]
