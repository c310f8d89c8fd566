"""The activation page's script sends the SMS code without leaving the page: the send answers
JSON (the code step is filled in from it), refusals name the phone field in Chinese, and the
server keeps the step as the ordinary post does, so reopening the page shows the code step."""

from __future__ import annotations

import re

from members.activation import sms
from tests import factories as f
from tests.support.member_h5 import Phone

JSON = {"Accept": "application/json"}


def _send(phone: Phone, number: str):
    html = phone.client.get(phone.base + "/activate").get_data(as_text=True)
    return phone.client.post(
        phone.base + "/activate/code",
        data={"phone": number, "csrf_token": f.csrf(html)},
        headers=JSON,
    )


def test_the_phone_page_carries_the_code_step_for_the_script(wx_client, wx_brand, wx_consumer):
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.sign_in()
    html = wx_client.get(phone.base + "/activate").get_data(as_text=True)
    assert 'id="phone-form"' in html and "members/activate.js" in html
    template = re.search(r'<template id="code-step">(.*?)</template>', html, re.S).group(1)
    for part in ('id="code"', 'id="consent"', 'id="activate"', 'name="csrf_token"', "data-sent"):
        assert part in template


def test_a_sent_code_answers_json_and_the_page_keeps_the_code_step(
    wx_client, wx_brand, wx_consumer
):
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.sign_in()
    r = _send(phone, "139 1234 5678")
    assert r.status_code == 200 and r.is_json
    body = r.get_json()
    assert body["phone"] == "13912345678"
    assert body["sent"] == "6 位验证码已发送至 13912345678。"
    assert body["resend_in"] == 60
    assert body["inbox"].endswith("phone=13912345678")
    assert sms.sandbox_last("13912345678")["code"]
    # Reopened (or without the script), the page is the code step for that number.
    html = wx_client.get(phone.base + "/activate").get_data(as_text=True)
    assert 'id="code-form"' in html and 'id="phone-form"' not in html
    assert 'value="13912345678"' in html
    # The code it got activates the card.
    assert phone.activate("13912345678").status_code == 302


def test_a_bad_number_is_refused_in_json_and_nothing_is_sent(wx_client, wx_brand, wx_consumer):
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.sign_in()
    for bad in ("12345678901", "", "abc"):
        r = _send(phone, bad)
        assert r.status_code == 400 and r.is_json, bad
        error = r.get_json()["error"]
        assert error["field"] == "phone"
        assert re.search(r"[\u4e00-\u9fff]", error["message"]), error
    assert sms.sandbox_last("12345678901") is None
    html = wx_client.get(phone.base + "/activate").get_data(as_text=True)
    assert 'id="phone-form"' in html  # still the phone step


def test_a_second_code_within_the_minute_is_refused_in_json(wx_client, wx_brand, wx_consumer):
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.sign_in()
    assert _send(phone, "13912345678").status_code == 200
    first = sms.sandbox_last("13912345678")["code"]
    r = _send(phone, "13912345678")
    assert r.status_code == 429 and "过于频繁" in r.get_json()["error"]["message"]
    assert sms.sandbox_last("13912345678")["code"] == first
