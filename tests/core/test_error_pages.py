"""Error pages speak the page's language: Chinese titles and advice, none of Werkzeug's
English; a member's error stays in the member center's shell; JSON errors keep their form."""

from __future__ import annotations

import re

import pytest

from core.errors import render_error

WERKZEUG = re.compile(
    r"requested URL|Not Found|Forbidden|Method Not Allowed|Internal Server Error|"
    r"Too Many Requests|Service Unavailable|permission|browser",
)


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.parametrize(
    ("code", "title"),
    [
        (400, "请求未被接受"),
        (403, "无权访问"),
        (404, "页面不存在"),
        (405, "不支持该操作"),
        (429, "请求过于频繁"),
        (500, "出错了"),
        (503, "服务暂不可用"),
    ],
)
@pytest.mark.parametrize("path", ["/console/somewhere", "/m/demo/somewhere"])
def test_every_error_page_is_chinese(app, code, title, path):
    with app.test_request_context(path):
        html = render_error(code)
    assert "<h1" in html and title in html
    assert not WERKZEUG.search(_text(html)), _text(html)
    member_shell = path.startswith("/m/")
    assert ("members/center.css" in html) is member_shell
    assert ("console.css" in html) is not member_shell


def test_a_404_in_the_console_and_the_member_center(client):
    r = client.get("/console/no-such-page")
    assert r.status_code == 404
    body = r.get_data(as_text=True)
    assert "页面不存在" in body and "topbar" in body
    assert not WERKZEUG.search(_text(body))

    r = client.get("/m/no-such-brand/")
    assert r.status_code == 404
    body = r.get_data(as_text=True)
    assert "页面不存在" in body and "members/center.css" in body
    assert "topbar" not in body and "console.css" not in body


def test_a_domain_error_keeps_its_own_translated_message(app):
    with app.test_request_context("/m/x/"):
        html = render_error(409, "这张券已经被领取")
    assert "这张券已经被领取" in html and "请求未被接受" in html


def test_405_keeps_its_allow_header(client):
    r = client.get("/console/logout")
    assert r.status_code == 405
    assert "POST" in r.headers["Allow"]
    assert "不支持该操作" in r.get_data(as_text=True)


def test_api_errors_stay_json(client):
    r = client.get("/api/mp/no-such-brand/nothing")
    assert r.status_code == 404
    assert set(r.json["error"]) == {"code", "message", "field"}
