"""Materials and targets from the console: saved only when valid (a huge text, a bad image, a
negative target are form errors with nothing saved), shown to guides in the workbench; a store
target splits over its guides to the fen; another brand's material answers 404."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from guide_distribution import targets
from guide_distribution.models import GuideTarget, Material
from shop import numbers
from tests import factories as f


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 40)).save(out, format="PNG")
    return out.getvalue()


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar()


def test_a_material_with_a_picture_is_shown_to_guides_to_copy(client, brand):
    store = f.store(brand)
    admin = f.staff(brand, role="brand_admin")
    guide = f.staff(brand, role="guide", store=store)
    f.login(client, brand, admin)
    token = f.csrf(client, "/console/distribution/materials/new")
    r = client.post(
        "/console/distribution/materials/new",
        data={
            "csrf_token": token,
            "title": "冬季新品",
            "body": "冬季新品上市，进店有礼！",
            "new_images": [(io.BytesIO(_png()), "a.png")],
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 302
    material = db.session.execute(select(Material)).scalar_one()
    assert len(material.images) == 1 and material.images[0].endswith(".jpg")  # re-encoded
    assert "冬季新品" in client.get("/console/distribution/materials").get_data(as_text=True)

    client.post("/console/logout", data={"csrf_token": token})
    f.login(client, brand, guide)
    html = client.get("/console/workbench/materials").get_data(as_text=True)
    assert "冬季新品上市，进店有礼！" in html and "复制文案" in html
    assert f'data-copy="material-text-{material.id}"' in html
    assert material.images[0] in html and "长按图片可保存" in html
    # Guides do not edit materials.
    assert client.get(f"/console/distribution/materials/{material.id}").status_code == 403


def test_bad_materials_are_form_errors_and_nothing_is_saved(client, brand):
    admin = f.staff(brand, role="brand_admin")
    f.login(client, brand, admin)
    token = f.csrf(client, "/console/distribution/materials/new")
    for data, expect in [
        ({"title": "x", "body": "长" * 2001}, 400),
        ({"title": "", "body": "好"}, 400),
        ({"title": "x", "body": ""}, 400),  # neither text nor picture
        ({"title": "x", "body": "好", "new_images": [(io.BytesIO(b"GIF89a-no"), "x.gif")]}, 400),
    ]:
        r = client.post(
            "/console/distribution/materials/new",
            data=dict(data, csrf_token=token),
            content_type="multipart/form-data",
        )
        assert r.status_code == expect, data
        assert 'class="error"' in r.get_data(as_text=True)
    assert _count(Material) == 0


def test_another_brands_material_answers_404(client, brand):
    m = Material(title="t", body="b", images=[])
    db.session.add(m)
    db.session.commit()
    other = f.brand()
    with use_brand(other.id):
        admin = f.staff(other, role="brand_admin")
    f.login(client, other, admin)
    assert client.get(f"/console/distribution/materials/{m.id}").status_code == 404
    token = f.csrf(client, "/console/distribution/materials")
    r = client.post(f"/console/distribution/materials/{m.id}/delete", data={"csrf_token": token})
    assert r.status_code == 404
    with use_brand(brand.id):
        assert _count(Material) == 1


def test_targets_per_guide_per_store_and_csv(client, brand):
    store = f.store(brand)
    g1, g2, g3 = (f.staff(brand, role="guide", store=store) for _ in range(3))
    admin = f.staff(brand, role="brand_admin")
    f.login(client, brand, admin)
    month = numbers.local_day().strftime("%Y-%m")
    token = f.csrf(client, "/console/distribution/targets")

    r = client.post("/console/distribution/targets", data={
        "csrf_token": token, "action": "guide", "g-month": month, "g-guide_id": str(g1.id),
        "g-target": "-5"})  # fmt: skip
    assert r.status_code == 400 and 'class="error"' in r.get_data(as_text=True)
    r = client.post("/console/distribution/targets", data={
        "csrf_token": token, "action": "guide", "g-month": "2026-13", "g-guide_id": str(g1.id),
        "g-target": "5"})  # fmt: skip
    assert r.status_code == 400 and "月份格式" in r.get_data(as_text=True)
    assert _count(GuideTarget) == 0

    r = client.post("/console/distribution/targets", data={
        "csrf_token": token, "action": "store", "s-month": month, "s-store_id": str(store.id),
        "s-target": "100.01"})  # fmt: skip
    assert r.status_code == 303
    got = dict(db.session.execute(select(GuideTarget.guide_id, GuideTarget.target_fen)).all())
    assert got == {g1.id: 3334, g2.id: 3334, g3.id: 3333} and sum(got.values()) == 10001

    csv = f"phone,month,target\n{g2.phone},{month},250.50\n".encode()
    r = client.post("/console/distribution/targets", data={
        "csrf_token": token, "action": "import", "f-file": (io.BytesIO(csv), "t.csv")},
        content_type="multipart/form-data")  # fmt: skip
    assert r.status_code == 303
    db.session.expire_all()
    assert targets.target_of(guide_id=g2.id, month=numbers.local_day()) == 25050
    bad = f"phone,month,target\n{g3.phone},{month},-1\n".encode()
    r = client.post("/console/distribution/targets", data={
        "csrf_token": token, "action": "import", "f-file": (io.BytesIO(bad), "t.csv")},
        content_type="multipart/form-data")  # fmt: skip
    assert r.status_code == 400 and "第 2 行" in r.get_data(as_text=True)
    assert targets.target_of(guide_id=g3.id, month=numbers.local_day()) == 3333  # unchanged
    html = client.get("/console/distribution/targets").get_data(as_text=True)
    assert "¥250.50" in html and g1.name in html
