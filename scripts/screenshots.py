"""`make screenshots`: PNGs of the main console and member pages of the demo, for review.

Starts the app like `make run` does (the embedded PostgreSQL and Redis unless DATABASE_URL /
REDIS_URL are set; its own data under instance/screenshots so a running `make run` is left
alone), migrates, loads the demo brand and serves it with jobs run inline. Then headless
Chromium (Playwright) takes, into SCREENSHOTS_DIR (default ``screenshots/``):

- console-*.png: every console page without parameters the brand admin may open, at
  1366x900 (the demo's brand admin, 13800000000);
- member-*.png: every member-center page, at 390x844 with WeChat's user agent, as a demo
  member who activated the card in the phone simulator;
- sandbox-*.png: the phone simulator and the SMS inbox.

python scripts/screenshots.py [--out DIR] [--only console|member|sandbox]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BRAND = "demo"
ADMIN_PHONE, PASSWORD = "13800000000", "demo-pass-2026"
MEMBER_PHONE = "13900000005"
CONSOLE_SIZE = {"width": 1366, "height": 900}
MEMBER_SIZE = {"width": 390, "height": 844}
WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI "
    "Language/zh_CN"
)
# Pages that are not pages: downloads, and the login form once logged in.
SKIP = re.compile(r"(export|\.zip|\.csv|\.json|\.png|/login|/logout|/till-code$)")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pages(env: dict) -> tuple[list[str], list[str]]:
    """GET routes of the console and the member center that need no id, from the URL map."""
    code = (
        "from app import create_app\n"
        "for r in create_app().url_map.iter_rules():\n"
        "    if 'GET' in r.methods: print(r.rule, ' '.join(sorted(r.arguments)))\n"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(out.stderr)
    console, member = [], []
    for line in out.stdout.splitlines():
        rule, _, args = line.partition(" ")
        if SKIP.search(rule):
            continue
        if rule.startswith("/console") and not args.strip():
            console.append(rule)
        elif rule.startswith("/m/<brand_slug>") and args.strip() == "brand_slug":
            member.append(rule.replace("<brand_slug>", BRAND))
    return sorted(set(console)), sorted(set(member))


def _name(prefix: str, n: int, path: str) -> str:
    slug = re.sub(r"\W+", "-", path).strip("-") or "home"
    return f"{prefix}-{n:02d}-{slug}.png"


def _shoot(page, base: str, paths: list[str], out: Path, prefix: str) -> int:
    taken = 0
    for path in paths:
        probe = page.context.request.get(base + path, max_redirects=5)
        if not probe.ok or "text/html" not in probe.headers.get("content-type", ""):
            continue  # not this role's page, or not a page
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        taken += 1
        page.screenshot(path=out / _name(prefix, taken, path), full_page=True)
    return taken


def _console(browser, base: str, paths: list[str], out: Path) -> int:
    context = browser.new_context(locale="zh-CN", viewport=CONSOLE_SIZE)
    page = context.new_page()
    page.goto(base + "/console/login")
    page.screenshot(path=out / "console-00-login.png")
    page.get_by_label("品牌代码").fill(BRAND)
    page.get_by_label("手机号或用户名").fill(ADMIN_PHONE)
    page.get_by_label("密码").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()
    n = _shoot(page, base, paths, out, "console")
    context.close()
    return n + 1


def _member(browser, base: str, paths: list[str], out: Path) -> int:
    context = browser.new_context(
        locale="zh-CN",
        viewport=MEMBER_SIZE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        user_agent=WECHAT_UA,
    )
    page = context.new_page()
    # A consumer scans store SH001 in the phone simulator, then activates the card with the
    # phone number of a demo member and the code the sandbox SMS inbox shows.
    page.goto(base + f"/sandbox/phone?brand={BRAND}")
    page.fill("#nickname", "截图会员")
    with page.expect_navigation():
        page.click("#create-consumer")
    page.locator(".targets li", has_text="SH001").locator(".scan-button").first.click()
    page.locator(".msg.out").first.wait_for()
    page.goto(base + f"/m/{BRAND}/activate")
    page.screenshot(path=out / "member-00-activate.png", full_page=True)
    page.get_by_label("手机号").fill(MEMBER_PHONE)
    page.get_by_role("button", name="发送验证码").click()  # the code step appears in place
    page.get_by_label("短信验证码").wait_for()
    sms = context.request.get(base + f"/sandbox/sms?phone={MEMBER_PHONE}&format=json")
    if not sms.ok:
        page.screenshot(path=out / "member-00-activate-failed.png", full_page=True)
        sys.exit(f"no SMS code for {MEMBER_PHONE}: {sms.status} {sms.text()[:200]}")
    page.get_by_label("短信验证码").fill(sms.json()["code"])
    page.get_by_label("我已阅读并同意").check()
    with page.expect_navigation():
        page.get_by_role("button", name="激活会员卡").click()
    n = _shoot(page, base, paths, out, "member")
    context.close()
    return n + 1


def _sandbox(browser, base: str, out: Path) -> int:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(base + f"/sandbox/phone?brand={BRAND}")
    page.wait_for_timeout(1500)  # the chat polls once a second
    page.screenshot(path=out / "sandbox-01-phone.png")
    page.goto(base + f"/sandbox/sms?phone={MEMBER_PHONE}")
    page.screenshot(path=out / "sandbox-02-sms.png")
    context.close()
    return 2


def _wait_up(url: str, proc: subprocess.Popen) -> None:
    import urllib.request

    for _ in range(300):
        if proc.poll() is not None:
            sys.exit("the web server stopped")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("the web server did not answer")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("SCREENSHOTS_DIR", "screenshots"))
    parser.add_argument("--only", choices=("console", "member", "sandbox"))
    args = parser.parse_args()
    os.environ.setdefault("INSTANCE_PATH", str(ROOT / "instance" / "screenshots"))
    sys.path.insert(0, str(ROOT / "scripts"))
    import run  # scripts/run.py: the embedded engines (reads INSTANCE_PATH when imported)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run.INSTANCE.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PUBLIC_URL": base,
        "WECHAT_API_BASE": f"{base}/sandbox/wechat",
        "JOBS_INLINE": "1",
        "LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }
    pg = redis_proc = web = None
    try:
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"], pg = run.start_postgres()
        if not env.get("REDIS_URL"):
            env["REDIS_URL"], redis_proc = run.start_redis()
        for step in (["db", "upgrade"], ["demo"]):
            done = subprocess.run(  # noqa: S603
                [*run.FLASK, *step], env=env, cwd=ROOT, capture_output=True, text=True
            )
            if done.returncode:
                sys.exit(done.stdout + done.stderr)
        console_paths, member_paths = _pages(env)
        log = (run.INSTANCE / "web.log").open("w")
        web = subprocess.Popen(  # noqa: S603
            [*run.FLASK, "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait_up(base, web)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox"], headless=True
            )
            taken = 0
            if args.only in (None, "console"):
                taken += _console(browser, base, console_paths, out)
            if args.only in (None, "member"):
                taken += _member(browser, base, member_paths, out)
            if args.only in (None, "sandbox"):
                taken += _sandbox(browser, base, out)
            browser.close()
        print(f"{taken} screenshots in {out}/")
        return 0
    finally:
        if web is not None:
            web.terminate()
            web.wait(timeout=10)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
        if pg is not None:
            pg.cleanup()


if __name__ == "__main__":
    sys.exit(main())
