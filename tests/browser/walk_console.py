"""The console part of the walk-through: the demo brand's admin types into every form.

Each function walks one area of the console through its links, labels and buttons, and
checks that what was typed was saved.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser import walk
from tests.browser.walk import Walker, console_login, form_with

BRAND = "demo"
ADMIN_PHONE, PASSWORD = "13800000000", "demo-pass-2026"
IMPORT_CSV = "手机号,姓名,门店编码\n13911112222,走查导入一,SH001\n13911113333,走查导入二,\n"
PARTNER_CODES = "WALK-PARTNER-0001\nWALK-PARTNER-0002\nWALK-PARTNER-0003\n"


def pick(page, label: str, text: str) -> None:
    """Search a picker (core/pickers.py) by its label and pick the option named ``text``."""
    page.get_by_label(label).fill(text)
    page.get_by_role("option", name=text).click()
    expect(page.locator(".picker-chip", has_text=text).first).to_be_visible()


def console(browser, live_server) -> Walker:
    """The console as the brand admin sees it, on a laptop screen."""
    return walk.console(browser, live_server.url, "console")


def log_in(w: Walker) -> None:
    """Log in as the demo brand's admin with the login form."""
    console_login(w, BRAND, ADMIN_PHONE, PASSWORD)
    expect(w.page).to_have_url(re.compile(r"/console/$"))


