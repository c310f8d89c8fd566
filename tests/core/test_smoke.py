from tests import factories as f


def test_healthz_reports_database_and_redis(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_admin_logs_in_and_sees_stores(app, client, ctx):
    b = f.brand()
    s = f.store(b, name="南京西路店")
    admin = f.staff(b)
    r = f.login(client, b, admin)
    assert r.status_code == 302
    page = client.get("/console/stores").get_data(as_text=True)
    assert "南京西路店" in page
    assert s.code in page
