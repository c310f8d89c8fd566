"""Fixed-window rate limits and lockouts in Redis."""

from __future__ import annotations

from core.redis import get_redis, key


def hit(brand_id: int | None, name: str, ident: str, *, limit: int, window: int) -> bool:
    """Count one attempt; True while the count in the current window is within ``limit``."""
    r = get_redis()
    k = key(brand_id, "rl", name, ident)
    pipe = r.pipeline()
    # SET NX EX opens the window; not EXPIRE NX, which the Redis 6.2 of `make run` lacks.
    pipe.set(k, 0, ex=window, nx=True)
    pipe.incr(k)
    _, count = pipe.execute()
    return int(count) <= limit


_HIT_EACH = """
for i, k in ipairs(KEYS) do
  redis.call('SET', k, 0, 'EX', ARGV[2 * i], 'NX')
  if redis.call('INCR', k) > tonumber(ARGV[2 * i - 1]) then return i end
end
return 0
"""
_SCRIPT: list = []  # the registered script, made with the first client


def hit_each(brand_id: int | None, checks: list[tuple[str, str, int, int]]) -> int:
    """``hit`` of each (name, ident, limit, window) in order, stopping at the first over its
    limit, in one round trip (the keys share the brand's slot): 0 when every one is within
    its limit, else the 1-based position of the one that is not."""
    r = get_redis()
    if not _SCRIPT:
        _SCRIPT.append(r.register_script(_HIT_EACH))
    keys = [key(brand_id, "rl", name, ident) for name, ident, _limit, _window in checks]
    args = [v for _name, _ident, limit, window in checks for v in (limit, window)]
    return int(_SCRIPT[0](keys=keys, args=args, client=r))


def count(brand_id: int | None, name: str, ident: str) -> int:
    value = get_redis().get(key(brand_id, "rl", name, ident))
    return int(value or 0)


def clear(brand_id: int | None, name: str, ident: str) -> None:
    get_redis().delete(key(brand_id, "rl", name, ident))
