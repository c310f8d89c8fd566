"""Callback throughput: distinct signed, AES-encrypted text messages answered by a keyword
reply, through gunicorn, against a bare Flask endpoint under the same gunicorn settings.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import re
import time
from pathlib import Path
from urllib.parse import urlencode

from bench import common

TITLE = "Callback throughput (official-account keyword reply)"
DURATION = int(os.environ.get("WMB_BENCH_DURATION", "10"))
WRK_THREADS = 2
CONNECTIONS = int(os.environ.get("WMB_BENCH_CONNECTIONS", "8"))
# Enough distinct messages per wrk thread for DURATION seconds at ~6,000 requests/s.
PER_THREAD = int(os.environ.get("WMB_BENCH_PER_THREAD", str(3000 * DURATION)))
OPENIDS = 500
LUA = Path(__file__).with_name("requests.lua")

BRAND = dict(
    slug="bench",
    name="Bench Brand",
    appid="wxbench000000001",
    secret="bench-app-secret-0001",
    token="benchtoken2026",
    aes_key="ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut",
)
KEYWORD = "会员"
ANSWER = "欢迎加入会员！回复“积分”查看积分。bench-ok"
TARGETS = {"ratio": 0.5, "p99_ms": 50.0}


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def build_requests(prefix: Path, *, msgid_base: int) -> None:
    """Write PER_THREAD distinct signed+encrypted keyword messages per wrk thread."""
    from wechatpy.crypto import PrpCrypto

    prp = PrpCrypto(base64.b64decode(BRAND["aes_key"] + "="))
    token, appid = BRAND["token"], BRAND["appid"]
    path = f"/wechat/{BRAND['slug']}/callback"
    now = str(int(time.time()))
    n = 0
    for thread in range(1, WRK_THREADS + 1):
        with open(f"{prefix}.{thread}.txt", "w") as f:
            for _ in range(PER_THREAD):
                n += 1
                openid = f"obench{n % OPENIDS:022d}"
                nonce = str(random.randrange(10**9, 10**10))
                plain = (
                    "<xml><ToUserName><![CDATA[gh_bench0000001]]></ToUserName>"
                    f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
                    f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                    f"<Content><![CDATA[{KEYWORD}]]></Content><MsgId>{msgid_base + n}</MsgId></xml>"
                )
                encrypt = prp.encrypt(plain, appid).decode()
                query = urlencode(
                    {
                        "signature": _sha1(token, now, nonce),
                        "timestamp": now,
                        "nonce": nonce,
                        "openid": openid,
                        "encrypt_type": "aes",
                        "msg_signature": _sha1(token, now, nonce, encrypt),
                    }
                )
                body = (
                    "<xml><ToUserName><![CDATA[gh_bench0000001]]></ToUserName>"
                    f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
                )
                f.write(f"{path}?{query}\t{body}\n")


def check_samples(prefix: Path) -> tuple[int, int]:
    """Decrypt the replies wrk kept; (checked, wrong) where wrong lacks the keyword's answer."""
    from wechatpy.crypto import WeChatCrypto

    crypto = WeChatCrypto(BRAND["token"], BRAND["aes_key"], BRAND["appid"])
    checked = wrong = 0
    for thread in range(1, WRK_THREADS + 1):
        data = Path(f"{prefix}.sample.{thread}.txt").read_bytes()
        pos = 0
        while pos < len(data):
            nl = data.index(b"\n", pos)
            size = int(data[pos:nl])
            body = data[nl + 1 : nl + 1 + size].decode()
            pos = nl + 2 + size
            checked += 1
            try:
                fields = {
                    k: re.search(rf"<{k}>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</{k}>", body)[1]
                    for k in ("MsgSignature", "TimeStamp", "Nonce")
                }
                plain = crypto.decrypt_message(
                    body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
                )
            except Exception:  # noqa: BLE001 - any failure is a wrong reply
                wrong += 1
                continue
            if ANSWER not in plain:
                wrong += 1
    return checked, wrong


def prepare_app(env: dict[str, str]) -> None:
    """A fresh bench database with the bench brand and its keyword reply."""
    import sys

    common.recreate_database()
    common.flush_redis()
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")})
    sys.path.insert(0, str(common.ROOT))
    from app import create_app
    from config import Config
    from core.db import db

    app = create_app(Config(env))
    with app.app_context():
        db.create_all()
        _create_brand_and_keyword()
        db.session.commit()
        db.engine.dispose()


def _create_brand_and_keyword() -> None:
    from core.tenancy import use_brand
    from org import services as org
    from wechat import chatbot

    brand = org.create_brand(**BRAND)
    with use_brand(brand.id):
        chatbot.save_replies(greeting="欢迎关注！", default_reply="收到，稍后回复您。")
        chatbot.create_keyword(
            keyword=KEYWORD,
            match="exact",
            priority=0,
            reply_type="text",
            text=ANSWER,
            title="",
            description="",
            url="",
            picurl="",
            starts_at=None,
            ends_at=None,
            active=True,
        )


