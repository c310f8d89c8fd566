"""Helpers of the catalog tests: a storage folder of the test's own, a category and a
product made through the catalog services, and a small PNG."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.db import db
from core.storage import LocalStorage
from shop import catalog


@pytest.fixture
def local_storage(app, tmp_path):
    """The app (and the live server's app, if any) store uploads under this test's folder."""
    saved = app.extensions["storage"]
    store = LocalStorage(str(tmp_path / "uploads"))
    app.extensions["storage"] = store
    yield store
    app.extensions["storage"] = saved


def png(width: int = 64, height: int = 48, colour=(200, 30, 30), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def jpeg_with_exif(width: int = 80, height: int = 60) -> bytes:
    img = Image.new("RGB", (width, height), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° when shown
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def sku(code: str, *, spec: str = "", price: int = 9900, original: int = 0, stock: int = 10):
    return {
        "code": code,
        "spec": spec,
        "price_fen": price,
        "original_price_fen": original,
        "stock": stock,
    }


def product(code: str = "P1", *, skus=None, commit: bool = True, **values):
    """A product of the current brand with (by default) two SKUs in stock."""
    fields = dict(
        code=code,
        name=values.pop("name", f"商品 {code}"),
        category_id=values.pop("category_id", None),
        subtitle=values.pop("subtitle", ""),
        description=values.pop("description", ""),
        images=values.pop("images", []),
        on_sale=values.pop("on_sale", True),
        limit_per_member=values.pop("limit_per_member", 0),
        promotion=values.pop("promotion", False),
        sort=values.pop("sort", 0),
    )
    assert not values, values
    p = catalog.create_product(
        skus=skus
        if skus is not None
        else [
            sku(f"{code}-BK-M", spec="颜色:黑;尺码:M", original=12900),
            sku(f"{code}-BK-L", spec="颜色:黑;尺码:L", stock=3),
        ],
        operator="test",
        **fields,
    )
    if commit:
        db.session.commit()
    return p
