"""Flash sales: a quantity of one SKU at a price in a time window, with a limit per member,
sold exactly once per unit however many buyers press at once.

The first decision is Redis's: one Lua script checks the units left and the member's count
and takes both at once, so the buyers who cannot have a unit are answered without touching
PostgreSQL. The winners then confirm in PostgreSQL in the checkout's transaction:
``UPDATE shop_flash_sale SET sold = sold + n WHERE ... AND sold + n <= quantity`` (the
table's CHECK says the same), the member's limit over their reservations, and the stock
reservation. If PostgreSQL refuses, or the transaction does not commit, Redis is given the
units back (``shop.txhooks``). An unpaid reservation returns its units to PostgreSQL in the
release's transaction and to Redis after it commits, exactly once (the release is a
conditional state change only one caller wins).

Keys carry the brand in a hash tag. A lost Redis state (flushed, restarted) is rebuilt from
PostgreSQL by the first buyer who finds it missing; PostgreSQL's conditional UPDATE keeps
the sale from overselling whatever Redis says. Redis unreachable answers 503 (the app's
handler of Redis connection errors): no sale without the gate.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text

from core.db import db, utcnow
from core.errors import Conflict
from core.redis import get_redis, key, run_script
from core.tenancy import require_brand_id
from shop import txhooks
from shop.models import RES_CONFIRMED, RES_HELD, FlashSale, Reservation

TAKE = """
local left = redis.call('GET', KEYS[1])
if not left then return -1 end
local n = tonumber(ARGV[2])
if tonumber(left) < n then return 0 end
local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if mine + n > tonumber(ARGV[3]) then return -2 end
redis.call('DECRBY', KEYS[1], n)
redis.call('HINCRBY', KEYS[2], ARGV[1], n)
return 1
"""
BUILD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[1]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[1]))
return 1
"""
GIVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('INCRBY', KEYS[1], ARGV[2])
local mine = redis.call('HINCRBY', KEYS[2], ARGV[1], -tonumber(ARGV[2]))
if mine <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
return 1
"""
KEEP_AFTER_END = dt.timedelta(days=1)
_SCRIPTS: dict[int, tuple] = {}


class SoldOut(Conflict):
    code = "sold_out"


class LimitReached(Conflict):
    code = "limit_reached"


def _scripts():
    r = get_redis()
    found = _SCRIPTS.get(id(r))
    if found is None or found[0] is not r:
        found = (r, r.register_script(TAKE), r.register_script(BUILD), r.register_script(GIVE))
        _SCRIPTS[id(r)] = found
    return found


def redis_keys(brand_id: int, sale_id: int) -> list[str]:
    return [key(brand_id, "flash", sale_id, "left"), key(brand_id, "flash", sale_id, "members")]


def rebuild(sale: FlashSale) -> bool:
    """Write the sale's Redis state from PostgreSQL if it is missing (units left and each
    member's held or paid units); False when another buyer had already written it."""
    held = db.session.execute(
        select(Reservation.member_id, func.sum(Reservation.quantity))
        .where(
            Reservation.flash_sale_id == sale.id,
            Reservation.status.in_((RES_HELD, RES_CONFIRMED)),
            Reservation.member_id.is_not(None),
        )
        .group_by(Reservation.member_id)
    ).all()
    sold = db.session.execute(
        text("SELECT sold FROM shop_flash_sale WHERE id = :id"), {"id": sale.id}
    ).scalar_one()
    ttl = max(60, int((sale.ends_at + KEEP_AFTER_END - utcnow()).total_seconds()))
    args: list = [ttl, max(0, sale.quantity - int(sold))]
    for member_id, n in held:
        args += [member_id, int(n)]
    r, _take, build, _give = _scripts()
    return bool(run_script(r, build, redis_keys(require_brand_id(), sale.id), args))


def _give_back(brand_id: int, sale_id: int, member_id: int, quantity: int) -> None:
    r, _take, _build, give = _scripts()
    run_script(r, give, redis_keys(brand_id, sale_id), [member_id, quantity])


def take(sale: FlashSale, *, member_id: int, quantity: int) -> None:
    """Redis's decision: take ``quantity`` units for the member or raise SoldOut /
    LimitReached. The units go back to Redis if the transaction does not commit."""
    brand_id = require_brand_id()
    r, take_script, _build, _give = _scripts()
    keys = redis_keys(brand_id, sale.id)
    args = [member_id, quantity, sale.per_member_limit]
    answer = run_script(r, take_script, keys, args)
    if answer == -1:
        rebuild(sale)
        answer = run_script(r, take_script, keys, args)
    if answer == 0 or answer == -1:
        raise SoldOut(_l("Sold out."), field="quantity")
    if answer == -2:
        raise LimitReached(
            _l("At most %(n)d per member in this flash sale.", n=sale.per_member_limit),
            field="quantity",
        )
    txhooks.on_rollback(lambda: _give_back(brand_id, sale.id, member_id, quantity))


_CONFIRM = text(
    "UPDATE shop_flash_sale SET sold = sold + :n, updated_at = :now"
    " WHERE id = :id AND brand_id = :b AND active AND sold + :n <= quantity RETURNING sold"
)
_RETURN = text(
    "UPDATE shop_flash_sale SET sold = sold - :n, updated_at = :now"
    " WHERE id = :id AND brand_id = :b AND sold >= :n RETURNING sold"
)


def confirm(sale: FlashSale, *, member_id: int, quantity: int, order_id: int) -> None:
    """PostgreSQL's decision, in the checkout's transaction (after ``take``): the member's
    limit over their other orders' reservations (the caller serialises the member's
    checkouts), then the units by a conditional UPDATE."""
    mine = db.session.execute(
        select(func.coalesce(func.sum(Reservation.quantity), 0)).where(
            Reservation.flash_sale_id == sale.id,
            Reservation.member_id == member_id,
            Reservation.order_id != order_id,
            Reservation.status.in_((RES_HELD, RES_CONFIRMED)),
        )
    ).scalar_one()
    if int(mine) + quantity > sale.per_member_limit:
        raise LimitReached(
            _l("At most %(n)d per member in this flash sale.", n=sale.per_member_limit),
            field="quantity",
        )
    won = db.session.execute(
        _CONFIRM, {"n": quantity, "now": utcnow(), "id": sale.id, "b": require_brand_id()}
    ).scalar()
    if won is None:
        raise SoldOut(_l("Sold out."), field="quantity")


def give_back(*, sale_id: int, member_id: int | None, quantity: int) -> None:
    """An unpaid reservation's units return to the sale: PostgreSQL now, Redis after the
    commit. Call once, from the release that won."""
    brand_id = require_brand_id()
    db.session.execute(_RETURN, {"n": quantity, "now": utcnow(), "id": sale_id, "b": brand_id})
    if member_id is not None:
        txhooks.on_commit(lambda: _give_back(brand_id, sale_id, member_id, quantity))


def forget(sale_id: int) -> None:
    """After the commit, drop the sale's Redis state: the next buyer rebuilds it from
    PostgreSQL with the sale as edited (its end, its units). Buyers in flight meanwhile are
    still held by PostgreSQL's conditional UPDATE and the member's limit check."""
    brand_id = require_brand_id()
    txhooks.on_commit(lambda: get_redis().delete(*redis_keys(brand_id, sale_id)))


def remaining(sale_id: int) -> int | None:
    """Units Redis still offers (None: not loaded)."""
    value = get_redis().get(redis_keys(require_brand_id(), sale_id)[0])
    return None if value is None else int(value)
