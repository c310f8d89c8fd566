"""The sandbox SMS inbox: JSON for programs, a phone's messages screen for a browser."""

from __future__ import annotations

from members.activation import sms

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_browser_sees_the_text_as_a_phone_shows_it(client, ctx):
    page = client.get("/sandbox/sms", headers=BROWSER)
    assert page.status_code == 200 and "输入手机号" in page.text
    assert client.get("/sandbox/sms?phone=13912345678", headers=BROWSER).status_code == 404

    sms.send_code(brand_id=1, phone="13912345678", ip="ip", brand_name="示范品牌")
    code = sms.sandbox_last("13912345678")["code"]
    page = client.get("/sandbox/sms?phone=13912345678", headers=BROWSER)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "【示范品牌】验证码" in page.text
    assert f'<span class="sms-code" id="sms-code">{code}</span>' in page.text
    assert "\\u" not in page.text and '"code"' not in page.text

    # Programs (no Accept, */*, or ?format=json) still get the JSON.
    assert client.get("/sandbox/sms?phone=13912345678").get_json()["code"] == code
    asked = client.get("/sandbox/sms?phone=13912345678&format=json", headers=BROWSER)
    assert asked.get_json()["code"] == code
