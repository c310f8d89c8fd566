"""Chinese names of the wechat package's jobs and audited rows (core.labels)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.labels import register_labels

register_labels(
    "job",
    {
        "wechat.jobs.send_customer_message": _l("Send a customer-service message"),
        "wechat.jobs.publish_menu": _l("Publish the custom menu"),
        "wechat.inbound.flush_inbound": _l("Process received WeChat messages"),
    },
)
register_labels(
    "audit_object",
    {"wechat_chatbot": _l("Automatic replies"), "wechat_keyword": _l("Keyword reply")},
)
