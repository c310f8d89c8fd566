"""The phone simulator: a page that plays a WeChat user in front of an official account.

A person picks a brand's account and a consumer, "scans" QR codes, types messages and taps
the published menu. Everything goes to the app's callback the way WeChat sends it (signed,
AES-encrypted, through ``push``); the chat view polls the sandbox's chat log, so replies and
every message the brand pushes (customer-service, template, subscribe, mass) show up.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select

from core.db import db
from core.errors import NotFound, ValidationError
from core.tenancy import use_brand
from org.models import Brand, Store
from wechat.models import ChatbotSettings
from wechat.sandbox import push, store

bp = Blueprint("sandbox_phone", __name__, url_prefix="/sandbox/phone")

# The consumer "holding the phone": the sandbox's OAuth page signs links in as them.
CONSUMER_COOKIE = "wmb_sandbox_consumer"
MAX_TEXT = 2048
ACTIONS = ("text", "scan", "click", "view", "follow", "unfollow")


def init_phone(app: Flask) -> None:
    """Mount the simulator (the sandbox calls this only when it is enabled)."""
    from wechat.sandbox import demo  # noqa: F401 - registers the demo step

    app.register_blueprint(bp)


def _brands() -> list[Brand]:
    stmt = select(Brand).where(Brand.appid.is_not(None), Brand.active.is_(True))
    return list(db.session.execute(stmt.order_by(Brand.id)).scalars())


def _brand(slug: str | None) -> Brand:
    brand = Brand.by_slug(slug or "")
    if brand is None or not brand.appid:
        raise NotFound(_("No such official account."), field="brand")
    return brand


def _consumer(uid: str | None) -> dict:
    consumer = store.get_consumer(uid or "")
    if consumer is None:
        raise NotFound(_("No such consumer."), field="consumer")
    return consumer


# Packages that issue parametric QR codes list them for the simulator (members: store and
# guide codes), so their labels are readable and they survive a restart of `make run`, whose
# in-process sandbox forgets the tickets it issued.
_SCAN_SOURCES: list[Callable[[Brand], list[dict]]] = []


def register_scan_source(fn: Callable[[Brand], list[dict]]) -> None:
    """``fn(brand)`` returns ``[{"scene", "label", "ticket"}]`` of the brand's issued codes."""
    if fn not in _SCAN_SOURCES:
        _SCAN_SOURCES.append(fn)


def scan_targets(brand: Brand) -> list[dict]:
    """The brand's issued QR codes (from the registered sources and the sandbox's own list),
    or, for a brand that issued none, an ``s:<code>`` scene per store to try at once."""
    targets: list[dict] = []
    for source in _SCAN_SOURCES:
        with use_brand(brand.id):
            for t in source(brand):
                if t.get("ticket") and store.get_qrcode(t["ticket"]) is None:
                    # a permanent code issued before this sandbox process started
                    store.save_qrcode(brand.appid, t["ticket"], t["scene"], None)
                targets.append({**t, "issued": True})
    known = {t["scene"] for t in targets}
    for ticket, qr in sorted(store.list_qrcodes(brand.appid).items(), key=lambda i: i[1]["scene"]):
        scene = str(qr["scene"])
        if scene in known or store.get_qrcode(ticket) is None:  # listed already, or expired
            continue
        targets.append({"ticket": ticket, "scene": scene, "label": scene, "issued": True})
    if targets:
        return targets
    with use_brand(brand.id):
        stores = list(
            db.session.execute(
                select(Store).where(Store.active.is_(True)).order_by(Store.code)
            ).scalars()
        )
    return [
        {"ticket": "", "scene": f"s:{s.code}", "label": f"{s.name} ({s.code})", "issued": False}
        for s in stores
    ]


def _menu_buttons(brand: Brand) -> list[dict]:
    menu = store.get_menu(brand.appid)
    if menu is None:
        # `make run`'s in-process sandbox forgets across restarts what was published to it:
        # show the menu the brand last published, as WeChat would
        with use_brand(brand.id):
            settings = db.session.execute(select(ChatbotSettings)).scalar_one_or_none()
        if settings is not None and settings.menu_status == "published" and settings.menu:
            menu = settings.menu
    menu = menu or {}
    return list(menu.get("button") or menu.get("menu", {}).get("button") or [])


