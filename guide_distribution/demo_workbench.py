"""`flask demo` step: what the demo brand's guides see in their workbench: the members the
demo gave a guide bound to that guide, a few till sales by each guide (real till orders: the
attribution and performance ledger record them as for any sale), this month's targets, two
materials with drawn pictures and a task from HQ (idempotent: keyed by codes and titles)."""

from __future__ import annotations

import datetime as dt
import io

from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from core import storage
from core.cli import demo_step
from core.db import db, utcnow
from core.tenancy import use_brand
from guide_distribution import materials, targets, tasks
from guide_distribution.models import CustomerBinding, GuideTask, Material
from members.models import Member
from org.models import Brand, Staff
from shop import numbers, till
from shop.models import Product

DEMO_SLUG = "demo"
# Per guide (in phone order): till sales in yuan.
SALES = ((399, 159, 89), (259, 99), (599,), (129, 79, 49, 199))
MATERIALS = (
    (
        "冬季新品上市",
        "冬季新品上市！加绒卫衣、羽绒马甲到店，会员下单享 9 折，进店找我领券～",
        (30, 45, 80),
    ),
    (
        "周末会员日",
        "本周六会员日：积分翻倍，满 300 减 50。想要的款式提前发我，帮你留码！",
        (200, 40, 50),
    ),
)
TASK_TITLE = "双十二新品推荐"


def _picture(rgb: tuple[int, int, int], label: str) -> bytes:
    """A 600x600 poster-like picture: the colour, a light band and a T-shirt outline."""
    img = Image.new("RGB", (600, 600), rgb)
    draw = ImageDraw.Draw(img)
    light = tuple(min(255, c + 90) for c in rgb)
    draw.rectangle((0, 430, 600, 600), fill=light)
    shirt = [(190, 150), (250, 120), (350, 120), (410, 150), (480, 230), (420, 270),
             (400, 250), (400, 470), (200, 470), (200, 250), (180, 270), (120, 230)]  # fmt: skip
    draw.polygon(shirt, fill=(250, 250, 248), outline=(255, 255, 255))
    draw.arc((265, 100, 335, 160), 0, 180, fill=rgb, width=8)
    for i in range(3):
        draw.ellipse((60 + i * 40, 520, 84 + i * 40, 544), fill=rgb)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _bind_members(guides: list[Staff]) -> int:
    by_id = {g.id: g for g in guides}
    members = db.session.execute(
        select(Member.id, Member.guide_id).where(Member.guide_id.in_(list(by_id)))
    ).all()
    now = utcnow()
    n = 0
    for member_id, guide_id in members:
        added = db.session.execute(
            insert(CustomerBinding)
            .values(
                brand_id=by_id[guide_id].brand_id,
                member_id=member_id,
                store_id=by_id[guide_id].store_id,
                guide_id=guide_id,
                source="activation",
                bound_at=now,
                protected_until=now + dt.timedelta(days=15),
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["brand_id", "member_id"])
            .returning(CustomerBinding.id)
        ).scalar()
        n += added is not None
    return n


def _sales(guides: list[Staff]) -> int:
    made = 0
    for guide, amounts in zip(guides, SALES, strict=False):
        if guide.store_id is None:
            continue
        for i, yuan in enumerate(amounts):
            data = till.TillOrderIn(
                idempotency_key=f"demo-guide-{guide.phone}-{i}",
                pos_order_no=f"DEMO-G{guide.id}-{i}",
                lines=[till.TillLine(name="门店商品", unit_price_fen=yuan * 100, quantity=1)],
                pay_fen=yuan * 100,
                guide_phone=guide.phone,
            )
            _order, created = till.create_order(store_id=guide.store_id, data=data, key_id=0)
            made += created
    return made


@demo_step(82)
def demo_guide_workbench() -> list[str]:
    brand = db.session.execute(
        select(Brand).where(Brand.slug == DEMO_SLUG).execution_options(all_brands=True)
    ).scalar_one_or_none()
    if brand is None:
        return []
    with use_brand(brand.id):
        guides = list(
            db.session.execute(
                select(Staff)
                .where(Staff.role == "guide", Staff.active.is_(True))
                .order_by(Staff.phone)
            ).scalars()
        )
        if not guides:
            return []
        bound = _bind_members(guides)
        sales = _sales(guides)
        month = targets.month_start(numbers.local_day())
        for i, guide in enumerate(guides):
            if targets.target_of(guide_id=guide.id, month=month) is None:
                targets.set_guide_target(
                    guide_id=guide.id, month=month, target_fen=(2000 + 500 * i) * 100
                )
        have = set(db.session.execute(select(Material.title)).scalars())
        for title, body, rgb in MATERIALS:
            if title not in have:
                key = storage.save_image(_picture(rgb, title), prefix=materials.image_prefix())
                materials.create_material(title=title, body=body, images=[key])
        if (
            db.session.execute(select(GuideTask.id).where(GuideTask.title == TASK_TITLE)).first()
            is None
        ):
            product_id = db.session.execute(
                select(Product.id).where(Product.on_sale.is_(True)).order_by(Product.id).limit(1)
            ).scalar()
            tasks.create_task(
                title=TASK_TITLE,
                body="双十二新品到店，老顾客专享 8 折，欢迎来店试穿！",
                product_id=product_id,
                deadline=utcnow() + dt.timedelta(days=7),
                guide_ids=[g.id for g in guides],
            )
        db.session.commit()
    return [
        f"Guide workbench: {bound} members bound to their guides, {sales} till sales by guides, "
        f"targets, {len(MATERIALS)} materials and a task from HQ."
    ]