# Stages of the callback view as (label, file suffix, function, caller or None) in cProfile's
# terms; shares are of the whole application call (the callback's WSGI front).
STAGES = [
    ("brand credentials (cached in the process)", "wechat/brand_cache.py", "get", None),
    ("XML parsing (envelope and message)", "wechat/wire.py", "parse_xml", None),
    ("AES decrypt", "wechat/crypto.py", "decrypt_with_first", None),
    ("router and chatbot (keyword match)", "wechat/router.py", "dispatch", None),
    ("reply rendering", "wechat/router.py", "render", None),
    (
        "Redis, one round trip (credential and chatbot check, retry key, record, reply)",
        "core/redis.py",
        "run_script",
        "claim_with_reply_if_unchanged",
    ),
    (
        "Redis, general way (handlers with effects, first message of a process)",
        "wechat/callback_scripts.py",
        "claim_and_read_markers",
        None,
    ),
    (
        "Redis, general way, after the handlers",
        "wechat/callback_scripts.py",
        "buffer_record_and_keep_reply",
        None,
    ),
    ("database (only when a handler used it)", "wechat/inbound.py", "insert_now", None),
    ("AES encrypt and signature of the reply", "wechat/callback.py", "_respond", None),
]


def profile_breakdown(env: dict[str, str], *, count: int = 1000) -> tuple[float, float, list]:
    """CPU per request of the callback and of the bare endpoint in one process (no server,
    no load generator), and the callback's stages: where the time goes."""
    import cProfile
    import pstats

    from app import create_app
    from bench.bare_app import app as bare
    from config import Config

    app = create_app(Config(env))
    prefix = common.OUT / "profile"
    saved = globals()["PER_THREAD"]
    globals()["PER_THREAD"] = count + 100
    try:
        build_requests(prefix, msgid_base=random.randrange(10**15, 10**16) * 1000)
    finally:
        globals()["PER_THREAD"] = saved
    lines = Path(f"{prefix}.1.txt").read_text().splitlines()

    def cpu_per_request(flask_app, batch: list[str]) -> float:
        client = flask_app.test_client()
        start = time.process_time()
        for line in batch:
            path, body = line.split("\t", 1)
            res = client.post(path, data=body, content_type="text/xml")
            assert res.status_code == 200, res.status_code
        return (time.process_time() - start) / len(batch) * 1000

    cpu_per_request(app, lines[:100])  # warm caches and connections
    # Alternate the two and keep each one's best batch: other load only ever adds time.
    size = 200
    ours_runs, bare_runs = [], []
    for i in range(count // size):
        ours_runs.append(cpu_per_request(app, lines[100 + i * size : 100 + (i + 1) * size]))
        bare_runs.append(cpu_per_request(bare, lines[:size]))
    ours, bare_ms = min(ours_runs), min(bare_runs)
    lines = Path(f"{prefix}.2.txt").read_text().splitlines()
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    cpu_per_request(app, lines[:count])
    prof.disable()
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}

    def cumulative(suffix: str, name: str, caller: str | None = None) -> float:
        ct = 0.0
        for k, v in stats.items():
            if k[0].endswith(suffix) and k[2] == name:
                ct += (
                    v[3]
                    if caller is None
                    else sum(c[3] for ck, c in v[4].items() if ck[2] == caller)
                )
        return ct

    total = cumulative("wechat/wire.py", "__call__")
    view = cumulative("wechat/callback.py", "callback")
    stages = [("WSGI front around the view (app context, request, id, metrics)", total - view)]
    stages += [(label, cumulative(suffix, name, caller)) for label, suffix, name, caller in STAGES]
    stages.append(
        ("rest of the view (arguments, signatures, checks)", view - sum(c for _, c in stages[1:]))
    )
    return ours, bare_ms, [(label, ct / total if total else 0.0) for label, ct in stages]


def _measure(url: str, prefix: Path) -> dict:
    res = common.run_wrk(
        url,
        script=LUA,
        prefix=prefix,
        threads=WRK_THREADS,
        connections=CONNECTIONS,
        duration=DURATION,
    )
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["errors"] = (
        res["connect_errors"]
        + res["read_errors"]
        + res["write_errors"]
        + res["status_errors"]
        + res["timeouts"]
        + res["bad_replies"]
    )
    return res


