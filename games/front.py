"""The mini-program's play (``POST /api/mp/<brand_slug>/games/<id>/draws``) served ahead of
Flask's request pipeline.

A game campaign draws its players in bursts (a push, a poster in every store), and Flask's
pipeline alone (URL matching, the cookie session, Flask-Login, CSRF, every app-wide hook)
costs about as much CPU as answering the play itself. So the usual request, a well-formed
play of an activated member with a valid session, is answered here, in an app context:

- the brand from ``wechat.brand_cache`` (its generation marker: one HGET), the session's
  openid (one GET), the member as a light row kept ``MEMBER_TTL`` seconds per process;
  a token seen before in this process skips that round trip: its brand and openid are kept,
  and the play's script checks the marker and the session first (``games.live.Guard``),
  so a logout or an operator's change is still seen at the next play;
- the campaign and its prizes kept per process under the brand's generation marker
  (``wechat.brand_settings``: an operator's change is seen at the next request), whether the
  member may play it (staff, tiers, stores, tags) kept ``MEMBER_TTL`` seconds;
- the draw id from a block reserved from its sequence (``ID_BLOCK`` at a time);
- the play decided by ``games.services.play_decided``: one Redis script; a play paid with an
  extra play or points, and a replay, are written to PostgreSQL in the request.

Anything else goes on to Flask's own route, which answers it fully (an unknown brand, a
missing or expired session, a member not activated, a body that is not exactly
``{"request_key": "..."}``, an unknown campaign). A refusal of the play itself (ended, over
the limits, no points, rate limited, Redis lost) is answered by the app's error handlers as
on Flask's route.
"""

from __future__ import annotations

import collections
import datetime as dt
import io
import json
import re
import threading
import time
import types

from flask import Flask, g
from sqlalchemy import select, text

from core.db import db, utcnow
from core.jobs import relay_committed
from core.logs import request_id
from core.metrics import record_request
from core.tenancy import use_brand
from games import live
from games.models import CHANCE_KINDS, GameCampaign, GamePrize
from members.models import ACTIVE
from wechat import brand_cache, brand_settings, wire

RULE = "/api/mp/<brand_slug>/games/<int:campaign_id>/draws"
_PATH = re.compile(r"^/api/mp/([A-Za-z0-9_-]{1,64})/games/([1-9][0-9]{0,17})/draws$")
MAX_BODY = 1024
MEMBER_TTL = 30.0
ID_BLOCK = 100
_CAMPAIGN_FIELDS = (
    "id", "brand_id", "kind", "status", "name", "seed", "starts_at", "ends_at", "cost_points",
    "free_per_day", "plays_per_day", "plays_total", "wins_per_day", "wins_total", "budget_fen",
    "tier_ids", "store_ids", "tag_ids",
)  # fmt: skip
_PRIZE_FIELDS = (
    "id", "weight", "name", "kind", "value_fen", "stock", "daily_cap", "fallback_prize_id",
    "coupon_template_id", "points",
)  # fmt: skip


class _Players:
    """(campaign, brand generation, brand, openid) -> the member as a light row and why they
    may not play the campaign (None: they may), kept ``MEMBER_TTL`` seconds; read in one
    statement with the member's counters in the campaign (handed to the play's script, which
    uses them only if Redis has none)."""

    def __init__(self) -> None:
        self.rows: dict = {}

    def get(self, campaign, brand_id: int, openid: str):
        """(member or None, reason, the member's counters when read now)."""
        k = (campaign.id, campaign.gen, brand_id, openid)
        found = self.rows.get(k)
        if found is not None and found[0] > time.monotonic():
            return found[1], found[2], None
        from games import services

        tags = list(campaign.tag_ids or [])
        params = {"b": brand_id, "v": openid, "c": campaign.id, "tags": tags}
        with _reading() as conn:
            found_row = _driver(conn).execute(_PLAYER, params, prepare=True).fetchone()
        member, reason, counters = None, None, None
        if found_row is not None:
            row = types.SimpleNamespace(**dict(zip(_PLAYER_COLUMNS, found_row, strict=True)))
            member = types.SimpleNamespace(**{f: getattr(row, f) for f in _MEMBER_FIELDS})
            reason = services.ineligible_reason(
                campaign, member, staff=row.staff, tagged=row.tagged
            )
            counters = live.player_fields(row)
        if len(self.rows) > 100_000:
            self.rows.clear()
        self.rows[k] = (time.monotonic() + MEMBER_TTL, member, reason)
        return member, reason, counters


