"""The router of inbound WeChat messages and events: a registry other packages fill.

The callback never imports a domain package. Domains register handlers here at import time::

    from wechat import router

    @router.on("event", "subscribe")          # also "SCAN", "CLICK", "user_get_card", ...
    def on_follow(ctx: router.Context) -> router.Reply | None: ...

    @router.on("text")                        # every text message
    def on_text(ctx): ...

    router.keyword("积分", points_balance)     # a built-in keyword answered from live data

    @router.on("event", "subscribe_msg_popup_event")   # and subscribe_msg_change_event
    def on_consent(ctx):
        for choice in ctx.subscribe_choices:  # router.SubscribeChoice, one per template
            ...  # choice.template_id, choice.status ("accept", "reject", ...), choice.popup_scene

    @router.on("event", "subscribe_msg_sent_event")
    def on_sent(ctx):
        for sent in ctx.subscribe_sent:  # router.SubscribeSent(template_id, msg_id, ...)
            ...

Lists in other events are read from ``ctx.raw`` with ``ctx.items(container, name)``, which
gives one element as a list of one (``ctx.items("AroundBeacons", "AroundBeacon")``).

Keys are ``(msg_type, event)``, compared case-insensitively (WeChat sends ``SCAN`` and
``subscribe``). ``on("event")`` receives every event, ``on("*")`` every message and event.

Order and priority:

- Every handler registered for a message runs, in ascending ``priority`` (default 100, ties
  in registration order), so a handler with side effects (bind a member to the store of the
  scanned QR code) runs even when another one already chose the reply.
- The first handler that returns a reply wins; later ones see it in ``ctx.reply`` and should
  return None. The chatbot (greeting, keyword replies, default reply) registers with
  ``priority=CHATBOT`` (1000), after the domains, so a domain's answer beats the greeting.
- Text messages and menu CLICK keys are matched by the chatbot: when one of the brand's
  keyword rules equals the whole text, the brand's matching rules decide (highest priority,
  then exact before contains, then the oldest); otherwise a built-in keyword registered with
  ``keyword()`` answers (a handler returning None lets matching go on); then the brand's
  best "contains" rule; then, for messages but not clicks, the brand's default reply.
- Handlers run inside the callback's request with the brand set (``use_brand``) and must be
  fast (WeChat gives up after 5 s): slow work goes to a job, or ``ctx.reply_later()`` sends a
  customer-service message from a job. They flush, never commit; the callback commits once.
- Pure handlers (``pure=True``: they compute a reply and have no effect, like the chatbot's
  keyword answers) let the callback answer in one Redis round trip: when every handler of a
  message is pure, it runs them first, then checks for a retry and keeps the reply and the
  record at once. Anything with an effect met on the way (``reply_later``, a built-in keyword
  that is not pure, run through ``call``) raises ``NotPure`` and the message is handled the
  general way: retry check first, then the handlers.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

from wechat.events import SubscribeChoice, SubscribeSent
from wechat.wire import children

DEFAULT_PRIORITY = 100
CHATBOT = 1000

Handler = Callable[["Context"], "Reply | None"]


class NotPure(Exception):  # noqa: N818 - a signal, not an error
    """A speculative dispatch reached something with an effect: the callback starts over
    the general way (retry check first, then every handler)."""


@dataclasses.dataclass(frozen=True)
class TextReply:
    content: str


@dataclasses.dataclass(frozen=True)
class NewsReply:
    """A passive news reply; WeChat shows one article."""

    title: str
    description: str = ""
    url: str = ""
    picurl: str = ""


Reply = TextReply | NewsReply


@dataclasses.dataclass
class Context:
    """One inbound message or event, as handlers see it."""

    brand_id: int
    appid: str
    openid: str
    msg_type: str  # lower case: text, image, voice, video, shortvideo, location, link, event
    event: str | None  # as WeChat sent it: subscribe, SCAN, CLICK, VIEW, user_get_card, ...
    event_key: str | None
    create_time: int
    raw: dict[str, Any]
    msg_id: str | None = None
    content: str | None = None
    # subscribe via a parametric QR code (EventKey "qrscene_<scene>") or SCAN (EventKey "<scene>")
    scene: str | None = None
    # subscribe_msg_popup_event / subscribe_msg_change_event: one choice per template, and
    # subscribe_msg_sent_event: one outcome per message, in WeChat's order (``wechat.events``)
    subscribe_choices: tuple[SubscribeChoice, ...] = ()
    subscribe_sent: tuple[SubscribeSent, ...] = ()
    # the chatbot configuration revision, so the chatbot can cache the brand's rules
    chatbot_rev: str | None = None
    reply: Reply | None = None
    # Set while the callback runs pure handlers ahead of its retry check: anything with an
    # effect (``reply_later``, a handler that is not pure) raises ``NotPure``.
    speculative: bool = False
    _jobs: int = 0

    @property
    def event_lower(self) -> str | None:
        return self.event.lower() if self.event else None

    def items(self, container: str, name: str) -> list:
        """The ``<name>`` elements inside the message's ``<container>``, in document order:
        one element is a list of one (``ctx.items("AroundBeacons", "AroundBeacon")``)."""
        return children(self.raw.get(container), name)

    def reply_later(self, message: dict) -> None:
        """Send a customer-service message (WeChat's JSON without ``touser``) from a job."""
        from wechat import jobs

        if self.speculative:
            raise NotPure(self.reply_later)
        self._jobs += 1
        jobs.send_customer_message.enqueue(
            self.brand_id, self.openid, message, brand_id=self.brand_id
        )

    def wechatpy_message(self):
        """The message as a wechatpy object (for handlers that want its typed fields)."""
        from wechatpy.events import EVENT_TYPES
        from wechatpy.messages import MESSAGE_TYPES, UnknownMessage

        raw = dict(self.raw)
        if self.msg_type == "event":
            name = self.event_lower or ""
            if name == "subscribe" and self.scene is not None:
                name, raw["Event"] = "subscribe_scan", "subscribe_scan"
                raw["EventKey"] = self.scene
            return EVENT_TYPES.get(name, UnknownMessage)(raw)
        return MESSAGE_TYPES.get(self.msg_type, UnknownMessage)(raw)


@dataclasses.dataclass(frozen=True)
class _Entry:
    priority: int
    seq: int
    fn: Handler


_HANDLERS: dict[tuple[str, str | None], list[_Entry]] = {}
_KEYWORDS: dict[str, Handler] = {}
_PURE: set[Handler] = set()
# (msg_type, event) -> its handlers in order; every message asks (the callback twice), and
# registrations change it only at import time and in tests
_ORDERED: dict[tuple[str, str | None], tuple[Handler, ...]] = {}
_seq = iter(range(10**9))


def _norm(value: str | None) -> str | None:
    return value.lower() if value else None


def on(
    msg_type: str, event: str | None = None, *, priority: int = DEFAULT_PRIORITY, pure: bool = False
):
    """Register a handler for a message type (and event); see the module docstring.

    ``pure=True`` declares that the handler only computes a reply: it may read (cached data,
    the database) but writes nothing, enqueues nothing and calls nobody. A message whose
    handlers are all pure is answered before the callback knows whether it is a retry.
    """

    def decorate(fn: Handler) -> Handler:
        if pure:
            _PURE.add(fn)
        key = (msg_type.lower(), _norm(event))
        entries = _HANDLERS.setdefault(key, [])
        if not any(e.fn is fn for e in entries):  # re-imports must not register twice
            entries.append(_Entry(priority, next(_seq), fn))
            _ORDERED.clear()
        return fn

    return decorate


def off(fn: Handler) -> None:
    """Unregister a handler everywhere (for tests and plug-ins that are switched off)."""
    for entries in _HANDLERS.values():
        entries[:] = [e for e in entries if e.fn is not fn]
    _ORDERED.clear()
    for word, handler in list(_KEYWORDS.items()):
        if handler is fn:
            del _KEYWORDS[word]
    _PURE.discard(fn)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The router's registrations at one moment (see ``snapshot``)."""

    handlers: dict[tuple[str, str | None], tuple[_Entry, ...]]
    keywords: dict[str, Handler]
    pure: frozenset[Handler]


def snapshot() -> Snapshot:
    """Every registration now, to be put back by ``restore`` (tests that register handlers)."""
    return Snapshot(
        handlers={k: tuple(v) for k, v in _HANDLERS.items()},
        keywords=dict(_KEYWORDS),
        pure=frozenset(_PURE),
    )


def restore(saved: Snapshot) -> None:
    """Put back the registrations of ``saved``: later ones are dropped, removed ones return."""
    _HANDLERS.clear()
    _HANDLERS.update({k: list(v) for k, v in saved.handlers.items()})
    _KEYWORDS.clear()
    _KEYWORDS.update(saved.keywords)
    _PURE.clear()
    _PURE.update(saved.pure)
    _ORDERED.clear()


def keyword(word: str, handler: Handler, *, pure: bool = False) -> None:
    """Register a built-in keyword (matched exactly, case-insensitively) answered by code;
    ``pure`` as for ``on``."""
    _KEYWORDS[normalize_text(word)] = handler
    if pure:
        _PURE.add(handler)


def is_pure(msg_type: str, event: str | None) -> bool:
    """Whether every handler of this message is pure (and there is one)."""
    handlers = handlers_for(msg_type, event)
    return bool(handlers) and all(fn in _PURE for fn in handlers)


def call(handler: Handler, ctx: Context) -> Reply | None:
    """Run a handler from inside another one (a built-in keyword from the chatbot): a
    handler that is not pure ends a speculative dispatch (``NotPure``)."""
    if ctx.speculative and handler not in _PURE:
        raise NotPure(handler)
    return handler(ctx)


def builtin_keyword(text: str) -> Handler | None:
    return _KEYWORDS.get(normalize_text(text))


def normalize_text(text: str | None) -> str:
    return (text or "").strip().casefold()


def handlers_for(msg_type: str, event: str | None) -> tuple[Handler, ...]:
    key = (msg_type, _norm(event))
    found = _ORDERED.get(key)
    if found is None:
        keys = [key, ("*", None)]
        if msg_type == "event" and event:
            keys.append(("event", None))
        entries = [e for k in keys for e in _HANDLERS.get(k, ())]
        found = _ORDERED[key] = tuple(
            e.fn for e in sorted(entries, key=lambda e: (e.priority, e.seq))
        )
    return found


def dispatch(ctx: Context) -> Reply | None:
    """Run every handler for the message; the first reply wins."""
    for fn in handlers_for(ctx.msg_type, ctx.event):
        reply = fn(ctx)
        if reply is not None and ctx.reply is None:
            ctx.reply = reply
    return ctx.reply


# --- rendering replies ---------------------------------------------------------------------

# Characters XML 1.0 does not allow; a reply containing one would be rejected by WeChat.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def cdata(text: str) -> str:
    """Text in a CDATA section. ``]]>`` is split so the text cannot close it (wechatpy
    does not do this, which lets a member inject elements into a reply)."""
    text = _INVALID_XML.sub("", text or "")
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def render(reply: Reply, *, to_user: str, from_user: str, create_time: int | None = None) -> str:
    """The passive-reply XML of ``reply``."""
    head = (
        f"<xml><ToUserName>{cdata(to_user)}</ToUserName>"
        f"<FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time or time.time())}</CreateTime>"
    )
    if isinstance(reply, TextReply):
        return (
            head
            + f"<MsgType><![CDATA[text]]></MsgType><Content>{cdata(reply.content)}</Content></xml>"
        )
    return (
        head + "<MsgType><![CDATA[news]]></MsgType><ArticleCount>1</ArticleCount><Articles><item>"
        f"<Title>{cdata(reply.title)}</Title><Description>{cdata(reply.description)}</Description>"
        f"<PicUrl>{cdata(reply.picurl)}</PicUrl><Url>{cdata(reply.url)}</Url></item></Articles></xml>"
    )
