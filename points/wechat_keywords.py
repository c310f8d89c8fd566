"""The built-in keyword "积分" of the official account: the member's points, from live data.

Pure (it reads the member and the account, writes nothing), so the callback answers it in one
Redis round trip like the brand's own keyword replies.
"""

from __future__ import annotations

from flask_babel import gettext as _

from core.db import db
from members.identities import find_by_identity
from org.models import Brand
from points import queries
from wechat import router

WORDS = ("积分", "我的积分")


def points_balance(ctx: router.Context) -> router.Reply:
    member = find_by_identity(kind="oa_openid", value=ctx.openid)
    if member is None or not member.holds_card:
        return router.TextReply(
            _("You are not a member yet: scan a store's QR code to activate your member card.")
        )
    balance = queries.balance(member.id)
    lines = [_("Points available: %(n)s", n=balance.balance)]
    if balance.pending:
        lines.append(_("Pending (after the return window): %(n)s", n=balance.pending))
    if balance.debt:
        lines.append(_("Owed: %(n)s", n=balance.debt))
    soon = queries.expiring_soon(member.id, within_days=30)
    if soon:
        brand = db.session.get(Brand, ctx.brand_id)
        lines.append(
            _(
                "%(n)s points expire by %(day)s",
                n=sum(e.points for e in soon),
                day=brand.local(soon[-1].expires_at).strftime("%Y-%m-%d"),
            )
        )
    return router.TextReply("\n".join(lines))


for _word in WORDS:
    router.keyword(_word, points_balance, pure=True)
