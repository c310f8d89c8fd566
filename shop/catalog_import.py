"""CSV import of products and SKUs: one row per SKU.

Columns (any order; the Chinese header or the English one; unknown columns are ignored):
商品编码 ``product_code``, 商品名称 ``product_name``, 分类编码 ``category_code`` (a category of
the brand, or empty), SKU编码 ``sku_code``, 规格 ``spec`` (``颜色:黑;尺码:M``, or empty for a
product with one SKU), 价格 ``price`` (yuan, at most two decimals), 划线价 ``original_price``
(yuan, or empty), 库存 ``stock`` (the SKU's stock after the import), 上架 ``on_sale``
(是/否, 1/0, Y/N).

All or nothing: every row is checked first, and if any row is wrong nothing is written and
each error is listed with its row number (the header is row 1), its column and the reason.
A product code already in the catalog updates that product (name, category, on sale); a SKU
code already there updates that SKU (spec, prices) and brings its stock to the file's value
through one stock-ledger entry (the SKU row locked meanwhile, so a checkout in between is
not lost); new codes make new products and SKUs. Encoding: UTF-8 with or without BOM, else
GB18030 (a superset of GBK, what Excel on Chinese Windows writes).

Small files run in the request; bigger ones (``SHOP_IMPORT_INLINE_ROWS``) are a job, whose
progress lives in Redis under the brand's hash tag and is shown on the import page.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core import csvimport
from core import redis as core_redis
from core.csvimport import ImportFileError, RowError, decode, missing_columns
from core.csvsafe import SafeWriter
from core.db import db
from core.errors import ValidationError
from core.jobs import job
from core.labels import register_labels
from core.tenancy import require_brand_id
from shop import catalog, stock, txhooks
from shop.models import Category, Product, Sku

MAX_ROWS = 20_000
MAX_ERRORS = 1000
PROGRESS_TTL = 7 * 24 * 3600
PROGRESS_EVERY = 200

COLUMNS = {
    "product_code": ("商品编码", "product_code"),
    "product_name": ("商品名称", "product_name"),
    "category_code": ("分类编码", "category_code"),
    "sku_code": ("SKU编码", "sku编码", "sku_code"),
    "spec": ("规格", "spec"),
    "price": ("价格", "price"),
    "original_price": ("划线价", "original_price"),
    "stock": ("库存", "stock"),
    "on_sale": ("上架", "on_sale"),
}
REQUIRED = ("product_code", "product_name", "sku_code", "price")
TRUE = {"是", "1", "y", "yes", "true", "上架"}
FALSE = {"", "否", "0", "n", "no", "false", "下架"}


def column_title(name: str) -> str:
    """The Chinese header of a column, as the page and the error file name it."""
    return COLUMNS[name][0] if name in COLUMNS else name


@dataclass
class Result:
    total: int = 0
    products_created: int = 0
    products_updated: int = 0
    skus_created: int = 0
    skus_updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def read_rows(text: str) -> tuple[dict[str, int], list[tuple[int, list[str]]]]:
    """The header's columns and the data rows with their row numbers (header = row 1)."""

    def check(names: dict[str, int]) -> None:
        missing = [column_title(n) for n in REQUIRED if n not in names]
        if missing:
            raise missing_columns(missing)

    return csvimport.read_rows(text, COLUMNS, max_rows=MAX_ROWS, check_header=check)


def _yuan(value: str) -> int | None:
    text = value.strip().replace(",", "").replace("，", "").removeprefix("¥").removeprefix("￥")
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    if not d.is_finite() or d < 0 or d != d.quantize(Decimal("0.01")):
        return None
    fen = int(d * 100)
    return fen if fen <= catalog.MAX_FEN else None


@dataclass
class _Row:
    row: int
    product_code: str
    product_name: str
    category_id: int | None
    sku_code: str
    spec: dict
    price_fen: int
    original_price_fen: int
    stock: int | None
    on_sale: bool


def _check(
    number: int, cells: dict[str, str], categories: dict[str, int], errors: list[RowError]
) -> _Row | None:
    """One row checked; its errors appended (the first per column)."""
    before = len(errors)

    def bad(column: str, reason) -> None:
        errors.append(RowError(number, column_title(column), str(reason), cells.get(column, "")))

    def run(column: str, fn: Callable):
        try:
            return fn()
        except ValidationError as exc:
            bad(column, exc.message)
            return None

    product_code = run("product_code", lambda: catalog._code(cells["product_code"], "code"))
    name = run(
        "product_name",
        lambda: catalog._text(cells["product_name"], "name", max_len=120, required=True),
    )
    category_id = None
    cat = cells.get("category_code", "").strip()
    if cat:
        category_id = categories.get(cat)
        if category_id is None:
            bad("category_code", _l("No category has this code."))
    sku_code = run("sku_code", lambda: catalog._code(cells["sku_code"], "code"))
    spec = run("spec", lambda: catalog.parse_spec(cells.get("spec", "")))
    price = _yuan(cells["price"]) if cells["price"].strip() else None
    if not price:
        bad("price", _l("Enter a price in yuan above 0, e.g. 99.00."))
    original = 0
    if cells.get("original_price", "").strip():
        original = _yuan(cells["original_price"])
        if original is None:
            bad("original_price", _l("Enter an amount in yuan, e.g. 12.50."))
        elif price and original and original <= price:
            bad(
                "original_price",
                _l("The list price must be higher than the price (or 0 for none)."),
            )
    stock_value = None
    raw_stock = cells.get("stock", "").strip()
    if raw_stock:
        if raw_stock.isascii() and raw_stock.isdigit() and int(raw_stock) <= catalog.MAX_STOCK:
            stock_value = int(raw_stock)
        else:
            bad(
                "stock",
                _l("Enter a whole number from %(low)d to %(high)d.", low=0, high=catalog.MAX_STOCK),
            )
    flag = cells.get("on_sale", "").strip().lower()
    if flag not in TRUE and flag not in FALSE:
        bad("on_sale", _l("Write 是 or 否."))
    if len(errors) > before:
        return None
    return _Row(
        number, product_code, name, category_id, sku_code, spec, price, original or 0,
        stock_value, flag in TRUE,
    )  # fmt: skip


