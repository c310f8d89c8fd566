"""The member export in a browser: the form queues a job, "my recent exports" follows its
progress without reloading the page and offers the download once the file is written."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from core import audit, exports, jobs
from core.db import db
from core.tenancy import use_brand
from members.privacy.export import Segment, request_member_export
from org.models import Staff
from tests import factories as f
from tests.browser.walk import Walker, console_login


def _brand(app):
    with app.app_context():
        b = f.brand(slug="exports", name="导出品牌")
        admin = f.staff(b, "brand_admin", phone="13800007777")
        store = f.store(b, "SH201", name="上海徐汇店")
        with use_brand(b.id):
            for n in range(3):
                f.member(phone=f"1370000{n:04d}", activated=True, store=store, name=f"会员{n}")
        return b.slug, b.id, admin.id


def _queue_export(app, brand_id: int, admin_id: int) -> tuple[int, int]:
    """An export asked for by the admin and not yet run (as when every worker is busy)."""
    with app.app_context(), use_brand(brand_id):
        staff = db.session.get(Staff, admin_id)
        with audit.acting_as(audit.Actor("staff", staff.id, staff.name)):
            row = request_member_export(segment=Segment(), staff=staff, full_phones=True)
        db.session.commit()
        export_id = row.id
        outbox = db.session.execute(
            select(jobs.OutboxJob.id).where(jobs.OutboxJob.status == jobs.PENDING)
        ).scalar_one()
        db.session.remove()
        return outbox, export_id


def test_export_shows_progress_live_and_downloads(browser, live_server):
    app = live_server.app
    slug, brand_id, admin_id = _brand(app)
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        viewport={"width": 1366, "height": 900},
        accept_downloads=True,
    )
    w = Walker(context, "exports")
    page = w.page
    try:
        console_login(w, slug, "13800007777", f.PASSWORD)

        outbox_id, export_id = _queue_export(app, brand_id, admin_id)
        w.open("/console/members/export")
        expect(page.locator("main")).to_contain_text("3 名会员")
        row = page.locator(f'#recent-exports tr[data-export="{export_id}"]')
        expect(row.locator("[data-k=status_label]")).to_have_text("排队中")
        w.shot("export-queued")
        page.evaluate("window.__samePage = true")

        with app.app_context():  # a worker takes the job
            assert jobs.run_outbox_job(outbox_id) == "done"
            db.session.remove()
        expect(row.locator("[data-k=status_label]")).to_have_text("可下载")
        expect(row.locator("[data-k=percent_text]")).to_have_text("100%")
        expect(row.locator("[data-k=rows]")).to_have_text("3 / 3")
        assert page.evaluate("window.__samePage") is True  # updated in place, no reload
        w.shot("export-ready")
        with page.expect_download() as download:
            row.get_by_role("link", name="下载").click()
        with open(download.value.path(), encoding="utf-8-sig") as fh:
            text = fh.read()
        assert text.startswith("卡号,手机号,姓名") and "13700000001" in text and "会员2" in text

        # The form itself: a new export, run at once here (jobs are inline in this server).
        page.get_by_label("门店").select_option(label="SH201 上海徐汇店")
        w.submit(page.get_by_role("button", name="导出 CSV"))
        w.saved("已开始导出")
        expect(page.locator("#recent-exports tr[data-export]")).to_have_count(2)
        w.shot("export-two")
        w.check()
    finally:
        context.close()
    with app.app_context():
        statuses = db.session.execute(
            select(exports.ExportFile.status).execution_options(all_brands=True)
        ).scalars()
        assert sorted(statuses) == ["done", "done"]
