"""Inbound WeChat callback: ``GET/POST /wechat/<brand_slug>/callback``.

The hot path, in order: body size (413 before anything is read), the brand's credentials
(cached in the process for a few seconds, see ``callback_keys``), the URL signature (403),
safe-mode ``msg_signature`` and AES decryption with the current then the previous
EncodingAESKey, a strict XML parse (no DTD, no duplicated tags), one Redis round trip that
sets the retry key (``SET NX``) and checks the cached credentials, the router's handlers,
then the record of the delivery:

- when a handler used the database (members binding a scan to a store, a job enqueued), its
  transaction also inserts the ``wechat_inbound`` row and is committed, then the reply is
  kept on the retry key;
- when none did (a keyword reply from the chatbot's cached rules), the record goes to a Redis
  stream in the same round trip that keeps the reply, and ``inbound.flush_inbound`` moves it
  into the table within seconds.

Nothing slow happens here: WeChat gives up after 5 s, so slow answers are customer-service
messages sent by jobs.

Hostile or malformed input never reaches the handlers and never causes a 500: it is answered
with a 4xx (or ``success`` for message types we do not know) and leaves no trace.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from xml.parsers import expat

from flask import Blueprint, Flask, Response, request

from core.db import db
from core.redis import get_redis, key
from core.tenancy import use_brand
from wechat import callback_keys, inbound, router
from wechat.callback_keys import BrandKeys
from wechat.crypto import (
    CryptoError,
    MessageCrypto,
    decrypt_with_first,
    encrypted_envelope,
    signature_matches,
)

log = logging.getLogger(__name__)

bp = Blueprint("wechat_callback", __name__)

MAX_BODY = 1024 * 1024
PAYLOAD_KEEP = 4000
MAX_DEPTH = 5
MESSAGE_TYPES = frozenset(
    {
        "text",
        "image",
        "voice",
        "video",
        "shortvideo",
        "location",
        "link",
        "file",
        "miniprogrampage",
        "event",
    }
)
# Card events are retried for up to 24 h while our server is down; other retries come
# within ~15 s, so ten minutes is plenty for them.
CARD_EVENTS = frozenset(
    {
        "user_get_card",
        "user_consume_card",
        "user_del_card",
        "submit_membercard_user_info",
        "update_member_card",
        "user_view_card",
        "card_pay_order",
        "card_pass_check",
        "card_not_pass_check",
        "user_gifting_card",
        "user_pay_from_pay_cell",
        "user_enter_session_from_card",
        "card_sku_remind",
    }
)
DEDUPE_TTL = 600
CARD_DEDUPE_TTL = 25 * 3600
# A signed request older (or newer) than this is a replay: refused. It is shorter than the
# dedupe window, so every replay is either refused here or answered from the dedupe key.
MAX_CLOCK_SKEW = 300
# Card events are retried by WeChat for up to 24 h; their dedupe keys live 25 h.
CARD_MAX_AGE = 24 * 3600
IN_FLIGHT = b"-"
SLUG_RE = re.compile(r"^[a-z0-9-]{2,40}$")
EVENT_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class BadMessage(ValueError):
    """The body is not a message WeChat would send."""


def _plain(body: str | bytes = "", status: int = 200, mimetype: str = "text/plain") -> Response:
    return Response(body, status=status, mimetype=mimetype)


# --- strict XML ----------------------------------------------------------------------------


def _forbid(*_args) -> None:
    raise BadMessage("DTDs and entity declarations are not accepted")


def parse_xml(body: bytes) -> dict:
    """A WeChat XML document as a dict of its root's children.

    WeChat never sends a DTD, so any DOCTYPE (the door to entity expansion and external
    entities) is refused at its first byte; a tag repeated at one level (other than
    ``<item>`` lists) is refused rather than silently turned into a list.
    """
    if not body or not body.strip():
        raise BadMessage("empty body")
    stack: list[dict] = [{}]
    texts: list[list[str]] = [[]]

    def start(name: str, _attrs) -> None:
        if len(stack) > MAX_DEPTH:
            raise BadMessage("too deep")
        stack.append({})
        texts.append([])

    def end(name: str) -> None:
        children, text = stack.pop(), "".join(texts.pop())
        value: object = children or text
        parent = stack[-1]
        if name in parent:
            if name != "item":
                raise BadMessage(f"duplicated <{name}>")
            prev = parent[name]
            parent[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            parent[name] = value

    def chars(data: str) -> None:
        texts[-1].append(data)

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.buffer_text = True
    try:
        parser.Parse(body, True)
    except BadMessage:
        raise
    except Exception as exc:  # expat raises ExpatError, ValueError, LookupError, ...
        raise BadMessage(f"not well-formed XML: {exc}") from exc
    root = stack[0].get("xml")
    if len(stack) != 1 or not isinstance(root, dict):
        raise BadMessage("the root element must be <xml>")
    return root


def _text(msg: dict, name: str, *, max_len: int, required: bool = False) -> str | None:
    value = msg.get(name)
    if value is None or value == "":
        if required:
            raise BadMessage(f"<{name}> is missing")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise BadMessage(f"<{name}> is not a short text")
    return value


# --- the view ------------------------------------------------------------------------------


@bp.route("/wechat/<slug>/callback", methods=["GET", "POST"])
def callback(slug: str):
    if request.method == "POST" and (request.content_length or 0) > MAX_BODY:
        return _plain("request body too large", 413)
    if not SLUG_RE.match(slug):
        return _plain("not found", 404)
    return _serve(slug, callback_keys.get(slug), None)


def _serve(
    slug: str, keys: BrandKeys | None, body: bytes | None, revalidated: bool = False
) -> Response:
    if keys is None:
        return _plain("not found", 404)
    args = request.args
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    if not keys.token or not signature_matches(args.get("signature"), keys.token, timestamp, nonce):
        if not revalidated and (fresh := callback_keys.revalidate(slug, keys)) is not None:
            return _serve(slug, fresh, body, True)  # the token has just been changed
        return _plain("bad signature", 403)
    if request.method == "GET":
        return _plain(args.get("echostr", ""))
    if body is None:
        body = request.stream.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _plain("request body too large", 413)
    return _handle_post(slug, keys, body, timestamp, nonce, revalidated)


def _handle_post(
    slug: str, keys: BrandKeys, body: bytes, timestamp: str, nonce: str, revalidated: bool
) -> Response:
    raw_body, crypto = body, None
    try:
        msg = parse_xml(body)
        if request.args.get("encrypt_type", "raw").lower() == "aes":
            encrypt = _text(msg, "Encrypt", max_len=MAX_BODY, required=True)
            if not signature_matches(
                request.args.get("msg_signature"), keys.token, timestamp, nonce, encrypt
            ):
                return _plain("bad msg_signature", 403)
            if not keys.appid:
                return _plain("brand has no appid", 400)
            try:
                body, crypto = decrypt_with_first(encrypt, keys.cryptos)
            except CryptoError:
                if not revalidated and (fresh := callback_keys.revalidate(slug, keys)):
                    return _serve(slug, fresh, raw_body, True)  # a new EncodingAESKey or appid
                raise
            msg = parse_xml(body)
        msg_type = (_text(msg, "MsgType", max_len=32, required=True) or "").lower()
        openid = _text(msg, "FromUserName", max_len=64, required=True)
        to_user = _text(msg, "ToUserName", max_len=64) or ""
        create_time = _text(msg, "CreateTime", max_len=12, required=True)
        if not create_time.isdigit():
            raise BadMessage("<CreateTime> is not a number")
        if msg_type not in MESSAGE_TYPES:
            return _plain("success")  # a type we do not know: acknowledged, nothing stored
        event = event_key = None
        if msg_type == "event":
            event = _text(msg, "Event", max_len=64, required=True)
            if not EVENT_RE.match(event):
                raise BadMessage("<Event> is not a name")
            event_key = _text(msg, "EventKey", max_len=1024)
        msg_id = _text(msg, "MsgId", max_len=64)
        content = _text(msg, "Content", max_len=MAX_BODY) if msg_type == "text" else None
    except CryptoError as exc:
        log.info("wechat callback for brand %s: undecryptable message: %s", keys.id, exc)
        return _plain("cannot decrypt", 400)
    except BadMessage as exc:
        log.info("wechat callback for brand %s: rejected message: %s", keys.id, exc)
        return _plain("bad message", 400)

    event_lc = event.lower() if event else None
    max_age = CARD_MAX_AGE if event_lc in CARD_EVENTS else MAX_CLOCK_SKEW
    now = time.time()
    if not timestamp.isdigit() or abs(now - int(timestamp)) > max_age:
        log.info("wechat callback for brand %s: stale timestamp %r", keys.id, timestamp[:20])
        return _plain("stale request", 403)
    if msg_id and msg_type != "event":
        dedupe_id = f"msg:{msg_id}"
    else:
        dedupe_id = f"ev:{openid}:{create_time}:{event or msg_type}"
    dedupe = key(keys.id, "wx-in", dedupe_id)
    ttl = CARD_DEDUPE_TTL if event_lc in CARD_EVENTS else DEDUPE_TTL
    r = get_redis()
    first, gen, chatbot_rev = _claim(r, dedupe, ttl, callback_keys.hash_key(keys.id))
    if gen is None or gen.decode() != keys.gen:
        # Redis lost the marker, or the brand's credentials were changed: reload them, and
        # start over with the new ones if they differ from those this message was checked with.
        fresh = callback_keys.get(slug, fresh=True)
        if fresh is None or not fresh.same_credentials(keys):
            if first:
                r.delete(dedupe)
            return _serve(slug, fresh, raw_body, True) if fresh is not None else _plain("gone", 404)
        keys = fresh
    if not first:
        # A retry of something already handled (or being handled): same answer, no effect.
        previous = r.get(dedupe)
        if not previous or previous == IN_FLIGHT:
            return _plain("success")
        return _respond(keys, previous.decode(), crypto)

    scene = None
    if event_lc == "subscribe" and event_key and event_key.startswith("qrscene_"):
        scene = event_key[len("qrscene_") :]
    elif event_lc == "scan":
        scene = event_key
    ctx = router.Context(
        brand_id=keys.id,
        appid=keys.appid,
        openid=openid,
        msg_type=msg_type,
        event=event,
        event_key=event_key,
        create_time=int(create_time),
        raw=msg,
        msg_id=msg_id,
        content=content,
        scene=scene,
        chatbot_rev=keys.chatbot_rev(chatbot_rev),
    )
    record = {
        "brand_id": keys.id,
        "openid": openid,
        "msg_type": msg_type,
        "event": event,
        "event_key": (event_key or None) and event_key[:255],
        "msg_id": msg_id,
        "payload": body.decode("utf-8", "replace")[:PAYLOAD_KEEP],
        "dedupe_key": dedupe_id[:200],
        "ts": now,
    }
    xml = None
    try:
        with use_brand(keys.id):
            reply = router.dispatch(ctx)
            if reply is not None:
                xml = router.render(reply, to_user=openid, from_user=to_user)
            # Without Lua the Redis is the in-process fake (no REDIS_URL): nothing durable to
            # buffer in, so the row is inserted at once.
            transactional = _in_transaction() or _scripts(r) is None
            if transactional:
                inbound.insert_now(record)
                db.session.commit()
            else:
                _keep(r, record, dedupe, xml)
    except Exception:
        if _in_transaction():
            db.session.rollback()
        r.delete(dedupe)  # let WeChat's retry try again
        raise
    if xml is None:
        return _plain("success")
    if transactional:
        r.set(dedupe, xml.encode(), xx=True, keepttl=True)
    return _respond(keys, xml, crypto)


# --- Redis: one round trip before the handlers, one after ----------------------------------

# Sets the retry key and reads the brand's generation marker and chatbot revision.
_CLAIM = """
local first = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
local v = redis.call('HMGET', KEYS[2], 'gen', 'rev')
return {first and 1 or 0, v[1], v[2]}
"""
# Appends the delivery's record to the brand's stream and keeps the reply for retries.
_KEEP = """
redis.call('XADD', KEYS[1], '*', 'r', ARGV[1])
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'XX', 'KEEPTTL') end
return 1
"""
_SCRIPTS: dict[int, tuple] = {}


def _scripts(r) -> tuple | None:
    """The two scripts registered on ``r``; None for the in-process fake (it has no Lua)."""
    found = _SCRIPTS.get(id(r))
    if found is None or found[0] is not r:
        lua = not type(r).__module__.startswith("fakeredis")
        found = (r, r.register_script(_CLAIM), r.register_script(_KEEP)) if lua else (r,)
        _SCRIPTS[id(r)] = found
    return found[1:] or None


def _claim(r, dedupe: str, ttl: int, hash_key: str) -> tuple[bool, bytes | None, bytes | None]:
    """(whether the retry key was set now, generation marker, chatbot revision)."""
    scripts = _scripts(r)
    if scripts is not None:
        first, gen, rev = scripts[0](keys=[dedupe, hash_key], args=[IN_FLIGHT, ttl])
        return bool(first), gen, rev
    pipe = r.pipeline(transaction=False)
    pipe.set(dedupe, IN_FLIGHT, nx=True, ex=ttl)
    pipe.hmget(hash_key, "gen", "rev")
    first, (gen, rev) = pipe.execute()
    return bool(first), gen, rev


def _keep(r, record: dict, dedupe: str, xml: str | None) -> None:
    """Buffer the delivery's record and keep its reply (if any) for WeChat's retries."""
    scripts = _scripts(r)
    if scripts is not None:
        stream = inbound.stream_key(record["brand_id"])
        scripts[1](keys=[stream, dedupe], args=[inbound.encode(record), xml or ""])
        return
    pipe = r.pipeline(transaction=False)
    inbound.buffer(pipe, record)
    if xml is not None:
        pipe.set(dedupe, xml.encode(), xx=True, keepttl=True)
    pipe.execute()


def _in_transaction() -> bool:
    """Whether this request's database session has begun a transaction (a handler used it)."""
    return db.session.registry.has() and db.session().in_transaction()


def _respond(keys: BrandKeys, xml: str, crypto: MessageCrypto | None) -> Response:
    if crypto is None:
        return _plain(xml, mimetype="application/xml")
    envelope = encrypted_envelope(
        message=xml,
        token=keys.token,
        crypto=crypto,
        nonce=secrets.token_hex(8),
        timestamp=str(int(time.time())),
    )
    return _plain(envelope, mimetype="application/xml")


def init_app(app: Flask) -> None:
    from wechat import chatbot  # noqa: F401  (registers the chatbot's router handlers)

    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)
