"""The mini-program API: ``/api/mp/<brand_slug>/...`` (JSON; documented at
``/api/mp/openapi.json``).

Sessions: ``POST login`` exchanges the ``wx.login()`` code (jscode2session) for an opaque
random token. Only its SHA-256 is a key in Redis, under the brand's hash tag, with the
openid, unionid and the WeChat ``session_key`` (encrypted with the data key; it never leaves
the server). The key carries the brand, so a token used on another brand's URL finds
nothing and answers 401, like a tampered or expired one.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask_babel import lazy_gettext as _l

from core import ratelimit
from core.api import api_operation, openapi_document
from core.crypto import encrypt
from core.db import db
from core.errors import AppError, Forbidden, NotFound, RateLimited, ValidationError
from core.redis import get_redis, key
from core.tenancy import reset_brand, set_brand
from core.validators import mask_phone
from members import identities, queries, store_locations, tillcode
from members import session as member_session
from members.activation import activate_member
from members.models import ACTIVE, Member, TierLevel
from members.schemas import (
    CardOut,
    GuideBrief,
    LoginRequest,
    LoginResponse,
    PhoneRequest,
    PhoneResponse,
    ProfileOut,
    ProfilePatch,
    ProgressOut,
    StoreBrief,
    StoreOut,
    StoresPage,
    StoresQuery,
    TierOut,
    TillCodeOut,
)
from members.tiers_tags import tiers
from wechat import brand_cache, gateway

bp = Blueprint("mp_api", __name__, url_prefix="/api/mp")
PREFIX = "/api/mp/{brand_slug}"
TOKEN_PREFIX = "mps_"  # noqa: S105 - a marker, not a secret
DEFAULT_SESSION_SECONDS = 2 * 24 * 3600
LOGIN_LIMIT = 30  # logins per minute per client address and brand


class Unauthorized(AppError):
    status = 401
    code = "invalid_session"


class WeChatFailed(AppError):
    status = 502
    code = "wechat_error"


class WeChatUnavailable(AppError):
    status = 503
    code = "wechat_unavailable"


# --- brand context and sessions ---------------------------------------------------------------


def _brand_from_url(_endpoint, values):
    slug = (values or {}).pop("brand_slug", None)
    if slug is None:
        return
    brand = brand_cache.current(slug)
    if brand is None:
        raise NotFound(_l("unknown brand"))
    g.mp_brand = brand
    g._mp_brand_token = set_brand(brand.id)


def _reset_brand(_exc):
    token = g.pop("_mp_brand_token", None)
    if token is not None:
        reset_brand(token)


def mp_blueprint(bp: Blueprint) -> Blueprint:
    """Bind a mini-program API blueprint (``/api/mp/<brand_slug>/...`` routes) to the brand of
    its URL; other packages add their operations to the API this way::

        bp = mp_blueprint(Blueprint("points_mp", __name__, url_prefix="/api/mp/<brand_slug>"))

    and document them with ``core.api.api_operation("mp", ...)``; register with ``init_app``.
    """
    bp.url_value_preprocessor(_brand_from_url)
    bp.teardown_request(_reset_brand)
    return bp


mp_blueprint(bp)


def _session_seconds() -> int:
    return int(current_app.config.get("MP_SESSION_SECONDS", DEFAULT_SESSION_SECONDS))


def _session_key(brand_id: int, token: str) -> str:
    return key(brand_id, "mp-session", hashlib.sha256(token.encode()).hexdigest())


def create_session(*, brand_id: int, openid: str, unionid: str | None, session_key: str) -> str:
    """Store a new mini-program session; returns its token (shown to the client only)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    value = {
        "brand_id": brand_id,
        "openid": openid,
        "unionid": unionid,
        "session_key": encrypt(session_key) if session_key else "",
    }
    get_redis().set(_session_key(brand_id, token), json.dumps(value), ex=_session_seconds())
    return token


def current_session() -> dict:
    """The session of the request's bearer token in this brand, or Unauthorized."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100 or not token.isascii():
        raise Unauthorized(_l("missing or invalid session token"))
    data = session_of(g.mp_brand.id, token)
    if data is None:
        raise Unauthorized(_l("invalid or expired session token"))
    return data


def session_of(brand_id: int, token: str) -> dict | None:
    """The session of a well-formed bearer ``token`` in the brand (None: none, or expired)."""
    return parse_session(get_redis().get(_session_key(brand_id, token)), brand_id)


def session_key(brand_id: int, token: str) -> str:
    """The Redis key of a bearer token's session (for a caller reading it in a pipeline)."""
    return _session_key(brand_id, token)


