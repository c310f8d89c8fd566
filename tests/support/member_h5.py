"""A sandbox consumer on the brand's member pages (H5) through a test client: scan a QR code,
sign in through the WeChat OAuth, ask for the SMS code, activate the card. (A test that only
needs a member signed in uses ``factories.sign_in_member``.)"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from members.activation import sms
from tests import factories as f
from wechat.sandbox import oauth, push, store


class Phone:
    """A sandbox consumer using the brand's H5 pages through a test client."""

    def __init__(self, client, brand, consumer):
        self.client, self.brand, self.consumer = client, brand, consumer
        self.openid = consumer["openid"]
        self.base = f"/m/{brand.slug}"
        self.events = 0

    def _time(self) -> int:
        # WeChat dedupes events by sender + CreateTime: two scans in one second are one.
        self.events += 1
        return int(time.time()) + self.events

    def scan(self, qr, following=True):
        if following:
            fields = {
                "MsgType": "event",
                "Event": "SCAN",
                "EventKey": qr.scene,
                "CreateTime": self._time(),
            }
            return push.deliver(self.brand.appid, self.openid, fields)
        store.set_following(self.brand.appid, self.openid, False)
        return push.follow(self.brand.appid, self.openid, scene=qr.scene, ticket=qr.ticket)

    def oauth_code(self, *, snapshot=False):
        r = self.client.get(self.base + "/activate")
        assert r.status_code == 302, r.get_data(as_text=True)
        target = urlsplit(r.headers["Location"])
        assert target.path.endswith("/connect/oauth2/authorize")
        state = parse_qs(target.query)["state"][0]
        code = oauth.authorize_code(
            self.brand.appid, self.consumer["uid"], "snsapi_base", snapshot=snapshot
        )
        return code, state

    def sign_in(self, **kw):
        code, state = self.oauth_code(**kw)
        return self.client.get(f"{self.base}/activate/oauth?code={code}&state={state}")

    def request_code(self, phone):
        html = self.client.get(self.base + "/activate").get_data(as_text=True)
        # A sent code redirects to the activation page, which shows the code step.
        return self.client.post(
            self.base + "/activate/code",
            data={"phone": phone, "csrf_token": f.csrf(html)},
            follow_redirects=True,
        )

    def activate(self, phone, code=None, consent="yes"):
        html = self.client.get(self.base + "/activate").get_data(as_text=True)
        if code is None:
            code = sms.sandbox_last(phone)["code"]
        return self.client.post(
            self.base + "/activate",
            data={"phone": phone, "code": code, "consent": consent, "csrf_token": f.csrf(html)},
        )
