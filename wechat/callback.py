"""Inbound WeChat callback: ``GET/POST /wechat/<brand_slug>/callback``.

Served by ``wire.CallbackFront`` ahead of Flask's request pipeline. The hot path, in order:
body size (413 before anything is read), the brand's credentials (cached in the process for a
few seconds, see ``brand_cache``), the URL signature (403), safe-mode ``msg_signature`` and
AES decryption with the current then the previous EncodingAESKey, a strict XML parse (no DTD,
no duplicated message fields, see ``wire.parse_xml``), then one of two ways:

- every handler of the message is pure (``router.on(..., pure=True)``: the chatbot's
  replies): the handlers run, then ONE Redis round trip checks that the brand's credentials
  and chatbot have not changed, sets the retry key to the reply and appends the delivery's
  record to a Redis stream, which ``inbound.flush_inbound`` moves into ``wechat_inbound``
  within seconds (``_answer_at_once``);
- otherwise (or when that check fails): one round trip sets the retry key (``SET NX``) and
  reads the credential marker, the handlers run, and the record follows: in the handlers'
  transaction when they used the database (members binding a scan to a store, a job
  enqueued), then the reply is kept on the retry key; else to the Redis stream in the round
  trip that keeps the reply (``_answer_general_way``).

The Redis round trips are ``callback_scripts.CallbackScripts``. Nothing slow happens here:
WeChat gives up after 5 s, so slow answers are customer-service messages sent by jobs.

Hostile or malformed input never reaches the handlers and never causes a 500: it is answered
with a 4xx (or ``success`` for message types we do not know) and leaves no trace.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import time

import redis
from flask import Blueprint, Flask, Request, request

from core.db import db
from core.errors import REDIS_RETRY_AFTER
from core.redis import get_redis, key
from core.tenancy import use_brand
from wechat import brand_cache, events, inbound, router
from wechat.brand_cache import BrandKeys
from wechat.callback_scripts import IN_FLIGHT, CallbackScripts
from wechat.crypto import (
    CryptoError,
    MessageCrypto,
    decrypt_with_first,
    encrypted_envelope,
    signature_matches,
)
from wechat.wire import (
    MAX_BODY,
    RULE,
    Answer,
    BadMessage,
    CallbackFront,
    WireRequest,
    parse_xml,
    plain,
    request_context,
    text,
)

log = logging.getLogger(__name__)

bp = Blueprint("wechat_callback", __name__)


@bp.errorhandler(redis.exceptions.ConnectionError)
@bp.errorhandler(redis.exceptions.TimeoutError)
def _redis_down(exc: Exception):
    """No Redis, no dedupe: answer nothing, with a 503, so that WeChat delivers it again."""
    db.session.rollback()
    log.error("wechat callback: redis unavailable: %s", exc)
    return "", 503, {"Retry-After": str(REDIS_RETRY_AFTER)}


PAYLOAD_KEEP = 4000
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
SLUG_RE = re.compile(r"^[a-z0-9-]{2,40}$")
EVENT_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class _Refused(Exception):  # noqa: N818 - carries an answer, not an error
    """The envelope is refused with ``answer`` (a bad msg_signature, a brand with no appid)."""

    def __init__(self, answer: Answer):
        self.answer = answer


@dataclasses.dataclass(slots=True)
class Delivery:
    """One message as WeChat delivered it, and what the callback keeps of it."""

    keys: BrandKeys
    msg: dict
    body: bytes  # the message's XML (decrypted in safe mode)
    crypto: MessageCrypto | None  # the key it was encrypted with: the reply uses it too
    msg_type: str
    openid: str
    to_user: str
    create_time: str
    event: str | None
    event_key: str | None
    msg_id: str | None
    content: str | None
    received: float = dataclasses.field(default_factory=time.time)
    subscribe_choices: tuple[events.SubscribeChoice, ...] = ()
    subscribe_sent: tuple[events.SubscribeSent, ...] = ()

    @property
    def card_event(self) -> bool:
        return self.event is not None and self.event.lower() in CARD_EVENTS

    @property
    def dedupe_id(self) -> str:
        """MsgId for messages; sender, time and event for events (they have no MsgId)."""
        if self.msg_id and self.msg_type != "event":
            return f"msg:{self.msg_id}"
        return f"ev:{self.openid}:{self.create_time}:{self.event or self.msg_type}"

    @property
    def retry_key(self) -> str:
        return key(self.keys.id, "wx-in", self.dedupe_id)

    @property
    def ttl(self) -> int:
        return CARD_DEDUPE_TTL if self.card_event else DEDUPE_TTL

    def record(self) -> dict:
        """The delivery's row of ``wechat_inbound`` (see ``inbound.encode``)."""
        return {
            "brand_id": self.keys.id,
            "openid": self.openid,
            "msg_type": self.msg_type,
            "event": self.event,
            "event_key": (self.event_key or None) and self.event_key[:255],
            "msg_id": self.msg_id,
            "payload": self.body.decode("utf-8", "replace")[:PAYLOAD_KEEP],
            "dedupe_key": self.dedupe_id[:200],
            "ts": self.received,
        }

    def context(self, redis_rev: bytes | None, speculative: bool = False) -> router.Context:
        """The message as handlers see it."""
        event_lc = self.event.lower() if self.event else None
        scene = None
        if event_lc == "subscribe" and self.event_key and self.event_key.startswith("qrscene_"):
            scene = self.event_key[len("qrscene_") :]
        elif event_lc == "scan":
            scene = self.event_key
        return router.Context(
            brand_id=self.keys.id,
            appid=self.keys.appid,
            openid=self.openid,
            msg_type=self.msg_type,
            event=self.event,
            event_key=self.event_key,
            create_time=int(self.create_time),
            raw=self.msg,
            msg_id=self.msg_id,
            content=self.content,
            scene=scene,
            subscribe_choices=self.subscribe_choices,
            subscribe_sent=self.subscribe_sent,
            chatbot_rev=self.keys.chatbot_rev(redis_rev),
            speculative=speculative,
        )


