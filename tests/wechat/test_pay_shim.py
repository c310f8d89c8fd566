"""The sandbox's pay shim on member pages: rendered once per language, nothing when the
sandbox is off."""

from __future__ import annotations

import pytest

from wechat import pay_shim


@pytest.mark.parametrize("sandbox", [True, False])
def test_the_shim_is_rendered_once_per_language_and_only_with_the_sandbox(app, sandbox):
    pay_shim._CACHE.clear()
    app.config["SANDBOX_ENABLED"], was = sandbox, app.config["SANDBOX_ENABLED"]
    try:
        with app.test_request_context("/m/x/"):
            zh = pay_shim.pay_shim()
        with app.test_request_context("/m/x/?lang=en"):
            en = pay_shim.pay_shim()
        with app.test_request_context("/m/x/"):
            again = pay_shim.pay_shim()
    finally:
        app.config["SANDBOX_ENABLED"] = was
        pay_shim._CACHE.clear()
    if not sandbox:
        assert zh == en == ""
        return
    assert "sandbox/wxpay.js" in zh and "微信支付（沙箱）" in zh
    assert "WeChat Pay (sandbox)" in en and "微信支付" not in en
    assert again is zh
