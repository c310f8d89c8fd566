"""Tasks from HQ: created in the console for chosen guides or stores, each guide sees their own
bound customers (only those with the tag) and marks them sent; completion counters exact under
concurrent marks; another guide's task or customer and another brand's ids answer 404."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select

from core.db import db, utcnow
from core.tenancy import use_brand
from guide_distribution import tasks
from guide_distribution.models import GuideTask, GuideTaskAssignee, GuideTaskSend
from members.tiers_tags import tags
from tests import factories as f
from tests.guide_distribution.workbench_helpers import customer
from tests.support.concurrency import run_concurrently


def _world(shop):
    other_store = f.store(shop.brand)
    a = f.staff(shop.brand, role="guide", store=shop.store)
    b = f.staff(shop.brand, role="guide", store=shop.store)
    c = f.staff(shop.brand, role="guide", store=other_store)
    admin = f.staff(shop.brand, role="brand_admin")
    return a, b, c, admin, other_store


def _deadline_local(days=2) -> str:
    return (dt.datetime.now() + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def test_a_task_from_the_console_reaches_the_chosen_guides_and_counts_completion(
    client, shop, fake_pay
):
    a, b, c, admin, other_store = _world(shop)
    vip = tags.create_tag(kind="brand", name="高意向", is_quick=True)
    db.session.commit()
    a1, a2, a3 = customer(a), customer(a), customer(a)
    for m in (a1, a2):
        tags.add_tag(member_id=m.id, tag_id=vip.id)
    b1 = customer(b)
    tags.add_tag(member_id=b1.id, tag_id=vip.id)
    c1 = customer(c)
    db.session.commit()

    f.login(client, shop.brand, admin)
    token = f.csrf(client, "/console/distribution/tasks/new")
    r = client.post(
        "/console/distribution/tasks/new",
        data={
            "csrf_token": token,
            "title": "双十二新品",
            "body": "新品到店，欢迎来试！",
            "product_id": str(shop.sku.product_id),
            "tag_id": str(vip.id),
            "deadline": _deadline_local(),
            "guides": [str(a.id)],
            "stores": [str(other_store.id)],
        },
    )
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    task = db.session.execute(select(GuideTask)).scalar_one()
    # a (chosen) with 2 tagged customers, c (every guide of the other store) with none tagged.
    assert (task.guides_total, task.customers_total, task.guides_done) == (2, 2, 1)

    client.post(
        "/console/logout", data={"csrf_token": f.csrf(client, "/console/distribution/tasks")}
    )
    f.login(client, shop.brand, a)
    html = client.get("/console/workbench/tasks").get_data(as_text=True)
    assert "双十二新品" in html and "已发送 0 / 2" in html
    page = client.get(f"/console/workbench/tasks/{task.id}").get_data(as_text=True)
    assert f'data-member="{a1.id}"' in page and f'data-member="{a2.id}"' in page
    assert f'data-member="{a3.id}"' not in page  # no tag
    assert "复制文案" in page and "乌龙茶" in page
    token = f.csrf(page)
    for m in (a1, a1, a2):
        r = client.post(
            f"/console/workbench/tasks/{task.id}/sent/{m.id}", data={"csrf_token": token}
        )
        assert r.status_code == 303
    # Not a's customer (b's, or untagged a3): 404 and nothing counted.
    for m in (b1, a3, c1):
        r = client.post(
            f"/console/workbench/tasks/{task.id}/sent/{m.id}", data={"csrf_token": token}
        )
        assert r.status_code == 404
    db.session.expire_all()
    task = db.session.get(GuideTask, task.id)
    assert (task.sent_total, task.guides_done) == (2, 2)
    assert "已发送 2 / 2" in client.get("/console/workbench/tasks").get_data(as_text=True)

    # b was not given the task: 404 for the page and the mark.
    client.post("/console/logout", data={"csrf_token": token})
    f.login(client, shop.brand, b)
    assert client.get(f"/console/workbench/tasks/{task.id}").status_code == 404
    token = f.csrf(client, "/console/workbench/home")
    r = client.post(f"/console/workbench/tasks/{task.id}/sent/{b1.id}", data={"csrf_token": token})
    assert r.status_code == 404
    assert "双十二新品" not in client.get("/console/workbench/tasks").get_data(as_text=True)

    client.post("/console/logout", data={"csrf_token": token})
    f.login(client, shop.brand, admin)
    html = client.get("/console/distribution/tasks").get_data(as_text=True)
    assert "2 / 2" in html and "100%" in html
    detail = client.get(f"/console/distribution/tasks/{task.id}").get_data(as_text=True)
    assert "2 / 2 位导购已完成" in detail and a.name in detail and c.name in detail


def test_another_brands_task_answers_404(client, shop, fake_pay):
    a, *_ = _world(shop)
    m = customer(a)
    task = tasks.create_task(title="t", body="x", deadline=utcnow() + dt.timedelta(days=1),
                             guide_ids=[a.id])  # fmt: skip
    db.session.commit()
    other = f.brand()
    with use_brand(other.id):
        s = f.store(other)
        guide = f.staff(other, role="guide", store=s)
        admin = f.staff(other, role="brand_admin")
    f.login(client, other, guide)
    assert client.get(f"/console/workbench/tasks/{task.id}").status_code == 404
    token = f.csrf(client, "/console/workbench/home")
    r = client.post(f"/console/workbench/tasks/{task.id}/sent/{m.id}", data={"csrf_token": token})
    assert r.status_code == 404
    client.post("/console/logout", data={"csrf_token": token})
    f.login(client, other, admin)
    assert client.get(f"/console/distribution/tasks/{task.id}").status_code == 404
    with use_brand(shop.brand.id):
        assert db.session.get(GuideTask, task.id).sent_total == 0


def test_concurrent_marks_count_each_customer_once(app, shop, fake_pay):
    a, b, *_ = _world(shop)
    mine = [customer(a) for _ in range(6)]
    theirs = [customer(b) for _ in range(4)]
    task = tasks.create_task(
        title="t", body="x", deadline=utcnow() + dt.timedelta(days=1), guide_ids=[a.id, b.id]
    )
    db.session.commit()
    # Every customer marked three times at once, by the guide it belongs to.
    jobs = [(a.id, m.id) for m in mine] * 3 + [(b.id, m.id) for m in theirs] * 3
    results = run_concurrently(
        app,
        shop.brand.id,
        len(jobs),
        lambda i: tasks.mark_sent(task_id=task.id, guide_id=jobs[i][0], member_id=jobs[i][1]),
    )
    assert all(r[0] == "ok" for r in results), results
    assert sum(1 for r in results if r[1] is True) == 10
    db.session.expire_all()
    t = db.session.get(GuideTask, task.id)
    assert (t.sent_total, t.customers_total, t.guides_done, t.guides_total) == (10, 10, 2, 2)
    sends = db.session.execute(select(func.count()).select_from(GuideTaskSend)).scalar()
    assert sends == 10
    rows = db.session.execute(
        select(GuideTaskAssignee.guide_id, GuideTaskAssignee.sent, GuideTaskAssignee.customers)
    ).all()
    assert sorted(tuple(r) for r in rows) == sorted([(a.id, 6, 6), (b.id, 4, 4)])


def test_bad_tasks_are_refused_and_nothing_is_saved(client, shop, fake_pay):
    a, _b, _c, admin, _s = _world(shop)
    customer(a)
    f.login(client, shop.brand, admin)
    token = f.csrf(client, "/console/distribution/tasks/new")
    base = {
        "csrf_token": token,
        "title": "任务",
        "deadline": _deadline_local(),
        "guides": [str(a.id)],
    }
    cases = [
        ({"body": ""}, "请选择商品、填写文案或添加图片"),  # empty task
        ({"body": "x" * 5000}, "5000" if False else "2000"),  # huge text
        ({"body": "好", "guides": []}, "请选择导购"),  # nobody
        ({"body": "好", "deadline": _deadline_local(-1)}, "截止时间必须晚于现在"),
        ({"body": "好", "title": ""}, "title"),
    ]
    for change, expect in cases:
        data = dict(base, **change)
        r = client.post("/console/distribution/tasks/new", data=data)
        assert r.status_code in (400, 422), (change, r.status_code)
        assert expect in r.get_data(as_text=True) or expect == "title"
    bad_image = dict(base, body="好", image=(__import__("io").BytesIO(b"not an image"), "x.png"))
    r = client.post(
        "/console/distribution/tasks/new", data=bad_image, content_type="multipart/form-data"
    )
    assert r.status_code in (400, 422) and "JPEG" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(GuideTask)).scalar() == 0
    assert db.session.execute(select(func.count()).select_from(GuideTaskAssignee)).scalar() == 0
    assert not re.search(r"Traceback|Internal", r.get_data(as_text=True))
