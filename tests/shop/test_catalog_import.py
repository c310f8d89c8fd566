"""The CSV import of products and SKUs: a good file, bad rows listed with their row numbers
(nothing written), GBK and BOM files, stock brought to the file's value through the ledger,
formula cells neutralised in the error file, and a big file as a job with progress."""

from __future__ import annotations

import csv
import io

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from core.db import db
from core.jobs import OutboxJob, run_outbox_job
from shop import catalog, catalog_import
from shop.models import Product, Sku, StockEntry

HEADER = "商品编码,商品名称,分类编码,SKU编码,规格,价格,划线价,库存,上架"
GOOD = [
    "T100,经典圆领T恤,tops,T100-BK-M,颜色:黑;尺码:M,99.00,129,50,是",
    "T100,经典圆领T恤,tops,T100-BK-L,颜色:黑;尺码:L,99,129.00,20,是",
    "A200,帆布托特包,,A200-1,,89.5,,5,否",
]


def _file(*rows: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def _start(text: str | bytes):
    raw = text.encode("utf-8") if isinstance(text, str) else text
    with force_locale("zh"):
        token, result = catalog_import.start(raw, filename="p.csv", operator="导入员")
    db.session.commit()
    return token, result


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_good_file_creates_products_skus_and_stock(brand):
    catalog.create_category(code="tops", name="上衣")
    token, result = _start(_file(*GOOD))
    assert result.ok and result.total == 3
    assert (result.products_created, result.skus_created) == (2, 3)
    rows = db.session.execute(
        select(Product.code, Product.name, Product.on_sale, Sku.code, Sku.spec, Sku.price_fen,
               Sku.original_price_fen, Sku.stock)
        .join(Sku, Sku.product_id == Product.id).order_by(Sku.code)
    ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        ("A200", "帆布托特包", False, "A200-1", {}, 8950, 0, 5),
        ("T100", "经典圆领T恤", True, "T100-BK-L", {"颜色": "黑", "尺码": "L"}, 9900, 12900, 20),
        ("T100", "经典圆领T恤", True, "T100-BK-M", {"颜色": "黑", "尺码": "M"}, 9900, 12900, 50),
    ]
    reasons = db.session.execute(select(StockEntry.reason, StockEntry.operator)).all()
    assert set(reasons) == {("import", "导入员")}
    state = catalog_import.progress(token)
    assert state["status"] == "done" and state["errors"] == []

    # Again, with new prices and stock: updated in place, stock set through one ledger entry.
    _t, again = _start(_file("T100,经典圆领T恤 新款,tops,T100-BK-M,颜色:黑;尺码:M,89,129,45,是"))
    assert (again.products_updated, again.skus_updated, again.skus_created) == (1, 1, 0)
    db.session.expire_all()
    m = db.session.scalars(select(Sku).where(Sku.code == "T100-BK-M")).one()
    assert (m.price_fen, m.stock) == (8900, 45)
    assert db.session.scalar(
        select(func.sum(StockEntry.delta)).where(StockEntry.sku_id == m.id)
    ) == 45  # fmt: skip
    assert _count(Sku) == 3  # the SKUs not in the second file stay as they were


def test_bad_rows_are_listed_with_row_and_column_and_nothing_is_written(brand):
    catalog.create_category(code="tops", name="上衣")
    _start(_file("OLD,旧商品,,OLD-1,,10,,1,是"))
    before = (_count(Product), _count(Sku), _count(StockEntry))
    _token, result = _start(
        _file(
            GOOD[0],
            "T100,经典圆领T恤,nope,T100-BK-S,颜色:黑;尺码:S,99,129,5,是",  # row 3: category
            "T200,卫衣,tops,T200-1,颜色黑,abc,,x,也许",  # row 4: spec, price, stock, on sale
            "",  # blank lines are skipped but keep their numbers
            "T300,裤子,tops,T100-BK-M,,10,5,1,是",  # row 6: list price, duplicate SKU code
            "T400,包,,OLD-1,,10,,1,是",  # row 7: SKU code of another product
            "T100,别的名字,tops,T100-BK-XL,颜色:黑;尺码:XL,99,,1,是",  # row 8: name differs
        )
    )
    got = [(e.row, e.column, e.reason) for e in result.errors]
    assert got == [
        (3, "分类编码", "没有该编码的分类。"),
        (4, "规格", "规格请写成 名称:值;名称:值，如 颜色:黑;尺码:M。"),
        (4, "价格", "请输入大于 0 的价格（元），如 99.00。"),
        (4, "库存", "请输入 0 到 10000000 之间的整数。"),
        (4, "上架", "请填写“是”或“否”。"),
        (6, "划线价", "划线价须高于售价（不设请填 0）。"),
        (7, "SKU编码", "该 SKU 编码属于商品 OLD。"),
        (8, "商品名称", "同一商品编码的各行商品名称必须相同。"),
    ]
    assert (_count(Product), _count(Sku), _count(StockEntry)) == before


def test_duplicate_sku_codes_in_the_file(brand):
    _t, result = _start(_file(GOOD[2], GOOD[2]))
    assert [(e.row, e.column, e.reason) for e in result.errors] == [
        (3, "SKU编码", "第 2 行已有相同的 SKU 编码。")
    ]


def test_gbk_and_bom_files(brand):
    text = "商品编码,商品名称,SKU编码,价格,库存\r\nA200,帆布托特包,A200-1,89.5,5\r\n"
    _t, result = _start(text.encode("gbk"))
    assert result.ok and db.session.scalars(select(Product.name)).one() == "帆布托特包"
    _t, result = _start(
        "\ufeff商品编码,商品名称,SKU编码,价格,库存\r\nB1,羊毛围巾,B1-1,129,2\r\n".encode()
    )
    assert result.ok
    assert sorted(db.session.scalars(select(Product.name))) == ["帆布托特包", "羊毛围巾"]


NEITHER = "文件既不是 UTF-8 也不是 GBK 编码的文本。请另存为 CSV（UTF-8）后重试。"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "文件为空。"),
        (b"\xff\xfe\x00\x00\x81", NEITHER),
        ("商品编码,名字\r\nA,B\r\n".encode(), "表头缺少以下列：商品名称、SKU编码、价格。"),
        (HEADER.encode(), "文件表头下没有数据行。"),
    ],
)  # fmt: skip
def test_unreadable_files_are_refused_as_a_whole(brand, raw, message):
    with force_locale("zh"), pytest.raises(catalog_import.ImportFileError) as info:
        catalog_import.start(raw, filename="x.csv", operator=None)
    assert (info.value.field, info.value.message) == ("file", message)


