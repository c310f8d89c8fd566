"""The gateway against the live sandbox: token sharing, retries, timeouts, job back-off."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
from sqlalchemy import select

from core.db import db, utcnow
from core.jobs import OutboxJob, enqueue, job, run_outbox_job
from wechat import gateway
from wechat.sandbox import store

TOKEN = "/cgi-bin/token"
USER_INFO = "/cgi-bin/user/info"
CUSTOM_SEND = "/cgi-bin/message/custom/send"


def _process_calls(sandbox_url, brand_id, openid, barrier, threads, results):
    """One worker process: ``threads`` first calls started at the same instant."""
    from app import create_app
    from tests.support.apps import make_config
    from wechat import gateway as gw

    app = create_app(make_config(WECHAT_API_BASE=sandbox_url))
    start = threading.Barrier(threads)
    out = []

    def one():
        with app.app_context():
            start.wait()
            try:
                out.append(gw.get_user_info(brand_id, openid)["subscribe"])
            except Exception as exc:  # reported to the parent, which fails the test
                out.append(repr(exc))

    workers = [threading.Thread(target=one) for _ in range(threads)]
    barrier.wait(timeout=120)
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put(out)


def test_twenty_concurrent_first_calls_from_several_processes_fetch_one_token(
    wx_brand, wx_consumer, sandbox_url
):
    ctx = multiprocessing.get_context("spawn")
    processes, threads = 4, 5
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_process_calls,
            args=(sandbox_url, wx_brand.id, wx_consumer["openid"], barrier, threads, results),
        )
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    answers = [x for _ in procs for x in results.get(timeout=120)]
    for p in procs:
        p.join(timeout=30)
    assert answers == [1] * 20
    assert store.calls(TOKEN) == 1
    assert store.calls(USER_INFO) == 20


def test_40001_refreshes_the_token_once_and_retries_once(wx_brand, wx_consumer):
    assert gateway.get_user_info(wx_brand.id, wx_consumer["openid"])["subscribe"] == 1
    assert store.calls(TOKEN) == 1
    store.inject_fault(USER_INFO, errcode=40001)

    info = gateway.get_user_info(wx_brand.id, wx_consumer["openid"])

    assert info["openid"] == wx_consumer["openid"]
    assert store.calls(TOKEN) == 2
    assert store.calls(USER_INFO) == 3


def test_a_token_rejected_again_after_the_refresh_raises_instead_of_looping(wx_brand, wx_consumer):
    store.inject_fault(USER_INFO, errcode=40001, times=50)

    with pytest.raises(gateway.WeChatAPIError) as raised:
        gateway.get_user_info(wx_brand.id, wx_consumer["openid"])

    assert raised.value.errcode == 40001
    assert not isinstance(raised.value, gateway.RetryableError)
    assert store.calls(USER_INFO) == 2
    assert store.calls(TOKEN) == 2


def test_an_expired_token_42001_is_replaced(wx_brand, wx_consumer):
    gateway.get_user_info(wx_brand.id, wx_consumer["openid"])
    store.expire_tokens(wx_brand.appid)

    assert gateway.get_user_info(wx_brand.id, wx_consumer["openid"])["subscribe"] == 1
    assert store.calls(TOKEN) == 2
    assert store.calls(USER_INFO) == 3


@pytest.mark.parametrize("errcode", [-1, 45009, 45011])
def test_busy_and_quota_errors_are_retryable(wx_brand, wx_consumer, errcode):
    store.inject_fault(USER_INFO, errcode=errcode)
    with pytest.raises(gateway.RetryableError) as raised:
        gateway.get_user_info(wx_brand.id, wx_consumer["openid"])
    assert raised.value.errcode == errcode
    assert store.calls(USER_INFO) == 1


def test_other_errors_are_plain_api_errors(wx_brand):
    with pytest.raises(gateway.WeChatAPIError) as raised:
        gateway.get_user_info(wx_brand.id, "o-no-such-openid")
    assert raised.value.errcode == 40003
    assert not isinstance(raised.value, gateway.RetryableError)


def test_wrong_secret_is_reported_by_the_token_fetch(wx_brand):
    from wechat.sandbox import accounts

    accounts.update_account(wx_brand.appid, secret="rotated-on-the-platform")
    with pytest.raises(gateway.WeChatAPIError) as raised:
        gateway.get_user_info(wx_brand.id, "o-anyone")
    assert raised.value.errcode == 40125


def test_a_hung_endpoint_times_out_as_a_retryable_error(wx_app, wx_brand, wx_consumer, monkeypatch):
    monkeypatch.setitem(wx_app.config, "WECHAT_TIMEOUT", 0.5)
    store.inject_fault(USER_INFO, delay=3)

    started = time.monotonic()
    with pytest.raises(gateway.RetryableError) as raised:
        gateway.get_user_info(wx_brand.id, wx_consumer["openid"])

    assert time.monotonic() - started < 2
    assert raised.value.errcode is None
    assert "timed out" in str(raised.value)
    assert gateway.call_stats(wx_brand.id)["by_api"]["user.info"]["errors"] == {"timeout": 1}


def test_a_dropped_connection_is_a_retryable_error(wx_brand, wx_consumer):
    store.inject_fault(USER_INFO, drop=True)
    with pytest.raises(gateway.RetryableError):
        gateway.get_user_info(wx_brand.id, wx_consumer["openid"])
    # The next call goes through: nothing is left broken.
    assert gateway.get_user_info(wx_brand.id, wx_consumer["openid"])["subscribe"] == 1


def test_call_stats_count_calls_and_errors_by_code(wx_brand, wx_consumer):
    gateway.get_user_info(wx_brand.id, wx_consumer["openid"])
    store.inject_fault(USER_INFO, errcode=45011)
    with pytest.raises(gateway.RetryableError):
        gateway.get_user_info(wx_brand.id, wx_consumer["openid"])

    stats = gateway.call_stats(wx_brand.id)

    assert stats["by_api"]["user.info"] == {"calls": 2, "errors": {"45011": 1}}
    assert stats["by_api"]["token"] == {"calls": 1, "errors": {}}
    assert stats["calls"] == 3
    assert stats["errors"] == 1
    assert stats["by_errcode"] == {"45011": 1}


# --- a job that sends through the gateway backs off on 45009 ---------------------------------


@job("default", retries=3, backoff=(1,))
def send_hello(brand_id: int, openid: str) -> None:
    gateway.send_customer_message(
        brand_id, openid, {"msgtype": "text", "text": {"content": "您好"}}
    )


def test_a_job_hitting_45009_is_retried_later_and_not_lost(wx_brand, wx_consumer):
    outbox_id = enqueue(send_hello, wx_brand.id, wx_consumer["openid"], brand_id=wx_brand.id)
    db.session.commit()
    store.inject_fault(CUSTOM_SEND, errcode=45009)

    assert run_outbox_job(outbox_id) == "error"
    row = db.session.execute(
        select(OutboxJob).where(OutboxJob.id == outbox_id).execution_options(all_brands=True)
    ).scalar_one()
    assert row.status == "retry"
    assert row.available_at > utcnow()
    assert "45009" in row.last_error
    assert store.messages(wx_brand.appid, wx_consumer["openid"]) == []

    time.sleep(max(0.0, (row.available_at - utcnow()).total_seconds()))
    db.session.rollback()
    assert run_outbox_job(outbox_id) == "done"

    db.session.expire_all()
    assert db.session.get(OutboxJob, outbox_id).status == "done"
    sent = store.messages(wx_brand.appid, wx_consumer["openid"])
    assert [(m["via"], m["content"]) for m in sent] == [("customer_service", "您好")]
    assert store.calls(CUSTOM_SEND) == 2
