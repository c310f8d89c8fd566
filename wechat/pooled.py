"""WeChat's plain JSON GETs (the web OAuth's code exchange and user info) over a urllib3 pool.

wechatpy's clients speak through requests. These calls are made by the gateway itself and
need nothing requests adds on every call (cookies, hooks, auth, settings merged per request),
work that cost more CPU than the exchange's own. The pool keeps what the requests session
gave them: the environment's proxy and CA bundle for the API base (read once), the
timeout, the in-process sandbox (``wechat.inprocess``), and the exceptions callers expect:
a failure to connect or read raises requests' exception for it, as a requests session would.
Redirects are not followed: WeChat's API answers where it is asked.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from wechat import inprocess

# Connections kept per host, as a requests session keeps (one per thread of a gthread worker).
POOL_SIZE = 10


class Answer:
    """What ``client.transport`` reads of an answer."""

    __slots__ = ("content", "status_code")

    def __init__(self, status_code: int, content: bytes):
        self.status_code = status_code
        self.content = content

    def json(self):
        return json.loads(self.content)


class PooledGetter:
    """GETs to one API base, from a urllib3 pool (or the app itself, in-process)."""

    def __init__(self, base: str, *, wsgi_app=None):
        self.wsgi_app = wsgi_app
        self.pool: urllib3.PoolManager | None = None
        if wsgi_app is None:
            proxies = requests.utils.get_environ_proxies(base)
            proxy = proxies.get(urlsplit(base).scheme) or proxies.get("all")
            bundle = (
                os.environ.get("REQUESTS_CA_BUNDLE")
                or os.environ.get("CURL_CA_BUNDLE")
                or requests.certs.where()
            )
            options = {"maxsize": POOL_SIZE, "ca_certs": bundle, "retries": False}
            self.pool = (
                urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
            )

    def get(self, url: str, params: dict, *, timeout: float) -> Answer:
        """The answer to ``GET url?params``; requests' exceptions when it cannot be had."""
        url = f"{url}?{urlencode(params)}"
        if self.wsgi_app is not None:
            status, _headers, content = inprocess.dispatch(self.wsgi_app, "GET", url)
            return Answer(int(status.split(" ", 1)[0]), content)
        try:
            res = self.pool.request("GET", url, timeout=timeout, redirect=False)
        except NewConnectionError as exc:  # a ConnectTimeoutError to urllib3, not a timeout
            raise requests.ConnectionError(exc) from exc
        except ConnectTimeoutError as exc:
            raise requests.ConnectTimeout(exc) from exc
        except ReadTimeoutError as exc:
            raise requests.ReadTimeout(exc) from exc
        except ProxyError as exc:
            raise requests.exceptions.ProxyError(exc) from exc
        except SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.ConnectionError(exc) from exc
        return Answer(res.status, res.data)
