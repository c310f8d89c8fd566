"""Staff redemption outside WeChat, in an ordinary browser: the scanner script loads cleanly,
the code can be typed, the chosen store stays chosen, and a camera showing a coupon's QR code
fills the code in (Chromium's fake camera plays a picture of the QR code)."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import qrcode
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from coupons import claims, services
from coupons.models import Redemption
from members.identities import create_member_row
from tests import factories as f
from tests.browser.conftest import CHROMIUM_ARGS
from tests.browser.walk import Walker, console, console_login


def _setup(live_server) -> dict:
    with live_server.app.app_context():
        brand = f.brand()
        s1 = f.store(brand, code="SH001", name="南京西路店")
        s2 = f.store(brand, code="HZ001", name="湖滨店")
        admin = f.staff(brand, "brand_admin")
        now = dt.datetime.now(dt.UTC)
        with use_brand(brand.id):
            tpl = services.create_template(
                name="5元现金券",
                kind="cash",
                value_fen=500,
                threshold_fen=0,
                valid_from=now - dt.timedelta(days=1),
                valid_until=now + dt.timedelta(days=30),
            )
            codes = []
            for i in range(2):
                member_id, _ = create_member_row(phone=f"1360000000{i}", source="console")
                c = claims.claim(template_id=tpl.id, member_id=member_id, idempotency_key=f"b{i}")
                codes.append(c.code)
            db.session.commit()
        return {
            "brand": brand.slug,
            "brand_id": brand.id,
            "admin": admin.phone,
            "stores": (s1.id, s2.id),
            "codes": codes,
        }


def test_redeem_by_typing_outside_wechat_and_the_store_is_remembered(browser, live_server):
    data = _setup(live_server)
    w = console(browser, live_server.url, "redeem")
    try:
        console_login(w, data["brand"], data["admin"], f.PASSWORD)
        page = w.page
        w.open("/console/coupons/redeem")
        # Outside WeChat: the camera scanner (jsQR) is offered, under the right label.
        assert page.evaluate("typeof window.jsQR") == "function"
        assert page.evaluate("typeof window.wx") == "undefined"
        expect(page.get_by_role("button", name="扫描优惠券二维码")).to_be_visible()
        expect(page.get_by_text("扫描会员二维码")).to_have_count(0)
        page.get_by_label("券码").fill(data["codes"][0])
        page.get_by_label("订单号").fill("B-0001")
        page.get_by_label("订单金额（元）").fill("20.00")
        page.get_by_label("门店").select_option(label="HZ001 湖滨店")
        w.submit(page.get_by_role("button", name="核销", exact=True))
        w.saved("5.00")
        # The next redemption starts at the same store.
        expect(page.get_by_label("门店")).to_have_value(str(data["stores"][1]))
        w.open("/console/coupons/redeem")
        expect(page.get_by_label("门店")).to_have_value(str(data["stores"][1]))
        w.check()
    finally:
        w.context.close()
    with live_server.app.app_context(), use_brand(data["brand_id"]):
        red = db.session.scalars(select(Redemption)).one()
        assert (red.store_id, red.order_amount_fen, red.channel) == (
            data["stores"][1],
            2000,
            "staff",
        )


def _qr_video(path, text: str) -> None:
    """A short Y4M clip of the QR code, for Chromium's fake camera."""
    img = qrcode.make(text, box_size=10, border=4).get_image().convert("RGB")
    size = 640, 480
    frame = img.resize((400, 400)).crop((0, 0, 400, 400))
    canvas = Image.new("RGB", size, "white")
    canvas.paste(frame, ((size[0] - 400) // 2, (size[1] - 400) // 2))
    y, cb, cr = canvas.convert("YCbCr").split()
    half = size[0] // 2, size[1] // 2
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{size[0]} H{size[1]} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(10):
            fh.write(b"FRAME\n" + planes)


def test_the_camera_reads_a_coupon_code(browser, live_server, tmp_path):
    data = _setup(live_server)
    video = tmp_path / "qr.y4m"
    _qr_video(video, data["codes"][1])
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    executable = shutil.which("chromium")
    if not executable:
        pytest.fail("chromium is not installed")
    # A browser of its own (a fake camera), from the same Playwright as the shared one.
    b = browser.browser_type.launch(executable_path=executable, args=args, headless=True)
    try:
        context = b.new_context(
            base_url=live_server.url, locale="zh-CN", viewport={"width": 1366, "height": 900}
        )
        context.grant_permissions(["camera"])
        w = Walker(context, "scan")
        console_login(w, data["brand"], data["admin"], f.PASSWORD)
        page = w.page
        w.open("/console/coupons/redeem")
        page.get_by_role("button", name="扫描优惠券二维码").click()
        expect(page.get_by_label("券码")).to_have_value(data["codes"][1], timeout=15_000)
        expect(page.locator("#scanner")).to_be_hidden()
        w.check()
        context.close()
    finally:
        b.close()