_MEMBER_FIELDS = (
    "id", "brand_id", "status", "phone", "created_at", "activated_at", "tier_id", "store_id",
)  # fmt: skip
_PLAYER_COLUMNS = (
    *_MEMBER_FIELDS, "staff", "tagged", "day", "plays_day", "wins_day", "free_used_day",
    "plays_total", "wins_total",
)  # fmt: skip
# The member of an openid, whether they are staff or have one of the campaign's tags, and
# their counters in the campaign, in one statement (sent to the driver as it is: prepared
# per connection, its rows plain tuples).
_PLAYER = (
    "SELECT m.id, m.brand_id, m.status, m.phone, m.created_at, m.activated_at, m.tier_id,"
    " m.store_id,"
    " (m.phone IS NOT NULL AND EXISTS (SELECT 1 FROM staff s"
    "  WHERE s.brand_id = m.brand_id AND s.phone = m.phone)) AS staff,"
    " EXISTS (SELECT 1 FROM member_tag t WHERE t.member_id = m.id"
    "  AND t.tag_id = ANY(CAST(%(tags)s AS bigint[]))) AS tagged,"
    " p.day, p.plays_day, p.wins_day, p.free_used_day, p.plays_total, p.wins_total"
    " FROM member_identity i JOIN member m ON m.id = i.member_id"
    " LEFT JOIN game_player p ON p.campaign_id = %(c)s AND p.member_id = m.id"
    " WHERE i.brand_id = %(b)s AND i.kind = 'mp_openid' AND i.value = %(v)s"
)


class _Sessions:
    """(slug, bearer token) -> (brand id, openid) of sessions this process has read; the
    play's script checks them again (``games.live.Guard``)."""

    MAX = 100_000

    def __init__(self) -> None:
        self.rows: dict = {}

    def get(self, slug: str, token: str):
        found = self.rows.get((slug, token))
        if found is None:
            return None
        brand = brand_cache.kept(slug)
        if brand is None or brand.id != found[0]:
            return None
        return brand, found[1]

    def keep(self, slug: str, token: str, brand_id: int, openid: str) -> None:
        if len(self.rows) >= self.MAX:
            self.rows.clear()
        self.rows[(slug, token)] = (brand_id, openid)

    def drop(self, slug: str, token: str) -> None:
        self.rows.pop((slug, token), None)


def _reading():
    """A pooled connection in autocommit for the front's single-statement reads: the
    statement alone goes to PostgreSQL (no BEGIN before it, no ROLLBACK when the request
    ends), and the request's session stays unused."""
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def _driver(conn):
    """The driver's own connection under ``conn`` (psycopg)."""
    return conn.connection.driver_connection


_ID_BLOCK = text(
    "SELECT nextval(pg_get_serial_sequence('game_draw', 'id')) FROM generate_series(1, :n)"
)


class _DrawIds:
    """Draw ids reserved from ``game_draw``'s sequence, ``ID_BLOCK`` at a time (unused ones
    are gaps, as a rolled-back play's are)."""

    def __init__(self) -> None:
        self.ids: collections.deque = collections.deque()
        self.lock = threading.Lock()

    def next(self) -> int:
        with self.lock:
            if not self.ids:
                with _reading() as conn:
                    self.ids.extend(conn.execute(_ID_BLOCK, {"n": ID_BLOCK}).scalars())
            return self.ids.popleft()


def _load_campaign(campaign_id: int, brand_id: int):
    campaign = db.session.get(GameCampaign, campaign_id)
    if campaign is None or campaign.brand_id != brand_id or campaign.kind not in CHANCE_KINDS:
        return None
    prizes = db.session.scalars(
        select(GamePrize).where(GamePrize.campaign_id == campaign_id).order_by(GamePrize.position)
    )
    return (
        {f: getattr(campaign, f) for f in _CAMPAIGN_FIELDS},
        tuple({f: getattr(p, f) for f in _PRIZE_FIELDS} for p in prizes),
    )


def _campaign(campaign_id: int, brand: brand_cache.BrandKeys):
    found = brand_settings.get(
        f"game-campaign:{campaign_id}", lambda: _load_campaign(campaign_id, brand.id)
    )
    if found is None:
        return None, None
    values, prizes = found
    campaign = types.SimpleNamespace(**values, gen=brand.gen)
    return campaign, [types.SimpleNamespace(**p) for p in prizes]