def test_formula_cells_are_neutralised_in_the_error_file(brand):
    _t, result = _start(
        _file(
            '=HYPERLINK("http://evil"),恶意,,X-1,,=1+1,,1,是',
            "P2,正常,,@SUM(A1),,10,,1,是",
        )
    )
    assert not result.ok
    with force_locale("zh"):
        text = catalog_import.export_errors([e.as_dict() for e in result.errors])
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["行号", "列", "原因", "内容"]
    values = [r[3] for r in rows[1:]]
    assert '\'=HYPERLINK("http://evil")' in values and "'=1+1" in values
    assert "'@SUM(A1)" in values
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows[1:] for v in r)


def test_a_big_file_runs_as_a_job_with_progress(app, brand):
    app.config["SHOP_IMPORT_INLINE_ROWS"] = 2
    try:
        rows = [f"P{i},商品{i},,P{i}-1,,{i + 1}.00,,{i},是" for i in range(450)]
        token, result = _start(_file(*rows))
    finally:
        app.config.pop("SHOP_IMPORT_INLINE_ROWS")
    assert result is None
    assert catalog_import.progress(token)["status"] == "queued"
    assert _count(Product) == 0
    job = db.session.scalars(select(OutboxJob)).one()
    assert job.func == "shop.catalog_import.import_catalog_job"
    assert run_outbox_job(job.id) == "done"
    state = catalog_import.progress(token)
    assert (state["status"], state["total"], state["products_created"]) == ("done", 450, 450)
    db.session.expire_all()
    assert _count(Product) == 450
    assert db.session.scalar(select(func.sum(Sku.stock))) == sum(range(450))
    assert run_outbox_job(job.id) == "skipped"  # done once


def test_an_import_is_done_only_once_its_rows_are_committed(brand):
    catalog.create_category(code="tops", name="上衣")
    db.session.commit()
    raw = _file(*GOOD).encode("utf-8")
    with force_locale("zh"):
        token, result = catalog_import.start(raw, filename="p.csv", operator="导入员")
    assert result.ok
    assert catalog_import.progress(token) is None  # written, not yet committed
    db.session.rollback()  # the request failed after the import (nothing was kept)
    assert catalog_import.progress(token)["status"] == "failed"
    assert _count(Product) == 0
    token, result = _start(_file(*GOOD))
    assert catalog_import.progress(token)["status"] == "done" and _count(Product) == 2