@bp.get("")
def page():
    brands = _brands()
    brand = None
    if brands:
        slug = request.args.get("brand")
        brand = next((b for b in brands if b.slug == slug), brands[0])
    consumers = store.list_consumers()
    uid = request.args.get("consumer")
    consumer = next((c for c in consumers if c["uid"] == uid), consumers[-1] if consumers else None)
    ctx = {
        "brands": brands,
        "brand": brand,
        "consumers": consumers,
        "consumer": consumer,
        "targets": [],
        "menu": [],
        "openid": None,
        "following": False,
    }
    if brand is not None:
        ctx["targets"] = scan_targets(brand)
        ctx["menu"] = _menu_buttons(brand)
        if consumer is not None:
            ctx["openid"] = store.openid_for(brand.appid, consumer["uid"])
            ctx["following"] = store.is_following(brand.appid, ctx["openid"])
    resp = Response(render_template("wechat/sandbox/phone.html", **ctx))
    if consumer is not None:
        resp.set_cookie(CONSUMER_COOKIE, consumer["uid"], samesite="Lax", httponly=True)
    return resp


@bp.post("/consumers")
def create_consumer():
    nickname = (request.form.get("nickname") or "").strip()[:32]
    if not nickname:
        nickname = _("Consumer %(n)d", n=len(store.list_consumers()) + 1)
    consumer = store.create_consumer(nickname)
    return redirect(
        url_for(".page", brand=request.form.get("brand") or None, consumer=consumer["uid"])
    )


@bp.get("/messages")
def messages():
    brand = _brand(request.args.get("brand"))
    consumer = _consumer(request.args.get("consumer"))
    openid = store.openid_for(brand.appid, consumer["uid"])
    after = request.args.get("after", type=int) or 0
    return jsonify(
        messages=store.messages(brand.appid, openid, after=after),
        following=store.is_following(brand.appid, openid),
        menu=_menu_buttons(brand),
    )


@bp.post("/act")
def act():
    """One thing the consumer does on the phone, sent to the account's callback."""
    data = request.get_json(silent=True) or {}
    brand = _brand(data.get("brand"))
    consumer = _consumer(data.get("consumer"))
    action = data.get("action")
    if action not in ACTIONS:
        raise ValidationError(_("Unknown action."), field="action")
    value = str(data.get("value") or "").strip()
    openid = store.openid_for(brand.appid, consumer["uid"])
    reply = _perform(brand.appid, openid, action, value, str(data.get("ticket") or ""))
    return jsonify(
        ok="error" not in reply, reply=reply, following=store.is_following(brand.appid, openid)
    )


def _perform(appid: str, openid: str, action: str, value: str, ticket: str) -> dict:
    if action == "follow":
        return push.follow(appid, openid)
    if action == "unfollow":
        return push.unfollow(appid, openid)
    if not value:
        raise ValidationError(_("This field is required."), field="value")
    if action == "text":
        return push.deliver(appid, openid, {"MsgType": "text", "Content": value[:MAX_TEXT]})
    if action == "scan":
        return _scan(appid, openid, value[:64], ticket)
    event = "CLICK" if action == "click" else "VIEW"
    return push.deliver(appid, openid, {"MsgType": "event", "Event": event, "EventKey": value})


def _scan(appid: str, openid: str, scene: str, ticket: str) -> dict:
    """Scanning a parametric QR: ``subscribe`` with ``qrscene_`` first, ``SCAN`` when following."""
    if ticket:
        qr = store.get_qrcode(ticket)
        if qr is None or qr["appid"] != appid:
            raise ValidationError(_("This QR code has expired."), field="ticket")
        scene = str(qr["scene"])
    if store.is_following(appid, openid):
        fields = {"MsgType": "event", "Event": "SCAN", "EventKey": scene}
        if ticket:
            fields["Ticket"] = ticket
        return push.deliver(appid, openid, fields)
    return push.follow(appid, openid, scene=scene, ticket=ticket or None)


@bp.get("/open")
def open_link():
    """Open a link inside the phone as the chosen consumer (the sandbox OAuth signs them in)."""
    consumer = _consumer(request.args.get("consumer"))
    url = request.args.get("url") or ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "") or (not parts.scheme and not url.startswith("/")):
        raise ValidationError(_("Only web links can be opened."), field="url")
    resp = redirect(url)
    resp.set_cookie(CONSUMER_COOKIE, consumer["uid"], samesite="Lax", httponly=True)
    return resp
