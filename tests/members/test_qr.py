"""Store and guide QR codes: creation through the gateway, posters, zip, stats, scoping."""

from __future__ import annotations

import io
import re
import zipfile

from PIL import Image
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from members.activation import posters, qrcodes
from members.models import MemberQrCode
from tests import factories as f
from tests.support.exports import run_export_jobs
from tests.support.member_h5 import Phone
from wechat.sandbox import store


def _setup(brand):
    s1 = f.store(brand, code="SH001", name="南京西路店")
    s2 = f.store(brand, code="HZ001", name="湖滨店")
    g1 = f.staff(brand, "guide", s1)
    g2 = f.staff(brand, "guide", s2)
    return s1, s2, g1, g2


def _create(client, brand, who):
    f.login(client, brand, who)
    token = f.csrf_token(client, "/console/members/qrcodes")
    return client.post("/console/members/qrcodes/create", data={"csrf_token": token})


def _posters_zip(client) -> zipfile.ZipFile:
    """Ask for the store posters' zip as the page does, run the export job as a worker would,
    download the file from the link the page then shows."""
    token = f.csrf_token(client, "/console/members/qrcodes")
    r = client.post("/console/members/qrcodes/posters.zip", data={"csrf_token": token})
    assert r.status_code == 302
    assert run_export_jobs() == ["done"]
    html = client.get("/console/members/qrcodes").get_data(as_text=True)
    link = re.search(r'href="(/console/exports/\d+/download)"', html).group(1)
    r = client.get(link)
    assert r.status_code == 200 and r.mimetype == "application/zip"
    return zipfile.ZipFile(io.BytesIO(r.data))


def test_codes_are_created_through_the_gateway_once(wx_client, wx_brand):
    s1, s2, g1, g2 = _setup(wx_brand)
    admin = f.staff(wx_brand, "brand_admin")
    assert _create(wx_client, wx_brand, admin).status_code == 302
    with use_brand(wx_brand.id):
        codes = {qr.scene: qr for qr in db.session.execute(select(MemberQrCode)).scalars()}
    assert set(codes) == {"s:SH001", "s:HZ001", f"g:{g1.id}", f"g:{g2.id}"}
    issued = store.list_qrcodes(wx_brand.appid)
    assert {v["scene"] for v in issued.values()} == set(codes)
    assert all(v["permanent"] for v in issued.values())
    assert codes[f"g:{g1.id}"].store_id == s1.id
    token = f.csrf_token(wx_client, "/console/members/qrcodes")
    wx_client.post("/console/members/qrcodes/create", data={"csrf_token": token})
    assert len(store.list_qrcodes(wx_brand.appid)) == 4  # idempotent: nothing new at WeChat
    html = wx_client.get("/console/members/qrcodes").get_data(as_text=True)
    assert "南京西路店" in html and "s:HZ001" in html and "扫码次数" in html


