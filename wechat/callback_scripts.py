"""The callback's Redis work on a delivery's retry key, each step one round trip.

A delivery's retry key (``wmb:{b<id>}:wx-in:<dedupe id>``) holds ``IN_FLIGHT`` while its
handlers run, then the reply WeChat got, so a retry gets the same answer and no handler runs
twice. The brand's hash (``brand_cache.hash_key``) holds its credential generation marker
and chatbot revision, checked in the same round trip; the record of the delivery goes to the
brand's inbound stream (``inbound.stream_key``), flushed into ``wechat_inbound`` by a job.
The scripts run over the calling thread's own connection (``core.redis.run_script``).
"""

from __future__ import annotations

from redis import Redis

from core.redis import run_script
from wechat import brand_cache, inbound

IN_FLIGHT = b"-"

# KEYS: retry key, brand hash. ARGV: IN_FLIGHT, ttl.
_CLAIM = """
local first = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
local v = redis.call('HMGET', KEYS[2], 'gen', 'rev')
return {first and 1 or 0, v[1], v[2]}
"""
# KEYS: inbound stream, retry key. ARGV: encoded record, reply ('' for none).
_BUFFER_AND_KEEP = """
redis.call('XADD', KEYS[1], '*', 'r', ARGV[1])
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'XX', 'KEEPTTL') end
return 1
"""
# KEYS: retry key, brand hash, inbound stream. ARGV: reply (or IN_FLIGHT), ttl, encoded
# record, generation marker, chatbot revision the handlers ran with.
_CLAIM_WITH_REPLY = """
local v = redis.call('HMGET', KEYS[2], 'gen', 'rev')
if v[1] ~= ARGV[4] or (v[2] or '') ~= ARGV[5] then return {-1, v[2]} end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('XADD', KEYS[3], '*', 'r', ARGV[3])
  return {1}
end
return {0, redis.call('GET', KEYS[1])}
"""

_BY_CLIENT: dict[int, CallbackScripts] = {}


class CallbackScripts:
    """The callback's scripts registered on one Redis client (``of``), and the plain
    commands on the same retry key."""

    __slots__ = ("redis", "_claim", "_buffer_and_keep", "_claim_with_reply")

    def __init__(self, r: Redis):
        self.redis = r
        self._claim = r.register_script(_CLAIM)
        self._buffer_and_keep = r.register_script(_BUFFER_AND_KEEP)
        self._claim_with_reply = r.register_script(_CLAIM_WITH_REPLY)

    @classmethod
    def of(cls, r: Redis) -> CallbackScripts:
        """The scripts on ``r`` (registered once per client; registering sends nothing)."""
        found = _BY_CLIENT.get(id(r))
        if found is None or found.redis is not r:
            found = _BY_CLIENT[id(r)] = cls(r)
        return found

    def claim_and_read_markers(
        self, retry_key: str, ttl: int, brand_id: int
    ) -> tuple[bool, bytes | None, bytes | None]:
        """Set the retry key to IN_FLIGHT unless it exists and read the brand's markers:
        (whether it was set now, generation marker, chatbot revision)."""
        first, gen, rev = run_script(
            self.redis, self._claim, [retry_key, brand_cache.hash_key(brand_id)], [IN_FLIGHT, ttl]
        )
        return bool(first), gen, rev

    def buffer_record_and_keep_reply(self, record: dict, retry_key: str, xml: str | None) -> None:
        """Append the delivery's record to the brand's stream and keep its reply (if any)
        on the retry key for WeChat's retries."""
        stream = inbound.stream_key(record["brand_id"])
        args = [inbound.encode(record), xml or ""]
        run_script(self.redis, self._buffer_and_keep, [stream, retry_key], args)

    def claim_with_reply_if_unchanged(
        self,
        retry_key: str,
        *,
        ttl: int,
        xml: str | None,
        record: dict,
        gen: str,
        chatbot_rev: str,
    ) -> tuple[int, bytes | None]:
        """For a reply computed ahead of the retry check: when the brand's generation marker
        and chatbot revision are still ``gen`` and ``chatbot_rev``, set the retry key to the
        reply and buffer the record. (1, None) when done; (0, reply kept by the first
        delivery) for a retry; (-1, current chatbot revision) when the brand or its chatbot
        changed, and nothing was written."""
        brand_id = record["brand_id"]
        status, *value = run_script(
            self.redis,
            self._claim_with_reply,
            [retry_key, brand_cache.hash_key(brand_id), inbound.stream_key(brand_id)],
            [xml or IN_FLIGHT, ttl, inbound.encode(record), gen, chatbot_rev],
        )
        return status, value[0] if value else None

    def kept_reply(self, retry_key: str) -> bytes | None:
        """What the retry key holds: the first delivery's reply, IN_FLIGHT, or None."""
        return self.redis.get(retry_key)

    def keep_reply(self, retry_key: str, xml: str) -> None:
        """Keep the reply for retries on a claimed retry key (after the handlers' commit)."""
        self.redis.set(retry_key, xml.encode(), xx=True, keepttl=True)

    def release(self, retry_key: str) -> None:
        """Drop the retry key, so WeChat's retry is handled afresh."""
        self.redis.delete(retry_key)
