"""The sandbox mounted in the app is reachable in-process (`make run` with no server up)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from members.models import MemberQrCode
from org.models import Brand
from tests.support.apps import build_app
from wechat import gateway
from wechat.sandbox import oauth, store

NOWHERE = "http://127.0.0.1:9"  # nothing listens here: any real HTTP call would fail


def test_demo_creates_qr_codes_through_the_inprocess_sandbox(app):
    local = build_app(
        WECHAT_SANDBOX_INPROCESS="1",
        PUBLIC_URL=NOWHERE,
        WECHAT_API_BASE=NOWHERE + "/sandbox/wechat",
    )
    result = local.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    with local.app_context():
        brand = Brand.by_slug("demo")
        with use_brand(brand.id):
            codes = db.session.execute(select(MemberQrCode)).scalars().all()
            assert len(codes) == 3 + 6  # every demo store and guide
            info = gateway.create_qrcode(brand.id, "probe", permanent=False, expire_seconds=60)
            assert info["ticket"]
            # The demo brand is a WeChat Pay merchant of the sandbox: it can take a payment.
            params = gateway.pay_jsapi_prepay(
                brand.id,
                mini_program=False,
                openid="odemo-probe",
                out_trade_no="DEMO000001",
                description="示范订单",
                amount_fen=100,
                notify_url=NOWHERE + "/probe",
                time_expire=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
            )
            paid = local.test_client().post("/sandbox/wechat/_sandbox/pay/v3/jsapi", json=params)
            assert paid.status_code == 200, paid.get_data(as_text=True)
            assert gateway.pay_query(brand.id, "DEMO000001").trade_state == "SUCCESS"
            # A member page's sign-in: the OAuth code exchange answers in-process too.
            code = oauth.authorize_code(brand.appid, "probe-uid", "snsapi_base")
            user = gateway.fetch_oauth_user(brand.id, code)
            assert user["openid"] == store.openid_for(brand.appid, "probe-uid")
        db.session.remove()