def test_poster_png_and_zip_of_all_stores(wx_client, wx_brand):
    s1, s2, g1, _g2 = _setup(wx_brand)
    admin = f.staff(wx_brand, "brand_admin")
    _create(wx_client, wx_brand, admin)
    with use_brand(wx_brand.id):
        qr = db.session.execute(
            select(MemberQrCode).where(MemberQrCode.scene == f"g:{g1.id}")
        ).scalar_one()
    r = wx_client.get(f"/console/members/qrcodes/{qr.id}/poster.png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    img = Image.open(io.BytesIO(r.data)).convert("RGB")
    assert img.size == (posters.WIDTH, posters.HEIGHT)
    # the QR printed on the poster is the one WeChat issued for the ticket
    left = (posters.WIDTH - posters.QR_SIZE) // 2
    printed = img.crop((left, 330, left + posters.QR_SIZE, 330 + posters.QR_SIZE))
    assert list(printed.getdata()) == list(posters.qr_image(qr.url).getdata())
    assert sorted(_posters_zip(wx_client).namelist()) == ["store-HZ001.png", "store-SH001.png"]


def test_store_manager_sees_their_store_only_and_guides_none(wx_app, wx_brand):
    s1, s2, g1, g2 = _setup(wx_brand)
    _create(wx_app.test_client(), wx_brand, f.staff(wx_brand, "brand_admin"))
    manager = f.staff(wx_brand, "store_manager", s1)
    client = wx_app.test_client()
    f.login(client, wx_brand, manager)
    html = client.get("/console/members/qrcodes").get_data(as_text=True)
    assert "s:SH001" in html and f"g:{g1.id}" in html
    assert "s:HZ001" not in html and f"g:{g2.id}" not in html
    with use_brand(wx_brand.id):
        other = db.session.execute(
            select(MemberQrCode).where(MemberQrCode.scene == "s:HZ001")
        ).scalar_one()
    assert client.get(f"/console/members/qrcodes/{other.id}/poster.png").status_code == 404
    assert _posters_zip(client).namelist() == ["store-SH001.png"]
    guide_client = wx_app.test_client()
    f.login(guide_client, wx_brand, g1)
    assert guide_client.get("/console/members/qrcodes").status_code == 403


def test_codes_of_another_brand_answer_404(wx_app, wx_brand):
    _setup(wx_brand)
    _create(wx_app.test_client(), wx_brand, f.staff(wx_brand, "brand_admin"))
    with use_brand(wx_brand.id):
        qr = db.session.execute(select(MemberQrCode)).scalars().first()
    other = f.brand()
    client = wx_app.test_client()
    f.login(client, other, f.staff(other, "brand_admin"))
    assert client.get(f"/console/members/qrcodes/{qr.id}/poster.png").status_code == 404


def test_stats_count_scans_follows_and_activations(wx_client, wx_brand, wx_consumer):
    s1, _s2, g1, _g2 = _setup(wx_brand)
    with use_brand(wx_brand.id):
        qrcodes.ensure_all()
        db.session.commit()
        qr = db.session.execute(
            select(MemberQrCode).where(MemberQrCode.scene == "s:SH001")
        ).scalar_one()
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.scan(qr, following=False)  # a new follow (counts as a scan too)
    phone.scan(qr)
    phone.scan(qr)
    with use_brand(wx_brand.id):
        assert qrcodes.stats(qr_ids=[qr.id])[qr.id] == {
            "scans": 3,
            "follows": 1,
            "activations": 0,
        }
    phone.sign_in()
    phone.request_code("13912345678")
    phone.activate("13912345678")
    with use_brand(wx_brand.id):
        assert qrcodes.stats(qr_ids=[qr.id])[qr.id]["activations"] == 1


def test_a_guide_gets_their_own_code_and_poster_only(wx_app, wx_brand):
    s1, _s2, g1, g2 = _setup(wx_brand)
    client = wx_app.test_client()
    f.login(client, wx_brand, g1)
    assert "/console/workbench/qr" in client.get("/console/workbench").get_data(as_text=True)
    page = client.get("/console/workbench/qr")
    assert page.status_code == 200 and "生成我的二维码" in page.get_data(as_text=True)
    token = f.csrf_token(client, "/console/workbench/qr")
    assert client.post("/console/workbench/qr", data={"csrf_token": token}).status_code == 303
    html = client.get("/console/workbench/qr").get_data(as_text=True)
    assert "下载我的海报" in html
    with use_brand(wx_brand.id):
        mine = qrcodes.guide_qr_of(staff_id=g1.id)
        assert mine is not None and mine.scene == f"g:{g1.id}" and mine.store_id == s1.id
        theirs = qrcodes.ensure_guide_qr(staff_id=g2.id)
        store_qr = qrcodes.ensure_store_qr(store_id=s1.id)
        db.session.commit()
    assert f"/console/members/qrcodes/{mine.id}/poster.png" in html
    r = client.get(f"/console/members/qrcodes/{mine.id}/poster.png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    img = Image.open(io.BytesIO(r.data))
    assert img.size == (posters.WIDTH, posters.HEIGHT)
    # Another guide's poster, and even their own store's: not theirs to see.
    assert client.get(f"/console/members/qrcodes/{theirs.id}/poster.png").status_code == 404
    assert client.get(f"/console/members/qrcodes/{store_qr.id}/poster.png").status_code == 404
    assert client.get("/console/members/qrcodes").status_code == 403
    # The page is a guide's: others do not have it.
    admin = wx_app.test_client()
    f.login(admin, wx_brand, f.staff(wx_brand, "brand_admin"))
    assert admin.get("/console/workbench/qr").status_code == 403
    assert admin.get(f"/console/members/qrcodes/{theirs.id}/poster.png").status_code == 200
