"""Fixtures of the fulfilment, after-sale, refund and reconciliation tests (imported by
those test files): a store, a catalog, a member with points, and a fake of WeChat Pay's
refund and bill calls at the gateway's names (SHOP_CONTRACT.md)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from tests import factories
from tests.shop import factories as shop_factories

__all__ = ["fake_pay", "member_id", "skus", "store"]


@pytest.fixture
def store(brand):
    return factories.store(brand)


@pytest.fixture
def skus(brand):
    return shop_factories.catalog()


@pytest.fixture
def member_id(brand) -> int:
    m = factories.member()
    shop_factories.give_points(m.id, 5000)
    return m.id


@dataclasses.dataclass
class RefundState:
    refund_id: str
    status: str
    refund_fen: int


class FakePayError(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclasses.dataclass
class FakePay:
    """WeChat Pay as the shop sees it through the gateway: refunds answer ``mode``
    (SUCCESS, PROCESSING, ABNORMAL) or raise ``error``; the bill is ``bill``."""

    mode: str = "SUCCESS"
    error: str | None = None
    calls: list = dataclasses.field(default_factory=list)
    states: dict = dataclasses.field(default_factory=dict)
    bill: list = dataclasses.field(default_factory=list)
    seq: itertools.count = dataclasses.field(default_factory=lambda: itertools.count(1))

    def pay_refund(self, brand_id, *, out_trade_no, out_refund_no, refund_fen, total_fen,
                   reason, notify_url):  # fmt: skip
        self.calls.append(
            {"out_trade_no": out_trade_no, "out_refund_no": out_refund_no,
             "refund_fen": refund_fen, "total_fen": total_fen, "notify_url": notify_url}
        )  # fmt: skip
        if self.error:
            raise FakePayError(self.error)
        if out_refund_no not in self.states:
            self.states[out_refund_no] = RefundState(f"50300{next(self.seq):010d}", self.mode,
                                                     refund_fen)  # fmt: skip
        return self.states[out_refund_no]

    def pay_refund_query(self, brand_id, out_refund_no):
        if out_refund_no not in self.states:
            raise FakePayError("RESOURCE_NOT_EXISTS")
        return self.states[out_refund_no]

    def pay_trade_bill(self, brand_id, bill_date):
        return list(self.bill)


@pytest.fixture
def fake_pay(monkeypatch):
    from wechat import gateway

    pay = FakePay()
    monkeypatch.setattr(gateway, "pay_refund", pay.pay_refund, raising=False)
    monkeypatch.setattr(gateway, "pay_refund_query", pay.pay_refund_query, raising=False)
    monkeypatch.setattr(gateway, "pay_trade_bill", pay.pay_trade_bill, raising=False)
    monkeypatch.setattr(gateway, "PayError", FakePayError)
    return pay


@dataclasses.dataclass(frozen=True)
class Notice:
    """A verified refund notify, as ``gateway.pay_parse_notify`` returns it."""

    out_trade_no: str
    out_refund_no: str
    refund_id: str
    refund_status: str
    refund_fen: int
    kind: str = "refund"
    transaction_id: str = ""
    notify_id: str = ""
