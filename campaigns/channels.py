"""How a campaign's message reaches a member, one sender per channel, each used only as
WeChat and the law allow:

- ``template``: a service notice ("a coupon was added to your account") in today's format:
  no first/remark line, each keyword at most 20 characters (``wechat.notice.keywords``);
  never an advert, so only for campaigns that give a coupon.
- ``subscribe``: marketing text to members whose current choice for the template is accept
  with an acceptance left (one send per one-time opt-in; WeChat answers 43101 otherwise).
  The acceptance is taken before WeChat is called (``reserve_opt_ins``), so two pushes at
  once never send with the same one, and given back only when WeChat surely did not use it.
- ``mass``: the official account's message to a follower, at most 4 per member per natural
  month (counted with the frequency cap in ``campaign_member_contact``).
- ``customer_service``: only inside the 48 hours after the member's last message.
- ``sms``: 08:00-21:00 brand time only, with the opt-out line, through the pluggable SMS
  sender of members (``SMS_SENDER``; the sandbox keeps it in Redis).

A sender returns an ``Outcome``; WeChat's retryable errors (-1, 45009, 45011, timeouts)
propagate as ``gateway.RetryableError`` so the chunk backs off and resumes later.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask_babel import gettext as _
from sqlalchemy import text

from core.db import db
from members import consent
from members.activation import sms
from wechat import gateway, notice

SMS_HOURS = (8, 21)  # sends allowed from 08:00 to 21:00 brand time
CS_WINDOW = dt.timedelta(hours=48)
MASS_PER_MONTH = 4
ERR_UNFOLLOWED = 43004
ERR_NO_OPT_IN = 43101
# a mass message by openid list reaches 2 to 10,000 followers per call
MASS_MIN_OPENIDS, MASS_MAX_OPENIDS = 2, 10_000
CS_WINDOW_CLOSED = (45015, 45047)


@dataclasses.dataclass
class Outcome:
    """What became of one send: ``sent`` (with WeChat's msgid) or ``skipped``/``failed``
    with a reason (unfollowed, no_openid, no_opt_in, no_window, no_phone, quota, errcode)."""

    state: str
    reason: str | None = None
    msgid: int | None = None
    delivered: bool = False
    # subscribe sends: what became of the acceptance taken (used, refused, give_back) and
    # WeChat's msgid of the message (not a template msgid: delivery is not tracked by it)
    opt_in: str | None = None
    opt_in_msgid: str | None = None


@dataclasses.dataclass
class Target:
    member_id: int
    openid: str | None
    phone: str | None
    coupon_name: str | None
    valid_until: str | None


def sms_allowed(local: dt.datetime) -> bool:
    return SMS_HOURS[0] <= local.hour < SMS_HOURS[1]


def _ident(campaign_id: int, member_id: int) -> str:
    # WeChat drops a second template send with the same client_msg_id: a send retried after a
    # worker died between WeChat's answer and our commit reaches the member once.
    return f"cmp{campaign_id}m{member_id}"


def template_data(campaign, target: Target, brand_name: str) -> dict:
    """The service notice's keywords: the coupon, until when, where to find it."""
    return notice.keywords(
        target.coupon_name or campaign.title,
        target.valid_until or "",
        _("In your %(brand)s member account", brand=brand_name),
    )


def send_template(campaign, target: Target, *, brand_id: int, brand_name: str, url: str):
    if not target.openid:
        return Outcome("skipped", "no_openid")
    try:
        msgid = gateway.send_template(
            brand_id,
            target.openid,
            campaign.wx_template_id,
            template_data(campaign, target, brand_name),
            url=url,
            client_msg_id=_ident(campaign.id, target.member_id),
        )
    except gateway.RetryableError:
        raise
    except gateway.WeChatAPIError as exc:
        return _refused(exc)
    # delivery comes later with TEMPLATESENDJOBFINISH
    return Outcome("sent", msgid=msgid)


def subscribe_data(campaign) -> dict:
    return {
        "thing1": {"value": campaign.title[:20]},
        "thing2": {"value": campaign.body[:20]},
    }


def opt_in_key(campaign_id: int, member_id: int) -> str:
    """The idempotency key of the acceptance one push takes for one member."""
    return f"campaign:{campaign_id}:{member_id}"


def reserve_opt_ins(campaign, targets: list[Target]) -> dict[int, str]:
    """Take an acceptance of the campaign's template for each target that has one left
    (member id -> ``reserved``, or ``used`` when WeChat already reported the message of an
    earlier try); commit before sending, so the reservation holds while WeChat answers."""
    wanted = {opt_in_key(campaign.id, t.member_id): t for t in targets if t.openid}
    held = consent.reserve_sends(
        template_id=campaign.wx_template_id,
        wanted={k: t.openid for k, t in wanted.items()},
    )
    return {wanted[k].member_id: state for k, state in held.items()}


def settle_opt_ins(campaign_id: int, outcomes: dict[int, Outcome], *, uncertain=(), untried=()):
    """Record what became of the acceptances a batch took: used by a send, kept when WeChat
    said none was left or may have used it (``uncertain``: no answer), given back when
    WeChat refused for another reason or no send was tried (``untried``)."""
    used, refused, back = {}, [], [opt_in_key(campaign_id, m) for m in untried]
    for m, o in outcomes.items():
        if o.opt_in == "used":
            used[opt_in_key(campaign_id, m)] = o.opt_in_msgid
        elif o.opt_in == "refused":
            refused.append(opt_in_key(campaign_id, m))
        elif o.opt_in == "give_back":
            back.append(opt_in_key(campaign_id, m))
    consent.settle_sends(
        used=used,
        refused=refused,
        uncertain=[opt_in_key(campaign_id, m) for m in uncertain],
        give_back=back,
    )


def send_subscribe(campaign, target: Target, *, brand_id: int, url: str, held: dict[int, str]):
    if not target.openid:
        return Outcome("skipped", "no_openid")
    state = held.get(target.member_id)
    if state is None:
        return Outcome("skipped", "no_opt_in")
    if state == "used":
        # WeChat reported this message of an earlier try (its answer was lost): not again
        return Outcome("sent", delivered=True)
    try:
        msgid = gateway.send_subscribe_message(
            brand_id,
            target.openid,
            campaign.wx_template_id,
            subscribe_data(campaign),
            page=url,
            mini_program=False,
        )
    except gateway.RetryableError:
        raise
    except gateway.WeChatAPIError as exc:
        out = _refused(exc)
        # 43101: WeChat has no acceptance left, so ours was stale and stays taken; any other
        # refusal (unfollowed, a bad argument) did not use it
        out.opt_in = "refused" if exc.errcode == ERR_NO_OPT_IN else "give_back"
        return out
    return Outcome(
        "sent",
        delivered=True,
        opt_in="used",
        opt_in_msgid=str(msgid) if msgid is not None else None,
    )


def in_window(openids: list[str], *, now: dt.datetime) -> set[str]:
    """Of ``openids``, those who wrote to the official account within the last 48 hours."""
    if not openids:
        return set()
    rows = db.session.execute(
        text(
            "SELECT DISTINCT openid FROM wechat_inbound WHERE brand_id = :b"
            " AND openid = ANY(CAST(:ids AS text[])) AND msg_type <> 'event'"
            " AND created_at > :since"
        ),
        {"b": _brand(), "ids": openids, "since": now - CS_WINDOW},
    ).scalars()
    return set(rows)


def _brand() -> int:
    from core.tenancy import require_brand_id

    return require_brand_id()


def cs_text(campaign, url: str) -> str:
    return f"{campaign.title}\n{campaign.body}\n{url}".strip()


def send_customer_service(campaign, target: Target, *, brand_id: int, url: str, window: set[str]):
    if not target.openid:
        return Outcome("skipped", "no_openid")
    if target.openid not in window:
        return Outcome("skipped", "no_window")
    try:
        gateway.send_customer_message(
            brand_id,
            target.openid,
            {"msgtype": "text", "text": {"content": cs_text(campaign, url)}},
        )
    except gateway.RetryableError:
        raise
    except gateway.WeChatAPIError as exc:
        if exc.errcode in CS_WINDOW_CLOSED:
            return Outcome("skipped", "no_window")
        return _refused(exc)
    return Outcome("sent", delivered=True)


def send_mass(campaign, targets: list[Target], *, brand_id: int, url: str) -> dict[int, Outcome]:
    """The official account's mass message to a batch of followers in one call (the
    4-a-month quota is taken with the contact counter before this is called)."""
    out = {t.member_id: Outcome("skipped", "no_openid") for t in targets if not t.openid}
    reach = [t for t in targets if t.openid]
    if not reach:
        return out
    if len(reach) < MASS_MIN_OPENIDS:
        # WeChat sends a mass message by openid list to 2 to 10,000 followers, never to one
        out.update({t.member_id: Outcome("skipped", "mass_single") for t in reach})
        return out
    try:
        gateway.send_mass_text(brand_id, [t.openid for t in reach], cs_text(campaign, url))
    except gateway.RetryableError:
        raise
    except gateway.WeChatAPIError as exc:
        failed = _refused(exc)
        out.update({t.member_id: failed for t in reach})
        return out
    out.update({t.member_id: Outcome("sent") for t in reach})
    return out


def sms_text(campaign, brand_name: str, url: str) -> str:
    opt_out = _("Reply T to unsubscribe")
    return f"【{brand_name}】{campaign.title} {campaign.body} {url} {opt_out}".strip()


def send_sms(campaign, target: Target, *, brand_id: int, brand_name: str, url: str):
    if not target.phone:
        return Outcome("skipped", "no_phone")
    try:
        sms.get_sender().send(
            brand_id=brand_id,
            phone=target.phone,
            code="",
            text=sms_text(campaign, brand_name, url),
        )
    except sms.SmsError:
        return Outcome("failed", "sms")
    return Outcome("sent", delivered=True)


def _refused(exc: gateway.WeChatAPIError) -> Outcome:
    if exc.errcode == ERR_UNFOLLOWED:
        return Outcome("skipped", "unfollowed")
    if exc.errcode == ERR_NO_OPT_IN:
        return Outcome("skipped", "no_opt_in")
    return Outcome("failed", f"e{exc.errcode}")
