"""Demo: the first guides of the demo brand open their shops (a face picture, an intro, three
or four products with a line each, the poster's mini-program code); the demo members bound
to guides when they were activated by them show in the binding pages."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw
from sqlalchemy import func, select

from core.cli import demo_step
from core.db import db
from core.tenancy import use_brand
from guide_distribution import shops
from guide_distribution.models import CustomerBinding, GuideShopItem
from org.models import Brand, Staff
from shop import catalog_queries
from shop.models import Product
from wechat import gateway

DEMO_SLUG = "demo"
INTROS = (
    "在店里工作五年，最懂搭配，欢迎来问尺码。",
    "通勤穿搭小能手，每周上新第一时间分享。",
    "运动系导购，跑步、健身装备找我就对了。",
)
LINES = ("店里卖得最好的一款", "面料舒服，回购率很高", "这季新色，很显气色", "搭配百搭，闭眼入")
FACES = ((232, 170, 160), (170, 200, 230), (190, 220, 180))


def _face(rgb: tuple[int, int, int], letter_seed: int) -> bytes:
    img = Image.new("RGB", (320, 320), rgb)
    d = ImageDraw.Draw(img)
    d.ellipse((90, 60, 230, 200), fill=(250, 225, 205))
    d.pieslice((40, 190, 280, 430), 180, 360, fill=tuple(max(0, c - 60) for c in rgb))
    d.ellipse((125, 115, 140, 130), fill=(60, 50, 50))
    d.ellipse((180, 115, 195, 130), fill=(60, 50, 50))
    d.arc((135, 140, 185, 175), 20, 160, fill=(180, 80, 80), width=4 + letter_seed % 2)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


@demo_step(75)
def demo_guide_shops() -> list[str]:
    """Three guides' shops with their products and posters."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return []
    with use_brand(brand.id):
        guides = list(
            db.session.execute(
                select(Staff)
                .where(Staff.role == "guide", Staff.active.is_(True))
                .order_by(Staff.phone)
                .limit(3)
            ).scalars()
        )
        products = list(
            db.session.execute(
                catalog_queries.listed_products().order_by(Product.sort.desc()).limit(12)
            ).scalars()
        )
        if not guides or not products:
            return ["guide shops: no guides or products in the demo brand"]
        have = db.session.scalar(select(func.count()).select_from(GuideShopItem))
        if not have:
            for i, guide in enumerate(guides):
                shops.update_profile(
                    guide_id=guide.id, intro=INTROS[i % len(INTROS)], photo=_face(FACES[i], i)
                )
                picks = products[i * 3 : i * 3 + 4] or products[:4]
                for j, p in enumerate(picks):
                    shops.add_item(guide_id=guide.id, product_id=p.id, line=LINES[j % len(LINES)])
        posters = 0
        for guide in guides:
            try:
                shops.ensure_wxacode(guide_id=guide.id)
                posters += 1
            except gateway.WeChatError:
                db.session.rollback()
                break
        bound = db.session.scalar(
            select(func.count())
            .select_from(CustomerBinding)
            .where(CustomerBinding.guide_id.is_not(None))
        )
        links = [
            f"  {g.name} ({g.phone}): /m/{brand.slug}/guide/{shops.share_token(g.id)}"
            for g in guides
        ]
    return [
        f"Guide shops: {len(guides)} guides with shops, {posters} posters, {bound} customers "
        "bound to guides; the guides see theirs under /console/workbench/shop; share links:",
        *links,
    ]
