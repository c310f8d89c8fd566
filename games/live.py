"""The live counters of a chance campaign in Redis, and the one script that decides a play.

A play of a wheel, scratch card or nine-grid is decided by ``DECIDE`` in one atomic step:
the member's limits (plays per day and in total, free plays of the day, wins per day and in
total), the drawn prize's stock, daily cap and the campaign's budget, the fallbacks, the
member's counters, the replay key, and the draw's record appended to the brand's stream of
plays. Nothing else counts plays or prizes while a campaign is live: PostgreSQL's counters
(``game_player``, ``game_prize.awarded``, ``game_prize_day``, ``game_campaign.spent_fen``)
are the sum of the recorded draws, written from the stream by ``games.ledger``.

Keys (all in the brand's slot, ``core.redis.key``; none is evicted: Redis must run with
``maxmemory-policy noeviction``, and the stream and the counters are kept or lost together):

- ``game:<campaign>:state`` (hash): ``init``; ``aw:<prize>``: units given of a prize with
  stock; ``d:<prize>:<day>``: units given that brand-local day of a prize with a daily cap;
  ``spent``: the value given (fen) of a campaign with a budget. Loaded from PostgreSQL when
  missing (``load_state``), kept 30 days after the campaign's end.
- ``game:<campaign>:p:<member>`` (hash): ``init``, ``day``, ``pd`` plays that day, ``wd``
  wins that day, ``fd`` free plays used that day, ``pt`` plays in total, ``wt`` wins in
  total. Loaded from the member's ``game_player`` row when missing, kept 7 days after the
  campaign's end.
- ``game:<campaign>:k:<member>:<request key>``: the outcome of that play (a replay answers
  it), kept a day (after that, the recorded draw answers: ``games.services.play`` reads it).
- ``game:draws`` (stream): the plays decided and not yet written to PostgreSQL.

Extra plays and points are not counted here: a play the member's free plays do not cover is
paid first in PostgreSQL (an extra play or points, in the play's transaction), then decided
with ``pay`` set to how it was paid.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging

import redis
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from core.db import db, savepoint_event
from core.redis import get_redis, key, run_script

log = logging.getLogger(__name__)

STATE_KEEP = dt.timedelta(days=30)
PLAYER_KEEP = dt.timedelta(days=7)
REPLAY_KEEP = dt.timedelta(days=1)

DECIDE = """
local req = cjson.decode(ARGV[1])
if req.guard and (redis.call('HGET', KEYS[7], 'gen') ~= req.guard
    or redis.call('EXISTS', KEYS[8]) == 0) then
  return '{"r":"stale"}'
end
local seen = redis.call('GET', KEYS[3])
if seen then return '{"r":"replay","draw":' .. seen .. '}' end
if redis.call('HEXISTS', KEYS[1], 'init') == 0 then return '{"r":"load_state"}' end
if redis.call('HEXISTS', KEYS[2], 'init') == 0 then
  local i = req.player_init
  if not i then return '{"r":"load_player"}' end
  redis.call('HSET', KEYS[2], 'init', 1, 'day', i.day, 'pd', i.pd, 'wd', i.wd, 'fd', i.fd,
    'pt', i.pt, 'wt', i.wt)
end
local ipn = 0
if req.rate.count then
  redis.call('SET', KEYS[5], 0, 'EX', req.rate.member_window, 'NX')
  if redis.call('INCR', KEYS[5]) > req.rate.member_limit then return '{"r":"rate_member"}' end
  if req.rate.ip then
    redis.call('SET', KEYS[6], 0, 'EX', req.rate.ip_window, 'NX')
    ipn = redis.call('INCR', KEYS[6])
    if ipn > req.rate.ip_limit then return '{"r":"rate_ip","ipn":' .. ipn .. '}' end
  end
end
local p = redis.call('HMGET', KEYS[2], 'day', 'pd', 'wd', 'fd', 'pt', 'wt')
local same = p[1] == req.day
local pd, wd, fd = 0, 0, 0
if same then pd, wd, fd = tonumber(p[2]), tonumber(p[3]), tonumber(p[4]) end
local pt, wt = tonumber(p[5]), tonumber(p[6])
if req.plays_total >= 0 and pt >= req.plays_total then
  return '{"r":"limit_total","ipn":' .. ipn .. '}'