# --- the view ------------------------------------------------------------------------------


@bp.route(RULE, methods=["GET", "POST"])
def view(slug: str):
    """The route behind ``CallbackFront`` (which serves it first): for ``url_for`` and for
    the app without the front."""
    return callback(request._get_current_object(), slug).response()


def callback(req: Request | WireRequest, slug: str) -> Answer:
    """Answer one delivery of WeChat to the brand ``slug``."""
    if req.method == "POST" and (req.content_length or 0) > MAX_BODY:
        return plain("request body too large", 413)
    if not SLUG_RE.match(slug):
        return plain("not found", 404)
    return _serve(req, slug, brand_cache.get(slug), None)


def _serve(
    req: Request | WireRequest,
    slug: str,
    keys: BrandKeys | None,
    body: bytes | None,
    revalidated: bool = False,
) -> Answer:
    if keys is None:
        return plain("not found", 404)
    args = req.args
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    if not keys.token or not signature_matches(args.get("signature"), keys.token, timestamp, nonce):
        if not revalidated and (fresh := brand_cache.revalidate(slug, keys)) is not None:
            return _serve(req, slug, fresh, body, True)  # the token has just been changed
        return plain("bad signature", 403)
    if req.method == "GET":
        return plain(args.get("echostr", ""))
    if body is None:
        body = req.stream.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return plain("request body too large", 413)
    return _handle_post(req, slug, keys, body, timestamp, nonce, revalidated)


def _handle_post(
    req: Request | WireRequest,
    slug: str,
    keys: BrandKeys,
    body: bytes,
    timestamp: str,
    nonce: str,
    revalidated: bool,
) -> Answer:
    try:
        delivery = _read(keys, *_open(req.args, keys, body, timestamp, nonce))
    except _Refused as refused:
        return refused.answer
    except CryptoError as exc:
        if not revalidated and (fresh := brand_cache.revalidate(slug, keys)):
            return _serve(req, slug, fresh, body, True)  # a new EncodingAESKey or appid
        log.info("wechat callback for brand %s: undecryptable message: %s", keys.id, exc)
        return plain("cannot decrypt", 400)
    except BadMessage as exc:
        log.info("wechat callback for brand %s: rejected message: %s", keys.id, exc)
        return plain("bad message", 400)
    if delivery is None:
        return plain("success")  # a type we do not know: acknowledged, nothing stored
    if not _recent(timestamp, delivery):
        log.info("wechat callback for brand %s: stale timestamp %r", keys.id, timestamp[:20])
        return plain("stale request", 403)
    scripts = CallbackScripts.of(get_redis())
    if router.is_pure(delivery.msg_type, delivery.event):
        answered = _answer_at_once(scripts, delivery)
        if answered is not None:
            return answered
    return _answer_general_way(req, slug, scripts, delivery, body)


