"""`flask demo` steps of members for the demo brand, all idempotent: tiers, a tag library and
~20 members; the stores on the map; a small finished POS import; store and guide QR codes."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable

from flask import current_app
from sqlalchemy import select

from core.cli import demo_step
from core.db import db, utcnow
from core.tenancy import use_brand
from members import imports, store_locations
from members.activation import activate_member, qrcodes
from members.models import MemberImport, TierLevel
from members.tiers_tags import tags, tiers
from org.models import Brand, Staff, Store
from org.services import list_stores
from wechat import gateway

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


def _made_up_openid(_appid: str | None, number: int, _nickname: str) -> str:
    return f"odemo-member-{number:04d}"


# Where a demo member's official-account openid comes from: with the WeChat sandbox mounted,
# app.py points this at the sandbox, so that the demo members are consumers it knows.
demo_openid: Callable[[str | None, int, str], str] = _made_up_openid


def use_demo_openids(source: Callable[[str | None, int, str], str]) -> None:
    """``source(appid, member number, nickname)`` gives each demo member's openid."""
    global demo_openid
    demo_openid = source


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
        stores = list_stores()
        guides = list(
            db.session.execute(
                select(Staff).where(Staff.role == "guide").order_by(Staff.phone)
            ).scalars()
        )
        now = utcnow()
        for i, name in enumerate(DEMO_NAMES):
            guide = guides[i % len(guides)] if guides else None
            store_id = guide.store_id if guide else (stores[i % len(stores)].id if stores else None)
            member, _ = activate_member(
                phone=f"1390000{i + 1:04d}",
                oa_openid=demo_openid(brand.appid, i + 1, name),
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


DEMO_COORDS = {
    "SH001": (31.229500, 121.455600),  # 南京西路
    "SH002": (31.236000, 121.502000),  # 陆家嘴
    "HZ001": (30.259000, 120.164000),  # 西湖
}


@demo_step(32)
def demo_store_locations() -> list[str]:
    """The demo stores on the map."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return []
    placed = 0
    with use_brand(brand.id):
        for code, (lat, lng) in DEMO_COORDS.items():
            store = Store.by_code(code)
            if store is not None:
                store_locations.set_store_location(store_id=store.id, lat=lat, lng=lng)
                placed += 1
    return [f"Store locations: {placed} demo stores on the map"]


DEMO_IMPORT = "demo-pos-export.csv"
# The POS ids of three demo members (it adds identities, no members) and one bad row.
DEMO_IMPORT_ROWS = (
    "手机号,POS会员号,门店编码\n"
    "13900000001,POS1001,SH001\n"
    "13900000002,POS1002,\n"
    "13900000003,POS1003,\n"
    "1390000100,POS1004,SH001\n"
)


@demo_step(34)
def demo_import() -> list[str]:
    """A small POS export for the demo brand (a finished import to look at in the console)."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return []
    with use_brand(brand.id):
        done = db.session.execute(
            select(MemberImport.id).where(MemberImport.filename == DEMO_IMPORT)
        ).first()
        if done is not None:
            return []
        path = os.path.join(imports.upload_dir(current_app.config["INSTANCE_PATH"]), DEMO_IMPORT)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(DEMO_IMPORT_ROWS)
        imp = imports.import_file(path=path, filename=DEMO_IMPORT)
    return [f"Member import: demo POS export, {imp.updated} updated, {imp.bad} bad row"]


@demo_step(35)
def demo_qrcodes() -> list[str]:
    """QR codes for the demo brand's stores and guides."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return ["members: no demo brand, QR codes skipped"]
    with use_brand(brand.id):
        try:
            created = qrcodes.ensure_all()
        except gateway.WeChatError as exc:
            db.session.rollback()
            return [
                f"QR codes: not created ({exc}); start the app and use Console -> QR codes -> "
                "Create missing QR codes"
            ]
        total = len(qrcodes.visible_codes())
    return [
        f"QR codes: {created} created, {total} in all (stores s:<code>, guides g:<id>); "
        "scan them in the phone simulator, posters under /console/members/qrcodes"
    ]
