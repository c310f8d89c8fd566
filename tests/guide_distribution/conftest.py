"""Guide distribution builds on the shop's orders: its fixtures (a brand with a store and a
small catalog, a fake of WeChat Pay's gateway calls) are the shop tests' own."""

from tests.shop.conftest import fake_pay, shop  # noqa: F401 - fixtures
