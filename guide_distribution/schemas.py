"""Mini-program API shapes of a guide's shop."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shop.catalog_schemas import ProductCard


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GuideOut(_Out):
    name: str
    store_name: str | None
    intro: str
    photo_url: str | None = Field(description="Absolute URL of the guide's face picture")


class ShopItemOut(_Out):
    line: str = Field(description="The guide's line about the product")
    product: ProductCard


class GuideShopOut(_Out):
    guide: GuideOut
    items: list[ShopItemOut]
    visit_recorded: bool = Field(
        description="The request carried an activated member's session: the visit was recorded "
        "and the brand's binding rules applied"
    )
