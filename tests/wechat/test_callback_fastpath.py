"""The callback's fast path: cached brand credentials, the inbound log buffered in Redis and
flushed in batches, and the transactional path for handlers that use the database."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from core.db import db, utcnow
from core.jobs import OutboxJob, enqueue
from core.redis import get_redis
from core.tenancy import use_brand
from org import services as org
from tests import factories
from tests.support.wechat import (
    AES_KEY,
    APPID,
    OLD_AES_KEY,
    TOKEN,
    FakeWeChat,
    answering_brand,
    text_xml,
)
from wechat import brand_cache, chatbot, inbound, jobs, router
from wechat.models import InboundMessage

OPENID = "oFast0000000000000000000001"


@pytest.fixture
def brand(ctx):
    return answering_brand()


@pytest.fixture
def wx(client, brand):
    return FakeWeChat(client, brand.slug)


def stored(brand_id: int) -> list[InboundMessage]:
    """The rows in the table now, without flushing anything."""
    db.session.rollback()
    return list(
        db.session.execute(
            select(InboundMessage)
            .where(InboundMessage.brand_id == brand_id)
            .order_by(InboundMessage.id)
            .execution_options(all_brands=True)
        ).scalars()
    )


def buffered(brand_id: int) -> int:
    return get_redis().xlen(inbound.stream_key(brand_id))


def flush() -> int:
    db.session.rollback()
    seen = inbound.flush_inbound()
    db.session.commit()
    return seen


def content(wx, resp) -> str | None:
    return wx.open_reply(resp).findtext("Content")


def warm(wx) -> None:
    """A first message: it loads the brand's chatbot rules (a database read)."""
    assert content(wx, wx.post_aes(text_xml(OPENID, "hello", 1))) == "收到"
    flush()


def test_a_reply_from_cached_rules_is_logged_through_redis_then_stored_once(wx, brand):
    warm(wx)
    before = utcnow()
    assert content(wx, wx.post_aes(text_xml(OPENID, "你好", 7001))) == "收到"
    assert [r.msg_id for r in stored(brand.id)] == ["1"]  # nothing written by the request...
    assert buffered(brand.id) == 1  # ...its record waits in Redis
    assert flush() == 1
    row = stored(brand.id)[-1]
    assert (row.openid, row.msg_type, row.msg_id, row.dedupe_key) == (
        OPENID,
        "text",
        "7001",
        "msg:7001",
    )
    assert "<Content><![CDATA[你好]]></Content>" in row.payload
    assert before - dt.timedelta(seconds=2) <= row.created_at <= utcnow()
    assert buffered(brand.id) == 0
    assert flush() == 0 and len(stored(brand.id)) == 2


def test_a_flush_that_dies_before_its_commit_loses_nothing(wx, brand):
    warm(wx)
    wx.post_aes(text_xml(OPENID, "你好", 7101))
    inbound.flush_inbound()
    db.session.rollback()  # the flusher died: rows not committed, entries still in Redis
    assert buffered(brand.id) == 1
    assert flush() == 1
    assert [r.msg_id for r in stored(brand.id)] == ["1", "7101"]


def test_records_flushed_twice_are_stored_once(wx, brand):
    warm(wx)
    wx.post_aes(text_xml(OPENID, "你好", 7201))
    [(_id, fields)] = get_redis().xrange(inbound.stream_key(brand.id))
    # a flusher that committed but died before removing the entries, then a second flusher
    get_redis().xadd(inbound.stream_key(brand.id), fields)
    assert flush() == 2
    assert [r.msg_id for r in stored(brand.id)] == ["1", "7201"]
    assert buffered(brand.id) == 0


def test_a_handler_using_the_database_gets_the_row_in_its_transaction(wx, brand):
    def remember(ctx):
        enqueue(jobs.send_customer_message, ctx.brand_id, ctx.openid, {"msgtype": "text"})

    warm(wx)
    router.on("text", priority=1)(remember)
    try:
        assert content(wx, wx.post_aes(text_xml(OPENID, "你好", 7301))) == "收到"
    finally:
        router.off(remember)
    assert [r.msg_id for r in stored(brand.id)] == ["1", "7301"]  # no flush needed
    assert buffered(brand.id) == 0
    assert db.session.execute(select(OutboxJob).where(OutboxJob.brand_id == brand.id)).all()