end
if req.plays_per_day >= 0 and pd >= req.plays_per_day then
  return '{"r":"limit_day","ipn":' .. ipn .. '}'
end
local paid, free = req.pay, 0
if paid == 'auto' then
  if req.free_game then
    paid = 'free'
  elseif fd < req.free_per_day then
    paid, free = 'free', 1
  else
    return '{"r":"pay","ipn":' .. ipn .. '}'
  end
end
local win_ok = (req.wins_per_day < 0 or wd < req.wins_per_day)
  and (req.wins_total < 0 or wt < req.wins_total)
local draw = req.draw
local fallbacks = {}
local final, won = nil, false
for _, prize in ipairs(req.chain) do
  if prize.none then
    final = prize
    break
  end
  local reason = nil
  local aw = 'aw:' .. prize.id
  local day = 'd:' .. prize.id .. ':' .. req.day
  if not req.activated then
    reason = 'not_activated'
  elseif not win_ok then
    reason = 'win_limit'
  elseif prize.stock >= 0 and tonumber(redis.call('HGET', KEYS[1], aw) or '0') >= prize.stock then
    reason = 'stock'
  elseif prize.cap >= 0 and tonumber(redis.call('HGET', KEYS[1], day) or '0') >= prize.cap then
    reason = 'daily_cap'
  elseif req.budget >= 0 and prize.value > 0
    and tonumber(redis.call('HGET', KEYS[1], 'spent') or '0') + prize.value > req.budget then
    reason = 'budget'
  end
  if reason == nil then
    if prize.stock >= 0 then
      redis.call('HINCRBY', KEYS[1], aw, 1)
      draw.took_stock = 1
    end
    if prize.cap >= 0 then
      redis.call('HINCRBY', KEYS[1], day, 1)
      draw.took_day = 1
    end
    if req.budget >= 0 and prize.value > 0 then
      redis.call('HINCRBY', KEYS[1], 'spent', prize.value)
      draw.took_budget = 1
    end
    final, won = prize, true
    break
  end
  table.insert(fallbacks, {prize.id, reason})
end
if won then wd, wt = wd + 1, wt + 1 end
redis.call('HSET', KEYS[2], 'day', req.day, 'pd', pd + 1, 'wd', wd, 'fd', fd + free,
  'pt', pt + 1, 'wt', wt)
redis.call('PEXPIRE', KEYS[2], req.player_ms)
draw.paid_with = paid
draw.free = free
draw.fallbacks = fallbacks
draw.won = won
if final then
  draw.slot_prize_id = final.id
  draw.prize_name = final.name
  if won then
    draw.prize_id = final.id
    draw.prize_kind = final.kind
    draw.value_fen = final.value
  end
end
if won and final.kind == 'gift' then
  draw.status = 'awaiting_address'
elseif won then
  draw.status = 'pending_grant'
else
  draw.status = 'lost'
end
local out = cjson.encode(draw)
redis.call('SET', KEYS[3], out, 'PX', req.replay_ms)
local sid = redis.call('XADD', KEYS[4], '*', 'd', out)
return '{"r":"ok","ipn":' .. ipn .. ',"sid":"' .. sid .. '","draw":' .. out .. '}'
"""

# Fill a missing hash from PostgreSQL's figures, unless another process did it first.
INIT = """
if redis.call('HEXISTS', KEYS[1], 'init') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'init', 1, unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

_SCRIPTS: dict[str, object] = {}


def _script(name: str):
    found = _SCRIPTS.get(name)
    if found is None:
        found = _SCRIPTS[name] = get_redis().register_script(globals()[name])
    return found


def state_key(brand_id: int, campaign_id: int) -> str:
    return key(brand_id, "game", campaign_id, "state")


def player_key(brand_id: int, campaign_id: int, member_id: int) -> str:
    return key(brand_id, "game", campaign_id, "p", member_id)


def replay_key(brand_id: int, campaign_id: int, member_id: int, request_key: str) -> str:
    return key(brand_id, "game", campaign_id, "k", member_id, request_key)


def stream_key(brand_id: int) -> str:
    return key(brand_id, "game", "draws")


class Stale(Exception):
    """The play's guard failed: the brand's marker moved on or the session is gone; nothing
    was changed (the caller reads both again and retries)."""