def run(*, repeats: int, log=print) -> dict:
    """Measure both servers ``repeats`` times, alternating; figures are medians."""
    common.OUT.mkdir(exist_ok=True)
    env = common.bench_env(WECHAT_SANDBOX="0", JOBS_INLINE="0")
    prepare_app(env)
    load_before = os.getloadavg()[0]
    ours_runs, bare_runs, samples = [], [], []
    with (
        common.gunicorn("bench.bare_app:app", env=env) as bare_url,
        common.gunicorn("wsgi:app", env=env, ready_path="/healthz") as app_url,
    ):
        for rep in range(repeats):
            prefix = common.OUT / f"callback-{rep}"
            build_requests(prefix, msgid_base=random.randrange(10**15, 10**16) * 1000)
            bare = _measure(bare_url, prefix)
            bare_runs.append(bare)
            log(f"  run {rep + 1} bare: {bare['rps']:.0f} req/s p99 {bare['p99_us'] / 1000:.1f} ms")
            ours = _measure(app_url, prefix)
            checked, wrong = check_samples(prefix)
            ours["sample_checked"], ours["sample_wrong"] = checked, wrong
            ours["errors"] += wrong
            ours_runs.append(ours)
            samples.append((checked, wrong))
            log(
                f"  run {rep + 1} ours: {ours['rps']:.0f} req/s p99 {ours['p99_us'] / 1000:.1f} ms"
                f" errors {ours['errors']} (sample {checked} checked, {wrong} wrong)"
                f" wrapped {ours['wrapped']}"
            )
    ours_cpu, bare_cpu, stages = profile_breakdown(env)
    log(f"  in-process CPU per request: ours {ours_cpu:.2f} ms, bare {bare_cpu:.2f} ms")
    res = _summarize(ours_runs, bare_runs)
    res["notes"].append(
        f"Machine load average (1 min) when the runs started: {load_before:.1f}, when they"
        f" ended: {os.getloadavg()[0]:.1f}, on {os.cpu_count()} CPUs; whatever else runs on the"
        " machine (other test suites) takes CPU from both servers and from wrk."
    )
    res["details"] = [
        "Where the time goes: CPU per request measured in one process with Flask's test client"
        f" (no server, no load generator; best of alternating batches): callback {ours_cpu:.2f}"
        f" ms, bare endpoint {bare_cpu:.2f} ms. Share of the application's CPU time per"
        " request by stage (cProfile, which inflates many small calls):",
        "",
        "| Stage | Share |",
        "|---|---:|",
        *[f"| {label} | {share:.0%} |" for label, share in stages],
    ]
    res["raw"]["cpu_ms"] = {"ours": ours_cpu, "bare": bare_cpu, "stages": stages}
    return res


def _summarize(ours_runs: list[dict], bare_runs: list[dict]) -> dict:
    med = common.median

    def fig(runs, k, scale=1.0):
        return med([r[k] / scale for r in runs])

    ours_rps, bare_rps = fig(ours_runs, "rps"), fig(bare_runs, "rps")
    ratio = ours_rps / bare_rps
    ours_p99 = fig(ours_runs, "p99_us", 1000)
    errors = sum(r["errors"] for r in ours_runs)
    wrapped = sum(r["wrapped"] for r in ours_runs)
    rows = [
        ("Throughput (req/s)", ours_rps, bare_rps, "higher"),
        (
            "Latency p50 (ms)",
            fig(ours_runs, "p50_us", 1000),
            fig(bare_runs, "p50_us", 1000),
            "lower",
        ),
        ("Latency p99 (ms)", ours_p99, fig(bare_runs, "p99_us", 1000), "lower"),
        ("Errors (all runs)", errors, sum(r["errors"] for r in bare_runs), "lower"),
    ]
    checks = [
        (f"throughput ratio ≥ {TARGETS['ratio']}", f"{ratio:.2f}", ratio >= TARGETS["ratio"]),
        (f"p99 < {TARGETS['p99_ms']:.0f} ms", f"{ours_p99:.1f} ms", ours_p99 < TARGETS["p99_ms"]),
        ("zero errors", str(errors), errors == 0 and wrapped == 0),
    ]
    sampled = sum(r["sample_checked"] for r in ours_runs)
    notes = [
        f"gunicorn {' '.join(common.GUNICORN_ARGS[:6])} for both servers; wrk -t {WRK_THREADS}"
        f" -c {CONNECTIONS} -d {DURATION}s; {len(ours_runs)} runs, medians quoted, the two"
        " servers alternating within each run.",
        f"Each request is a distinct text message (own MsgId, {OPENIDS} openids), signed and"
        " AES-encrypted (safe mode) with the brand's token and EncodingAESKey; the callback"
        " answers with an encrypted passive reply from an exact keyword match.",
        f"The app runs on PostgreSQL and Redis (database {common.BENCH_DB}, Redis db"
        f" {common.BENCH_REDIS_DB}). Gunicorn loads wsgi.py, which freezes the objects loaded at"
        " start-up out of the garbage collector's reach (gc.freeze()).",
        f"Errors count connect/read/write errors, timeouts, non-2xx answers, replies without"
        f" <Encrypt>, and sampled replies ({sampled} decrypted) that lack the keyword's answer;"
        f" requests replayed after a thread ran out of distinct messages: {wrapped}.",
    ]
    return {
        "rows": rows,
        "ratio": ratio,
        "checks": checks,
        "notes": notes,
        "raw": {"ours": ours_runs, "bare": bare_runs},
    }
