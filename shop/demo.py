"""`flask demo` step: the demo brand's shop catalog (categories, products with SKUs and
drawn images, a running flash sale)."""

from __future__ import annotations

import datetime as dt
import io

from PIL import Image, ImageDraw
from sqlalchemy import select

from core import storage
from core.cli import demo_step
from core.db import db, utcnow
from core.tenancy import use_brand
from org.models import Brand
from shop import catalog
from shop.catalog_queries import skus_by_product
from shop.models import Product

DEMO_SLUG = "demo"
SIZES = ("S", "M", "L", "XL")
CATEGORIES = (
    ("tops", "上衣", 40),
    ("bottoms", "裤装", 30),
    ("shoes", "鞋履", 20),
    ("acc", "配饰", 10),
)
# code, name, category, price (yuan), list price, colours (name, rgb), sizes, subtitle
PRODUCTS = (
    (
        "T100",
        "经典圆领T恤",
        "tops",
        99,
        129,
        (("黑", (40, 40, 40)), ("白", (235, 235, 230))),
        SIZES,
        "100%棉 · 四季百搭",
    ),
    (
        "T200",
        "宽松连帽卫衣",
        "tops",
        199,
        259,
        (("灰", (150, 150, 155)), ("藏青", (30, 45, 80))),
        SIZES,
        "加绒加厚",
    ),
    ("T300", "条纹长袖衬衫", "tops", 169, 0, (("蓝条", (90, 130, 190)),), ("M", "L"), "免烫面料"),
    (
        "T400",
        "轻薄羽绒马甲",
        "tops",
        299,
        399,
        (("黑", (35, 35, 40)), ("米", (220, 205, 175))),
        ("M", "L", "XL"),
        "90%白鸭绒",
    ),
    (
        "B100",
        "直筒牛仔裤",
        "bottoms",
        239,
        299,
        (("深蓝", (40, 60, 110)),),
        ("28", "30", "32"),
        "弹力修身",
    ),
    (
        "B200",
        "休闲运动裤",
        "bottoms",
        159,
        0,
        (("黑", (30, 30, 30)), ("灰", (140, 140, 140))),
        SIZES,
        "束脚设计",
    ),
    ("B300", "百褶半身裙", "bottoms", 189, 229, (("咖", (130, 95, 70)),), ("S", "M"), ""),
    (
        "S100",
        "帆布小白鞋",
        "shoes",
        219,
        269,
        (("白", (240, 240, 240)),),
        ("37", "38", "39", "40"),
        "经典低帮",
    ),
    (
        "S200",
        "缓震跑步鞋",
        "shoes",
        459,
        599,
        (("黑红", (60, 20, 25)), ("灰蓝", (110, 130, 160))),
        ("40", "41", "42"),
        "轻量回弹中底",
    ),
    (
        "A100",
        "羊毛针织围巾",
        "acc",
        129,
        169,
        (("酒红", (120, 25, 40)), ("燕麦", (210, 195, 170))),
        (),
        "柔软亲肤",
    ),
    ("A200", "帆布托特包", "acc", 89, 0, (("原色", (215, 200, 170)),), (), "大容量"),
    (
        "A300",
        "棒球帽",
        "acc",
        79,
        99,
        (("黑", (25, 25, 25)), ("卡其", (185, 160, 120))),
        (),
        "可调节",
    ),
)


def _image(rgb: tuple[int, int, int], shape: str, seed: int) -> bytes:
    """A square product picture: the colour on a soft background, drawn by category."""
    size = 640
    bg = tuple(min(255, 200 + (seed * 13 + i * 17) % 50) for i in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    edge = tuple(max(0, c - 40) for c in rgb)
    if shape == "tops":
        d.polygon([(170, 170), (250, 130), (390, 130), (470, 170), (540, 260), (470, 300),
                   (450, 280), (450, 520), (190, 520), (190, 280), (170, 300), (100, 260)],
                  fill=rgb, outline=edge, width=6)  # fmt: skip
    elif shape == "bottoms":
        d.polygon([(210, 120), (430, 120), (470, 540), (350, 540), (320, 250), (290, 540),
                   (170, 540)], fill=rgb, outline=edge, width=6)  # fmt: skip
    elif shape == "shoes":
        d.rounded_rectangle((110, 330, 540, 440), radius=50, fill=rgb, outline=edge, width=6)
        d.rounded_rectangle((130, 250, 360, 380), radius=60, fill=rgb, outline=edge, width=6)
        d.rectangle((110, 430, 540, 460), fill=(250, 250, 250))
    else:
        d.rounded_rectangle((170, 200, 470, 500), radius=40, fill=rgb, outline=edge, width=6)
        d.arc((230, 110, 410, 290), 180, 360, fill=edge, width=14)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


@demo_step(60)
def demo_shop() -> list[str]:
    """Four categories, twelve products with their SKUs and images, one flash sale."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return []
    with use_brand(brand.id):
        if db.session.execute(select(Product.id).limit(1)).first() is not None:
            return ["shop: catalog already loaded"]
        cats = {
            code: catalog.create_category(code=code, name=name, sort=sort)
            for code, name, sort in CATEGORIES
        }
        first = None
        for n, (code, name, cat, price, original, colours, sizes, subtitle) in enumerate(PRODUCTS):
            images = [
                storage.save_image(_image(rgb, cat, n + i), prefix=f"shop/b{brand.id}")
                for i, (_c, rgb) in enumerate(colours)
            ]
            skus = []
            for ci, (colour, _rgb) in enumerate(colours):
                for size in sizes or (None,):
                    spec = {"颜色": colour} | ({"尺码": size} if size else {})
                    stock = 3 if (n == 2 and size == "L") else 20 + (n * 7 + ci * 5) % 60
                    skus.append(
                        {
                            "code": f"{code}-{ci + 1}{('-' + size) if size else ''}",
                            "spec": spec,
                            "price_fen": price * 100,
                            "original_price_fen": original * 100,
                            "stock": stock,
                        }
                    )
            p = catalog.create_product(
                code=code,
                name=name,
                category_id=cats[cat].id,
                subtitle=subtitle,
                description=f"{name}，{subtitle or '品质之选'}。\n门店自提或快递到家。",
                images=images,
                on_sale=True,
                limit_per_member=5 if cat == "shoes" else 0,
                promotion=code == "A200",
                sort=len(PRODUCTS) - n,
                skus=skus,
                operator="demo",
            )
            first = first or p
        target = skus_by_product([first.id])[first.id][0]
        now = utcnow()
        catalog.create_flash_sale(
            sku_id=target.id,
            name="T恤限时秒杀",
            price_fen=4900,
            quantity=10,
            per_member_limit=1,
            starts_at=now - dt.timedelta(minutes=5),
            ends_at=now + dt.timedelta(days=2),
        )
        db.session.commit()
    return [f"shop: {len(CATEGORIES)} categories, {len(PRODUCTS)} products, a flash sale"]
