"""Chinese names of the codes the workbench shows (core.labels): how a customer was bound and
why an order was credited to a guide."""

from flask_babel import lazy_gettext as _l

from core.labels import register_labels

register_labels(
    "guide_bind_source",
    {
        "scan": _l("Scanned the guide's code"),
        "share_link": _l("Opened the guide's link"),
        "activation": _l("Activated with the guide"),
        "till": _l("Chosen at the till"),
        "import": _l("Imported"),
        "forced": _l("Changed by HQ"),
        "guide_left": _l("Guide left"),
    },
)
register_labels(
    "guide_attribution_source",
    {
        "till": _l("At the till"),
        "binding": _l("Bound customer"),
        "share_link": _l("Share link"),
        "none": _l("No guide"),
    },
)
