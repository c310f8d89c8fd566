"""`flask demo`: the demo brand's greeting, keyword replies and custom menu."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from core.cli import demo_step
from core.db import db
from core.tenancy import use_brand
from org.models import Brand
from wechat import chatbot
from wechat.models import KeywordReply

DEMO_SLUG = "demo"

GREETING = (
    "欢迎关注示范品牌！🎉\n回复「会员」了解如何入会，回复「门店」查看门店，回复「优惠」看本月活动。"
)
DEFAULT_REPLY = "收到您的消息啦～导购会尽快回复。也可以回复「会员」「门店」「优惠」试试。"


def _keywords(public_url: str) -> list[dict]:
    base = dict(
        title="",
        description="",
        url="",
        picurl="",
        starts_at=None,
        ends_at=None,
        active=True,
        text="",
    )
    return [
        {
            **base,
            "keyword": "会员",
            "match": "contains",
            "priority": 10,
            "reply_type": "text",
            "text": "加入会员：点击菜单「会员中心」→「立即入会」，填写手机号即可领取会员卡，"
            "消费即可累积积分。入会后在「我的会员卡」查看积分和优惠券。",
        },
        {
            **base,
            "keyword": "门店",
            "match": "contains",
            "priority": 10,
            "reply_type": "text",
            "text": "我们的门店：\n上海南京西路店 · 静安区南京西路1266号\n"
            "上海徐家汇店 · 徐汇区虹桥路1号\n杭州湖滨店 · 上城区延安路258号",
        },
        {
            **base,
            "keyword": "优惠",
            "match": "contains",
            "priority": 5,
            "reply_type": "news",
            "title": "本月会员专享：满300减50",
            "description": "会员到店消费满300元立减50元，点击进入会员中心查看。",
            "url": f"{public_url}/m/{DEMO_SLUG}/",
            "picurl": "",
        },
        {
            **base,
            "keyword": "MENU_STORES",
            "match": "exact",
            "priority": 0,
            "reply_type": "text",
            "text": "门店：上海南京西路店、上海徐家汇店、杭州湖滨店。回复「门店」查看地址。",
        },
        {
            **base,
            "keyword": "MENU_SERVICE",
            "match": "exact",
            "priority": 0,
            "reply_type": "text",
            "text": "客服时间 9:00-21:00，直接发消息给我们即可，导购会尽快回复。",
        },
    ]


def _menu(public_url: str) -> dict:
    center = f"{public_url}/m/{DEMO_SLUG}"
    return {
        "button": [
            {
                "name": "会员中心",
                "sub_button": [
                    {"type": "view", "name": "我的会员卡", "url": f"{center}/"},
                    {"type": "view", "name": "立即入会", "url": f"{center}/activate"},
                    {"type": "click", "name": "如何入会", "key": "会员"},
                ],
            },
            {"type": "click", "name": "门店", "key": "MENU_STORES"},
            {
                "name": "更多",
                "sub_button": [
                    {"type": "click", "name": "本月优惠", "key": "优惠"},
                    {"type": "click", "name": "联系客服", "key": "MENU_SERVICE"},
                ],
            },
        ]
    }


@demo_step(20)
def demo_chatbot() -> list[str]:
    """Greeting, keyword replies and a two-level menu for the demo brand (idempotent)."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return ["wechat: no demo brand, chatbot skipped"]
    public_url = current_app.config.get("PUBLIC_URL", "http://127.0.0.1:5000")
    with use_brand(brand.id):
        settings = chatbot.get_settings()
        if not settings.greeting and not settings.default_reply:
            chatbot.save_replies(greeting=GREETING, default_reply=DEFAULT_REPLY)
        existing = {k.lower() for k in db.session.execute(select(KeywordReply.keyword)).scalars()}
        added = 0
        for fields in _keywords(public_url):
            if fields["keyword"].lower() not in existing:
                chatbot.create_keyword(**fields)
                added += 1
        menu = _menu(public_url)
        if settings.menu != chatbot.validate_menu(menu) or settings.menu_status != "published":
            chatbot.save_menu(menu=menu)
            chatbot.publish_menu(brand_id=brand.id)
    return [
        f"WeChat chatbot of the demo brand: greeting, {added} new keyword replies, "
        "menu queued for publication (reply 会员 / 门店 / 优惠 in the phone simulator)"
    ]
