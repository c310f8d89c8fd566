"""Member activation under load: concurrent consumers go scan -> OAuth -> phone -> activation
against the app on gunicorn (its own mounted WeChat sandbox plays WeChat).

Each consumer: a guide QR ``subscribe`` posted to the callback (signed, AES-encrypted, as
WeChat posts it); the activation page's OAuth round trip (app -> sandbox authorize -> app,
which redeems the code at the sandbox and answers with the phone step); the phone step (the
SMS code sent as the page's script sends it, read where the sandbox's SMS sender keeps it);
the activation POST (SMS check, member, identities, attribution, tier, tags, QR statistics,
card-activation lookup) followed by the card page. Reported: members activated per second
over the whole run and the p99 latency of every step.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from bench import common

TITLE = "Member activation (scan -> OAuth -> phone -> activation) on gunicorn"
CONSUMERS = int(os.environ.get("WMB_BENCH_ACTIVATIONS", "300"))
TARGET_RATE = 50
CONCURRENCY = int(os.environ.get("WMB_BENCH_ACTIVATION_CONCURRENCY", "16"))
STEPS = ("scan", "oauth", "phone", "activate")
CPU_PARTS = (
    ("app", "app server"),
    ("sandbox", "WeChat sandbox server"),
    ("client", "load generator"),
    ("postgres", "PostgreSQL"),
)
SLUG = "benchact"
APPID, SECRET, TOKEN = "wxbenchact000001", "bench-act-secret", "benchacttoken"
AES_KEY = base64.b64encode(b"b" * 32).decode()[:43]


def _pg_backends() -> list[int]:
    import psycopg

    with psycopg.connect(common.PG_ADMIN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (common.BENCH_DB,)
        ).fetchall()
    return [r[0] for r in rows]


@contextlib.contextmanager
def _gunicorn(port: int, env: dict, app_spec: str = "wsgi:app"):
    """gunicorn with the shared settings on a port chosen first (PUBLIC_URL needs it)."""
    log = open(common.OUT / f"gunicorn-{port}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(  # noqa: S603 - fixed command
        [
            str(common.VENV_BIN / "gunicorn"),
            *common.GUNICORN_ARGS,
            "--bind",
            f"127.0.0.1:{port}",
            app_spec,
        ],
        cwd=common.ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        common._wait_ready(base + "/", proc)
        yield base, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _setup(app, base: str) -> tuple[int, str, list[dict]]:
    """Schema, a brand with a store, a guide and the guide's QR code, sandbox consumers."""
    from core.db import db
    from core.tenancy import use_brand
    from members.models import MemberQrCode
    from org import services as org
    from wechat.sandbox import accounts, store

    with app.app_context():
        db.create_all()
        brand = org.create_brand(
            slug=SLUG,
            name="Bench Activation",
            appid=APPID,
            secret=SECRET,
            token=TOKEN,
            aes_key=AES_KEY,
        )
        db.session.commit()
        with use_brand(brand.id):
            s = org.create_store(code="SH001", name="南京西路店", city="上海", region="华东")
            db.session.flush()
            guide = org.create_staff(
                name="小李",
                phone="13800000001",
                role="guide",
                store_id=s.id,
                password="bench-password-1",
            )
            db.session.flush()
            scene = f"g:{guide.id}"
            db.session.add(
                MemberQrCode(
                    kind="guide",
                    store_id=s.id,
                    staff_id=guide.id,
                    scene=scene,
                    ticket="bench",
                    url=base + "/q/bench",
                )
            )
            db.session.commit()
        accounts.register_account(
            APPID,
            SECRET,
            token=TOKEN,
            aes_key=AES_KEY,
            callback_url=f"{base}/wechat/{SLUG}/callback",
            name="Bench",
        )
        consumers = []
        for i in range(CONSUMERS):
            c = store.create_consumer(f"c{i}")
            c["openid"] = store.openid_for(APPID, c["uid"])
            c["phone"] = f"137{i:08d}"
            consumers.append(c)
        return brand.id, scene, consumers


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


