"""Inbound WeChat callback: ``GET/POST /wechat/<brand_slug>/callback``.

Served by ``CallbackFront`` ahead of Flask's request pipeline. The hot path, in order: body
size (413 before anything is read), the brand's credentials (cached in the process for a few
seconds, see ``callback_keys``), the URL signature (403), safe-mode ``msg_signature`` and AES
decryption with the current then the previous EncodingAESKey, a strict XML parse (no DTD, no
duplicated tags), then one of two ways:

- every handler of the message is pure (``router.on(..., pure=True)``: the chatbot's
  replies): the handlers run, then ONE Redis round trip checks that the brand's credentials
  and chatbot have not changed, sets the retry key to the reply and appends the delivery's
  record to a Redis stream, which ``inbound.flush_inbound`` moves into ``wechat_inbound``
  within seconds (``_answer_at_once``);
- otherwise (or when that check fails): one round trip sets the retry key (``SET NX``) and
  reads the credential marker, the handlers run, and the record follows: in the handlers'
  transaction when they used the database (members binding a scan to a store, a job
  enqueued), then the reply is kept on the retry key; else to the Redis stream in the round
  trip that keeps the reply.

Nothing slow happens here: WeChat gives up after 5 s, so slow answers are customer-service
messages sent by jobs.

Hostile or malformed input never reaches the handlers and never causes a 500: it is answered
with a 4xx (or ``success`` for message types we do not know) and leaves no trace.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
from urllib.parse import parse_qsl
from xml.parsers import expat

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    current_app,
    g,
    has_request_context,
    request,
)
from flask.ctx import RequestContext
from flask.sessions import NullSession
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_content_length, get_input_stream

from core.db import db
from core.jobs import relay_committed
from core.logs import request_id
from core.metrics import record_request
from core.redis import get_redis, key, run_script
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
RULE = "/wechat/<slug>/callback"
SLUG_RE = re.compile(r"^[a-z0-9-]{2,40}$")
EVENT_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class BadMessage(ValueError):
    """The body is not a message WeChat would send."""


class Answer:
    """The callback's answer: a status and a short body, served as a WSGI app. (WeChat reads
    nothing else; a werkzeug Response cost more CPU than encrypting the reply.)"""

    __slots__ = ("status_code", "body", "headers")

    def __init__(self, body: str | bytes, status: int, mimetype: str):
        self.status_code = status
        self.body = body.encode() if isinstance(body, str) else body
        charset = "; charset=utf-8" if mimetype.startswith("text/") or "xml" in mimetype else ""
        self.headers = [
            ("Content-Type", mimetype + charset),
            ("Content-Length", str(len(self.body))),
        ]

    def __call__(self, environ, start_response):
        start_response(f"{self.status_code} {HTTP_STATUS_CODES[self.status_code]}", self.headers)
        return [self.body]

    def response(self) -> Response:
        """The same answer as a werkzeug Response (for Flask's own route)."""
        return Response(self.body, status=self.status_code, headers=self.headers)


def _plain(body: str | bytes = "", status: int = 200, mimetype: str = "text/plain") -> Answer:
    return Answer(body, status, mimetype)


class WireRequest:
    """What the callback reads of a request (method, query arguments, body), read straight
    from the WSGI environ; a werkzeug ``Request`` offers the same and is used on Flask's own
    route."""

    __slots__ = ("environ", "method", "args")

    def __init__(self, environ: dict):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET")
        args: dict[str, str] = {}
        for name, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
            args.setdefault(name, value)  # the first value, as werkzeug's MultiDict.get
        self.args = args

    @property
    def content_length(self) -> int | None:
        return get_content_length(self.environ)

    @property
    def stream(self):
        return get_input_stream(self.environ)


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


@bp.route(RULE, methods=["GET", "POST"])
def view(slug: str):
    """The route behind ``CallbackFront`` (which serves it first): for ``url_for`` and for
    the app without the front."""
    return callback(request._get_current_object(), slug).response()


def callback(req: Request | WireRequest, slug: str) -> Answer:
    """Answer one delivery of WeChat to the brand ``slug``."""
    if req.method == "POST" and (req.content_length or 0) > MAX_BODY:
        return _plain("request body too large", 413)
    if not SLUG_RE.match(slug):
        return _plain("not found", 404)
    return _serve(req, slug, callback_keys.get(slug), None)


def _serve(
    req: Request | WireRequest,
    slug: str,
    keys: BrandKeys | None,
    body: bytes | None,
    revalidated: bool = False,
) -> Answer:
    if keys is None:
        return _plain("not found", 404)
    args = req.args
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    if not keys.token or not signature_matches(args.get("signature"), keys.token, timestamp, nonce):
        if not revalidated and (fresh := callback_keys.revalidate(slug, keys)) is not None:
            return _serve(req, slug, fresh, body, True)  # the token has just been changed
        return _plain("bad signature", 403)
    if req.method == "GET":
        return _plain(args.get("echostr", ""))
    if body is None:
        body = req.stream.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _plain("request body too large", 413)
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
    raw_body, crypto = body, None
    try:
        msg = parse_xml(body)
        if req.args.get("encrypt_type", "raw").lower() == "aes":
            encrypt = _text(msg, "Encrypt", max_len=MAX_BODY, required=True)
            if not signature_matches(
                req.args.get("msg_signature"), keys.token, timestamp, nonce, encrypt
            ):
                return _plain("bad msg_signature", 403)
            if not keys.appid:
                return _plain("brand has no appid", 400)
            try:
                body, crypto = decrypt_with_first(encrypt, keys.cryptos)
            except CryptoError:
                if not revalidated and (fresh := callback_keys.revalidate(slug, keys)):
                    return _serve(req, slug, fresh, raw_body, True)  # a new EncodingAESKey or appid
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
    scene = None
    if event_lc == "subscribe" and event_key and event_key.startswith("qrscene_"):
        scene = event_key[len("qrscene_") :]
    elif event_lc == "scan":
        scene = event_key

    def context(redis_rev: bytes | None, speculative: bool = False) -> router.Context:
        return router.Context(
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
            chatbot_rev=keys.chatbot_rev(redis_rev),
            speculative=speculative,
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
    r = get_redis()
    scripts = _scripts(r)
    if scripts is not None and router.is_pure(msg_type, event):
        answered = _answer_at_once(
            r, scripts[2], keys, context, record, dedupe, ttl, to_user, crypto
        )
        if answered is not None:
            return answered
    first, gen, chatbot_rev = _claim(r, dedupe, ttl, callback_keys.hash_key(keys.id))
    if gen is None or gen.decode() != keys.gen:
        # Redis lost the marker, or the brand's credentials were changed: reload them, and
        # start over with the new ones if they differ from those this message was checked with.
        fresh = callback_keys.get(slug, fresh=True)
        if fresh is None or not fresh.same_credentials(keys):
            if first:
                r.delete(dedupe)
            if fresh is None:
                return _plain("gone", 404)
            return _serve(req, slug, fresh, raw_body, True)
        keys = fresh
    callback_keys.saw_rev(keys.id, chatbot_rev)
    if not first:
        # A retry of something already handled (or being handled): same answer, no effect.
        return _answer_retry(keys, r.get(dedupe), crypto)

    ctx = context(chatbot_rev)
    xml = None
    try:
        with _request_context(req), use_brand(keys.id):
            reply = router.dispatch(ctx)
            if reply is not None:
                xml = router.render(reply, to_user=openid, from_user=to_user)
            # Without Lua the Redis is the in-process fake (no REDIS_URL): nothing durable to
            # buffer in, so the row is inserted at once.
            transactional = _in_transaction() or scripts is None
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


def _answer_at_once(
    r, script, keys: BrandKeys, context, record: dict, dedupe: str, ttl: int, to_user: str, crypto
) -> Answer | None:
    """Answer a message whose handlers are all pure in one Redis round trip; None when it
    has to go the general way.

    The handlers run first, with the chatbot revision this process last saw; then one script
    checks that the brand's generation marker and chatbot revision are still those, and only
    then sets the retry key to the reply and buffers the delivery's record. A retry gets the
    reply kept by the first delivery; a changed brand or chatbot, a brand not seen yet by this
    process, or a handler with an effect (``router.NotPure``) leaves Redis untouched and
    returns None.
    """
    seen = callback_keys.last_rev(keys.id)
    if seen is None:
        return None
    ctx = context(seen.encode() or None, speculative=True)
    try:
        with use_brand(keys.id):
            reply = router.dispatch(ctx)
    except router.NotPure:
        return None
    finally:
        if _in_transaction():
            db.session.rollback()  # what pure handlers read; they wrote nothing
    xml = router.render(reply, to_user=ctx.openid, from_user=to_user) if reply else None
    status, *value = run_script(
        r,
        script,
        [dedupe, callback_keys.hash_key(keys.id), inbound.stream_key(keys.id)],
        [xml or IN_FLIGHT, ttl, inbound.encode(record), keys.gen, seen],
    )
    value = value[0] if value else None
    if status < 0:
        callback_keys.saw_rev(keys.id, value)
        return None
    if status == 0:
        return _answer_retry(keys, value, crypto)
    return _plain("success") if xml is None else _respond(keys, xml, crypto)


def _answer_retry(keys: BrandKeys, previous: bytes | None, crypto) -> Answer:
    """The answer to a retry: the first delivery's reply, or ``success`` while it has none."""
    if not previous or previous == IN_FLIGHT:
        return _plain("success")
    return _respond(keys, previous.decode(), crypto)


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
# Pure handlers' answer in one round trip (see ``_answer_at_once``): {-1, current revision}
# when the brand or its chatbot changed, else {1} for a first delivery (reply kept, record
# buffered) or {0, kept reply} for a retry.
_AT_ONCE = """
local v = redis.call('HMGET', KEYS[2], 'gen', 'rev')
if v[1] ~= ARGV[4] or (v[2] or '') ~= ARGV[5] then return {-1, v[2]} end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('XADD', KEYS[3], '*', 'r', ARGV[3])
  return {1}
end
return {0, redis.call('GET', KEYS[1])}
"""
_SCRIPTS: dict[int, tuple] = {}


def _scripts(r) -> tuple | None:
    """The scripts registered on ``r``; None for the in-process fake (it has no Lua)."""
    found = _SCRIPTS.get(id(r))
    if found is None or found[0] is not r:
        lua = not type(r).__module__.startswith("fakeredis")
        found = (
            (r, r.register_script(_CLAIM), r.register_script(_KEEP), r.register_script(_AT_ONCE))
            if lua
            else (r,)
        )
        _SCRIPTS[id(r)] = found
    return found[1:] or None


def _claim(r, dedupe: str, ttl: int, hash_key: str) -> tuple[bool, bytes | None, bytes | None]:
    """(whether the retry key was set now, generation marker, chatbot revision)."""
    scripts = _scripts(r)
    if scripts is not None:
        first, gen, rev = run_script(r, scripts[0], [dedupe, hash_key], [IN_FLIGHT, ttl])
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
        run_script(r, scripts[1], [stream, dedupe], [inbound.encode(record), xml or ""])
        return
    pipe = r.pipeline(transaction=False)
    inbound.buffer(pipe, record)
    if xml is not None:
        pipe.set(dedupe, xml.encode(), xx=True, keepttl=True)
    pipe.execute()


def _in_transaction() -> bool:
    """Whether this request's database session has begun a transaction (a handler used it)."""
    return db.session.registry.has() and db.session().in_transaction()


def _respond(keys: BrandKeys, xml: str, crypto: MessageCrypto | None) -> Answer:
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


# --- the WSGI front ------------------------------------------------------------------------

_PATH_RE = re.compile(r"^/wechat/([^/]+)/callback$")


class CallbackFront:
    """Serves ``/wechat/<slug>/callback`` ahead of Flask's request pipeline; every other
    request goes on to Flask.

    WeChat's servers are the only callers: no cookie session, no signed-in user, no CSRF
    token, no locale. Flask's pipeline (URL matching, opening and saving the session,
    Flask-Login, CSRF, every app-wide hook) cost more CPU than the callback itself, so here
    the callback runs in an app context with the request passed to it, and does only what
    it needs of those hooks: the request id (``X-Request-ID`` in and out, in the logs), the
    request metrics and the hand-over of jobs the handlers committed. Handlers that are not
    pure run inside a request context (``request`` and ``url_for`` work there as anywhere,
    with a null session); an exception goes through the app's error handlers as in Flask's
    own dispatch (an HTTP or domain error gets its 4xx; anything else is logged and gets the
    500 page, or is raised under TESTING).
    """

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        found = _PATH_RE.match(environ.get("PATH_INFO", ""))
        if found is None or environ.get("REQUEST_METHOD") not in ("GET", "POST"):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        app = self.app
        with app.app_context():
            req = WireRequest(environ)
            g.request_id = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
            try:
                response = callback(req, found[1])
            except Exception as exc:
                # as Flask's own dispatch: the app's error handlers first (HTTP errors, the
                # domain's errors), then the 500 path for anything else
                with _request_context(req):
                    try:
                        response = app.make_response(app.handle_user_exception(exc))
                    except Exception as unhandled:
                        response = app.handle_exception(unhandled)
            if db.session.registry.has():
                relay_committed()
            if isinstance(response, Answer):
                response.headers.append(("X-Request-ID", g.request_id))
            else:
                response.headers["X-Request-ID"] = g.request_id
            record_request(req.method, RULE, response.status_code, time.perf_counter() - started)
            return response(environ, start_response)


@contextlib.contextmanager
def _request_context(req: Request | WireRequest):
    """A request context for ``req`` (with a null session) unless one is active."""
    if has_request_context():
        yield
        return
    ctx = RequestContext(current_app._get_current_object(), req.environ, session=NullSession())
    ctx.push()
    try:
        yield
    finally:
        ctx.pop()


def init_app(app: Flask) -> None:
    from wechat import chatbot  # noqa: F401  (registers the chatbot's router handlers)

    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)
    app.wsgi_app = CallbackFront(app, app.wsgi_app)
