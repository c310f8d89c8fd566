"""Pydantic models of the catalog operations of the mini-program API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from core.api import MAX_ID


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    category_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this category")
    after: int | None = Field(
        None, ge=1, le=MAX_ID, description="The `next_after` of the previous page"
    )
    limit: int = Field(20, ge=1, le=50)


class CategoryOut(_Out):
    id: int
    code: str
    name: str


class ProductCard(_Out):
    id: int
    name: str
    subtitle: str
    cover_url: str | None = Field(description="Absolute URL of the first image")
    price_fen: int = Field(description="The lowest price of its SKUs (a running flash sale's)")
    original_price_fen: int = Field(description="划线价; 0 when none")
    in_stock: bool
    flash_sale: bool = Field(description="One of its SKUs is in a running flash sale")
    category_id: int | None


class ProductPage(_Out):
    items: list[ProductCard]
    categories: list[CategoryOut]
    next_after: int | None = Field(description="Pass as `after` for the next page; null at the end")


class FlashSaleOut(_Out):
    id: int
    price_fen: int
    per_member_limit: int
    remaining: int = Field(description="Units not yet taken at the flash-sale price")
    ends_at: dt.datetime


class SkuOut(_Out):
    id: int
    code: str
    spec: dict[str, str] = Field(
        description='e.g. {"颜色": "黑", "尺码": "M"}, in the brand\'s order'
    )
    spec_text: str
    price_fen: int
    original_price_fen: int
    stock: int
    stock_state: str = Field(description="in_stock, low or sold_out")
    flash_sale: FlashSaleOut | None


class ProductOut(_Out):
    id: int
    code: str
    name: str
    subtitle: str
    description: str
    category_id: int | None
    image_urls: list[str]
    limit_per_member: int = Field(description="Units per member; 0 when unlimited")
    specs: dict[str, list[str]] = Field(description="Each spec name with its values, for a picker")
    skus: list[SkuOut]