def every_page_in_the_menu(w: Walker) -> None:
    """Each page the navigation offers the brand admin answers, with its fields editable."""
    links = w.page.locator("nav.nav a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert len(hrefs) >= 20, hrefs
    for href in hrefs:
        w.open(href)


def stores(w: Walker) -> None:
    """A new store, then the same store edited."""
    page = w.page
    w.open("/console/stores")
    w.follow(page.get_by_role("link", name="新建门店"))
    page.get_by_label("门店编码").fill("BJ001")
    page.get_by_label("名称").fill("北京国贸店")
    page.get_by_label("城市").fill("北京")
    page.get_by_label("大区").fill("华北")
    page.get_by_label("地址").fill("北京市朝阳区建国门外大街1号")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("BJ001", "北京国贸店")

    w.follow(page.get_by_role("link", name="BJ001"))
    page.get_by_label("名称").fill("北京国贸旗舰店")
    page.get_by_label("地址").fill("北京市朝阳区建国门外大街1号 B1")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("北京国贸旗舰店")


def _map_point(page, selector: str, lng: float, lat: float) -> tuple[float, float]:
    """Where (lng, lat) is on the ECharts map in ``selector``, in page pixels."""
    el = page.locator(selector)
    expect(el).to_have_attribute("data-storemap-ready", "1")
    el.scroll_into_view_if_needed()
    x, y = page.evaluate(
        """([sel, lng, lat]) => echarts.getInstanceByDom(document.querySelector(sel))
             .convertToPixel({geoIndex: 0}, [lng, lat])""",
        [selector, lng, lat],
    )
    box = el.bounding_box()
    return box["x"] + x, box["y"] + y


def store_location(w: Walker) -> None:
    """The new store placed on the map from its own page: coordinates typed as Tencent's
    picker gives them (纬度,经度) move the mark; a click on the map moves it again; saved,
    the store map shows it, and its dot opens the store."""
    page = w.page
    w.open("/console/stores")
    w.follow(page.get_by_role("link", name="BJ001"))
    field = page.get_by_label("坐标（经度,纬度）")
    status = page.locator("#coords-status")
    field.fill("地球")
    expect(status).to_have_text(re.compile("这不是坐标"))
    field.fill("2.35,48.85")
    expect(status).to_have_text(re.compile("不在中国境内"))
    field.fill("39.909210，116.460541")
    expect(status).to_have_text("已在地图上标出：经度 116.460541，纬度 39.909210。")
    expect(page.locator(".storemap")).to_have_attribute("data-lnglat", "116.460541,39.909210")
    w.shot("store-location-typed")
    # A click a little east of the mark: the field follows the click.
    x, y = _map_point(page, "#location .storemap", 116.460541, 39.909210)
    page.mouse.click(x + 30, y)
    expect(field).not_to_have_value("39.909210，116.460541")
    lng, lat = (float(v) for v in field.input_value().split(","))
    assert 116.4606 < lng < 117.5 and abs(lat - 39.909) < 0.05, (lng, lat)
    w.shot("store-location-clicked")
    field.fill("116.460541,39.909210")
    w.submit(page.get_by_role("button", name="确定位置"))
    w.saved("北京国贸旗舰店")
    expect(page).to_have_url(re.compile(r"/console/stores/\d+#location$"))
    expect(field).to_have_value("116.460541,39.909210")

    w.open("/console/members/store-locations")
    expect(page.locator("tr", has_text="BJ001")).to_contain_text("116.460541,39.909210")
    page.get_by_role("button", name="北京").click()
    w.shot("store-map-beijing")
    x, y = _map_point(page, ".storemap", 116.460541, 39.909210)
    with page.expect_navigation():
        page.mouse.click(x, y)
    expect(page).to_have_url(re.compile(r"/console/stores/\d+#location$"))
    expect(page.locator("h1")).to_have_text("北京国贸旗舰店")
    w.landed(page.url, form=True)


def staff(w: Walker) -> None:
    """A new guide in the new store, then promoted to store manager."""
    page = w.page
    w.open("/console/staff")
    w.follow(page.get_by_role("link", name="添加员工"))
    page.get_by_label("姓名").fill("孙走查")
    page.get_by_label("手机号").fill("13800000299")
    page.get_by_label("角色").select_option(label="导购")
    page.get_by_label("门店").select_option(label="BJ001 北京国贸旗舰店")
    page.get_by_label("密码").fill("walk-through-2026")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("孙走查", "13800000299")

    w.follow(page.get_by_role("link", name="孙走查"))
    page.get_by_label("姓名").fill("孙晓走查")
    page.get_by_label("角色").select_option(label="店长")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("孙晓走查", "店长")


def tiers(w: Walker) -> str:
    """New and edited tier levels and the tier rules; returns the gold tier's id."""
    page = w.page
    w.open("/console/members/tiers")
    new = form_with(page, "添加等级")
    new.get_by_label("编码").fill("platinum")
    new.get_by_label("名称").fill("铂金会员")
    new.get_by_label("级别").fill("3")
    new.get_by_label("门槛").fill("10000.00")
    new.get_by_label("积分倍率").fill("2")
    new.get_by_label("生日礼").fill("专属生日礼盒")
    w.submit(new.get_by_role("button", name="添加等级"))
    w.saved("platinum")

    row = page.locator("tr", has_text="platinum")
    row.get_by_label("名称").fill("铂金会员 Plus")
    row.get_by_label("生日礼").fill("专属生日礼盒与蛋糕")
    w.submit(row.get_by_role("button", name="保存"))
    w.saved()
    expect(page.locator("tr", has_text="platinum").get_by_label("名称")).to_have_value(
        "铂金会员 Plus"
    )

    rules = form_with(page, "保存").last
    rules.get_by_label("复核月份").fill("6")
    rules.get_by_label("复核日期").fill("15")
    w.submit(rules.get_by_role("button", name="保存"))
    w.saved()
    expect(page.get_by_label("复核月份")).to_have_value("6")
    action = page.locator("tr", has_text="gold").locator("form").get_attribute("action")
    return action.rsplit("/", 1)[-1]


def tags(w: Walker) -> None:
    """A new quick tag in the tag library, then renamed and moved to another kind."""
    page = w.page
    w.open("/console/members/tags")
    new = form_with(page, "添加标签")
    new.get_by_label("类型").select_option(label="品牌")
    new.get_by_label("名称").fill("走查标签")
    new.get_by_label("编码").fill("walk-through")
    new.get_by_label("快捷标签").check()
    w.submit(new.get_by_role("button", name="添加标签"))
    w.saved("walk-through")

    row = page.locator("tr", has_text="walk-through")
    row.get_by_label("名称").fill("走查标签二")
    row.get_by_label("类型").select_option(label="商品")
    w.submit(row.get_by_role("button", name="保存"))
    w.saved()
    row = page.locator("tr", has_text="walk-through")
    expect(row.get_by_label("名称")).to_have_value("走查标签二")


def points(w: Walker) -> None:
    """The points rules edited; a new bonus campaign, then edited and paused."""
    page = w.page
    w.open("/console/points/settings")
    page.get_by_label("每元积分").fill("1.5")
    page.get_by_label("新会员欢迎积分").fill("50")
    page.get_by_label("积分有效期").select_option(label="年底")
    page.get_by_label("过期前提醒天数").fill("7")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved()
    expect(page.get_by_label("每元积分")).to_have_value(re.compile(r"^1\.50*$"))

    w.open("/console/points/campaigns")
    w.follow(page.get_by_role("link", name="新建活动"))
    page.get_by_label("名称").fill("会员日三倍积分")
    page.get_by_label("倍数").fill("3")
    page.get_by_label("开始日期").fill("2027-01-01")
    page.get_by_label("结束日期").fill("2027-12-31")
    page.get_by_label("仅限").select_option(label=["周六", "周日"])
    page.get_by_label("门店").select_option(label="BJ001 北京国贸旗舰店")
    page.get_by_label("商品品类").fill("护肤")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("会员日三倍积分", "×3")

    w.follow(page.get_by_role("link", name="会员日三倍积分"))
    page.get_by_label("名称").fill("会员日双倍积分")
    page.get_by_label("倍数").fill("2")
    page.get_by_label("启用").uncheck()
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("会员日双倍积分", "×2")


def shop_rules(w: Walker) -> None:
    """The shop rules: points at checkout, shipping by province, the after-sale window."""
    page = w.page
    w.open("/console/shop/settings")
    page.get_by_label("抵扣 1 元所需积分").fill("200")
    page.get_by_label("默认运费（元）").fill("8")
    page.get_by_label("满额包邮（元，0 表示不包邮）").fill("99")
    page.get_by_label("按省份设置运费（每行一个，如：新疆 20）").fill("新疆 20\n西藏 25")
    page.get_by_label("完成后可申请售后（天）").fill("30")
    page.get_by_label("发货后自动确认收货（天）").fill("14")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved()
    expect(page.get_by_label("抵扣 1 元所需积分")).to_have_value("200")
    expect(page.get_by_label("发货后自动确认收货（天）")).to_have_value("14")
    expect(page.get_by_label("默认运费（元）")).to_have_value("8.00")
    expect(page.get_by_label("按省份设置运费（每行一个，如：新疆 20）")).to_have_value(
        "新疆 20.00\n西藏 25.00"
    )


def coupons(w: Walker, gold_tier_id: str) -> None:
    """A coupon made and edited, previewed and issued to a tier; a mall item made and edited;
    a POS key created and revoked."""
    page = w.page
    w.open("/console/coupons/templates")
    w.follow(page.get_by_role("link", name="新建优惠券"))
    page.get_by_label("名称").fill("走查满50减10")
    page.get_by_label("类型").select_option(label="代金券")
    page.get_by_label("面额（元）").fill("10")
    page.get_by_label("使用门槛（元）").fill("50")
    page.get_by_label("或领取后 N 天内有效").fill("30")
    page.get_by_label("库存（留空为不限）").fill("500")
    page.get_by_label("每人限领（0 为不限）").fill("2")
    page.get_by_label("说明").fill("走查用券，全场通用")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("走查满50减10")

    w.follow(page.get_by_role("link", name="走查满50减10"))
    page.get_by_label("名称").fill("走查满60减10")
    page.get_by_label("使用门槛（元）").fill("60")
    page.get_by_label("可与其他优惠券叠加").check()
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("走查满60减10")

    row = page.locator("tr", has_text="走查满60减10")
    w.follow(row.get_by_role("link", name="发放"))
    pick(page, "会员等级", "金卡会员")
    w.submit(page.get_by_role("button", name="预览人数"))
    reach = page.locator("main p.card")
    expect(reach).to_contain_text(re.compile(r"\d+"))
    w.submit(page.get_by_role("button", name="立即发放"))
    w.saved("走查满60减10")
    expect(page.locator(".flash.success")).to_contain_text(re.compile(r"[1-9]\d*"))

    w.open("/console/coupons/mall")
    w.follow(page.get_by_role("link", name="新建商品"))
    page.get_by_label("优惠券").select_option(label="走查满60减10")
    page.get_by_label("标题").fill("300积分兑满60减10券")
    page.get_by_label("所需积分").fill("300")
    page.get_by_label("库存（留空为不限）").fill("100")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("300积分兑满60减10券")

    w.follow(page.get_by_role("link", name="300积分兑满60减10券"))
    page.get_by_label("标题").fill("250积分兑满60减10券")
    page.get_by_label("所需积分").fill("250")
    pick(page, "限定等级", "金卡会员")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("250积分兑满60减10券")

    w.open("/console/coupons/pos-keys")
    page.get_by_label("门店").select_option(label="BJ001 北京国贸旗舰店")
    page.get_by_label("备注").fill("一号收银台")
    w.submit(page.get_by_role("button", name="创建密钥"))
    expect(page.locator("main code").first).to_have_text(re.compile(r"\S{16,}"))
    row = page.locator("tr", has_text="一号收银台")
    w.submit(row.get_by_role("button", name="停用"))
    w.saved()
    expect(page.locator("tr", has_text="一号收银台")).to_contain_text("已停用")


def wechat(w: Walker) -> None:
    """A keyword reply made and edited, the greeting, the custom menu saved and published."""
    page = w.page
    w.open("/console/wechat/keywords")
    w.follow(page.get_by_role("link", name="新建关键词回复"))
    page.get_by_label("关键词").fill("走查")
    page.get_by_label("匹配方式").select_option(label="全匹配（消息与关键词完全相同）")
    page.get_by_label("优先级").fill("20")
    page.get_by_label("回复类型").select_option(label="文字")
    page.get_by_label("回复内容").fill("走查回复：欢迎光临！")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("走查", "走查回复：欢迎光临！")

    w.follow(page.get_by_role("link", name="走查", exact=True))
    page.get_by_label("回复内容").fill("走查回复：新品到店！")
    page.get_by_label("生效时间").fill("2026-01-01T09:00")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("走查回复：新品到店！")

    w.open("/console/wechat/replies")
    page.get_by_label("关注欢迎语").fill("欢迎关注！回复「走查」试试。")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved()
    expect(page.get_by_label("关注欢迎语")).to_have_value("欢迎关注！回复「走查」试试。")

    w.open("/console/wechat/menu")
    page.get_by_label("按钮 2 名称").fill("找门店")
    page.locator("select[name=b2_s1_type]").select_option(label="链接")
    page.locator("input[name=b2_s1_value]").fill("https://example.com/help")
    page.locator("input[name=b2_s1_name]").fill("帮助中心")
    w.submit(page.get_by_role("button", name="保存菜单"))
    w.saved()
    expect(page.get_by_label("按钮 2 名称")).to_have_value("找门店")
    w.submit(page.get_by_role("button", name="发布到微信"))
    w.saved()


def members(w: Walker) -> None:
    """Import a CSV, export a segment, search members, adjust points, place a store on the
    map and take it off, rename the brand."""
    page = w.page
    w.open("/console/members/imports")
    page.get_by_label("CSV 文件").set_input_files(
        files=[{"name": "pos.csv", "mimeType": "text/csv", "buffer": IMPORT_CSV.encode()}]
    )
    w.submit(page.get_by_role("button", name="上传并导入"))
    w.saved("pos.csv")
    expect(page.locator("[data-k=status]")).to_have_text("已完成")
    expect(page.locator("[data-k=inserted]")).to_have_text("2")

    w.open("/console/members/export")
    page.get_by_label("门店").select_option(label="SH001 上海南京西路店")
    page.get_by_label("包含完整手机号").check()
    w.submit(page.get_by_role("button", name="导出 CSV"))
    w.saved("我最近的导出")
    latest = page.locator("#recent-exports tr[data-export]").first
    expect(latest.locator("[data-k=status_label]")).to_have_text("可下载")
    with page.expect_download() as download:
        latest.get_by_role("link", name="下载").click()
    with open(download.value.path(), encoding="utf-8-sig") as fh:
        csv = fh.read()
    assert "13911112222" in csv, csv[:500]
    w.check()

    w.open("/console/members")
    page.get_by_label("卡号、手机号或姓名").fill("走查导入一")
    w.follow(page.get_by_role("button", name="搜索"))
    w.follow(page.locator("tr", has_text="走查导入一").get_by_role("link"))
    expect(page.locator("h1")).to_contain_text("走查导入一")

    w.open("/console/points/members")
    page.get_by_label("卡号或手机号").fill("13911112222")
    w.follow(page.get_by_role("button", name="搜索"))
    page.get_by_label("积分（负数为扣减）").fill("80")
    page.get_by_label("原因").fill("走查补录积分")
    w.submit(page.get_by_role("button", name="调整积分"))
    w.saved("走查补录积分")

    w.open("/console/members/store-locations")
    w.follow(page.locator("tr", has_text="BJ001").get_by_role("link", name="修改位置"))
    page.get_by_label("坐标（经度,纬度）").fill("116.4605 39.9087")
    w.submit(page.get_by_role("button", name="确定位置"))
    w.saved()
    expect(page.locator("tr", has_text="BJ001")).to_contain_text("116.460500,39.908700")
    w.submit(page.locator("tr", has_text="BJ001").get_by_role("button", name="从地图移除"))
    w.saved()
    expect(page.locator("tr", has_text="BJ001")).to_contain_text("未标注")

    w.open("/console/brand")
    page.get_by_label("名称").fill("示范品牌（走查）")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved()
    expect(page.get_by_label("名称")).to_have_value("示范品牌（走查）")


def partner_codes(w: Walker) -> None:
    """A coupon of a partner's codes, and a file of its codes."""
    page = w.page
    w.open("/console/coupons/templates/new")
    page.get_by_label("名称").fill("走查合作券")
    page.get_by_label("类型").select_option(label="第三方券码")
    page.get_by_label("或领取后 N 天内有效").fill("60")
    w.submit(page.get_by_role("button", name="保存"))
    w.saved("走查合作券")
    w.follow(page.locator("tr", has_text="走查合作券").get_by_role("link", name="导入券码"))
    page.get_by_label("券码文件（每行一个）").set_input_files(
        files=[{"name": "codes.txt", "mimeType": "text/plain", "buffer": PARTNER_CODES.encode()}]
    )
    w.submit(page.get_by_role("button", name="导入", exact=True))
    w.saved()
    expect(page.locator(".flash.success")).to_contain_text("3")


def everyday_tools(w: Walker) -> None:
    """The buttons and searches of every day: QR codes, a member's phone, a quick tag, the
    audit log, deleting a keyword reply, logging out."""
    page = w.page
    w.open("/console/members/qrcodes")
    w.submit(page.get_by_role("button", name="创建缺少的二维码"))
    w.saved("北京国贸旗舰店")
    expect(page.locator('tr[data-scene="s:BJ001"]')).to_have_count(1)
    # Every store's poster in one zip, prepared by an export job: the request queues it.
    w.submit(page.get_by_role("button", name="生成全部门店海报（压缩包）"))
    w.saved()
    expect(page.locator("#recent-exports tbody tr[data-export]")).to_have_count(1)
    with page.expect_download() as poster:
        page.get_by_role("link", name="海报", exact=True).first.click()
    with open(poster.value.path(), "rb") as fh:
        head = fh.read(200)
    assert head.startswith(b"\x89PNG"), head

    w.open("/console/members")
    page.get_by_label("卡号、手机号或姓名").fill("13911112222")
    w.follow(page.get_by_role("button", name="搜索"))
    w.follow(page.locator("tr", has_text="走查导入一").get_by_role("link"))
    w.submit(page.get_by_role("button", name="查看完整手机号"))
    expect(page.locator("main")).to_contain_text("13911112222")

    w.open("/console/workbench")
    w.follow(page.locator("main a[href*='/console/workbench/']").first)
    quick = page.locator(".quick").get_by_role("button", name="高意向")
    pressed = quick.get_attribute("aria-pressed")
    w.submit(quick)
    w.saved()
    expect(page.locator(".quick").get_by_role("button", name="高意向")).not_to_have_attribute(
        "aria-pressed", pressed
    )

    w.open("/console/audit")
    page.get_by_role("searchbox").fill("门店")
    w.follow(page.get_by_role("button", name="搜索"))
    expect(page.locator("tbody")).to_contain_text("门店")
    expect(page.locator("tbody")).to_contain_text("→")

    w.open("/console/wechat/keywords")
    w.submit(page.locator("tr", has_text="走查回复").get_by_role("button", name="删除"))
    w.saved()
    expect(page.locator("tr", has_text="走查回复")).to_have_count(0)

    w.submit(page.get_by_role("button", name="退出登录"))
    expect(page).to_have_url(re.compile(r"/console/login"))