def test_a_failing_handler_after_a_database_write_leaves_nothing(wx, brand, app):
    def broken(ctx):
        db.session.execute(text("SELECT 1"))
        raise RuntimeError("boom")

    warm(wx)
    router.on("text", priority=1)(broken)
    try:
        app.config["PROPAGATE_EXCEPTIONS"] = False
        assert wx.post_aes(text_xml(OPENID, "你好", 7401)).status_code == 500
    finally:
        router.off(broken)
        app.config["PROPAGATE_EXCEPTIONS"] = None
    flush()
    assert [r.msg_id for r in stored(brand.id)] == ["1"]
    retry = wx.post_aes(text_xml(OPENID, "你好", 7401))
    assert content(wx, retry) == "收到"
    flush()
    assert [r.msg_id for r in stored(brand.id)] == ["1", "7401"]


def test_a_new_token_is_accepted_as_soon_as_it_is_committed(client, brand, wx):
    warm(wx)
    org.update_brand_credentials(brand=brand, token="newtoken2026")
    db.session.commit()
    old = wx.post_aes(text_xml(OPENID, "你好", 7501))
    assert old.status_code == 403
    new = FakeWeChat(client, brand.slug, token="newtoken2026")
    assert content(new, new.post_aes(text_xml(OPENID, "你好", 7502))) == "收到"
    assert new.echo("check").get_data(as_text=True) == "check"


def test_a_new_aes_key_works_at_once_and_the_previous_one_still_decrypts(client, ctx):
    b = answering_brand(aes_key=OLD_AES_KEY)
    old = FakeWeChat(client, b.slug, aes_key=OLD_AES_KEY)
    assert content(old, old.post_aes(text_xml(OPENID, "你好", 7601))) == "收到"
    org.update_brand_credentials(brand=b, aes_key=AES_KEY)
    db.session.commit()
    new = FakeWeChat(client, b.slug, aes_key=AES_KEY)
    assert content(new, new.post_aes(text_xml(OPENID, "你好", 7602))) == "收到"
    assert content(old, old.post_aes(text_xml(OPENID, "你好", 7603))) == "收到"


def test_a_deactivated_brand_stops_answering(wx, brand):
    warm(wx)
    brand.active = False
    db.session.commit()
    assert wx.post_aes(text_xml(OPENID, "你好", 7701)).status_code == 404


def test_a_brand_recreated_under_the_same_slug_is_not_confused_with_the_old_one(client, ctx):
    first = factories.brand(
        slug="reborn", appid=APPID, token=TOKEN, aes_key=AES_KEY, message_mode="compatible"
    ).id
    wx = FakeWeChat(client, "reborn")
    assert wx.post_aes(text_xml(OPENID, "你好", 7801)).data == b"success"  # no chatbot yet
    flush()
    # deleted behind the application's back (as the test suite's TRUNCATE does) and the
    # Redis db emptied: the cached credentials must not survive
    db.session.execute(text("DELETE FROM wechat_inbound WHERE brand_id = :b"), {"b": first})
    db.session.execute(text("DELETE FROM brand WHERE id = :b"), {"b": first})
    db.session.commit()
    get_redis().flushdb()
    second = factories.brand(
        slug="reborn", appid=APPID, token=TOKEN, aes_key=AES_KEY, message_mode="compatible"
    )
    assert second.id != first
    assert wx.post_aes(text_xml(OPENID, "你好", 7802)).data == b"success"
    flush()
    assert [r.msg_id for r in stored(second.id)] == ["7802"]


def test_credentials_are_cached_between_messages(wx, brand, monkeypatch):
    warm(wx)
    loads = []
    real_load = brand_cache._load
    monkeypatch.setattr(brand_cache, "_load", lambda slug: loads.append(slug) or real_load(slug))
    for i in range(5):
        assert content(wx, wx.post_aes(text_xml(OPENID, "你好", 7900 + i))) == "收到"
    assert loads == []


# --- pure handlers: one Redis round trip ---------------------------------------------------


@pytest.fixture
def redis_calls(monkeypatch):
    """The commands sent to Redis from now on, over any connection."""
    import redis.connection

    sent: list[str] = []
    real = redis.connection.AbstractConnection.send_command

    def counting(self, *args, **kw):
        sent.append(str(args[0]).upper())
        return real(self, *args, **kw)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", counting)
    return sent


