"""The chatbot: follow greeting, keyword replies, default reply and the custom menu.

Services (keyword-only, flush, never commit) used by the console and the demo, and the router
handlers that answer from the brand's rules. The callback caches each brand's rules in
process memory keyed by ``ChatbotSettings.rev``, a random token replaced on every change and
published to Redis when the change is committed (``brand_cache``), so an edit takes effect
on the next message in every process.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import uuid

from flask_babel import gettext as _
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from core.db import db, savepoint_event, utcnow
from core.errors import Conflict, ValidationError
from core.jobs import enqueue
from core.tenancy import current_brand_id
from wechat import brand_cache, router
from wechat.models import MATCH_TYPES, REPLY_TYPES, ChatbotSettings, KeywordReply

# WeChat's passive text reply holds at most 2048 bytes.
MAX_TEXT_BYTES = 2048


# --- services ------------------------------------------------------------------------------


def get_settings() -> ChatbotSettings:
    """The current brand's chatbot settings, created empty on first use."""
    row = db.session.execute(select(ChatbotSettings)).scalar_one_or_none()
    if row is None:
        row = ChatbotSettings(greeting="", default_reply="", menu=None)
        db.session.add(row)
        db.session.flush()
        _touch(row)
    return row


log = logging.getLogger(__name__)
_REVS = "wmb_chatbot_revs"


def _touch(settings: ChatbotSettings | None = None) -> None:
    settings = settings or get_settings()
    settings.rev = uuid.uuid4().hex
    brand_id = settings.brand_id or current_brand_id()
    if brand_id is not None:
        db.session.info.setdefault(_REVS, {})[brand_id] = settings.rev