# --- reading a delivery --------------------------------------------------------------------


def _open(
    args, keys: BrandKeys, body: bytes, timestamp: str, nonce: str
) -> tuple[dict, bytes, MessageCrypto | None]:
    """(the message, its XML, the key it was encrypted with): in safe mode the envelope's
    ``msg_signature`` is checked and its ``Encrypt`` decrypted, else the body is the message."""
    msg = parse_xml(body)
    encrypted = args.get("encrypt_type", "raw").lower() == "aes"
    # The URL signature does not cover a plaintext body: in safe mode a plaintext post is a
    # forgery made with a leaked query string, whatever its signature.
    if keys.message_mode == "safe" and not encrypted:
        raise _Refused(plain("plaintext refused: the account is in safe mode", 403))
    if keys.message_mode == "plaintext" and encrypted:
        raise _Refused(plain("encrypted message refused: the account is in plaintext mode", 403))
    if not encrypted:
        return msg, body, None
    encrypt = text(msg, "Encrypt", max_len=MAX_BODY, required=True)
    if not signature_matches(args.get("msg_signature"), keys.token, timestamp, nonce, encrypt):
        raise _Refused(plain("bad msg_signature", 403))
    if not keys.appid:
        raise _Refused(plain("brand has no appid", 400))
    body, crypto = decrypt_with_first(encrypt, keys.cryptos)
    return parse_xml(body), body, crypto


def _read(keys: BrandKeys, msg: dict, body: bytes, crypto: MessageCrypto | None) -> Delivery | None:
    """The delivery's fields, checked (BadMessage); None for a message type we do not know."""
    msg_type = (text(msg, "MsgType", max_len=32, required=True) or "").lower()
    openid = text(msg, "FromUserName", max_len=64, required=True)
    to_user = text(msg, "ToUserName", max_len=64) or ""
    create_time = text(msg, "CreateTime", max_len=12, required=True)
    if not create_time.isdigit():
        raise BadMessage("<CreateTime> is not a number")
    if msg_type not in MESSAGE_TYPES:
        return None
    event = event_key = None
    if msg_type == "event":
        event = text(msg, "Event", max_len=64, required=True)
        if not EVENT_RE.match(event):
            raise BadMessage("<Event> is not a name")
        event_key = text(msg, "EventKey", max_len=1024)
    delivery = Delivery(
        keys=keys,
        msg=msg,
        body=body,
        crypto=crypto,
        msg_type=msg_type,
        openid=openid,
        to_user=to_user,
        create_time=create_time,
        event=event,
        event_key=event_key,
        msg_id=text(msg, "MsgId", max_len=64),
        content=text(msg, "Content", max_len=MAX_BODY) if msg_type == "text" else None,
    )
    if event is not None:
        delivery.subscribe_choices = events.subscribe_choices(event.lower(), msg)
        delivery.subscribe_sent = events.subscribe_sent(event.lower(), msg)
    return delivery


def _recent(timestamp: str, delivery: Delivery) -> bool:
    """Whether the signed timestamp is close enough to now (not a replay)."""
    max_age = CARD_MAX_AGE if delivery.card_event else MAX_CLOCK_SKEW
    return timestamp.isdigit() and abs(delivery.received - int(timestamp)) <= max_age


# --- answering -----------------------------------------------------------------------------


def _answer_at_once(scripts: CallbackScripts, delivery: Delivery) -> Answer | None:
    """Answer a message whose handlers are all pure in one Redis round trip; None when it
    has to go the general way.

    The handlers run first, with the chatbot revision this process last saw; then one script
    checks that the brand's generation marker and chatbot revision are still those, and only
    then sets the retry key to the reply and buffers the delivery's record. A retry gets the
    reply kept by the first delivery; a changed brand or chatbot, a brand not seen yet by this
    process, or a handler with an effect (``router.NotPure``) leaves Redis untouched and
    returns None.
    """
    keys = delivery.keys
    seen = brand_cache.last_rev(keys.id)
    if seen is None:
        return None
    ctx = delivery.context(seen.encode() or None, speculative=True)
    try:
        with use_brand(keys.id):
            reply = router.dispatch(ctx)
    except router.NotPure:
        return None
    finally:
        if _in_transaction():
            db.session.rollback()  # what pure handlers read; they wrote nothing
    xml = router.render(reply, to_user=ctx.openid, from_user=delivery.to_user) if reply else None
    status, value = scripts.claim_with_reply_if_unchanged(
        delivery.retry_key,
        ttl=delivery.ttl,
        xml=xml,
        record=delivery.record(),
        gen=keys.gen,
        chatbot_rev=seen,
    )
    if status < 0:
        brand_cache.saw_rev(keys.id, value)
        return None
    if status == 0:
        return _answer_retry(keys, value, delivery.crypto)
    return plain("success") if xml is None else _respond(keys, xml, delivery.crypto)


