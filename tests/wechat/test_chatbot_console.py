"""Console pages of the chatbot: greeting, keyword replies, menu editor."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from core.jobs import OutboxJob
from core.tenancy import use_brand
from tests import factories
from wechat.models import ChatbotSettings, KeywordReply


def _count(model) -> int:
    db.session.rollback()
    return db.session.execute(
        select(func.count()).select_from(model).execution_options(all_brands=True)
    ).scalar()


def _admin(client):
    b = factories.brand()
    factories.login(client, b, factories.staff(b, "brand_admin"))
    return b


KEYWORD = {
    "keyword": "会员",
    "match": "exact",
    "priority": "5",
    "reply_type": "text",
    "text": "回复手机号入会",
    "title": "",
    "description": "",
    "url": "",
    "picurl": "",
    "starts_at": "",
    "ends_at": "",
    "active": "y",
}


def test_pages_speak_chinese(client, ctx):
    _admin(client)
    for url, words in [
        ("/console/wechat/replies", "关注欢迎语"),
        ("/console/wechat/keywords", "关键词回复"),
        ("/console/wechat/keywords/new", "全匹配"),
        ("/console/wechat/menu", "发布到微信"),
    ]:
        html = client.get(url).get_data(as_text=True)
        assert words in html, url
    assert "自定义菜单" in client.get("/console/").get_data(as_text=True)


def test_create_keyword_then_edit_it(client, ctx):
    b = _admin(client)
    token = factories.csrf_token(client, "/console/wechat/keywords/new")
    resp = client.post(
        "/console/wechat/keywords/new",
        data={**KEYWORD, "starts_at": "2026-05-01T09:00", "csrf_token": token},
    )
    assert resp.status_code == 302
    with use_brand(b.id):
        r = db.session.execute(select(KeywordReply)).scalar_one()
        assert (r.keyword, r.priority, r.text) == ("会员", 5, "回复手机号入会")
        assert r.starts_at.isoformat() == "2026-05-01T01:00:00+00:00"  # 09:00 in Shanghai
    assert "会员" in client.get("/console/wechat/keywords").get_data(as_text=True)
    form = client.get(f"/console/wechat/keywords/{r.id}").get_data(as_text=True)
    assert "2026-05-01T09:00" in form
    resp = client.post(
        f"/console/wechat/keywords/{r.id}",
        data={**KEYWORD, "text": "新的回复", "csrf_token": token},
    )
    assert resp.status_code == 302
    db.session.rollback()
    with use_brand(b.id):
        assert db.session.get(KeywordReply, r.id).text == "新的回复"


def test_bad_keyword_input_is_400_and_nothing_is_written(client, ctx):
    _admin(client)
    token = factories.csrf_token(client, "/console/wechat/keywords/new")
    cases = [
        ({"keyword": ""}, "必填"),
        ({"priority": "abc"}, None),
        ({"text": ""}, "必填"),
        ({"reply_type": "news", "title": "标题", "url": "not a link"}, "http://"),
        ({"starts_at": "2026-05-02T09:00", "ends_at": "2026-05-01T09:00"}, "结束时间必须晚于"),
        ({"starts_at": "yesterday"}, None),
        ({"match": "regex"}, None),
    ]
    for change, message in cases:
        resp = client.post(
            "/console/wechat/keywords/new", data={**KEYWORD, **change, "csrf_token": token}
        )
        assert resp.status_code == 400, change
        if message:
            assert message in resp.get_data(as_text=True), change
    no_csrf = client.post("/console/wechat/keywords/new", data=KEYWORD)
    assert no_csrf.status_code == 400
    assert _count(KeywordReply) == 0


def test_duplicate_keyword_is_a_clear_error(client, ctx):
    _admin(client)
    token = factories.csrf_token(client, "/console/wechat/keywords/new")
    client.post("/console/wechat/keywords/new", data={**KEYWORD, "csrf_token": token})
    resp = client.post(
        "/console/wechat/keywords/new", data={**KEYWORD, "text": "again", "csrf_token": token}
    )
    assert resp.status_code == 409
    assert "该关键词已设置了回复" in resp.get_data(as_text=True)
    assert _count(KeywordReply) == 1


def test_another_brands_keyword_is_404(client, ctx):
    other = factories.brand()
    with use_brand(other.id):
        theirs = factories.keyword(KEYWORD["keyword"], text=KEYWORD["text"])
        db.session.commit()
        theirs_id = theirs.id
    _admin(client)
    token = factories.csrf_token(client, "/console/wechat/keywords/new")
    assert client.get(f"/console/wechat/keywords/{theirs_id}").status_code == 404
    assert (
        client.post(
            f"/console/wechat/keywords/{theirs_id}",
            data={**KEYWORD, "text": "hijack", "csrf_token": token},
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/console/wechat/keywords/{theirs_id}/delete", data={"csrf_token": token}
        ).status_code
        == 404
    )
    db.session.rollback()
    with use_brand(other.id):
        assert db.session.get(KeywordReply, theirs_id).text == "回复手机号入会"


def test_delete_keyword(client, ctx):
    _admin(client)
    token = factories.csrf_token(client, "/console/wechat/keywords/new")
    client.post("/console/wechat/keywords/new", data={**KEYWORD, "csrf_token": token})
    rule_id = db.session.execute(
        select(KeywordReply.id).execution_options(all_brands=True)
    ).scalar_one()
    resp = client.post(f"/console/wechat/keywords/{rule_id}/delete", data={"csrf_token": token})
    assert resp.status_code == 302 and _count(KeywordReply) == 0


def test_greeting_and_default_reply(client, ctx):
    b = _admin(client)
    token = factories.csrf_token(client, "/console/wechat/replies")
    resp = client.post(
        "/console/wechat/replies",
        data={"greeting": "欢迎！", "default_reply": "稍后回复", "csrf_token": token},
    )
    assert resp.status_code == 302
    assert "欢迎！" in client.get("/console/wechat/replies").get_data(as_text=True)
    resp = client.post(
        "/console/wechat/replies",
        data={"greeting": "长" * 700, "default_reply": "x", "csrf_token": token},
    )
    assert resp.status_code == 400 and "最多 2048 字节" in resp.get_data(as_text=True)
    db.session.rollback()
    with use_brand(b.id):
        s = db.session.execute(select(ChatbotSettings)).scalar_one()
        assert (s.greeting, s.default_reply) == ("欢迎！", "稍后回复")


def _menu_form(token, **rows):
    data = {"csrf_token": token}
    data.update(rows)
    return data


def test_menu_editor_saves_wechat_json_and_publishes_through_a_job(client, ctx):
    b = _admin(client)
    token = factories.csrf_token(client, "/console/wechat/menu")
    resp = client.post(
        "/console/wechat/menu",
        data=_menu_form(
            token,
            b0_name="门店",
            b0_type="click",
            b0_value="MENU_STORES",
            b1_name="会员",
            b1_type="group",
            b1_s0_name="会员中心",
            b1_s0_type="view",
            b1_s0_value="https://example.com/m",
            b1_s1_name="积分",
            b1_s1_type="click",
            b1_s1_value="积分",
        ),
    )
    assert resp.status_code == 302
    db.session.rollback()
    with use_brand(b.id):
        s = db.session.execute(select(ChatbotSettings)).scalar_one()
        assert s.menu == {
            "button": [
                {"type": "click", "name": "门店", "key": "MENU_STORES"},
                {
                    "name": "会员",
                    "sub_button": [
                        {"type": "view", "name": "会员中心", "url": "https://example.com/m"},
                        {"type": "click", "name": "积分", "key": "积分"},
                    ],
                },
            ]
        }
    page = client.get("/console/wechat/menu").get_data(as_text=True)
    assert 'value="MENU_STORES"' in page and "尚未发布" in page
    resp = client.post("/console/wechat/menu/publish", data={"csrf_token": token})
    assert resp.status_code == 302
    job = db.session.execute(select(OutboxJob)).scalar_one()
    assert (job.func, job.brand_id, job.args["args"]) == ("wechat.jobs.publish_menu", b.id, [b.id])
    assert "发布中" in client.get("/console/wechat/menu").get_data(as_text=True)


def test_bad_menu_is_400_with_a_clear_error_and_nothing_written(client, ctx):
    _admin(client)
    token = factories.csrf_token(client, "/console/wechat/menu")
    for rows, message in [
        ({}, "菜单至少需要一个按钮"),
        ({"b0_name": "一个很长的按钮名字", "b0_type": "click", "b0_value": "K"}, "名称过长"),
        ({"b0_name": "链接", "b0_type": "view", "b0_value": "example.com"}, "http://"),
        ({"b0_name": "组", "b0_type": "group"}, "请选择类型"),
        ({"b0_name": "点", "b0_type": "click", "b0_value": ""}, "Key"),
    ]:
        resp = client.post("/console/wechat/menu", data=_menu_form(token, **rows))
        assert resp.status_code == 400, rows
        assert message in resp.get_data(as_text=True), rows
    resp = client.post("/console/wechat/menu/publish", data={"csrf_token": token})
    assert "请先保存菜单再发布" in client.get("/console/wechat/menu").get_data(as_text=True)
    assert _count(OutboxJob) == 0
    assert (
        db.session.execute(select(ChatbotSettings.menu).execution_options(all_brands=True)).scalar()
        is None
    )


def test_only_brand_admins_see_the_pages(client, ctx):
    b = factories.brand()
    store = factories.store(b)
    factories.login(client, b, factories.staff(b, "store_manager", store))
    assert client.get("/console/wechat/keywords").status_code == 403
    assert client.get("/console/wechat/menu").status_code == 403
