"""Command line for brands and staff, and the demo brand."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from core.audit import acting_as
from core.auth import PlatformAdmin
from core.cli import CLI_ACTOR, demo_step
from core.db import db
from core.errors import AppError
from core.tenancy import use_brand
from org import queries, services
from org.models import Brand, Staff, Store

brand_cli = AppGroup("brand", help="Brands (tenants).")
staff_cli = AppGroup("staff", help="Brand staff.")

DEMO_SLUG = "demo"
DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - the demo brand only
DEMO_ADMIN_PHONE = "13800000000"
DEMO_STORES = [
    ("SH001", "上海南京西路店", "上海", "华东", "上海市静安区南京西路1266号"),
    ("SH002", "上海徐家汇店", "上海", "华东", "上海市徐汇区虹桥路1号"),
    ("HZ001", "杭州湖滨店", "杭州", "华东", "杭州市上城区延安路258号"),
]
DEMO_MANAGERS = [
    ("13800000101", "王店长", "SH001"),
    ("13800000102", "李店长", "SH002"),
    ("13800000103", "赵店长", "HZ001"),
]
DEMO_GUIDES = [
    ("13800000201", "张小美", "SH001"),
    ("13800000202", "陈一鸣", "SH001"),
    ("13800000203", "刘佳", "SH002"),
    ("13800000204", "周婷", "SH002"),
    ("13800000205", "吴晓", "HZ001"),
    ("13800000206", "郑好", "HZ001"),
]
# Official-account credentials of the demo brand: they only ever talk to the sandbox.
DEMO_CREDENTIALS = dict(
    appid="wxdemo0000000001",
    secret="demo-app-secret-0001",  # noqa: S106 - sandbox-only demo credentials
    token="demotoken2026",  # noqa: S106
    aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    mp_appid="wxdemomp00000001",
    mp_secret="demo-mp-secret-0001",  # noqa: S106
)


def _fail(exc: AppError) -> None:
    raise click.ClickException(f"{exc.field + ': ' if exc.field else ''}{exc.message}")


@brand_cli.command("create")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--appid")
@click.option("--secret")
@click.option("--token")
@click.option("--aes-key")
@click.option("--mp-appid")
@click.option("--mp-secret")
@click.option("--timezone", default="Asia/Shanghai", show_default=True)
def brand_create(slug, name, appid, secret, token, aes_key, mp_appid, mp_secret, timezone):
    """Create a brand."""
    with acting_as(CLI_ACTOR):
        try:
            brand = services.create_brand(
                slug=slug,
                name=name,
                appid=appid,
                secret=secret,
                token=token,
                aes_key=aes_key,
                mp_appid=mp_appid,
                mp_secret=mp_secret,
                timezone=timezone,
            )
        except AppError as exc:
            _fail(exc)
        db.session.commit()
    click.echo(f"brand {brand.slug} created (id {brand.id})")


@brand_cli.command("list")
def brand_list():
    """List brands."""
    for b in queries.list_brands():
        click.echo(f"{b.id}\t{b.slug}\t{b.name}\t{b.appid or '-'}\t{b.timezone}")


@staff_cli.command("create")
@click.option("--brand", "brand_slug", required=True)
@click.option("--phone", required=True)
@click.option("--name", default=None)
@click.option("--role", type=click.Choice(["brand_admin", "store_manager", "guide"]), required=True)
@click.option("--store", "store_code", default=None, help="Store code")
@click.option("--password", required=True)
def staff_create(brand_slug, phone, name, role, store_code, password):
    """Create a staff member of a brand."""
    brand = Brand.by_slug(brand_slug)
    if brand is None:
        raise click.ClickException(f"no brand {brand_slug}")
    with use_brand(brand.id), acting_as(CLI_ACTOR):
        store_id = None
        if store_code:
            store = Store.by_code(store_code)
            if store is None:
                raise click.ClickException(f"no store {store_code} in {brand_slug}")
            store_id = store.id
        try:
            staff = services.create_staff(
                name=name or phone, phone=phone, role=role, store_id=store_id, password=password
            )
        except AppError as exc:
            _fail(exc)
        db.session.commit()
        click.echo(f"staff {staff.phone} ({staff.role}) created in {brand_slug}")


@demo_step(10)
def demo_org() -> list[str]:
    """The demo brand: 3 stores in two cities, a brand admin, 3 store managers, 6 guides."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        brand = services.create_brand(
            slug=DEMO_SLUG, name="示范品牌 Demo Brand", **DEMO_CREDENTIALS
        )
    with use_brand(brand.id):
        stores = {}
        for code, name, city, region, address in DEMO_STORES:
            stores[code] = Store.by_code(code) or services.create_store(
                code=code, name=name, city=city, region=region, address=address
            )
        people = [(DEMO_ADMIN_PHONE, "品牌管理员", "brand_admin", None)]
        people += [(p, n, "store_manager", c) for p, n, c in DEMO_MANAGERS]
        people += [(p, n, "guide", c) for p, n, c in DEMO_GUIDES]
        for phone, name, role, code in people:
            if Staff.by_phone(phone) is None:
                services.create_staff(
                    name=name,
                    phone=phone,
                    role=role,
                    store_id=stores[code].id if code else None,
                    password=DEMO_PASSWORD,
                )
    if PlatformAdmin.by_username("platform") is None:
        admin = PlatformAdmin(username="platform")
        admin.set_password(DEMO_PASSWORD)
        db.session.add(admin)
    db.session.flush()
    return [
        "Demo brand ready: http://127.0.0.1:5000/console/login",
        f"  brand admin:    brand code '{DEMO_SLUG}', phone {DEMO_ADMIN_PHONE}, "
        f"password {DEMO_PASSWORD}",
        f"  store manager:  brand code '{DEMO_SLUG}', phone {DEMO_MANAGERS[0][0]}, "
        f"password {DEMO_PASSWORD}",
        f"  guide:          brand code '{DEMO_SLUG}', phone {DEMO_GUIDES[0][0]}, "
        f"password {DEMO_PASSWORD}",
        f"  platform admin: no brand code, username 'platform', password {DEMO_PASSWORD}",
    ]


def init_app(app: Flask) -> None:
    app.cli.add_command(brand_cli)
    app.cli.add_command(staff_cli)