@dataclasses.dataclass(frozen=True)
class Guard:
    """What a caller that kept the brand and the session in its process checks in the play's
    script: the brand's marker (``marker_key``'s ``gen``) still ``gen``, the session key still
    there. A play decided on stale snapshots is refused before anything is counted."""

    marker_key: str
    gen: str
    session_key: str


@dataclasses.dataclass(frozen=True)
class ChainPrize:
    """A prize on the way from the drawn one along its fallbacks, as the script needs it."""

    id: int
    name: str
    kind: str
    value: int  # fen
    stock: int  # -1: unlimited
    cap: int  # -1: no daily cap
    none: bool  # "thanks for playing": given without counting


@dataclasses.dataclass(frozen=True)
class Limits:
    """The campaign's rules the script applies (-1: no limit)."""

    plays_per_day: int
    plays_total: int
    free_per_day: int
    wins_per_day: int
    wins_total: int
    budget: int
    free_game: bool  # no cost and no free allowance: only the limits count


@dataclasses.dataclass(frozen=True)
class Rate:
    """The play's rate limits, counted in the script (``count``: this call counts the
    attempt; the call after a payment does not). Keys are ``core.ratelimit``'s."""

    member_key: str
    member_limit: int
    member_window: int
    ip_key: str | None
    ip_limit: int
    ip_window: int
    count: bool


def _ms(delta: dt.timedelta) -> int:
    return max(int(delta.total_seconds() * 1000), 60_000)


def decide(
    *,
    brand_id: int,
    campaign_id: int,
    member_id: int,
    request_key: str,
    day: dt.date,
    pay: str,
    limits: Limits,
    activated: bool,
    chain: list[ChainPrize],
    record: dict,
    rate: Rate,
    ends_at: dt.datetime,
    now: dt.datetime,
    player_init: dict | None = None,
    guard: Guard | None = None,
) -> dict:
    """Run the play's script once: ``{"r": "ok", "sid": <stream id>, "draw": {...}}``, or
    ``{"r": reason}`` (``replay`` with the earlier ``draw``, ``load_state``,
    ``load_player``, ``rate_member``, ``rate_ip``, ``limit_total``, ``limit_day``, ``pay``);
    ``ipn``: the attempts of the network address in its window, when counted.
    ``player_init``: the member's counters read from PostgreSQL in this request
    (``player_fields``), used when Redis has none. ``guard``: checked first (``Stale``)."""
    req = {
        "guard": guard.gen if guard is not None else False,
        "day": day.isoformat(),
        "pay": pay,
        **limits.__dict__,
        "activated": activated,
        "chain": [p.__dict__ for p in chain],
        "draw": record,
        "player_ms": _ms(ends_at - now + PLAYER_KEEP),
        "replay_ms": _ms(REPLAY_KEEP),
        "player_init": player_init or False,
        "rate": {
            "count": rate.count,
            "member_limit": rate.member_limit,
            "member_window": rate.member_window,
            "ip": rate.ip_key is not None,
            "ip_limit": rate.ip_limit,
            "ip_window": rate.ip_window,
        },
    }
    keys = [
        state_key(brand_id, campaign_id),
        player_key(brand_id, campaign_id, member_id),
        replay_key(brand_id, campaign_id, member_id, request_key),
        stream_key(brand_id),
        rate.member_key,
        rate.ip_key or rate.member_key,
    ]
    if guard is not None:
        keys += [guard.marker_key, guard.session_key]
    raw = run_script(get_redis(), _script("DECIDE"), keys, [json.dumps(req)])
    decision = json.loads(raw)
    if decision["r"] == "stale":
        raise Stale()
    return decision


def _init(hash_key: str, keep: dt.timedelta, fields: dict) -> None:
    args: list = [_ms(keep)]
    for name, value in fields.items():
        args += [name, value]
    run_script(get_redis(), _script("INIT"), [hash_key], args)


