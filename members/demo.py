"""`flask demo` step: tiers, a tag library and ~20 members for the demo brand (idempotent)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.cli import demo_step
from core.db import db, utcnow
from core.tenancy import use_brand
from members import activation, tags, tiers
from members.models_tiers import TierLevel
from org.models import Brand, Staff, Store

DEMO_SLUG = "demo"
DEMO_TIERS = [
    # code, name, rank, threshold (fen of rolling-12-month spend), multiplier, birthday gift
    ("normal", "普通会员", 0, 0, 1000, "生日当月积分翻倍"),
    ("silver", "银卡会员", 1, 100_000, 1200, "生日礼券 20 元"),
    ("gold", "金卡会员", 2, 500_000, 1500, "生日礼盒一份"),
]
DEMO_TAGS = [
    # kind, code, name, quick
    ("behaviour", "needs-follow-up", "需回访", True),
    ("brand", "high-intent", "高意向", True),
    ("brand", "brand-fan", "品牌粉丝", False),
    ("brand", "vip-invite", "VIP 活动邀约", True),
    ("product", "skincare", "护肤偏好", False),
    ("product", "makeup", "彩妆偏好", False),
    ("product", "sensitive-skin", "敏感肌", True),
    ("platform", "jd-member", "京东会员", False),
    ("platform", "meituan-member", "美团会员", False),
]
DEMO_NAMES = [
    "林晓", "王芳", "李娜", "张伟", "刘洋", "陈静", "杨柳", "赵敏", "黄蕾", "周杰",
    "吴桐", "徐丽", "孙悦", "胡蝶", "朱琳", "高远", "何欢", "郭静", "马丽", "罗兰",
]  # fmt: skip
# Spend in yuan per member index (some reach silver or gold).
DEMO_SPEND = [0, 120, 380, 1280, 5600, 260, 0, 980, 2300, 150, 6800, 90, 450, 0, 1500, 75, 300,
              1100, 40, 0]  # fmt: skip
DEMO_MEMBER_TAGS = {0: ["brand-fan", "skincare"], 3: ["high-intent"], 4: ["brand-fan", "makeup"],
                    7: ["sensitive-skin"], 10: ["vip-invite", "skincare"], 14: ["jd-member"],
                    17: ["meituan-member", "needs-follow-up"]}  # fmt: skip


@demo_step(30)
def demo_members() -> list[str]:
    """Tiers 普通/银卡/金卡, a tag library in four kinds and 20 members with purchases."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return ["members: no demo brand, skipped"]
    with use_brand(brand.id):
        existing = {lv.code for lv in db.session.execute(select(TierLevel)).scalars()}
        for code, name, rank, threshold, mult, gift in DEMO_TIERS:
            if code not in existing:
                tiers.create_level(
                    code=code,
                    name=name,
                    rank=rank,
                    threshold=threshold,
                    points_multiplier_permille=mult,
                    birthday_gift=gift,
                )
        for code in tags.SYSTEM_TAGS:
            tags.system_tag(code=code)
        for kind, code, name, quick in DEMO_TAGS:
            if tags.tag_by_code(code=code) is None:
                tags.create_tag(kind=kind, code=code, name=name, is_quick=quick)
        stores = list(db.session.execute(select(Store).order_by(Store.code)).scalars())
        guides = list(
            db.session.execute(
                select(Staff).where(Staff.role == "guide").order_by(Staff.phone)
            ).scalars()
        )
        now = utcnow()
        for i, name in enumerate(DEMO_NAMES):
            guide = guides[i % len(guides)] if guides else None
            store_id = guide.store_id if guide else (stores[i % len(stores)].id if stores else None)
            member, _ = activation.activate_member(
                phone=f"1390000{i + 1:04d}",
                oa_openid=f"odemo-member-{i + 1:04d}",
                store_id=store_id,
                guide_id=guide.id if guide else None,
                source="demo",
                consent_version="2026-01",
                now=now - dt.timedelta(days=200 - i * 7),
            )
            if not member.name:
                member.name = name
                member.gender = "f" if i % 3 else "m"
            spend = DEMO_SPEND[i] * 100
            if spend:
                # Two purchases: one older, one recent; keys make the step idempotent.
                for k, share in ((1, spend // 3), (2, spend - spend // 3)):
                    tiers.record_purchase(
                        member_id=member.id,
                        amount_fen=share,
                        store_id=store_id,
                        occurred_at=now - dt.timedelta(days=120 // k),
                        idempotency_key=f"demo-order-{i + 1}-{k}",
                    )
            for code in DEMO_MEMBER_TAGS.get(i, []):
                tag = tags.tag_by_code(code=code)
                tags.add_tag(
                    member_id=member.id,
                    tag_id=tag.id,
                    staff_id=guide.id if guide else None,
                    reason="demo",
                )
        db.session.flush()
    return [
        f"Members: {len(DEMO_NAMES)} demo members (phones 13900000001-13900000020), "
        "tiers 普通会员/银卡会员/金卡会员, tag library with quick tags"
    ]