def _progress_key(token: str) -> str:
    return core_redis.key(require_brand_id(), "shop-import", token)


def save_progress(token: str, **values) -> None:
    _save(_progress_key(token), values)


def _save(key: str, values: dict) -> None:
    r = core_redis.get_redis()
    data = {k: json.dumps(v, ensure_ascii=False) for k, v in values.items()}
    pipe = r.pipeline()
    pipe.hset(key, mapping=data)
    pipe.expire(key, PROGRESS_TTL)
    pipe.execute()


def progress(token: str) -> dict | None:
    """An import's state: status (queued, checking, writing, done, failed), total, done,
    the counts written and the errors; None for an unknown token."""
    if not token.isalnum() or len(token) > 64:
        return None
    raw = core_redis.get_redis().hgetall(_progress_key(token))
    if not raw:
        return None
    return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}


def run(text: str, *, operator: str | None, token: str, on_progress=None) -> Result:
    """Check every row, then write them all (or nothing). Flushes; the caller commits."""
    names, lines = read_rows(text)
    brand_id = require_brand_id()
    categories = dict(db.session.execute(select(Category.code, Category.id)).all())
    result = Result(total=len(lines))
    rows: list[_Row] = []
    for i, (number, line) in enumerate(lines):
        cells = {n: (line[idx] if idx < len(line) else "") for n, idx in names.items()}
        for n in COLUMNS:
            cells.setdefault(n, "")
        row = _check(number, cells, categories, result.errors)
        if row is not None:
            rows.append(row)
        if on_progress and (i + 1) % PROGRESS_EVERY == 0:
            on_progress("checking", i + 1)
    _cross_check(rows, result.errors)
    if result.errors:
        result.errors = sorted(result.errors, key=lambda e: e.row)[:MAX_ERRORS]
        return result
    _write(rows, result, brand_id=brand_id, operator=operator, token=token, on_progress=on_progress)
    return result


def _cross_check(rows: list[_Row], errors: list[RowError]) -> None:
    """Between rows and against the catalog: a SKU code once in the file and under its own
    product, one name per product code."""
    seen_sku: dict[str, int] = {}
    names: dict[str, str] = {}
    for r in rows:
        if r.sku_code in seen_sku:
            errors.append(
                RowError(
                    r.row,
                    column_title("sku_code"),
                    gettext("The same SKU code is on row %(n)d.", n=seen_sku[r.sku_code]),
                    r.sku_code,
                )
            )
        seen_sku.setdefault(r.sku_code, r.row)
        if names.setdefault(r.product_code, r.product_name) != r.product_name:
            errors.append(
                RowError(
                    r.row,
                    column_title("product_name"),
                    gettext("Rows of one product code must have the same product name."),
                    r.product_name,
                )
            )
    codes = list(seen_sku)
    owners: dict[str, str] = {}
    for i in range(0, len(codes), 1000):
        owners.update(
            db.session.execute(
                select(Sku.code, Product.code)
                .join(Product, Product.id == Sku.product_id)
                .where(Sku.code.in_(codes[i : i + 1000]))
            ).all()
        )
    for r in rows:
        owner = owners.get(r.sku_code)
        if owner is not None and owner != r.product_code:
            errors.append(
                RowError(
                    r.row,
                    column_title("sku_code"),
                    gettext("This SKU code belongs to product %(code)s.", code=owner),
                    r.sku_code,
                )
            )