def parse_session(raw: bytes | None, brand_id: int) -> dict | None:
    """The session stored under ``session_key`` (None: none, expired, another brand's)."""
    if raw is None:
        return None
    data = json.loads(raw)
    return data if data.get("brand_id") == brand_id else None


def _member_of(session: dict) -> member_session.SignedInMember | None:
    return member_session.member_by_identity(
        brand_id=g.mp_brand.id, kind="mp_openid", value=session["openid"]
    )


def current_member() -> member_session.SignedInMember:
    """The activated member of the request's session (401 without one, 403 before activation),
    as one light row (``members.session.SignedInMember``)."""
    return _activated_member(current_session())


def _activated_member(session: dict) -> member_session.SignedInMember:
    member = _member_of(session)
    if member is None or member.activated_at is None or not member.phone:
        raise Forbidden(_l("the member card is not activated yet"), code="not_activated")
    return member


def _wechat(fn, *args):
    """Call the gateway, turning its errors into API answers."""
    try:
        return fn(*args)
    except gateway.OAuthCodeError:
        raise ValidationError(
            _l("the code is invalid or was already used"), field="code", code="invalid_code"
        ) from None
    except (gateway.RetryableError, gateway.NotConfigured):
        raise WeChatUnavailable(_l("WeChat is unavailable, please try again")) from None
    except gateway.WeChatAPIError as exc:
        if exc.errcode in (40029, 40163, 40001, 41008, 40226):
            raise ValidationError(
                _l("the code is invalid or was already used"), field="code", code="invalid_code"
            ) from None
        raise WeChatFailed(_l("WeChat refused the request")) from None


# --- shaping ------------------------------------------------------------------------------------


def _tier(level: TierLevel | tiers.LevelView | None) -> TierOut | None:
    if level is None:
        return None
    return TierOut(
        code=level.code,
        name=level.name,
        points_multiplier_permille=level.points_multiplier_permille,
    )


def _profile(member: Member) -> ProfileOut:
    store, guide = queries.home_of(member)
    level = queries.tier_of(member)
    return ProfileOut(
        card_no=member.card_no,
        phone=mask_phone(member.phone) if member.phone else None,
        name=member.name or "",
        gender=member.gender or "",
        birthday=member.birthday,
        tier=_tier(level),
        store=StoreBrief(id=store.id, code=store.code, name=store.name, city=store.city)
        if store
        else None,
        guide=GuideBrief(id=guide.id, name=guide.name) if guide else None,
    )


# --- operations ---------------------------------------------------------------------------------


@bp.post("/<brand_slug>/login")
@api_operation(
    "mp",
    "post",
    f"{PREFIX}/login",
    summary="Log in with the wx.login() code",
    body=LoginRequest,
    response=LoginResponse,
    auth=False,
    errors=(400, 429, 503),
)
def login(body: LoginRequest):
    brand = g.mp_brand
    ip = request.remote_addr or "-"
    if not ratelimit.hit(brand.id, "mp-login", ip, limit=LOGIN_LIMIT, window=60):
        raise RateLimited(_l("too many logins, please wait a minute"))
    result = _wechat(gateway.jscode2session, brand.id, body.code)
    openid, unionid = result["openid"], result.get("unionid")
    member = identities.find_by_identity(kind="mp_openid", value=openid)
    if member is None and unionid:
        # Known through the official account (same unionid): same person, link the channel.
        member = identities.find_by_identity(kind="unionid", value=unionid)
        if member is not None and member.status == ACTIVE:
            identities.attach_identity(member_id=member.id, kind="mp_openid", value=openid)
            db.session.commit()
    token = create_session(
        brand_id=brand.id,
        openid=openid,
        unionid=unionid,
        session_key=result.get("session_key", ""),
    )
    activated = bool(member and member.status == ACTIVE and member.activated_at and member.phone)
    return LoginResponse(token=token, expires_in=_session_seconds(), activated=activated)


