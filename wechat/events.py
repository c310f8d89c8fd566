"""Typed views of events that carry lists: the subscribe-message (订阅通知) events.

WeChat sends one ``<List>`` per template inside a container element::

    subscribe_msg_popup_event   <SubscribeMsgPopupEvent><List>TemplateId,
                                SubscribeStatusString, PopupScene</List>...</...>
    subscribe_msg_change_event  <SubscribeMsgChangeEvent><List>TemplateId,
                                SubscribeStatusString</List>...</...>
    subscribe_msg_sent_event    <SubscribeMsgSentEvent><List>TemplateId, MsgID, ErrorCode,
                                ErrorStatus</List>...</...>

The callback reads them before any handler runs (a malformed list is answered 400 and
reaches nobody) and hands them to handlers as ``ctx.subscribe_choices`` /
``ctx.subscribe_sent``: a tuple in document order, of one when WeChat sent one template.
"""

from __future__ import annotations

import dataclasses

from wechat.wire import BadMessage, children, text

POPUP = "subscribe_msg_popup_event"
CHANGE = "subscribe_msg_change_event"
SENT = "subscribe_msg_sent_event"
# event (lower case) -> the element holding its <List>s
_CONTAINERS = {
    POPUP: "SubscribeMsgPopupEvent",
    CHANGE: "SubscribeMsgChangeEvent",
    SENT: "SubscribeMsgSentEvent",
}


@dataclasses.dataclass(frozen=True, slots=True)
class SubscribeChoice:
    """What the user chose for one template (popup) or changed later (change)."""

    template_id: str
    # WeChat's SubscribeStatusString as sent: "accept", "reject" (popup), "ban", ...
    status: str
    # PopupScene of a popup event (0 mini-program page, 1 profile page, 2 article), else None
    popup_scene: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SubscribeSent:
    """The outcome of one subscribe message we sent."""

    template_id: str
    msg_id: str | None
    error_code: int | None  # 0 delivered; WeChat's code otherwise
    error_status: str | None  # "success", "failed:user refuse to accept the msg", ...


def _entries(msg: dict, event: str) -> list[dict]:
    container = msg.get(_CONTAINERS[event])
    if container is None or container == "":
        return []
    if not isinstance(container, dict):
        raise BadMessage(f"<{_CONTAINERS[event]}> is not a list")
    entries = children(container, "List")
    if not all(isinstance(e, dict) for e in entries):
        raise BadMessage("a <List> entry is not an element list")
    return entries


def _number(entry: dict, name: str) -> int | None:
    value = text(entry, name, max_len=12)
    if value is None:
        return None
    if not value.lstrip("-").isdigit():
        raise BadMessage(f"<{name}> is not a number")
    return int(value)


def subscribe_choices(event: str | None, msg: dict) -> tuple[SubscribeChoice, ...]:
    """The choices of a popup or change event (``event`` in lower case); () for others."""
    if event not in (POPUP, CHANGE):
        return ()
    return tuple(
        SubscribeChoice(
            template_id=text(e, "TemplateId", max_len=128, required=True),
            status=text(e, "SubscribeStatusString", max_len=64, required=True),
            popup_scene=_number(e, "PopupScene"),
        )
        for e in _entries(msg, event)
    )


def subscribe_sent(event: str | None, msg: dict) -> tuple[SubscribeSent, ...]:
    """The outcomes of a sent event (``event`` in lower case); () for others."""
    if event != SENT:
        return ()
    return tuple(
        SubscribeSent(
            template_id=text(e, "TemplateId", max_len=128, required=True),
            msg_id=text(e, "MsgID", max_len=64),
            error_code=_number(e, "ErrorCode"),
            error_status=text(e, "ErrorStatus", max_len=256),
        )
        for e in _entries(msg, event)
    )