def test_a_keyword_reply_takes_one_redis_round_trip(wx, brand, redis_calls):
    warm(wx)
    redis_calls.clear()
    assert content(wx, wx.post_aes(text_xml(OPENID, "你好", 8001))) == "收到"
    assert redis_calls == ["EVALSHA"]
    assert buffered(brand.id) == 1
    assert flush() == 1 and stored(brand.id)[-1].msg_id == "8001"


def test_retries_of_a_keyword_reply_get_its_reply_and_leave_one_record(wx, brand):
    warm(wx)
    replies = [content(wx, wx.post_aes(text_xml(OPENID, "你好", 8101))) for _ in range(3)]
    assert replies == ["收到"] * 3
    assert buffered(brand.id) == 1
    flush()
    assert [r.msg_id for r in stored(brand.id)] == ["1", "8101"]


def test_a_chatbot_edit_is_answered_at_once_by_a_process_that_saw_the_old_rules(wx, brand):
    warm(wx)
    with use_brand(brand.id):
        chatbot.save_replies(greeting="", default_reply="改过了")
        db.session.commit()
    assert content(wx, wx.post_aes(text_xml(OPENID, "你好", 8201))) == "改过了"
    assert content(wx, wx.post_aes(text_xml(OPENID, "你好", 8202))) == "改过了"
    flush()
    assert [r.msg_id for r in stored(brand.id)] == ["1", "8201", "8202"]


def test_a_builtin_keyword_with_an_effect_runs_once_however_often_the_message_comes(wx, brand):
    ran = []

    def check_in(ctx):
        ran.append(ctx.msg_id)
        enqueue(jobs.send_customer_message, ctx.brand_id, ctx.openid, {"msgtype": "text"})
        return router.TextReply("签到成功")

    warm(wx)
    router.keyword("签到", check_in)
    try:
        replies = [content(wx, wx.post_aes(text_xml(OPENID, "签到", 8301))) for _ in range(3)]
    finally:
        router.off(check_in)
    assert replies == ["签到成功"] * 3
    assert ran == ["8301"]
    assert [r.msg_id for r in stored(brand.id)] == ["1", "8301"]  # in the handler's transaction
    assert (
        len(db.session.execute(select(OutboxJob).where(OutboxJob.brand_id == brand.id)).all()) == 1
    )


def test_a_pure_handler_that_sends_a_later_message_is_handled_the_general_way(wx, brand):
    def also_later(ctx):
        ctx.reply_later({"msgtype": "text", "text": {"content": "稍后"}})

    warm(wx)
    router.on("text", priority=1, pure=True)(also_later)
    try:
        replies = [content(wx, wx.post_aes(text_xml(OPENID, "你好", 8401))) for _ in range(2)]
    finally:
        router.off(also_later)
    assert replies == ["收到", "收到"]
    assert (
        len(db.session.execute(select(OutboxJob).where(OutboxJob.brand_id == brand.id)).all()) == 1
    )


def test_the_callback_echoes_the_request_id_and_is_counted(wx, brand):
    from core.metrics import REQUESTS
    from wechat.callback import RULE

    warm(wx)
    counter = REQUESTS.labels("POST", RULE, "200")
    before = counter._value.get()
    resp = wx.client.post(
        f"{wx.path}?{wx.query()}",
        data=text_xml(OPENID, "你好", 8501),
        content_type="text/xml",
        headers={"X-Request-ID": "wx-req-8501"},
    )
    assert resp.status_code == 200 and resp.headers["X-Request-ID"] == "wx-req-8501"
    assert counter._value.get() == before + 1
    assert wx.client.get(f"{wx.path}?{wx.query()}").headers["X-Request-ID"]  # generated


def test_errors_of_handlers_get_the_app_s_error_answers_and_leave_no_retry_key(wx, brand):
    from core.errors import NotFound

    def missing(ctx):
        raise NotFound("no such thing")

    def broken(ctx):
        raise RuntimeError("boom")

    warm(wx)
    for handler, status, msg_id in ((missing, 404, 8601), (broken, 500, 8602)):
        router.on("text", priority=1)(handler)
        try:
            resp = wx.post_aes(text_xml(OPENID, "你好", msg_id))
        finally:
            router.off(handler)
        assert resp.status_code == status
        assert resp.headers["X-Request-ID"]
        # WeChat's retry is handled afresh, and answered
        assert content(wx, wx.post_aes(text_xml(OPENID, "你好", msg_id))) == "收到"
    flush()
    assert [r.msg_id for r in stored(brand.id)] == ["1", "8601", "8602"]