def _answer_general_way(
    req: Request | WireRequest,
    slug: str,
    scripts: CallbackScripts,
    delivery: Delivery,
    raw_body: bytes,
) -> Answer:
    """Claim the retry key (reading the brand's markers in the same round trip), then run
    the handlers once; a retry gets the first delivery's answer."""
    keys, retry_key = delivery.keys, delivery.retry_key
    first, gen, chatbot_rev = scripts.claim_and_read_markers(retry_key, delivery.ttl, keys.id)
    if gen is None or gen.decode() != keys.gen:
        # Redis lost the marker, or the brand's credentials were changed: reload them, and
        # start over with the new ones if they differ from those this message was checked with.
        fresh = brand_cache.get(slug, fresh=True)
        if fresh is None or not fresh.same_credentials(keys):
            if first:
                scripts.release(retry_key)
            if fresh is None:
                return plain("gone", 404)
            return _serve(req, slug, fresh, raw_body, True)
        keys = delivery.keys = fresh
    brand_cache.saw_rev(keys.id, chatbot_rev)
    if not first:
        # A retry of something already handled (or being handled): same answer, no effect.
        return _answer_retry(keys, scripts.kept_reply(retry_key), delivery.crypto)
    return _run_handlers(req, scripts, delivery, chatbot_rev)


def _run_handlers(
    req: Request | WireRequest,
    scripts: CallbackScripts,
    delivery: Delivery,
    chatbot_rev: bytes | None,
) -> Answer:
    """Run every handler of a claimed delivery and keep its record and reply: with the
    handlers' transaction when they used the database, else in one Redis round trip."""
    keys, retry_key = delivery.keys, delivery.retry_key
    ctx = delivery.context(chatbot_rev)
    xml = None
    try:
        with request_context(req), use_brand(keys.id):
            brand_cache.remember(keys)
            reply = router.dispatch(ctx)
            if reply is not None:
                xml = router.render(reply, to_user=delivery.openid, from_user=delivery.to_user)
            transactional = _in_transaction()
            if transactional:
                inbound.insert_now(delivery.record())
                db.session.commit()
            else:
                scripts.buffer_record_and_keep_reply(delivery.record(), retry_key, xml)
    except Exception:
        if _in_transaction():
            db.session.rollback()
        scripts.release(retry_key)  # let WeChat's retry try again
        raise
    if xml is None:
        return plain("success")
    if transactional:
        scripts.keep_reply(retry_key, xml)
    return _respond(keys, xml, delivery.crypto)


def _answer_retry(keys: BrandKeys, previous: bytes | None, crypto) -> Answer:
    """The answer to a retry: the first delivery's reply, or ``success`` while it has none."""
    if not previous or previous == IN_FLIGHT:
        return plain("success")
    return _respond(keys, previous.decode(), crypto)


def _in_transaction() -> bool:
    """Whether this request's database session has begun a transaction (a handler used it)."""
    return db.session.registry.has() and db.session().in_transaction()


def _respond(keys: BrandKeys, xml: str, crypto: MessageCrypto | None) -> Answer:
    if crypto is None:
        return plain(xml, mimetype="application/xml")
    envelope = encrypted_envelope(
        message=xml,
        token=keys.token,
        crypto=crypto,
        nonce=secrets.token_hex(8),
        timestamp=str(int(time.time())),
    )
    return plain(envelope, mimetype="application/xml")


def init_app(app: Flask) -> None:
    from wechat import chatbot  # noqa: F401  (registers the chatbot's router handlers)

    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)
    app.wsgi_app = CallbackFront(app, app.wsgi_app, serve=callback)