class _Browser:
    """One consumer's browser: cookies of its own, HTTP/1.1 keep-alive connections of the
    client thread it runs on (``http.client``, far lighter than ``requests``), the same
    requests as a browser sends them; redirects are followed only where asked."""

    _conns = threading.local()

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def _conn(self, netloc: str, fresh: bool = False) -> http.client.HTTPConnection:
        pool = self._conns.__dict__.setdefault("pool", {})
        conn = pool.get(netloc)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            host, _, port = netloc.partition(":")
            conn = pool[netloc] = http.client.HTTPConnection(host, int(port or 80), timeout=10)
        return conn

    def request(
        self, method: str, url: str, *, params=None, form=None, body=None, ctype=None, accept=None
    ):
        """(status, headers, text) of one request; the cookies it sets are kept."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        headers = {"Accept": accept} if accept else {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if form is not None:
            body, ctype = urlencode(form).encode(), "application/x-www-form-urlencoded"
        if ctype:
            headers["Content-Type"] = ctype
        for attempt in (0, 1):
            conn = self._conn(parts.netloc, fresh=attempt == 1)
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                text = resp.read().decode()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: a new one, once.
                if attempt:
                    raise
        for line in resp.headers.get_all("Set-Cookie") or ():
            name, _, value = line.partition(";")[0].partition("=")
            if value and "Max-Age=0" not in line:
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)
        return resp.status, resp.headers, text

    def follow(self, status: int, headers, text: str, base: str):
        """A browser following the redirect of a form post (303 or 302: a GET)."""
        if status in (302, 303):
            return self.request("GET", urljoin(base, headers["Location"]))
        return status, headers, text


def _scan_request(account: dict, scene: str, consumer: dict) -> tuple[str, str]:
    """WeChat's side of a scan, made before the timed run: the query string and the signed,
    encrypted body WeChat posts to the callback."""
    from wechat.sandbox import push

    xml = push.build_xml(
        {
            "ToUserName": account["original_id"],
            "FromUserName": consumer["openid"],
            "CreateTime": int(time.time()),
            "MsgType": "event",
            "Event": "subscribe",
            "EventKey": f"qrscene_{scene}",
        }
    )
    params, body = push.signed_request(account, xml, consumer["openid"])
    return urlencode(params), body


def _one(base: str, consumer: dict, times: dict, inbox) -> None:
    web = _Browser()
    m = f"{base}/m/{SLUG}"

    def step(name, fn):
        started = time.perf_counter()
        fn()
        times[name].append(time.perf_counter() - started)

    def scan():
        query, body = consumer["scan"]
        status, _, text = web.request(
            "POST", f"{base}/wechat/{SLUG}/callback?{query}", body=body.encode(), ctype="text/xml"
        )
        assert status == 200 and "<Encrypt>" in text, text[:200]

    def oauth():
        status, headers, text = web.request("GET", m + "/activate")
        assert status == 302, (status, text[:300])
        url, _, fragment = headers["Location"].partition("#")  # ends with #wechat_redirect
        authorize = f"{url}&uid={consumer['uid']}"
        status, headers, _ = web.request("GET", authorize)
        back = urlsplit(headers["Location"])
        q = parse_qs(back.query)
        status, headers, html = web.request(
            "GET", m + "/activate/oauth", params={"code": q["code"][0], "state": q["state"][0]}
        )
        # Not a member yet: the OAuth return answers with the activation page's phone step.
        assert status == 200 and 'id="phone-form"' in html, html[:300]
        state["csrf"] = _csrf(html)

    state = {}

    def phone():
        # The page's script sends the code and shows the code step in place (JSON back).
        status, _, text = web.request(
            "POST",
            m + "/activate/code",
            form={"phone": consumer["phone"], "csrf_token": state["csrf"]},
            accept="application/json",
        )
        assert status == 200 and json.loads(text)["phone"] == consumer["phone"], text[:300]
        # The phone gets the SMS: the sandbox sender's message, read where it keeps it.
        state["code"] = inbox(consumer["phone"])["code"]

    def activate():
        status, _, text = web.follow(
            *web.request(
                "POST",
                m + "/activate",
                form={
                    "phone": consumer["phone"],
                    "code": state["code"],
                    "consent": "yes",
                    "csrf_token": state["csrf"],
                },
            ),
            m + "/activate",
        )
        assert status == 200 and 'id="card-no"' in text, text[:300]

    for name, fn in (("scan", scan), ("oauth", oauth), ("phone", phone), ("activate", activate)):
        step(name, fn)


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] * 1000 if len(values) > 1 else 0.0


def run(*, repeats: int, log) -> dict:
    from sqlalchemy import func, select, text

    rates, p99s, raw = [], {s: [] for s in STEPS}, []
    for rep in range(repeats):
        common.recreate_database()
        common.flush_redis()
        port, sandbox_port = common.free_port(), common.free_port()
        base = f"http://127.0.0.1:{port}"
        # WeChat is another service: the sandbox runs in its own gunicorn (the app calling
        # its own mounted sandbox would wait for its own busy threads).
        env = common.bench_env(
            WECHAT_API_BASE=f"http://127.0.0.1:{sandbox_port}/sandbox/wechat",
            PUBLIC_URL=base,
            WECHAT_SANDBOX="1",
            SMS_IP_LIMIT="1000000",
            PROMETHEUS_MULTIPROC_DIR=common.metrics_dir(),
        )
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")})
        from app import create_app
        from config import Config
        from core.db import db
        from core.tenancy import use_brand
        from members.activation import sms
        from members.models import Member
        from wechat.sandbox import accounts

        app = create_app(Config(env))
        brand_id, scene, consumers = _setup(app, base)
        with app.app_context():
            account = accounts.get_account(APPID)
        times = {s: [] for s in STEPS}
        errors: list[str] = []
        lock = threading.Lock()

        for c in consumers:
            c["scan"] = _scan_request(account, scene, c)

        def inbox(phone, app=app):
            with app.app_context():
                return sms.sandbox_last(phone)

        def work(c, base=base, times=times, errors=errors, lock=lock, inbox=inbox):
            try:
                _one(base, c, times, inbox)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(repr(exc)[:200])

        sandbox_spec = "wechat.sandbox.server:create_sandbox_app()"
        with (
            _gunicorn(sandbox_port, env, sandbox_spec) as (_, sandbox_pgid),
            _gunicorn(port, env) as (_, app_pgid),
        ):
            groups = {"app": common.group(app_pgid), "sandbox": common.group(sandbox_pgid)}
            before = {k: common.cpu_seconds(v) for k, v in groups.items()}
            pg_before = {pid: common.cpu_seconds([pid]) for pid in _pg_backends()}
            client_before = time.process_time()
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            with app.app_context(), ThreadPoolExecutor(CONCURRENCY) as pool:
                list(pool.map(work, consumers))
            wall = time.perf_counter() - started
            cpu = {k: common.cpu_seconds(v) - before[k] for k, v in groups.items()}
            cpu["client"] = time.process_time() - client_before
            cpu["postgres"] = sum(
                common.cpu_seconds([pid]) - pg_before.get(pid, 0.0) for pid in _pg_backends()
            )
            load_after = os.getloadavg()[0]
        with app.app_context(), use_brand(brand_id):
            members = db.session.scalar(select(func.count()).select_from(Member))
            guided = db.session.scalar(
                select(func.count()).select_from(Member).where(Member.guide_id.is_not(None))
            )
            db.session.execute(text("SELECT 1"))
            db.session.remove()
            db.engine.dispose()
        rate = members / wall
        rates.append(rate)
        for s in STEPS:
            p99s[s].append(_p99(times[s]))
        raw.append(
            {
                "wall": wall,
                "members": members,
                "guided": guided,
                "errors": errors[:5],
                "error_count": len(errors),
                "p99_ms": {s: _p99(times[s]) for s in STEPS},
                "median_ms": {s: statistics.median(times[s]) * 1000 for s in STEPS if times[s]},
                "cpu_ms_per_activation": {k: v / max(members, 1) * 1000 for k, v in cpu.items()},
                "load": [load_before, load_after],
            }
        )
        log(
            f"  run {rep + 1}: {members}/{CONSUMERS} activated in {wall:.1f} s "
            f"({rate:.1f}/s), errors {len(errors)}, p99 ms "
            + ", ".join(f"{s} {raw[-1]['p99_ms'][s]:.0f}" for s in STEPS)
            + "; CPU ms per activation "
            + ", ".join(f"{k} {v:.1f}" for k, v in raw[-1]["cpu_ms_per_activation"].items())
            + f"; load {load_before:.1f} -> {load_after:.1f}"
        )
    ok = all(r["members"] == CONSUMERS == r["guided"] and not r["error_count"] for r in raw)
    rows = [("Activations per second", common.median(rates), 0, "higher")]
    rows += [(f"p99 {s} (ms)", common.median(p99s[s]), 0, "lower") for s in STEPS]
    for part, label in CPU_PARTS:
        values = [r["cpu_ms_per_activation"][part] for r in raw]
        rows.append((f"CPU per activation: {label} (ms)", common.median(values), 0, "lower"))
    loads = [x for r in raw for x in r["load"]]
    total_cpu = sum(
        common.median([r["cpu_ms_per_activation"][part] for r in raw]) for part, _ in CPU_PARTS
    )
    ncpu = os.cpu_count() or 1
    return {
        "rows": rows,
        "checks": [
            (
                "every consumer activated once, with the guide, no errors",
                f"{raw[-1]['members']}/{CONSUMERS}",
                ok,
            ),
            (
                f"at least {TARGET_RATE} activations per second",
                f"{common.median(rates):.1f}",
                common.median(rates) >= TARGET_RATE,
            ),
        ],
        "notes": [
            f"{CONSUMERS} consumers, {CONCURRENCY} at a time (threads of one client process on "
            "the same machine, each consumer a browser of its own over the thread's keep-alive "
            "http.client connections; the signed scan posts built before the timing), gunicorn "
            f"{common.GUNICORN_WORKERS} workers x {common.GUNICORN_THREADS} threads; "
            "WeChat's sandbox (OAuth authorize and code exchange) runs in its own gunicorn with "
            "the same settings on the same machine; the SMS code is read where the sandbox's SMS "
            "sender keeps it (Redis), as the phone would receive it.",
            "scan = the signed, encrypted subscribe event through the callback; oauth = three "
            "requests (activation page, sandbox authorize, OAuth return with the code "
            "exchange, answering with the phone step); phone = the SMS code sent as the page's"
            " script sends it (JSON, the code step shown in place) + the SMS read; activate ="
            " the activation POST and the card page it redirects to.",
            "CPU per activation: user + system time of each part during the timed run"
            " divided by the activations (the app's and the sandbox's gunicorn processes, this"
            " client process, the PostgreSQL backends of the bench database); the 2 CPUs are"
            " shared with whatever else runs on the machine.",
            f"CPU per activation of all four parts (medians): {total_cpu:.1f} ms; at these costs"
            f" {ncpu} CPUs allow at most {ncpu * 1000 / total_cpu:.0f} activations per second"
            " with nothing else running.",
            f"Machine load average (1 min) at the start and end of the runs: {min(loads):.1f} to"
            f" {max(loads):.1f} on {os.cpu_count()} CPUs.",
            "No baseline: the figure is absolute.",
        ],
        "raw": raw,
    }