@event.listens_for(Session, "after_commit")
def _publish_revs(session: Session) -> None:
    if savepoint_event(session):
        return
    revs = session.info.pop(_REVS, None)
    for brand_id, rev in (revs or {}).items():
        try:
            brand_cache.publish_chatbot_rev(brand_id, rev)
        except Exception:
            # Callbacks still see the new revision through the database within a few seconds.
            log.warning("chatbot revision of brand %s not published", brand_id, exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_revs(session: Session) -> None:
    if savepoint_event(session):
        return
    session.info.pop(_REVS, None)


def _check_text(value: str, field: str, *, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ValidationError(_("This field is required."), field=field)
    if len(value.encode()) > MAX_TEXT_BYTES:
        raise ValidationError(
            _("At most %(n)d bytes (about 680 Chinese characters).", n=MAX_TEXT_BYTES),
            field=field,
        )
    return value


def save_replies(*, greeting: str, default_reply: str) -> ChatbotSettings:
    """Set the follow greeting and the default reply (either may be empty: no reply)."""
    greeting = _check_text(greeting, "greeting")
    default_reply = _check_text(default_reply, "default_reply")
    settings = get_settings()
    settings.greeting, settings.default_reply = greeting, default_reply
    _touch(settings)
    db.session.flush()
    return settings


def _http_url(value: str, field: str, *, required: bool) -> str:
    value = (value or "").strip()
    if not value:
        if required:
            raise ValidationError(_("This field is required."), field=field)
        return ""
    if not value.startswith(("http://", "https://")) or len(value) > 1024 or " " in value:
        raise ValidationError(_("Enter a link starting with http:// or https://."), field=field)
    return value


def _keyword_values(
    *,
    keyword: str,
    match: str,
    priority: int,
    reply_type: str,
    text: str,
    title: str,
    description: str,
    url: str,
    picurl: str,
    starts_at: dt.datetime | None,
    ends_at: dt.datetime | None,
    active: bool,
    exclude_id: int | None,
) -> dict:
    keyword = (keyword or "").strip()
    if not keyword:
        raise ValidationError(_("This field is required."), field="keyword")
    if len(keyword) > 60:
        raise ValidationError(_("At most 60 characters."), field="keyword")
    if match not in MATCH_TYPES:
        raise ValidationError(_("Choose how the keyword matches."), field="match")
    if reply_type not in REPLY_TYPES:
        raise ValidationError(_("Choose a reply type."), field="reply_type")
    if not isinstance(priority, int) or not 0 <= priority <= 1000:
        raise ValidationError(_("A whole number from 0 to 1000."), field="priority")
    values = dict(
        keyword=keyword,
        match=match,
        priority=priority,
        reply_type=reply_type,
        text="",
        title="",
        description="",
        url="",
        picurl="",
        active=bool(active),
    )
    if reply_type == "text":
        values["text"] = _check_text(text, "text", required=True)
    else:
        title, description = (title or "").strip(), (description or "").strip()
        if not title:
            raise ValidationError(_("This field is required."), field="title")
        if len(title) > 64:
            raise ValidationError(_("At most 64 characters."), field="title")
        if len(description) > 120:
            raise ValidationError(_("At most 120 characters."), field="description")
        values.update(
            title=title,
            description=description,
            url=_http_url(url, "url", required=True),
            picurl=_http_url(picurl, "picurl", required=False),
        )
    for name, when in (("starts_at", starts_at), ("ends_at", ends_at)):
        if when is not None and when.tzinfo is None:
            raise ValidationError(_("Enter a valid date and time."), field=name)
    if starts_at and ends_at and starts_at >= ends_at:
        raise ValidationError(_("The end must be after the start."), field="ends_at")
    values.update(starts_at=starts_at, ends_at=ends_at)
    dup = select(KeywordReply.id).where(func.lower(KeywordReply.keyword) == keyword.lower())
    if exclude_id is not None:
        dup = dup.where(KeywordReply.id != exclude_id)
    if db.session.execute(dup).first() is not None:
        raise Conflict(_("This keyword already has a reply."), field="keyword")
    return values


def create_keyword(**fields) -> KeywordReply:
    """Add a keyword reply (fields as in ``KeywordReply``)."""
    values = _keyword_values(exclude_id=None, **fields)
    rule = KeywordReply(**values)
    db.session.add(rule)
    _touch()
    db.session.flush()
    return rule


def update_keyword(*, rule: KeywordReply, **fields) -> KeywordReply:
    """Change a keyword reply."""
    values = _keyword_values(exclude_id=rule.id, **fields)
    for key, value in values.items():
        setattr(rule, key, value)
    _touch()
    db.session.flush()
    return rule


def delete_keyword(*, rule: KeywordReply) -> None:
    """Remove a keyword reply."""
    db.session.delete(rule)
    _touch()
    db.session.flush()


def list_keywords():
    """The brand's keyword replies, as they are matched (priority, then age)."""
    return select(KeywordReply).order_by(KeywordReply.priority.desc(), KeywordReply.id)


MENU_TYPES = ("click", "view")


def _byte_len(value: str) -> int:
    return len(value.encode())


def _menu_item(item: object, where: str, *, top: bool) -> dict:
    if not isinstance(item, dict):
        raise ValidationError(_("%(where)s: not a menu item.", where=where), field="menu")
    name = str(item.get("name") or "").strip()
    limit = 16 if top else 60
    if not name:
        raise ValidationError(_("%(where)s: a name is required.", where=where), field="menu")
    if _byte_len(name) > limit:
        raise ValidationError(
            _(
                "%(where)s: the name is too long (at most %(n)d bytes; a Chinese character is 3).",
                where=where,
                n=limit,
            ),
            field="menu",
        )
    subs = item.get("sub_button")
    if top and subs:
        if not isinstance(subs, list) or len(subs) > 5:
            raise ValidationError(_("%(where)s: at most 5 sub-items.", where=where), field="menu")
        return {
            "name": name,
            "sub_button": [
                _menu_item(s, _("%(where)s, item %(n)d", where=where, n=j + 1), top=False)
                for j, s in enumerate(subs)
            ],
        }
    kind = str(item.get("type") or "").strip().lower()
    if kind == "click":
        key = str(item.get("key") or "").strip()
        if not key or _byte_len(key) > 128:
            raise ValidationError(
                _("%(where)s: a click item needs a key of 1 to 128 bytes.", where=where),
                field="menu",
            )
        return {"type": "click", "name": name, "key": key}
    if kind == "view":
        url = str(item.get("url") or "").strip()
        if not url.startswith(("http://", "https://")) or _byte_len(url) > 1024 or " " in url:
            raise ValidationError(
                _(
                    "%(where)s: a link item needs a URL starting with http:// or https://.",
                    where=where,
                ),
                field="menu",
            )
        return {"type": "view", "name": name, "url": url}
    raise ValidationError(
        _("%(where)s: choose a type (reply to a click, or open a link).", where=where), field="menu"
    )


def validate_menu(menu: object) -> dict:
    """A menu checked against WeChat's limits, in WeChat's JSON form: 1-3 buttons, each a
    click item, a link (view) item or a group of 1-5 of them; names at most 16 bytes on the
    top level and 60 below."""
    buttons = menu.get("button") if isinstance(menu, dict) else None
    if not isinstance(buttons, list) or not buttons:
        raise ValidationError(_("The menu needs at least one button."), field="menu")
    if len(buttons) > 3:
        raise ValidationError(_("The menu has at most 3 buttons."), field="menu")
    return {
        "button": [
            _menu_item(b, _("Button %(n)d", n=i + 1), top=True) for i, b in enumerate(buttons)
        ]
    }


def save_menu(*, menu: dict) -> ChatbotSettings:
    """Store a validated menu as a draft (published separately)."""
    menu = validate_menu(menu)
    settings = get_settings()
    settings.menu = menu
    settings.menu_status = "draft"
    settings.menu_error = None
    _touch(settings)
    db.session.flush()
    return settings


def publish_menu(*, brand_id: int) -> None:
    """Queue the publication of the saved menu to WeChat."""
    from wechat import jobs

    settings = get_settings()
    if not settings.menu:
        raise ValidationError(_("Save a menu before publishing it."), field="menu")
    settings.menu_status = "publishing"
    settings.menu_error = None
    db.session.flush()
    enqueue(jobs.publish_menu, brand_id, brand_id=brand_id)


# --- matching ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Rule:
    id: int
    keyword: str  # normalized
    match: str
    priority: int
    reply: router.Reply
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    active: bool

    def live(self, now: dt.datetime) -> bool:
        if not self.active or (self.starts_at is not None and now < self.starts_at):
            return False
        return self.ends_at is None or now < self.ends_at

    def sort_key(self) -> tuple:
        return (-self.priority, self.match != "exact", self.id)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    greeting: str = ""
    default_reply: str = ""
    rules: tuple[_Rule, ...] = ()


_EMPTY = Snapshot()
_CACHE: dict[int, tuple[str, Snapshot]] = {}
_LOCK = threading.Lock()


def _load_snapshot() -> Snapshot:
    settings = db.session.execute(select(ChatbotSettings)).scalar_one_or_none()
    if settings is None:
        return _EMPTY
    rules = []
    for r in db.session.execute(list_keywords()).scalars():
        reply = (
            router.TextReply(r.text)
            if r.reply_type == "text"
            else router.NewsReply(r.title, r.description, r.url, r.picurl)
        )
        rules.append(
            _Rule(
                r.id,
                router.normalize_text(r.keyword),
                r.match,
                r.priority,
                reply,
                r.starts_at,
                r.ends_at,
                r.active,
            )
        )
    rules.sort(key=_Rule.sort_key)
    return Snapshot(settings.greeting or "", settings.default_reply or "", tuple(rules))


def snapshot(brand_id: int, rev: str | None) -> Snapshot:
    """The brand's rules at revision ``rev`` (None: the brand has no chatbot settings)."""
    if rev is None:
        return _EMPTY
    cached = _CACHE.get(brand_id)
    if cached is not None and cached[0] == rev:
        return cached[1]
    snap = _load_snapshot()
    with _LOCK:
        _CACHE[brand_id] = (rev, snap)
    return snap


def match_keyword(
    snap: Snapshot,
    text: str,
    ctx: router.Context | None = None,
    *,
    allow_contains: bool = True,
    now: dt.datetime | None = None,
) -> router.Reply | None:
    """The reply for ``text``: brand exact rules, built-in keywords, brand contains rules."""
    norm = router.normalize_text(text)
    if not norm:
        return None
    now = now or utcnow()
    live = [r for r in snap.rules if r.live(now)]
    exact = [r for r in live if r.keyword == norm]
    contains = [r for r in live if allow_contains and r.match == "contains" and r.keyword in norm]
    if exact:
        # an exact hit means the brand wrote a rule for this very word: its rules decide
        return min(exact + contains, key=_Rule.sort_key).reply
    builtin = router.builtin_keyword(norm)
    if builtin is not None and ctx is not None:
        reply = router.call(builtin, ctx)
        if reply is not None:
            return reply
    if contains:
        return contains[0].reply
    return None


# --- router handlers -----------------------------------------------------------------------


@router.on("event", "subscribe", priority=router.CHATBOT)
def greet(ctx: router.Context) -> router.Reply | None:
    greeting = snapshot(ctx.brand_id, ctx.chatbot_rev).greeting
    if not greeting:
        return None
    if ctx.reply is not None:
        # A domain answered the follow (e.g. a member-card link for a store's QR code): the
        # one passive reply is theirs, so the greeting follows as a customer-service message
        # (allowed within a minute of a follow).
        ctx.reply_later({"msgtype": "text", "text": {"content": greeting}})
        return None
    return router.TextReply(greeting)


@router.on("text", priority=router.CHATBOT, pure=True)
def answer_text(ctx: router.Context) -> router.Reply | None:
    if ctx.reply is not None:
        return None
    snap = snapshot(ctx.brand_id, ctx.chatbot_rev)
    reply = match_keyword(snap, ctx.content or "", ctx)
    if reply is None and snap.default_reply:
        reply = router.TextReply(snap.default_reply)
    return reply


@router.on("event", "CLICK", priority=router.CHATBOT, pure=True)
def answer_click(ctx: router.Context) -> router.Reply | None:
    """A CLICK menu item answers with the keyword reply whose keyword is the item's key."""
    if ctx.reply is not None:
        return None
    snap = snapshot(ctx.brand_id, ctx.chatbot_rev)
    return match_keyword(snap, ctx.event_key or "", ctx, allow_contains=False)


def _default_reply(ctx: router.Context) -> router.Reply | None:
    if ctx.reply is not None:
        return None
    text = snapshot(ctx.brand_id, ctx.chatbot_rev).default_reply
    return router.TextReply(text) if text else None


for _kind in ("image", "voice", "video", "shortvideo", "location", "link"):
    router.on(_kind, priority=router.CHATBOT, pure=True)(_default_reply)
