"""core.redis.run_script: a script over the thread's own connection, surviving what Redis
does to it (a restart that forgets scripts, a dropped connection)."""

from __future__ import annotations

import threading

import pytest
import redis

from core import redis as core_redis
from core.redis import get_redis, run_script

SCRIPT = "redis.call('INCR', KEYS[1]) return {redis.call('GET', KEYS[1]), ARGV[1]}"


@pytest.fixture
def script(ctx):
    r = get_redis()
    r.delete("wmb:test:counter")
    return r, r.register_script(SCRIPT)


def test_runs_the_script_and_returns_its_answer(script):
    r, s = script
    assert run_script(r, s, ["wmb:test:counter"], ["x"]) == [b"1", b"x"]
    assert run_script(r, s, ["wmb:test:counter"], ["y"]) == [b"2", b"y"]


def test_a_server_that_forgot_the_script_gets_it_again(script):
    r, s = script
    run_script(r, s, ["wmb:test:counter"], ["x"])
    r.script_flush()
    assert run_script(r, s, ["wmb:test:counter"], ["x"]) == [b"2", b"x"]


def test_a_connection_closed_by_the_server_while_idle_is_made_again(own_redis, monkeypatch):
    # A server of the test's own: killing its clients touches nobody else's connections.
    r = redis.Redis(port=own_redis.port)
    s = r.register_script(SCRIPT)
    run_script(r, s, ["wmb:test:counter"], ["x"])
    monkeypatch.setattr(core_redis, "IDLE_CHECK", 0.0)  # as if it had been idle for a while
    killed = r.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    assert run_script(r, s, ["wmb:test:counter"], ["x"]) == [b"2", b"x"]


def test_each_thread_has_its_own_connection_and_nothing_is_counted_twice(script, app):
    r, s = script
    errors: list[BaseException] = []

    def work():
        try:
            with app.app_context():
                for _ in range(200):
                    run_script(r, s, ["wmb:test:counter"], ["x"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert int(r.get("wmb:test:counter")) == 1600


def test_an_error_of_the_script_is_raised(ctx):
    r = get_redis()
    broken = r.register_script("return redis.error_reply('nope')")
    with pytest.raises(redis.exceptions.ResponseError, match="nope"):
        run_script(r, broken, [], [])