def _request_key(body: bytes) -> str | None:
    """The request key of a body that is exactly ``{"request_key": "<1-100 printable>"}``."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or len(data) != 1:
        return None
    value = data.get("request_key")
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 100:
        return None
    if not value.isprintable():
        return None
    return value


def _answer(fields: dict) -> wire.Answer:
    from games.api import DrawOut

    out = DrawOut(
        draw_id=fields["id"],
        won=fields.get("prize_id") is not None,
        prize_id=fields.get("prize_id"),
        slot_prize_id=fields.get("slot_prize_id"),
        prize_name=fields.get("prize_name", ""),
        kind=fields.get("prize_kind", "none"),
        status=fields["status"],
        paid_with=fields["paid_with"],
        points_spent=fields.get("points_spent", 0),
        created_at=dt.datetime.fromisoformat(fields["created_at"]),
    )
    answer = wire.Answer(out.model_dump_json(), 200, "application/json")
    answer.headers.append(("X-Content-Type-Options", "nosniff"))
    return answer


class DrawFront:
    """The WSGI front of the mini-program's play; every other request goes on to Flask."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self.players = _Players()
        self.sessions = _Sessions()
        self.ids = _DrawIds()

    def __call__(self, environ, start_response):
        found = _PATH.match(environ.get("PATH_INFO", ""))
        if found is None or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        length = wire.get_content_length(environ)
        json_body = environ.get("CONTENT_TYPE", "").startswith("application/json")
        if length is None or length > MAX_BODY or not json_body:
            return self.wsgi_app(environ, start_response)
        body = wire.get_input_stream(environ).read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # what Flask's route reads if it answers
        environ["CONTENT_LENGTH"] = str(len(body))
        started = time.perf_counter()
        app = self.app
        with app.app_context():
            g.request_id = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
            req = wire.WireRequest(environ)
            try:
                response = self.serve(environ, found[1], int(found[2]), body)
            except Exception as exc:
                with wire.request_context(req):
                    db.session.rollback()
                    try:
                        response = app.make_response(app.handle_user_exception(exc))
                    except Exception as unhandled:
                        response = app.handle_exception(unhandled)
            if response is not None:
                if db.session.registry.has():
                    relay_committed()
                if isinstance(response, wire.Answer):
                    response.headers.append(("X-Request-ID", g.request_id))
                else:
                    response.headers["X-Request-ID"] = g.request_id
                    response.headers.setdefault("X-Content-Type-Options", "nosniff")
                record_request("POST", RULE, response.status_code, time.perf_counter() - started)
        if response is None:  # Flask's route answers it
            environ["wsgi.input"].seek(0)
            return self.wsgi_app(environ, start_response)
        return response(environ, start_response)

    def serve(self, environ, slug: str, campaign_id: int, body: bytes) -> wire.Answer | None:
        request_key = _request_key(body)
        header = environ.get("HTTP_AUTHORIZATION", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if request_key is None or not token:
            return None
        from members import api as mp

        kept = self.sessions.get(slug, token)
        if kept is not None:
            brand, openid = kept
            brand_cache.remember(brand)
            guard = live.Guard(
                brand_cache.hash_key(brand.id), brand.gen, mp.session_key(brand.id, token)
            )
            try:
                return self.play(environ, brand, openid, campaign_id, request_key, guard)
            except live.Stale:
                self.sessions.drop(slug, token)
        brand, answers = brand_cache.current_with(
            slug, lambda brand_id, pipe: pipe.get(mp.session_key(brand_id, token))
        )
        if brand is None:
            return None
        session = mp.parse_session(answers[0], brand.id)
        if session is None:
            return None
        self.sessions.keep(slug, token, brand.id, session["openid"])
        return self.play(environ, brand, session["openid"], campaign_id, request_key, None)

    def play(self, environ, brand, openid: str, campaign_id: int, request_key: str, guard):
        from games import services

        with use_brand(brand.id):
            campaign, prizes = _campaign(campaign_id, brand)
            if campaign is None:
                return None
            member, reason, counters = self.players.get(campaign, brand.id, openid)
            if member is None or member.status != ACTIVE or not member.activated_at:
                return None
            if not member.phone:
                return None
            fields, written = services.play_decided(
                campaign=campaign,
                member=member,
                prizes=prizes,
                request_key=request_key,
                ip=_remote_addr(environ),
                eligible_reason=reason,
                draw_id=self.ids.next(),
                now=utcnow(),
                player_init=counters,
                guard=guard,
            )
            if written:
                db.session.commit()
            return _answer(fields)


def _remote_addr(environ) -> str | None:
    return environ.get("REMOTE_ADDR")


def init_app(app: Flask) -> None:
    brand_settings.watch(GameCampaign, GamePrize)
    app.wsgi_app = DrawFront(app, app.wsgi_app)
