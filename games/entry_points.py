"""Ways into a game besides the member center's slot: a keyword of the official account
("游戏", "抽奖", "签到"...) that answers with the game's link, and a QR code poster (PNG) of
a campaign that the console offers for download (scanned in WeChat, it opens the game page,
through sign-in and activation for a newcomer)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from flask_babel import gettext as _

from core.auth import roles_required
from core.db import db
from core.tenancy import get_or_404
from games import member_pages
from games.models import CHECKIN, GameCampaign
from members.activation.posters import render_poster
from org.models import Brand
from wechat import router

qr_bp = Blueprint("games_qr", __name__, url_prefix="/console/games")

# Words a member may send to the official account to get the game link; a brand's own
# keyword rule with the same word wins (see wechat.router).
WORDS = ("游戏", "抽奖", "大转盘", "刮刮卡", "九宫格", "签到")
_KIND_WORDS = {"大转盘": "wheel", "刮刮卡": "scratch", "九宫格": "grid", "签到": CHECKIN}


def public_url(brand_slug: str, endpoint: str, **values) -> str:
    """An absolute link to a member page. Built from the URL map itself: the callback's fast
    path answers a keyword without a request context, where ``url_for`` cannot build."""
    path = current_app.url_map.bind("localhost").build(
        endpoint, {"brand_slug": brand_slug, **values}
    )
    return current_app.config["PUBLIC_URL"].rstrip("/") + path


def game_link(ctx: router.Context) -> router.Reply:
    """The open game (of the kind the word names, if it names one) as a news reply: one
    game links to itself, several to the list of games."""
    brand = db.session.get(Brand, ctx.brand_id)
    games = member_pages.open_campaigns()
    kind = _KIND_WORDS.get(router.normalize_text(ctx.content))
    if kind:
        games = [c for c in games if c.kind == kind] or games
    if not games:
        return router.TextReply(_("There is no game right now. Come back soon!"))
    if len(games) == 1:
        c = games[0]
        return router.NewsReply(
            title=c.name,
            description=_(
                "Tap to play. %(when)s", when=member_pages.window_text(c, brand.timezone)
            ),
            url=public_url(brand.slug, "games_member.game", campaign_id=c.id),
        )
    return router.NewsReply(
        title=_("%(brand)s games", brand=brand.name),
        description="、".join(c.name for c in games[:5]),
        url=public_url(brand.slug, "games_member.games"),
    )


def register_keywords() -> None:
    for word in WORDS:
        router.keyword(word, game_link, pure=True)


@qr_bp.get("/<int:campaign_id>/qr.png")
@roles_required("brand_admin")
def qr_poster(campaign_id: int):
    """A printable poster with the campaign's QR code (the game page's address)."""
    campaign = get_or_404(GameCampaign, campaign_id)
    brand = db.session.get(Brand, campaign.brand_id)
    url = public_url(brand.slug, "games_member.game", campaign_id=campaign.id)
    png = render_poster(
        brand=(brand.name, brand.slug),
        title=(campaign.name, "Game"),
        subtitle=(str(member_pages.GAME_NAMES.get(campaign.kind, "")), ""),
        call_to_action=(_("Scan with WeChat to play"), "Scan with WeChat"),
        qr_data=url,
    )
    return Response(
        png,
        mimetype="image/png",
        headers={"Content-Disposition": f'attachment; filename="game-{campaign.id}.png"'},
    )