@bp.post("/<brand_slug>/phone")
@api_operation(
    "mp",
    "post",
    f"{PREFIX}/phone",
    summary="Confirm the phone number (getPhoneNumber code) and activate the member card",
    body=PhoneRequest,
    response=PhoneResponse,
    errors=(400, 409, 503),
)
def phone(body: PhoneRequest):
    session = current_session()
    info = _wechat(gateway.get_phone_number, g.mp_brand.id, body.code)
    if str(info.get("countryCode", "86")) != "86":
        raise ValidationError(_l("only mainland China mobile numbers are supported"), field="code")
    member, created = activate_member(
        phone=info.get("purePhoneNumber") or info.get("phoneNumber") or "",
        mp_openid=session["openid"],
        unionid=session.get("unionid"),
        source="mp",
        consent_version=body.consent_version,
    )
    out = PhoneResponse(created=created, profile=_profile(member))
    db.session.commit()
    return out


@bp.get("/<brand_slug>/profile")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/profile",
    summary="The member's profile",
    response=ProfileOut,
    errors=(403,),
)
def profile():
    return _profile(_activated_member(current_session()))


@bp.patch("/<brand_slug>/profile")
@api_operation(
    "mp",
    "patch",
    f"{PREFIX}/profile",
    summary="Change name, gender or birthday (omitted or null fields stay as they are)",
    body=ProfilePatch,
    response=ProfileOut,
    errors=(400, 403),
)
def update_profile(body: ProfilePatch):
    member = db.session.get(Member, _activated_member(current_session()).id)
    changes = body.model_dump(exclude_none=True)
    for field, value in changes.items():
        setattr(member, field, value)
    db.session.flush()
    out = _profile(member)
    db.session.commit()
    return out


@bp.get("/<brand_slug>/card")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/card",
    summary="The member card: tier, progress and the rotating till code",
    response=CardOut,
    errors=(403,),
)
def card():
    member = _activated_member(current_session())
    progress = tiers.tier_progress(member_id=member.id, member=member)
    return CardOut(
        card_no=member.card_no,
        tier=_tier(progress.current),
        progress=ProgressOut(
            basis=progress.basis,
            value=progress.value,
            next_tier=_tier(progress.next),
            needed=progress.needed,
            next_review_on=progress.next_review_on,
        ),
        till_code=tillcode.make_till_code(member_id=member.id),
        till_code_refresh_in=tillcode.seconds_left(),
    )


@bp.get("/<brand_slug>/till-code")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/till-code",
    summary="The rotating member code the till scans (Code 128 barcode or QR code)",
    response=TillCodeOut,
    errors=(403,),
)
def till_code():
    member = current_member()
    return TillCodeOut(
        card_no=member.card_no,
        till_code=tillcode.make_till_code(member_id=member.id),
        refresh_in=tillcode.seconds_left(),
    )


@bp.get("/<brand_slug>/stores")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/stores",
    summary="The brand's stores nearest a location",
    query=StoresQuery,
    response=StoresPage,
    auth=False,
)
def stores(query: StoresQuery):
    near = store_locations.stores_near(lat=query.lat, lng=query.lng)
    start = (query.page - 1) * query.per_page
    items = [
        StoreOut(
            id=n.store.id,
            code=n.store.code,
            name=n.store.name,
            city=n.store.city,
            address=n.store.address or "",
            lat=n.lat,
            lng=n.lng,
            distance_m=n.distance_m,
        )
        for n in near[start : start + query.per_page]
    ]
    return StoresPage(items=items, page=query.page, per_page=query.per_page, total=len(near))


@bp.get("/openapi.json")
def openapi_json():
    doc = openapi_document(
        "mp",
        title="Mini-program API",
        version="1.0.0",
        path_params={
            "brand_slug": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,39}$"},
        },
    )
    doc["info"]["description"] = (
        "JSON API of the brand's mini-program. Errors: "
        '`{"error": {"code", "message", "field"}}` with a 4xx status.'
    )
    return jsonify(doc)


def init_app(app: Flask, blueprint: Blueprint = bp) -> None:
    """Register a mini-program API blueprint (CSRF-exempt: bearer tokens, no cookies)."""
    app.register_blueprint(blueprint)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(blueprint)
