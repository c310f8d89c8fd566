"""The template library of sandbox accounts: each template's title and keyword names.

WeChat renders a template message as a service-notice card: the template's title, then one
line per keyword with the name from the template's content. The sandbox knows the demo
brand's templates; others can be added (as an operator adds one in mp.weixin.qq.com).
"""

from __future__ import annotations

from wechat.sandbox import store

# The demo brand's templates (their ids are set by the demo steps of points and coupons).
LIBRARY: dict[str, dict] = {
    "demo-points-changed": {
        "title": "积分变动提醒",
        "labels": ["变动积分", "当前积分", "变动原因", "待生效积分"],
    },
    "demo-points-expiring": {
        "title": "积分过期提醒",
        "labels": ["即将过期积分", "过期日期", "当前积分"],
    },
    "demo-coupons-expiring": {
        "title": "优惠券到期提醒",
        "labels": ["优惠券", "到期时间", "即将到期"],
    },
}


def add_template(appid: str, template_id: str, *, title: str, labels: list[str]) -> None:
    """Add a template to an account's library: ``labels`` name keyword1, keyword2, ..."""
    store.put_doc("template", appid, template_id, {"title": title, "labels": list(labels)})


def layout(appid: str, template_id: str) -> dict:
    """``{"title", "labels": {"keyword1": name}}`` of a known template, else ``{}``."""
    known = store.get_doc("template", appid, template_id) or LIBRARY.get(template_id)
    if not known:
        return {}
    labels = {f"keyword{i}": name for i, name in enumerate(known["labels"], start=1)}
    return {"title": known["title"], "labels": labels}