def load_state(*, brand_id: int, campaign_id: int, day: dt.date, ends_at, now) -> None:
    """Fill the campaign's counters from PostgreSQL (the recorded draws' sums)."""
    rows = db.session.execute(
        text(
            "SELECT p.id, p.stock, p.awarded, p.daily_cap, d.awarded AS today,"
            " c.spent_fen FROM game_campaign c JOIN game_prize p ON p.campaign_id = c.id"
            " LEFT JOIN game_prize_day d ON d.prize_id = p.id AND d.day = :day"
            " WHERE c.id = :c AND c.brand_id = :b"
        ),
        {"c": campaign_id, "b": brand_id, "day": day},
    ).all()
    fields: dict = {}
    for r in rows:
        fields["spent"] = r.spent_fen or 0
        if r.stock is not None:
            fields[f"aw:{r.id}"] = r.awarded
        if r.daily_cap is not None and r.today:
            fields[f"d:{r.id}:{day.isoformat()}"] = r.today
    _init(state_key(brand_id, campaign_id), ends_at - now + STATE_KEEP, fields)


def load_player(*, brand_id: int, campaign_id: int, member_id: int, ends_at, now) -> None:
    """Fill the member's counters in the campaign from their ``game_player`` row."""
    row = db.session.execute(
        text(
            "SELECT day, plays_day, wins_day, free_used_day, plays_total, wins_total"
            " FROM game_player WHERE campaign_id = :c AND member_id = :m AND brand_id = :b"
        ),
        {"c": campaign_id, "m": member_id, "b": brand_id},
    ).one_or_none()
    _init(
        player_key(brand_id, campaign_id, member_id),
        ends_at - now + PLAYER_KEEP,
        player_fields(row),
    )


def player_fields(row) -> dict:
    """The script's counters of a member from their ``game_player`` row (day, plays_day,
    wins_day, free_used_day, plays_total, wins_total; None: no row, all zero)."""
    if row is None or row.plays_total is None:
        return {"day": "", "pd": 0, "wd": 0, "fd": 0, "pt": 0, "wt": 0}
    return {
        "day": row.day.isoformat() if row.day else "",
        "pd": row.plays_day,
        "wd": row.wins_day,
        "fd": row.free_used_day,
        "pt": row.plays_total,
        "wt": row.wins_total,
    }


def stream_entries(brand_id: int, count: int, after: str | None = None) -> list[tuple[str, dict]]:
    """The oldest ``count`` plays of the brand's stream (after the stream id ``after``):
    (stream id, record)."""
    start = "-" if after is None else f"({after}"
    rows = get_redis().xrange(stream_key(brand_id), min=start, count=count)
    return [(sid.decode(), json.loads(fields[b"d"])) for sid, fields in rows]


def stream_ms(stream_id: str) -> int:
    """When a play entered the stream (milliseconds since the epoch)."""
    return int(stream_id.split("-", 1)[0])


def drop_stream_entries(brand_id: int, ids: list[str]) -> None:
    """Forget plays of the stream once their draws are in PostgreSQL."""
    if ids:
        get_redis().xdel(stream_key(brand_id), *ids)


_DONE = "games_stream_done"


def drop_after_commit(brand_id: int, stream_id: str) -> None:
    """Forget a play of the stream once the current transaction (which wrote its draw)
    commits; a rollback leaves it to ``games.jobs.record_plays``."""
    db.session.info.setdefault(_DONE, []).append((brand_id, stream_id))


_FORGET = "games_forget_players"


def forget_players_after_commit(brand_id: int, pairs: list[tuple[int, int]]) -> None:
    """Drop members' counters in Redis (``(campaign_id, member_id)``) once the current
    transaction commits: read again from PostgreSQL at their next play (after a merge
    changed their rows there)."""
    db.session.info.setdefault(_FORGET, []).extend((brand_id, c, m) for c, m in pairs)


@event.listens_for(Session, "after_commit")
def _written(session: Session) -> None:
    if savepoint_event(session):
        return
    forget = session.info.pop(_FORGET, None)
    if forget:
        get_redis().delete(*(player_key(b, c, m) for b, c, m in forget))
    done = session.info.pop(_DONE, None)
    if not done:
        return
    by_brand: dict[int, list[str]] = {}
    for brand_id, stream_id in done:
        by_brand.setdefault(brand_id, []).append(stream_id)
    try:
        for brand_id, ids in by_brand.items():
            drop_stream_entries(brand_id, ids)
    except redis.exceptions.RedisError:  # written already: the job finds them so and drops them
        log.warning("games: could not drop %d recorded plays from the stream", len(done))


@event.listens_for(Session, "after_soft_rollback")
def _not_written(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_DONE, None)
        session.info.pop(_FORGET, None)
