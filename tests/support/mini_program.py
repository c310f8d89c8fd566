"""The mini-program's side of its API, through the WeChat sandbox (the ``wx_*`` fixtures):
``login`` with a jscode, ``activate`` with a phone code, ``bearer`` headers, ``api`` paths."""

from __future__ import annotations

from tests.factories import CONSENT
from wechat.sandbox.api_mp import issue_js_code, issue_phone_code


def api(brand, path: str) -> str:
    return f"/api/mp/{brand.slug}/{path}"


def login(client, brand, consumer) -> dict:
    code = issue_js_code(brand.mp_appid, consumer["uid"])
    r = client.post(api(brand, "login"), json={"code": code})
    assert r.status_code == 200, r.json
    return r.json


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def activate(client, brand, consumer, phone="13912345678") -> tuple[str, dict]:
    token = login(client, brand, consumer)["token"]
    code = issue_phone_code(brand.mp_appid, consumer["uid"], phone)
    r = client.post(
        api(brand, "phone"),
        json={"code": code, "consent_version": CONSENT},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.json
    return token, r.json