def _write(rows: list[_Row], result: Result, *, brand_id, operator, token, on_progress) -> None:
    products = {
        p.code: p
        for p in db.session.scalars(
            select(Product).where(Product.code.in_({r.product_code for r in rows}))
        )
    }
    done: set[str] = set()
    for r in rows:
        if r.product_code in done:
            continue  # the product's first row names it
        done.add(r.product_code)
        p = products.get(r.product_code)
        if p is None:
            p = Product(
                code=r.product_code,
                name=r.product_name,
                category_id=r.category_id,
                on_sale=r.on_sale,
            )
            db.session.add(p)
            products[r.product_code] = p
            result.products_created += 1
        else:
            p.name, p.category_id, p.on_sale = r.product_name, r.category_id, r.on_sale
            result.products_updated += 1
    db.session.flush()
    for i, r in enumerate(rows):
        # Locked: the stock is brought to the file's value by one delta, and no checkout
        # moves it between the read and the change.
        sku = db.session.execute(
            select(Sku).where(Sku.code == r.sku_code).with_for_update()
        ).scalar_one_or_none()
        if sku is None:
            sku = Sku(
                product_id=products[r.product_code].id,
                code=r.sku_code,
                spec=r.spec,
                price_fen=r.price_fen,
                original_price_fen=r.original_price_fen,
                stock=0,
                active=True,
            )
            db.session.add(sku)
            db.session.flush()
            result.skus_created += 1
            current = 0
        else:
            sku.spec, sku.price_fen = r.spec, r.price_fen
            sku.original_price_fen, sku.active = r.original_price_fen, True
            result.skus_updated += 1
            current = sku.stock
        if r.stock is not None and r.stock != current:
            stock.change(
                sku_id=sku.id,
                delta=r.stock - current,
                reason="import",
                idempotency_key=f"import:{token}:{sku.id}",
                operator=operator,
                note=gettext("CSV import"),
            )
        if on_progress and (i + 1) % PROGRESS_EVERY == 0:
            on_progress("writing", i + 1)
    db.session.flush()


def export_errors(errors: list[dict]) -> str:
    """The errors as CSV for a spreadsheet (no cell runs as a formula), with a BOM so that
    Excel reads the Chinese."""
    out = io.StringIO()
    out.write("\ufeff")
    w = SafeWriter(out)
    w.writerow([gettext("Row"), gettext("Column"), gettext("Reason"), gettext("Value")])
    for e in errors:
        w.writerow([e["row"], e["column"], e["reason"], e["value"]])
    return out.getvalue()


def _summary(result: Result) -> dict:
    return {
        "total": result.total,
        "products_created": result.products_created,
        "products_updated": result.products_updated,
        "skus_created": result.skus_created,
        "skus_updated": result.skus_updated,
        "errors": [e.as_dict() for e in result.errors],
    }


def upload_folder() -> str:
    path = os.path.join(current_app.config["INSTANCE_PATH"], "shop_imports")
    os.makedirs(path, exist_ok=True)
    return path


def start(raw: bytes, *, filename: str, operator: str | None) -> tuple[str, Result | None]:
    """Import an uploaded file: in this request when it is small (returns its result; the
    caller commits), else queued as a job (the caller commits, which enqueues it)."""
    if not raw:
        raise ImportFileError(_l("The file is empty."), field="file")
    text = decode(raw)
    _names, lines = read_rows(text)  # the file as a whole is checked now, in the request
    token = uuid.uuid4().hex
    inline = int(current_app.config.get("SHOP_IMPORT_INLINE_ROWS") or 500)
    if len(lines) <= inline:
        result = run(text, operator=operator, token=token)
        state = {"filename": filename, "done": result.total, **_summary(result)}
        if result.errors:
            db.session.rollback()
            save_progress(token, status="done", **state)
        else:
            _finish_after_commit(token, state)
        return token, result
    path = os.path.join(upload_folder(), f"{require_brand_id()}-{token}.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    save_progress(token, status="queued", filename=filename, total=len(lines), done=0, errors=[])
    import_catalog_job.enqueue(token, path, operator)
    return token, None


register_labels("job", {"shop.catalog_import.import_catalog_job": _l("Import products")})


@job("low", timeout=3600, retries=0)
def import_catalog_job(token: str, path: str, operator: str | None) -> None:
    """Run a queued catalog import; all rows are written in this job's one transaction."""
    state = progress(token) or {}
    if state.get("status") in ("done", "failed"):
        return
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        save_progress(token, status="failed")
        return
    total = state.get("total", 0)

    def report(status: str, done: int) -> None:
        save_progress(token, status=status, total=total, done=done)

    try:
        result = run(text, operator=operator, token=token, on_progress=report)
    except ValidationError as exc:
        db.session.rollback()
        save_progress(
            token,
            status="done",
            errors=[RowError(1, "", exc.message).as_dict()],
            total=total,
            done=0,
        )
        return
    except Exception:
        # The page must not wait for ever: say it failed (nothing was committed), then let
        # the job runner record the error.
        db.session.rollback()
        save_progress(token, status="failed")
        raise
    state = {"done": result.total, **_summary(result)}
    if result.errors:
        db.session.rollback()
        save_progress(token, status="done", **state)
        return
    db.session.flush()
    _finish_after_commit(token, state, path=path)


def _finish_after_commit(token: str, state: dict, *, path: str | None = None) -> None:
    """The import is "done" only once its rows are committed; "failed" if they never are
    (the file is kept for a look)."""
    key = _progress_key(token)

    def committed() -> None:
        _save(key, {"status": "done", **state})
        if path:
            os.remove(path)

    txhooks.on_commit(committed)
    txhooks.on_rollback(lambda: _save(key, {"status": "failed"}))
